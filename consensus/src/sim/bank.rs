//! The simulated world's money: a fixed set of funded accounts and a bank of pre-signed transfers
//! between them, signed once per process and shared by every run (signing dominates otherwise).

use std::sync::OnceLock;

use synod_chain::SignedTransaction;
use synod_chain::fixtures::Fixture;
use synod_chain::hash::TaggedHasher;
use synod_chain::keys::SecretKey;

/// Funded accounts in every simulated chain.
pub const ACCOUNTS: usize = 16;
/// Pre-signed transfers per account (nonces 0..N).
pub const NONCES: usize = 256;

/// The simulated chain's fixture: its genesis, ledger rules and account keys.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture::new("synod-sim", ACCOUNTS, 1_000_000_000, 0))
}

/// Transfer `nonce` of account `account` (to the next account, amount 1, fee 1).
pub fn transfer(account: usize, nonce: usize) -> &'static SignedTransaction {
    static BANK: OnceLock<Vec<SignedTransaction>> = OnceLock::new();
    let bank = BANK.get_or_init(|| {
        let fx = fixture();
        (0..ACCOUNTS)
            .flat_map(|a| (0..NONCES).map(move |n| (a, n)))
            .map(|(a, n)| fx.transfer(a, (a + 1) % ACCOUNTS, 1, 1, n as u64))
            .collect()
    });
    &bank[account * NONCES + nonce]
}

/// The key of simulated validator `index`.
pub fn validator_key(index: usize) -> SecretKey {
    let seed = TaggedHasher::new(b"synod/sim-validator")
        .update_u64(index as u64)
        .finish();
    SecretKey::from_seed(seed.0)
}

/// Hands out the bank's transfers in an order that keeps every account's nonces consecutive.
#[derive(Clone, Debug, Default)]
pub struct Clients {
    next_nonce: Vec<usize>,
    next_account: usize,
}

impl Clients {
    /// Clients that have sent nothing yet.
    pub fn new() -> Self {
        Clients {
            next_nonce: vec![0; ACCOUNTS],
            next_account: 0,
        }
    }

    /// The next `count` transfers (fewer if the bank runs dry).
    pub fn next(&mut self, count: usize) -> Vec<SignedTransaction> {
        let mut out = Vec::with_capacity(count);
        let mut tried = 0;
        while out.len() < count && tried < ACCOUNTS * 2 {
            let account = self.next_account;
            self.next_account = (self.next_account + 1) % ACCOUNTS;
            let nonce = self.next_nonce[account];
            if nonce < NONCES {
                out.push(transfer(account, nonce).clone());
                self.next_nonce[account] += 1;
                tried = 0;
            } else {
                tried += 1;
            }
        }
        out
    }
}
