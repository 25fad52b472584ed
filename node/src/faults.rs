//! Faults injected into a running node, for experiments on dev chains: a partition (peers with
//! which every message is dropped, both ways) and a slow, lossy link (delay, jitter and loss on
//! outbound consensus messages, on every link or toward chosen peers).
//!
//! The faults act at the node's network edge, where the network task asks [`Faults`] about each
//! message: the engine, the mempool and sync see a real network misbehave, and nothing else in
//! the node knows. Every node of a testnet is told its own side of a fault (the CLI tells each
//! node of one group to cut off every node of the others), so a partition holds in both
//! directions even for gossip that a third node relays. Faults live in memory only: a restarted
//! node starts healed.
//!
//! Refused on chains not marked `dev`: a production validator must never be one RPC call away
//! from cutting itself off.

mod delay_line;

use std::collections::{BTreeSet, HashSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use libp2p::PeerId;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};
use synod_chain::keys::PublicKey;

pub use delay_line::DelayLine;

use crate::metrics::FaultLabel;
use crate::net::peer_id_of;

/// The partition fault's name in metrics and status.
pub const PARTITION: &str = "partition";
/// The loss fault's name in metrics and status.
pub const LOSS: &str = "loss";

/// Where a dropped message was going, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// A consensus message this node was sending.
    ConsensusOut,
    /// A consensus message a peer sent us.
    ConsensusIn,
    /// A block-sync request this node was making.
    SyncOut,
    /// A block-sync request a peer made.
    SyncIn,
    /// A gossiped transaction batch a peer relayed to us.
    GossipIn,
}

impl Channel {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::ConsensusOut => "consensus_out",
            Channel::ConsensusIn => "consensus_in",
            Channel::SyncOut => "sync_out",
            Channel::SyncIn => "sync_in",
            Channel::GossipIn => "gossip_in",
        }
    }

    const ALL: [Channel; 5] = [
        Channel::ConsensusOut,
        Channel::ConsensusIn,
        Channel::SyncOut,
        Channel::SyncIn,
        Channel::GossipIn,
    ];
}

/// Delay, jitter and loss on outbound consensus messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkDelay {
    /// Added to every message, in milliseconds.
    pub ms: u64,
    /// Extra delay, uniform in `[0, jitter_ms]`; later messages may overtake earlier ones.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Percentage of messages dropped (0 to 100).
    #[serde(default)]
    pub loss_pct: f64,
    /// Only messages toward these peers; every link when empty.
    #[serde(default)]
    pub toward: BTreeSet<PublicKey>,
}

/// The faults in force, as `status` shows them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FaultSet {
    /// Peers cut off.
    pub partition: BTreeSet<PublicKey>,
    /// The slow link, if any.
    pub delay: Option<LinkDelay>,
}

impl FaultSet {
    /// Whether nothing is injected.
    pub fn is_empty(&self) -> bool {
        self.partition.is_empty() && self.delay.is_none()
    }
}

/// Why a fault was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    /// The chain is not a dev chain.
    #[error(
        "fault injection is refused: chain {0:?} is not a dev chain (its genesis has \"dev\": false); faults are for experiments on local testnets"
    )]
    NotDev(String),
    /// A nonsensical parameter.
    #[error("{0}")]
    Invalid(String),
}

/// What to do with one outbound consensus message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it now.
    Send,
    /// Send it after this long.
    Delay(Duration),
    /// Drop it (already counted).
    Drop,
}

/// The faults, with the peer ids the network task looks up on every message.
#[derive(Default)]
struct State {
    set: FaultSet,
    cut: HashSet<PeerId>,
    delay_toward: HashSet<PeerId>,
}

/// A node's injected faults. Cheap to ask when none are set (one atomic load).
pub struct Faults {
    chain_id: String,
    allowed: bool,
    active: AtomicBool,
    state: RwLock<State>,
    dropped: Family<FaultLabel, Counter>,
    delayed: Counter,
}

impl Default for Faults {
    /// No faults, and none allowed (a network without a node around it, as in tests).
    fn default() -> Self {
        Faults::new("", false, Family::default(), Counter::default())
    }
}

fn peer_ids(keys: &BTreeSet<PublicKey>) -> HashSet<PeerId> {
    keys.iter().filter_map(peer_id_of).collect()
}

impl Faults {
    /// Faults for a node of `chain_id`, allowed only when the chain is `dev`, counting what
    /// they drop and delay in these metrics.
    pub fn new(
        chain_id: &str,
        dev: bool,
        dropped: Family<FaultLabel, Counter>,
        delayed: Counter,
    ) -> Self {
        Faults {
            chain_id: chain_id.to_string(),
            allowed: dev,
            active: AtomicBool::new(false),
            state: RwLock::new(State::default()),
            dropped,
            delayed,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut FaultSet)) -> Result<FaultSet, FaultError> {
        if !self.allowed {
            return Err(FaultError::NotDev(self.chain_id.clone()));
        }
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state.set);
        state.cut = peer_ids(&state.set.partition);
        state.delay_toward = state
            .set
            .delay
            .as_ref()
            .map(|d| peer_ids(&d.toward))
            .unwrap_or_default();
        self.active.store(!state.set.is_empty(), Ordering::Release);
        Ok(state.set.clone())
    }

    /// Cuts this node off from `peers` (replacing any earlier partition; empty heals it).
    pub fn set_partition(&self, peers: BTreeSet<PublicKey>) -> Result<FaultSet, FaultError> {
        self.update(|set| set.partition = peers)
    }

    /// Slows (and thins) outbound consensus messages, replacing any earlier delay.
    pub fn set_delay(&self, delay: LinkDelay) -> Result<FaultSet, FaultError> {
        if !(0.0..=100.0).contains(&delay.loss_pct) {
            return Err(FaultError::Invalid(format!(
                "loss_pct must be between 0 and 100, got {}",
                delay.loss_pct
            )));
        }
        if delay.ms.saturating_add(delay.jitter_ms) > 60_000 {
            return Err(FaultError::Invalid(
                "ms + jitter_ms must stay within 60000 (a minute)".into(),
            ));
        }
        self.update(|set| set.delay = Some(delay))
    }

    /// Removes every fault.
    pub fn heal(&self) -> Result<FaultSet, FaultError> {
        self.update(|set| *set = FaultSet::default())
    }

    /// The faults in force.
    pub fn current(&self) -> FaultSet {
        self.read().set.clone()
    }

    /// Messages dropped so far, by fault (`partition`, `loss`).
    pub fn dropped_counts(&self) -> Vec<(&'static str, u64)> {
        [PARTITION, LOSS]
            .into_iter()
            .map(|fault| {
                let total = Channel::ALL
                    .iter()
                    .map(|c| self.dropped.get_or_create(&label(fault, *c)).get())
                    .sum();
                (fault, total)
            })
            .collect()
    }

    /// Messages delayed so far.
    pub fn delayed_count(&self) -> u64 {
        self.delayed.get()
    }

    fn count(&self, fault: &'static str, channel: Channel) {
        self.dropped.get_or_create(&label(fault, channel)).inc();
    }

    /// Whether everything to and from `peer` is dropped; counts the drop on `channel` if so.
    pub fn cuts(&self, peer: &PeerId, channel: Channel) -> bool {
        if !self.active.load(Ordering::Acquire) {
            return false;
        }
        let cut = self.read().cut.contains(peer);
        if cut {
            self.count(PARTITION, channel);
        }
        cut
    }

    /// What to do with a consensus message for `peer`.
    pub fn outbound_consensus(&self, peer: &PeerId) -> Verdict {
        if !self.active.load(Ordering::Acquire) {
            return Verdict::Send;
        }
        let (delay, applies) = {
            let state = self.read();
            if state.cut.contains(peer) {
                drop(state);
                self.count(PARTITION, Channel::ConsensusOut);
                return Verdict::Drop;
            }
            let applies = state.delay_toward.is_empty() || state.delay_toward.contains(peer);
            (state.set.delay.clone(), applies)
        };
        let Some(delay) = delay.filter(|_| applies) else {
            return Verdict::Send;
        };
        let verdict = decide(&delay, rand::random::<f64>() * 100.0, || {
            rand::random_range(0..=delay.jitter_ms)
        });
        match verdict {
            Verdict::Drop => self.count(LOSS, Channel::ConsensusOut),
            Verdict::Delay(_) => {
                self.delayed.inc();
            }
            Verdict::Send => {}
        }
        verdict
    }
}

fn label(fault: &'static str, channel: Channel) -> FaultLabel {
    FaultLabel {
        fault: fault.to_string(),
        channel: channel.as_str().to_string(),
    }
}

/// The verdict for a message under `delay`, given a uniform draw in `[0, 100)` for loss and a
/// source of jitter.
fn decide(delay: &LinkDelay, draw: f64, jitter: impl FnOnce() -> u64) -> Verdict {
    if draw < delay.loss_pct {
        return Verdict::Drop;
    }
    let total = delay.ms + if delay.jitter_ms > 0 { jitter() } else { 0 };
    if total == 0 {
        Verdict::Send
    } else {
        Verdict::Delay(Duration::from_millis(total))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use synod_chain::SecretKey;

    fn faults(dev: bool) -> Faults {
        Faults::new("test", dev, Family::default(), Counter::default())
    }

    fn peer(n: u8) -> (PublicKey, PeerId) {
        let key = SecretKey::from_seed([n; 32]).public();
        (key, peer_id_of(&key).unwrap())
    }

    #[test]
    fn a_partition_drops_both_ways_and_heals() {
        let f = faults(true);
        let (a, pa) = peer(1);
        let (_, pb) = peer(2);
        assert!(!f.cuts(&pa, Channel::ConsensusIn));
        f.set_partition([a].into_iter().collect()).unwrap();
        assert!(f.cuts(&pa, Channel::ConsensusIn));
        assert!(f.cuts(&pa, Channel::GossipIn));
        assert!(!f.cuts(&pb, Channel::SyncIn));
        assert_eq!(f.outbound_consensus(&pa), Verdict::Drop);
        assert_eq!(f.outbound_consensus(&pb), Verdict::Send);
        assert_eq!(f.dropped_counts(), vec![(PARTITION, 3), (LOSS, 0)]);
        assert!(f.heal().unwrap().is_empty());
        assert!(!f.cuts(&pa, Channel::ConsensusIn));
        assert_eq!(f.outbound_consensus(&pa), Verdict::Send);
    }

    #[test]
    fn delay_applies_to_the_chosen_links_only() {
        let f = faults(true);
        let (a, pa) = peer(1);
        let (_, pb) = peer(2);
        f.set_delay(LinkDelay {
            ms: 40,
            jitter_ms: 0,
            loss_pct: 0.0,
            toward: [a].into_iter().collect(),
        })
        .unwrap();
        assert_eq!(
            f.outbound_consensus(&pa),
            Verdict::Delay(Duration::from_millis(40))
        );
        assert_eq!(f.outbound_consensus(&pb), Verdict::Send);
        assert_eq!(f.delayed_count(), 1);
    }

    #[test]
    fn loss_and_jitter_follow_their_draws() {
        let delay = LinkDelay {
            ms: 10,
            jitter_ms: 5,
            loss_pct: 25.0,
            toward: BTreeSet::new(),
        };
        assert_eq!(decide(&delay, 24.9, || 0), Verdict::Drop);
        assert_eq!(
            decide(&delay, 25.0, || 5),
            Verdict::Delay(Duration::from_millis(15))
        );
        let none = LinkDelay {
            ms: 0,
            jitter_ms: 0,
            ..delay
        };
        assert_eq!(decide(&none, 99.0, || 7), Verdict::Send);
    }

    #[test]
    fn refused_off_dev_chains_and_for_bad_values() {
        let f = faults(false);
        assert!(matches!(
            f.set_partition(BTreeSet::new()),
            Err(FaultError::NotDev(_))
        ));
        assert!(matches!(f.heal(), Err(FaultError::NotDev(_))));
        let dev = faults(true);
        let bad = LinkDelay {
            ms: 1,
            jitter_ms: 0,
            loss_pct: 101.0,
            toward: BTreeSet::new(),
        };
        assert!(matches!(dev.set_delay(bad), Err(FaultError::Invalid(_))));
    }
}
