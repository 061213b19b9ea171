//! The category taxonomy (`proto/categories.json`), the term list (`proto/terms.json`) and
//! the purposes data may be granted for (`proto/purposes.json`).
//!
//! Both files are part of the protocol and compiled into the binary, so every node of one
//! version agrees on them. Intents are gossiped on the topic of their category's shard
//! ([`super::shard_of`]).

use std::sync::LazyLock;

use serde::Deserialize;

/// One subcategory.
#[derive(Debug, Clone, Deserialize)]
pub struct Subcategory {
    /// Wire id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// One top-level category.
#[derive(Debug, Clone, Deserialize)]
pub struct Category {
    /// Wire id; its hash picks the shard ([`super::shard_of`]).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its subcategories.
    pub subcategories: Vec<Subcategory>,
}

/// One term a person can proffer (or one purpose data may be granted for).
#[derive(Debug, Clone, Deserialize)]
pub struct TermDef {
    /// Wire id.
    pub id: String,
    /// What the vendor agrees to, in plain words.
    pub text: String,
}

#[derive(Deserialize)]
struct CategoriesFile {
    categories: Vec<Category>,
}

#[derive(Deserialize)]
struct TermsFile {
    terms: Vec<TermDef>,
}

#[derive(Deserialize)]
struct PurposesFile {
    purposes: Vec<TermDef>,
}

static CATEGORIES: LazyLock<Vec<Category>> = LazyLock::new(|| {
    let file: CategoriesFile = serde_json::from_str(include_str!("../../proto/categories.json"))
        .expect("proto/categories.json is valid (checked by tests)");
    file.categories
});

static TERMS: LazyLock<Vec<TermDef>> = LazyLock::new(|| {
    let file: TermsFile = serde_json::from_str(include_str!("../../proto/terms.json"))
        .expect("proto/terms.json is valid (checked by tests)");
    file.terms
});

static PURPOSES: LazyLock<Vec<TermDef>> = LazyLock::new(|| {
    let file: PurposesFile = serde_json::from_str(include_str!("../../proto/purposes.json"))
        .expect("proto/purposes.json is valid (checked by tests)");
    file.purposes
});

/// All top-level categories.
pub fn categories() -> &'static [Category] {
    &CATEGORIES
}

/// The category with this id.
pub fn category(id: &str) -> Option<&'static Category> {
    CATEGORIES.iter().find(|c| c.id == id)
}

/// All terms.
pub fn terms() -> &'static [TermDef] {
    &TERMS
}

/// True if the protocol defines this term id.
pub fn is_known_term(id: &str) -> bool {
    TERMS.iter().any(|t| t.id == id)
}

/// All purposes data may be granted for.
pub fn purposes() -> &'static [TermDef] {
    &PURPOSES
}

/// True if the protocol defines this purpose id.
pub fn is_known_purpose(id: &str) -> bool {
    PURPOSES.iter().any(|p| p.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn valid_id(id: &str) -> bool {
        (1..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !id.starts_with('-')
    }

    #[test]
    fn taxonomy_is_small_unique_and_well_formed() {
        let cats = categories();
        assert!((20..=40).contains(&cats.len()), "{} categories", cats.len());
        let mut seen = HashSet::new();
        for cat in cats {
            assert!(valid_id(&cat.id), "{}", cat.id);
            assert!(seen.insert(&cat.id), "duplicate {}", cat.id);
            assert!(
                !cat.subcategories.is_empty(),
                "{} has no subcategories",
                cat.id
            );
            let mut subs = HashSet::new();
            for sub in &cat.subcategories {
                assert!(valid_id(&sub.id), "{}/{}", cat.id, sub.id);
                assert!(subs.insert(&sub.id), "duplicate {}/{}", cat.id, sub.id);
            }
        }
    }

    #[test]
    fn terms_are_unique_and_well_formed() {
        assert!(terms().len() >= 5, "{} terms", terms().len());
        let mut seen = HashSet::new();
        for term in terms() {
            assert!(valid_id(&term.id), "{}", term.id);
            assert!(seen.insert(&term.id));
        }
        assert!(is_known_term("no-tracking"));
        assert!(!is_known_term("sell-my-soul"));
    }

    #[test]
    fn purposes_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for purpose in purposes() {
            assert!(valid_id(&purpose.id), "{}", purpose.id);
            assert!(seen.insert(&purpose.id));
        }
        assert!(is_known_purpose("delivery"));
        assert!(!is_known_purpose("resale"));
    }
}
