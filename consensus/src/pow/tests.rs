//! The engine driven by hand: fork choice, reorganisation bookkeeping, the pool's give-back,
//! finality, orphans, early blocks, rejections with reasons, mining templates, restarts, and both
//! ways of catching up.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use synod_chain::block::Seal;
use synod_chain::fixtures::Fixture;
use synod_chain::hash::Hash;
use synod_chain::keys::Address;
use synod_chain::ledger::{Account, BlockTemplate};
use synod_chain::store::RecentBlock;
use synod_chain::{Block, BlockHeader, SignedTransaction};
use synod_genesis::{DifficultyAlgorithm, PowParams};

use super::difficulty::DifficultyRule;
use super::*;
use crate::engine::{ChainState, CommittedBlock, SyncedBlock};
use crate::sim::pow::solve;

const EASY: u32 = 0x207f_ffff;

fn fixture() -> Fixture {
    Fixture::new("pow-engine", 4, 1_000_000, 50)
}

fn genesis_time() -> u64 {
    fixture().genesis.block.header.timestamp_ms
}

fn params() -> PowParams {
    PowParams {
        initial_bits: EASY,
        pow_limit_bits: EASY,
        target_block_time_ms: 1_000,
        difficulty: DifficultyAlgorithm::Bitcoin,
        retarget_window: 1_000,
        max_future_block_time_ms: 5_000,
        max_reorg_depth: 6,
        block_reward: 50,
        ..PowParams::default()
    }
}

fn peer(i: u8) -> NodeId {
    synod_chain::keys::SecretKey::from_seed([i; 32]).public()
}

/// A chain built outside the engine: its blocks and the accounts after each.
#[derive(Clone)]
struct Chain {
    params: PowParams,
    blocks: Vec<Block>,
    states: Vec<BTreeMap<Address, Account>>,
}

impl Chain {
    fn new(params: &PowParams) -> Chain {
        let fx = fixture();
        Chain {
            params: params.clone(),
            blocks: vec![fx.genesis.block.clone()],
            states: vec![fx.genesis.accounts.clone()],
        }
    }

    fn tip(&self) -> &Block {
        self.blocks.last().unwrap()
    }

    /// The chain up to `height`, to branch off from.
    fn fork_at(&self, height: u64) -> Chain {
        let keep = height as usize + 1;
        Chain {
            params: self.params.clone(),
            blocks: self.blocks[..keep].to_vec(),
            states: self.states[..keep].to_vec(),
        }
    }

    /// Mines the next block with `txs`, stamped `gap_ms` after its parent, by miner `salt`.
    fn mine(&mut self, txs: Vec<SignedTransaction>, gap_ms: u64, salt: u8) -> Block {
        let fx = fixture();
        let parent = self.tip().header;
        let rule = DifficultyRule::new(&self.params, genesis_time()).unwrap();
        let blocks = &self.blocks;
        let bits = rule
            .next_bits(&parent, |h| {
                blocks.get(h as usize).map(|b| b.header.timestamp_ms)
            })
            .unwrap();
        let built = fx
            .ledger
            .build_block(
                self.states.last().unwrap(),
                &parent,
                &BlockTemplate {
                    proposer: fx.keys[salt as usize % 4].public(),
                    timestamp_ms: parent.timestamp_ms + gap_ms,
                    seal: Seal {
                        round: 0,
                        bits,
                        nonce: 0,
                    },
                    max_txs: 100,
                },
                txs,
            )
            .unwrap();
        assert!(built.rejected.is_empty(), "{:?}", built.rejected);
        let mut block = built.block;
        assert!(solve(&mut block.header));
        let mut state = self.states.last().unwrap().clone();
        super::ledger_view::apply(&mut state, &built.changes);
        self.blocks.push(block.clone());
        self.states.push(state);
        block
    }

    fn extend(&mut self, count: usize, salt: u8) -> Vec<Block> {
        (0..count)
            .map(|_| self.mine(Vec::new(), 1_000, salt))
            .collect()
    }
}

fn restored_at_genesis() -> Restored {
    let fx = fixture();
    Restored {
        engine_state: BTreeMap::new(),
        chain: ChainState {
            tip: fx.genesis.block.header,
            accounts: fx.genesis.accounts.clone(),
        },
        recent: Vec::new(),
    }
}

fn engine_with(params: PowParams, restored: Restored, mining: bool) -> PowEngine {
    let mut config = PowConfig::new(peer(0), vec![peer(1), peer(2)], params, genesis_time(), 7);
    config.mining = mining;
    PowEngine::new(config, fixture().ledger, restored).unwrap()
}

fn engine(params: PowParams) -> PowEngine {
    engine_with(params, restored_at_genesis(), false)
}

/// Far enough after genesis that no test block is early.
fn late() -> Millis {
    genesis_time() + 1_000_000
}

fn handle(
    engine: &mut PowEngine,
    now: Millis,
    input: Input<PowMessage>,
) -> Vec<Action<PowMessage>> {
    let mut out = Vec::new();
    engine.handle(now, input, &mut out);
    out
}

/// Delivers `blocks` from `from`, in messages of the largest size the engine takes.
fn deliver(engine: &mut PowEngine, from: NodeId, blocks: Vec<Block>) -> Vec<Action<PowMessage>> {
    blocks
        .chunks(messages::MAX_BLOCKS_PER_MESSAGE)
        .flat_map(|chunk| {
            handle(
                engine,
                late(),
                Input::Message {
                    from,
                    msg: PowMessage::Blocks {
                        blocks: chunk.to_vec(),
                    },
                },
            )
        })
        .collect()
}

fn commits(actions: &[Action<PowMessage>]) -> Vec<&CommittedBlock> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Commit(c) => Some(c.as_ref()),
            _ => None,
        })
        .collect()
}

fn rewinds(actions: &[Action<PowMessage>]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Rewind { height } => Some(*height),
            _ => None,
        })
        .collect()
}

fn rejections(actions: &[Action<PowMessage>]) -> Vec<(Option<NodeId>, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(EngineEvent::BlockRejected { from, reason, .. }) => {
                Some((*from, reason.clone()))
            }
            _ => None,
        })
        .collect()
}

fn mined(actions: &[Action<PowMessage>]) -> Option<Block> {
    actions.iter().rev().find_map(|a| match a {
        Action::Mine(block) => Some(block.as_ref().clone()),
        _ => None,
    })
}

#[test]
fn extends_the_tip_commits_each_block_and_announces_it() {
    let mut chain = Chain::new(&params());
    let blocks = chain.extend(2, 1);
    let mut pow = engine(params());
    let actions = deliver(&mut pow, peer(1), blocks.clone());
    let committed: Vec<Hash> = commits(&actions).iter().map(|c| c.block.hash()).collect();
    assert_eq!(committed, vec![blocks[0].hash(), blocks[1].hash()]);
    assert!(
        commits(&actions)
            .iter()
            .all(|c| c.finality == synod_chain::Finality::Tentative)
    );
    // The proof is the block's chainwork: two blocks of work 2 on genesis' 2.
    let work = chainwork_from_proof(&commits(&actions)[1].proof).unwrap();
    assert_eq!(work, pow.tip_chainwork());
    assert_eq!(work.as_u256().low_u64(), 6);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Broadcast(PowMessage::Announce { headers }) if headers.last() == Some(&blocks[1].header)
    )));
    let status = pow.status();
    assert_eq!(
        (status.role, status.round, status.committed_height),
        (Role::Follower, 0, 2)
    );
}

#[test]
fn the_first_block_seen_wins_a_tie_and_more_work_wins_a_reorg() {
    let mut a = Chain::new(&params());
    let a1 = a.extend(1, 1);
    let mut b = Chain::new(&params());
    let b1 = b.extend(1, 2);
    let mut pow = engine(params());
    deliver(&mut pow, peer(1), a1.clone());
    // Same work, seen second: not followed.
    let actions = deliver(&mut pow, peer(2), b1.clone());
    assert!(commits(&actions).is_empty());
    assert_eq!(pow.tip_hash(), a1[0].hash());
    // One more block on b: heavier, so the tip moves over with a rewind to the fork point.
    let b2 = b.extend(1, 2);
    let actions = deliver(&mut pow, peer(2), b2.clone());
    assert_eq!(rewinds(&actions), vec![0]);
    let committed: Vec<Hash> = commits(&actions).iter().map(|c| c.block.hash()).collect();
    assert_eq!(committed, vec![b1[0].hash(), b2[0].hash()]);
    // The rewind comes before the commits.
    let rewind_at = actions
        .iter()
        .position(|a| matches!(a, Action::Rewind { .. }))
        .unwrap();
    let commit_at = actions
        .iter()
        .position(|a| matches!(a, Action::Commit(_)))
        .unwrap();
    assert!(rewind_at < commit_at);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Event(EngineEvent::Reorg {
            fork_height: 0,
            removed: 1,
            added: 2,
            ..
        })
    )));
}

#[test]
fn a_reorg_gives_back_abandoned_transactions_the_new_branch_lacks() {
    let fx = fixture();
    let kept = fx.transfer(0, 1, 5, 1, 0);
    let abandoned = fx.transfer(2, 1, 5, 1, 0);
    let mut pow = engine_with(params(), restored_at_genesis(), true);
    let mut a = Chain::new(&params());
    let a1 = a.mine(vec![kept.clone(), abandoned.clone()], 1_000, 1);
    deliver(&mut pow, peer(1), vec![a1]);
    assert_eq!(pow.status().pending_txs, 0);

    let mut b = Chain::new(&params());
    b.mine(vec![kept.clone()], 1_000, 2);
    b.extend(1, 2);
    let actions = deliver(&mut pow, peer(2), b.blocks[1..].to_vec());
    assert_eq!(rewinds(&actions), vec![0]);
    // The transaction only the old branch held is pending again and in the next template.
    assert_eq!(pow.status().pending_txs, 1);
    let template = mined(&actions).unwrap();
    assert_eq!(template.tx_ids(), vec![abandoned.id()]);
    assert_eq!(template.header.parent, pow.tip_hash());
}

#[test]
fn branches_forking_below_the_finalized_height_are_refused() {
    let mut pow = engine(params());
    let mut a = Chain::new(&params());
    let blocks = a.extend(9, 1);
    let actions = deliver(&mut pow, peer(1), blocks.clone());
    // Depth 6: block 3 is final once the tip is at 9.
    assert_eq!(pow.finalized_height(), 3);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Finalize { height: 3 }))
    );

    // A longer branch from genesis would undo final blocks.
    let mut b = Chain::new(&params());
    let long = b.extend(12, 2);
    let actions = deliver(&mut pow, peer(2), long[..1].to_vec());
    // Refused as a reorganisation too deep to follow, not held against the peer.
    assert!(rejections(&actions).is_empty());
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Event(EngineEvent::ReorgRefused {
            fork_height: 0,
            finalized: 3,
            ..
        })
    )));
    assert!(commits(&actions).is_empty());
    assert_eq!(pow.tip_hash(), blocks[8].hash());

    // A branch forking at the finalized height is still followed, six blocks deep.
    let mut c = a.fork_at(3);
    let branch = c.extend(7, 3);
    let actions = deliver(&mut pow, peer(2), branch.clone());
    assert_eq!(rewinds(&actions), vec![3]);
    assert_eq!(commits(&actions).len(), 7);
    assert_eq!(pow.tip_hash(), branch[6].hash());
}

#[test]
fn orphans_are_held_their_ancestors_asked_for_and_connected_later() {
    let mut chain = Chain::new(&params());
    let blocks = chain.extend(3, 1);
    let mut pow = engine(params());
    let actions = deliver(&mut pow, peer(1), blocks[1..].to_vec());
    assert!(commits(&actions).is_empty());
    assert_eq!(pow.orphan_count(), 2);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Send { to, msg: PowMessage::GetHeaders { .. } } if *to == peer(1)
    )));
    let actions = deliver(&mut pow, peer(1), blocks[..1].to_vec());
    assert_eq!(commits(&actions).len(), 3);
    assert_eq!(pow.orphan_count(), 0);
}

#[test]
fn invalid_blocks_are_rejected_with_the_sender_and_the_reason() {
    let fx = fixture();
    let mut pow = engine(params());
    let chain = Chain::new(&params());

    // Bits other than the schedule's (re-mined so the work itself is fine).
    let mut bad_bits = chain.clone();
    let mut block = bad_bits.mine(Vec::new(), 1_000, 1);
    block.header.seal.bits = 0x2000_ffff;
    assert!(solve(&mut block.header));
    let refused = rejections(&deliver(&mut pow, peer(1), vec![block]));
    assert_eq!(refused[0].0, Some(peer(1)));
    assert!(
        refused[0]
            .1
            .contains("difficulty schedule requires 207fffff"),
        "{refused:?}"
    );

    // Not enough work for its bits.
    let mut block = chain.clone().mine(Vec::new(), 1_000, 1);
    let target = synod_chain::target::Target::from_compact(EASY).unwrap();
    while target.is_met_by(&block.hash()) {
        block.header.seal.nonce += 1;
    }
    let refused = rejections(&deliver(&mut pow, peer(2), vec![block]));
    assert!(
        refused[0].1.contains("does not meet its target"),
        "{refused:?}"
    );

    // A timestamp not after the median time past.
    let mut block = chain.clone().mine(Vec::new(), 1_000, 1);
    block.header.timestamp_ms = genesis_time();
    assert!(solve(&mut block.header));
    let refused = rejections(&deliver(&mut pow, peer(1), vec![block]));
    assert!(refused[0].1.contains("median time past"), "{refused:?}");

    // A wrong state root: the header and body are fine, applying it is not.
    let mut block = chain
        .clone()
        .mine(vec![fx.transfer(0, 1, 5, 1, 0)], 1_000, 1);
    block.header.state_root = Hash([7; 32]);
    assert!(solve(&mut block.header));
    let refused = rejections(&deliver(&mut pow, peer(2), vec![block.clone()]));
    assert!(refused[0].1.contains("state root"), "{refused:?}");
    // Remembered: offered again, it is refused without a second look, and so is its child.
    assert!(rejections(&deliver(&mut pow, peer(2), vec![block.clone()])).is_empty());

    // A transaction whose nonce the parent state does not allow.
    let mut block = chain.clone().mine(Vec::new(), 1_000, 1);
    let tx = fx.transfer(0, 1, 5, 1, 3);
    block.txs = vec![tx.clone()];
    block.header.tx_root = synod_chain::merkle::merkle_root(&[tx.id()]);
    assert!(solve(&mut block.header));
    let refused = rejections(&deliver(&mut pow, peer(1), vec![block]));
    assert!(refused[0].1.contains("nonce"), "{refused:?}");
    assert_eq!(pow.status().committed_height, 0);
}

#[test]
fn blocks_from_the_future_are_held_and_accepted_when_due() {
    let mut chain = Chain::new(&params());
    let block = chain.mine(Vec::new(), 1_000, 1);
    let mut pow = engine(params());
    let arrival = block.header.timestamp_ms - 6_000;
    let actions = handle(
        &mut pow,
        arrival,
        Input::Message {
            from: peer(1),
            msg: PowMessage::Blocks {
                blocks: vec![block.clone()],
            },
        },
    );
    assert!(rejections(&actions).is_empty() && commits(&actions).is_empty());
    assert_eq!(pow.early_count(), 1);
    let after = actions
        .iter()
        .find_map(|a| match a {
            Action::SetTimer { id, after } if *id == EARLY_TIMER => Some(*after),
            _ => None,
        })
        .unwrap();
    assert_eq!(after, 1_000);
    let actions = handle(&mut pow, arrival + after, Input::Timer(EARLY_TIMER));
    assert_eq!(commits(&actions).len(), 1);
    assert_eq!(pow.early_count(), 0);
}

#[test]
fn templates_follow_the_tip_and_the_pool_and_mined_blocks_commit() {
    let fx = fixture();
    let mut pow = engine_with(params(), restored_at_genesis(), true);
    let now = genesis_time() + 5_000;
    let actions = handle(&mut pow, now, Input::Start);
    let template = mined(&actions).unwrap();
    assert_eq!(template.header.height, 1);
    assert_eq!(template.header.seal.bits, EASY);
    assert_eq!(template.header.timestamp_ms, now);
    assert_eq!(template.header.proposer, peer(0));

    let tx = fx.transfer(0, 1, 5, 1, 0);
    let actions = handle(&mut pow, now, Input::Transactions(vec![tx.clone()]));
    // Relayed to every peer at once; the template waits for the burst to end.
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Broadcast(PowMessage::Transactions { .. })))
    );
    assert!(mined(&actions).is_none());
    let actions = handle(&mut pow, now + 50, Input::Timer(TEMPLATE_TIMER));
    let mut template = mined(&actions).unwrap();
    assert_eq!(template.tx_ids(), vec![tx.id()]);

    assert!(solve(&mut template.header));
    let actions = handle(&mut pow, now + 60, Input::BlockMined(template.clone()));
    let committed = commits(&actions);
    assert_eq!(committed.len(), 1);
    // Reward and fee go to the miner's address.
    let change = committed[0]
        .changes
        .accounts
        .get(&peer(0).address())
        .unwrap();
    assert_eq!(change.after.balance, 51);
    // Work for the miner on the new tip.
    let next = mined(&actions).unwrap();
    assert_eq!(next.header.parent, template.hash());
    assert_eq!(pow.status().pending_txs, 0);
    assert_eq!(pow.status().role, Role::Miner);
}

#[test]
fn bits_must_follow_a_retarget_at_the_window_boundary() {
    let params = PowParams {
        retarget_window: 4,
        ..params()
    };
    // Blocks twice as fast as planned: height 4 must carry harder bits.
    let mut chain = Chain::new(&params);
    let blocks: Vec<Block> = (0..4).map(|_| chain.mine(Vec::new(), 500, 1)).collect();
    assert_ne!(blocks[3].header.seal.bits, EASY);
    assert_eq!(blocks[2].header.seal.bits, EASY);
    let mut pow = engine(params.clone());
    assert_eq!(
        commits(&deliver(&mut pow, peer(1), blocks[..3].to_vec())).len(),
        3
    );
    let mut stale = blocks[3].clone();
    stale.header.seal.bits = EASY;
    assert!(solve(&mut stale.header));
    let refused = rejections(&deliver(&mut pow, peer(1), vec![stale]));
    assert!(
        refused[0].1.contains("bits 207fffff at height 4"),
        "{refused:?}"
    );
    assert_eq!(
        commits(&deliver(&mut pow, peer(1), vec![blocks[3].clone()])).len(),
        1
    );
}

/// What a store would hold after `actions`, as `Store::recent_blocks` hands it back.
fn apply_to_store(store: &mut Vec<RecentBlock>, actions: &[Action<PowMessage>]) {
    for action in actions {
        match action {
            Action::Rewind { height } => store.truncate(*height as usize + 1),
            Action::Commit(c) => store.push(RecentBlock {
                block: c.block.clone(),
                proof: c.proof.clone(),
                undo: Some(super::ledger_view::undo_data(&c.changes)),
            }),
            Action::Finalize { height } => {
                for r in store.iter_mut().take(*height as usize + 1) {
                    r.undo = None;
                }
            }
            _ => {}
        }
    }
}

/// A store holding only block 0.
fn genesis_store() -> Vec<RecentBlock> {
    vec![RecentBlock {
        block: fixture().genesis.block,
        proof: Vec::new(),
        undo: None,
    }]
}

fn restored_from(store: &[RecentBlock], accounts: BTreeMap<Address, Account>) -> Restored {
    Restored {
        engine_state: BTreeMap::new(),
        chain: ChainState {
            tip: store.last().unwrap().block.header,
            accounts,
        },
        recent: store.to_vec(),
    }
}

#[test]
fn a_restarted_engine_resumes_and_can_still_reorg_below_its_restart() {
    let mut store = genesis_store();
    let mut a = Chain::new(&params());
    let blocks = a.extend(8, 1);
    let mut pow = engine(params());
    apply_to_store(&mut store, &deliver(&mut pow, peer(1), blocks.clone()));
    let work = pow.tip_chainwork();

    let mut restarted = engine_with(
        params(),
        restored_from(&store, a.states.last().unwrap().clone()),
        false,
    );
    assert_eq!(restarted.tip_hash(), blocks[7].hash());
    assert_eq!(restarted.tip_chainwork(), work);
    assert_eq!(restarted.finalized_height(), 2);

    // A heavier branch from height 3 rewinds five blocks, with the undo data of the store.
    let mut b = a.fork_at(3);
    let branch = b.extend(6, 2);
    let actions = deliver(&mut restarted, peer(2), branch.clone());
    assert_eq!(rewinds(&actions), vec![3]);
    assert_eq!(commits(&actions).len(), 6);
    let last = commits(&actions)[5];
    assert_eq!(last.changes.state_root, branch[5].header.state_root);
}

#[test]
fn inconsistent_restored_chains_are_refused() {
    let fx = fixture();
    let mut store = genesis_store();
    let mut a = Chain::new(&params());
    let mut pow = engine(params());
    apply_to_store(&mut store, &deliver(&mut pow, peer(1), a.extend(3, 1)));
    let accounts = a.states.last().unwrap().clone();
    let config = || PowConfig::new(peer(0), Vec::new(), params(), genesis_time(), 1);

    // No recent blocks for a chain past genesis.
    let mut restored = restored_from(&store, accounts.clone());
    restored.recent.clear();
    assert!(PowEngine::new(config(), fx.ledger.clone(), restored).is_err());
    // Blocks that do not end at the tip.
    let mut restored = restored_from(&store, accounts.clone());
    restored.recent.pop();
    restored.chain.tip = store.last().unwrap().block.header;
    assert!(matches!(
        PowEngine::new(config(), fx.ledger.clone(), restored),
        Err(PowStateError::Inconsistent(_))
    ));
    // A gap in the chain.
    let mut restored = restored_from(&store, accounts.clone());
    restored.recent.remove(1);
    assert!(PowEngine::new(config(), fx.ledger.clone(), restored).is_err());
    // A proof that is not the chain's work.
    let mut restored = restored_from(&store, accounts.clone());
    restored.recent[3].proof = vec![1; 32];
    assert!(matches!(
        PowEngine::new(config(), fx.ledger.clone(), restored),
        Err(PowStateError::Inconsistent(_))
    ));
    // Starting above genesis, the lowest block's proof must carry the work.
    let mut restored = restored_from(&store, accounts);
    restored.recent.remove(0);
    restored.recent[0].proof = vec![1, 2, 3];
    assert!(matches!(
        PowEngine::new(config(), fx.ledger.clone(), restored),
        Err(PowStateError::Corrupt { height: 1, .. })
    ));
}

/// Delivers messages between two engines (0 and 1, known as `peer(0)` and `peer(1)`) until
/// none is left, answering store-sync requests from the other engine's committed blocks.
fn pump(
    engines: &mut [PowEngine; 2],
    stores: &[Vec<Block>; 2],
    mut queue: Vec<(usize, Action<PowMessage>)>,
) -> Vec<(usize, PowMessage)> {
    let mut delivered = Vec::new();
    let ids = [peer(0), peer(1)];
    while !queue.is_empty() {
        let (from, action) = queue.remove(0);
        let to = 1 - from;
        let input = match action {
            Action::Send { msg, .. } | Action::Broadcast(msg) => {
                delivered.push((to, msg.clone()));
                Input::Message {
                    from: ids[from],
                    msg,
                }
            }
            Action::RequestSync { height, .. } => {
                let blocks: Vec<SyncedBlock> = stores[to]
                    .iter()
                    .filter(|b| b.header.height >= height)
                    .take(8)
                    .map(|b| SyncedBlock {
                        block: b.clone(),
                        proof: Vec::new(),
                    })
                    .collect();
                // The answer comes back to the engine that asked.
                let mut out = Vec::new();
                engines[from].handle(late(), Input::Synced(blocks), &mut out);
                queue.extend(out.into_iter().map(|a| (from, a)));
                continue;
            }
            _ => continue,
        };
        let mut out = Vec::new();
        engines[to].handle(late(), input, &mut out);
        queue.extend(out.into_iter().map(|a| (to, a)));
    }
    delivered
}

fn two_engines(params: PowParams) -> [PowEngine; 2] {
    let make = |me: NodeId, other: NodeId| {
        PowEngine::new(
            PowConfig::new(me, vec![other], params.clone(), genesis_time(), 3),
            fixture().ledger,
            restored_at_genesis(),
        )
        .unwrap()
    };
    [make(peer(0), peer(1)), make(peer(1), peer(0))]
}

/// Engine 1 holds a chain of `length` blocks under a reorganisation limit of `depth`; engine 0
/// starts at genesis. Returns the chain, the messages delivered while engine 0 caught up, and the
/// engines.
fn catch_up(depth: u64, length: usize) -> (Vec<Block>, Vec<(usize, PowMessage)>, [PowEngine; 2]) {
    let params = PowParams {
        max_reorg_depth: depth,
        ..params()
    };
    let mut chain = Chain::new(&params);
    let blocks = chain.extend(length, 1);
    let mut engines = two_engines(params);
    deliver(&mut engines[1], peer(2), blocks.clone());
    let stores = [Vec::new(), blocks.clone()];
    let start = handle(&mut engines[0], late(), Input::Start);
    let delivered = pump(
        &mut engines,
        &stores,
        start.into_iter().map(|a| (0, a)).collect(),
    );
    assert_eq!(engines[0].tip_hash(), blocks[length - 1].hash());
    (blocks, delivered, engines)
}

#[test]
fn a_node_that_was_away_catches_up_headers_first() {
    let (_, delivered, _) = catch_up(100, 40);
    // Headers came first, then bodies in fetches of at most 16 blocks.
    let headers_at = delivered
        .iter()
        .position(|(to, m)| {
            *to == 0 && matches!(m, PowMessage::Headers { headers, .. } if headers.len() == 40)
        })
        .unwrap();
    let fetches: Vec<usize> = delivered
        .iter()
        .enumerate()
        .filter(|(_, (to, m))| *to == 1 && matches!(m, PowMessage::GetBlocks { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(fetches.len(), 3);
    assert!(fetches.iter().all(|i| *i > headers_at));
}

#[test]
fn a_node_behind_the_peers_window_syncs_from_its_store() {
    let (_, delivered, _) = catch_up(5, 30);
    // The peer only serves above its finalized height (25): it said how far it is instead.
    assert!(delivered.iter().any(|(to, m)| *to == 0
        && matches!(m, PowMessage::Headers { headers, tip_height: 30 } if headers.is_empty())));
    assert!(
        !delivered
            .iter()
            .any(|(_, m)| matches!(m, PowMessage::Blocks { .. }))
    );
}

#[test]
fn relayed_transactions_are_verified_and_bad_relays_reported() {
    let fx = fixture();
    let mut pow = engine(params());
    let good = fx.transfer(0, 1, 5, 1, 0);
    let (tx, mut signature) = fx.transfer(1, 0, 5, 1, 0).into_parts();
    signature.0[0] ^= 1;
    let forged = SignedTransaction::from_parts(tx, signature);
    let actions = handle(
        &mut pow,
        late(),
        Input::Message {
            from: peer(1),
            msg: PowMessage::Transactions {
                txs: vec![good.clone(), forged],
            },
        },
    );
    assert_eq!(pow.status().pending_txs, 1);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Event(EngineEvent::PeerMisbehaved { peer: who, .. }) if *who == peer(1)
    )));
    // Only the good one is relayed on.
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Broadcast(PowMessage::Transactions { txs }) if *txs == vec![good.clone()]
    )));
}

#[test]
fn headers_are_served_from_the_locators_fork_point() {
    let mut a = Chain::new(&params());
    let blocks = a.extend(5, 1);
    let mut pow = engine(PowParams {
        max_reorg_depth: 100,
        ..params()
    });
    deliver(&mut pow, peer(1), blocks.clone());
    // A peer on a branch from height 2 that we never saw.
    let mut b = a.fork_at(2);
    let theirs = b.extend(2, 2);
    let locator = vec![
        theirs[1].hash(),
        theirs[0].hash(),
        blocks[1].hash(),
        blocks[0].hash(),
    ];
    let actions = handle(
        &mut pow,
        late(),
        Input::Message {
            from: peer(2),
            msg: PowMessage::GetHeaders { locator },
        },
    );
    let headers = actions
        .iter()
        .find_map(|a| match a {
            Action::Send {
                msg:
                    PowMessage::Headers {
                        headers,
                        tip_height,
                    },
                ..
            } => Some((headers.clone(), *tip_height)),
            _ => None,
        })
        .unwrap();
    let expected: Vec<BlockHeader> = blocks[2..].iter().map(|b| b.header).collect();
    assert_eq!(headers, (expected, 5));
    // Our own locator: ten dense ids from the tip, then sparser, ending at the root.
    let locator = pow.locator(&pow.tip_hash());
    assert_eq!(locator.len(), 6);
    assert_eq!(locator[5], fixture().genesis.block.hash());
}

#[test]
fn a_restart_keeps_the_stores_finality_until_its_next_commit() {
    // A store that kept undo data for every block (its last Finalize never ran): the engine does
    // not finalize on its own at the restart, only with its next commit.
    let mut store = genesis_store();
    let mut a = Chain::new(&params());
    let mut pow = engine(params());
    let actions = deliver(&mut pow, peer(1), a.extend(9, 1));
    let without_finalize: Vec<Action<PowMessage>> = actions
        .into_iter()
        .filter(|a| !matches!(a, Action::Finalize { .. }))
        .collect();
    apply_to_store(&mut store, &without_finalize);
    let mut restarted = engine_with(
        params(),
        restored_from(&store, a.states.last().unwrap().clone()),
        false,
    );
    assert_eq!(restarted.finalized_height(), 0);
    let actions = deliver(&mut restarted, peer(1), a.extend(1, 1));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Finalize { height: 4 }))
    );
    assert_eq!(restarted.finalized_height(), 4);
}

#[test]
fn mining_is_switched_by_the_operator_and_pays_the_chosen_key() {
    let mut pow = engine_with(params(), restored_at_genesis(), false);
    let now = genesis_time() + 5_000;
    let actions = handle(&mut pow, now, Input::Start);
    assert!(actions.iter().any(|a| matches!(a, Action::StopMining)));
    assert_eq!(pow.status().role, Role::Follower);

    let mut out = Vec::new();
    pow.set_mining(now, true, peer(9), &mut out);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Event(EngineEvent::RoleChanged {
            role: Role::Miner,
            ..
        })
    )));
    let mut template = mined(&out).unwrap();
    assert_eq!(template.header.proposer, peer(9));
    assert_eq!(pow.payout(), peer(9));
    assert_eq!(pow.next_bits(), Some(EASY));
    assert!(solve(&mut template.header));
    let actions = handle(&mut pow, now + 10, Input::BlockMined(template));
    let committed = commits(&actions);
    assert_eq!(committed.len(), 1);
    assert_eq!(
        committed[0]
            .changes
            .accounts
            .get(&peer(9).address())
            .unwrap()
            .after
            .balance,
        50
    );

    let mut out = Vec::new();
    pow.set_mining(now + 20, false, peer(0), &mut out);
    assert!(matches!(out.last(), Some(Action::StopMining)));
    assert!(mined(&out).is_none());
    assert!(!pow.is_mining());
    assert_eq!(pow.status().role, Role::Follower);
}

#[test]
fn connected_peers_replace_the_configured_ones() {
    let mut pow = engine(params());
    assert_eq!(pow.status().members, {
        let mut m = vec![peer(0), peer(1), peer(2)];
        m.sort();
        m
    });
    pow.set_peers([peer(0), peer(5)]);
    assert_eq!(pow.status().members, {
        let mut m = vec![peer(0), peer(5)];
        m.sort();
        m
    });
    // The periodic sync asks the connected peer.
    let actions = handle(&mut pow, late(), Input::Timer(SYNC_TIMER));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Send {
            to,
            msg: PowMessage::GetHeaders { .. }
        } if *to == peer(5)
    )));
}
