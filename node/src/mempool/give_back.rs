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
    /// its own copy and may still include it. The queued caps do not apply: these were admitted
    /// once. Each sender's committed nonce has moved back, so runs are re-read first, and the
    /// transactions go in nonce order (the rewind hands them over newest block first).
    pub fn give_back<S: AccountSource + ?Sized>(
        &mut self,
        mut txs: Vec<SignedTransaction>,
        accounts: &S,
        now: Instant,
    ) -> usize {
        txs.sort_by_key(|tx| (tx.sender(), tx.tx().nonce));
        let mut senders: Vec<_> = txs.iter().map(SignedTransaction::sender).collect();
        senders.dedup();
        for sender in &senders {
            self.rebase(sender, accounts);
        }
        txs.into_iter()
            .filter(|tx| {
                self.insert_as(tx.clone(), accounts, false, false, now)
                    .is_ok()
            })
            .count()
    }
}
