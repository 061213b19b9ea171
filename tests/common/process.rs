//! `vrm` as real child processes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The bootstrap address of a service node that is never there (nothing listens on the
/// discard port of loopback): a person's node names it as its mailbox and casts offline,
/// the intents waiting in its outbox.
pub const AWAY_SERVICE_NODE: &str =
    "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWAHoEkEqnKzM5PXFygh2movVBCSX3k8tDsT2cneU68Gyt";

/// A `vrm daemon` child process whose output lines are collected.
pub struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    pub fn start(dir: &std::path::Path, extra: &[&str]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vrm"))
            .arg("--data-dir")
            .arg(dir)
            .arg("daemon")
            .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("VRM_TEST_LOG").unwrap_or_else(|_| "vrm=info".into()),
            )
            .env_remove("VRM_DATA_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vrm binary runs");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Daemon {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return Some(line.clone());
        }
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => break,
            }
        }
        None
    }

    pub fn listen_addr(&mut self) -> String {
        let line = self
            .wait_for("listening on /ip4/127.0.0.1/tcp/", Duration::from_secs(20))
            .expect("daemon listens");
        line[line.find("/ip4/").unwrap()..].trim().to_owned()
    }

    pub fn peer_id(&mut self) -> String {
        let line = self
            .wait_for("vrm node ", Duration::from_secs(20))
            .expect("daemon prints its peer id");
        line.split_whitespace().nth(2).unwrap().to_owned()
    }

    /// Waits until this daemon reports a connection to the daemon with PeerId `peer`.
    pub fn connected_to(&mut self, peer: &str) {
        self.wait_for(&format!("connected to {peer}"), Duration::from_secs(20))
            .unwrap_or_else(|| panic!("no connection to {peer} within 20 s"));
    }

    pub fn terminate(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "daemon exited with {status}");
        self.wait_for("node stopped", Duration::from_secs(5));
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Daemon {
    /// A test that fails half-way must not leave daemons running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `vrm --data-dir DIR ARGS…` to its end.
pub fn vrm(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vrm"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("VRM_DATA_DIR")
        .output()
        .expect("vrm runs")
}

/// What it printed.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What it printed with --json (it must have succeeded).
pub fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

/// Polls `check` on the JSON `vrm ... --json` prints until it holds, for 30 s.
pub fn until(
    dir: &std::path::Path,
    args: &[&str],
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = vrm(dir, args);
        if out.status.success() {
            let value: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
            if check(&value) {
                return value;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether a relationship shown with --json has `entries` entries, all acknowledged.
pub fn log_settled(log: &Value, entries: u64) -> bool {
    log["entries"] == entries
        && log["log"]
            .as_array()
            .is_some_and(|l| l.iter().all(|e| e["acknowledged"] == true))
}

/// `vrm intent cast` of a book for at most 30 EUR, with `--json`.
pub fn cast_book(dir: &std::path::Path, text: &str) -> Output {
    let args = ["intent", "cast", "--category", "books", "--text", text];
    let price = ["--max-price", "30", "--currency", "EUR", "--json"];
    vrm(dir, &[&args[..], &price[..]].concat())
}

/// A service node's daemon started in `root/service`, with its address, and a bookshop
/// vendor's data directory made in `root/vendor` (not started: a test may change its config
/// first).
pub fn service_and_bookshop(root: &std::path::Path) -> (Daemon, String) {
    let mut service = Daemon::start(&root.join("service"), &["--no-mdns", "--role", "service"]);
    let service_addr = service.listen_addr();
    let init = vrm(
        &root.join("vendor"),
        &["init", "--vendor", "Bookshop", "--category", "books"],
    );
    assert!(init.status.success());
    (service, service_addr)
}
