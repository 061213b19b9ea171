//! Writes the protocol test vectors to `proto/vectors/`.
//!
//! Run once when the protocol changes: `cargo run --example make_vectors`. The test suite
//! only reads the files (`tests/vectors.rs`); it never regenerates them, so a change in the
//! code that alters the wire format fails the tests instead of silently rewriting them.
//! Keys come from fixed seeds and times are fixed, so the output is reproducible.

use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;
use vrm::proto::envelope::{VERSION, encode_body, encode_wire, signing_input};
use vrm::proto::json::body_to_json;
use vrm::proto::*;

const CREATED: u64 = 1_800_000_000;
const NOW: u64 = CREATED + 60;

fn persona() -> SigningKey {
    SigningKey::from_bytes(&[0x11; 32])
}

fn vendor() -> SigningKey {
    SigningKey::from_bytes(&[0x22; 32])
}

/// The node a vendor profile names.
fn node_address() -> NodeAddress {
    let addr: libp2p::Multiaddr = "/ip4/192.0.2.7/udp/4470/quic-v1"
        .parse()
        .expect("valid addr");
    NodeAddress {
        peer: mailbox_peer().to_bytes().into(),
        addrs: vec![addr.to_vec().into()],
    }
}

fn mailbox_peer() -> libp2p::PeerId {
    let mut seed = [0x33u8; 32];
    libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .expect("valid seed")
        .public()
        .to_peer_id()
}

/// An intent's reply path: a mailbox, a queue, and the public key of the reply key pair
/// derived from 32 bytes of 0x55 (the sealed-offer vector opens with it).
fn reply_to() -> ReplyTo {
    let addr: libp2p::Multiaddr = "/ip4/192.0.2.7/udp/4470/quic-v1"
        .parse()
        .expect("valid addr");
    let key = vrm::proto::sealed::ReplyKey::derive(&[0x55; 32]);
    ReplyTo::new(&mailbox_peer(), &addr, [0x44; 16], key.public())
}

fn minimal_intent() -> Intent {
    Intent {
        id: [0xa1; 16].into(),
        category: "books".into(),
        subcategory: None,
        text: "A used copy of The Left Hand of Darkness".into(),
        constraints: Constraints::default(),
        terms: vec![],
        created: CREATED,
        expires: CREATED + 7 * 86_400,
        reply_to: reply_to(),
        group: None,
    }
}

fn full_intent() -> Intent {
    Intent {
        id: [0xa2; 16].into(),
        category: "travel".into(),
        subcategory: Some("lodging".into()),
        text: "2 nights in Lisbon, quiet room".into(),
        constraints: Constraints {
            max_price: Some(Price {
                amount: 30_000,
                currency: "EUR".into(),
            }),
            place: Some("Lisbon".into()),
            dates: Some(DateRange {
                from: "2027-01-12".into(),
                to: "2027-01-14".into(),
            }),
            quantity: Some(1),
        },
        terms: vec![
            Term {
                id: "no-tracking".into(),
                required: true,
            },
            Term {
                id: "free-cancellation".into(),
                required: false,
            },
        ],
        created: CREATED,
        expires: CREATED + 86_400,
        reply_to: reply_to(),
        group: None,
    }
}

fn offer(vendor_key: [u8; 32]) -> Offer {
    Offer {
        intent: [0xa2; 16].into(),
        persona: persona().verifying_key().to_bytes().into(),
        vendor: vendor_key.into(),
        items: vec![OfferItem {
            title: "Double room, courtyard side".into(),
            price: Price {
                amount: 14_000,
                currency: "EUR".into(),
            },
            quantity: 2,
            sku: Some("DBL-C".into()),
        }],
        text: "Breakfast included.".into(),
        created: CREATED,
        valid_until: CREATED + 86_400,
        accepted_terms: vec!["no-tracking".into()],
        inbox: None,
        group: None,
    }
}

fn profile() -> VendorProfile {
    VendorProfile {
        name: "Casa do Pátio".into(),
        categories: vec!["travel".into()],
        contact: "https://casa.example".into(),
        accepted_terms: vec!["no-tracking".into(), "no-resale".into()],
        created: CREATED,
        reply_to: Some(node_address()),
    }
}

struct Vectors {
    dir: std::path::PathBuf,
}

impl Vectors {
    fn valid(&self, name: &str, description: &str, envelope: &Envelope) {
        let value = json!({
            "description": description,
            "kind": envelope.kind().as_str(),
            "envelope_hex": hex::encode(envelope.as_bytes()),
            "public_key_hex": hex::encode(envelope.signer().as_bytes()),
            "now": NOW,
            "valid": true,
            "body": body_to_json(envelope.body_bytes()).expect("body converts"),
            "id_hex": envelope.id().to_hex(),
        });
        self.write(name, value);
    }

    fn invalid(
        &self,
        name: &str,
        description: &str,
        kind: &str,
        bytes: &[u8],
        key: &SigningKey,
        now: u64,
    ) {
        let error = match decode_and_check(bytes, now) {
            Err(e) => e.code(),
            Ok(_) => panic!("vector {name} is meant to be invalid but passes"),
        };
        let value = json!({
            "description": description,
            "kind": kind,
            "envelope_hex": hex::encode(bytes),
            "public_key_hex": hex::encode(key.verifying_key().as_bytes()),
            "now": now,
            "valid": false,
            "error": error,
        });
        self.write(name, value);
    }

    fn write(&self, name: &str, value: serde_json::Value) {
        let path = self.dir.join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(&value).expect("json") + "\n";
        std::fs::write(&path, text).expect("write vector");
        println!("wrote {}", path.display());
    }
}

/// Signs `body` as `sign_kind` but labels the envelope `wire_kind`, with version `v`.
fn forge<B: serde::Serialize>(
    v: u64,
    wire_kind: &str,
    sign_kind: &str,
    body: &B,
    key: &SigningKey,
) -> Vec<u8> {
    let body = encode_body(body);
    let sig = key.sign(&signing_input(sign_kind, &body));
    encode_wire(
        v,
        wire_kind,
        &body,
        key.verifying_key().as_bytes(),
        &sig.to_bytes(),
    )
}

/// The vectors of the service protocols (`proto/service-vectors.json`): the sealed offer an
/// independent implementation must open, the queue id of a token, and each request and
/// response of light push, mailboxes, filter subscriptions and catch-up in CBOR.
fn service_vectors() {
    use rand::SeedableRng;
    use vrm::proto::sealed::{OFFER_INFO, ReplyKey, seal_with_rng};
    use vrm::proto::service::*;

    let ikm = [0x55u8; 32];
    let key = ReplyKey::derive(&ikm);
    let queue = [0x44u8; 16];
    let offer = Envelope::seal(&offer(vendor().verifying_key().to_bytes()), &vendor());
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let sealed = seal_with_rng(
        &mut rng,
        &key.public(),
        OFFER_INFO,
        &queue,
        offer.as_bytes(),
    )
    .expect("seals");
    let token = [0x66u8; 32];
    fn cbor<T: serde::Serialize>(value: &T) -> String {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes).expect("cbor");
        hex::encode(bytes)
    }
    let item = MailboxItem {
        queue: queue.to_vec().into(),
        id: item_id(&sealed).to_vec().into(),
        sealed: sealed.clone().into(),
    };
    // A catch-up of the books shard: after a cursor of a minute before `CREATED`, the
    // minimal intent, which arrived at `CREATED`.
    let minimal = Envelope::seal(&minimal_intent(), &persona());
    let mut cursor = [0u8; CURSOR_BYTES];
    cursor[..8].copy_from_slice(&(CREATED - 60).to_be_bytes());
    cursor[8..].copy_from_slice(&[0x77; 32]);
    let mut listed = [0u8; CURSOR_BYTES];
    listed[..8].copy_from_slice(&CREATED.to_be_bytes());
    listed[8..].copy_from_slice(&minimal.id().0);
    let messages = json!([
        {"name": "light-push-request", "cbor_hex": cbor(&LightPushRequest {
            topic: intent_topic("travel"),
            envelope: Envelope::seal(&full_intent(), &persona()).as_bytes().to_vec().into(),
        })},
        {"name": "light-push-published", "cbor_hex": cbor(&LightPushResponse::Published { peers: 6 })},
        {"name": "light-push-refused", "cbor_hex": cbor(&LightPushResponse::Refused { code: RATE_LIMITED.into() })},
        {"name": "mailbox-deposit", "cbor_hex": cbor(&MailboxRequest::Deposit {
            queue: queue.to_vec().into(),
            sealed: sealed.clone().into(),
        })},
        {"name": "mailbox-fetch", "cbor_hex": cbor(&MailboxRequest::Fetch { claims: vec![Claim {
            token: token.to_vec().into(),
            expires: CREATED + 86_400,
            ack: vec![item_id(&sealed).to_vec().into()],
        }]})},
        {"name": "mailbox-deposited", "cbor_hex": cbor(&MailboxResponse::Deposited)},
        {"name": "mailbox-items", "cbor_hex": cbor(&MailboxResponse::Items { items: vec![item.clone()], more: false })},
        {"name": "mailbox-refused", "cbor_hex": cbor(&MailboxResponse::Refused { code: "unknown-queue".into() })},
        {"name": "mailbox-push", "cbor_hex": cbor(&item)},
        {"name": "mailbox-push-answer", "cbor_hex": cbor(&PushAnswer { stored: true })},
        {"name": "filter-subscribe", "cbor_hex": cbor(&FilterRequest {
            topics: vec![intent_topic("travel"), intent_topic("books")],
        })},
        {"name": "filter-subscribed", "cbor_hex": cbor(&FilterResponse::Subscribed)},
        {"name": "filter-refused", "cbor_hex": cbor(&FilterResponse::Refused { code: TOO_MANY_SUBSCRIBERS.into() })},
        {"name": "filter-push", "cbor_hex": cbor(&FilterPush {
            topic: intent_topic("books"),
            envelope: Envelope::seal(&minimal_intent(), &persona()).as_bytes().to_vec().into(),
        })},
        {"name": "filter-push-answer", "cbor_hex": cbor(&PushAnswer { stored: true })},
        {"name": "catch-up-list", "cbor_hex": cbor(&CatchUpRequest::List {
            shard: shard_of("books"),
            after: cursor.to_vec().into(),
        })},
        {"name": "catch-up-fetch", "cbor_hex": cbor(&CatchUpRequest::Fetch {
            shard: shard_of("books"),
            ids: vec![minimal.id().0.to_vec().into()],
        })},
        {"name": "catch-up-listed", "cbor_hex": cbor(&CatchUpResponse::Listed {
            cursors: vec![listed.to_vec().into()],
            more: false,
        })},
        {"name": "catch-up-messages", "cbor_hex": cbor(&CatchUpResponse::Messages {
            envelopes: vec![minimal.as_bytes().to_vec().into()],
        })},
        {"name": "catch-up-refused", "cbor_hex": cbor(&CatchUpResponse::Refused { code: NOT_CARRIED.into() })},
        {"name": "peers-request", "cbor_hex": cbor(&PeersRequest { want: 4 })},
        {"name": "peers-answer", "cbor_hex": cbor(&PeersResponse::Peers { peers: vec![
            ServiceRecord {
                peer: mailbox_peer().to_bytes().into(),
                addr: "/ip4/192.0.2.7/tcp/4470".parse::<libp2p::Multiaddr>().expect("addr").to_vec().into(),
            },
        ]})},
        {"name": "peers-refused", "cbor_hex": cbor(&PeersResponse::Refused { code: RATE_LIMITED.into() })},
        {"name": "mailbox-forward", "cbor_hex": cbor(&MailboxRequest::Forward {
            mailbox: mailbox_peer().to_bytes().into(),
            addr: "/ip4/192.0.2.7/tcp/4470".parse::<libp2p::Multiaddr>().expect("addr").to_vec().into(),
            queue: queue.to_vec().into(),
            sealed: sealed.clone().into(),
        })},
        {"name": "mailbox-refused-unreachable", "cbor_hex": cbor(&MailboxResponse::Refused { code: UNREACHABLE.into() })},
    ]);
    let value = json!({
        "description": "Service protocol vectors (proto/README.md, \"Service protocols\"). sealed_offer: HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305; the reply key pair is DeriveKeyPair(ikm); sealed = enc || ciphertext; aad = the queue id; the plaintext is the offer vector's envelope.",
        "sealed_offer": {
            "ikm_hex": hex::encode(ikm),
            "public_key_hex": hex::encode(key.public()),
            "info": String::from_utf8_lossy(OFFER_INFO),
            "aad_hex": hex::encode(queue),
            "sealed_hex": hex::encode(&sealed),
            "plaintext_hex": hex::encode(offer.as_bytes()),
        },
        "queue_of": {"token_hex": hex::encode(token), "queue_hex": hex::encode(queue_of(&token))},
        "messages": messages,
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/service-vectors.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&value).expect("json") + "\n",
    )
    .expect("write vectors");
    println!("wrote {}", path.display());
}

/// The shard map (`proto/shard-vectors.json`): the shard and topic of each category of the
/// taxonomy, and of one that is not in it (the map is a function of the id alone).
fn shard_vectors() {
    let mut ids: Vec<String> = taxonomy::categories()
        .iter()
        .map(|c| c.id.clone())
        .collect();
    ids.push("not-yet-a-category".into());
    let categories: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| json!({"category": id, "shard": shard_of(id), "topic": intent_topic(id)}))
        .collect();
    let value = json!({
        "description": "Shard topics (proto/README.md, \"Network names\"): shard = SHA-256(\"vrm/2/shard\" || category id)[0] mod shards; topic = /vrm/2/shard/<shard>.",
        "shards": SHARDS,
        "categories": categories,
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/shard-vectors.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&value).expect("json") + "\n",
    )
    .expect("write vectors");
    println!("wrote {}", path.display());
}

/// One relationship's log under construction (`proto/relationship-vectors.json`).
struct Log {
    offer: Envelope,
    chain: relationship::Chain,
    entries: Vec<Envelope>,
}

fn rel_persona() -> SigningKey {
    SigningKey::from_bytes(&[0x44; 32])
}

impl Log {
    /// The accept of the `offer` vector, by a fresh relationship persona, its link signed
    /// for `link_vendor`.
    fn accept(link_vendor: [u8; 32]) -> Log {
        let offer = Envelope::seal(&offer(vendor().verifying_key().to_bytes()), &vendor());
        let rel = rel_persona().verifying_key().to_bytes();
        let link = persona_link(&rel, &link_vendor, &offer.id().0);
        let accept = Envelope::seal(
            &Accept {
                offer: offer.id().0.into(),
                intent: full_intent().id,
                intent_persona: persona().verifying_key().to_bytes().into(),
                persona: rel.into(),
                link: link.into(),
                reply_to: reply_to(),
                created: CREATED + 100,
            },
            &rel_persona(),
        );
        // An accept the rules refuse still needs a chain for its acknowledgements: a valid
        // one's (the file is refused at the accept before they are read).
        let chain = match relationship::Chain::start(&accept, &offer) {
            Ok((chain, _)) => chain,
            Err(_) => Log::accept(vendor().verifying_key().to_bytes()).chain,
        };
        Log {
            offer,
            chain,
            entries: vec![accept],
        }
    }

    /// Adds an entry made by `make` (given the relationship id, place and previous id);
    /// pushed on the chain only if the rules allow it.
    fn add(&mut self, make: impl Fn(IdBytes, u32, IdBytes) -> Envelope) -> &mut Log {
        let envelope = make(
            self.chain.rel.into(),
            self.chain.len,
            self.chain.last.into(),
        );
        if let Ok((_, _, state)) = self.chain.check(&envelope) {
            self.chain.push(&envelope, state);
        }
        self.entries.push(envelope);
        self
    }

    fn update(&mut self, status: Status, text: &str, key: &SigningKey) -> &mut Log {
        let key2 = key.clone();
        self.add(move |rel, seq, prev| {
            Envelope::seal(
                &OrderUpdate {
                    rel,
                    seq,
                    prev,
                    status: status.as_str().into(),
                    text: text.into(),
                    created: CREATED + 200 + u64::from(seq),
                },
                &key2,
            )
        })
    }

    fn order(&mut self, items: Vec<OfferItem>) -> &mut Log {
        self.add(move |rel, seq, prev| {
            Envelope::seal(
                &Order {
                    rel,
                    seq,
                    prev,
                    items: items.clone(),
                    text: String::new(),
                    created: CREATED + 150,
                },
                &vendor(),
            )
        })
    }

    fn message(&mut self, text: &str, key: &SigningKey) -> &mut Log {
        let key2 = key.clone();
        self.add(move |rel, seq, prev| {
            Envelope::seal(
                &Message {
                    rel,
                    seq,
                    prev,
                    text: text.into(),
                    created: CREATED + 200 + u64::from(seq),
                },
                &key2,
            )
        })
    }

    fn end(&mut self, key: &SigningKey) -> &mut Log {
        let key2 = key.clone();
        self.add(move |rel, seq, prev| {
            Envelope::seal(
                &RelationshipEnd {
                    rel,
                    seq,
                    prev,
                    text: "Thank you".into(),
                    created: CREATED + 300,
                },
                &key2,
            )
        })
    }

    fn agreement(&mut self, terms: &[&str]) -> &mut Log {
        let terms: Vec<String> = terms.iter().map(|t| t.to_string()).collect();
        self.add(move |rel, seq, prev| {
            Envelope::seal(
                &Agreement {
                    rel,
                    seq,
                    prev,
                    terms: terms.clone(),
                    created: CREATED + 140,
                },
                &vendor(),
            )
        })
    }

    /// A grant of email and postal address for delivery for 30 days, under no-tracking.
    fn grant(&mut self, key: &SigningKey) -> &mut Log {
        let key2 = key.clone();
        self.add(move |rel, seq, prev| {
            Envelope::seal(
                &Grant {
                    rel,
                    seq,
                    prev,
                    fields: vec!["email".into(), "postal-address".into()],
                    purpose: "delivery".into(),
                    expires: CREATED + 30 * 86_400,
                    terms: vec!["no-tracking".into()],
                    replaces: None,
                    created: CREATED + 250,
                },
                &key2,
            )
        })
    }

    /// The id of the last entry.
    fn last(&self) -> [u8; 32] {
        self.entries.last().expect("an accept at least").id().0
    }

    /// The vendor's receipt of grant `of`, restating it, then changed by `edit`.
    fn receipt(
        &mut self,
        of: [u8; 32],
        status: ReceiptStatus,
        edit: impl Fn(&mut Receipt),
    ) -> &mut Log {
        let grant = self.chain.grants.iter().find(|g| g.id == of).cloned();
        self.add(move |rel, seq, prev| {
            let mut body = Receipt {
                rel,
                seq,
                prev,
                of: of.into(),
                status: status.as_str().into(),
                fields: grant.as_ref().map(|g| g.fields.clone()).unwrap_or_default(),
                purpose: grant
                    .as_ref()
                    .map(|g| g.purpose.clone())
                    .unwrap_or_default(),
                expires: grant.as_ref().map_or(0, |g| g.expires),
                delete_by: grant.as_ref().map_or(0, |g| g.expires),
                terms: grant.as_ref().map(|g| g.terms.clone()).unwrap_or_default(),
                text: String::new(),
                created: CREATED + 260 + u64::from(seq),
            };
            edit(&mut body);
            Envelope::seal(&body, &vendor())
        })
    }

    /// A review token signed by `key`, naming `persona` and the log's order.
    fn token(&mut self, key: &SigningKey, persona: [u8; 32]) -> &mut Log {
        let (key2, order) = (key.clone(), self.chain.order.unwrap_or([0; 32]));
        self.add(move |rel, seq, prev| {
            Envelope::seal(
                &ReviewToken {
                    rel,
                    seq,
                    prev,
                    persona: persona.into(),
                    order: order.into(),
                    created: CREATED + 290,
                },
                &key2,
            )
        })
    }

    fn revoke(&mut self, grant: [u8; 32]) -> &mut Log {
        self.add(move |rel, seq, prev| {
            Envelope::seal(
                &Revoke {
                    rel,
                    seq,
                    prev,
                    grant: grant.into(),
                    created: CREATED + 280,
                },
                &rel_persona(),
            )
        })
    }

    /// The file, each entry acknowledged by the side that did not sign it (or by
    /// `ack_by` for all of them).
    fn file(&self, ack_by: Option<&SigningKey>) -> Vec<u8> {
        let records = self
            .entries
            .iter()
            .enumerate()
            .map(|(n, e)| {
                let other = match ack_by {
                    Some(key) => key.clone(),
                    None if e.signer().as_bytes() == &self.chain.persona => vendor(),
                    None => rel_persona(),
                };
                let ack = Envelope::seal(
                    &EntryAck {
                        rel: self.chain.rel.into(),
                        seq: n as u32,
                        entry: e.id().0.into(),
                        created: CREATED + 400,
                    },
                    &other,
                );
                relationship::LogRecord {
                    entry: e.as_bytes().to_vec().into(),
                    ack: Some(ack.as_bytes().to_vec().into()),
                }
            })
            .collect();
        relationship::LogFile {
            format: relationship::LOG_FORMAT.into(),
            offer: self.offer.as_bytes().to_vec().into(),
            entries: records,
        }
        .to_bytes()
    }
}

fn persona_link(persona: &[u8; 32], vendor: &[u8; 32], offer: &[u8; 32]) -> [u8; 64] {
    self::persona()
        .sign(&link_input(persona, vendor, offer))
        .to_bytes()
}

/// The relationship log vectors (`proto/relationship-vectors.json`): whole exported logs
/// (`proto/README.md`, "Relationships"), valid or refused at one entry with one code.
fn relationship_vectors() {
    let vendor_key = vendor().verifying_key().to_bytes();
    let items = offer(vendor_key).items;
    let whole = || {
        let mut log = Log::accept(vendor_key);
        log.order(items.clone())
            .update(Status::Agreed, "", &rel_persona())
            .message("Is breakfast included?", &rel_persona())
            .message("Yes, from 7 to 10.", &vendor())
            .update(Status::Shipped, "booking ref 4471", &vendor())
            .update(Status::Fulfilled, "", &vendor())
            .update(Status::Received, "", &rel_persona())
            .end(&vendor());
        log
    };
    let mut cases = vec![json!({
        "description": "A whole order: accept, order, agreed, a message each way, shipped, fulfilled, received, end; every entry acknowledged by the other side.",
        "log_hex": hex::encode(whole().file(None)),
    })];
    let mut flipped = whole().file(None);
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    cases.push(json!({"description": "The whole order with one byte in the middle changed.", "log_hex": hex::encode(flipped)}));
    let mut removed = whole();
    removed.entries.remove(3);
    cases.push(json!({"description": "The whole order with entry 3 (the person's message) removed.", "log_hex": hex::encode(removed.file(None))}));
    let mut wrong = Log::accept(vendor_key);
    wrong
        .order(items.clone())
        .update(Status::Agreed, "", &rel_persona())
        .update(Status::Shipped, "", &rel_persona());
    cases.push(json!({"description": "A shipment signed by the person.", "log_hex": hex::encode(wrong.file(None))}));
    let mut cheaper = items.clone();
    cheaper[0].price.amount -= 1;
    let mut mismatch = Log::accept(vendor_key);
    mismatch.order(cheaper);
    cases.push(json!({"description": "An order whose price is one cent off the offer's.", "log_hex": hex::encode(mismatch.file(None))}));
    let mut late = Log::accept(vendor_key);
    late.order(items.clone())
        .update(Status::Agreed, "", &rel_persona())
        .update(Status::Shipped, "", &vendor())
        .update(Status::Cancelled, "too late", &rel_persona());
    cases.push(json!({"description": "A cancel after the shipment.", "log_hex": hex::encode(late.file(None))}));
    let mut after = whole();
    after.message("One more thing", &rel_persona());
    cases.push(json!({"description": "A message after the end.", "log_hex": hex::encode(after.file(None))}));
    cases.push(json!({"description": "Every entry acknowledged by the vendor, its own too.", "log_hex": hex::encode(whole().file(Some(&vendor())))}));
    let data = || {
        let mut log = Log::accept(vendor_key);
        log.agreement(&["no-tracking"])
            .order(items.clone())
            .update(Status::Agreed, "", &rel_persona())
            .grant(&rel_persona());
        log
    };
    let mut whole_data = data();
    let granted = whole_data.last();
    whole_data
        .receipt(granted, ReceiptStatus::Held, |_| {})
        .revoke(granted)
        .receipt(granted, ReceiptStatus::Deleted, |r| {
            r.text = "revoked".into()
        });
    cases.push(json!({"description": "Data on the person's terms: the vendor's agreement, the order, agreed, a grant of email and postal address for delivery, the vendor's held receipt, the revocation, the deleted receipt.", "log_hex": hex::encode(whole_data.file(None))}));
    let mut vendor_grant = data();
    vendor_grant.grant(&vendor());
    cases.push(json!({"description": "A grant signed by the vendor.", "log_hex": hex::encode(vendor_grant.file(None))}));
    let mut short = data();
    let granted = short.last();
    short.receipt(granted, ReceiptStatus::Held, |r| {
        r.fields.pop();
    });
    cases.push(json!({"description": "A held receipt that leaves out one of the granted fields.", "log_hex": hex::encode(short.file(None))}));
    let mut untermed = data();
    let granted = untermed.last();
    untermed.receipt(granted, ReceiptStatus::Held, |r| r.terms.clear());
    cases.push(json!({"description": "A held receipt without the grant's term.", "log_hex": hex::encode(untermed.file(None))}));
    let mut stranger = data();
    stranger.revoke([0x77; 32]);
    cases.push(json!({"description": "A revocation of a grant the log does not hold.", "log_hex": hex::encode(stranger.file(None))}));
    let mut overreach = Log::accept(vendor_key);
    overreach.agreement(&["no-resale"]);
    cases.push(json!({"description": "An agreement to a term the offer did not accept.", "log_hex": hex::encode(overreach.file(None))}));
    let linked_elsewhere = Log::accept([0x55; 32]);
    cases.push(json!({"description": "An accept whose link the intent persona signed for another vendor.", "log_hex": hex::encode(linked_elsewhere.file(None))}));
    let persona_key = rel_persona().verifying_key().to_bytes();
    let agreed = || {
        let mut log = Log::accept(vendor_key);
        log.order(items.clone())
            .update(Status::Agreed, "", &rel_persona());
        log
    };
    let mut tokened = agreed();
    tokened
        .update(Status::Fulfilled, "", &vendor())
        .token(&vendor(), persona_key);
    cases.push(json!({"description": "Reviews and reputation: the order agreed, fulfilled, and the vendor's review token naming the log's persona and order.", "log_hex": hex::encode(tokened.file(None))}));
    let mut early = agreed();
    early.token(&vendor(), persona_key);
    cases.push(json!({"description": "A review token before the order was fulfilled or received.", "log_hex": hex::encode(early.file(None))}));
    let mut self_made = agreed();
    self_made
        .update(Status::Received, "", &rel_persona())
        .token(&rel_persona(), persona_key);
    cases.push(json!({"description": "A review token signed by the person.", "log_hex": hex::encode(self_made.file(None))}));
    let mut elsewhere = agreed();
    elsewhere
        .update(Status::Fulfilled, "", &vendor())
        .token(&vendor(), [0x66; 32]);
    cases.push(json!({"description": "A review token naming another persona.", "log_hex": hex::encode(elsewhere.file(None))}));
    let mut twice = tokened;
    twice.token(&vendor(), persona_key);
    cases.push(json!({"description": "A second review token in one log.", "log_hex": hex::encode(twice.file(None))}));
    for case in &mut cases {
        let bytes = hex::decode(case["log_hex"].as_str().expect("hex")).expect("hex");
        match relationship::verify_file(&bytes) {
            Ok(v) => {
                case["valid"] = json!(true);
                case["entries"] = json!(v.chain.len);
                case["acknowledged"] = json!(v.acknowledged);
                case["state"] = json!(v.chain.state);
            }
            Err(relationship::LogError::Entry { at, error }) => {
                case["valid"] = json!(false);
                case["at"] = json!(at);
                case["error"] = json!(error.code);
            }
            Err(relationship::LogError::NotALog(_)) => {
                case["valid"] = json!(false);
                case["error"] = json!("not-a-log");
            }
        }
    }
    let value = json!({
        "description": "Exported relationship logs (proto/README.md, \"Relationships\"), each valid (with its length, acknowledgements and final state) or refused at one entry with one rule code (\"not-a-log\": the file itself is not a canonical log). Keys: the vectors' persona signs the intent link, relationship persona 44…44 (seed), vendor 22…22 (seed).",
        "logs": cases,
    });
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/relationship-vectors.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&value).expect("json") + "\n",
    )
    .expect("write vectors");
    println!("wrote {}", path.display());
}

fn main() {
    service_vectors();
    shard_vectors();
    relationship_vectors();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/vectors");
    std::fs::create_dir_all(&dir).expect("create proto/vectors");
    let v = Vectors { dir };

    v.valid(
        "intent-minimal",
        "An intent with only the required fields.",
        &Envelope::seal(&minimal_intent(), &persona()),
    );
    v.valid(
        "intent-full",
        "An intent with subcategory, every constraint and two terms, one required.",
        &Envelope::seal(&full_intent(), &persona()),
    );
    v.valid(
        "intent-withdraw",
        "The caster withdraws intent a2a2...",
        &Envelope::seal(
            &IntentWithdraw {
                intent: [0xa2; 16].into(),
                created: CREATED + 30,
            },
            &persona(),
        ),
    );
    v.valid(
        "offer",
        "A vendor's offer answering intent-full: 2 nights at 140.00 EUR, accepting the required term.",
        &Envelope::seal(&offer(vendor().verifying_key().to_bytes()), &vendor()),
    );
    v.valid(
        "vendor-profile",
        "A vendor's profile for the directory topic.",
        &Envelope::seal(&profile(), &vendor()),
    );

    let good = Envelope::seal(&full_intent(), &persona());
    let mut bad_sig = good.as_bytes().to_vec();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x01;
    v.invalid(
        "bad-signature",
        "intent-full with the last byte of the signature flipped.",
        "intent",
        &bad_sig,
        &persona(),
        NOW,
    );
    v.invalid(
        "signature-for-other-kind",
        "An intent body signed with the signing input of kind \"offer\" but carried as kind \"intent\".",
        "intent",
        &forge(VERSION, "intent", "offer", &full_intent(), &persona()),
        &persona(),
        NOW,
    );
    let bytes = good.as_bytes();
    v.invalid(
        "truncated",
        "intent-full cut 10 bytes short.",
        "intent",
        &bytes[..bytes.len() - 10],
        &persona(),
        NOW,
    );
    let mut long = full_intent();
    long.text = "x".repeat(limits::MAX_STRING_BYTES + 1);
    v.invalid(
        "oversized-field",
        "An intent whose text is 4097 bytes, over the 4096-byte string limit of bodies.",
        "intent",
        Envelope::seal(&long, &persona()).as_bytes(),
        &persona(),
        NOW,
    );
    v.invalid(
        "expired-intent",
        "intent-full checked at a time after its expiry.",
        "intent",
        good.as_bytes(),
        &persona(),
        full_intent().expires + 1,
    );
    v.invalid(
        "unknown-version",
        "A correctly signed intent in an envelope with \"v\": 3.",
        "intent",
        &forge(3, "intent", "intent", &full_intent(), &persona()),
        &persona(),
        NOW,
    );
    v.invalid(
        "protocol-1-intent",
        "An envelope that says protocol version 1 (whose intents named the person's node): refused by its version, whatever its body.",
        "intent",
        &forge(1, "intent", "intent", &full_intent(), &persona()),
        &persona(),
        NOW,
    );
    v.invalid(
        "unknown-kind",
        "A correctly signed envelope of kind \"coupon\", which the protocol does not define.",
        "coupon",
        &forge(VERSION, "coupon", "coupon", &full_intent(), &persona()),
        &persona(),
        NOW,
    );
    let mut reordered: ciborium::Value = ciborium::from_reader(good.as_bytes()).expect("cbor");
    if let ciborium::Value::Map(entries) = &mut reordered {
        entries.reverse();
    }
    let mut non_canonical = Vec::new();
    ciborium::into_writer(&reordered, &mut non_canonical).expect("cbor");
    v.invalid(
        "non-canonical",
        "intent-full with the envelope keys in reverse order (valid CBOR, valid signature, not canonical).",
        "intent",
        &non_canonical,
        &persona(),
        NOW,
    );
    v.invalid(
        "offer-signer-mismatch",
        "An offer whose body names a vendor key other than its signer.",
        "offer",
        Envelope::seal(&offer([0x44; 32]), &vendor()).as_bytes(),
        &vendor(),
        NOW,
    );
    review_vectors(&v);
    let mut unknown_category = minimal_intent();
    unknown_category.category = "spaceships".into();
    v.invalid(
        "unknown-category",
        "An intent in a category that is not in categories.json.",
        "intent",
        Envelope::seal(&unknown_category, &persona()).as_bytes(),
        &persona(),
        NOW,
    );
}

/// A review token of `vendor_key` for an order to `persona` (as a vendor's node writes it
/// into the log).
fn review_token(vendor_key: &SigningKey, persona: &SigningKey) -> Vec<u8> {
    Envelope::seal(
        &ReviewToken {
            rel: [0x31; 32].into(),
            seq: 4,
            prev: [0x32; 32].into(),
            persona: persona.verifying_key().to_bytes().into(),
            order: [0x33; 32].into(),
            created: CREATED,
        },
        vendor_key,
    )
    .as_bytes()
    .to_vec()
}

/// The vectors of reviews and collective intents (`proto/README.md`, "Reviews and
/// reputation", "Collective intents").
fn review_vectors(v: &Vectors) {
    let reviewer = SigningKey::from_bytes(&[0x45; 32]);
    let other_vendor = SigningKey::from_bytes(&[0x23; 32]);
    let elsewhere = SigningKey::from_bytes(&[0x46; 32]);
    let link = history_input(
        &reviewer.verifying_key().to_bytes(),
        &vendor().verifying_key().to_bytes(),
    );
    let review = |token: Vec<u8>, history: Vec<HistoryItem>| Review {
        token: token.into(),
        rating: 4,
        text: "Arrived in two days, as described.".into(),
        history,
        created: CREATED + 30,
    };
    let shown = HistoryItem {
        token: review_token(&other_vendor, &elsewhere).into(),
        sig: elsewhere.sign(&link).to_bytes().into(),
    };
    v.valid(
        "review",
        "A review signed by the relationship persona 45…45 with the vendor's review token, and one order of the same person with vendor 23…23 shown as history.",
        &Envelope::seal(&review(review_token(&vendor(), &reviewer), vec![shown.clone()]), &reviewer),
    );
    let mut forged = review_token(&vendor(), &reviewer);
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    let invalid = |name: &str, description: &str, body: Review| {
        v.invalid(
            name,
            description,
            "review",
            Envelope::seal(&body, &reviewer).as_bytes(),
            &reviewer,
            NOW,
        );
    };
    invalid(
        "review-forged-token",
        "A review whose token's signature does not verify.",
        review(forged, Vec::new()),
    );
    invalid(
        "review-without-order",
        "A review whose token is not an envelope at all.",
        review(b"trust me".to_vec(), Vec::new()),
    );
    let order = Envelope::seal(
        &Order {
            rel: [0x31; 32].into(),
            seq: 1,
            prev: [0x31; 32].into(),
            items: offer(vendor().verifying_key().to_bytes()).items,
            text: String::new(),
            created: CREATED,
        },
        &vendor(),
    );
    invalid(
        "review-of-an-order-without-token",
        "A review proving its order with the vendor's order entry (of an order never fulfilled, e.g. cancelled) instead of a review token.",
        review(order.as_bytes().to_vec(), Vec::new()),
    );
    invalid(
        "review-other-persona",
        "A review signed by another key than the persona the token names.",
        review(review_token(&vendor(), &elsewhere), Vec::new()),
    );
    let unsigned = HistoryItem {
        sig: reviewer.sign(&link).to_bytes().into(),
        ..shown
    };
    invalid(
        "review-bad-history",
        "A review whose history item's link is signed by the reviewer, not by the persona of the token it shows.",
        review(review_token(&vendor(), &reviewer), vec![unsigned]),
    );
    let mut six = review(review_token(&vendor(), &reviewer), Vec::new());
    six.rating = 6;
    invalid("review-rating-6", "A review rated 6 of 5.", six);
    let member_of = |size: u32| Intent {
        group: Some(GroupTerms {
            nonce: [0x47; 16].into(),
            size,
        }),
        ..minimal_intent()
    };
    v.valid(
        "intent-group-member",
        "One member's intent of a collective intent for 12 (travels on /vrm/2/directory; group id = first 16 bytes of SHA-256 over \"vrm/2/group\" 00 and the shared fields).",
        &Envelope::seal(&member_of(12), &persona()),
    );
    v.invalid(
        "intent-group-of-one",
        "A collective intent looking for one member.",
        "intent",
        Envelope::seal(&member_of(1), &persona()).as_bytes(),
        &persona(),
        NOW,
    );
}
