//! The person's web page in a real headless Chromium (driven by playwright-core through
//! `tests/browser/*.test.mjs`): log in, cast from the form, watch an offer arrive live,
//! withdraw; accept an offer, see the order agreed live, talk with the vendor. Needs Debian's `chromium` and `npm ci` in tests/browser (`.ci/run` does both);
//! without them the test says so and passes, unless VRM_REQUIRE_BROWSER is set.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use vrm::node::relationships::Draft;
use vrm::node::reviews::ReviewDraft;
use vrm::proto::Status;
use vrm::proto::relationship::{Side, Stage};

fn browser_ready(dir: &Path) -> Result<(), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!("no Chromium at {chromium}"));
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Err("tests/browser/node_modules missing (run npm ci there)".into());
    }
    Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("no node: {e}"))?;
    Ok(())
}

/// Whether the browser tests can run here; when they cannot, says why (and fails when
/// VRM_REQUIRE_BROWSER is set).
fn browser_or_skip() -> bool {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    match browser_ready(&scripts) {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var_os("VRM_REQUIRE_BROWSER").is_none(),
                "browser test required: {why}"
            );
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// Runs `tests/browser/<script>` against the page of `node` (logged in), with a screenshot
/// `<shot>`; fails the test with the script's output if it fails.
async fn run_page_script(script: &str, node: &TestNode, shot: &str) {
    let api = TestApi::serve(node).await;
    let login = format!("{}/#token={}", api.base, api.token);
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(shot);
    let out = tokio::process::Command::new("node")
        .arg(scripts.join(script))
        .arg(&login)
        .arg(&shot)
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "browser run failed:\n{stdout}\n{stderr}"
    );
    println!("{stdout}screenshot: {}", shot.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cast_watch_an_offer_arrive_and_withdraw_in_chromium() {
    if !browser_or_skip() {
        return;
    }
    let mut net = Net::new();
    let [p, _v] = net
        .line([person("p"), vendor("v", "travel", "90.00")])
        .await;
    run_page_script("page.test.mjs", &p, "page.png").await;
    let cast = intent_ids(&p);
    assert_eq!(cast.len(), 1, "one intent cast from the page");
    assert!(intent_withdrawn(&p, &cast[0]), "withdrawn in the store too");
}

/// A service node, a vendor of electronics on it, and a light person's node on it.
async fn shop(net: &mut Net) -> (TestNode, TestNode, TestNode) {
    let [s, v] = net
        .line([person("s"), vendor("v", "electronics", "350.00")])
        .await;
    let p = net.add(person("p").light(), &[&s]).await;
    (s, v, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_an_offer_and_talk_with_the_vendor_in_chromium() {
    if !browser_or_skip() {
        return;
    }
    let mut net = Net::new();
    let (_s, v, p) = shop(&mut net).await;
    // The vendor answers the person's first message.
    let vendor = v.handle.clone();
    let answering = tokio::spawn(async move {
        let rel = eventually("a person's message at the vendor", || async {
            let all = vendor.relationships().ok()?;
            all.into_iter()
                .find(|r| {
                    vendor.relationship(&r.id).is_ok_and(|d| {
                        d.log
                            .iter()
                            .any(|e| e.kind == "message" && e.from == Side::Person)
                    })
                })
                .map(|r| r.id)
        })
        .await;
        let reply = Draft::Message("Yes, a 65 W one.".into());
        vendor.relationship_write(&rel, reply).await.unwrap();
    });
    run_page_script("relationship.test.mjs", &p, "relationship.png").await;
    answering.await.unwrap();
    let rels = p.handle.relationships().unwrap();
    assert_eq!(rels.len(), 1, "one relationship started from the page");
    assert_eq!(rels[0].unread, 0, "read on the page, read in the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_the_vault_share_and_revoke_in_chromium() {
    if !browser_or_skip() {
        return;
    }
    let mut net = Net::new();
    let (_s, v, p) = shop(&mut net).await;
    run_page_script("data.test.mjs", &p, "data.png").await;
    let holdings = p.handle.holdings().unwrap();
    assert_eq!(holdings.len(), 1, "one vendor held data");
    assert_eq!(holdings[0].grants[0].state, "deleted");
    let rel = &holdings[0].relationship;
    let at_vendor = v.handle.relationship(rel).unwrap();
    assert_eq!(at_vendor.grants[0].fields, ["email", "postal-address"]);
    assert!(
        at_vendor.grants[0].values.is_none(),
        "the vendor holds nothing"
    );
    assert_eq!(p.handle.vault().unwrap()["postal-address"], "2 Oak Avenue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_next_to_offers_review_and_groups_in_chromium() {
    if !browser_or_skip() {
        return;
    }
    let mut net = Net::new();
    let (s, v, p) = shop(&mut net).await;
    let vendor = hex::encode(v.handle.vendor_key().unwrap());
    // Another buyer's fulfilled order and 5-star review, and the group they start.
    let (other, rel) = agreed_buyer(&mut net, "other", &s, &v).await;
    let fulfilled = Draft::Update(Status::Fulfilled, String::new());
    v.handle
        .relationship_write(&rel, fulfilled.clone())
        .await
        .unwrap();
    settled(&other, &v, &rel, 5).await;
    let five = ReviewDraft {
        rating: 5,
        text: "Great".into(),
        history: false,
    };
    other.handle.review(&rel, five).await.unwrap();
    eventually("the review reaches the person's node", || async {
        p.handle
            .reputations()
            .unwrap()
            .into_iter()
            .find(|r| r.vendor == vendor && r.reviews == 1)
    })
    .await;
    let request = cast_request("travel", "Solar panels for our street", "5000");
    let (_, group) = other.handle.start_group(request, 30).await.unwrap();
    // The vendor fulfils the order the page accepts.
    let vendor_side = v.handle.clone();
    let fulfilling = tokio::spawn(async move {
        let rel = eventually("the page's order is agreed", || async {
            vendor_side
                .relationships()
                .ok()?
                .into_iter()
                .find(|r| r.state.stage == Stage::Agreed && !r.state.fulfilled)
                .map(|r| r.id)
        })
        .await;
        vendor_side
            .relationship_write(&rel, fulfilled)
            .await
            .unwrap();
    });
    run_page_script("reputation.test.mjs", &p, "reputation.png").await;
    fulfilling.await.unwrap();
    let seen = eventually("the page's review reaches the vendor", || async {
        v.handle
            .reputations()
            .unwrap()
            .into_iter()
            .find(|r| r.vendor == vendor && r.reviews == 2)
    })
    .await;
    assert_eq!(seen.distribution, [0, 0, 0, 1, 1]);
    eventually("the page joined the other person's group", || async {
        let groups = other.handle.groups().unwrap();
        groups
            .into_iter()
            .find(|g| g.id == hex::encode(group) && g.members == 2)
    })
    .await;
    assert_eq!(p.handle.groups().unwrap().len(), 2, "and started its own");
}
