//! The Raft paper's scenarios, scripted on the deterministic simulator. Every run also passes the
//! simulator's own checks (agreement, validity, durability, election safety) after every step,
//! and ends with every transaction a client got accepted committed exactly once.

#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;

use synod_consensus::engine::{Command, EngineEvent, Role};
use synod_consensus::raft::{RaftEngine, RaftFault, RaftMessage};
use synod_consensus::sim::scenario::{Scenario, Step, Target};
use synod_consensus::sim::{Sim, SimConfig, SimFailure};
use synod_genesis::RaftParams;
use synod_tests::raft_sim::{RaftOptions, ok, raft_factory};

fn new_sim(nodes: usize, seed: u64, options: RaftOptions) -> Sim<RaftEngine> {
    ok(Sim::new(SimConfig::new(seed, nodes), raft_factory(options)))
}

fn role(sim: &Sim<RaftEngine>, i: usize) -> Option<Role> {
    sim.status(i).map(|s| s.role)
}

fn round(sim: &Sim<RaftEngine>, i: usize) -> u64 {
    sim.status(i).map_or(0, |s| s.round)
}

fn last_height(sim: &Sim<RaftEngine>, i: usize) -> u64 {
    sim.status(i).map_or(0, |s| s.last_height)
}

/// Runs until a leader has committed at least one block and the others caught up.
fn settle(sim: &mut Sim<RaftEngine>) -> usize {
    let t = sim.now();
    ok(
        sim.run_until_true(t + 3_000, "a leader commits its first block", |s| {
            s.leader().is_some() && s.checker().decided_height() >= 1
        }),
    );
    sim.submit(20);
    let t = sim.now();
    ok(
        sim.run_until_true(t + 3_000, "the leader commits transactions", |s| {
            s.checker().decided_height() >= 2
        }),
    );
    let t = sim.now();
    ok(sim.run_until(t + 300));
    sim.leader().unwrap()
}

fn is_append(msg: &RaftMessage) -> bool {
    matches!(msg, RaftMessage::Append { .. })
}

fn is_vote_request(msg: &RaftMessage) -> bool {
    matches!(msg, RaftMessage::PreVote { .. } | RaftMessage::Vote { .. })
}

/// Figure 8 of the Raft paper. An entry of an old term reaches a majority through a later leader;
/// counting replicas must not commit it, because a node with a later-term entry at that index can
/// still be elected and overwrite it. With `broken` the leader commits it anyway.
fn figure_8(broken: bool) -> Result<Sim<RaftEngine>, SimFailure> {
    let options = RaftOptions {
        fault: if broken {
            RaftFault::CommitEntriesOfAnyTerm
        } else {
            RaftFault::None
        },
        ..RaftOptions::default()
    };
    let mut sim = new_sim(5, 8, options);
    let x = settle(&mut sim);
    let t1 = round(&sim, x);
    let y1 = (x + 1) % 5;
    let others: Vec<usize> = (0..5).filter(|i| *i != x && *i != y1).collect();

    #[derive(Clone, Copy, PartialEq)]
    enum Phase {
        OnlyToY1,
        NewLeaderMuted,
        OldEntryOnly { k: u64 },
        OnlyZCampaigns { z: usize },
    }
    let phase = Rc::new(RefCell::new(Phase::OnlyToY1));
    let rules = phase.clone();
    sim.set_interceptor(Some(Box::new(move |_, from, to, msg| {
        match *rules.borrow() {
            // (a) X's appends reach Y1 only.
            Phase::OnlyToY1 if from == x && to != y1 && is_append(&msg) => None,
            // (b) Y1 cannot campaign, and no append of a later term leaves its leader.
            Phase::NewLeaderMuted if from == y1 && is_vote_request(&msg) => None,
            Phase::NewLeaderMuted if is_append(&msg) && msg.term() > t1 => None,
            // (c) Only X campaigns, its appends carry nothing beyond the old entry k, and they do not
            // tell followers about any commit at or past k (as in the paper, only S1 knows).
            Phase::OldEntryOnly { .. } if from != x && is_vote_request(&msg) => None,
            Phase::OldEntryOnly { k } if from == x => match msg {
                RaftMessage::Append {
                    term,
                    prev_index,
                    prev_term,
                    mut entries,
                    commit,
                    overloaded,
                } => {
                    entries.retain(|e| e.index() <= k);
                    Some(RaftMessage::Append {
                        term,
                        prev_index,
                        prev_term,
                        entries,
                        commit: commit.min(k - 1),
                        overloaded,
                    })
                }
                other => Some(other),
            },
            // (d) Only Z may campaign.
            Phase::OnlyZCampaigns { z } if from != z && is_vote_request(&msg) => None,
            _ => Some(msg),
        }
    })));

    // (a) X (term t1) appends entry k and stores it on Y1 only.
    let k = last_height(&sim, x) + 1;
    sim.submit(5);
    let t = sim.now();
    sim.run_until_true(t + 1_000, "X replicates entry k to Y1", |s| {
        last_height(s, y1) >= k
    })?;
    assert!(sim.height(x) < k, "entry k must not be committed yet");
    sim.crash(x);

    // (b) One of the others wins a later term and appends its own entry k, which goes nowhere.
    *phase.borrow_mut() = Phase::NewLeaderMuted;
    let t = sim.now();
    sim.run_until_true(t + 5_000, "a later-term leader among the others", |s| {
        others
            .iter()
            .any(|i| role(s, *i) == Some(Role::Leader) && round(s, *i) > t1)
    })?;
    let z = others
        .iter()
        .copied()
        .find(|i| role(&sim, *i) == Some(Role::Leader))
        .unwrap();
    let t2 = round(&sim, z);
    assert_eq!(last_height(&sim, z), k, "Z appended its own entry at k");
    sim.crash(z);

    // (c) X returns, wins a still later term, and puts its old entry k on a majority.
    *phase.borrow_mut() = Phase::OldEntryOnly { k };
    ok(sim.restart(x));
    let t = sim.now();
    sim.run_until_true(t + 5_000, "X leads again", |s| {
        s.leader() == Some(x) && round(s, x) > t2
    })?;
    let t = sim.now();
    sim.run_until(t + 500)?;
    let holders = (0..5)
        .filter(|i| *i != z && last_height(&sim, *i) >= k)
        .count();
    assert!(holders >= 3, "entry k is on a majority ({holders} nodes)");
    if !broken {
        assert!(
            sim.height(x) < k,
            "an old-term entry must not commit by counting replicas"
        );
    }

    // (d) X crashes; Z, whose last entry has a later term than anyone's, wins and overwrites k.
    sim.crash(x);
    *phase.borrow_mut() = Phase::OnlyZCampaigns { z };
    ok(sim.restart(z));
    let t = sim.now();
    sim.run_until_true(t + 5_000, "Z leads again", |s| s.leader() == Some(z))?;
    sim.submit(5);
    let t = sim.now();
    sim.run_until_true(t + 3_000, "Z commits past k", |s| s.height(z) > k)?;
    sim.set_interceptor(None);
    ok(sim.restart(x));
    let t = sim.now();
    sim.run_until_true(t + 5_000, "all five converge", |s| {
        (0..5).all(|i| s.tip(i) == s.tip(z))
    })?;
    Ok(sim)
}

#[test]
fn figure_8_old_term_entry_is_not_committed_by_counting_replicas() {
    ok(figure_8(false));
}

#[test]
fn figure_8_with_the_broken_commit_rule_is_caught_by_the_agreement_checker() {
    let failure = figure_8(true)
        .err()
        .expect("the broken commit rule must be caught");
    assert_eq!(failure.violation.kind, "agreement", "{failure}");
    println!("caught as expected:\n{failure}");
}

#[test]
fn split_votes_resolve_to_one_leader() {
    // Nearly equal election timeouts make candidates collide; randomization still breaks ties.
    let params = RaftParams {
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 306,
        ..RaftParams::default()
    };
    let mut splits = 0;
    for seed in 0..60 {
        let mut sim = new_sim(
            4,
            seed,
            RaftOptions {
                params: params.clone(),
                ..RaftOptions::default()
            },
        );
        ok(
            sim.run_until_true(20_000, "a leader after split votes", |s| {
                s.leader().is_some()
            }),
        );
        let mut candidates: std::collections::HashMap<u64, usize> = Default::default();
        for (_, _, event) in sim.events() {
            if let EngineEvent::RoleChanged {
                role: Role::Candidate,
                round,
                ..
            } = event
            {
                *candidates.entry(*round).or_default() += 1;
            }
        }
        if candidates.values().any(|n| *n >= 2) {
            splits += 1;
        }
    }
    assert!(
        splits > 0,
        "no seed produced a split vote; the test shows nothing"
    );
    println!("{splits} of 60 seeds had split votes; all elected one leader");
}

/// A leader appends entries nobody else stores, then crashes: the next leader overwrites them and
/// the transactions still commit (the followers that accepted them keep them until they commit;
/// the ones the leader accepted itself come back from its mempool when it restarts).
#[test]
fn leader_crash_with_uncommitted_entries() {
    let mut sim = new_sim(5, 21, RaftOptions::default());
    let x = settle(&mut sim);
    let committed = sim.height(x);
    sim.set_interceptor(Some(Box::new(move |_, from, _, msg| {
        (!(from == x && is_append(&msg))).then_some(msg)
    })));
    sim.submit(30);
    let t = sim.now();
    ok(sim.run_until_true(t + 1_000, "X appends alone", |s| {
        last_height(s, x) > committed
    }));
    assert_eq!(sim.height(x), committed);
    sim.crash(x);
    sim.set_interceptor(None);
    let t = sim.now();
    ok(
        sim.run_until_true(t + 5_000, "a new leader commits the transactions", |s| {
            s.leader().is_some_and(|l| l != x) && s.checker().decided_height() > committed
        }),
    );
    ok(sim.restart(x));
    sim.submit(5);
    let t = sim.now();
    let leader = sim.leader().unwrap();
    ok(sim.run_until_true(t + 5_000, "X converges", |s| {
        (0..5).all(|i| s.tip(i) == s.tip(leader))
    }));
    // X's own clients' transactions were in its journaled mempool: the restarted X hands them on.
    let deadline = sim.now() + 5_000;
    ok(sim.run_until_settled(deadline));
    let txs: usize = (committed + 1..=sim.height(leader))
        .filter_map(|h| sim.block(leader, h))
        .map(|b| b.txs.len())
        .sum();
    assert_eq!(
        txs, 35,
        "all 35 submitted transactions committed exactly once"
    );
}

/// A follower holds an extra entry its leader never committed; a later leader without it
/// overwrites it.
#[test]
fn follower_with_extra_uncommitted_entries_is_overwritten() {
    let mut sim = new_sim(5, 33, RaftOptions::default());
    let x = settle(&mut sim);
    let y = (x + 1) % 5;
    let k = last_height(&sim, x) + 1;
    let muted_y = Rc::new(RefCell::new(false));
    let rules = muted_y.clone();
    sim.set_interceptor(Some(Box::new(move |_, from, to, msg| {
        if from == x && to != y && is_append(&msg) {
            return None;
        }
        if *rules.borrow() && from == y && is_vote_request(&msg) {
            return None;
        }
        Some(msg)
    })));
    sim.submit(3);
    let t = sim.now();
    ok(
        sim.run_until_true(t + 1_000, "Y stores the extra entry", |s| {
            last_height(s, y) >= k
        }),
    );
    let extra = sim.status(y).unwrap().last_height;
    sim.crash(x);
    *muted_y.borrow_mut() = true;
    let t = sim.now();
    ok(
        sim.run_until_true(t + 5_000, "another leader commits past k", |s| {
            s.leader().is_some_and(|l| l != y) && s.checker().decided_height() >= k
        }),
    );
    sim.set_interceptor(None);
    ok(sim.restart(x));
    let leader = sim.leader().unwrap();
    let t = sim.now();
    ok(sim.run_until_true(t + 5_000, "Y converges", |s| {
        (0..5).all(|i| s.tip(i) == s.tip(leader))
    }));
    assert!(extra >= k);
    assert_eq!(
        sim.block(y, k).map(|b| b.hash()),
        sim.block(leader, k).map(|b| b.hash()),
        "Y's extra entry was replaced by the canonical block"
    );
    let deadline = sim.now() + 5_000;
    ok(sim.run_until_settled(deadline));
}

/// A leader cut off with one follower keeps the minority: it must not commit, must step down
/// (check-quorum), and must converge once the partition heals.
#[test]
fn partitioned_minority_leader_does_not_commit() {
    let mut sim = new_sim(5, 44, RaftOptions::default());
    let x = settle(&mut sim);
    let f = (x + 1) % 5;
    let majority: Vec<usize> = (0..5).filter(|i| *i != x && *i != f).collect();
    sim.network_mut()
        .partition(5, &[vec![x, f], majority.clone()]);
    let cut_at = sim.now();
    let before = sim.height(x);
    for _ in 0..20 {
        sim.submit(10);
        let t = sim.now();
        ok(sim.run_until(t + 100));
    }
    assert_eq!(sim.height(x), before, "the minority leader committed");
    assert_eq!(sim.height(f), before, "the minority follower committed");
    assert!(
        sim.commit_log()
            .iter()
            .all(|(t, n, _)| *t < cut_at || (*n != x && *n != f)),
        "no commits on the minority side"
    );
    assert!(
        sim.events().iter().any(|(_, n, e)| *n == x
            && matches!(
                e,
                EngineEvent::SteppedDown {
                    reason: "lost quorum",
                    ..
                }
            )),
        "check-quorum made the old leader step down"
    );
    let new_leader = sim.leader().unwrap();
    assert!(majority.contains(&new_leader));
    assert!(
        sim.height(new_leader) > before,
        "the majority kept committing"
    );
    sim.network_mut().heal();
    let t = sim.now();
    ok(sim.run_until_true(t + 5_000, "all converge", |s| {
        (0..5).all(|i| s.tip(i) == s.tip(new_leader))
    }));
    let deadline = sim.now() + 5_000;
    ok(sim.run_until_settled(deadline));
}

/// A follower partitioned for a while rejoins: with pre-vote its term never grew, so the healthy
/// leader stays in charge.
#[test]
fn rejoining_node_does_not_depose_the_leader() {
    let mut sim = new_sim(5, 55, RaftOptions::default());
    let leader = settle(&mut sim);
    let term = round(&sim, leader);
    let f = (leader + 2) % 5;
    let rest: Vec<usize> = (0..5).filter(|i| *i != f).collect();
    sim.network_mut().partition(5, &[vec![f], rest]);
    let t = sim.now();
    ok(sim.run_until(t + 3_000));
    assert_eq!(
        round(&sim, f),
        term,
        "pre-vote kept the isolated node's term"
    );
    sim.network_mut().heal();
    sim.submit(10);
    let t = sim.now();
    ok(sim.run_until_true(t + 3_000, "the node catches up", |s| {
        s.tip(f) == s.tip(leader)
    }));
    assert_eq!(sim.leader(), Some(leader));
    assert_eq!(round(&sim, leader), term, "no election happened");
    let deadline = sim.now() + 5_000;
    ok(sim.run_until_settled(deadline));
}

/// Asymmetric partition: a follower cannot hear the leader, but everyone else can. Its
/// candidacies are refused under the leader lease, so the leader survives.
#[test]
fn asymmetric_partition_does_not_disrupt_the_leader() {
    let mut sim = new_sim(5, 66, RaftOptions::default());
    let leader = settle(&mut sim);
    let term = round(&sim, leader);
    let f = (leader + 1) % 5;
    sim.network_mut().block_one_way(&[leader], &[f]);
    let before = sim.checker().decided_height();
    for _ in 0..30 {
        sim.submit(5);
        let t = sim.now();
        ok(sim.run_until(t + 100));
    }
    assert_eq!(sim.leader(), Some(leader));
    assert_eq!(round(&sim, leader), term);
    assert!(sim.checker().decided_height() > before, "commits continued");
    sim.network_mut().heal();
    let t = sim.now();
    ok(
        sim.run_until_true(t + 3_000, "the follower catches up", |s| {
            s.tip(f) == s.tip(leader)
        }),
    );
    let deadline = sim.now() + 5_000;
    ok(sim.run_until_settled(deadline));
}

/// A follower crashes after writing a new term but before writing the entries that came with it.
#[test]
fn crash_between_the_term_write_and_the_log_write() {
    let mut sim = new_sim(3, 77, RaftOptions::default());
    let leader = settle(&mut sim);
    let f = (leader + 1) % 3;
    let other = 3 - leader - f;
    sim.network_mut()
        .partition(3, &[vec![f], vec![leader, other]]);
    sim.crash(leader);
    ok(sim.restart(leader));
    // Wait for a new term among the two that can talk.
    let term = round(&sim, other);
    let t = sim.now();
    ok(sim.run_until_true(t + 5_000, "a new term", |s| {
        s.leader().is_some() && round(s, s.leader().unwrap()) > term
    }));
    sim.submit(10);
    let t = sim.now();
    ok(sim.run_until(t + 300));
    // F's first step of the new term persists the term, then crashes before the log write.
    sim.crash_after_actions(f, 1);
    sim.network_mut().heal();
    let t = sim.now();
    ok(sim.run_until_true(t + 2_000, "F crashes mid-step", |s| !s.is_up(f)));
    ok(sim.restart(f));
    let new_leader = sim.leader().unwrap();
    sim.submit(5);
    let t = sim.now();
    ok(sim.run_until_true(t + 5_000, "F converges", |s| {
        (0..3).all(|i| s.tip(i) == s.tip(new_leader))
    }));
    let deadline = sim.now() + 5_000;
    ok(sim.run_until_settled(deadline));
}

/// A node down while 1,000 blocks commit returns to a log compacted past it and is brought up by
/// a chunked snapshot.
#[test]
fn snapshot_brings_a_node_1000_blocks_behind_up() {
    let params = RaftParams {
        max_block_txs: 1,
        batch_delay_ms: 0,
        snapshot_interval: 100,
        ..RaftParams::default()
    };
    let mut sim = new_sim(
        3,
        88,
        RaftOptions {
            params,
            ..RaftOptions::default()
        },
    );
    let leader = settle(&mut sim);
    let f = (leader + 1) % 3;
    sim.crash(f);
    let start = sim.height(leader);
    while sim.height(leader) < start + 1_000 {
        sim.submit(50);
        let t = sim.now();
        ok(sim.run_until(t + 100));
        assert!(sim.now() < 120_000, "1,000 blocks took too long");
    }
    ok(sim.restart(f));
    let t = sim.now();
    ok(sim.run_until_true(t + 10_000, "the node catches up", |s| {
        s.tip(f) == s.tip(s.leader().unwrap_or(leader))
    }));
    assert!(
        sim.events().iter().any(|(_, n, e)| *n == f
            && matches!(
                e,
                EngineEvent::Snapshot {
                    installed: true,
                    ..
                }
            )),
        "the node was brought up by a snapshot"
    );
    assert_eq!(sim.accounts(f), sim.accounts(leader));
    // One transaction a block: the backlog the loop above built takes a while to drain.
    let deadline = sim.now() + 30_000;
    ok(sim.run_until_settled(deadline));
}

/// Add a fourth validator and remove another one, under load.
#[test]
fn add_and_remove_members_under_load() {
    let options = RaftOptions {
        genesis_validators: Some(3),
        ..RaftOptions::default()
    };
    let mut sim = ok(Scenario::new("membership", 4, 99)
        .load(200, 200, 6_000)
        .at(
            1_000,
            Step::Check(
                "node 3 starts as an observer",
                Box::new(|s: &Sim<RaftEngine>| match s.status(3).map(|st| st.role) {
                    Some(Role::Observer) => Ok(()),
                    other => Err(format!("node 3 is {other:?}")),
                }),
            ),
        )
        .at(
            1_200,
            Step::Command(
                Target::Leader,
                Command::AddValidator(synod_consensus::sim::bank::validator_key(3).public()),
            ),
        )
        .at(
            2_500,
            Step::Check(
                "node 3 is a follower",
                Box::new(|s: &Sim<RaftEngine>| match s.status(3) {
                    Some(st) if st.members.len() == 4 && st.role != Role::Observer => Ok(()),
                    other => Err(format!(
                        "node 3: {:?}",
                        other.map(|st| (st.role, st.members.len()))
                    )),
                }),
            ),
        )
        .at(
            3_000,
            Step::Command(
                Target::Leader,
                Command::RemoveValidator(synod_consensus::sim::bank::validator_key(0).public()),
            ),
        )
        .expect_progress(3_500, 3, 6_000)
        .at(
            7_000,
            Step::Check(
                "the remaining members converge",
                Box::new(|s: &Sim<RaftEngine>| {
                    let tips: Vec<_> = (1..4).map(|i| s.tip(i).hash()).collect();
                    if tips.iter().all(|t| *t == tips[0]) {
                        Ok(())
                    } else {
                        Err(format!("{tips:?}"))
                    }
                }),
            ),
        )
        .run(raft_factory(options)));
    let members = sim.status(1).unwrap().members;
    assert_eq!(members.len(), 3);
    assert!(!members.contains(&sim.id(0)));
    assert_eq!(sim.status(0).unwrap().role, Role::Observer);
    let deadline = sim.now() + 5_000;
    ok(sim.run_until_settled(deadline));
}

/// The leader removes itself: it keeps leading until the change commits, then steps down, and the
/// remaining validators elect a new leader and continue.
#[test]
fn removing_the_leader() {
    let mut sim = new_sim(5, 111, RaftOptions::default());
    let leader = settle(&mut sim);
    sim.command(leader, Command::RemoveValidator(sim.id(leader)));
    let t = sim.now();
    ok(
        sim.run_until_true(t + 5_000, "a new leader among the rest", |s| {
            s.leader().is_some_and(|l| l != leader)
        }),
    );
    assert!(sim.events().iter().any(|(_, n, e)| *n == leader
        && matches!(
            e,
            EngineEvent::SteppedDown {
                reason: "removed from the validator set",
                ..
            }
        )));
    let before = sim.checker().decided_height();
    sim.submit(20);
    let t = sim.now();
    ok(sim.run_until_true(t + 3_000, "commits continue", |s| {
        s.checker().decided_height() > before
    }));
    assert_eq!(role(&sim, leader), Some(Role::Observer));
    let deadline = sim.now() + 5_000;
    ok(sim.run_until_settled(deadline));
}

/// Leadership transfer hands over to a chosen follower without an election timeout.
#[test]
fn leadership_transfer() {
    let mut sim = new_sim(3, 122, RaftOptions::default());
    let leader = settle(&mut sim);
    let target = (leader + 1) % 3;
    sim.command(leader, Command::TransferLeadership(sim.id(target)));
    let t = sim.now();
    ok(sim.run_until_true(t + 200, "the target leads", |s| s.leader() == Some(target)));
    sim.submit(10);
    let before = sim.checker().decided_height();
    let t = sim.now();
    ok(sim.run_until_true(t + 2_000, "it commits", |s| {
        s.checker().decided_height() > before
    }));
    let deadline = sim.now() + 5_000;
    ok(sim.run_until_settled(deadline));
}
