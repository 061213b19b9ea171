//! Protocol limits. They are part of the wire protocol (`proto/README.md` lists the same
//! numbers): a node rejects anything beyond them, and checks the structural ones before it
//! allocates anything for the message.

/// Largest envelope a node accepts, in bytes.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// Deepest nesting of arrays and maps inside a body (the body map itself is depth 1).
pub const MAX_DEPTH: usize = 8;
/// Longest text or byte string inside a body, in bytes.
pub const MAX_STRING_BYTES: usize = 4096;
/// Most entries in one array or map inside a body.
pub const MAX_ITEMS: usize = 64;
/// Longest free text (intent text, offer text, vendor contact), in bytes.
pub const MAX_TEXT_BYTES: usize = 2000;
/// Longest short string (ids, names, places, titles), in bytes.
pub const MAX_SHORT_BYTES: usize = 128;
/// How far in the future a `created` time may lie, in seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 5 * 60;
/// Longest lifetime of an intent (`expires - created`), in seconds: 30 days.
pub const MAX_INTENT_LIFETIME_SECS: u64 = 30 * 24 * 3600;
/// Most members a collective intent looks for.
pub const MAX_GROUP_SIZE: u32 = 1000;
/// Most addresses in a `reply_to` or a vendor profile.
pub const MAX_ADDRS: usize = 8;
/// Longest multiaddr or peer id, in bytes.
pub const MAX_ADDR_BYTES: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits are wire protocol: `proto/README.md` states these numbers, and a node
    /// with other ones would refuse what its peers send, or send what they refuse.
    #[test]
    fn the_limits_are_the_ones_the_protocol_states() {
        assert_eq!(MAX_ENVELOPE_BYTES, 65_536);
        assert_eq!(MAX_DEPTH, 8);
        assert_eq!(MAX_STRING_BYTES, 4096);
        assert_eq!(MAX_ITEMS, 64);
        assert_eq!(MAX_TEXT_BYTES, 2000);
        assert_eq!(MAX_SHORT_BYTES, 128);
        assert_eq!(MAX_CLOCK_SKEW_SECS, 300);
        assert_eq!(MAX_INTENT_LIFETIME_SECS, 2_592_000);
        assert_eq!(MAX_ADDRS, 8);
        assert_eq!(MAX_ADDR_BYTES, 256);
    }
}
