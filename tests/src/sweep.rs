//! Seed sweeps with deliberately broken engines: evidence that a checker fires.

use synod_consensus::sim::SimFailure;

/// Runs `run` on each of `seeds` with an engine broken by `fault` (named for the report) and
/// returns how many seeds caught it. Each catch must be a violation of one of `kinds`: any other
/// failure panics, because the broken rule must be caught by the checker meant for it.
pub fn count_caught(
    fault: &str,
    kinds: &[&str],
    seeds: &[u64],
    run: impl Fn(u64) -> Result<(), SimFailure>,
) -> usize {
    let mut caught = 0;
    for &seed in seeds {
        if let Err(failure) = run(seed) {
            assert!(
                kinds.contains(&failure.violation.kind),
                "seed {seed}: {fault} caused an unexpected failure:\n{failure}"
            );
            if caught == 0 {
                println!("seed {seed} caught {fault}:\n{failure}");
            }
            caught += 1;
        }
    }
    println!("{fault} was caught by {caught} of {} seeds", seeds.len());
    caught
}
