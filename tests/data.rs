//! The person's data on their terms, end to end between real nodes in one process: the
//! vault, a grant the vendor holds, a new value that reaches it, a revocation answered by a
//! deletion receipt with the data gone from the vendor's disk, and a grant that expires
//! while the vendor's node is down.

mod common;

use std::collections::BTreeMap;

use common::*;
use vrm::config::VendorConfig;
use vrm::node::data::GrantView;
use vrm::node::relationships::{Draft, GrantDraft};
use vrm::proto::ReceiptStatus;
use vrm::proto::relationship::verify_file;

async fn agreed(net: &mut Net) -> (TestNode, TestNode, TestNode, String) {
    agreed_with(net, vendor("v", "electronics", "350.00")).await
}

/// A service node, `vendor` (of electronics) and a light person's node, with a relationship
/// from the person's accepted offer, agreed on both sides.
async fn agreed_with(net: &mut Net, vendor: Spec) -> (TestNode, TestNode, TestNode, String) {
    let [s, v] = net.line([person("s"), vendor]).await;
    let (p, rel) = agreed_buyer(net, "p", &s, &v).await;
    (s, v, p, rel)
}

fn grant(fields: &[&str], secs: u64, terms: &[&str]) -> Draft {
    Draft::Grant(GrantDraft {
        fields: fields.iter().map(|f| f.to_string()).collect(),
        purpose: "delivery".into(),
        expires: vrm::clock::unix_now() + secs,
        terms: terms.iter().map(|t| t.to_string()).collect(),
        replaces: None,
    })
}

fn values(grant: &GrantView) -> BTreeMap<&str, &str> {
    let values = grant.values.as_ref().expect("the vendor holds the values");
    values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_held_renewed_revoked_and_deleted_from_the_vendors_disk() {
    let mut net = Net::new();
    let (_s, v, p, rel) = agreed(&mut net).await;
    p.handle
        .vault_set("email", "pat@example.org")
        .await
        .unwrap();
    p.handle
        .vault_set("postal-address", "1 Elm Street, Springfield")
        .await
        .unwrap();
    p.handle.vault_set("phone", "+1 555 0100").await.unwrap();

    // A field the vault lacks is refused at once; so is a purpose nobody defined.
    let missing = p
        .handle
        .relationship_write(&rel, grant(&["shoe-size"], 3600, &[]))
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("shoe-size"), "{missing}");

    let seq = p
        .handle
        .relationship_write(
            &rel,
            grant(&["email", "postal-address"], 30 * 86_400, &["no-tracking"]),
        )
        .await
        .unwrap();
    assert_eq!(seq, 3);
    let held = settled(&p, &v, &rel, 5).await;
    assert_eq!(held.grants[0].state, "held", "{:?}", held.grants);
    assert_eq!(held.log[4].kind, "receipt");
    assert!(
        held.grants[0].values.is_none(),
        "the person's view holds no copy"
    );
    let vendor_side = detail(&v, &rel).unwrap();
    assert_eq!(
        values(&vendor_side.grants[0]),
        BTreeMap::from([
            ("email", "pat@example.org"),
            ("postal-address", "1 Elm Street, Springfield")
        ]),
        "the vendor sees exactly the granted fields"
    );
    assert!(on_disk(&v.dir, "pat@example.org"));
    assert!(
        !on_disk(&v.dir, "+1 555 0100"),
        "a field not granted never reaches the vendor"
    );

    // A new address reaches the vendor: a grant that replaces the old one.
    let renewed = p
        .handle
        .vault_set("postal-address", "2 Oak Avenue, Shelbyville")
        .await
        .unwrap();
    assert_eq!(renewed, 1);
    settled(&p, &v, &rel, 8).await;
    let vendor_side = detail(&v, &rel).unwrap();
    assert_eq!(
        vendor_side.grants[0].state, "deleted",
        "the old grant's data is deleted"
    );
    assert_eq!(
        values(&vendor_side.grants[1])["postal-address"],
        "2 Oak Avenue, Shelbyville"
    );
    assert!(!on_disk(&v.dir, "1 Elm Street"), "the old address is gone");

    // Revoked: the vendor deletes and signs a deletion receipt.
    let live = hex_id(&vendor_side.grants[1].id);
    p.handle
        .relationship_write(&rel, Draft::Revoke(live))
        .await
        .unwrap();
    let done = settled(&p, &v, &rel, 10).await;
    assert_eq!(done.log[9].status.as_deref(), Some("deleted"));
    assert!(
        done.grants.iter().all(|g| g.state == "deleted"),
        "{:?}",
        done.grants
    );
    let vendor_side = detail(&v, &rel).unwrap();
    assert!(vendor_side.grants.iter().all(|g| g.values.is_none()));
    for gone in ["pat@example.org", "2 Oak Avenue", "1 Elm Street"] {
        assert!(
            !on_disk(&v.dir, gone),
            "{gone} is still on the vendor's disk"
        );
    }

    // Who holds what: the vendor, both grants, the history.
    let holdings = p.handle.holdings().unwrap();
    assert_eq!(holdings.len(), 1);
    let grants = &holdings[0].grants;
    assert_eq!(grants.len(), 2);
    assert_eq!(grants[0].receipt.map(|r| r.0), Some(ReceiptStatus::Deleted));
    assert_eq!(
        grants[1].replaced_by.as_deref(),
        Some(grants[0].id.as_str())
    );

    let file = v.handle.relationship_export(&rel).unwrap();
    assert_eq!(file, p.handle.relationship_export(&rel).unwrap());
    let verified = verify_file(&file).expect("the log with its grants verifies");
    assert_eq!(verified.chain.grants.len(), 2);
    assert!(
        !String::from_utf8_lossy(&file).contains("pat@example.org"),
        "the joint log names the fields, never their values"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_under_terms_the_vendor_does_not_accept_is_refused_and_not_kept() {
    let mut net = Net::new();
    let (_s, v, p, rel) = agreed(&mut net).await;
    p.handle
        .vault_set("email", "kim@example.org")
        .await
        .unwrap();
    p.handle
        .relationship_write(&rel, grant(&["email"], 86_400, &["no-resale"]))
        .await
        .unwrap();
    let answered = settled(&p, &v, &rel, 5).await;
    assert_eq!(answered.grants[0].state, "refused");
    assert!(
        answered.log[4].text.contains("no-resale"),
        "{:?}",
        answered.log[4]
    );
    assert!(!on_disk(&v.dir, "kim@example.org"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_that_expires_while_the_vendor_is_down_is_deleted_when_it_comes_back() {
    let mut net = Net::new();
    let (s, v, p, rel) = agreed(&mut net).await;
    p.handle
        .vault_set("email", "lee@example.org")
        .await
        .unwrap();
    p.handle
        .relationship_write(&rel, grant(&["email"], 4, &[]))
        .await
        .unwrap();
    settled(&p, &v, &rel, 5).await;
    v.handle.shutdown().await;
    assert!(on_disk(&v.dir, "lee@example.org"));
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let v = net.restart(v, &[&s]).await;
    let done = settled(&p, &v, &rel, 6).await;
    assert_eq!(done.log[5].status.as_deref(), Some("deleted"));
    assert_eq!(done.grants[0].state, "deleted");
    assert!(!on_disk(&v.dir, "lee@example.org"));
}

fn hex_id(id: &str) -> [u8; 32] {
    hex::decode(id).unwrap().try_into().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_exported_and_imported_elsewhere_goes_on_where_it_stopped() {
    let mut net = Net::new();
    let (s, v, p, rel) = agreed(&mut net).await;
    p.handle
        .vault_set("email", "ana@example.org")
        .await
        .unwrap();
    // The vendor is away: the person's message waits in the outbox.
    v.handle.shutdown().await;
    p.handle
        .relationship_write(&rel, Draft::Message("Still there?".into()))
        .await
        .unwrap();
    let intents: Vec<_> = p
        .handle
        .intents()
        .unwrap()
        .into_iter()
        .map(|i| i.envelope.as_bytes().to_vec())
        .collect();
    let log = p.handle.relationship_export(&rel).unwrap();
    let mut p = net.stop(p).await;

    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("node.vrmx");
    let pass = "correct horse battery";
    vrm::export::export(&p.dir, &file, Some(pass)).unwrap();

    // A changed byte or a cut file is refused, and nothing is written.
    let bytes = std::fs::read(&file).unwrap();
    let (changed, cut) = (root.path().join("changed"), root.path().join("cut"));
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&changed, flipped).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let target = root.path().join("moved");
    for (bad, why) in [(&changed, "digest"), (&cut, "truncated")] {
        let refused = vrm::export::import(bad, &target, Some(pass)).unwrap_err();
        assert!(refused.to_string().contains(why), "{refused:#}");
        assert!(!target.exists(), "nothing is half imported");
    }
    let wrong = vrm::export::import(&file, &target, Some("wrong passphrase")).unwrap_err();
    assert!(wrong.to_string().contains("passphrase"), "{wrong:#}");
    assert!(!target.exists());

    vrm::export::import(&file, &target, Some(pass)).unwrap();
    p.dir = target;
    let p = net.resume(p, &[&s]).await;
    let v = net.restart(v, &[&s]).await;
    assert_eq!(
        p.handle
            .intents()
            .unwrap()
            .into_iter()
            .map(|i| i.envelope.as_bytes().to_vec())
            .collect::<Vec<_>>(),
        intents
    );
    assert_eq!(p.handle.vault().unwrap()["email"], "ana@example.org");
    assert_eq!(
        p.handle.relationship_export(&rel).unwrap(),
        log,
        "the log is the same, byte for byte"
    );
    // The pending message goes out from the new machine.
    let delivered = settled(&p, &v, &rel, 4).await;
    assert_eq!(delivered.log[3].text, "Still there?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_granted_under_delete_after_fulfilment_goes_when_the_vendor_fulfils() {
    let mut net = Net::new();
    let config = VendorConfig {
        accepted_terms: vec!["no-tracking".into(), "delete-after-fulfilment".into()],
        ..vendor_config("v", "electronics")
    };
    let item = catalog("electronics", "A used ThinkPad", "350.00");
    let (_s, v, p, rel) = agreed_with(&mut net, vendor_with("v", &item, config)).await;
    p.handle
        .vault_set("postal-address", "9 Pine Road")
        .await
        .unwrap();
    let terms = ["no-tracking", "delete-after-fulfilment"];
    p.handle
        .relationship_write(&rel, grant(&["postal-address"], 30 * 86_400, &terms))
        .await
        .unwrap();
    settled(&p, &v, &rel, 5).await;
    assert!(on_disk(&v.dir, "9 Pine Road"));
    let fulfilled = Draft::Update(vrm::proto::Status::Fulfilled, String::new());
    v.handle.relationship_write(&rel, fulfilled).await.unwrap();
    // fulfilled, the deleted receipt, then the review token
    let done = settled(&p, &v, &rel, 8).await;
    assert_eq!(done.log[6].status.as_deref(), Some("deleted"));
    assert_eq!(done.log[7].kind, "review-token");
    assert_eq!(done.grants[0].state, "deleted");
    assert!(!on_disk(&v.dir, "9 Pine Road"));
}
