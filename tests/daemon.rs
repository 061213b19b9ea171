//! `vrm daemon` as real processes: first run initialises the data directory, two daemons
//! find each other by --bootstrap (a DNS name: `/dns4/localhost/…`, which the hosts file
//! resolves; and by mDNS where the machine allows multicast), and
//! SIGTERM shuts a daemon down cleanly.

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::Daemon;

#[test]
fn daemons_connect_by_bootstrap_and_stop_cleanly_on_sigterm() {
    let root = tempfile::tempdir().unwrap();
    let (d1, d2) = (root.path().join("one"), root.path().join("two"));
    let mut one = Daemon::start(&d1, &["--no-mdns", "--metrics", "127.0.0.1:0"]);
    let one_addr = one.listen_addr();
    let one_id = one.peer_id();
    assert!(
        d1.join("self.key").exists(),
        "first run initialises the data directory"
    );
    let by_name = one_addr.replace("/ip4/127.0.0.1/", "/dns4/localhost/");
    assert_ne!(by_name, one_addr);
    let mut two = Daemon::start(&d2, &["--no-mdns", "--bootstrap", &by_name]);
    let two_id = two.peer_id();
    two.connected_to(&one_id);
    one.connected_to(&two_id);
    // Prometheus metrics: libp2p's (transport bytes and gossipsub's own among them) and
    // vrm's own.
    let line = one
        .wait_for("metrics on http://", Duration::from_secs(5))
        .expect("metrics served");
    let url = line[line.find("http://").unwrap()..].trim().to_owned();
    let text = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    for needle in [
        "vrm_messages_rejected",
        "vrm_outbox_depth 0",
        "vrm_offers_sent_total 0",
        "vrm_mailbox_items 0",
        "vrm_mailbox_deposits_total 0",
        "vrm_inbound_connections_denied_total 0",
        "vrm_filter_pushes_total 0",
        "libp2p_swarm_connections_established_total",
        // Bytes by transport and direction, gossipsub's own counters per topic.
        "libp2p_bandwidth_bytes_total",
        "gossipsub_topic_subscription_status{hash=\"/vrm/2/directory\"} 1",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    let log = one.terminate();
    assert!(
        log.iter().any(|l| l.contains("node stopped")),
        "clean shutdown logged"
    );
    two.terminate();
}

#[test]
fn a_second_daemon_on_the_same_data_dir_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut one = Daemon::start(root.path(), &["--no-mdns"]);
    one.listen_addr();
    let out = Command::new(env!("CARGO_BIN_EXE_vrm"))
        .arg("--data-dir")
        .arg(root.path())
        .args([
            "daemon",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another vrm process"), "{stderr}");
    one.terminate();
}

/// mDNS ignores loopback, so this needs a real multicast-capable interface. Tests here use
/// loopback only; run it on a LAN machine with `VRM_TEST_MDNS=1 cargo test --test daemon`.
#[test]
fn daemons_find_each_other_by_mdns_on_a_lan() {
    if std::env::var_os("VRM_TEST_MDNS").is_none() {
        eprintln!("skipped: set VRM_TEST_MDNS=1 on a machine with a multicast LAN interface");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let any = ["--listen", "/ip4/0.0.0.0/tcp/0"];
    let mut one = Daemon::start(&root.path().join("one"), &any);
    let one_id = one.peer_id();
    let mut two = Daemon::start(&root.path().join("two"), &any);
    assert!(
        two.wait_for(&format!("connected to {one_id}"), Duration::from_secs(20))
            .is_some(),
        "no mDNS discovery within 20 s"
    );
    one.terminate();
    two.terminate();
}
