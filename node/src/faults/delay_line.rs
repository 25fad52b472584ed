//! Consensus messages held back by an injected delay until they are due, in due order (jitter
//! reorders them, as a real slow link does). Bounded: past [`MAX_HELD`] messages the newest are
//! dropped, as a full router queue drops them.

use std::collections::BTreeMap;
use std::time::Instant;

use libp2p::PeerId;

/// Most messages held at once.
pub const MAX_HELD: usize = 100_000;

/// Messages waiting for their time.
#[derive(Default)]
pub struct DelayLine {
    queue: BTreeMap<(Instant, u64), (PeerId, Vec<u8>)>,
    seq: u64,
}

impl DelayLine {
    /// Holds `bytes` for `to` until `due`; false (and the message is dropped) when full.
    pub fn hold(&mut self, due: Instant, to: PeerId, bytes: Vec<u8>) -> bool {
        if self.queue.len() >= MAX_HELD {
            return false;
        }
        self.seq += 1;
        self.queue.insert((due, self.seq), (to, bytes));
        true
    }

    /// When the next message is due, if any is held.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|((due, _), _)| *due)
    }

    /// Takes every message due at or before `now`, oldest due first.
    pub fn take_due(&mut self, now: Instant) -> Vec<(PeerId, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            out.push(entry.remove());
        }
        out
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn releases_in_due_order() {
        let mut line = DelayLine::default();
        let now = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(line.hold(now + Duration::from_millis(20), a, vec![1]));
        assert!(line.hold(now + Duration::from_millis(10), b, vec![2]));
        assert_eq!(line.next_due(), Some(now + Duration::from_millis(10)));
        assert!(line.take_due(now).is_empty());
        let due = line.take_due(now + Duration::from_millis(25));
        assert_eq!(due, vec![(b, vec![2]), (a, vec![1])]);
        assert!(line.is_empty() && line.next_due().is_none());
    }
}
