//! The HTTP API over real HTTP: every endpoint, authentication, and clear 4xx answers to bad
//! input.

mod common;

use common::*;
use serde_json::{Value, json};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Sends a request; returns the status and the JSON body.
fn call(
    api: &TestApi,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, Value) {
    let url = format!("{}{path}", api.base);
    let auth = token.map(|t| format!("Bearer {t}"));
    let agent = agent();
    let response = match (method, body) {
        ("GET", _) => {
            let mut req = agent.get(&url);
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.call()
        }
        ("DELETE", _) => {
            let mut req = agent.delete(&url);
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.call()
        }
        (method, body) => {
            let req = match method {
                "PUT" => agent.put(&url),
                _ => agent.post(&url),
            };
            let mut req = req.header("Content-Type", "application/json");
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.send(body.unwrap_or("{}"))
        }
    };
    let mut response = response.unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn get(api: &TestApi, path: &str) -> (u16, Value) {
    tokio::task::block_in_place(|| call(api, "GET", path, None, Some(&api.token)))
}

fn post(api: &TestApi, path: &str, body: &str) -> (u16, Value) {
    tokio::task::block_in_place(|| call(api, "POST", path, Some(body), Some(&api.token)))
}

const PATHS: &[(&str, &str)] = &[
    ("GET", "/api/v1/status"),
    ("GET", "/api/v1/peers"),
    ("GET", "/api/v1/taxonomy"),
    ("GET", "/api/v1/intents"),
    ("POST", "/api/v1/intents"),
    ("GET", "/api/v1/intents/00000000000000000000000000000000"),
    (
        "POST",
        "/api/v1/intents/00000000000000000000000000000000/withdraw",
    ),
    (
        "GET",
        "/api/v1/intents/00000000000000000000000000000000/offers",
    ),
    ("GET", "/api/v1/offers"),
    ("GET", "/api/v1/vendor/intents"),
    ("GET", "/api/v1/vendor/offers"),
    ("POST", "/api/v1/vendor/reload"),
    ("GET", "/api/v1/vendors"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/vault"),
    ("PUT", "/api/v1/vault/email"),
    ("DELETE", "/api/v1/vault/email"),
    ("GET", "/api/v1/holdings"),
    (
        "POST",
        "/api/v1/relationships/0000000000000000000000000000000000000000000000000000000000000000/grants",
    ),
    (
        "POST",
        "/api/v1/relationships/0000000000000000000000000000000000000000000000000000000000000000/review",
    ),
    ("GET", "/api/v1/reputation"),
    (
        "GET",
        "/api/v1/vendors/0000000000000000000000000000000000000000000000000000000000000000/reviews",
    ),
    ("GET", "/api/v1/groups"),
    ("POST", "/api/v1/groups"),
    (
        "POST",
        "/api/v1/groups/00000000000000000000000000000000/join",
    ),
    (
        "POST",
        "/api/v1/groups/00000000000000000000000000000000/leave",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_needs_the_token() {
    let mut net = Net::new();
    let p = net.add(person("p"), &[]).await;
    let api = TestApi::serve(&p).await;
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(p.dir.join(vrm::api::COOKIE_FILE))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the cookie is private");
    for (method, path) in PATHS {
        for token in [None, Some("wrong")] {
            let (status, body) =
                tokio::task::block_in_place(|| call(&api, method, path, Some("{}"), token));
            assert_eq!(status, 401, "{method} {path} with {token:?}");
            assert_eq!(body["error"], "unauthorized");
        }
    }
    // The OpenAPI document is public and lists every endpoint.
    let (status, doc) =
        tokio::task::block_in_place(|| call(&api, "GET", "/api/v1/openapi.json", None, None));
    assert_eq!(status, 200);
    for path in [
        "/api/v1/status",
        "/api/v1/intents",
        "/api/v1/intents/{id}/withdraw",
        "/api/v1/vendor/reload",
        "/api/v1/events",
        "/api/v1/vault/{field}",
        "/api/v1/relationships/{id}/grants",
        "/api/v1/relationships/{id}/grants/{grant}/revoke",
        "/api/v1/holdings",
        "/api/v1/relationships/{id}/review",
        "/api/v1/reputation",
        "/api/v1/vendors/{key}/reviews",
        "/api/v1/groups",
        "/api/v1/groups/{id}/join",
        "/api/v1/groups/{id}/leave",
    ] {
        assert!(doc["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    assert!(doc["components"]["schemas"].get("CastBody").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cast_list_show_offers_withdraw_over_http() {
    let mut net = Net::new();
    let [p, v] = net
        .line([person("p"), vendor("v", "travel", "80.00")])
        .await;
    let api = TestApi::serve(&p).await;
    let vendor_api = TestApi::serve(&v).await;

    let (status, st) = get(&api, "/api/v1/status");
    assert_eq!(status, 200);
    assert_eq!(st["peer_id"], p.handle.peer_id().to_string());
    assert_eq!(get(&api, "/api/v1/peers").1.as_array().unwrap().len(), 1);
    assert!(
        get(&api, "/api/v1/taxonomy").1["categories"]
            .as_array()
            .unwrap()
            .len()
            >= 20
    );

    let (status, cast) = post(
        &api,
        "/api/v1/intents",
        r#"{"category": "travel", "subcategory": "lodging", "text": "A room in Évora", "max_price": "100", "currency": "EUR",
            "terms": [{"id": "no-tracking", "required": true}], "expires_in_secs": 3600}"#,
    );
    assert_eq!(status, 201, "{cast}");
    let id = cast["id"].as_str().unwrap().to_owned();
    let (_, list) = get(&api, "/api/v1/intents");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["max_price"]["display"], "100.00 EUR");
    let offers = eventually("an offer over HTTP", || {
        let path = format!("/api/v1/intents/{id}/offers");
        let api = &api;
        async move {
            let (_, offers) = get(api, &path);
            (offers.as_array().map(Vec::len) == Some(1)).then_some(offers)
        }
    })
    .await;
    assert_eq!(offers[0]["total"]["amount"], 8000);
    assert_eq!(offers[0]["accepted_terms"], json!(["no-tracking"]));
    assert_eq!(get(&api, "/api/v1/offers").1.as_array().unwrap().len(), 1);
    let (status, shown) = get(&api, &format!("/api/v1/intents/{id}"));
    assert_eq!((status, shown["offers"].as_u64()), (200, Some(1)));

    // The vendor's views and directory.
    let (_, seen) = get(&vendor_api, "/api/v1/vendor/intents");
    assert_eq!(seen[0]["decision"], "offered");
    let sent = eventually("delivered", || {
        let api = &vendor_api;
        async move {
            let (_, sent) = get(api, "/api/v1/vendor/offers");
            (sent[0]["delivery"] == "delivered").then_some(sent)
        }
    })
    .await;
    assert_eq!(sent[0]["intent"], id.as_str());
    assert_eq!(
        post(&vendor_api, "/api/v1/vendor/reload", "{}").1["items"],
        1
    );
    let (status, err) = post(&api, "/api/v1/vendor/reload", "{}");
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("bad-catalog")),
        "a person has no catalog"
    );
    let vendors = eventually("the vendor in the directory", || {
        let api = &api;
        async move {
            let (_, vendors) = get(api, "/api/v1/vendors");
            (vendors.as_array().map(Vec::len) == Some(1)).then_some(vendors)
        }
    })
    .await;
    assert_eq!(vendors[0]["name"], "v");

    let (status, withdrawn) = post(&api, &format!("/api/v1/intents/{id}/withdraw"), "{}");
    assert_eq!(
        (status, withdrawn["status"].as_str()),
        (200, Some("withdrawn"))
    );
    let (status, again) = post(&api, &format!("/api/v1/intents/{id}/withdraw"), "{}");
    assert_eq!((status, again["error"].as_str()), (409, Some("conflict")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_that_says_what_is_wrong() {
    let mut net = Net::new();
    let [_s, p] = net.line([person("s"), person("p")]).await;
    let api = TestApi::serve(&p).await;
    let cases: &[(&str, &str, u16, &str)] = &[
        ("/api/v1/intents", "{not json", 400, "bad-request"),
        (
            "/api/v1/intents",
            r#"{"category": 7, "text": "x"}"#,
            422,
            "bad-request",
        ),
        (
            "/api/v1/intents",
            r#"{"text": "no category"}"#,
            422,
            "bad-request",
        ),
        (
            "/api/v1/intents",
            r#"{"category": "books", "text": "x", "colour": "red"}"#,
            422,
            "bad-request",
        ),
        (
            "/api/v1/intents",
            r#"{"category": "spaceships", "text": "x"}"#,
            400,
            "unknown-category",
        ),
        (
            "/api/v1/intents",
            r#"{"category": "books", "text": "x", "max_price": "12"}"#,
            400,
            "bad-request",
        ),
        (
            "/api/v1/intents",
            r#"{"category": "books", "text": "x", "max_price": "1.234", "currency": "EUR"}"#,
            400,
            "bad-request",
        ),
        (
            "/api/v1/intents",
            r#"{"category": "books", "text": "x", "expires_in_secs": 99999999}"#,
            400,
            "lifetime-too-long",
        ),
        (
            "/api/v1/intents",
            r#"{"category": "books", "text": "   "}"#,
            400,
            "empty-field",
        ),
        ("/api/v1/intents/zz/withdraw", "{}", 400, "bad-request"),
        (
            "/api/v1/intents/00000000000000000000000000000000/withdraw",
            "{}",
            404,
            "not-found",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, answer) = post(&api, path, body);
        assert_eq!(
            (got, answer["error"].as_str()),
            (*status, Some(*code)),
            "{path} {body}: {answer}"
        );
        assert!(
            !answer["message"].as_str().unwrap_or("").is_empty(),
            "{path} {body}: a message"
        );
    }
    let big = format!(
        r#"{{"category": "books", "text": "{}"}}"#,
        "x".repeat(vrm::api::MAX_BODY)
    );
    let (status, answer) = post(&api, "/api/v1/intents", &big);
    assert_eq!(status, 413, "{answer}");
    let (status, answer) = get(&api, "/api/v1/intents/00000000000000000000000000000000");
    assert_eq!((status, answer["error"].as_str()), (404, Some("not-found")));
    let (status, _) = get(&api, "/api/v1/intents?origin=mars");
    assert_eq!(status, 400);
    let (status, _) = get(&api, "/api/v1/nothing-here");
    assert_eq!(status, 404);
    // Without a JSON content type.
    let (status, _) = tokio::task::block_in_place(|| {
        let mut r = agent()
            .post(format!("{}/api/v1/intents", api.base))
            .header("Authorization", format!("Bearer {}", api.token))
            .header("Content-Type", "text/plain")
            .send("{}")
            .unwrap();
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        )
    });
    assert_eq!(status, 415);
    assert!(intent_ids(&p).is_empty(), "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_reports_what_happens() {
    let mut net = Net::new();
    let [_s, p] = net.line([person("s"), person("p")]).await;
    let api = TestApi::serve(&p).await;
    let (tx, rx) = std::sync::mpsc::channel();
    let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
    let (base, token) = (api.base.clone(), api.token.clone());
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut response = agent()
            .get(format!("{base}/api/v1/events"))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .unwrap();
        // The server subscribes to the node's events before it sends the headers.
        let _ = subscribed_tx.send(());
        for line in std::io::BufReader::new(response.body_mut().as_reader()).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    tokio::task::block_in_place(|| subscribed.recv_timeout(std::time::Duration::from_secs(20)))
        .expect("the event stream opens");
    let (status, _) = post(
        &api,
        "/api/v1/intents",
        r#"{"category": "books", "text": "Any Le Guin"}"#,
    );
    assert_eq!(status, 201);
    let seen = tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut lines = Vec::new();
        while let Ok(line) =
            rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            let done = line.starts_with("data:") && line.contains(r#""type":"intent-cast""#);
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    assert!(seen.iter().any(|l| l == "event: intent-cast"), "{seen:?}");
    assert!(
        seen.last()
            .is_some_and(|l| l.contains(r#""category":"books""#)),
        "{seen:?}"
    );
}

fn put(api: &TestApi, path: &str, body: &str) -> (u16, Value) {
    tokio::task::block_in_place(|| call(api, "PUT", path, Some(body), Some(&api.token)))
}

fn delete(api: &TestApi, path: &str) -> (u16, Value) {
    tokio::task::block_in_place(|| call(api, "DELETE", path, None, Some(&api.token)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_over_http_keeps_fields_and_refuses_bad_ones_with_the_reason() {
    let mut net = Net::new();
    let p = net.add(person("p"), &[]).await;
    let api = TestApi::serve(&p).await;
    let (status, set) = put(
        &api,
        "/api/v1/vault/email",
        r#"{"value": "ana@example.org"}"#,
    );
    assert_eq!((status, set["renewed"].as_u64()), (200, Some(0)));
    let (status, vault) = get(&api, "/api/v1/vault");
    assert_eq!(status, 200);
    assert_eq!(vault, serde_json::json!({"email": "ana@example.org"}));
    for (path, body, code, says) in [
        (
            "/api/v1/vault/E-Mail",
            r#"{"value": "x"}"#,
            400,
            "not a field name",
        ),
        (
            "/api/v1/vault/email",
            r#"{"value": "   "}"#,
            400,
            "not only white space",
        ),
        ("/api/v1/vault/email", r#"{"value": 3}"#, 422, "value"),
    ] {
        let (status, refused) = put(&api, path, body);
        assert_eq!(status, code, "{path} {body}");
        assert!(
            refused["message"].as_str().unwrap().contains(says),
            "{refused}"
        );
    }
    let long = format!(r#"{{"value": "{}"}}"#, "x".repeat(2001));
    assert_eq!(put(&api, "/api/v1/vault/email", &long).0, 400);
    assert_eq!(
        get(&api, "/api/v1/vault").1["email"],
        "ana@example.org",
        "nothing changed"
    );
    let (status, _) = delete(&api, "/api/v1/vault/email");
    assert_eq!(status, 200);
    let (status, missing) = delete(&api, "/api/v1/vault/email");
    assert_eq!(
        (status, missing["error"].as_str()),
        (404, Some("not-found"))
    );
    let unknown = "/api/v1/relationships/00000000000000000000000000000000000000000000000000000000000000aa/grants";
    let grant = r#"{"fields": ["email"], "purpose": "delivery", "days": 30}"#;
    assert_eq!(post(&api, unknown, grant).0, 409);
    let too_long = r#"{"fields": ["email"], "purpose": "delivery", "days": 367}"#;
    let (status, refused) = post(&api, unknown, too_long);
    assert_eq!(status, 400);
    assert!(
        refused["message"].as_str().unwrap().contains("366"),
        "{refused}"
    );
    let (status, holdings) = get(&api, "/api/v1/holdings");
    assert_eq!((status, holdings), (200, serde_json::json!([])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_and_groups_over_http_refuse_with_the_reason() {
    let mut net = Net::new();
    let [_s, p] = net.line([person("s"), person("p")]).await;
    let api = TestApi::serve(&p).await;
    let unknown = format!("/api/v1/relationships/{}/review", "0".repeat(64));
    for (path, body, code, says) in [
        (
            unknown.as_str(),
            r#"{"rating": 4}"#,
            409,
            "no such relationship",
        ),
        (
            unknown.as_str(),
            r#"{"rating": 4, "stars": 5}"#,
            422,
            "stars",
        ),
        (
            "/api/v1/relationships/xyz/review",
            r#"{"rating": 4}"#,
            409,
            "not a relationship id",
        ),
        ("/api/v1/groups/abc/join", "", 409, "not a group id"),
        (
            "/api/v1/groups/00000000000000000000000000000000/join",
            "",
            409,
            "no group",
        ),
        (
            "/api/v1/groups/00000000000000000000000000000000/leave",
            "",
            409,
            "not a member",
        ),
        (
            "/api/v1/groups",
            r#"{"size": 1, "intent": {"category": "travel", "text": "a minibus"}}"#,
            400,
            "not from 2 to 1000",
        ),
    ] {
        let (status, refused) = post(&api, path, body);
        assert_eq!(status, code, "{path} {body}: {refused}");
        assert!(
            refused["message"].as_str().unwrap_or("").contains(says),
            "{path}: {refused}"
        );
    }
    let (status, reputation) = get(&api, "/api/v1/reputation");
    assert_eq!((status, reputation), (200, serde_json::json!([])));
    let (status, groups) = get(&api, "/api/v1/groups");
    assert_eq!((status, groups), (200, serde_json::json!([])));
    let (status, started) = post(
        &api,
        "/api/v1/groups",
        r#"{"size": 12, "intent": {"category": "travel", "text": "A minibus from the airport", "max_price": "20", "currency": "EUR"}}"#,
    );
    assert_eq!(status, 201, "{started}");
    let (_, groups) = get(&api, "/api/v1/groups");
    assert_eq!(groups[0]["id"], started["group"]);
    assert_eq!(
        (groups[0]["members"].as_u64(), groups[0]["size"].as_u64()),
        (Some(1), Some(12))
    );
    assert_eq!(groups[0]["joined"], started["intent"]);
    assert_eq!(groups[0]["max_price"], "20.00 EUR");
}
