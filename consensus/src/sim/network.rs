//! The simulated network: per-message delay with jitter (which also reorders), loss,
//! duplication, and partitions (symmetric, asymmetric, one-way) that start and heal.

use std::collections::HashSet;

use crate::engine::Millis;
use crate::rng::DetRng;

/// How links behave when nothing is partitioned.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Minimum one-way delay.
    pub base_delay_ms: Millis,
    /// Extra delay, uniform in `[0, jitter]`; with jitter, later messages can overtake earlier ones.
    pub jitter_ms: Millis,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
}

impl NetworkConfig {
    /// Links drawn from `rng` for a seed sweep: 1 to 3 ms of delay, up to 12 ms of jitter, up to
    /// 4% loss and 3% duplication.
    pub fn random(rng: &mut DetRng) -> Self {
        NetworkConfig {
            base_delay_ms: rng.range(1, 3),
            jitter_ms: rng.range(0, 12),
            loss: rng.range(0, 4) as f64 / 100.0,
            duplicate: rng.range(0, 3) as f64 / 100.0,
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            base_delay_ms: 1,
            jitter_ms: 4,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// Links and their faults.
#[derive(Clone, Debug)]
pub struct Network {
    /// Current link behaviour.
    pub config: NetworkConfig,
    /// Directed links that drop everything: (from, to).
    blocked: HashSet<(usize, usize)>,
}

impl Network {
    /// A fully connected network.
    pub fn new(config: NetworkConfig) -> Self {
        Network {
            config,
            blocked: HashSet::new(),
        }
    }

    /// Splits the nodes into groups that cannot reach each other (nodes in no group are cut off
    /// from everyone).
    pub fn partition(&mut self, nodes: usize, groups: &[Vec<usize>]) {
        self.blocked.clear();
        let group_of = |n: usize| groups.iter().position(|g| g.contains(&n));
        for a in 0..nodes {
            for b in 0..nodes {
                if a != b && (group_of(a).is_none() || group_of(a) != group_of(b)) {
                    self.blocked.insert((a, b));
                }
            }
        }
    }

    /// Blocks messages from every node in `from` to every node in `to` (one direction only).
    pub fn block_one_way(&mut self, from: &[usize], to: &[usize]) {
        for a in from {
            for b in to {
                if a != b {
                    self.blocked.insert((*a, *b));
                }
            }
        }
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Whether any link is blocked.
    pub fn is_partitioned(&self) -> bool {
        !self.blocked.is_empty()
    }

    /// The delivery delays of one message from `from` to `to`: none if it is dropped, two if it
    /// is duplicated.
    pub fn route(&self, rng: &mut DetRng, from: usize, to: usize) -> Vec<Millis> {
        if self.blocked.contains(&(from, to)) || rng.chance(self.config.loss) {
            return Vec::new();
        }
        let delay =
            |rng: &mut DetRng| self.config.base_delay_ms + rng.range(0, self.config.jitter_ms);
        let first = delay(rng);
        if rng.chance(self.config.duplicate) {
            vec![first, delay(rng)]
        } else {
            vec![first]
        }
    }
}
