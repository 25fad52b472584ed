//! A Raft node that lies, for dev-chain experiments (`synod node --byzantine equivocate` on a
//! Raft chain): the honest engine runs unchanged and its outgoing messages pass through the
//! simulator's Raft adversary, so a live testnet shows what `synod simulate` shows. A broadcast
//! (Raft sends to each member itself today) would become one send per current member, because
//! an equivocator says different things to different peers. An adversary's extra delay is not
//! honoured live: `replay` duplicates at once rather than arriving stale.

use synod_consensus::engine::{Action, Engine, EngineStatus, Input, Millis, NodeId};
use synod_consensus::raft::RaftEngine;
use synod_consensus::raft::messages::RaftMessage;
use synod_consensus::raft::simulation::{RaftBehaviour, adversary};
use synod_consensus::rng::DetRng;
use synod_consensus::sim::adversary::Adversary;

use super::HostedEngine;
use crate::context::NodeContext;

/// The honest Raft engine behind an adversary that rewrites what it sends.
pub(super) struct ByzantineRaft {
    inner: RaftEngine,
    adversary: Box<dyn Adversary<RaftMessage>>,
    rng: DetRng,
    /// This node: a broadcast goes to every current member but it.
    me: NodeId,
}

impl ByzantineRaft {
    /// Wraps `inner`, the engine of the node `ctx` describes, with `behaviour`.
    pub(super) fn new(inner: RaftEngine, ctx: &NodeContext, behaviour: RaftBehaviour) -> Self {
        let validators = ctx.genesis.validator_keys();
        let me = ctx.key.public();
        ByzantineRaft {
            inner,
            adversary: adversary(
                behaviour,
                ctx.key.clone(),
                &validators,
                &ctx.genesis.chain_id,
            ),
            rng: DetRng::new(rand::random()),
            me,
        }
    }

    fn send(
        &mut self,
        now: Millis,
        to: NodeId,
        msg: RaftMessage,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        for outgoing in self.adversary.outgoing(&mut self.rng, now, to, msg) {
            out.push(Action::Send {
                to,
                msg: outgoing.msg,
            });
        }
    }
}

impl Engine for ByzantineRaft {
    type Message = RaftMessage;

    fn handle(
        &mut self,
        now: Millis,
        input: Input<RaftMessage>,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        let first = out.len();
        self.inner.handle(now, input, out);
        // Order is kept: a send still follows the persists it depends on.
        let produced: Vec<_> = out.drain(first..).collect();
        for action in produced {
            match action {
                Action::Send { to, msg } => self.send(now, to, msg, out),
                Action::Broadcast(msg) => {
                    let me = self.me;
                    for to in self.inner.status().members.into_iter().filter(|m| *m != me) {
                        self.send(now, to, msg.clone(), out);
                    }
                }
                other => out.push(other),
            }
        }
    }

    fn status(&self) -> EngineStatus {
        self.inner.status()
    }
}

/// A lying Raft node neither mines nor learns peers from connections.
impl HostedEngine for ByzantineRaft {}
