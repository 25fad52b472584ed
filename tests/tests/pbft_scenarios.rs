//! PBFT's scenarios, scripted on the deterministic simulator: crashed, silent, equivocating,
//! censoring and lying primaries, lying backups, replays and forgeries, twins, crashes at the
//! worst moments. Every run also passes the simulator's own checks after every step (agreement
//! and validity among the honest replicas, durability); each test asserts the progress and the
//! views it expects on top.

#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use synod_chain::keys::SecretKey;
use synod_consensus::engine::{Command, EngineEvent, Role};
use synod_consensus::pbft::{ByzantineBehaviour, PbftEngine, PbftMessage, Signed};
use synod_consensus::sim::adversary::{Replayer, Rewriter};
use synod_consensus::sim::{Sim, SimConfig, bank};
use synod_tests::pbft_sim::{
    PbftSimOptions, commit_more, gave_up, honest, honest_converged, is_active, load, ok, pbft_sim,
    view,
};

fn options() -> PbftSimOptions {
    PbftSimOptions::default()
}

fn with_behaviours(behaviours: &[(usize, ByzantineBehaviour)]) -> PbftSimOptions {
    PbftSimOptions {
        behaviours: behaviours.iter().copied().collect(),
        ..options()
    }
}

fn new_sim(nodes: usize, seed: u64, options: PbftSimOptions) -> Sim<PbftEngine> {
    pbft_sim(SimConfig::new(seed, nodes), options)
}

/// Runs under light load until the honest replicas hold one chain (the network healed).
fn converge(sim: &mut Sim<PbftEngine>, within: u64) {
    let deadline = sim.now() + within;
    load(sim, 5, 300);
    while !honest_converged(sim) {
        assert!(
            sim.now() < deadline,
            "the honest replicas did not converge (seed {})",
            sim.seed()
        );
        let t = sim.now();
        ok(sim.run_until(t + 50));
    }
}

/// Whether honest node `i` ever operated in `view`.
fn was_active_in(sim: &Sim<PbftEngine>, i: usize, view: u64) -> bool {
    sim.events().iter().any(|(_, node, event)| {
        *node == i
            && matches!(event, EngineEvent::RoleChanged { round, leader: Some(_), .. } if *round == view)
    })
}

#[test]
fn four_replicas_commit_in_view_zero() {
    let mut sim = new_sim(4, 1, options());
    commit_more(&mut sim, 5, 3_000, "view 0 commits");
    assert_eq!(sim.status(0).unwrap().role, Role::Leader);
    for i in 0..4 {
        assert_eq!(view(&sim, i), Some(0));
    }
    converge(&mut sim, 2_000);
}

#[test]
fn crashed_primary_is_replaced() {
    let mut sim = new_sim(4, 2, options());
    commit_more(&mut sim, 2, 3_000, "view 0 commits");
    sim.crash(0);
    commit_more(&mut sim, 3, 5_000, "a new primary commits");
    for i in 1..4 {
        assert!(view(&sim, i) >= Some(1) && is_active(&sim, i), "node {i}");
    }
    // Each client transaction reaches one replica, so the backups' request timers expire at
    // different times: f+1 of them suspect the primary on their own, and a backup whose timer has
    // not expired yet may join their view change on the f+1 VIEW-CHANGEs instead (§4.5.2).
    let suspected = (1..4)
        .filter(|i| gave_up(&sim, *i, "waited too long"))
        .count();
    assert!(suspected >= 2, "{suspected} backups suspected the primary");
    // The old primary comes back, learns the view and catches up.
    ok(sim.restart(0));
    converge(&mut sim, 5_000);
    assert_eq!(view(&sim, 0), view(&sim, 1));
    assert!(is_active(&sim, 0));
}

#[test]
fn silent_primary_is_replaced() {
    let mut sim = new_sim(4, 3, with_behaviours(&[(0, ByzantineBehaviour::Silent)]));
    commit_more(&mut sim, 3, 5_000, "commits despite a silent primary");
    for i in 1..4 {
        assert!(view(&sim, i) >= Some(1), "node {i} left view 0");
    }
    // No block of view 0 ever reached an honest chain.
    let first = sim.block(1, 1).unwrap();
    assert!(first.header.seal.round >= 1);
    converge(&mut sim, 3_000);
}

/// An equivocating primary sends one block to some backups and another to the rest. With four
/// replicas the backup that got the odd one out sees f+1 PREPAREs for the other and gives up
/// on the view; the rest keep committing the block a quorum prepared. With seven, neither half
/// can prepare, so the view changes. Nobody honest ever commits both.
#[test]
fn equivocating_primary_cannot_split_the_honest_replicas() {
    let mut sim = new_sim(
        4,
        4,
        with_behaviours(&[(0, ByzantineBehaviour::Equivocate)]),
    );
    commit_more(
        &mut sim,
        4,
        5_000,
        "four replicas commit despite equivocation",
    );
    assert!(
        (1..4).any(|i| gave_up(&sim, i, "equivocated")),
        "the equivocation was detected"
    );
    converge(&mut sim, 5_000);

    let mut sim = new_sim(
        7,
        4,
        with_behaviours(&[(0, ByzantineBehaviour::Equivocate)]),
    );
    commit_more(
        &mut sim,
        4,
        5_000,
        "seven replicas commit despite equivocation",
    );
    for i in 1..7 {
        assert!(view(&sim, i) >= Some(1), "node {i} left view 0");
    }
    converge(&mut sim, 5_000);
}

/// A primary that never includes one account's transactions: the backups, holding them and
/// seeing them wait past the timeout while other blocks commit, move to the next view, whose
/// primary includes them.
#[test]
fn censoring_primary_is_replaced() {
    let censored = bank::fixture().addresses[3];
    let mut sim = new_sim(
        4,
        5,
        with_behaviours(&[(0, ByzantineBehaviour::Censor(Some(censored)))]),
    );
    commit_more(&mut sim, 6, 6_000, "commits under a censoring primary");
    for i in 1..4 {
        assert!(view(&sim, i) >= Some(1), "node {i} left view 0");
    }
    // As with a crashed primary: f+1 backups see the censorship on their own timers, and one
    // whose censored transactions arrived later may join their view change first (§4.5.2).
    let saw = (1..4)
        .filter(|i| gave_up(&sim, *i, "waited too long"))
        .count();
    assert!(saw >= 2, "{saw} backups saw the censorship");
    let blocks: Vec<_> = (1..=sim.height(1))
        .filter_map(|h| sim.block(1, h))
        .collect();
    let from_censored =
        |b: &&synod_chain::Block| b.txs.iter().any(|tx| tx.tx().sender() == censored);
    assert!(
        blocks
            .iter()
            .filter(|b| b.header.seal.round == 0)
            .all(|b| !from_censored(b)),
        "the censoring primary included the account"
    );
    assert!(
        blocks
            .iter()
            .any(|b| b.header.seal.round >= 1 && from_censored(b)),
        "a later primary included the censored account's transactions"
    );
}

#[test]
fn primary_proposing_invalid_blocks_is_replaced() {
    let mut sim = new_sim(4, 6, with_behaviours(&[(0, ByzantineBehaviour::BadBlock)]));
    commit_more(&mut sim, 3, 5_000, "commits despite invalid proposals");
    assert!(
        (1..4).any(|i| gave_up(&sim, i, "invalid block")),
        "a backup rejected the invalid block"
    );
    let proposer = sim.id(0);
    for h in 1..=sim.height(1) {
        assert_ne!(
            sim.block(1, h).unwrap().header.proposer,
            proposer,
            "no block of the bad primary is on an honest chain"
        );
    }
}

/// The primary of view 1 sends a NEW-VIEW that ignores the prepared certificates (or invents a
/// re-proposal): every backup recomputes the choice, refuses it and moves on to view 2.
#[test]
fn bad_new_view_sends_the_replicas_to_the_next_view() {
    let mut sim = new_sim(
        7,
        7,
        with_behaviours(&[(1, ByzantineBehaviour::BadNewView)]),
    );
    commit_more(&mut sim, 2, 3_000, "view 0 commits");
    sim.crash(0);
    commit_more(&mut sim, 3, 8_000, "view 2 commits");
    for i in 2..7 {
        assert!(view(&sim, i) >= Some(2) && is_active(&sim, i), "node {i}");
        assert!(
            !was_active_in(&sim, i, 1),
            "node {i} accepted the bad NEW-VIEW"
        );
    }
    assert!(
        (2..7).any(|i| gave_up(&sim, i, "re-proposals differ")),
        "the bad NEW-VIEW was recognised"
    );
}

/// f backups are down for good; then the primary crashes and restarts. The view change can
/// only complete with every remaining replica, the restarted primary included.
#[test]
fn f_crashed_backups_plus_a_view_change() {
    let mut sim = new_sim(7, 8, options());
    commit_more(&mut sim, 2, 3_000, "view 0 commits");
    sim.crash(5);
    sim.crash(6);
    commit_more(&mut sim, 2, 3_000, "commits with f backups down");
    sim.crash(0);
    load(&mut sim, 5, 300);
    ok(sim.restart(0));
    commit_more(&mut sim, 3, 8_000, "commits after the view change");
    for i in 0..5 {
        assert!(view(&sim, i) >= Some(1) && is_active(&sim, i), "node {i}");
    }
}

/// A replica is down while the others commit well past two checkpoints and collect the log
/// below them; back up, it learns from their STATUS and CHECKPOINTs that it is behind, fetches
/// the blocks with their commit certificates, checks them and rejoins while the others go on.
#[test]
fn lagging_replica_catches_up_by_state_transfer_past_a_checkpoint() {
    let mut options = options();
    options.params.batch_delay_ms = 10;
    let mut sim = new_sim(4, 9, options);
    commit_more(&mut sim, 1, 3_000, "view 0 commits");
    sim.crash(3);
    commit_more(&mut sim, 35, 20_000, "commits past two checkpoints");
    let stable = sim
        .engine(0)
        .and_then(|e| e.stable_checkpoint())
        .map_or(0, |c| c.checkpoint.seq);
    assert!(
        stable > sim.height(3) + 10,
        "the others collected garbage above node 3"
    );
    let back_at = sim.now();
    ok(sim.restart(3));
    converge(&mut sim, 5_000);
    let mut per_instant: BTreeMap<u64, usize> = BTreeMap::new();
    for (t, node, _) in sim.commit_log() {
        if *node == 3 && *t >= back_at {
            *per_instant.entry(*t).or_default() += 1;
        }
    }
    assert!(
        per_instant.values().any(|n| *n >= 10),
        "node 3 executed fetched blocks in batches: {per_instant:?}"
    );
    commit_more(&mut sim, 2, 3_000, "commits after the catch-up");
    assert!(sim.checker().node_tip(3) == sim.checker().decided_height());
}

/// Stale but validly signed messages: an interceptor records node 1's messages of view 0 and,
/// after a view change, delivers old ones in place of every other new one; node 2 replays all
/// its own messages two seconds late. Nothing old counts in the new view.
#[test]
fn replayed_messages_from_old_views_are_ignored() {
    let mut sim = new_sim(4, 10, options());
    sim.set_adversary(
        2,
        Box::new(Replayer {
            replay_after: 2_000,
        }),
    );
    let recorded: Rc<RefCell<Vec<PbftMessage>>> = Rc::default();
    let replaying = Rc::new(RefCell::new(false));
    let (log, on) = (recorded.clone(), replaying.clone());
    let mut counter = 0usize;
    sim.set_interceptor(Some(Box::new(move |_, from, _, msg| {
        if from != 1 {
            return Some(msg);
        }
        if !*on.borrow() {
            log.borrow_mut().push(msg.clone());
            return Some(msg);
        }
        counter += 1;
        let old = log.borrow();
        if counter.is_multiple_of(2) && !old.is_empty() {
            return Some(old[counter % old.len()].clone());
        }
        Some(msg)
    })));
    commit_more(&mut sim, 3, 3_000, "view 0 commits");
    *replaying.borrow_mut() = true;
    sim.crash(0);
    commit_more(&mut sim, 4, 8_000, "the next view commits amid replays");
    assert!(recorded.borrow().len() > 10);
    for i in [1, 3] {
        assert!(view(&sim, i) >= Some(1), "node {i}");
    }
}

/// Flips one byte of the signature `msg` carries (the outer statement, or for a VIEW-CHANGE a
/// certificate inside it).
fn flip_signature(msg: PbftMessage) -> PbftMessage {
    match msg {
        PbftMessage::PrePrepare {
            mut pre_prepare,
            block,
        } => {
            pre_prepare.signature.0[7] ^= 1;
            PbftMessage::PrePrepare { pre_prepare, block }
        }
        PbftMessage::Prepare(mut p) => {
            p.signature.0[7] ^= 1;
            PbftMessage::Prepare(p)
        }
        PbftMessage::Commit(mut c) => {
            c.signature.0[7] ^= 1;
            PbftMessage::Commit(c)
        }
        PbftMessage::Checkpoint(mut c) => {
            c.signature.0[7] ^= 1;
            PbftMessage::Checkpoint(c)
        }
        PbftMessage::ViewChange {
            mut view_change,
            blocks,
        } => {
            match view_change.body.executed.as_mut() {
                Some(tip) if !tip.certificate.signatures.is_empty() => {
                    tip.certificate.signatures[0].1.0[7] ^= 1
                }
                _ => view_change.signature.0[7] ^= 1,
            }
            PbftMessage::ViewChange {
                view_change,
                blocks,
            }
        }
        PbftMessage::NewView {
            mut new_view,
            blocks,
        } => {
            new_view.signature.0[7] ^= 1;
            PbftMessage::NewView { new_view, blocks }
        }
        other => other,
    }
}

/// Re-signs a vote with `key`, claiming `claim` signed it (a key that is not the claimed
/// signer's); other messages get a flipped byte.
fn resign_with_wrong_key(
    msg: PbftMessage,
    key: &SecretKey,
    claim: synod_consensus::NodeId,
) -> PbftMessage {
    let chain_id = &bank::fixture().genesis.chain_id;
    match msg {
        PbftMessage::Prepare(p) => {
            let mut forged = Signed::sign(key, chain_id, p.body);
            forged.signer = claim;
            PbftMessage::Prepare(forged)
        }
        PbftMessage::Commit(c) => {
            let mut forged = Signed::sign(key, chain_id, c.body);
            forged.signer = claim;
            PbftMessage::Commit(forged)
        }
        other => flip_signature(other),
    }
}

/// Node 3 forges everything it sends (flipped signature bytes, votes signed by a key that is not
/// the claimed signer's, bad certificates inside VIEW-CHANGEs) while node 2 is down: the two
/// honest replicas left must not commit anything — a forged vote counted would complete their
/// quorum. With node 2 back they commit again.
#[test]
fn forged_signatures_are_dropped() {
    let mut sim = new_sim(4, 11, options());
    let me = sim.id(3);
    let stranger = SecretKey::from_seed([42; 32]);
    let impersonated = sim.id(1);
    sim.set_adversary(
        3,
        Box::new(Rewriter {
            rewrite: Box::new(move |rng, _, msg| {
                vec![match rng.index(3) {
                    0 => flip_signature(msg),
                    1 => resign_with_wrong_key(msg, &stranger, me),
                    _ => resign_with_wrong_key(msg, &stranger, impersonated),
                }]
            }),
        }),
    );
    sim.crash(2);
    let since = sim.now();
    load(&mut sim, 5, 3_000);
    let committed: Vec<_> = sim
        .commit_log()
        .iter()
        .filter(|(t, node, _)| *t >= since && (*node == 0 || *node == 1))
        .collect();
    assert!(
        committed.is_empty(),
        "forged votes completed a quorum: {committed:?}"
    );
    ok(sim.restart(2));
    commit_more(&mut sim, 3, 8_000, "commits once an honest quorum is up");
}

#[test]
fn double_voting_backup_is_tolerated() {
    let mut sim = new_sim(
        4,
        12,
        with_behaviours(&[(3, ByzantineBehaviour::DoubleVote)]),
    );
    commit_more(&mut sim, 6, 4_000, "commits despite double votes");
    for i in 0..3 {
        assert_eq!(
            view(&sim, i),
            Some(0),
            "one double-voter is not f+1: no view change"
        );
        assert!(!gave_up(&sim, i, "equivocated"));
    }
    converge(&mut sim, 3_000);
}

/// Twins: a second engine runs the primary's key. Both propose, so the validator equivocates on
/// every sequence number; the honest replicas still agree and go on.
#[test]
fn twins_cannot_split_the_honest_replicas() {
    let mut config = SimConfig::new(13, 5);
    config.twins = vec![(4, 0)];
    let mut sim = pbft_sim(config, options());
    assert!(sim.is_byzantine(0) && sim.is_byzantine(4));
    assert_eq!(sim.id(4), sim.id(0));
    commit_more(&mut sim, 5, 8_000, "commits with twins");
    converge(&mut sim, 5_000);
    assert_eq!(honest(&sim), vec![1, 2, 3]);
}

/// The primary's PRE-PREPARE leaves and the primary dies before anything else of its own does
/// (`crash_after_actions`: the write, the send, then the crash). The three backups prepare and
/// commit the block without it, then replace it.
#[test]
fn primary_crashing_right_after_its_pre_prepare() {
    let mut sim = new_sim(4, 14, options());
    commit_more(&mut sim, 2, 3_000, "view 0 commits");
    let before = sim.checker().decided_height();
    sim.submit(10);
    let t = sim.now();
    ok(sim.run_until(t + 20));
    sim.crash_after_actions(0, 2);
    sim.command(0, Command::Propose);
    // The proposal step has exactly those two actions; the crash takes the primary at the
    // first action of its next step, before anything else of its own leaves.
    let t = sim.now();
    ok(sim.run_until_true(t + 500, "the primary crashes", |s| !s.is_up(0)));
    let t = sim.now();
    ok(
        sim.run_until_true(t + 500, "the backups commit the orphaned proposal", |s| {
            s.checker().decided_height() > before
        }),
    );
    commit_more(&mut sim, 2, 5_000, "a new primary commits");
    ok(sim.restart(0));
    converge(&mut sim, 5_000);
}

/// The digests a replica pre-prepared, by (view, sequence number).
type SentPrePrepares = BTreeMap<(u64, u64), Vec<synod_chain::hash::Hash>>;

/// The primary writes its PRE-PREPARE and crashes before sending it. Restarted, it sends that
/// very PRE-PREPARE (never a second block for the sequence number), which then commits.
#[test]
fn primary_crashing_between_writing_and_sending_its_pre_prepare() {
    let mut sim = new_sim(4, 15, options());
    let sent: Rc<RefCell<SentPrePrepares>> = Rc::default();
    let record = sent.clone();
    sim.set_interceptor(Some(Box::new(move |_, from, _, msg| {
        if let (0, PbftMessage::PrePrepare { pre_prepare, .. }) = (from, &msg) {
            let ballot = pre_prepare.body.0;
            let mut digests = record.borrow_mut();
            let seen = digests.entry((ballot.view, ballot.seq)).or_default();
            if !seen.contains(&ballot.digest) {
                seen.push(ballot.digest);
            }
        }
        Some(msg)
    })));
    commit_more(&mut sim, 2, 3_000, "view 0 commits");
    sim.submit(10);
    let t = sim.now();
    ok(sim.run_until(t + 20));
    let seq = sim.status(0).unwrap().last_height + 1;
    sim.crash_after_actions(0, 1);
    sim.command(0, Command::Propose);
    let t = sim.now();
    ok(sim.run_until(t + 1));
    assert!(!sim.is_up(0), "the primary crashed");
    assert!(
        !sent.borrow().contains_key(&(0, seq)),
        "the PRE-PREPARE never left"
    );
    ok(sim.restart(0));
    let t = sim.now();
    ok(
        sim.run_until_true(t + 1_000, "the persisted proposal commits", |s| {
            s.checker().decided_height() >= seq
        }),
    );
    for (ballot, digests) in sent.borrow().iter() {
        assert_eq!(digests.len(), 1, "one block per (view, seq): {ballot:?}");
    }
    let committed = sim.block(1, seq).unwrap().hash();
    assert_eq!(sent.borrow()[&(0, seq)], vec![committed]);
}

/// Every replica is killed at once and restarted from what it persisted: views, accepted
/// pre-prepares, prepared certificates and the chain. They resume without forgetting anything.
#[test]
fn every_replica_restarts_at_once() {
    let mut sim = new_sim(4, 16, options());
    commit_more(&mut sim, 3, 3_000, "view 0 commits");
    sim.crash(0);
    commit_more(&mut sim, 2, 5_000, "view 1 commits");
    ok(sim.restart(0));
    sim.submit(20);
    let t = sim.now();
    ok(sim.run_until(t + 7));
    let views: Vec<_> = (0..4).map(|i| view(&sim, i)).collect();
    for i in 0..4 {
        sim.crash(i);
    }
    let t = sim.now();
    ok(sim.run_until(t + 300));
    for i in 0..4 {
        ok(sim.restart(i));
    }
    for (i, before) in views.iter().enumerate() {
        assert!(
            view(&sim, i) >= *before,
            "node {i} went back to an earlier view"
        );
    }
    commit_more(&mut sim, 3, 5_000, "commits after a full restart");
    converge(&mut sim, 3_000);
}

/// Any n ≥ 4 works: five and six replicas tolerate one Byzantine replica with the quorum that
/// makes two quorums share f+1 replicas (4 of 5, 4 of 6).
#[test]
fn five_and_six_replicas_tolerate_one_byzantine_replica() {
    for (nodes, behaviour) in [
        (5, ByzantineBehaviour::Equivocate),
        (6, ByzantineBehaviour::Silent),
        (6, ByzantineBehaviour::DoubleVote),
    ] {
        let mut sim = new_sim(nodes, 17, with_behaviours(&[(0, behaviour)]));
        commit_more(
            &mut sim,
            4,
            8_000,
            &format!("{nodes} replicas, {behaviour}"),
        );
        converge(&mut sim, 5_000);
    }
}
