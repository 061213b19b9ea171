//! Why a message is refused. Every reason is its own variant with a stable code (the `error`
//! field of the test vectors in `proto/vectors/`), so logs, metrics and other implementations
//! all name a rejection the same way.

use thiserror::Error;

/// The bytes are not a well-formed, correctly signed envelope of a kind this node reads.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[allow(missing_docs)] // variant fields are named by the variant's message
pub enum DecodeError {
    /// The envelope is larger than the protocol allows.
    #[error("envelope is {len} bytes, the limit is {max}")]
    EnvelopeTooLarge { len: usize, max: usize },
    /// The input ends inside an item.
    #[error("CBOR input ends early")]
    Truncated,
    /// Bytes follow the single top-level item.
    #[error("bytes follow the end of the CBOR item")]
    TrailingBytes,
    /// A CBOR header is not valid CBOR.
    #[error("malformed CBOR: {0}")]
    MalformedCbor(&'static str),
    /// A CBOR feature the protocol does not use.
    #[error("CBOR feature not allowed: {0}")]
    UnsupportedCbor(&'static str),
    /// A text string is not UTF-8.
    #[error("text string is not valid UTF-8")]
    InvalidUtf8,
    /// Arrays and maps nest deeper than the limit.
    #[error("nesting deeper than {max}")]
    TooDeep { max: usize },
    /// A string is longer than the limit.
    #[error("string of {len} bytes, the limit is {max}")]
    StringTooLong { len: u64, max: usize },
    /// An array or map has more entries than the limit.
    #[error("{len} entries in one array or map, the limit is {max}")]
    TooManyItems { len: u64, max: usize },
    /// The envelope map does not have the five fields in their order and types.
    #[error("envelope does not match the schema: {0}")]
    EnvelopeSchema(String),
    /// The envelope is valid CBOR but not in the one canonical encoding.
    #[error("envelope is not canonically encoded")]
    NonCanonical,
    /// The envelope's version is not one this node speaks.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u64),
    /// The kind is not one the protocol defines.
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
    /// The kind is defined by the protocol but this node does not handle it yet.
    #[error("kind {0:?} is not supported by this node yet")]
    KindNotSupported(String),
    /// The signer field is not a valid Ed25519 public key.
    #[error("signer is not a valid Ed25519 public key")]
    BadSignerKey,
    /// The signature does not verify (strictly) for the signer over the signing input.
    #[error("signature does not verify")]
    BadSignature,
    /// The signature fails the strict check only by a small-order component that a batch
    /// verifier may have let through (`proto/README.md`, "Batch verification").
    #[error("signature fails strict verification by a small-order component")]
    AmbiguousSignature,
    /// The body is not the map its kind's schema describes.
    #[error("body does not match the {kind} schema: {reason}")]
    BodySchema { kind: &'static str, reason: String },
}

impl DecodeError {
    /// The stable code of this error, as used in test vectors and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EnvelopeTooLarge { .. } => "envelope-too-large",
            Self::Truncated => "truncated",
            Self::TrailingBytes => "trailing-bytes",
            Self::MalformedCbor(_) => "malformed-cbor",
            Self::UnsupportedCbor(_) => "unsupported-cbor",
            Self::InvalidUtf8 => "invalid-utf8",
            Self::TooDeep { .. } => "too-deep",
            Self::StringTooLong { .. } => "string-too-long",
            Self::TooManyItems { .. } => "too-many-items",
            Self::EnvelopeSchema(_) => "envelope-schema",
            Self::NonCanonical => "non-canonical",
            Self::UnsupportedVersion(_) => "unsupported-version",
            Self::UnknownKind(_) => "unknown-kind",
            Self::KindNotSupported(_) => "kind-not-supported",
            Self::BadSignerKey => "bad-signer-key",
            Self::BadSignature => "bad-signature",
            Self::AmbiguousSignature => "ambiguous-signature",
            Self::BodySchema { .. } => "body-schema",
        }
    }
}

/// A well-formed, correctly signed message whose content breaks a protocol rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[allow(missing_docs)] // variant fields are named by the variant's message
pub enum ValidationError {
    /// `created` lies further in the future than the allowed clock skew.
    #[error("created {created} is more than the allowed skew ahead of now ({now})")]
    FromTheFuture { created: u64, now: u64 },
    /// The message's expiry has passed.
    #[error("expired at {expires}, now is {now}")]
    Expired { expires: u64, now: u64 },
    /// `expires` is not after `created`.
    #[error("expires ({expires}) is not after created ({created})")]
    ExpiresBeforeCreated { created: u64, expires: u64 },
    /// The intent lives longer than the protocol allows.
    #[error("lifetime of {secs} s exceeds the maximum of {max} s")]
    LifetimeTooLong { secs: u64, max: u64 },
    /// The category is not in the taxonomy.
    #[error("unknown category {0:?}")]
    UnknownCategory(String),
    /// The subcategory is not in its category.
    #[error("unknown subcategory {sub:?} of {category:?}")]
    UnknownSubcategory { category: String, sub: String },
    /// A term id is not in the protocol's term list.
    #[error("unknown term {0:?}")]
    UnknownTerm(String),
    /// A field is longer than its limit.
    #[error("field {field} is {len} bytes, the limit is {max}")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A required field is empty.
    #[error("field {0} is empty")]
    EmptyField(&'static str),
    /// A field has the wrong shape (currency code, date, peer id, multiaddr, quantity...).
    #[error("field {field} is invalid: {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    /// The body names a key that is not the envelope's signer.
    #[error("{field} in the body is not the envelope signer")]
    SignerMismatch { field: &'static str },
    /// The message arrived on a topic or route not meant for its kind or category.
    #[error("a {kind} does not belong on {route}")]
    WrongRoute { kind: &'static str, route: String },
    /// An offer or withdrawal refers to an intent this node does not hold.
    #[error("no such intent")]
    UnknownIntent,
    /// The offer is addressed to another persona than the intent's signer.
    #[error("offer is addressed to another persona")]
    WrongPersona,
    /// The intent was withdrawn.
    #[error("intent was withdrawn")]
    IntentWithdrawn,
    /// The intent has expired.
    #[error("intent has expired")]
    IntentExpired,
    /// The offer does not accept a term the person marked as required.
    #[error("offer does not accept required term {0:?}")]
    RequiredTermRefused(String),
    /// The offer is in another currency than the intent's price ceiling.
    #[error("offer currency {offered} differs from the intent's {wanted}")]
    CurrencyMismatch { offered: String, wanted: String },
    /// The offer costs more than the intent's price ceiling.
    #[error("offer total {total} exceeds the ceiling {ceiling}")]
    OverPriceCeiling { total: u64, ceiling: u64 },
    /// A review's token is not a vendor's review token for the review's persona: a forged
    /// or missing order, or one that was never fulfilled.
    #[error("the review's token {0}")]
    BadToken(String),
    /// A review's history item is not another vendor's token of a persona that signed the
    /// link to this review.
    #[error("the review's history {0}")]
    BadHistory(String),
}

impl ValidationError {
    /// The stable code of this error, as used in test vectors and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::FromTheFuture { .. } => "from-the-future",
            Self::Expired { .. } => "expired",
            Self::ExpiresBeforeCreated { .. } => "expires-before-created",
            Self::LifetimeTooLong { .. } => "lifetime-too-long",
            Self::UnknownCategory(_) => "unknown-category",
            Self::UnknownSubcategory { .. } => "unknown-subcategory",
            Self::UnknownTerm(_) => "unknown-term",
            Self::FieldTooLong { .. } => "field-too-long",
            Self::EmptyField(_) => "empty-field",
            Self::InvalidField { .. } => "invalid-field",
            Self::SignerMismatch { .. } => "signer-mismatch",
            Self::WrongRoute { .. } => "wrong-route",
            Self::UnknownIntent => "unknown-intent",
            Self::WrongPersona => "wrong-persona",
            Self::IntentWithdrawn => "intent-withdrawn",
            Self::IntentExpired => "intent-expired",
            Self::RequiredTermRefused(_) => "required-term-refused",
            Self::CurrencyMismatch { .. } => "currency-mismatch",
            Self::OverPriceCeiling { .. } => "over-price-ceiling",
            Self::BadToken(_) => "bad-token",
            Self::BadHistory(_) => "bad-history",
        }
    }
}

/// Any reason a message from the network is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    /// The bytes do not decode or verify.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The content breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl Rejection {
    /// The stable code of the underlying error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Decode(e) => e.code(),
            Self::Invalid(e) => e.code(),
        }
    }
}
