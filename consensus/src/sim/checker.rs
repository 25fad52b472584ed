//! The invariants checked after every simulated step: agreement, validity, durability and
//! continuity of each node's chain, and snapshot correctness. Liveness is checked by the
//! scenario's expectations once faults heal.

use std::collections::{BTreeMap, HashSet};

use synod_chain::codec;
use synod_chain::hash::{Hash, sha256};
use synod_chain::keys::Address;
use synod_chain::ledger::{Account, Ledger};
use synod_chain::{Block, BlockHeader, SignedTransaction};

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant (`agreement`, `validity`, `durability`, `liveness`, ...).
    pub kind: &'static str,
    /// What happened.
    pub detail: String,
}

impl Violation {
    pub(crate) fn new(kind: &'static str, detail: impl Into<String>) -> Self {
        Violation {
            kind,
            detail: detail.into(),
        }
    }
}

/// The chain as the honest nodes decided it, replayed on a reference ledger.
struct Reference {
    ledger: Ledger,
    tip: BlockHeader,
    accounts: BTreeMap<Address, Account>,
    /// Digest of the accounts at each applied height.
    digests: BTreeMap<u64, Hash>,
}

fn digest(accounts: &BTreeMap<Address, Account>) -> Hash {
    let list: Vec<(&Address, &Account)> = accounts.iter().collect();
    sha256(&codec::encode(&list))
}

/// Watches every commit and snapshot of every node.
pub struct Checker {
    canonical: BTreeMap<u64, Hash>,
    waiting: BTreeMap<u64, Block>,
    reference: Reference,
    submitted: HashSet<Hash>,
    node_tips: Vec<u64>,
    honest: Vec<bool>,
    last_commit_at: Option<u64>,
}

impl Checker {
    /// A checker for `nodes` nodes starting from `genesis`.
    pub fn new(
        nodes: usize,
        ledger: Ledger,
        genesis: BlockHeader,
        accounts: BTreeMap<Address, Account>,
    ) -> Self {
        let mut digests = BTreeMap::new();
        digests.insert(genesis.height, digest(&accounts));
        let mut canonical = BTreeMap::new();
        canonical.insert(genesis.height, genesis.hash());
        Checker {
            canonical,
            waiting: BTreeMap::new(),
            reference: Reference {
                ledger,
                tip: genesis,
                accounts,
                digests,
            },
            submitted: HashSet::new(),
            node_tips: vec![genesis.height; nodes],
            honest: vec![true; nodes],
            last_commit_at: None,
        }
    }

    /// Marks a node Byzantine: its commits are not held to agreement.
    pub fn set_byzantine(&mut self, node: usize) {
        self.honest[node] = false;
    }

    /// Records transactions that clients submitted.
    pub fn on_submit(&mut self, txs: &[SignedTransaction]) {
        self.submitted.extend(txs.iter().map(SignedTransaction::id));
    }

    /// Highest height decided by any honest node.
    pub fn decided_height(&self) -> u64 {
        self.canonical.keys().next_back().copied().unwrap_or(0)
    }

    /// Height of the reference ledger (every canonical block up to here applied and checked).
    pub fn reference_height(&self) -> u64 {
        self.reference.tip.height
    }

    /// When the last commit by any node happened.
    pub fn last_commit_at(&self) -> Option<u64> {
        self.last_commit_at
    }

    /// A node's committed height as the checker has seen it.
    pub fn node_tip(&self, node: usize) -> u64 {
        self.node_tips[node]
    }

    /// Checks a block node `node` committed at time `now`.
    pub fn on_commit(&mut self, now: u64, node: usize, block: &Block) -> Result<(), Violation> {
        let height = block.header.height;
        let hash = block.hash();
        if height != self.node_tips[node] + 1 {
            return Err(Violation::new(
                "durability",
                format!(
                    "node {node} committed height {height} on top of its chain at {}",
                    self.node_tips[node]
                ),
            ));
        }
        self.node_tips[node] = height;
        self.last_commit_at = Some(now);
        if !self.honest[node] {
            return Ok(());
        }
        match self.canonical.get(&height) {
            Some(existing) if *existing != hash => {
                return Err(Violation::new(
                    "agreement",
                    format!(
                        "node {node} committed {} at height {height}, another node committed {}",
                        hash.short(),
                        existing.short()
                    ),
                ));
            }
            Some(_) => return Ok(()),
            None => {}
        }
        if let Some(tx) = block
            .txs
            .iter()
            .find(|tx| !self.submitted.contains(&tx.id()))
        {
            return Err(Violation::new(
                "validity",
                format!(
                    "block {height} holds transaction {} that no client submitted",
                    tx.id().short()
                ),
            ));
        }
        self.canonical.insert(height, hash);
        self.waiting.insert(height, block.clone());
        self.advance_reference()
    }

    /// Applies waiting canonical blocks to the reference ledger in height order.
    fn advance_reference(&mut self) -> Result<(), Violation> {
        while let Some(block) = self.waiting.remove(&(self.reference.tip.height + 1)) {
            let changes = self
                .reference
                .ledger
                .apply_block_trusted(&self.reference.accounts, &self.reference.tip, &block)
                .map_err(|e| {
                    Violation::new(
                        "validity",
                        format!("block {} does not apply: {e}", block.header.height),
                    )
                })?;
            for (address, change) in changes.accounts {
                if change.after == Account::default() {
                    self.reference.accounts.remove(&address);
                } else {
                    self.reference.accounts.insert(address, change.after);
                }
            }
            self.reference.tip = block.header;
            self.reference
                .digests
                .insert(block.header.height, digest(&self.reference.accounts));
        }
        Ok(())
    }

    /// Checks a snapshot node `node` installed.
    pub fn on_snapshot(
        &mut self,
        node: usize,
        header: &BlockHeader,
        accounts: &BTreeMap<Address, Account>,
    ) -> Result<(), Violation> {
        let height = header.height;
        if height <= self.node_tips[node] {
            return Err(Violation::new(
                "durability",
                format!(
                    "node {node} installed a snapshot at {height} below its chain at {}",
                    self.node_tips[node]
                ),
            ));
        }
        self.node_tips[node] = height;
        if !self.honest[node] {
            return Ok(());
        }
        match self.canonical.get(&height) {
            Some(hash) if *hash != header.hash() => {
                return Err(Violation::new(
                    "agreement",
                    format!(
                        "node {node} installed a snapshot of a non-canonical block at {height}"
                    ),
                ));
            }
            None => {
                return Err(Violation::new(
                    "validity",
                    format!(
                        "node {node} installed a snapshot at {height}, which no node committed"
                    ),
                ));
            }
            Some(_) => {}
        }
        if let Some(expected) = self.reference.digests.get(&height)
            && *expected != digest(accounts)
        {
            return Err(Violation::new(
                "validity",
                format!(
                    "node {node}'s snapshot at {height} holds accounts that differ from the chain's"
                ),
            ));
        }
        Ok(())
    }
}
