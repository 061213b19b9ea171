//! Withdrawals that came before their intent. Neither gossip nor light push keeps order, so
//! a withdrawal can overtake the intent it withdraws; it is relayed, and remembered here
//! (intent id → the withdrawal's signer) until the intent could no longer be valid, so the
//! intent, if it comes after all, is stored as withdrawn and never answered. At most
//! [`MAX_EARLY_WITHDRAWALS`] are kept: past that, one more is relayed but not remembered.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode, encode};
use crate::proto::IntentId;
use crate::store::IntentKey;

/// Most withdrawals remembered ahead of their intents.
pub const MAX_EARLY_WITHDRAWALS: usize = 10_000;

#[derive(Serialize, Deserialize)]
struct EarlyWithdrawal {
    signer: [u8; 32],
    forget_after: u64,
}

/// The signer of a stored early withdrawal.
pub(super) fn signer_of(value: &[u8]) -> Result<[u8; 32], StoreError> {
    Ok(decode::<EarlyWithdrawal>("early_withdrawals", value)?.signer)
}

impl Store {
    /// Remembers that `signer` withdrew `intent`, which this node does not hold, until
    /// `forget_after`. False when the memory is full. It does not wait for the disk: a
    /// crash forgets it, as it forgets the gossip in flight.
    pub fn remember_early_withdrawal(
        &self,
        intent: &IntentId,
        signer: &[u8; 32],
        forget_after: u64,
    ) -> Result<bool, StoreError> {
        let t = self.trees()?;
        if t.early_count.load(Ordering::SeqCst) >= MAX_EARLY_WITHDRAWALS as u64 {
            return Ok(false);
        }
        let value = EarlyWithdrawal {
            signer: *signer,
            forget_after,
        };
        let key = IntentKey::received(signer, intent).bytes();
        if t.early_withdrawals.insert(key, encode(&value))?.is_none() {
            t.early_count.fetch_add(1, Ordering::SeqCst);
        }
        Ok(true)
    }

    /// Whether `signer` withdrew `intent` before it arrived.
    pub fn withdrawn_early(
        &self,
        intent: &IntentId,
        signer: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let t = self.trees()?;
        match t
            .early_withdrawals
            .get(IntentKey::received(signer, intent).bytes())?
        {
            Some(value) => {
                let early: EarlyWithdrawal = decode("early_withdrawals", &value)?;
                Ok(early.signer == *signer)
            }
            None => Ok(false),
        }
    }

    /// Forgets the early withdrawals whose time has come. Returns how many.
    pub fn purge_early_withdrawals(&self, now: u64) -> Result<usize, StoreError> {
        let t = self.trees()?;
        let mut purged = 0;
        for kv in t.early_withdrawals.iter() {
            let (key, value) = kv?;
            let early: EarlyWithdrawal = decode("early_withdrawals", &value)?;
            if early.forget_after <= now && t.early_withdrawals.remove(key)?.is_some() {
                t.early_count.fetch_sub(1, Ordering::SeqCst);
                purged += 1;
            }
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_withdrawals_are_kept_until_their_time_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (a, b) = (IntentId::from([1; 16]), IntentId::from([2; 16]));
        assert!(store.remember_early_withdrawal(&a, &[9; 32], 100).unwrap());
        assert!(store.remember_early_withdrawal(&b, &[9; 32], 200).unwrap());
        assert!(store.withdrawn_early(&a, &[9; 32]).unwrap());
        assert!(
            !store.withdrawn_early(&a, &[8; 32]).unwrap(),
            "by its signer only"
        );
        assert_eq!(store.purge_early_withdrawals(150).unwrap(), 1);
        assert!(!store.withdrawn_early(&a, &[9; 32]).unwrap());
        assert!(store.withdrawn_early(&b, &[9; 32]).unwrap());
        for n in 0..MAX_EARLY_WITHDRAWALS as u32 - 1 {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.to_be_bytes());
            id[15] = 7;
            assert!(
                store
                    .remember_early_withdrawal(&IntentId::from(id), &[9; 32], 300)
                    .unwrap()
            );
        }
        assert!(
            !store
                .remember_early_withdrawal(&IntentId::from([3; 16]), &[9; 32], 300)
                .unwrap(),
            "full"
        );
    }
}
