//! `catalog.toml`: what a vendor sells, and which item best fits an intent.

use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

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

/// One thing the vendor sells.
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
    /// Words that, found in the intent text, make this item a better match.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Unit price as a decimal string, e.g. "70.00".
    pub price: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// The vendor's reference.
    #[serde(default)]
    pub sku: Option<String>,
}

/// A vendor's catalog, checked on load.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    items: Vec<(CatalogItem, Price)>,
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
        let mut items = Vec::with_capacity(file.item.len());
        for (i, item) in file.item.into_iter().enumerate() {
            let bad = |reason: String| CatalogError::Item {
                file: origin.to_owned(),
                index: i + 1,
                title: item.title.clone(),
                reason,
            };
            let category = crate::proto::taxonomy::category(&item.category)
                .ok_or_else(|| bad(format!("unknown category {:?}", item.category)))?;
            if let Some(sub) = &item.subcategory {
                if !category.subcategories.iter().any(|s| &s.id == sub) {
                    return Err(bad(format!("unknown subcategory {sub:?}")));
                }
            }
            let price = Price::parse(&item.price, &item.currency)
                .ok_or_else(|| bad(format!("bad price {:?} {:?}", item.price, item.currency)))?;
            items.push((item, price));
        }
        Ok(Catalog { items })
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
        self.items.len()
    }

    /// True when the catalog has no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item that best fits `intent`: right category and subcategory, same currency and
    /// within the price ceiling for the wanted quantity; then most keywords found in the
    /// intent text; then the cheapest.
    pub fn best_match(&self, intent: &Intent) -> Option<OfferItem> {
        let quantity = intent.constraints.quantity.unwrap_or(1);
        let text = intent.text.to_lowercase();
        self.items
            .iter()
            .filter(|(item, _)| item.category == intent.category)
            .filter(|(item, _)| match (&intent.subcategory, &item.subcategory) {
                (Some(wanted), Some(has)) => wanted == has,
                _ => true,
            })
            .filter(|(_, price)| match &intent.constraints.max_price {
                None => true,
                Some(ceiling) => {
                    price.currency == ceiling.currency
                        && price
                            .amount
                            .checked_mul(u64::from(quantity))
                            .is_some_and(|total| total <= ceiling.amount)
                }
            })
            .map(|(item, price)| {
                let hits = item
                    .keywords
                    .iter()
                    .filter(|k| text.contains(&k.to_lowercase()))
                    .count();
                (hits, item, price)
            })
            .max_by(|a, b| a.0.cmp(&b.0).then(b.2.amount.cmp(&a.2.amount)))
            .map(|(_, item, price)| OfferItem {
                title: item.title.clone(),
                price: price.clone(),
                quantity,
                sku: item.sku.clone(),
            })
    }
}

/// The example catalog `vrm init --vendor` writes; it works as it is.
pub const EXAMPLE_CATALOG: &str = r#"# What this vendor node offers. Each [[item]] can answer intents in its category.
# price is per unit, as a decimal string in the currency's main unit ("70.00" EUR).
# An intent is answered with the best fitting item: same category (and subcategory, if both
# name one), same currency and within the person's price ceiling for the quantity asked,
# then the most keywords found in the intent's text, then the cheapest.

[[item]]
category = "books"
subcategory = "fiction"
title = "Second-hand paperback, good condition"
keywords = ["paperback", "used", "novel"]
price = "6.50"
currency = "EUR"
sku = "PB-USED"

[[item]]
category = "books"
title = "New hardcover, ordered for you"
keywords = ["new", "hardcover", "gift"]
price = "24.00"
currency = "EUR"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_catalog_parses() {
        assert_eq!(Catalog::parse(EXAMPLE_CATALOG, "example").unwrap().len(), 2);
    }

    #[test]
    fn bad_items_are_named() {
        let err = Catalog::parse(
            "[[item]]\ncategory = \"spaceships\"\ntitle = \"X\"\nprice = \"1\"\ncurrency = \"EUR\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("item 1") && err.contains("spaceships"),
            "{err}"
        );
    }
}
