//! What the API shows: JSON views of the node's records, and the bodies it accepts. Ids and
//! keys are lower-case hex; money is both an integer in minor units and a display string.
//! The CLI's [`crate::client`] sends and reads these same types.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::unix_now;
use crate::node::CastRequest;
use crate::node::reviews::Reputation;
use crate::proto::{Constraints, DateRange, Price, Term};
use crate::store::{Decision, Delivery, Origin, StoredIntent, StoredOffer};

/// An amount of money.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MoneyView {
    /// In the currency's minor unit (cents).
    pub amount: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// For people: "150.00 EUR".
    pub display: String,
}

impl From<&Price> for MoneyView {
    fn from(p: &Price) -> Self {
        MoneyView {
            amount: p.amount,
            currency: p.currency.clone(),
            display: p.to_string(),
        }
    }
}

/// A date range.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatesView {
    /// First day, YYYY-MM-DD.
    pub from: String,
    /// Last day, YYYY-MM-DD.
    pub to: String,
}

/// A term the person proffers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TermView {
    /// Term id from the protocol's list.
    pub id: String,
    /// Offers that do not accept it are refused.
    #[serde(default)]
    pub required: bool,
}

/// An intent, own or received.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntentView {
    /// Intent id (hex).
    pub id: String,
    /// Top-level category.
    pub category: String,
    /// Subcategory.
    pub subcategory: Option<String>,
    /// What is wanted.
    pub text: String,
    /// Price ceiling.
    pub max_price: Option<MoneyView>,
    /// Place.
    pub place: Option<String>,
    /// Dates.
    pub dates: Option<DatesView>,
    /// Quantity.
    pub quantity: Option<u32>,
    /// Proffered terms.
    pub terms: Vec<TermView>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds.
    pub expires: u64,
    /// "open", "withdrawn" or "expired".
    pub status: String,
    /// "own" (cast here) or "received" (vendor side).
    pub origin: String,
    /// The persona key that signed it (hex).
    pub persona: String,
    /// Offers stored for it.
    pub offers: usize,
    /// Vendor side: "offered" or "declined: <reason>".
    pub decision: Option<String>,
}

impl IntentView {
    /// The view of a stored intent with `offers` offers.
    pub fn new(stored: &StoredIntent, offers: usize) -> Self {
        let (record, envelope, intent) = (stored, &stored.envelope, &stored.intent);
        let c = &intent.constraints;
        let status = if record.withdrawn_at.is_some() {
            "withdrawn"
        } else if intent.expires <= unix_now() {
            "expired"
        } else {
            "open"
        };
        IntentView {
            id: hex::encode(*intent.id),
            category: intent.category.clone(),
            subcategory: intent.subcategory.clone(),
            text: intent.text.clone(),
            max_price: c.max_price.as_ref().map(MoneyView::from),
            place: c.place.clone(),
            dates: c.dates.as_ref().map(|d| DatesView {
                from: d.from.clone(),
                to: d.to.clone(),
            }),
            quantity: c.quantity,
            terms: intent
                .terms
                .iter()
                .map(|t| TermView {
                    id: t.id.clone(),
                    required: t.required,
                })
                .collect(),
            created: intent.created,
            expires: intent.expires,
            status: status.into(),
            origin: match record.origin {
                Origin::Own => "own".into(),
                Origin::Received => "received".into(),
            },
            persona: hex::encode(envelope.signer().as_bytes()),
            offers,
            decision: record.decision.as_ref().map(|d| match d {
                Decision::Offered { .. } => "offered".to_string(),
                Decision::Declined { reason } => format!("declined: {reason}"),
            }),
        }
    }
}

/// One line of an offer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemView {
    /// What is offered.
    pub title: String,
    /// Unit price.
    pub price: MoneyView,
    /// Units.
    pub quantity: u32,
    /// Vendor reference.
    pub sku: Option<String>,
}

/// An offer, received or sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OfferView {
    /// Offer id: the message id (hex).
    pub id: String,
    /// The intent it answers (hex).
    pub intent: String,
    /// The vendor key (hex).
    pub vendor: String,
    /// The vendor's name, from its profile if known.
    pub vendor_name: Option<String>,
    /// Lines.
    pub items: Vec<ItemView>,
    /// Sum of price × quantity.
    pub total: Option<MoneyView>,
    /// The vendor's text.
    pub text: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds.
    pub valid_until: u64,
    /// The person's terms the vendor accepts.
    pub accepted_terms: Vec<String>,
    /// "pending", "delivered", "refused: <code>" or "expired".
    pub delivery: String,
    /// The vendor's reputation as this node computes it (offers received), with the
    /// person's own relationships with the vendor.
    pub reputation: Option<Reputation>,
    /// On a group offer: it binds once `min` members accepted by `deadline`.
    pub group: Option<GroupOfferView>,
}

/// The terms of a group offer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupOfferView {
    /// Members who must accept for it to bind.
    pub min: u32,
    /// Unix seconds: accepts count until then.
    pub deadline: u64,
}

impl OfferView {
    /// The view of a stored offer; `vendor_name` from the directory, `reputation` as
    /// computed here.
    pub fn new(
        stored: &StoredOffer,
        vendor_name: Option<String>,
        reputation: Option<Reputation>,
    ) -> Self {
        let (record, envelope, offer) = (stored, &stored.envelope, &stored.offer);
        OfferView {
            id: envelope.id().to_hex(),
            intent: hex::encode(*offer.intent),
            vendor: hex::encode(envelope.signer().as_bytes()),
            vendor_name,
            items: offer
                .items
                .iter()
                .map(|i| ItemView {
                    title: i.title.clone(),
                    price: MoneyView::from(&i.price),
                    quantity: i.quantity,
                    sku: i.sku.clone(),
                })
                .collect(),
            total: offer.total().as_ref().map(MoneyView::from),
            text: offer.text.clone(),
            created: offer.created,
            valid_until: offer.valid_until,
            accepted_terms: offer.accepted_terms.clone(),
            delivery: match &record.delivery {
                Delivery::Pending => "pending".into(),
                Delivery::Delivered { .. } => "delivered".into(),
                Delivery::Refused { code } => format!("refused: {code}"),
                Delivery::Expired => "expired".into(),
            },
            reputation,
            group: offer.group.as_ref().map(|g| GroupOfferView {
                min: g.min,
                deadline: g.deadline,
            }),
        }
    }
}

/// A vendor from the directory.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VendorView {
    /// Vendor key (hex).
    pub key: String,
    /// Name.
    pub name: String,
    /// Categories served.
    pub categories: Vec<String>,
    /// Contact outside vrm.
    pub contact: String,
    /// Terms it accepts.
    pub accepted_terms: Vec<String>,
    /// When the profile was signed (unix seconds).
    pub updated: u64,
}

/// A connected peer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeerView {
    /// PeerId.
    pub peer: String,
    /// Gossipsub score.
    pub score: Option<f64>,
    /// Whether it is a service node (serves light push and mailboxes).
    pub service: bool,
    /// `in` if it opened the connection, `out` if this node dialed it.
    pub direction: String,
    /// The shards whose intent topics it joined.
    pub shards: Vec<u8>,
}

/// The node at a glance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusView {
    /// vrm version.
    pub version: String,
    /// This node's PeerId.
    pub peer_id: String,
    /// Vendor key (hex), on vendor nodes.
    pub vendor_key: Option<String>,
    /// Vendor name, on vendor nodes.
    pub vendor_name: Option<String>,
    /// Listen addresses.
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: usize,
    /// Intents stored.
    pub intents: usize,
    /// Offers stored.
    pub offers: usize,
    /// Messages waiting in the outbox.
    pub outbox: usize,
    /// `service` or `light`.
    pub role: String,
    /// The service nodes in use (light push, mailboxes), by PeerId.
    pub service_nodes: Vec<String>,
    /// The shards whose intent topics the node joins (none on a light node).
    pub shards: Vec<u8>,
    /// The mailbox this node keeps for others (service nodes).
    pub mailbox: MailboxView,
    /// Counters: accepted, rejected by reason, offers sent/received...
    pub counters: std::collections::BTreeMap<String, u64>,
}

/// What a service node's mailbox holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MailboxView {
    /// Open queues.
    pub queues: u64,
    /// Items waiting to be fetched.
    pub items: u64,
    /// Bytes of the items waiting.
    pub bytes: u64,
}

/// A category of the taxonomy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CategoryView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Subcategory ids and names.
    pub subcategories: Vec<(String, String)>,
}

/// Categories and terms, for forms.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaxonomyView {
    /// Top-level categories.
    pub categories: Vec<CategoryView>,
    /// Term ids and their meaning.
    pub terms: Vec<(String, String)>,
    /// Purpose ids data may be granted for, and their meaning.
    pub purposes: Vec<(String, String)>,
}

/// What to cast.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CastBody {
    /// Top-level category id.
    pub category: String,
    /// Subcategory id.
    #[serde(default)]
    pub subcategory: Option<String>,
    /// What you want, in your words.
    pub text: String,
    /// Most you pay in total, decimal ("150" or "150.00"); needs `currency`.
    #[serde(default)]
    pub max_price: Option<String>,
    /// ISO 4217 currency of `max_price`.
    #[serde(default)]
    pub currency: Option<String>,
    /// Where.
    #[serde(default)]
    pub place: Option<String>,
    /// When.
    #[serde(default)]
    pub dates: Option<DatesView>,
    /// How many.
    #[serde(default)]
    pub quantity: Option<u32>,
    /// Terms you proffer.
    #[serde(default)]
    pub terms: Vec<TermView>,
    /// Lifetime in seconds (default a day, at most 30 days).
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

impl CastBody {
    /// The node request, or what is wrong with the body.
    pub fn into_request(self) -> Result<CastRequest, String> {
        let max_price = match (self.max_price, self.currency) {
            (None, None) => None,
            (Some(amount), Some(currency)) => Some(Price::parse(&amount, &currency).ok_or_else(|| {
                format!("max_price {amount:?} {currency:?} is not an amount with a three-letter currency code")
            })?),
            (Some(_), None) => return Err("max_price needs a currency".into()),
            (None, Some(_)) => return Err("currency given without max_price".into()),
        };
        Ok(CastRequest {
            category: self.category,
            subcategory: self.subcategory.filter(|s| !s.is_empty()),
            text: self.text,
            constraints: Constraints {
                max_price,
                place: self.place.filter(|s| !s.is_empty()),
                dates: self.dates.map(|d| DateRange {
                    from: d.from,
                    to: d.to,
                }),
                quantity: self.quantity,
            },
            terms: self
                .terms
                .into_iter()
                .map(|t| Term {
                    id: t.id,
                    required: t.required,
                })
                .collect(),
            lifetime_secs: self.expires_in_secs.unwrap_or(86_400),
            group: None,
        })
    }
}

/// The answer to a cast.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CastView {
    /// The new intent's id (hex).
    pub id: String,
}

/// The answer to a catalog reload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReloadView {
    /// Items now in force.
    pub items: usize,
}

/// An error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorView {
    /// Stable code ("bad-request", "unauthorized", "not-found", or a protocol rejection code).
    pub error: String,
    /// What is wrong, for people.
    pub message: String,
}
