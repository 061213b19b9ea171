//! Rate limits per key (peer, signer), by governor's GCRA (a token bucket kept as one
//! timestamp per key): a flood from one source is dropped before it costs work, while normal
//! traffic never notices.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::Quota;
use governor::clock::{Clock, FakeRelativeClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;

/// Most keys remembered.
const MAX_KEYS: usize = 10_000;

/// governor's keyed limiter on a clock that only its owner advances.
type Keyed<K> =
    governor::RateLimiter<K, HashMapStateStore<K>, FakeRelativeClock, NoOpMiddleware<Nanos>>;

/// Allows `rate` events per second per key, with bursts of up to `burst`.
///
/// Time comes from the caller: each [`RateLimiter::allow`] moves the limiter's clock (a
/// governor clock that only its owner advances) on to the `now` it is given, so the node
/// passes the current instant and a test passes any instant it likes without sleeping. The
/// clock never goes back: an earlier `now` counts as the latest one seen.
///
/// Bounded to 10,000 keys (`MAX_KEYS`): at the bound, the keys whose allowance has been full
/// again for a refill period are forgotten with governor's `retain_recent`, then
/// `shrink_to_fit`. If that frees less than half, as in a flood of fresh keys, every key is
/// forgotten: a fresh key gets a full burst anyway, so this gives a flooder nothing new, and
/// each such sweep is paid for by thousands of new keys.
#[derive(Debug)]
pub struct RateLimiter<K: Hash + Eq + Clone> {
    quota: Quota,
    /// When the clock read zero.
    origin: Instant,
    limiter: Keyed<K>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter of `rate` per second with bursts of `burst`.
    ///
    /// # Panics
    ///
    /// If `rate` is not a positive finite number or `burst` is zero.
    pub fn new(rate: f64, burst: u32) -> Self {
        let quota = Duration::try_from_secs_f64(rate.recip())
            .ok()
            .and_then(Quota::with_period)
            .expect("a rate limit needs a positive finite rate")
            .allow_burst(NonZeroU32::new(burst).expect("a rate limit needs a burst of at least 1"));
        RateLimiter {
            quota,
            origin: Instant::now(),
            limiter: Keyed::hashmap_with_clock(quota, FakeRelativeClock::default()),
        }
    }

    /// Takes one event's allowance for `key` at `now`; false if `key` has none left.
    pub fn allow(&mut self, key: &K, now: Instant) -> bool {
        let clock = self.limiter.clock();
        let target = now.saturating_duration_since(self.origin);
        let current = Duration::from_nanos(clock.now().as_u64());
        clock.advance(target.saturating_sub(current));
        if self.limiter.len() >= MAX_KEYS {
            self.make_room();
        }
        self.limiter.check_key(key).is_ok()
    }

    /// Forgets idle keys, or all keys if too few are idle (see the type's documentation).
    fn make_room(&mut self) {
        self.limiter.retain_recent();
        if self.limiter.len() > MAX_KEYS / 2 {
            let clock = self.limiter.clock().clone();
            self.limiter = Keyed::hashmap_with_clock(self.quota, clock);
        }
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let mut limiter = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow(&"a", t0)));
        assert!(!limiter.allow(&"a", t0));
        assert!(limiter.allow(&"b", t0), "keys are independent");
        assert!(limiter.allow(&"a", t0 + Duration::from_millis(500)));
        assert!(!limiter.allow(&"a", t0 + Duration::from_millis(500)));
        let full = t0 + Duration::from_secs(10);
        assert!(
            (0..3).all(|_| limiter.allow(&"a", full)),
            "never more than the burst"
        );
        assert!(!limiter.allow(&"a", full));
    }

    #[test]
    fn rates_below_one_per_second_work() {
        let mut limiter = RateLimiter::new(0.2, 5);
        let t0 = Instant::now();
        assert!((0..5).all(|_| limiter.allow(&[7u8; 32], t0)));
        assert!(!limiter.allow(&[7u8; 32], t0));
        assert!(!limiter.allow(&[7u8; 32], t0 + Duration::from_millis(4_999)));
        assert!(limiter.allow(&[7u8; 32], t0 + Duration::from_secs(5)));
        assert!(!limiter.allow(&[7u8; 32], t0 + Duration::from_secs(5)));
        assert!(limiter.allow(&[7u8; 32], t0 + Duration::from_secs(10)));
    }

    #[test]
    fn high_rates_refill_exactly() {
        let mut limiter = RateLimiter::new(4000.0, 8000);
        let t0 = Instant::now();
        assert!((0..8000).all(|_| limiter.allow(&"peer", t0)));
        assert!(!limiter.allow(&"peer", t0));
        let t1 = t0 + Duration::from_millis(1);
        assert!((0..4).all(|_| limiter.allow(&"peer", t1)));
        assert!(!limiter.allow(&"peer", t1));
    }

    #[test]
    fn time_does_not_run_backwards() {
        let mut limiter = RateLimiter::new(1.0, 1);
        let t0 = Instant::now();
        assert!(limiter.allow(&"a", t0 + Duration::from_secs(5)));
        assert!(
            !limiter.allow(&"a", t0),
            "an earlier instant counts as the latest"
        );
        assert!(limiter.allow(&"a", t0 + Duration::from_secs(6)));
    }

    #[test]
    fn remembers_at_most_max_keys_and_keeps_working() {
        let mut limiter = RateLimiter::new(1.0, 2);
        let t0 = Instant::now();
        // A flood of fresh keys, all busy at once.
        for key in 0..2 * MAX_KEYS as u32 {
            assert!(limiter.allow(&key, t0), "a fresh key has its burst");
            assert!(limiter.limiter.len() <= MAX_KEYS);
        }
        assert!(limiter.allow(&u32::MAX, t0));
        assert!(limiter.allow(&u32::MAX, t0));
        assert!(!limiter.allow(&u32::MAX, t0), "still limits");
    }

    #[test]
    fn forgets_idle_keys_before_limited_ones() {
        let mut limiter = RateLimiter::new(1.0, 2);
        let t0 = Instant::now();
        for key in 0..MAX_KEYS as u32 - 1 {
            assert!(limiter.allow(&key, t0));
        }
        // Later, when those keys are idle again, one key uses its allowance up.
        let later = t0 + Duration::from_secs(60);
        let hot = u32::MAX;
        assert!(limiter.allow(&hot, later));
        assert_eq!(limiter.limiter.len(), MAX_KEYS);
        assert!(limiter.allow(&hot, later), "at the bound, room is made");
        assert_eq!(limiter.limiter.len(), 1, "the idle keys are forgotten");
        assert!(!limiter.allow(&hot, later), "the limited key is not");
    }
}
