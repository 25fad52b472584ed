//! Transactions of blocks a reorganisation removed, back into the pool: they were verified when
//! this node first saw them, so only the stateful checks run again (against the state at the
//! fork point), and they go to the engine like freshly admitted ones.

use std::time::Instant;

use synod_chain::SignedTransaction;
use synod_chain::ledger::AccountSource;

use super::Mempool;

impl Mempool {
    /// Adds the transactions of rewound blocks; returns how many are pending again. One that no
    /// longer fits (its sender's pending spend, a full pool) is left to the engine, which keeps
    /// its own copy and may still include it.
    pub fn give_back<S: AccountSource + ?Sized>(
        &mut self,
        txs: Vec<SignedTransaction>,
        accounts: &S,
        now: Instant,
    ) -> usize {
        txs.into_iter()
            .filter(|tx| self.insert(tx.clone(), accounts, false, now).is_ok())
            .count()
    }
}
