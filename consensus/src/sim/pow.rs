//! Proof of work in the simulator: mining modelled as exponential block discovery, the durable
//! chain's rewinds and finalization, and the recent blocks a restarting engine reads back.
//!
//! Hash power is virtual but hashes are real. On [`Action::Mine`] the simulator draws, from its
//! seeded generator, how long node `i` takes to find the template's block: exponentially
//! distributed, with a mean of the node's time per block at the reference bits scaled by how
//! much harder the template's bits are (so a retarget that raises the difficulty slows the
//! network down, as it would a real one). When the time comes it stamps the block with the
//! current time, as a miner rolling its timestamp would, searches a real nonce (at the easy
//! targets simulations use, a couple of hashes) and hands the block back as
//! [`Input::BlockMined`]. A later `Mine`, a `StopMining` or a crash cancels the discovery.
//! Exponential waits are memoryless, so replacing a template costs a miner nothing, as it
//! should.

use synod_chain::keys::Address;
use synod_chain::ledger::Account;
use synod_chain::pow::kernel::Kernel;
use synod_chain::pow::midstate::HeaderMidstate;
use synod_chain::pow::uint256::U256;
use synod_chain::store::RecentBlock;
use synod_chain::target::Target;
use synod_chain::{Block, BlockHeader};

use super::checker::Violation;
use super::{EventKind, Sim, SimFailure};
use crate::engine::{Engine, Input, Millis};
use crate::rng::DetRng;

/// How the simulator plays a proof-of-work network.
#[derive(Clone, Debug, PartialEq)]
pub struct PowSimConfig {
    /// Added to the simulated clock (which starts at 0) before it reaches the engines, so that
    /// block timestamps lie after the genesis time as on a real network.
    pub clock_origin_ms: Millis,
    /// Minted per block (the chain's ledger rules); the checker holds every chain to
    /// genesis + height × reward.
    pub block_reward: u64,
    /// How many recent canonical blocks a restarting engine is handed (`Store::recent_blocks`).
    pub restored_blocks: u64,
    /// Each node's hash power.
    pub mining: MiningModel,
}

/// Virtual hash power.
#[derive(Clone, Debug, PartialEq)]
pub struct MiningModel {
    /// Per node, the mean time it takes to find a block at `reference_bits` (0: no hash power).
    pub mean_find_ms: Vec<f64>,
    /// The bits the means refer to.
    pub reference_bits: u32,
}

impl MiningModel {
    /// `nodes` miners of equal power finding a block every `block_time_ms` between them at
    /// `reference_bits`.
    pub fn uniform(nodes: usize, block_time_ms: Millis, reference_bits: u32) -> Self {
        MiningModel::with_shares(&vec![1.0; nodes], block_time_ms, reference_bits)
    }

    /// Miners holding `shares` of the hash power (any scale), finding a block every
    /// `block_time_ms` between them at `reference_bits`.
    pub fn with_shares(shares: &[f64], block_time_ms: Millis, reference_bits: u32) -> Self {
        let total: f64 = shares.iter().sum();
        MiningModel {
            mean_find_ms: shares
                .iter()
                .map(|s| {
                    if *s > 0.0 {
                        block_time_ms as f64 * total / s
                    } else {
                        0.0
                    }
                })
                .collect(),
            reference_bits,
        }
    }

    /// Node `i`'s mean time to find a block at `bits`, if it has hash power.
    fn mean_ms(&self, i: usize, bits: u32) -> Option<f64> {
        let mean = *self.mean_find_ms.get(i)?;
        (mean > 0.0).then(|| mean * difficulty_ratio(bits, self.reference_bits))
    }
}

fn as_f64(value: U256) -> f64 {
    value.limbs().iter().rev().fold(0.0, |acc, limb| {
        acc * 18_446_744_073_709_551_616.0 + *limb as f64
    })
}

/// How many times harder `bits` are than `reference` (the ratio of their targets).
fn difficulty_ratio(bits: u32, reference: u32) -> f64 {
    match (Target::from_compact(bits), Target::from_compact(reference)) {
        (Ok(target), Ok(reference)) => as_f64(reference.as_u256()) / as_f64(target.as_u256()),
        _ => 1.0,
    }
}

/// A delay drawn from the exponential distribution with mean `mean_ms` (at least 1 ms).
fn exponential(rng: &mut DetRng, mean_ms: f64) -> Millis {
    let uniform = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-mean_ms * (1.0 - uniform).ln()).round().max(1.0) as Millis
}

/// Searches a nonce that makes `header` meet the target its bits declare, rolling the timestamp
/// forward by a millisecond whenever 2²⁴ nonces fail. Returns false if the bits are not a target
/// or nothing was found in 64 timestamps (bits far too hard for a simulation).
pub fn solve(header: &mut BlockHeader) -> bool {
    let Ok(target) = Target::from_compact(header.seal.bits) else {
        return false;
    };
    let kernel = Kernel::fastest();
    for _ in 0..64 {
        let midstate = HeaderMidstate::new(header);
        if let Some(solution) = kernel.scan(&midstate, &target, 0..1 << 24).found {
            header.seal.nonce = solution.nonce;
            return true;
        }
        header.timestamp_ms += 1;
    }
    false
}

/// The simulator's proof-of-work state.
pub(super) struct PowSim {
    pub(super) config: PowSimConfig,
    /// Per node, the generation of its current template: a discovery for an older one is void.
    generations: Vec<u64>,
    /// Block 0, which the simulated stores hold below their first commit.
    genesis: Block,
}

impl PowSim {
    pub(super) fn new(config: PowSimConfig, nodes: usize, genesis: Block) -> Self {
        PowSim {
            config,
            generations: vec![0; nodes],
            genesis,
        }
    }
}

impl<E: Engine> Sim<E> {
    /// The clock as the engines see it.
    pub(super) fn engine_now(&self) -> Millis {
        let origin = self
            .proof_of_work
            .as_ref()
            .map_or(0, |p| p.config.clock_origin_ms);
        self.now + origin
    }

    /// Node `i` starts mining `block`, replacing whatever it mined before.
    pub(super) fn start_mining(&mut self, i: usize, block: Block) {
        let Some(pow) = self.proof_of_work.as_mut() else {
            return;
        };
        pow.generations[i] += 1;
        let generation = pow.generations[i];
        let Some(mean) = pow.config.mining.mean_ms(i, block.header.seal.bits) else {
            return;
        };
        let delay = exponential(&mut self.rng, mean);
        let incarnation = self.nodes[i].incarnation;
        self.schedule(
            self.now + delay,
            EventKind::Mined {
                node: i,
                generation,
                incarnation,
                block: Box::new(block),
            },
        );
    }

    /// Node `i` stops mining.
    pub(super) fn stop_mining(&mut self, i: usize) {
        if let Some(pow) = self.proof_of_work.as_mut() {
            pow.generations[i] += 1;
        }
    }

    /// Node `i`'s miner found `block`, if it is still mining that template.
    pub(super) fn on_mined(
        &mut self,
        i: usize,
        generation: u64,
        incarnation: u64,
        mut block: Block,
    ) -> Result<(), SimFailure> {
        let current = self
            .proof_of_work
            .as_ref()
            .is_some_and(|p| p.generations[i] == generation);
        if !current || self.nodes[i].engine.is_none() || self.nodes[i].incarnation != incarnation {
            return Ok(());
        }
        block.header.timestamp_ms = block.header.timestamp_ms.max(self.engine_now());
        if !solve(&mut block.header) {
            self.record(i, || "found no nonce for its template".into());
            return Ok(());
        }
        self.record(i, || {
            format!("mined {} {}", block.header.height, block.hash().short())
        });
        self.input(i, Input::BlockMined(block))
    }

    /// Removes node `i`'s blocks above `height`, restoring the accounts from their undo data and
    /// handing their transactions back to the node's mempool.
    pub(super) fn rewind(&mut self, i: usize, height: u64) -> Result<(), SimFailure> {
        self.record(i, || format!("rewind to {height}"));
        let genesis = self.proof_of_work.as_ref().map(|p| p.genesis.header);
        let node = &mut self.nodes[i];
        // A rewind is a durable write: it also makes earlier unsynced commits durable.
        node.deferred.clear();
        let chain = &mut node.chain;
        let mut returned = Vec::new();
        let mut missing_undo = None;
        for h in (height + 1..=chain.tip.height).rev() {
            let Some(undo) = chain.undo.remove(&h) else {
                missing_undo = Some(h);
                break;
            };
            for (address, before) in undo {
                set_account(&mut chain.accounts, address, before);
            }
            if let Some(block) = chain.blocks.remove(&h) {
                returned.extend(block.txs);
            }
            chain.proofs.remove(&h);
        }
        if let Some(h) = missing_undo {
            return Err(self.failure(Violation::new(
                "finality",
                format!("node {i} was asked to rewind block {h}, which is final"),
            )));
        }
        let tip = match chain.blocks.get(&height) {
            Some(block) => Some(block.header),
            None => genesis.filter(|g| g.height == height),
        };
        let Some(tip) = tip else {
            return Err(self.failure(Violation::new(
                "durability",
                format!("node {i} rewound to {height}, a height its store does not hold"),
            )));
        };
        chain.tip = tip;
        for tx in returned {
            self.accept_seq += 1;
            let seq = self.accept_seq;
            self.nodes[i].mempool.entry(tx.id()).or_insert((seq, tx));
        }
        self.checker
            .on_rewind(i, height)
            .map_err(|v| self.failure(v))?;
        self.check_node_state(i)
    }

    /// Node `i` made its blocks up to `height` final: their undo data goes.
    pub(super) fn finalize(&mut self, i: usize, height: u64) -> Result<(), SimFailure> {
        let genesis = self.proof_of_work.as_ref().map(|p| p.genesis.hash());
        let chain = &mut self.nodes[i].chain;
        let height = height.min(chain.tip.height);
        chain.undo.retain(|h, _| *h > height);
        let hash = match chain.blocks.get(&height) {
            Some(block) => Some(block.hash()),
            None if height == 0 => genesis,
            None => None,
        };
        let Some(hash) = hash else {
            // Below a snapshot's gap: nothing to check.
            return Ok(());
        };
        self.checker
            .on_finalize(i, height, hash)
            .map_err(|v| self.failure(v))
    }

    /// After a commit or a rewind: node `i`'s stored accounts must be its chain's replay.
    pub(super) fn check_node_state(&mut self, i: usize) -> Result<(), SimFailure> {
        if self.proof_of_work.is_none() {
            return Ok(());
        }
        self.checker
            .check_node_accounts(i, &self.nodes[i].chain.accounts)
            .map_err(|v| self.failure(v))
    }

    /// The last canonical blocks of node `i`'s store, as a restarting engine is handed them.
    pub(super) fn recent_blocks(&self, i: usize) -> Vec<RecentBlock> {
        let Some(pow) = self.proof_of_work.as_ref() else {
            return Vec::new();
        };
        let count = pow.config.restored_blocks;
        let chain = &self.nodes[i].chain;
        if count == 0 {
            return Vec::new();
        }
        let from = chain.tip.height.saturating_sub(count - 1);
        let mut recent = Vec::new();
        for height in from..=chain.tip.height {
            let block = match chain.blocks.get(&height) {
                Some(block) => block.clone(),
                None if height == 0 => pow.genesis.clone(),
                None => {
                    recent.clear();
                    continue;
                }
            };
            recent.push(RecentBlock {
                proof: chain.proofs.get(&height).cloned().unwrap_or_default(),
                undo: chain.undo.get(&height).cloned(),
                block,
            });
        }
        recent
    }
}

fn set_account(
    accounts: &mut std::collections::BTreeMap<Address, Account>,
    address: Address,
    account: Account,
) {
    if account == Account::default() {
        accounts.remove(&address);
    } else {
        accounts.insert(address, account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_draws_average_their_mean() {
        let mut rng = DetRng::new(7);
        let n = 20_000;
        let total: u64 = (0..n).map(|_| exponential(&mut rng, 400.0)).sum();
        let mean = total as f64 / n as f64;
        assert!((380.0..420.0).contains(&mean), "{mean}");
    }

    #[test]
    fn harder_bits_take_proportionally_longer() {
        assert_eq!(difficulty_ratio(0x207f_ffff, 0x207f_ffff), 1.0);
        let ratio = difficulty_ratio(0x203f_ffff, 0x207f_ffff);
        assert!((ratio - 2.0).abs() < 1e-6, "{ratio}");
        let model = MiningModel::with_shares(&[3.0, 1.0, 0.0], 1_000, 0x207f_ffff);
        assert_eq!(model.mean_ms(0, 0x207f_ffff), Some(1_000.0 * 4.0 / 3.0));
        assert_eq!(model.mean_ms(1, 0x207f_ffff), Some(4_000.0));
        assert_eq!(model.mean_ms(2, 0x207f_ffff), None);
    }

    #[test]
    fn solved_headers_meet_their_target() {
        let mut header = super::super::bank::fixture().genesis.block.header;
        header.seal.bits = 0x2000_ffff;
        assert!(solve(&mut header));
        let target = Target::from_compact(0x2000_ffff).unwrap();
        assert!(target.is_met_by(&header.hash()));
        header.seal.bits = 0;
        assert!(!solve(&mut header));
    }
}
