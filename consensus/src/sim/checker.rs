//! The invariants checked after every simulated step: agreement, validity, durability and
//! continuity of each node's chain, snapshot correctness, and that no transaction commits twice.
//! Liveness is checked by the scenario's expectations once faults heal, down to the single
//! transaction: every one a client got accepted by an honest node must commit, or be reported
//! dropped with a reason. For proof of work the checker switches to probabilistic finality
//! ([`Checker::use_probabilistic_finality`], see [`super::finality`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use synod_chain::codec;
use synod_chain::hash::{Hash, sha256};
use synod_chain::keys::Address;
use synod_chain::ledger::{Account, Ledger};
use synod_chain::{Block, BlockHeader, SignedTransaction};

use super::finality::ForkChains;

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

/// Validity: every transaction in `block` was submitted by a client.
pub(super) fn check_submitted(block: &Block, submitted: &HashSet<Hash>) -> Result<(), Violation> {
    match block.txs.iter().find(|tx| !submitted.contains(&tx.id())) {
        Some(tx) => Err(Violation::new(
            "validity",
            format!(
                "block {} holds transaction {} that no client submitted",
                block.header.height,
                tx.id().short()
            ),
        )),
        None => Ok(()),
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
    /// Accepted transactions: the node that accepted each, its sender and nonce.
    accepted: BTreeMap<Hash, (usize, Address, u64)>,
    /// Canonical height of every committed transaction.
    committed_at: HashMap<Hash, u64>,
    /// Transactions an honest node reported dropped, with the reason.
    dropped: HashMap<Hash, String>,
    node_tips: Vec<u64>,
    honest: Vec<bool>,
    last_commit_at: Option<u64>,
    /// Probabilistic finality: each node's chain replayed on its own, agreement on final blocks.
    forks: Option<ForkChains>,
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
            accepted: BTreeMap::new(),
            committed_at: HashMap::new(),
            dropped: HashMap::new(),
            node_tips: vec![genesis.height; nodes],
            honest: vec![true; nodes],
            last_commit_at: None,
            forks: None,
        }
    }

    /// Holds the run to probabilistic finality (proof of work): commits may be rewound, so
    /// agreement is required of final blocks only, each node's chain is replayed and checked on
    /// its own, and a transaction counts as committed once it is on every honest node's chain.
    /// Call before the first commit.
    pub fn use_probabilistic_finality(&mut self) {
        self.forks = Some(ForkChains::new(
            self.honest.len(),
            self.reference.ledger.clone(),
            self.reference.tip,
            self.reference.accounts.clone(),
        ));
    }

    /// Node `node` rewound its chain to `height` (a reorganisation).
    pub fn on_rewind(&mut self, node: usize, height: u64) -> Result<(), Violation> {
        self.node_tips[node] = height;
        match self.forks.as_mut() {
            Some(forks) if self.honest[node] => forks.on_rewind(node, height, true),
            Some(_) => Ok(()),
            None => Err(Violation::new(
                "finality",
                format!("node {node} rewound to {height} on a chain with immediate finality"),
            )),
        }
    }

    /// Node `node` made its blocks up to `height` final; `hash` is its block at `height`.
    pub fn on_finalize(&mut self, node: usize, height: u64, hash: Hash) -> Result<(), Violation> {
        let honest = self.honest[node];
        match self.forks.as_mut() {
            Some(forks) if honest => forks.on_finalize(node, height, hash, honest),
            _ => Ok(()),
        }
    }

    /// With probabilistic finality: node `node`'s stored accounts equal a replay of its chain.
    pub fn check_node_accounts(
        &self,
        node: usize,
        accounts: &BTreeMap<Address, Account>,
    ) -> Result<(), Violation> {
        match self.forks.as_ref() {
            Some(forks) if self.honest[node] => forks.check_accounts(node, accounts),
            _ => Ok(()),
        }
    }

    /// With probabilistic finality, the highest height an honest node finalized.
    pub fn final_height(&self) -> u64 {
        self.forks.as_ref().map_or(0, ForkChains::final_height)
    }

    fn is_committed(&self, id: &Hash) -> bool {
        match self.forks.as_ref() {
            Some(forks) => forks.on_every_chain(id, |i| self.honest[i]),
            None => self.committed_at.contains_key(id),
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

    /// Records that `node` accepted transaction `id` from a client: from now on the system owes
    /// the client a commit or a reported drop (if the node is honest).
    pub fn on_accept(&mut self, tx: &SignedTransaction, node: usize) {
        let t = tx.tx();
        self.accepted
            .entry(tx.id())
            .or_insert((node, tx.sender(), t.nonce));
    }

    /// Records an honest node's report that it gave up a transaction. With immediate finality a
    /// drop is final: a transaction reported dropped that commits (before or after) is a
    /// violation, because a user told so would sign its payment again.
    pub fn on_dropped(&mut self, node: usize, id: Hash, reason: &str) -> Result<(), Violation> {
        self.dropped.entry(id).or_insert_with(|| reason.to_string());
        if self.forks.is_none()
            && let Some(height) = self.committed_at.get(&id)
        {
            return Err(Violation::new(
                "validity",
                format!(
                    "node {node} reported transaction {} dropped ({reason}), but it committed at height {height}",
                    id.short()
                ),
            ));
        }
        Ok(())
    }

    /// A node lost commits it had not made durable: its chain is back at `height`.
    pub fn on_rollback(&mut self, node: usize, height: u64) {
        self.node_tips[node] = height;
        if let Some(forks) = self.forks.as_mut() {
            // Lost commits were never durable, so no finality was promised for them.
            let _ = forks.on_rewind(node, height, false);
        }
    }

    /// Transactions accepted by honest nodes so far.
    pub fn accepted_count(&self) -> usize {
        self.accepted
            .values()
            .filter(|(node, _, _)| self.honest[*node])
            .count()
    }

    /// Distinct transactions in the honest nodes' chain (with probabilistic finality: on the
    /// longest honest chain).
    pub fn committed_count(&self) -> usize {
        match self.forks.as_ref() {
            Some(forks) => forks.committed_count(|i| self.honest[i]),
            None => self.committed_at.len(),
        }
    }

    /// Every transaction an honest node accepted has committed or was reported dropped. Names the
    /// first one that did neither, with how many are missing.
    pub fn check_all_settled(&self) -> Result<(), Violation> {
        let mut missing: Vec<(&Hash, &(usize, Address, u64))> = self
            .accepted
            .iter()
            .filter(|(id, (node, _, _))| {
                self.honest[*node] && !self.is_committed(id) && !self.dropped.contains_key(id)
            })
            .collect();
        // The lowest nonce first: later nonces of its sender may only be waiting behind it.
        missing.sort_by_key(|(_, (_, sender, nonce))| (*nonce, *sender));
        match missing.first() {
            None => Ok(()),
            Some((id, (node, sender, nonce))) => Err(Violation::new(
                "transaction loss",
                format!(
                    "{} of {} accepted transactions never committed and were never reported \
                     dropped (first: {} of {} nonce {nonce}, accepted by node {node})",
                    missing.len(),
                    self.accepted_count(),
                    id.short(),
                    sender,
                ),
            )),
        }
    }

    /// Highest height decided by any honest node (with probabilistic finality: the highest
    /// honest tip).
    pub fn decided_height(&self) -> u64 {
        match self.forks.as_ref() {
            Some(forks) => forks.highest_tip(|i| self.honest[i]),
            None => self.canonical.keys().next_back().copied().unwrap_or(0),
        }
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
        if let Some(forks) = self.forks.as_mut() {
            return forks.on_commit(node, block, &self.submitted);
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
        check_submitted(block, &self.submitted)?;
        for tx in &block.txs {
            if let Some(reason) = self.dropped.get(&tx.id()) {
                return Err(Violation::new(
                    "validity",
                    format!(
                        "transaction {} was reported dropped ({reason}) and then committed at height {height}",
                        tx.id().short()
                    ),
                ));
            }
            if let Some(earlier) = self.committed_at.insert(tx.id(), height) {
                return Err(Violation::new(
                    "validity",
                    format!(
                        "transaction {} committed twice, at heights {earlier} and {height}",
                        tx.id().short()
                    ),
                ));
            }
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
