//! The checker's mode for probabilistic finality (proof of work). Honest nodes may hold different
//! tentative blocks at a height for a while, so agreement is only required of final blocks; what
//! is held to every node at every step instead is that its own chain is valid. Each node's chain
//! is replayed here on its own ledger as it commits and rewinds: every block must apply to its
//! parent's state (nonces, balances, reward, state root), every transaction must come from a
//! client and appear once in the chain, total supply must equal genesis + height × reward, no
//! rewind may reach below what the node finalized, and the accounts the node stored must equal
//! the replay's.

use std::collections::{BTreeMap, HashMap};

use synod_chain::hash::Hash;
use synod_chain::keys::Address;
use synod_chain::ledger::{Account, AccountChange, Ledger};
use synod_chain::{Block, BlockHeader};

use super::checker::{Violation, check_submitted};

/// One node's chain, replayed.
#[derive(Clone, Debug)]
struct ReplayedChain {
    /// Headers from genesis, by height.
    headers: Vec<BlockHeader>,
    /// Each block's changes and transaction ids (index `height − 1`), to rewind with.
    blocks: Vec<(BTreeMap<Address, AccountChange>, Vec<Hash>)>,
    accounts: BTreeMap<Address, Account>,
    /// Every transaction on the chain and its height.
    txs: HashMap<Hash, u64>,
    finalized: u64,
}

/// Every node's chain replayed, and the final blocks they agreed on.
pub(crate) struct ForkChains {
    ledger: Ledger,
    genesis_supply: u128,
    chains: Vec<ReplayedChain>,
    /// Final blocks by height, with the first node that finalized each.
    final_blocks: BTreeMap<u64, (Hash, usize)>,
}

fn supply(accounts: &BTreeMap<Address, Account>) -> u128 {
    accounts.values().map(|a| u128::from(a.balance)).sum()
}

fn set(accounts: &mut BTreeMap<Address, Account>, address: Address, account: Account) {
    if account == Account::default() {
        accounts.remove(&address);
    } else {
        accounts.insert(address, account);
    }
}

impl ForkChains {
    pub(crate) fn new(
        nodes: usize,
        ledger: Ledger,
        genesis: BlockHeader,
        accounts: BTreeMap<Address, Account>,
    ) -> Self {
        let chain = ReplayedChain {
            headers: vec![genesis],
            blocks: Vec::new(),
            txs: HashMap::new(),
            finalized: 0,
            accounts: accounts.clone(),
        };
        let mut final_blocks = BTreeMap::new();
        final_blocks.insert(0, (genesis.hash(), 0));
        ForkChains {
            ledger,
            genesis_supply: supply(&accounts),
            chains: vec![chain; nodes],
            final_blocks,
        }
    }

    /// Node `node` committed `block` on top of its chain.
    pub(crate) fn on_commit(
        &mut self,
        node: usize,
        block: &Block,
        submitted: &std::collections::HashSet<Hash>,
    ) -> Result<(), Violation> {
        let reward = self.ledger.rules().block_reward;
        let chain = &mut self.chains[node];
        let height = block.header.height;
        let Some(parent) = chain.headers.last().copied() else {
            return Err(Violation::new(
                "durability",
                format!("node {node} has no chain"),
            ));
        };
        if block.header.parent != parent.hash() {
            return Err(Violation::new(
                "durability",
                format!(
                    "node {node} committed {} at height {height} on top of a different block",
                    block.hash().short()
                ),
            ));
        }
        check_submitted(block, submitted)?;
        for tx in &block.txs {
            let id = tx.id();
            if let Some(earlier) = chain.txs.get(&id) {
                return Err(Violation::new(
                    "validity",
                    format!(
                        "node {node}'s chain holds transaction {} twice, at heights {earlier} and {height}",
                        id.short()
                    ),
                ));
            }
        }
        let changes = self
            .ledger
            .apply_block_trusted(&chain.accounts, &parent, block)
            .map_err(|e| {
                Violation::new(
                    "validity",
                    format!("node {node}'s block {height} does not apply to its parent: {e}"),
                )
            })?;
        for (address, change) in &changes.accounts {
            set(&mut chain.accounts, *address, change.after);
        }
        for tx in &block.txs {
            chain.txs.insert(tx.id(), height);
        }
        chain.headers.push(block.header);
        chain.blocks.push((changes.accounts, block.tx_ids()));
        let expected = self.genesis_supply + u128::from(height) * u128::from(reward);
        let actual = supply(&chain.accounts);
        if actual != expected {
            return Err(Violation::new(
                "validity",
                format!(
                    "node {node}'s supply at height {height} is {actual}, genesis + height × reward is {expected}"
                ),
            ));
        }
        Ok(())
    }

    /// Node `node`'s chain went back to `height`; with `finality`, a rewind below what the node
    /// finalized is a violation (a crash losing unsynced commits is not held to it).
    pub(crate) fn on_rewind(
        &mut self,
        node: usize,
        height: u64,
        finality: bool,
    ) -> Result<(), Violation> {
        let chain = &mut self.chains[node];
        if finality && height < chain.finalized {
            return Err(Violation::new(
                "finality",
                format!(
                    "node {node} rewound to {height}, below its finalized height {}",
                    chain.finalized
                ),
            ));
        }
        while chain.headers.len() as u64 > height + 1 {
            let (Some(_), Some((changes, txs))) = (chain.headers.pop(), chain.blocks.pop()) else {
                break;
            };
            for (address, change) in changes {
                set(&mut chain.accounts, address, change.before);
            }
            for id in txs {
                chain.txs.remove(&id);
            }
        }
        Ok(())
    }

    /// Node `node` made its blocks up to `height` final; `hash` is its block there. Honest nodes
    /// must agree on every final block.
    pub(crate) fn on_finalize(
        &mut self,
        node: usize,
        height: u64,
        hash: Hash,
        honest: bool,
    ) -> Result<(), Violation> {
        let chain = &mut self.chains[node];
        if chain.headers.get(height as usize).map(BlockHeader::hash) != Some(hash) {
            return Err(Violation::new(
                "finality",
                format!("node {node} finalized a block at {height} its chain does not hold"),
            ));
        }
        if height <= chain.finalized {
            return Ok(());
        }
        let from = chain.finalized + 1;
        chain.finalized = height;
        if !honest {
            return Ok(());
        }
        for h in from..=height {
            let mine = chain.headers[h as usize].hash();
            match self.final_blocks.get(&h) {
                Some((theirs, other)) if *theirs != mine => {
                    return Err(Violation::new(
                        "agreement",
                        format!(
                            "nodes {other} and {node} finalized different blocks at height {h}: {} and {}",
                            theirs.short(),
                            mine.short()
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    self.final_blocks.insert(h, (mine, node));
                }
            }
        }
        Ok(())
    }

    /// The accounts node `node` stored must be its chain's replay.
    pub(crate) fn check_accounts(
        &self,
        node: usize,
        accounts: &BTreeMap<Address, Account>,
    ) -> Result<(), Violation> {
        let chain = &self.chains[node];
        if chain.accounts != *accounts {
            let differing = chain
                .accounts
                .keys()
                .chain(accounts.keys())
                .find(|a| chain.accounts.get(a) != accounts.get(a));
            return Err(Violation::new(
                "validity",
                format!(
                    "node {node}'s stored accounts at height {} differ from a replay of its chain (first: {differing:?})",
                    chain.headers.len() - 1
                ),
            ));
        }
        Ok(())
    }

    /// Whether transaction `id` is on the chain of every node `include` picks.
    pub(crate) fn on_every_chain(&self, id: &Hash, include: impl Fn(usize) -> bool) -> bool {
        self.chains
            .iter()
            .enumerate()
            .filter(|(i, _)| include(*i))
            .all(|(_, c)| c.txs.contains_key(id))
    }

    /// The highest tip among the nodes `include` picks.
    pub(crate) fn highest_tip(&self, include: impl Fn(usize) -> bool) -> u64 {
        self.chains
            .iter()
            .enumerate()
            .filter(|(i, _)| include(*i))
            .map(|(_, c)| c.headers.len() as u64 - 1)
            .max()
            .unwrap_or(0)
    }

    /// Distinct transactions on the chain of the node with the highest tip among `include`.
    pub(crate) fn committed_count(&self, include: impl Fn(usize) -> bool) -> usize {
        self.chains
            .iter()
            .enumerate()
            .filter(|(i, _)| include(*i))
            .max_by_key(|(_, c)| c.headers.len())
            .map_or(0, |(_, c)| c.txs.len())
    }

    /// The highest final height any node reached.
    pub(crate) fn final_height(&self) -> u64 {
        self.final_blocks.keys().next_back().copied().unwrap_or(0)
    }
}
