//! Arbitrary bytes as a stream of the direct protocol, through the node's own codec
//! ([`vrm::node::network::direct_codec`]). The first byte picks the side: even, a request
//! as a person's node receives it, decoded and then handled as the node handles it (a store
//! holding one intent of its own, the vectors' `intent-full`, so the vectors' offer goes all
//! the way to being stored); odd, a response as a vendor's node receives it. Whatever
//! decodes must encode back to bytes that decode to the same thing.
#![no_main]

use std::sync::LazyLock;

use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use libp2p::request_response::Codec;
use libp2p::{PeerId, StreamProtocol};
use vrm::node::Stats;
use vrm::node::direct::Direct;
use vrm::node::network::{DirectResponse, direct_codec};
use vrm::proto::{DIRECT_PROTOCOL, Payload, decode_and_check};
use vrm::store::Store;
use vrm_fuzz::{NOW, vector};

struct Node {
    store: Store,
    stats: Stats,
    direct: Direct<u64>,
    peer: PeerId,
}

static NODE: LazyLock<Node> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("vrm-fuzz-direct-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir, 8 << 20).expect("store opens");
    let (envelope, payload) = decode_and_check(vector("intent-full.json"), NOW).expect("valid");
    let Payload::Intent(intent) = payload else {
        panic!("intent-full.json holds an intent")
    };
    store.cast(&envelope, &intent, NOW).expect("cast");
    Node {
        store,
        stats: Stats::default(),
        direct: Direct::default(),
        peer: PeerId::random(),
    }
});

const PROTOCOL: StreamProtocol = StreamProtocol::new(DIRECT_PROTOCOL);

fn encoded_response(response: &DirectResponse) -> Vec<u8> {
    let mut out = Vec::new();
    block_on(direct_codec().write_response(&PROTOCOL, &mut out, response.clone()))
        .expect("a response encodes");
    out
}

fn same(a: &DirectResponse, b: &DirectResponse) -> bool {
    a.ok == b.ok && a.error == b.error
}

fn response_round_trips(response: &DirectResponse) {
    let bytes = encoded_response(response);
    let back = block_on(direct_codec().read_response(&PROTOCOL, &mut bytes.as_slice()))
        .expect("an encoded response decodes");
    assert!(same(&back, response), "{response:?} came back as {back:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((side, mut stream)) = data.split_first() else {
        return;
    };
    let mut codec = direct_codec();
    if side % 2 == 0 {
        let Ok(request) = block_on(codec.read_request(&PROTOCOL, &mut stream)) else {
            return;
        };
        let mut bytes = Vec::new();
        block_on(codec.write_request(&PROTOCOL, &mut bytes, request.clone()))
            .expect("a request encodes");
        let back = block_on(codec.read_request(&PROTOCOL, &mut bytes.as_slice()))
            .expect("an encoded request decodes");
        assert_eq!(back.0, request.0);
        let node = &*NODE;
        let (response, _) =
            node.direct
                .request(&node.store, &node.stats, &node.peer, &request.0, NOW);
        response_round_trips(&response);
    } else if let Ok(response) = block_on(codec.read_response(&PROTOCOL, &mut stream)) {
        response_round_trips(&response);
    }
});
