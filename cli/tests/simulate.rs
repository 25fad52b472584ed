//! `synod simulate` through the real binary: one equivocating Raft node breaks agreement and
//! the report names the seed that replays it; the same seeds without it break nothing; the
//! replayed seed's trace ends at the same violation; engines whose simulator is not in this
//! build are refused.
//!
//! The other half of the comparison: PBFT with f = 1 equivocating replica of 4 breaks nothing over
//! the same seeds.

#![allow(clippy::unwrap_used)]

mod support;

use support::{stdout, synod};

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
fn engines_without_a_simulator_in_this_build_are_refused() {
    let out = synod(&["simulate", "--engine", "pow", "--nodes", "4"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not in this build"), "{err}");
    let out = synod(&["simulate", "--byzantine", "1", "--behaviour", "censor"]);
    assert!(!out.status.success());
}
