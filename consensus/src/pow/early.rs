//! Blocks and headers from the future: stamped further ahead of the local clock than the chain
//! allows. They are not invalid, only early, so they are held (a bounded number) and offered
//! again once the clock has caught up, instead of being refused for good.

use std::collections::BTreeMap;

use synod_chain::{Block, BlockHeader};

use crate::engine::{Millis, NodeId};

/// Early arrivals held at most; beyond it the latest-stamped are dropped (a peer re-announces
/// what still matters once it is due).
pub const MAX_EARLY: usize = 32;

/// What arrived early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Early {
    /// A header (from an announcement or a sync answer).
    Header(BlockHeader),
    /// A whole block.
    Block(Block),
}

impl Early {
    fn header(&self) -> &BlockHeader {
        match self {
            Early::Header(header) => header,
            Early::Block(block) => &block.header,
        }
    }
}

/// Early arrivals by timestamp.
#[derive(Clone, Debug, Default)]
pub struct EarlyArrivals {
    items: BTreeMap<(u64, u64), (Early, Option<NodeId>)>,
    seq: u64,
}

impl EarlyArrivals {
    /// Arrivals held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Holds `item`; when full, the one stamped latest goes.
    pub fn add(&mut self, item: Early, from: Option<NodeId>) {
        self.seq += 1;
        self.items
            .insert((item.header().timestamp_ms, self.seq), (item, from));
        while self.items.len() > MAX_EARLY {
            self.items.pop_last();
        }
    }

    /// When the earliest held item becomes acceptable at a drift of `max_future_ms`.
    pub fn next_due(&self, max_future_ms: u64) -> Option<Millis> {
        self.items
            .keys()
            .next()
            .map(|(timestamp, _)| timestamp.saturating_sub(max_future_ms))
    }

    /// Takes out everything acceptable at `now`.
    pub fn take_due(&mut self, now: Millis, max_future_ms: u64) -> Vec<(Early, Option<NodeId>)> {
        let mut due = Vec::new();
        while let Some(entry) = self.items.first_entry() {
            if entry.key().0 > now.saturating_add(max_future_ms) {
                break;
            }
            due.push(entry.remove());
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::block::{HEADER_VERSION, Seal};
    use synod_chain::hash::Hash;
    use synod_chain::keys::PublicKey;

    fn header(timestamp_ms: u64) -> BlockHeader {
        BlockHeader {
            version: HEADER_VERSION,
            parent: Hash::ZERO,
            height: 1,
            timestamp_ms,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            proposer: PublicKey::default(),
            seal: Seal::default(),
        }
    }

    #[test]
    fn released_when_due_and_bounded_by_dropping_the_latest() {
        let mut early = EarlyArrivals::default();
        early.add(Early::Header(header(5_000)), None);
        early.add(Early::Header(header(3_000)), None);
        assert_eq!(early.next_due(1_000), Some(2_000));
        assert!(early.take_due(1_999, 1_000).is_empty());
        let due = early.take_due(2_000, 1_000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, Early::Header(header(3_000)));
        for t in 0..MAX_EARLY as u64 + 3 {
            early.add(Early::Header(header(10 + t)), None);
        }
        assert_eq!(early.len(), MAX_EARLY);
        // The 5,000 ms one was stamped latest and went first.
        assert!(
            early
                .take_due(u64::MAX, 0)
                .iter()
                .all(|(e, _)| e.header().timestamp_ms < 5_000)
        );
    }
}
