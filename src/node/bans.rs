//! Bans: a peer whose gossip score falls below gossipsub's graylist threshold (one invalid
//! message is enough: they cost 100 each, squared) is disconnected and refused for
//! [`BAN_FOR`], so a flood of invalid messages costs the flooder its connections rather
//! than everyone else the work of decoding what gossipsub would only drop. The event loop
//! applies the list to libp2p's block list.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// How long a banned peer is refused.
pub const BAN_FOR: Duration = Duration::from_secs(600);
/// Most peers banned at once; past it, the ban closest to its end is lifted early.
pub const MAX_BANNED: usize = 4096;

/// The score below which a peer is banned: gossipsub's own graylist threshold (below it,
/// gossipsub already ignores everything the peer sends).
pub fn threshold() -> f64 {
    libp2p::gossipsub::PeerScoreThresholds::default().graylist_threshold
}

/// The banned peers and until when.
#[derive(Debug, Default)]
pub struct Bans {
    until: HashMap<PeerId, Instant>,
}

impl Bans {
    /// Bans `peer` from `now` if `score` is below [`threshold`]. Returns whether it is a new
    /// ban, and the peer whose ban was lifted early to make room, if any.
    pub fn judge(&mut self, peer: PeerId, score: f64, now: Instant) -> (bool, Option<PeerId>) {
        if score >= threshold() || self.until.contains_key(&peer) {
            return (false, None);
        }
        let mut lifted = None;
        if self.until.len() >= MAX_BANNED
            && let Some((&soonest, _)) = self.until.iter().min_by_key(|(_, until)| **until)
        {
            self.until.remove(&soonest);
            lifted = Some(soonest);
        }
        self.until.insert(peer, now + BAN_FOR);
        (true, lifted)
    }

    /// The peers whose ban is over at `now` (no longer banned).
    pub fn lift(&mut self, now: Instant) -> Vec<PeerId> {
        let over: Vec<PeerId> = self
            .until
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &over {
            self.until.remove(peer);
        }
        over
    }

    /// The banned peers.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.until.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_below_the_graylist_is_banned_once_for_the_ban_time() {
        let mut bans = Bans::default();
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        assert_eq!(threshold(), -80.0, "gossipsub's graylist threshold");
        assert_eq!(bans.judge(honest, threshold(), now), (false, None));
        let (mildly_penalised, _) = bans.judge(PeerId::random(), -10.0, now);
        assert!(!mildly_penalised, "a small penalty is no ban");
        assert_eq!(bans.judge(flooder, -100.0, now), (true, None));
        assert_eq!(bans.judge(flooder, -200.0, now), (false, None), "once");
        assert!(bans.lift(now + BAN_FOR - Duration::from_secs(1)).is_empty());
        assert_eq!(bans.lift(now + BAN_FOR), vec![flooder]);
        assert_eq!(bans.peers().count(), 0);
    }

    #[test]
    fn a_full_list_lifts_the_ban_closest_to_its_end() {
        let mut bans = Bans::default();
        let start = Instant::now();
        let first = PeerId::random();
        bans.judge(first, -100.0, start);
        for n in 1..MAX_BANNED {
            let at = start + Duration::from_millis(n as u64);
            bans.judge(PeerId::random(), -100.0, at);
        }
        let late = start + Duration::from_secs(1);
        let (new, lifted) = bans.judge(PeerId::random(), -100.0, late);
        assert!(new);
        assert_eq!(lifted, Some(first));
        assert_eq!(bans.peers().count(), MAX_BANNED);
    }
}
