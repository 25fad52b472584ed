//! `synod simulate` through the real binary: one equivocating Raft node breaks agreement and
//! the report names the seed that replays it; the same seeds without it break nothing; the
//! replayed seed's trace ends at the same violation; behaviours an engine does not have are
//! refused.
//!
//! The other half of the comparison: PBFT with f = 1 equivocating replica of 4 breaks nothing over
//! the same seeds. Proof of work's sweeps run through the same command and break nothing either.

#![allow(clippy::unwrap_used)]

mod support;

use support::{stderr, stdout, synod};

#[test]
fn an_equivocating_raft_leader_is_caught_and_replays_from_its_seed() {
    let common = [
        "simulate", "--engine", "raft", "--nodes", "3", "--seeds", "8",
    ];
    let honest = synod(&common);
    assert!(honest.status.success(), "{honest:?}");
    assert!(
        stdout(&honest).contains(": 0 violations"),
        "{}",
        stdout(&honest)
    );

    let mut byzantine = common.to_vec();
    byzantine.extend(["--byzantine", "1", "--behaviour", "equivocate"]);
    let out = synod(&byzantine);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("agreement"), "{text}");
    let replay = text
        .lines()
        .find_map(|l| {
            l.split_once("replay the first: ")
                .map(|(_, cmd)| cmd.to_string())
        })
        .expect("a replay line");
    let seed = replay
        .split_whitespace()
        .skip_while(|w| *w != "--seed")
        .nth(1)
        .unwrap()
        .to_string();
    // The replay command, run twice, prints the same trace and ends at the same violation.
    let args: Vec<&str> = replay.split_whitespace().skip(1).collect();
    let (a, b) = (synod(&args), synod(&args));
    assert_eq!(stdout(&a), stdout(&b));
    let trace = stdout(&a);
    assert!(
        trace.contains(&format!("seed {seed}: agreement violated")),
        "{trace}"
    );
    assert!(trace.lines().count() > 10, "a trace of events: {trace}");
}

#[test]
fn pbft_with_f_equivocating_replicas_breaks_nothing_over_the_same_seeds() {
    let out = synod(&[
        "simulate",
        "--engine",
        "pbft",
        "--nodes",
        "4",
        "--seeds",
        "8",
        "--byzantine",
        "1",
        "--behaviour",
        "equivocate",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains(": 0 violations"), "{text}");
    let too_small = synod(&["simulate", "--engine", "pbft", "--nodes", "3"]);
    assert!(!too_small.status.success());
}

#[test]
fn proof_of_work_seeds_break_nothing() {
    let out = synod(&[
        "simulate", "--engine", "pow", "--nodes", "3", "--seeds", "5",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("5 seeds of pow with 3 nodes, faults crash,partition,loss: 0 violations"),
        "{text}"
    );
}

#[test]
fn behaviours_an_engine_does_not_have_are_refused() {
    let out = synod(&["simulate", "--byzantine", "1", "--behaviour", "censor"]);
    assert!(!out.status.success());
    let out = synod(&[
        "simulate",
        "--engine",
        "pow",
        "--byzantine",
        "1",
        "--behaviour",
        "equivocate",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("expected withhold or forge"), "{err}");
}
