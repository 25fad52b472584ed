//! Applying transactions and blocks, and building a block from candidate transactions.

use std::collections::HashSet;

use super::{AccountSource, StateChanges, StateOverlay, next_state_root};
use crate::block::{Block, BlockError, BlockHeader, HEADER_VERSION, Seal};
use crate::hash::Hash;
use crate::keys::{Address, PublicKey};
use crate::limits::MAX_BLOCK_TXS;
use crate::merkle::merkle_root;
use crate::store::StoreError;
use crate::tx::{SignedTransaction, TxError};
use crate::verifier::TxVerifier;

/// The chain-wide rules the ledger enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRules {
    /// Transactions for any other chain are refused.
    pub chain_id: String,
    /// Minted to the proposer of every block (proof of work pays miners; 0 elsewhere).
    pub block_reward: u64,
}

/// Why a block could not be applied: it is invalid, or its state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The block breaks a rule.
    #[error(transparent)]
    Invalid(#[from] BlockError),
    /// Reading account state failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a proposer fixes about the block it builds, besides its transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockTemplate {
    /// Who proposes; fees and the reward go to its address.
    pub proposer: PublicKey,
    /// Proposal time, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Engine-specific header fields.
    pub seal: Seal,
    /// Most transactions to include.
    pub max_txs: usize,
}

/// A block built by [`Ledger::build_block`], with what it does to the state and what it left out.
#[derive(Debug)]
pub struct BuiltBlock {
    /// The block, its roots filled in.
    pub block: Block,
    /// Its state changes (what the store will write).
    pub changes: StateChanges,
    /// Candidates that were left out, with the reason.
    pub rejected: Vec<(Hash, TxError)>,
}

/// The state transition function.
#[derive(Clone, Debug)]
pub struct Ledger {
    rules: LedgerRules,
}

impl Ledger {
    /// A ledger enforcing `rules`.
    pub fn new(rules: LedgerRules) -> Self {
        Ledger { rules }
    }

    /// The rules.
    pub fn rules(&self) -> &LedgerRules {
        &self.rules
    }

    /// Applies one transaction whose signature has already been verified. On error nothing in
    /// `state` changes.
    pub fn apply_tx<S: AccountSource + ?Sized>(
        &self,
        state: &mut StateOverlay<'_, S>,
        tx: &SignedTransaction,
        proposer: &Address,
    ) -> Result<(), ApplyTxError> {
        tx.check_stateless(&self.rules.chain_id)?;
        let t = tx.tx();
        let sender_address = tx.sender();
        let mut sender = state.get(&sender_address)?;
        if t.nonce != sender.nonce {
            return Err(TxError::BadNonce {
                expected: sender.nonce,
                got: t.nonce,
            }
            .into());
        }
        let needed = t.amount.checked_add(t.fee).ok_or(TxError::AmountOverflow)?;
        if sender.balance < needed {
            return Err(TxError::InsufficientBalance {
                balance: sender.balance,
                needed,
            }
            .into());
        }
        sender.nonce = sender.nonce.checked_add(1).ok_or(TxError::NonceExhausted)?;
        sender.balance -= needed;

        // Credit recipient and proposer on copies, so a refusal leaves `state` untouched. Either
        // may be the sender itself, so each read sees the writes before it.
        let mut writes: Vec<(Address, super::Account)> = vec![(sender_address, sender)];
        for (address, credit) in [(t.to, t.amount), (*proposer, t.fee)] {
            let current = match writes.iter().find(|(a, _)| *a == address) {
                Some((_, account)) => *account,
                None => state.get(&address)?,
            };
            let updated = super::Account {
                balance: current
                    .balance
                    .checked_add(credit)
                    .ok_or(TxError::BalanceOverflow)?,
                nonce: current.nonce,
            };
            match writes.iter_mut().find(|(a, _)| *a == address) {
                Some(slot) => slot.1 = updated,
                None => writes.push((address, updated)),
            }
        }
        for (address, account) in writes {
            state.set(address, account)?;
        }
        Ok(())
    }

    /// Applies `block` on top of `parent`, checking everything: shape, linkage, signatures (batched,
    /// through `verifier`'s cache), each transaction against the state, the reward and the state
    /// root. Returns the changes to store.
    pub fn apply_block<S: AccountSource + ?Sized>(
        &self,
        verifier: &mut TxVerifier,
        source: &S,
        parent: &BlockHeader,
        block: &Block,
    ) -> Result<StateChanges, LedgerError> {
        self.apply(Some(verifier), source, parent, block)
    }

    /// Applies `block` like [`Ledger::apply_block`] but without checking signatures: for a
    /// crash-fault replica that trusts its leader to have verified them (Raft followers). Every
    /// other rule, and the state root, is still checked, so replicas cannot silently diverge.
    pub fn apply_block_trusted<S: AccountSource + ?Sized>(
        &self,
        source: &S,
        parent: &BlockHeader,
        block: &Block,
    ) -> Result<StateChanges, LedgerError> {
        self.apply(None, source, parent, block)
    }

    fn apply<S: AccountSource + ?Sized>(
        &self,
        verifier: Option<&mut TxVerifier>,
        source: &S,
        parent: &BlockHeader,
        block: &Block,
    ) -> Result<StateChanges, LedgerError> {
        block.check_shape()?;
        let header = &block.header;
        if header.height != parent.height + 1 {
            return Err(BlockError::WrongHeight {
                expected: parent.height + 1,
                got: header.height,
            }
            .into());
        }
        let parent_hash = parent.hash();
        if header.parent != parent_hash {
            return Err(BlockError::WrongParent {
                height: header.height,
                expected: parent_hash,
                got: header.parent,
            }
            .into());
        }
        let ids = block.tx_ids();
        let mut seen = HashSet::with_capacity(ids.len());
        for id in &ids {
            if !seen.insert(*id) {
                return Err(BlockError::DuplicateTx(*id).into());
            }
        }
        if let Some(verifier) = verifier {
            verifier
                .verify_block(&block.txs, &ids)
                .map_err(|(index, error)| BlockError::Tx { index, error })?;
        }

        let proposer = header.proposer.address();
        let mut state = StateOverlay::new(source);
        for (index, tx) in block.txs.iter().enumerate() {
            match self.apply_tx(&mut state, tx, &proposer) {
                Ok(()) => {}
                Err(ApplyTxError::Tx(error)) => {
                    return Err(BlockError::Tx { index, error }.into());
                }
                Err(ApplyTxError::Store(e)) => return Err(e.into()),
            }
        }
        self.credit_reward(&mut state, &proposer)?;
        let accounts = state.into_changes();
        let state_root = next_state_root(&parent.state_root, header.height, &accounts);
        if state_root != header.state_root {
            return Err(BlockError::StateRootMismatch {
                header: header.state_root,
                computed: state_root,
            }
            .into());
        }
        Ok(StateChanges {
            accounts,
            state_root,
        })
    }

    fn credit_reward<S: AccountSource + ?Sized>(
        &self,
        state: &mut StateOverlay<'_, S>,
        proposer: &Address,
    ) -> Result<(), LedgerError> {
        if self.rules.block_reward == 0 {
            return Ok(());
        }
        let mut account = state.get(proposer)?;
        account.balance = account
            .balance
            .checked_add(self.rules.block_reward)
            .ok_or(BlockError::RewardOverflow)?;
        state.set(*proposer, account)?;
        Ok(())
    }

    /// Builds the next block after `parent` from `candidates` (signatures already verified), in
    /// order, skipping any that do not apply, up to `template.max_txs`.
    pub fn build_block<S: AccountSource + ?Sized>(
        &self,
        source: &S,
        parent: &BlockHeader,
        template: &BlockTemplate,
        candidates: impl IntoIterator<Item = SignedTransaction>,
    ) -> Result<BuiltBlock, LedgerError> {
        let max_txs = template.max_txs.min(MAX_BLOCK_TXS);
        let proposer_address = template.proposer.address();
        let mut state = StateOverlay::new(source);
        let mut txs = Vec::new();
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        let mut rejected = Vec::new();
        for tx in candidates {
            if txs.len() >= max_txs {
                break;
            }
            let id = tx.id();
            if !seen.insert(id) {
                continue;
            }
            match self.apply_tx(&mut state, &tx, &proposer_address) {
                Ok(()) => {
                    ids.push(id);
                    txs.push(tx);
                }
                Err(ApplyTxError::Tx(error)) => rejected.push((id, error)),
                Err(ApplyTxError::Store(e)) => return Err(e.into()),
            }
        }
        self.credit_reward(&mut state, &proposer_address)?;
        let height = parent.height + 1;
        let accounts = state.into_changes();
        let state_root = next_state_root(&parent.state_root, height, &accounts);
        let header = BlockHeader {
            version: HEADER_VERSION,
            parent: parent.hash(),
            height,
            timestamp_ms: template.timestamp_ms,
            tx_root: merkle_root(&ids),
            state_root,
            proposer: template.proposer,
            seal: template.seal,
        };
        Ok(BuiltBlock {
            block: Block { header, txs },
            changes: StateChanges {
                accounts,
                state_root,
            },
            rejected,
        })
    }
}

/// Why one transaction did not apply.
#[derive(Debug, thiserror::Error)]
pub enum ApplyTxError {
    /// The transaction breaks a rule.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// Reading account state failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
