//! Catalog matching, rule by rule: what a vendor offers for an intent, and why it offers
//! nothing.

use ed25519_dalek::SigningKey;
use vrm::config::VendorConfig;
use vrm::proto::*;
use vrm::vendor_role::catalog::{Catalog, NoMatch};
use vrm::vendor_role::{NoOffer, Seller, answer};

/// 2027-01-15, 08:00 UTC.
const NOW: u64 = 1_800_000_000;

fn intent(category: &str, sub: Option<&str>, text: &str) -> Intent {
    let mut seed = [4u8; 32];
    let peer = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .unwrap()
        .public()
        .to_peer_id();
    Intent {
        id: [1; 16].into(),
        category: category.into(),
        subcategory: sub.map(Into::into),
        text: text.into(),
        constraints: Constraints::default(),
        terms: vec![],
        created: NOW,
        expires: NOW + 86_400,
        reply_to: ReplyTo::new(
            &peer,
            &"/ip4/127.0.0.1/tcp/9".parse().unwrap(),
            [7; 16],
            [9; 32],
        ),
        group: None,
    }
}

fn ceiling(intent: &mut Intent, amount: &str, currency: &str) {
    intent.constraints.max_price = Some(Price::parse(amount, currency).unwrap());
}

fn catalog(text: &str) -> Catalog {
    Catalog::parse(text, "test").unwrap()
}

const ROOMS: &str = r#"
[[item]]
category = "travel"
subcategory = "lodging"
title = "Double room"
keywords = ["double", "quiet"]
price = "90.00"
currency = "EUR"
min_price = "75.00"
places = ["Lisbon", "Porto"]
lead_time_days = 2

[[item]]
category = "travel"
subcategory = "lodging"
title = "Dorm bed"
keywords = ["hostel", "cheap"]
price = "25.00"
currency = "EUR"
discount = { min_quantity = 4, percent = 20 }
stock = 6

[[item]]
category = "travel"
subcategory = "flights"
title = "Flight to Lisbon"
price = "120.00"
currency = "USD"
"#;

fn title(result: Result<vrm::vendor_role::catalog::Match, NoMatch>) -> String {
    result
        .map(|m| m.item.title)
        .unwrap_or_else(|e| format!("no: {e:?}"))
}

#[test]
fn category_must_match() {
    assert_eq!(
        catalog(ROOMS).best_match(&intent("books", None, "x"), NOW),
        Err(NoMatch::Category)
    );
}

#[test]
fn subcategory_filters_and_an_open_subcategory_matches_all() {
    let cat = catalog(ROOMS);
    let mut flights = intent("travel", Some("flights"), "to Lisbon");
    ceiling(&mut flights, "500", "USD");
    assert_eq!(title(cat.best_match(&flights, NOW)), "Flight to Lisbon");
    let mut trains = intent("travel", Some("trains"), "to Porto");
    ceiling(&mut trains, "500", "EUR");
    assert_eq!(cat.best_match(&trains, NOW), Err(NoMatch::Subcategory));
    // No subcategory in the intent: every travel item competes.
    let any = intent("travel", None, "a quiet double");
    assert_eq!(title(cat.best_match(&any, NOW)), "Double room");
}

#[test]
fn keywords_rank_then_the_cheapest_wins() {
    let cat = catalog(ROOMS);
    let lodging = |text| intent("travel", Some("lodging"), text);
    assert_eq!(
        title(cat.best_match(&lodging("a quiet double please"), NOW)),
        "Double room"
    );
    assert_eq!(
        title(cat.best_match(&lodging("cheap hostel"), NOW)),
        "Dorm bed"
    );
    // No keyword at all: the cheapest.
    assert_eq!(
        title(cat.best_match(&lodging("somewhere to sleep"), NOW)),
        "Dorm bed"
    );
}

#[test]
fn currency_mismatch_is_never_converted() {
    let mut flights = intent("travel", Some("flights"), "to Lisbon");
    ceiling(&mut flights, "500", "EUR");
    assert_eq!(
        catalog(ROOMS).best_match(&flights, NOW),
        Err(NoMatch::Currency)
    );
}

#[test]
fn over_the_ceiling_unless_the_minimum_price_meets_it() {
    let cat = catalog(ROOMS);
    let mut double = intent("travel", Some("lodging"), "quiet double");
    ceiling(&mut double, "80", "EUR");
    let met = cat.best_match(&double, NOW).unwrap();
    assert_eq!(
        (met.item.title.as_str(), met.item.price.amount),
        ("Double room", 8_000)
    );
    ceiling(&mut double, "20", "EUR");
    assert_eq!(cat.best_match(&double, NOW), Err(NoMatch::Price));
}

#[test]
fn quantity_discount_and_stock() {
    let cat = catalog(ROOMS);
    let mut beds = intent("travel", Some("lodging"), "cheap hostel");
    beds.constraints.quantity = Some(4);
    let found = cat.best_match(&beds, NOW).unwrap();
    assert_eq!((found.item.price.amount, found.item.quantity), (2_000, 4));
    beds.constraints.quantity = Some(7);
    // The dorm lacks stock; the double room still fits (no stock limit).
    assert_eq!(title(cat.best_match(&beds, NOW)), "Double room");
    ceiling(&mut beds, "200", "EUR");
    assert_eq!(cat.best_match(&beds, NOW), Err(NoMatch::Price));
}

#[test]
fn place_and_lead_time() {
    let cat = catalog(ROOMS);
    let mut double = intent("travel", Some("lodging"), "quiet double");
    double.constraints.place = Some("lisbon".into());
    assert_eq!(title(cat.best_match(&double, NOW)), "Double room");
    double.constraints.place = Some("Faro".into());
    assert_eq!(
        title(cat.best_match(&double, NOW)),
        "Dorm bed",
        "the dorm serves anywhere"
    );
    ceiling(&mut double, "10", "EUR");
    // Closest miss: the double room failed on place, the dorm on price.
    assert_eq!(cat.best_match(&double, NOW), Err(NoMatch::Price));

    // Only the double room has a lead time (2 days).
    let cat = catalog(ROOMS.split("\n\n").next().unwrap());
    let mut soon = intent("travel", Some("lodging"), "quiet double");
    ceiling(&mut soon, "100", "EUR");
    soon.constraints.place = Some("Porto".into());
    soon.constraints.dates = Some(DateRange {
        from: "2027-01-16".into(),
        to: "2027-01-18".into(),
    });
    assert_eq!(
        cat.best_match(&soon, NOW),
        Err(NoMatch::LeadTime),
        "2 days' lead time, 1 day ahead"
    );
    soon.constraints.dates = Some(DateRange {
        from: "2027-01-17".into(),
        to: "2027-01-18".into(),
    });
    assert_eq!(title(cat.best_match(&soon, NOW)), "Double room");
}

#[test]
fn a_required_term_the_vendor_refuses_means_no_offer() {
    let vendor = VendorConfig {
        name: "v".into(),
        categories: vec!["travel".into()],
        contact: String::new(),
        accepted_terms: vec!["no-tracking".into()],
        ..VendorConfig::default()
    };
    let seller = Seller {
        key: SigningKey::from_bytes(&[6; 32]),
        inbox: None,
    };
    let persona = SigningKey::from_bytes(&[7; 32]);
    let mut wants = intent("travel", Some("lodging"), "quiet double");
    wants.terms = vec![
        Term {
            id: "no-tracking".into(),
            required: true,
        },
        Term {
            id: "free-cancellation".into(),
            required: false,
        },
    ];
    let env = Envelope::seal(&wants, &persona);
    let offer = answer(&vendor, &catalog(ROOMS), &seller, &env, &wants, NOW).unwrap();
    let body: Offer = offer.open().unwrap();
    assert_eq!(
        body.accepted_terms,
        vec!["no-tracking".to_string()],
        "only the terms it accepts"
    );
    wants.terms[1].required = true;
    let env = Envelope::seal(&wants, &persona);
    assert_eq!(
        answer(&vendor, &catalog(ROOMS), &seller, &env, &wants, NOW).unwrap_err(),
        NoOffer::RequiredTermRefused("free-cancellation".into())
    );
}

#[test]
fn bad_catalogs_say_which_item_is_wrong() {
    for (text, needle) in [
        (
            "[[item]]\ncategory = \"spaceships\"\ntitle = \"X\"\nprice = \"1\"\ncurrency = \"EUR\"\n",
            "spaceships",
        ),
        (
            "[[item]]\ncategory = \"books\"\ntitle = \"X\"\nprice = \"1.999\"\ncurrency = \"EUR\"\n",
            "bad price",
        ),
        (
            "[[item]]\ncategory = \"books\"\ntitle = \"X\"\nprice = \"1\"\ncurrency = \"EUR\"\nmin_price = \"2\"\n",
            "min_price",
        ),
        (
            "[[item]]\ncategory = \"books\"\ntitle = \"X\"\nprice = \"1\"\ncurrency = \"EUR\"\ncolour = \"red\"\n",
            "colour",
        ),
    ] {
        let err = Catalog::parse(text, "c.toml").unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
}
