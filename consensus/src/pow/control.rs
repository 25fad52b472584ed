//! What the node hosting the engine changes at run time, outside the protocol: whether this node
//! mines and whom its blocks pay, and which peers it is connected to. Both are plain state
//! changes with the actions they imply, so the engine stays a pure state machine and a driver
//! (the node's, or a test's) applies them between inputs.

use super::{MAX_PEERS, PowEngine, PowMessage, TEMPLATE_TIMER};
use crate::engine::{Action, EngineEvent, Millis, NodeId};

impl PowEngine {
    /// Turns mining on or off and sets the key the mined blocks name as their `proposer`: the
    /// ledger pays the reward and the fees to `payout.address()`. On, the miner gets a fresh
    /// template at once (the payout may have changed, and a template names it); off, it is told
    /// to stop. A change of role is reported like any other.
    pub fn set_mining(
        &mut self,
        now: Millis,
        enabled: bool,
        payout: NodeId,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        self.now = now;
        let role_changes = enabled != self.mining;
        self.mining = enabled;
        self.payout = payout;
        if role_changes {
            out.push(Action::Event(EngineEvent::RoleChanged {
                role: self.role(),
                round: 0,
                leader: None,
            }));
        }
        if enabled {
            self.refresh_template(out);
        } else {
            if self.template_armed {
                self.template_armed = false;
                out.push(Action::CancelTimer(TEMPLATE_TIMER));
            }
            out.push(Action::StopMining);
        }
    }

    /// Whether this node mines.
    pub fn is_mining(&self) -> bool {
        self.mining
    }

    /// The key the blocks this node mines pay.
    pub fn payout(&self) -> NodeId {
        self.payout
    }

    /// The bits the next block on the tip must declare (what the miner is working against), or
    /// `None` if the schedule cannot be computed from the retained chain.
    pub fn next_bits(&self) -> Option<u32> {
        let tip = self.tree.tip();
        self.difficulty
            .next_bits(&tip.header, |h| {
                self.tree
                    .ancestor(&tip.hash, h)
                    .map(|n| n.header.timestamp_ms)
            })
            .ok()
    }

    /// Replaces the peers this engine syncs from and broadcasts to with the ones the node is
    /// connected to. A permissionless network has no member list: without this, an engine would
    /// learn a peer only when the peer first sent it something, and a node joining a quiet
    /// network would never ask anyone for the chain. Peers heard from later are learned again.
    pub fn set_peers(&mut self, peers: impl IntoIterator<Item = NodeId>) {
        self.peers = peers
            .into_iter()
            .filter(|p| *p != self.me)
            .take(MAX_PEERS)
            .collect();
    }
}
