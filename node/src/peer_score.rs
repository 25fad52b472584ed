//! Misbehaviour scores of peers on a permissionless network, where anyone may connect: each
//! offence the engine reports (a block that breaks a rule, invalid relayed transactions) adds
//! points, points fade over time, and a peer that reaches the threshold is banned for a while.
//! An invalid block counts fully (its sender either forged it or relayed it without checking,
//! and checking is cheap next to mining); a batch of bad transactions counts half.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use synod_consensus::engine::NodeId;

/// Points at which a peer is banned.
pub const BAN_THRESHOLD: f64 = 100.0;
/// Points for a block or header that breaks a rule.
pub const INVALID_BLOCK: f64 = 100.0;
/// Points for any other protocol offence (invalid relayed transactions).
pub const MISBEHAVIOUR: f64 = 50.0;
/// How long a ban lasts.
pub const BAN_DURATION: Duration = Duration::from_secs(600);
/// Points halve over this long.
const HALF_LIFE: Duration = Duration::from_secs(300);
/// Peers remembered at most (the ones with the lowest scores are forgotten first).
const MAX_TRACKED: usize = 1_024;

/// Scores by peer.
#[derive(Debug, Default)]
pub struct PeerScores {
    scores: HashMap<NodeId, (f64, Instant)>,
}

impl PeerScores {
    /// Adds `points` to `peer`'s score; true when that makes the peer due for a ban (its score
    /// then starts over, so the ban is asked for once).
    pub fn penalize(&mut self, peer: NodeId, points: f64) -> bool {
        self.penalize_at(peer, points, Instant::now())
    }

    fn penalize_at(&mut self, peer: NodeId, points: f64, now: Instant) -> bool {
        let score = self
            .scores
            .get(&peer)
            .map_or(0.0, |(score, at)| decayed(*score, *at, now))
            + points;
        if score >= BAN_THRESHOLD {
            self.scores.remove(&peer);
            return true;
        }
        self.scores.insert(peer, (score, now));
        if self.scores.len() > MAX_TRACKED {
            self.forget_lowest(now);
        }
        false
    }

    /// The current score of `peer`.
    pub fn score(&self, peer: &NodeId) -> f64 {
        self.scores
            .get(peer)
            .map_or(0.0, |(score, at)| decayed(*score, *at, Instant::now()))
    }

    fn forget_lowest(&mut self, now: Instant) {
        if let Some(lowest) = self
            .scores
            .iter()
            .map(|(peer, (score, at))| (*peer, decayed(*score, *at, now)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(peer, _)| peer)
        {
            self.scores.remove(&lowest);
        }
    }
}

fn decayed(score: f64, at: Instant, now: Instant) -> f64 {
    let halvings = now.saturating_duration_since(at).as_secs_f64() / HALF_LIFE.as_secs_f64();
    score * 0.5f64.powf(halvings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::keys::PublicKey;

    #[test]
    fn offences_add_up_fade_and_ban_once() {
        let mut scores = PeerScores::default();
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let t0 = Instant::now();
        assert!(
            scores.penalize_at(a, INVALID_BLOCK, t0),
            "an invalid block bans"
        );
        assert_eq!(scores.score(&a), 0.0, "the score starts over after the ban");
        assert!(!scores.penalize_at(b, MISBEHAVIOUR, t0));
        assert!(scores.penalize_at(b, MISBEHAVIOUR, t0), "two offences ban");
        // An offence long ago has faded.
        assert!(!scores.penalize_at(b, MISBEHAVIOUR, t0));
        assert!(!scores.penalize_at(b, MISBEHAVIOUR, t0 + HALF_LIFE * 4));
    }
}
