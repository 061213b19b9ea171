//! Arbitrary bytes as the service protocols' streams, through the node's own codecs
//! ([`vrm::node::network`]). The first byte picks what is read:
//! 0. a mailbox request, decoded and served as a service node serves it (a store where the
//!    queue of the service vectors' token is open, so the vectors' deposit is stored);
//! 1. a mailbox response, as a vendor or a queue's owner reads it;
//! 2. a pushed mailbox item, as the owner reads it, and its sealed bytes opened with the
//!    vectors' reply key;
//! 3. an opened offer, handled as the owner's node handles what it opens (a store holding
//!    the vectors' `intent-full` as its own, so the vectors' offer is stored);
//! 4. a light push request, 5. a light push response;
//! 6. a filter subscription, served as a service node serves it, 7. its answer;
//! 8. a catch-up request, served as a service node carrying every shard serves it; 9. a
//!    catch-up answer, taken by a node in the middle of a catch-up (listed cursors and
//!    fetched envelopes checked, envelopes handled as gossip);
//! 10. a peer-exchange request, served as a service node serves it; 11. its answer, taken
//!    as a light node takes it (the records it would dial parsed).
//!
//! Whatever decodes must encode back to bytes that decode to the same thing.
#![no_main]

use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use libp2p::request_response::Codec;
use libp2p::{PeerId, StreamProtocol};
use vrm::config::MailboxConfig;
use vrm::node::Stats;
use vrm::node::ingest;
use vrm::node::catch_up::{CatchUp, CatchUpService};
use vrm::node::filter::FilterService;
use vrm::node::mailbox::MailboxService;
use vrm::node::peer_exchange;
use vrm::node::network::{
    catch_up_codec, filter_codec, light_push_codec, mailbox_codec, mailbox_push_codec,
    peer_exchange_codec,
};
use vrm::proto::sealed::{OFFER_INFO, ReplyKey};
use vrm::proto::service::{
    CATCH_UP_PROTOCOL, FILTER_PROTOCOL, LIGHT_PUSH_PROTOCOL, MAILBOX_PROTOCOL,
    MAILBOX_PUSH_PROTOCOL, MAX_EXCHANGED, PEERS_PROTOCOL,
};
use vrm::proto::{Payload, decode_and_check};
use vrm::store::Store;
use vrm::store::mailbox::{MailboxLimits, QueueClaim};
use vrm_fuzz::{NOW, vector};

struct Node {
    store: Store,
    stats: Stats,
    mailbox: Mutex<MailboxService>,
    filter: Mutex<FilterService>,
    catch_up: Mutex<CatchUpService>,
    /// A vendor of books that carries every shard.
    scope: ingest::Scope,
    peer: PeerId,
    key: ReplyKey,
}

static NODE: LazyLock<Node> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("vrm-fuzz-service-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir, 8 << 20).expect("store opens");
    let (envelope, payload) = decode_and_check(vector("intent-full.json"), NOW).expect("valid");
    let Payload::Intent(intent) = payload else {
        panic!("intent-full.json holds an intent")
    };
    store.cast(&envelope, &intent, NOW).expect("cast");
    // The queue of the service vectors' token, open.
    let claim = QueueClaim {
        queue: vrm::proto::service::queue_of(&[0x66; 32]),
        expires: NOW + 86_400,
        ack: Vec::new(),
    };
    store
        .mailbox_fetch(&[claim], NOW, &MailboxLimits::default(), 16)
        .expect("store")
        .expect("opens");
    Node {
        store,
        stats: Stats::default(),
        mailbox: Mutex::new(MailboxService::new(&MailboxConfig::default())),
        filter: Mutex::new(FilterService::default()),
        catch_up: Mutex::new(CatchUpService::new((0..vrm::proto::SHARDS).collect())),
        scope: ingest::Scope {
            served: vec!["books".into()],
            carried: (0..vrm::proto::SHARDS).collect(),
        },
        peer: PeerId::random(),
        key: ReplyKey::derive(&[0x55; 32]),
    }
});

/// Reads one message with `read`, writes it back with `write`, and reads that again: the
/// same message.
macro_rules! round_trip {
    ($codec:expr, $protocol:expr, $read:ident, $write:ident, $stream:expr) => {{
        let protocol = StreamProtocol::new($protocol);
        let mut codec = $codec;
        match block_on(codec.$read(&protocol, &mut $stream)) {
            Ok(message) => {
                let mut bytes = Vec::new();
                block_on(codec.$write(&protocol, &mut bytes, message.clone()))
                    .expect("a decoded message encodes");
                let back = block_on(codec.$read(&protocol, &mut bytes.as_slice()))
                    .expect("an encoded message decodes");
                assert_eq!(back, message);
                Some(message)
            }
            Err(_) => None,
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, mut stream)) = data.split_first() else {
        return;
    };
    let node = &*NODE;
    match mode % 12 {
        0 => {
            if let Some(request) =
                round_trip!(mailbox_codec(), MAILBOX_PROTOCOL, read_request, write_request, stream)
            {
                let mut mailbox = node.mailbox.lock().unwrap();
                let (response, _) = mailbox.request(
                    &node.store,
                    &node.stats,
                    &node.peer,
                    request,
                    NOW,
                    Instant::now(),
                );
                let mut bytes = Vec::new();
                let protocol = StreamProtocol::new(MAILBOX_PROTOCOL);
                block_on(mailbox_codec().write_response(&protocol, &mut bytes, response))
                    .expect("an answer encodes");
            }
        }
        1 => {
            round_trip!(mailbox_codec(), MAILBOX_PROTOCOL, read_response, write_response, stream);
        }
        2 => {
            if let Some(item) = round_trip!(
                mailbox_push_codec(),
                MAILBOX_PUSH_PROTOCOL,
                read_request,
                write_request,
                stream
            ) {
                let _ = node.key.open(OFFER_INFO, &item.queue, &item.sealed);
            }
        }
        3 => {
            let _ = ingest::reply(&node.store, stream, NOW);
        }
        4 => {
            round_trip!(
                light_push_codec(),
                LIGHT_PUSH_PROTOCOL,
                read_request,
                write_request,
                stream
            );
        }
        5 => {
            round_trip!(
                light_push_codec(),
                LIGHT_PUSH_PROTOCOL,
                read_response,
                write_response,
                stream
            );
        }
        6 => {
            if let Some(request) =
                round_trip!(filter_codec(), FILTER_PROTOCOL, read_request, write_request, stream)
            {
                let mut filter = node.filter.lock().unwrap();
                let response = filter.subscribe(PeerId::random(), request, &node.stats);
                let mut bytes = Vec::new();
                let protocol = StreamProtocol::new(FILTER_PROTOCOL);
                block_on(filter_codec().write_response(&protocol, &mut bytes, response))
                    .expect("an answer encodes");
            }
        }
        7 => {
            round_trip!(filter_codec(), FILTER_PROTOCOL, read_response, write_response, stream);
        }
        8 => {
            if let Some(request) = round_trip!(
                catch_up_codec(),
                CATCH_UP_PROTOCOL,
                read_request,
                write_request,
                stream
            ) {
                let mut service = node.catch_up.lock().unwrap();
                let response =
                    service.serve(&node.store, &node.stats, &node.peer, request, NOW, Instant::now());
                let mut bytes = Vec::new();
                let protocol = StreamProtocol::new(CATCH_UP_PROTOCOL);
                block_on(catch_up_codec().write_response(&protocol, &mut bytes, response))
                    .expect("an answer encodes");
            }
        }
        10 => {
            if let Some(request) = round_trip!(
                peer_exchange_codec(),
                PEERS_PROTOCOL,
                read_request,
                write_request,
                stream
            ) {
                let connected = vec![(PeerId::random(), "/ip4/192.0.2.7/tcp/4470".parse().unwrap())];
                let mut exchange = peer_exchange::PeerExchange::default();
                let vendors = std::collections::HashSet::new();
                let response =
                    exchange.serve(&node.peer, &request, connected, &vendors, Instant::now());
                let mut bytes = Vec::new();
                let protocol = StreamProtocol::new(PEERS_PROTOCOL);
                block_on(peer_exchange_codec().write_response(&protocol, &mut bytes, response))
                    .expect("an answer encodes");
            }
        }
        11 => {
            if let Some(response) = round_trip!(
                peer_exchange_codec(),
                PEERS_PROTOCOL,
                read_response,
                write_response,
                stream
            ) {
                let dial = peer_exchange::to_dial(response, MAX_EXCHANGED, &node.peer, |_| false);
                assert!(dial.len() <= MAX_EXCHANGED);
            }
        }
        9 => {
            if let Some(response) = round_trip!(
                catch_up_codec(),
                CATCH_UP_PROTOCOL,
                read_response,
                write_response,
                stream
            ) {
                // A session that listed and asked for the first listed id, then this answer.
                let shard = vrm::proto::shard_of("books");
                let mut client = CatchUp::new(&node.scope);
                let peer = PeerId::random();
                client.joined(peer, shard, NOW);
                let _ = client.answered(
                    &node.store,
                    &node.scope,
                    &node.stats,
                    peer,
                    shard,
                    Ok(response),
                    NOW,
                );
            }
        }
        _ => unreachable!("mode % 12"),
    }
});
