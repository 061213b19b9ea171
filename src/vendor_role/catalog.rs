//! `catalog.toml`: what a vendor sells, and which item best fits an intent.
//!
//! Matching is a pure function of the catalog, the intent and today's date. An item fits when
//! its category (and subcategory, if both name one), place, lead time, stock, currency and
//! price all fit; among the fitting items the one with the most keywords in the intent text
//! wins, then the cheapest total. When nothing fits, the reason given is that of the item
//! that came closest, so a vendor can see why an intent went unanswered.

use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

use crate::clock::{day_number, day_of};
use crate::proto::{Intent, OfferItem, Price};

/// File name of the catalog in the data directory.
pub const CATALOG_FILE: &str = "catalog.toml";

/// Why a catalog could not be loaded.
#[derive(Debug, Error)]
pub enum CatalogError {
    /// Reading failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// Not valid TOML for the catalog schema.
    #[error("{0}: {1}")]
    Parse(String, Box<toml::de::Error>),
    /// An item breaks a rule (unknown category, bad price...).
    #[error("{file}: item {index} ({title:?}): {reason}")]
    Item {
        /// The file.
        file: String,
        /// Position of the item, from 1.
        index: usize,
        /// Its title.
        title: String,
        /// What is wrong.
        reason: String,
    },
}

/// A price cut for buying several.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discount {
    /// From this quantity on...
    pub min_quantity: u32,
    /// ...the unit price is this many percent lower (1 to 99).
    pub percent: u8,
}

/// One thing the vendor sells, as written in `catalog.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogItem {
    /// Top-level category id.
    pub category: String,
    /// Subcategory id; an item without one matches any subcategory of its category.
    #[serde(default)]
    pub subcategory: Option<String>,
    /// What the person sees in the offer.
    pub title: String,
    /// Sent as the offer's text.
    #[serde(default)]
    pub description: String,
    /// Words that, found in the intent text, make this item a better match.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Unit price as a decimal string, e.g. "70.00".
    pub price: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Lowest unit price the vendor goes down to, to meet a person's ceiling.
    #[serde(default)]
    pub min_price: Option<String>,
    /// Quantity discount.
    #[serde(default)]
    pub discount: Option<Discount>,
    /// Units available; none means unlimited.
    #[serde(default)]
    pub stock: Option<u32>,
    /// Places served (matched case-insensitively against the intent's place); empty: anywhere.
    #[serde(default)]
    pub places: Vec<String>,
    /// Days needed before the person's first date.
    #[serde(default)]
    pub lead_time_days: u32,
    /// The vendor's reference.
    #[serde(default)]
    pub sku: Option<String>,
}

/// Why no item fits, ordered by how far matching got.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoMatch {
    /// The catalog has nothing in the intent's category.
    Category,
    /// Nothing in the intent's subcategory.
    Subcategory,
    /// Not sold at the intent's place.
    Place,
    /// The intent's dates start before the lead time allows.
    LeadTime,
    /// Not enough stock for the quantity.
    Stock,
    /// Sold in another currency than the intent's ceiling (no silent conversion).
    Currency,
    /// Over the intent's price ceiling, even at the minimum price.
    Price,
}

impl std::fmt::Display for NoMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoMatch::Category => "nothing in this category",
            NoMatch::Subcategory => "nothing in this subcategory",
            NoMatch::Place => "not served at this place",
            NoMatch::LeadTime => "dates too soon for the lead time",
            NoMatch::Stock => "not enough stock",
            NoMatch::Currency => "priced in another currency",
            NoMatch::Price => "over the price ceiling",
        })
    }
}

/// A checked catalog item with parsed prices.
#[derive(Debug, Clone)]
struct Entry {
    item: CatalogItem,
    price: Price,
    min_price: Option<u64>,
}

/// A vendor's catalog, checked on load.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<Entry>,
}

/// The best fitting item, ready to go into an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The offer line.
    pub item: OfferItem,
    /// The item's description, for the offer text.
    pub description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    item: Vec<CatalogItem>,
}

impl Catalog {
    /// Parses and checks catalog text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = toml::from_str(text)
            .map_err(|e| CatalogError::Parse(origin.to_owned(), Box::new(e)))?;
        let mut entries = Vec::with_capacity(file.item.len());
        for (i, item) in file.item.into_iter().enumerate() {
            let bad = |reason: String| CatalogError::Item {
                file: origin.to_owned(),
                index: i + 1,
                title: item.title.clone(),
                reason,
            };
            let category = crate::proto::taxonomy::category(&item.category)
                .ok_or_else(|| bad(format!("unknown category {:?}", item.category)))?;
            if let Some(sub) = &item.subcategory
                && !category.subcategories.iter().any(|s| &s.id == sub)
            {
                return Err(bad(format!("unknown subcategory {sub:?}")));
            }
            let price = Price::parse(&item.price, &item.currency)
                .ok_or_else(|| bad(format!("bad price {:?} {:?}", item.price, item.currency)))?;
            let min_price = match &item.min_price {
                None => None,
                Some(text) => {
                    let min = Price::parse(text, &item.currency)
                        .ok_or_else(|| bad(format!("bad min_price {text:?}")))?;
                    if min.amount > price.amount {
                        return Err(bad("min_price is above price".into()));
                    }
                    Some(min.amount)
                }
            };
            if let Some(d) = &item.discount
                && (!(1..=99).contains(&d.percent) || d.min_quantity < 2)
            {
                return Err(bad(
                    "discount needs percent 1-99 and min_quantity >= 2".into()
                ));
            }
            entries.push(Entry {
                item,
                price,
                min_price,
            });
        }
        Ok(Catalog { entries })
    }

    /// Loads `catalog.toml` from `dir`; a missing file is an empty catalog.
    pub fn load(dir: &Path) -> Result<Catalog, CatalogError> {
        let path = dir.join(CATALOG_FILE);
        let origin = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => Catalog::parse(&text, &origin),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Catalog::default()),
            Err(e) => Err(CatalogError::Io(origin, e)),
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the catalog has no items.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The item that best fits `intent` on unix time `now`, or why none does.
    pub fn best_match(&self, intent: &Intent, now: u64) -> Result<Match, NoMatch> {
        let text = intent.text.to_lowercase();
        let mut best: Option<(usize, u64, Match)> = None;
        let mut closest = NoMatch::Category;
        for entry in &self.entries {
            match fit(entry, intent, now) {
                Err(reason) => closest = closest.max(reason),
                Ok(found) => {
                    let hits = entry
                        .item
                        .keywords
                        .iter()
                        .filter(|k| text.contains(&k.to_lowercase()))
                        .count();
                    let total = found.item.price.amount * u64::from(found.item.quantity);
                    let better = match &best {
                        None => true,
                        Some((best_hits, best_total, _)) => {
                            hits > *best_hits || (hits == *best_hits && total < *best_total)
                        }
                    };
                    if better {
                        best = Some((hits, total, found));
                    }
                }
            }
        }
        best.map(|(_, _, found)| found).ok_or(closest)
    }
}

/// Whether one item fits the intent, and at what unit price.
fn fit(entry: &Entry, intent: &Intent, now: u64) -> Result<Match, NoMatch> {
    let item = &entry.item;
    let wanted = &intent.constraints;
    if item.category != intent.category {
        return Err(NoMatch::Category);
    }
    if let (Some(want), Some(has)) = (&intent.subcategory, &item.subcategory)
        && want != has
    {
        return Err(NoMatch::Subcategory);
    }
    if let Some(place) = &wanted.place
        && !item.places.is_empty()
        && !item.places.iter().any(|p| p.eq_ignore_ascii_case(place))
    {
        return Err(NoMatch::Place);
    }
    if let Some(dates) = &wanted.dates {
        let first_possible = day_of(now) + i64::from(item.lead_time_days);
        if day_number(&dates.from).is_none_or(|from| from < first_possible) {
            return Err(NoMatch::LeadTime);
        }
    }
    let quantity = wanted.quantity.unwrap_or(1);
    if item.stock.is_some_and(|stock| stock < quantity) {
        return Err(NoMatch::Stock);
    }
    let mut unit = entry.price.amount;
    if let Some(d) = &item.discount
        && quantity >= d.min_quantity
    {
        unit = unit * u64::from(100 - d.percent) / 100;
    }
    if let Some(ceiling) = &wanted.max_price {
        if ceiling.currency != entry.price.currency {
            return Err(NoMatch::Currency);
        }
        let total = unit
            .checked_mul(u64::from(quantity))
            .ok_or(NoMatch::Price)?;
        if total > ceiling.amount {
            // Meet the ceiling if the vendor's floor allows it.
            let meet = ceiling.amount / u64::from(quantity);
            match entry.min_price {
                Some(floor) if meet >= floor => unit = meet,
                _ => return Err(NoMatch::Price),
            }
        }
    }
    Ok(Match {
        item: OfferItem {
            title: item.title.clone(),
            price: Price {
                amount: unit,
                currency: entry.price.currency.clone(),
            },
            quantity,
            sku: item.sku.clone(),
        },
        description: item.description.clone(),
    })
}

/// The example catalog `vrm init --vendor` writes for a vendor serving `category`; it
/// answers intents in that category as it is.
pub fn example_catalog(category: &str) -> String {
    EXAMPLE_CATALOG.replace("{category}", category)
}

const EXAMPLE_CATALOG: &str = r#"# What this vendor node offers. Each [[item]] can answer intents in its category.
#
# Prices are per unit, as decimal strings in the currency's main unit ("70.00" EUR). An
# intent is answered with the one item that fits best: same category (and subcategory, if
# both name one), served at the intent's place, far enough ahead for the lead time, enough
# stock, same currency as the person's ceiling (never converted) and within it, if need be
# down to min_price; then the most keywords found in the intent's text; then the cheapest.
#
# Fields: category, subcategory, title, description, keywords, price, currency, min_price,
# discount = { min_quantity = 3, percent = 10 }, stock, places = ["Lisbon"],
# lead_time_days, sku. Only category, title, price and currency are required.
# Category ids are in proto/categories.json. The node reloads this file when it changes.

[[item]]
category = "{category}"
title = "Standard offer"
description = "Ready within two days."
keywords = ["standard", "basic", "cheap"]
price = "20.00"
currency = "EUR"
min_price = "15.00"
discount = { min_quantity = 3, percent = 10 }
stock = 40
sku = "STD"

[[item]]
category = "{category}"
title = "Premium offer"
description = "Our best, prepared for you."
keywords = ["premium", "best", "express"]
price = "45.00"
currency = "EUR"
lead_time_days = 2
sku = "PRM"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_catalog_parses_for_every_category() {
        for category in crate::proto::taxonomy::categories() {
            let catalog = Catalog::parse(&example_catalog(&category.id), "example").unwrap();
            assert_eq!(catalog.len(), 2);
        }
    }
}
