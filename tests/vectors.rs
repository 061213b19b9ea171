//! Checks the code against every test vector in `proto/vectors/`: valid vectors decode to
//! the stated body, id and signer; invalid ones fail with the stated error code. The
//! vectors are written by `cargo run --example make_vectors` and only read here.

use serde_json::Value;
use vrm::proto::decode_and_check;
use vrm::proto::json::body_to_json;

fn vectors() -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/vectors");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("proto/vectors exists")
        .map(|entry| {
            let path = entry.expect("dir entry").path();
            let text = std::fs::read_to_string(&path).expect("readable vector");
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, serde_json::from_str(&text).expect("vector is JSON"))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_vector_holds() {
    let all = vectors();
    assert!(
        all.len() >= 15,
        "expected the full vector set, found {}",
        all.len()
    );
    for (name, v) in &all {
        let bytes = hex::decode(v["envelope_hex"].as_str().expect("envelope_hex")).expect("hex");
        let now = v["now"].as_u64().expect("now");
        let result = decode_and_check(&bytes, now);
        if v["valid"].as_bool().expect("valid") {
            let (envelope, _) =
                result.unwrap_or_else(|e| panic!("{name}: valid vector refused: {e}"));
            assert_eq!(envelope.kind().as_str(), v["kind"], "{name}: kind");
            assert_eq!(envelope.id().to_hex(), v["id_hex"], "{name}: id");
            assert_eq!(
                hex::encode(envelope.signer().as_bytes()),
                v["public_key_hex"],
                "{name}: signer"
            );
            assert_eq!(
                body_to_json(envelope.body_bytes()).as_ref(),
                Some(&v["body"]),
                "{name}: body"
            );
        } else {
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{name}: invalid vector accepted"));
            assert_eq!(err.code(), v["error"], "{name}: error ({err})");
        }
    }
}

#[test]
fn vectors_cover_every_implemented_kind_and_required_failure() {
    let all = vectors();
    for kind in ["intent", "intent-withdraw", "offer", "vendor-profile"] {
        assert!(
            all.iter()
                .any(|(_, v)| v["valid"] == true && v["kind"] == kind),
            "no valid vector of kind {kind}"
        );
    }
    for error in [
        "bad-signature",
        "truncated",
        "string-too-long",
        "expired",
        "unsupported-version",
    ] {
        assert!(
            all.iter().any(|(_, v)| v["error"] == error),
            "no invalid vector with error {error}"
        );
    }
}

/// Each vector's verdict through the batch path a node uses for gossip, all of `vectors`
/// verified together in one batch, and through the one-by-one path: the same.
fn assert_batch_agrees_with_single(vectors: &[(String, Value)]) {
    let inputs: Vec<(Vec<u8>, u64)> = vectors
        .iter()
        .map(|(_, v)| {
            let bytes = hex::decode(v["envelope_hex"].as_str().expect("hex")).expect("hex");
            (bytes, v["now"].as_u64().expect("now"))
        })
        .collect();
    let mut unverified = Vec::new();
    let mut failures = Vec::new();
    for (bytes, _) in &inputs {
        match vrm::proto::Envelope::parse(bytes) {
            Ok(u) => {
                failures.push(None);
                unverified.push(u);
            }
            Err(e) => failures.push(Some(e)),
        }
    }
    let mut batch = vrm::proto::batch::verify_all(unverified).into_iter();
    for (((name, _), (bytes, now)), failure) in vectors.iter().zip(&inputs).zip(failures) {
        let batched = match failure {
            Some(e) => Err(vrm::proto::Rejection::from(e)),
            None => batch
                .next()
                .expect("one result per envelope")
                .map_err(vrm::proto::Rejection::from)
                .and_then(|envelope| vrm::proto::check(envelope, *now)),
        };
        let single = decode_and_check(bytes, *now);
        assert_eq!(
            batched.as_ref().map(|(e, _)| e.id()).map_err(|e| e.code()),
            single.as_ref().map(|(e, _)| e.id()).map_err(|e| e.code()),
            "{name}"
        );
    }
}

/// With every vector in one batch, the bad signatures among them make the batch fail and
/// each envelope is checked alone.
#[test]
fn batch_verification_agrees_with_single_on_every_vector() {
    assert_batch_agrees_with_single(&vectors());
}

/// With only the correctly signed vectors (valid or not by their content), the batch holds
/// and its accept path gives every verdict.
#[test]
fn a_batch_that_holds_agrees_with_single_on_the_signed_vectors() {
    let signed: Vec<(String, Value)> = vectors()
        .into_iter()
        .filter(|(_, v)| {
            let bytes = hex::decode(v["envelope_hex"].as_str().unwrap()).unwrap();
            vrm::proto::Envelope::parse(&bytes)
                .is_ok_and(|u| vrm::proto::batch::verify_all(vec![u]).remove(0).is_ok())
        })
        .collect();
    let valid = signed
        .iter()
        .filter(|(_, v)| v["valid"].as_bool() == Some(true))
        .count();
    assert!(
        valid >= 5 && signed.len() > valid,
        "valid and invalid content, all signed"
    );
    assert_batch_agrees_with_single(&signed);
}

/// The service protocols' vectors: the sealed offer opens with the key derived from its
/// ikm to the offer envelope, the queue id follows from its token, and every message
/// decodes from its CBOR and encodes back to the same bytes.
#[test]
fn the_service_vectors_hold() {
    use vrm::proto::sealed::ReplyKey;
    use vrm::proto::service::*;

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/service-vectors.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let hex_of = |v: &Value| hex::decode(v.as_str().expect("hex string")).expect("hex");
    let sealed = &v["sealed_offer"];
    let key = ReplyKey::derive(&hex_of(&sealed["ikm_hex"]));
    assert_eq!(key.public().to_vec(), hex_of(&sealed["public_key_hex"]));
    let opened = key
        .open(
            sealed["info"].as_str().unwrap().as_bytes(),
            &hex_of(&sealed["aad_hex"]),
            &hex_of(&sealed["sealed_hex"]),
        )
        .expect("the vector opens");
    assert_eq!(opened, hex_of(&sealed["plaintext_hex"]));
    assert!(
        decode_and_check(&opened, 1_800_000_000).is_ok(),
        "to a valid offer"
    );
    assert_eq!(
        queue_of(&hex_of(&v["queue_of"]["token_hex"])).to_vec(),
        hex_of(&v["queue_of"]["queue_hex"])
    );

    // Each message decodes from its bytes, and the node's own codec (the one on the wire)
    // writes exactly those bytes again.
    use futures::executor::block_on;
    use libp2p::StreamProtocol;
    use libp2p::request_response::Codec;
    use vrm::node::network::{
        catch_up_codec, filter_codec, filter_push_codec, light_push_codec, mailbox_codec,
        mailbox_push_codec, peer_exchange_codec,
    };
    macro_rules! check {
        ($codec:expr, $protocol:expr, $read:ident, $write:ident, $bytes:expr) => {{
            let protocol = StreamProtocol::new($protocol);
            let mut codec = $codec;
            let message =
                block_on(codec.$read(&protocol, &mut $bytes.as_slice())).expect("decodes");
            let mut written = Vec::new();
            block_on(codec.$write(&protocol, &mut written, message)).unwrap();
            assert_eq!(written, $bytes);
        }};
    }
    let messages = v["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 25);
    for m in messages {
        let bytes = hex_of(&m["cbor_hex"]);
        match m["name"].as_str().unwrap() {
            "light-push-request" => {
                check!(
                    light_push_codec(),
                    LIGHT_PUSH_PROTOCOL,
                    read_request,
                    write_request,
                    bytes
                )
            }
            n if n.starts_with("light-push-") => {
                check!(
                    light_push_codec(),
                    LIGHT_PUSH_PROTOCOL,
                    read_response,
                    write_response,
                    bytes
                )
            }
            "mailbox-deposit" | "mailbox-fetch" | "mailbox-forward" => {
                check!(
                    mailbox_codec(),
                    MAILBOX_PROTOCOL,
                    read_request,
                    write_request,
                    bytes
                )
            }
            "mailbox-push" => {
                check!(
                    mailbox_push_codec(),
                    MAILBOX_PUSH_PROTOCOL,
                    read_request,
                    write_request,
                    bytes
                )
            }
            "filter-subscribe" => {
                check!(
                    filter_codec(),
                    FILTER_PROTOCOL,
                    read_request,
                    write_request,
                    bytes
                )
            }
            "filter-subscribed" | "filter-refused" => {
                check!(
                    filter_codec(),
                    FILTER_PROTOCOL,
                    read_response,
                    write_response,
                    bytes
                )
            }
            "filter-push" => {
                check!(
                    filter_push_codec(),
                    FILTER_PUSH_PROTOCOL,
                    read_request,
                    write_request,
                    bytes
                )
            }
            "filter-push-answer" => {
                check!(
                    filter_push_codec(),
                    FILTER_PUSH_PROTOCOL,
                    read_response,
                    write_response,
                    bytes
                )
            }
            "catch-up-list" | "catch-up-fetch" => {
                check!(
                    catch_up_codec(),
                    CATCH_UP_PROTOCOL,
                    read_request,
                    write_request,
                    bytes
                )
            }
            n if n.starts_with("catch-up-") => {
                check!(
                    catch_up_codec(),
                    CATCH_UP_PROTOCOL,
                    read_response,
                    write_response,
                    bytes
                )
            }
            "peers-request" => {
                check!(
                    peer_exchange_codec(),
                    PEERS_PROTOCOL,
                    read_request,
                    write_request,
                    bytes
                )
            }
            "peers-answer" | "peers-refused" => {
                check!(
                    peer_exchange_codec(),
                    PEERS_PROTOCOL,
                    read_response,
                    write_response,
                    bytes
                )
            }
            "mailbox-push-answer" => {
                check!(
                    mailbox_push_codec(),
                    MAILBOX_PUSH_PROTOCOL,
                    read_response,
                    write_response,
                    bytes
                )
            }
            _ => check!(
                mailbox_codec(),
                MAILBOX_PROTOCOL,
                read_response,
                write_response,
                bytes
            ),
        }
    }
}

/// The shard vectors: each category's shard and topic as the map gives them, and every shard
/// holds at least one category of the taxonomy.
#[test]
fn the_shard_vectors_hold() {
    use vrm::proto::{SHARDS, intent_topic, is_shard_topic, shard_of, taxonomy};

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/shard-vectors.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["shards"], u64::from(SHARDS));
    let entries = v["categories"].as_array().unwrap();
    assert_eq!(entries.len(), taxonomy::categories().len() + 1);
    for entry in entries {
        let category = entry["category"].as_str().unwrap();
        assert_eq!(entry["shard"], u64::from(shard_of(category)), "{category}");
        assert_eq!(entry["topic"], intent_topic(category), "{category}");
        assert!(is_shard_topic(&intent_topic(category)));
    }
    for shard in 0..SHARDS {
        assert!(
            taxonomy::categories()
                .iter()
                .any(|c| shard_of(&c.id) == shard),
            "shard {shard} is empty"
        );
    }
    for not_a_shard in [
        "/vrm/2/shard/8",
        "/vrm/2/shard/01",
        "/vrm/2/shard/",
        "/vrm/2/intent/books",
    ] {
        assert!(!is_shard_topic(not_a_shard), "{not_a_shard}");
    }
}

#[test]
fn the_relationship_vectors_hold() {
    use vrm::proto::relationship::{LogError, verify_file};
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/relationship-vectors.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut codes = std::collections::BTreeSet::new();
    for case in file["logs"].as_array().unwrap() {
        let name = case["description"].as_str().unwrap();
        let bytes = hex::decode(case["log_hex"].as_str().unwrap()).unwrap();
        match verify_file(&bytes) {
            Ok(verified) => {
                assert_eq!(case["valid"], true, "{name}: valid here");
                assert_eq!(case["entries"], verified.chain.len, "{name}");
                assert_eq!(case["acknowledged"], verified.acknowledged, "{name}");
                assert_eq!(
                    case["state"],
                    serde_json::to_value(verified.chain.state).unwrap(),
                    "{name}"
                );
                codes.insert("valid".to_owned());
            }
            Err(LogError::Entry { at, error }) => {
                assert_eq!(case["valid"], false, "{name}: refused here: {error}");
                assert_eq!(
                    (case["at"].clone(), case["error"].clone()),
                    (at.into(), error.code.into()),
                    "{name}"
                );
                codes.insert(error.code.to_owned());
            }
            Err(LogError::NotALog(why)) => {
                assert_eq!(
                    (case["valid"].clone(), case["error"].clone()),
                    (false.into(), "not-a-log".into()),
                    "{name}: {why}"
                );
                codes.insert("not-a-log".to_owned());
            }
        }
    }
    for code in [
        "valid",
        "broken-chain",
        "wrong-signer",
        "order-mismatch",
        "not-now",
        "ended",
        "bad-ack",
        "bad-link",
    ] {
        assert!(codes.contains(code), "no relationship vector for {code}");
    }
}
