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

/// The batch path a node uses for gossip reaches the same verdict on every vector as the
/// one-by-one path, with all vectors verified together in one batch.
#[test]
fn batch_verification_agrees_with_single_on_every_vector() {
    let all = vectors();
    let inputs: Vec<(Vec<u8>, u64)> = all
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
    for (((name, _), (bytes, now)), failure) in all.iter().zip(&inputs).zip(failures) {
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

/// The batch-accept path on valid vectors: with only envelopes whose signatures hold, the
/// batch equation holds and every envelope is accepted by the batch itself (with a bad one
/// among them, as above, the batch fails and each is verified alone, so that test never
/// reaches this path). Each must come out as single strict verification gives it.
#[test]
fn valid_vectors_pass_as_one_batch_as_they_do_alone() {
    let wires: Vec<(String, Vec<u8>)> = vectors()
        .into_iter()
        .filter_map(|(name, v)| {
            let bytes = hex::decode(v["envelope_hex"].as_str().expect("hex")).expect("hex");
            let signature_holds = vrm::proto::Envelope::decode(&bytes).is_ok();
            signature_holds.then_some((name, bytes))
        })
        .collect();
    assert!(wires.len() >= 8, "only {} vectors verify", wires.len());
    let parse = |bytes: &[u8]| vrm::proto::Envelope::parse(bytes).expect("parses");
    for round in 0..wires.len() {
        // Every rotation, so each vector sits at every position of the batch once.
        let mut batch: Vec<&(String, Vec<u8>)> = wires.iter().collect();
        batch.rotate_left(round);
        let results = vrm::proto::batch::verify_all(batch.iter().map(|(_, b)| parse(b)).collect());
        for ((name, bytes), result) in batch.iter().zip(results) {
            let single = vrm::proto::Envelope::decode(bytes).expect("verifies alone");
            let batched = result.unwrap_or_else(|e| panic!("{name}: refused in a batch: {e}"));
            assert_eq!(batched.id(), single.id(), "{name}");
            assert_eq!(batched.body_bytes(), single.body_bytes(), "{name}");
            assert_eq!(batched.signer(), single.signer(), "{name}");
        }
    }
}
