//! Noticing a nonce gap that will never fill. A sender's pending transactions behind a missing
//! nonce cannot commit until a transaction with that nonce does; if none arrives (the client's
//! earlier transaction expired, was refused, or went to a node that lost it) they would wait out
//! their whole lifetime holding pool room. A gap counts as never filling once the sender's
//! committed nonce has not moved for `patience` while the gap stood: as long as the account makes
//! progress (its earlier transactions committing through other nodes), the wait is fine.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use synod_chain::hash::Hash;
use synod_chain::keys::Address;
use synod_chain::ledger::AccountSource;

use super::Mempool;

/// How long a gap may stand with its sender's committed nonce unchanged before the transactions
/// behind it are dropped (the housekeeping pass that notices runs every 30 s).
pub const GAP_PATIENCE: Duration = Duration::from_secs(60);

impl Mempool {
    /// Drops every pending transaction of a sender whose lowest pending nonce has stood above
    /// its committed nonce, with that committed nonce unchanged, for longer than `patience`.
    /// Returns how many were dropped; each is reported with the missing nonce.
    pub fn drop_unfillable_gaps<S: AccountSource + ?Sized>(
        &mut self,
        accounts: &S,
        now: Instant,
        patience: Duration,
    ) -> usize {
        let mut gapped: HashSet<Address> = HashSet::new();
        let mut stranded: Vec<(Hash, u64)> = Vec::new();
        for (sender, pending) in &self.by_account {
            let (Some(lowest), Ok(account)) = (pending.keys().next(), accounts.account(sender))
            else {
                continue;
            };
            if *lowest <= account.nonce {
                continue;
            }
            gapped.insert(*sender);
            let since = self.gaps.entry(*sender).or_insert((account.nonce, now));
            if since.0 != account.nonce {
                *since = (account.nonce, now);
            } else if now.saturating_duration_since(since.1) > patience {
                stranded.extend(pending.values().map(|id| (*id, account.nonce)));
            }
        }
        self.gaps.retain(|sender, _| gapped.contains(sender));
        for (id, missing) in &stranded {
            self.drop_tx(
                id,
                format!(
                    "queued behind nonce {missing}, which no transaction filled for {} s",
                    patience.as_secs()
                ),
            );
        }
        stranded.len()
    }
}
