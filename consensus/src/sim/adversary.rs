//! Byzantine behaviour: a node's outgoing messages pass through an adversary that may rewrite,
//! drop, duplicate, delay and replay them, or send different variants to different peers
//! (equivocation).

use crate::engine::{Millis, NodeId};
use crate::rng::DetRng;

/// A message an adversary lets out: to whom, what, and how much later than normal.
#[derive(Clone, Debug)]
pub struct Outgoing<M> {
    /// Extra delay on top of the network's.
    pub delay: Millis,
    /// The message.
    pub msg: M,
}

/// Rewrites one Byzantine node's outgoing traffic.
pub trait Adversary<M>: Send {
    /// What to send instead of `msg` from this node to `to` at `now`.
    fn outgoing(&mut self, rng: &mut DetRng, now: Millis, to: NodeId, msg: M) -> Vec<Outgoing<M>>;
}

/// Sends nothing at all (a node that is up but silent).
pub struct Silent;

impl<M> Adversary<M> for Silent {
    fn outgoing(&mut self, _: &mut DetRng, _: Millis, _: NodeId, _: M) -> Vec<Outgoing<M>> {
        Vec::new()
    }
}

/// Sends everything twice and replays each message once more, much later (stale messages).
pub struct Replayer {
    /// How much later the replay arrives.
    pub replay_after: Millis,
}

impl<M: Clone> Adversary<M> for Replayer {
    fn outgoing(&mut self, _: &mut DetRng, _: Millis, _: NodeId, msg: M) -> Vec<Outgoing<M>> {
        vec![
            Outgoing {
                delay: 0,
                msg: msg.clone(),
            },
            Outgoing {
                delay: 0,
                msg: msg.clone(),
            },
            Outgoing {
                delay: self.replay_after,
                msg,
            },
        ]
    }
}

/// Drops each message with a probability (a flaky, lying link out of one node).
pub struct Dropper {
    /// Probability of dropping.
    pub probability: f64,
}

impl<M> Adversary<M> for Dropper {
    fn outgoing(&mut self, rng: &mut DetRng, _: Millis, _: NodeId, msg: M) -> Vec<Outgoing<M>> {
        if rng.chance(self.probability) {
            Vec::new()
        } else {
            vec![Outgoing { delay: 0, msg }]
        }
    }
}

/// A rewrite rule: for a recipient and a message, what to send instead.
pub type RewriteFn<M> = Box<dyn FnMut(&mut DetRng, NodeId, M) -> Vec<M> + Send>;

/// Rewrites each message with a function (forged fields, equivocating variants per recipient).
pub struct Rewriter<M> {
    /// Returns the messages to send in place of the original for this recipient.
    pub rewrite: RewriteFn<M>,
}

impl<M> Adversary<M> for Rewriter<M> {
    fn outgoing(&mut self, rng: &mut DetRng, _: Millis, to: NodeId, msg: M) -> Vec<Outgoing<M>> {
        (self.rewrite)(rng, to, msg)
            .into_iter()
            .map(|msg| Outgoing { delay: 0, msg })
            .collect()
    }
}
