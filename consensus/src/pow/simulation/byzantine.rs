//! The Byzantine behaviours a simulated proof-of-work miner can show, as adversaries on its
//! outgoing traffic.
//!
//! Proof of work does not ask who is honest, only where the hash power is: a minority that lies
//! wastes its own work, a majority rewrites the chain. The behaviours make that visible:
//!
//! | behaviour | what the node does |
//! | --- | --- |
//! | `withhold` | a selfish miner: mines as usual but holds back everything it sends until a given moment, then releases it at once, so its blocks stay private until then |
//! | `forge` | instead of announcing each new tip, pushes a forged sibling of it to every peer (stale timestamp, wrong bits, a forged signature, a wrong state root, in turn by height), each with real work for its bits |

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use synod_chain::hash::Hash;
use synod_chain::merkle::merkle_root;
use synod_chain::{Block, BlockHeader, SignedTransaction};

use crate::engine::{Millis, NodeId};
use crate::pow::PowMessage;
use crate::rng::DetRng;
use crate::sim::adversary::{Adversary, Outgoing, Rewriter};
use crate::sim::bank;
use crate::sim::pow::solve;

/// A selfish miner's outgoing traffic: everything it sends before `release_at` is held back and
/// delivered at `release_at`, so its blocks stay private until then.
pub struct Withholder {
    /// When the held messages go out.
    pub release_at: Millis,
}

impl<M> Adversary<M> for Withholder {
    fn outgoing(&mut self, _: &mut DetRng, now: Millis, _: NodeId, msg: M) -> Vec<Outgoing<M>> {
        vec![Outgoing {
            delay: self.release_at.saturating_sub(now),
            msg,
        }]
    }
}

/// How a forging miner corrupts the blocks it announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgery {
    /// Stamped with the genesis time: not after the median time past.
    StaleTimestamp,
    /// Harder bits than the schedule's (re-mined, so the work is real).
    WrongBits,
    /// A body whose one transaction carries a forged signature (the root matches it).
    BadSignature,
    /// An empty body with a state root that is not the ledger's.
    BadStateRoot,
}

impl Forgery {
    /// Every forgery.
    pub const ALL: [Forgery; 4] = [
        Forgery::StaleTimestamp,
        Forgery::WrongBits,
        Forgery::BadSignature,
        Forgery::BadStateRoot,
    ];
}

/// A miner that, instead of announcing each new tip, pushes a forged sibling of it to every peer:
/// the same parent and height, corrupted by the forgeries in turn (by height), with a real nonce
/// for its bits. Forged ids go into `forged`. With no forgeries it announces its tips unchanged.
pub fn forger(forgeries: Vec<Forgery>, forged: Arc<Mutex<Vec<Hash>>>) -> Rewriter<PowMessage> {
    Rewriter {
        rewrite: Box::new(move |_, _, msg| match msg {
            PowMessage::Announce { headers } => {
                let Some(header) = headers.last() else {
                    return Vec::new();
                };
                let turn = header.height as usize % forgeries.len().max(1);
                let Some(forgery) = forgeries.get(turn).copied() else {
                    return vec![PowMessage::Announce { headers }];
                };
                let block = forge(header, forgery);
                if let Ok(mut list) = forged.lock() {
                    list.push(block.hash());
                }
                vec![PowMessage::Blocks {
                    blocks: vec![block],
                }]
            }
            other => vec![other],
        }),
    }
}

fn forge(header: &BlockHeader, forgery: Forgery) -> Block {
    let mut header = *header;
    let mut txs = Vec::new();
    match forgery {
        Forgery::StaleTimestamp => {
            header.timestamp_ms = bank::fixture().genesis.block.header.timestamp_ms;
        }
        Forgery::WrongBits => header.seal.bits = 0x2000_ffff,
        Forgery::BadSignature => {
            let (tx, mut signature) = bank::transfer(0, 0).clone().into_parts();
            signature.0[7] ^= 0x40;
            let tx = SignedTransaction::from_parts(tx, signature);
            header.tx_root = merkle_root(&[tx.id()]);
            txs.push(tx);
        }
        Forgery::BadStateRoot => {
            header.tx_root = merkle_root(&[]);
            header.state_root = Hash([0xab; 32]);
        }
    }
    // The forged block must differ from the real one even when the corruption happens to be a
    // no-op (an empty real block with the forged root), so the proposer changes too.
    header.proposer = bank::validator_key(99).public();
    solve(&mut header);
    Block { header, txs }
}

/// A Byzantine behaviour of a simulated proof-of-work miner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowBehaviour {
    /// Keeps its blocks (and everything else it sends) private until a release time.
    Withhold,
    /// Pushes forged siblings of its blocks instead of announcing them.
    Forge,
}

impl PowBehaviour {
    /// Every behaviour, by name.
    pub const ALL: [PowBehaviour; 2] = [PowBehaviour::Withhold, PowBehaviour::Forge];
}

impl fmt::Display for PowBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowBehaviour::Withhold => "withhold",
            PowBehaviour::Forge => "forge",
        })
    }
}

/// A behaviour name that is not one of [`PowBehaviour::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown proof-of-work behaviour {0:?}; expected withhold or forge")]
pub struct UnknownBehaviour(pub String);

impl FromStr for PowBehaviour {
    type Err = UnknownBehaviour;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PowBehaviour::ALL
            .into_iter()
            .find(|b| b.to_string() == s)
            .ok_or_else(|| UnknownBehaviour(s.to_string()))
    }
}

/// The adversary that gives a miner the behaviour `b`: a withholder releases at `release_at`; a
/// forger cycles through every [`Forgery`].
pub fn adversary(b: PowBehaviour, release_at: Millis) -> Box<dyn Adversary<PowMessage>> {
    match b {
        PowBehaviour::Withhold => Box::new(Withholder { release_at }),
        PowBehaviour::Forge => Box::new(forger(Forgery::ALL.to_vec(), Arc::default())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn behaviours_parse_by_name() {
        for b in PowBehaviour::ALL {
            assert_eq!(b.to_string().parse::<PowBehaviour>().unwrap(), b);
        }
        assert!("equivocate".parse::<PowBehaviour>().is_err());
    }
}
