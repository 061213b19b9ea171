//! The `vrm` binary against real daemons: cast, offers with --json, tables, exit codes, and
//! the message when no daemon runs.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::on_disk;
use common::process::{
    Daemon, cast_book, json, log_settled, service_and_bookshop, stdout, until, vrm,
};
use serde_json::Value;

#[test]
fn cast_then_offers_appear_with_json_and_tables() {
    let root = tempfile::tempdir().unwrap();
    let (person_dir, vendor_dir) = (root.path().join("person"), root.path().join("vendor"));
    let mut person = Daemon::start(&person_dir, &["--no-mdns"]);
    let person_addr = person.listen_addr();
    person
        .wait_for("API on", Duration::from_secs(20))
        .expect("API up");

    let init = vrm(
        &vendor_dir,
        &["init", "--vendor", "Bookshop", "--category", "books"],
    );
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut vendor = Daemon::start(&vendor_dir, &["--no-mdns", "--bootstrap", &person_addr]);
    let (person_id, vendor_id) = (person.peer_id(), vendor.peer_id());
    vendor.connected_to(&person_id);
    // The person's node counts its peers when it has seen the connection, not before.
    person.connected_to(&vendor_id);

    let status = json(&vrm(&person_dir, &["status", "--json"]));
    assert_eq!(status["peers"], 1);

    let cast = vrm(
        &person_dir,
        &[
            "intent",
            "cast",
            "--category",
            "books",
            "--text",
            "A used paperback novel",
            "--max-price",
            "30",
            "--currency",
            "EUR",
            "--expires",
            "2h",
            "--require",
            "no-tracking",
            "--json",
        ],
    );
    let id = json(&cast)["id"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(20);
    let offers = loop {
        let offers = json(&vrm(&person_dir, &["offers", "--intent", &id, "--json"]));
        if offers.as_array().is_some_and(|a| !a.is_empty()) {
            break offers;
        }
        if Instant::now() > deadline {
            let log = vendor.terminate().join("\n");
            panic!(
                "no offer within 20 s; vendor log:\n{log}\nperson log:\n{}",
                person.terminate().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // The example catalog `init --vendor` wrote: its standard offer fits the 30.00 ceiling.
    assert_eq!(offers.as_array().unwrap().len(), 1);
    assert_eq!(offers[0]["vendor_name"], "Bookshop");
    assert_eq!(offers[0]["items"][0]["title"], "Standard offer");
    assert_eq!(offers[0]["total"]["display"], "20.00 EUR");

    let table = stdout(&vrm(&person_dir, &["intent", "list"]));
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&id) && table.contains("open"), "{table}");
    let vendor_view = stdout(&vrm(&vendor_dir, &["vendor", "intents"]));
    assert!(vendor_view.contains("offered"), "{vendor_view}");

    let withdrawn = json(&vrm(&person_dir, &["intent", "withdraw", &id, "--json"]));
    assert_eq!(withdrawn["status"], "withdrawn");
    let again = vrm(&person_dir, &["intent", "withdraw", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already withdrawn"));
    let bad = vrm(
        &person_dir,
        &["intent", "cast", "--category", "spaceships", "--text", "x"],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown category"));

    let link = stdout(&vrm(&person_dir, &["open"]));
    assert!(
        link.starts_with("http://127.0.0.1:") && link.contains("/#token="),
        "{link}"
    );
    person.terminate();
    vendor.terminate();
    assert!(
        !person_dir.join("api.cookie").exists(),
        "the cookie is removed at shutdown"
    );
}

#[test]
fn verbs_say_clearly_when_no_daemon_runs() {
    let root = tempfile::tempdir().unwrap();
    for verb in [
        &["status"][..],
        &["intent", "list"],
        &["offers"],
        &["vendor", "offers"],
    ] {
        let out = vrm(root.path(), verb);
        assert_eq!(out.status.code(), Some(1), "{verb:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("daemon is not running") && err.contains("vrm daemon"),
            "{verb:?}: {err}"
        );
    }
}

#[test]
fn completions_and_help() {
    let root = tempfile::tempdir().unwrap();
    let out = vrm(root.path(), &["completions", "bash"]);
    assert!(out.status.success() && stdout(&out).contains("vrm"));
    let out = vrm(root.path(), &["intent", "cast", "--help"]);
    assert!(stdout(&out).contains("--max-price"));
}

/// `vrm demo` as a newcomer runs it: five real nodes, the sample intent, an offer from each
/// of the three vendors, then (with `--exit-after-offers`) a clean exit.
#[test]
fn the_demo_shows_an_offer_from_each_vendor() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vrm"))
        .args(["demo", "--exit-after-offers"])
        .env_remove("VRM_DATA_DIR")
        .output()
        .expect("vrm runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for vendor in ["Casa do Pátio", "Hotel Miradouro", "Alfama Hostel"] {
        assert!(
            stdout.contains(&format!("Offer from {vendor}")),
            "no offer from {vendor}: {stdout}"
        );
    }
}

/// A node takes at most `[network] max_inbound_per_ip` inbound connections from one IP
/// address, loopback included (unless `--loopback-exempt`): with a cap of 1, the second
/// daemon that connects from 127.0.0.1 is refused, and the refusal is counted in the
/// node's status.
#[test]
fn a_node_refuses_inbound_connections_past_its_cap_per_address() {
    let root = tempfile::tempdir().unwrap();
    let hub_dir = root.path().join("hub");
    assert!(vrm(&hub_dir, &["init"]).status.success());
    let config = hub_dir.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let capped = text.replace("max_inbound_per_ip = 8", "max_inbound_per_ip = 1");
    assert_ne!(capped, text, "the template names the key");
    std::fs::write(&config, capped).unwrap();
    let mut hub = Daemon::start(&hub_dir, &["--no-mdns", "--role", "service"]);
    let hub_addr = hub.listen_addr();
    let hub_id = hub.peer_id();
    hub.wait_for("API on", Duration::from_secs(20))
        .expect("API up");
    let mut first = Daemon::start(
        &root.path().join("first"),
        &["--no-mdns", "--bootstrap", &hub_addr],
    );
    first.connected_to(&hub_id);
    let second = Daemon::start(
        &root.path().join("second"),
        &["--no-mdns", "--bootstrap", &hub_addr],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = json(&vrm(&hub_dir, &["status", "--json"]));
        if status["counters"]["inbound-denied"].as_u64().unwrap_or(0) >= 1 {
            assert_eq!(status["peers"], 1, "only the first got in: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "no refusal counted: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    second.terminate();
    first.terminate();
    hub.terminate();
}

#[test]
fn an_order_between_three_daemons_ends_in_one_log_that_verifies() {
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| root.path().join(name);
    let (mut service, service_addr) = service_and_bookshop(root.path());
    // The vendor's CRM program: it keeps every line the node gives it.
    let crm_log = root.path().join("crm.log");
    let config = dir("vendor").join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[vendor]\n",
        &format!(
            "[vendor]\ncrm = [\"sh\", \"-c\", \"cat >> {}\"]\n",
            crm_log.display()
        ),
    );
    std::fs::write(&config, text).unwrap();
    let mut vendor = Daemon::start(&dir("vendor"), &["--no-mdns", "--bootstrap", &service_addr]);
    vendor.connected_to(&service.peer_id());
    let mut person = Daemon::start(
        &dir("person"),
        &["--no-mdns", "--role", "light", "--bootstrap", &service_addr],
    );
    person.connected_to(&service.peer_id());
    let (p, v) = (dir("person"), dir("vendor"));

    let cast = cast_book(&p, "A signed first edition");
    let id = json(&cast)["id"].as_str().unwrap().to_owned();
    let offers = until(
        &p,
        &["offers", "--intent", &id, "--json"],
        "an offer",
        |o| o.as_array().is_some_and(|a| !a.is_empty()),
    );
    let offer: String = offers[0]["id"].as_str().unwrap().chars().take(12).collect();

    let accepted = json(&vrm(&p, &["accept", &offer, "--as-new", "--json"]));
    let rel = accepted["id"].as_str().unwrap().to_owned();
    let show = ["relationship", "show", &rel, "--json"];
    // The vendor agrees to the person's standing terms its offer accepted, then orders.
    let ordered = until(&p, &show, "the countersigned order", |l| log_settled(l, 4));
    assert_eq!(ordered["log"][1]["kind"], "agreement");
    assert_eq!(
        ordered["agreed_terms"],
        serde_json::json!(["no-tracking", "no-resale"])
    );
    until(&v, &show, "the vendor's copy", |l| log_settled(l, 4));
    let intent = json(&vrm(&p, &["intent", "show", &id, "--json"]));
    assert_eq!(
        intent["intent"]["status"], "withdrawn",
        "the accept withdrew it"
    );

    // The person grants two vault fields for delivery; the vendor holds exactly those.
    for (name, value) in [
        ("email", "pat@example.org"),
        ("postal-address", "1 Elm Street"),
        ("phone", "+1 555 0100"),
    ] {
        assert!(vrm(&p, &["vault", "set", name, value]).status.success());
    }
    let grant = [
        "grant",
        &rel,
        "--field",
        "email",
        "--field",
        "postal-address",
        "--purpose",
        "delivery",
        "--days",
        "30",
        "--term",
        "no-tracking",
    ];
    assert!(
        vrm(&p, &grant).status.success(),
        "{}",
        stdout(&vrm(&p, &grant))
    );
    let held = until(&v, &show, "the vendor's receipt", |l| log_settled(l, 6));
    assert_eq!(
        held["grants"][0]["values"],
        serde_json::json!({"email": "pat@example.org", "postal-address": "1 Elm Street"})
    );
    assert!(on_disk(&v, "pat@example.org") && !on_disk(&v, "+1 555 0100"));
    // The vendor's program sees exactly the granted fields, through the grant.
    let crm_saw =
        |needle: &str| std::fs::read_to_string(&crm_log).is_ok_and(|log| log.contains(needle));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !crm_saw("1 Elm Street") {
        assert!(
            Instant::now() < deadline,
            "the CRM program never got the grant"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(crm_saw("pat@example.org") && !crm_saw("+1 555 0100"));
    let grant_id = held["grants"][0]["id"].as_str().unwrap().to_owned();
    assert!(vrm(&p, &["revoke", &rel, &grant_id[..10]]).status.success());
    let deleted = until(&p, &show, "the deletion receipt", |l| log_settled(l, 8));
    assert_eq!(deleted["log"][7]["status"], "deleted");
    let vendor_view = until(&v, &show, "the vendor's copy", |l| log_settled(l, 8));
    assert!(vendor_view["grants"][0].get("values").is_none());
    assert!(
        !on_disk(&v, "pat@example.org") && !on_disk(&v, "1 Elm Street"),
        "the data is gone from the vendor's disk"
    );
    // The program's last word on the grant carries no values.
    let deadline = Instant::now() + Duration::from_secs(30);
    let last_grant_line = || {
        let log = std::fs::read_to_string(&crm_log).unwrap_or_default();
        log.lines()
            .rfind(|l| l.contains(&grant_id))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    while !last_grant_line().contains("\"deleted\"") {
        assert!(
            Instant::now() < deadline,
            "the CRM program never got the deletion"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!last_grant_line().contains("pat@example.org"));
    let holdings = json(&vrm(&p, &["holdings", "--json"]));
    assert_eq!(holdings[0]["grants"][0]["state"], "deleted");
    assert_eq!(holdings[0]["grants"][0]["receipt"][0], "deleted");

    assert!(
        vrm(&p, &["message", &rel, "Is it really signed?"])
            .status
            .success()
    );
    until(&v, &show, "the person's message", |l| log_settled(l, 9));
    assert!(
        vrm(&v, &["vendor", "message", &rel, "Yes, on the title page."])
            .status
            .success()
    );
    assert!(
        vrm(&v, &["vendor", "ship", &rel, "--tracking", "TRACK-1"])
            .status
            .success()
    );
    assert!(vrm(&v, &["vendor", "fulfil", &rel]).status.success());
    // Fulfilment brings the vendor's review token.
    until(&p, &show, "the vendor's reply, shipment and token", |l| {
        log_settled(l, 13)
    });
    assert!(vrm(&p, &["order", "received", &rel]).status.success());
    let done = until(&v, &show, "received", |l| log_settled(l, 14));
    assert_eq!(done["state"]["received"], true);
    let (pf, vf) = (root.path().join("p.log"), root.path().join("v.log"));
    until(&p, &show, "the person's copy complete", |l| {
        log_settled(l, 14)
    });
    let table = stdout(&vrm(&p, &["relationships"]));
    assert!(
        table.contains("agreed, shipped, fulfilled, received  14 entries  1 unread"),
        "{table}"
    );
    for (d, f) in [(&p, &pf), (&v, &vf)] {
        let export = vrm(
            d,
            &["relationship", "export", &rel, "-o", f.to_str().unwrap()],
        );
        assert!(export.status.success());
    }
    let (pb, vb) = (std::fs::read(&pf).unwrap(), std::fs::read(&vf).unwrap());
    assert_eq!(pb, vb, "both sides' logs are byte-identical");
    // Verify needs no daemon and no data directory.
    let nowhere = root.path().join("nowhere");
    let verified = json(&vrm(
        &nowhere,
        &["relationship", "verify", pf.to_str().unwrap(), "--json"],
    ));
    assert_eq!(
        (
            verified["entries"].clone(),
            verified["acknowledged"].clone()
        ),
        (14.into(), 14.into())
    );
    let mut tampered = pb.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x20;
    std::fs::write(&pf, &tampered).unwrap();
    let refused = vrm(&nowhere, &["relationship", "verify", pf.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is refused"));
    // Each refused log of the vectors (an entry removed, an update signed by the wrong
    // side, …) is refused by the CLI with its place and rule.
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proto/relationship-vectors.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for case in vectors["logs"].as_array().unwrap() {
        let file = root.path().join("vector.log");
        std::fs::write(
            &file,
            hex::decode(case["log_hex"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let out = vrm(
            &nowhere,
            &["relationship", "verify", file.to_str().unwrap()],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        if case["valid"] == true {
            assert!(out.status.success(), "{}: {stderr}", case["description"]);
        } else if let Some(at) = case["at"].as_u64() {
            assert_eq!(out.status.code(), Some(1));
            let code = case["error"].as_str().unwrap();
            assert!(
                stderr.contains(&format!("entry {at}:")) && stderr.contains(code),
                "{}: {stderr}",
                case["description"]
            );
        }
    }
    for d in [person, vendor, service] {
        d.terminate();
    }
}

/// Runs `vrm daemon` on `dir` expecting it to refuse to start: its stderr. Fails the test if
/// it is still running after 20 s (it started).
fn refused_start(dir: &std::path::Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vrm"))
        .args(["--data-dir", dir.to_str().unwrap()])
        .args(["daemon", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(["--api", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the daemon started on {}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_data_directory_other_users_can_read_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node");
    assert!(vrm(&dir, &["init"]).status.success());
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(&dir),
        0o700,
        "vrm creates the folder its owner's alone"
    );
    for file in ["config.toml", "self.key", "node.key"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let chmod = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    chmod(&dir, 0o755);
    let refused = refused_start(&dir);
    assert!(
        refused.contains("can be read by other users") && refused.contains("chmod -R go-rwx"),
        "{refused}"
    );
    chmod(&dir, 0o700);
    chmod(&dir.join("config.toml"), 0o644);
    let refused = refused_start(&dir);
    assert!(refused.contains("config.toml"), "{refused}");
}
