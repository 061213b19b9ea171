//! Token buckets per key (peer, signer): a flood from one source is dropped before it costs
//! work, while normal traffic never notices.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

/// Most keys remembered; beyond this, keys whose bucket is full again are forgotten.
const MAX_KEYS: usize = 10_000;

/// Allows `rate` events per second per key, with bursts of up to `burst`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: HashMap<K, (f64, Instant)>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter of `rate` per second with bursts of `burst`.
    pub fn new(rate: f64, burst: u32) -> Self {
        RateLimiter {
            rate,
            burst: f64::from(burst),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key` at `now`; false if its bucket is empty.
    pub fn allow(&mut self, key: &K, now: Instant) -> bool {
        if self.buckets.len() >= MAX_KEYS && !self.buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = self.buckets.entry(key.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.rate)
            .min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let mut limiter = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow(&"a", t0)));
        assert!(!limiter.allow(&"a", t0));
        assert!(limiter.allow(&"b", t0), "keys are independent");
        assert!(limiter.allow(&"a", t0 + Duration::from_millis(500)));
        assert!(!limiter.allow(&"a", t0 + Duration::from_millis(500)));
    }
}
