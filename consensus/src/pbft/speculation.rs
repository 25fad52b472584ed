//! A replica's chain: the executed blocks and, above them, the blocks it has accepted in the
//! current view but not yet executed, each applied to the state the one below leaves (so the
//! primary can build block n+1 before n commits, and a backup can check block n+1 against the
//! balances and nonces n leaves). Also remembers the ids of recently executed blocks (for
//! checkpoints and re-proposals below the executed tip).

use std::collections::{BTreeMap, VecDeque};

use synod_chain::hash::Hash;
use synod_chain::keys::Address;
use synod_chain::ledger::{Account, BlockTemplate, BuiltBlock, Ledger, LedgerError, StateChanges};
use synod_chain::{Block, BlockHeader, SignedTransaction};

use super::signing::Verifier;
use crate::engine::ChainState;
use crate::execution::Execution;

/// Executed state plus accepted, not yet executed, blocks.
#[derive(Clone, Debug)]
pub(super) struct Chain {
    execution: Execution,
    /// Accepted blocks above the executed tip, lowest first (mirrors the execution's stack).
    pending: VecDeque<Block>,
    /// Ids of executed blocks, by height, from the stable checkpoint up.
    executed: BTreeMap<u64, Hash>,
}

impl Chain {
    pub(super) fn new(ledger: Ledger, state: ChainState) -> Self {
        let mut executed = BTreeMap::new();
        executed.insert(state.tip.height, state.tip.hash());
        Chain {
            execution: Execution::new(ledger, state),
            pending: VecDeque::new(),
            executed,
        }
    }

    /// Transactions in accepted blocks not yet executed (work in flight).
    pub(super) fn pending_txs(&self) -> usize {
        self.pending.iter().map(|block| block.txs.len()).sum()
    }

    pub(super) fn executed_height(&self) -> u64 {
        self.execution.tip().height
    }

    pub(super) fn executed_hash(&self) -> Hash {
        self.execution.tip_hash()
    }

    /// The executed block at `height`, if it is recent enough to be remembered.
    pub(super) fn executed_hash_at(&self, height: u64) -> Option<Hash> {
        self.executed.get(&height).copied()
    }

    pub(super) fn accounts(&self) -> &BTreeMap<Address, Account> {
        self.execution.accounts()
    }

    pub(super) fn head_header(&self) -> &BlockHeader {
        self.execution.head()
    }

    pub(super) fn head_height(&self) -> u64 {
        self.execution.head_height()
    }

    pub(super) fn head_hash(&self) -> Hash {
        self.pending
            .back()
            .map_or_else(|| self.executed_hash(), Block::hash)
    }

    /// The nonce the head state (executed plus accepted blocks) expects next from `address`.
    pub(super) fn next_nonce(&self, address: &Address) -> u64 {
        self.execution.account(address).nonce
    }

    fn push(&mut self, block: Block) {
        self.pending.push_back(block);
    }

    /// Applies `block` on top of the head, checking everything (signatures included).
    pub(super) fn extend(&mut self, verifier: &Verifier, block: &Block) -> Result<(), LedgerError> {
        verifier.with_txs(|txs| self.execution.execute(Some(txs), block))?;
        self.push(block.clone());
        Ok(())
    }

    /// Builds the next block on top of the head and keeps it.
    pub(super) fn build(
        &mut self,
        template: &BlockTemplate,
        candidates: Vec<SignedTransaction>,
    ) -> Result<BuiltBlock, LedgerError> {
        let built = self.execution.build(template, candidates)?;
        self.push(built.block.clone());
        Ok(built)
    }

    /// Builds a block on top of the head without keeping it.
    pub(super) fn build_detached(
        &mut self,
        template: &BlockTemplate,
        candidates: Vec<SignedTransaction>,
    ) -> Result<BuiltBlock, LedgerError> {
        let height = self.head_height();
        let built = self.execution.build(template, candidates)?;
        self.execution.truncate_above(height);
        Ok(built)
    }

    /// Executes `block` as the next block after the executed tip: reuses its speculative state if
    /// it is the lowest accepted block, otherwise drops the accepted blocks and checks it fully.
    pub(super) fn execute_next(
        &mut self,
        verifier: &Verifier,
        block: &Block,
    ) -> Result<(StateChanges, Vec<Block>), LedgerError> {
        let hash = block.hash();
        let mut dropped = Vec::new();
        if self.pending.front().map(Block::hash) != Some(hash) {
            dropped = self.truncate_above(self.executed_height());
            self.extend(verifier, block)?;
        }
        let changes = self.execution.commit(block)?;
        self.pending.pop_front();
        self.executed.insert(block.header.height, hash);
        Ok((changes, dropped))
    }

    /// Drops accepted blocks above `height`, returning them.
    pub(super) fn truncate_above(&mut self, height: u64) -> Vec<Block> {
        let keep = height.saturating_sub(self.executed_height()) as usize;
        let dropped: Vec<Block> = self.pending.drain(keep.min(self.pending.len())..).collect();
        self.execution
            .truncate_above(height.max(self.executed_height()));
        dropped
    }

    /// Forgets the ids of executed blocks below `height`.
    pub(super) fn forget_executed_below(&mut self, height: u64) {
        self.executed = self.executed.split_off(&height);
    }
}
