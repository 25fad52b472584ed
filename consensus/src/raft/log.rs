//! The replicated log in memory: entries after the last snapshot, indexed by block height.

use std::collections::VecDeque;

use synod_chain::keys::Signature;

use super::messages::{ConfigChange, LogEntry};

/// Entries `snapshot_index + 1 ..= last_index`, and the term of the snapshot's last entry.
#[derive(Clone, Debug, Default)]
pub struct RaftLog {
    snapshot_index: u64,
    snapshot_term: u64,
    /// The leader's signature over the snapshot's last block.
    snapshot_signature: Option<Signature>,
    entries: VecDeque<LogEntry>,
}

impl RaftLog {
    /// A log whose prefix up to `snapshot_index` is covered by a snapshot.
    pub fn new(
        snapshot_index: u64,
        snapshot_term: u64,
        snapshot_signature: Option<Signature>,
    ) -> Self {
        RaftLog {
            snapshot_index,
            snapshot_term,
            snapshot_signature,
            entries: VecDeque::new(),
        }
    }

    /// The leader's signature over the block at `index`, if known.
    pub fn signature_at(&self, index: u64) -> Option<Signature> {
        if index == self.snapshot_index {
            self.snapshot_signature
        } else {
            self.entry(index).map(|e| e.signature)
        }
    }

    /// Last index the snapshot covers.
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    /// Term of the snapshot's last entry.
    pub fn snapshot_term(&self) -> u64 {
        self.snapshot_term
    }

    /// Index of the last entry (the snapshot index if there are none).
    pub fn last_index(&self) -> u64 {
        self.snapshot_index + self.entries.len() as u64
    }

    /// Term of the last entry.
    pub fn last_term(&self) -> u64 {
        self.entries.back().map_or(self.snapshot_term, |e| e.term)
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: u64) -> Option<&LogEntry> {
        if index <= self.snapshot_index {
            return None;
        }
        self.entries.get((index - self.snapshot_index - 1) as usize)
    }

    /// Term at `index`, if known (entries held, or the snapshot's last).
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index {
            Some(self.snapshot_term)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    /// First index whose term is `term`, searching back from `from`.
    pub fn first_index_of_term(&self, term: u64, from: u64) -> u64 {
        let mut index = from;
        while index > self.snapshot_index + 1 && self.term_at(index - 1) == Some(term) {
            index -= 1;
        }
        index
    }

    /// Last index whose term is `term`, if any entry has it.
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.term == term)
            .map(LogEntry::index)
    }

    /// Entries from `from` on, at most `max_entries` and about `max_bytes` of blocks.
    pub fn entries_from(&self, from: u64, max_entries: usize, max_bytes: usize) -> Vec<LogEntry> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut index = from.max(self.snapshot_index + 1);
        while let Some(entry) = self.entry(index) {
            let size = 256 + entry.block.txs.len() * 180;
            if !out.is_empty() && (out.len() >= max_entries || bytes + size > max_bytes) {
                break;
            }
            bytes += size;
            out.push(entry.clone());
            index += 1;
        }
        out
    }

    /// Appends an entry at `last_index + 1`.
    pub fn push(&mut self, entry: LogEntry) {
        debug_assert_eq!(entry.index(), self.last_index() + 1);
        self.entries.push_back(entry);
    }

    /// Removes entries from `index` on, returning them.
    pub fn truncate_from(&mut self, index: u64) -> Vec<LogEntry> {
        let keep = index.saturating_sub(self.snapshot_index + 1) as usize;
        self.entries.drain(keep.min(self.entries.len())..).collect()
    }

    /// Drops entries up to `index` (now covered by a snapshot with that index and term).
    pub fn compact_to(&mut self, index: u64, term: u64) {
        if index <= self.snapshot_index {
            return;
        }
        let signature = self.signature_at(index);
        let drop = ((index - self.snapshot_index) as usize).min(self.entries.len());
        self.entries.drain(..drop);
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.snapshot_signature = signature;
    }

    /// Replaces the whole log with a snapshot point, keeping later entries only if the log agrees
    /// with the snapshot at its index.
    pub fn reset_to_snapshot(&mut self, index: u64, term: u64, signature: Option<Signature>) {
        if self.term_at(index) == Some(term) && index >= self.snapshot_index {
            self.compact_to(index, term);
            self.snapshot_signature = signature.or(self.snapshot_signature);
        } else {
            self.entries.clear();
            self.snapshot_index = index;
            self.snapshot_term = term;
            self.snapshot_signature = signature;
        }
    }

    /// Membership changes in held entries up to `up_to`, in order.
    pub fn changes_up_to(&self, up_to: u64) -> impl Iterator<Item = ConfigChange> + '_ {
        self.entries
            .iter()
            .take_while(move |e| e.index() <= up_to)
            .filter_map(|e| e.change)
    }

    /// Index of the last entry carrying a membership change, if any is held.
    pub fn last_change_index(&self) -> Option<u64> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.change.is_some())
            .map(LogEntry::index)
    }
}
