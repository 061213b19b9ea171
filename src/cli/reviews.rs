//! `vrm review` and `vrm reputation`: review a fulfilled order's vendor, and see every
//! vendor's reputation as this node computes it.

use std::path::Path;

use serde_json::json;

use super::relationship::relationship_id;
use super::verbs::{print_json, short, show_list};
use crate::client::Client;
use crate::node::reviews::{Reputation, ReviewView};

/// A vendor's reputation in one cell: the weighted score, the reviews and how many of
/// their buyers are proven, and the person's own orders with it.
pub fn rating(r: &Reputation) -> String {
    let reviews = match r.reviews {
        0 => "no reviews".to_owned(),
        n => format!("{:.1}★ ({n} reviews, {} proven)", r.score, r.proven),
    };
    match r.yours.relationships {
        0 => reviews,
        n => format!("{reviews} · yours: {n}"),
    }
}

/// `vrm review REL --rating N [--text T] [--history]`
pub fn review(
    dir: &Path,
    json: bool,
    rel: &str,
    rating: u8,
    text: &str,
    history: bool,
) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    let id = relationship_id(&client, rel)?;
    let body = json!({ "rating": rating, "text": text, "history": history });
    let view: ReviewView = client.post(&format!("/relationships/{id}/review"), &body)?;
    if json {
        print_json(&view);
    } else {
        println!(
            "reviewed order {} with {} stars; published on the directory",
            short(&view.order),
            view.rating
        );
    }
    Ok(())
}

const HEADERS: &[&str] = &[
    "vendor",
    "score",
    "reviews",
    "mean",
    "1-5 stars",
    "recent",
    "yours",
];

fn row(r: &Reputation) -> Vec<String> {
    let d = r.distribution;
    vec![
        short(&r.vendor),
        format!("{:.2}{}", r.score, if r.trusted { " trusted" } else { "" }),
        format!("{} ({} proven)", r.reviews, r.proven),
        format!("{:.2}", r.mean),
        format!("{} {} {} {} {}", d[0], d[1], d[2], d[3], d[4]),
        r.recent.to_string(),
        match (r.yours.relationships, r.yours.rating) {
            (0, _) => String::new(),
            (n, Some(stars)) => format!("{n} orders, rated {stars}"),
            (n, None) => format!("{n} orders"),
        },
    ]
}

/// `vrm reputation [VENDOR]`: every vendor's, or one vendor's with its reviews.
pub fn reputation(dir: &Path, json: bool, vendor: Option<&str>) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    let all: Vec<Reputation> = client.get("/reputation")?;
    let Some(prefix) = vendor else {
        show_list(&all, json, HEADERS, row);
        return Ok(());
    };
    let matching: Vec<&Reputation> = all
        .iter()
        .filter(|r| r.vendor.starts_with(prefix))
        .collect();
    let [one] = matching[..] else {
        anyhow::bail!(
            "{} vendors with a reputation start with {prefix:?}",
            matching.len()
        );
    };
    let reviews: Vec<ReviewView> = client.get(&format!("/vendors/{}/reviews", one.vendor))?;
    if json {
        print_json(&json!({ "reputation": one, "reviews": reviews }));
        return Ok(());
    }
    show_list(std::slice::from_ref(one), false, HEADERS, row);
    println!();
    show_list(
        &reviews,
        false,
        &["stars", "buyer", "history", "text"],
        |v| {
            vec![
                v.rating.to_string(),
                short(&v.persona),
                v.history.to_string(),
                v.text.clone(),
            ]
        },
    );
    Ok(())
}
