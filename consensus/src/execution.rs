//! The ledger as an engine sees it: the committed accounts, plus speculative state for blocks that
//! are proposed but not yet committed, so a leader can build block `h + 1` while `h` is still
//! being replicated (pipelining). Pure computation over an in-memory account map.

use std::collections::{BTreeMap, VecDeque};

use synod_chain::hash::Hash;
use synod_chain::keys::Address;
use synod_chain::ledger::{
    Account, AccountSource, BlockTemplate, BuiltBlock, Ledger, LedgerError, StateChanges,
};
use synod_chain::store::StoreError;
use synod_chain::{Block, BlockHeader, SignedTransaction, TxVerifier};

use crate::engine::ChainState;

/// A block above the committed tip, with its state changes.
#[derive(Clone, Debug)]
struct Pending {
    header: BlockHeader,
    hash: Hash,
    changes: StateChanges,
}

/// Committed state and a stack of speculative blocks on top of it.
#[derive(Clone, Debug)]
pub struct Execution {
    ledger: Ledger,
    tip: BlockHeader,
    tip_hash: Hash,
    accounts: BTreeMap<Address, Account>,
    pending: VecDeque<Pending>,
}

/// Accounts as of the top of a stack of pending blocks.
struct Layered<'a> {
    base: &'a BTreeMap<Address, Account>,
    layers: &'a VecDeque<Pending>,
}

impl AccountSource for Layered<'_> {
    fn account(&self, address: &Address) -> Result<Account, StoreError> {
        for layer in self.layers.iter().rev() {
            if let Some(change) = layer.changes.accounts.get(address) {
                return Ok(change.after);
            }
        }
        Ok(self.base.get(address).copied().unwrap_or_default())
    }
}

impl Execution {
    /// Execution starting from the committed `chain`.
    pub fn new(ledger: Ledger, chain: ChainState) -> Self {
        Execution {
            ledger,
            tip_hash: chain.tip.hash(),
            tip: chain.tip,
            accounts: chain.accounts,
            pending: VecDeque::new(),
        }
    }

    /// The ledger rules.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The committed tip.
    pub fn tip(&self) -> &BlockHeader {
        &self.tip
    }

    /// The committed tip's id.
    pub fn tip_hash(&self) -> Hash {
        self.tip_hash
    }

    /// Committed accounts.
    pub fn accounts(&self) -> &BTreeMap<Address, Account> {
        &self.accounts
    }

    /// The header at the top of the speculative stack (the committed tip if it is empty).
    pub fn head(&self) -> &BlockHeader {
        self.pending.back().map_or(&self.tip, |p| &p.header)
    }

    /// Height of [`Execution::head`].
    pub fn head_height(&self) -> u64 {
        self.head().height
    }

    /// Ids of the speculative blocks, lowest first.
    pub fn pending_hashes(&self) -> impl Iterator<Item = Hash> + '_ {
        self.pending.iter().map(|p| p.hash)
    }

    fn layered(&self) -> Layered<'_> {
        Layered {
            base: &self.accounts,
            layers: &self.pending,
        }
    }

    /// An account as of the head (speculative blocks included).
    pub fn account(&self, address: &Address) -> Account {
        self.layered().account(address).unwrap_or_default()
    }

    /// Builds the next block on top of the head from `candidates` and keeps its state.
    pub fn build(
        &mut self,
        template: &BlockTemplate,
        candidates: impl IntoIterator<Item = SignedTransaction>,
    ) -> Result<BuiltBlock, LedgerError> {
        let parent = *self.head();
        let built = self
            .ledger
            .build_block(&self.layered(), &parent, template, candidates)?;
        self.pending.push_back(Pending {
            header: built.block.header,
            hash: built.block.hash(),
            changes: built.changes.clone(),
        });
        Ok(built)
    }

    /// Executes `block` on top of the head, checking signatures with `verifier` when given
    /// (otherwise trusting the proposer's checks), and keeps its state.
    pub fn execute(
        &mut self,
        verifier: Option<&mut TxVerifier>,
        block: &Block,
    ) -> Result<(), LedgerError> {
        let parent = *self.head();
        let layered = self.layered();
        let changes = match verifier {
            Some(v) => self.ledger.apply_block(v, &layered, &parent, block)?,
            None => self.ledger.apply_block_trusted(&layered, &parent, block)?,
        };
        self.pending.push_back(Pending {
            header: block.header,
            hash: block.hash(),
            changes,
        });
        Ok(())
    }

    /// Commits `block` as the next block after the tip: reuses its speculative state if it is the
    /// lowest pending block, otherwise executes it now (trusting signatures). Returns its changes.
    pub fn commit(&mut self, block: &Block) -> Result<StateChanges, LedgerError> {
        let hash = block.hash();
        let changes = match self.pending.front() {
            Some(p) if p.hash == hash => self
                .pending
                .pop_front()
                .map(|p| p.changes)
                .expect("front exists"),
            _ => {
                self.pending.clear();
                self.ledger
                    .apply_block_trusted(&self.accounts, &self.tip, block)?
            }
        };
        for (address, change) in &changes.accounts {
            if change.after == Account::default() {
                self.accounts.remove(address);
            } else {
                self.accounts.insert(*address, change.after);
            }
        }
        self.tip = block.header;
        self.tip_hash = hash;
        Ok(changes)
    }

    /// Forgets speculative blocks above `height` (their proposal was overwritten).
    pub fn truncate_above(&mut self, height: u64) {
        while self
            .pending
            .back()
            .is_some_and(|p| p.header.height > height)
        {
            self.pending.pop_back();
        }
    }

    /// Replaces everything with a snapshot of the chain.
    pub fn reset(&mut self, chain: ChainState) {
        self.tip_hash = chain.tip.hash();
        self.tip = chain.tip;
        self.accounts = chain.accounts;
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::block::Seal;
    use synod_chain::fixtures::Fixture;

    fn template(fx: &Fixture, t: u64) -> BlockTemplate {
        BlockTemplate {
            proposer: fx.keys[0].public(),
            timestamp_ms: t,
            seal: Seal::default(),
            max_txs: 100,
        }
    }

    #[test]
    fn builds_on_speculative_state_and_commits_in_order() {
        let fx = Fixture::new("exec", 3, 1_000, 0);
        let chain = ChainState {
            tip: fx.genesis.block.header,
            accounts: fx.genesis.accounts.clone(),
        };
        let mut leader = Execution::new(fx.ledger.clone(), chain.clone());
        // Block 2 spends nonce 1, which is only valid on top of uncommitted block 1.
        let b1 = leader
            .build(&template(&fx, 1), vec![fx.transfer(1, 2, 10, 0, 0)])
            .unwrap();
        let b2 = leader
            .build(&template(&fx, 2), vec![fx.transfer(1, 2, 10, 0, 1)])
            .unwrap();
        assert_eq!(b2.block.txs.len(), 1);
        assert_eq!(leader.head_height(), 2);

        // A follower that never executed them commits the same changes.
        let mut follower = Execution::new(fx.ledger.clone(), chain);
        for built in [&b1, &b2] {
            let ours = leader.commit(&built.block).unwrap();
            let theirs = follower.commit(&built.block).unwrap();
            assert_eq!(ours, theirs);
            assert_eq!(ours, built.changes);
        }
        assert_eq!(leader.accounts(), follower.accounts());
        assert_eq!(leader.tip_hash(), b2.block.hash());
    }

    #[test]
    fn truncation_drops_speculative_state() {
        let fx = Fixture::new("exec", 3, 1_000, 0);
        let chain = ChainState {
            tip: fx.genesis.block.header,
            accounts: fx.genesis.accounts.clone(),
        };
        let mut exec = Execution::new(fx.ledger.clone(), chain);
        exec.build(&template(&fx, 1), vec![fx.transfer(0, 1, 5, 0, 0)])
            .unwrap();
        exec.truncate_above(0);
        assert_eq!(exec.head_height(), 0);
        // The same nonce is spendable again on the (only) real state.
        let again = exec
            .build(&template(&fx, 2), vec![fx.transfer(0, 1, 7, 0, 0)])
            .unwrap();
        assert!(again.rejected.is_empty());
    }
}
