//! Single-server membership changes and leadership transfer.

use synod_chain::ledger::BlockTemplate;

use super::{ConfigChange, Progress, RaftEngine, RaftMessage, TRANSFER_TIMER};
use crate::engine::{Action, EngineEvent, Millis, NodeId, Role};

impl RaftEngine {
    /// Recomputes the membership after the log changed, and reacts to being added or removed.
    pub(super) fn on_membership_changed(&mut self, out: &mut Vec<Action<RaftMessage>>) {
        let members = self.members_at(u64::MAX);
        if members == self.members {
            return;
        }
        self.members = members;
        out.push(Action::Event(EngineEvent::MembershipChanged {
            members: self.members.clone(),
            committed: false,
        }));
        if let Some(state) = self.leader_state.as_mut() {
            let next = self.log.last_index() + 1;
            for member in &self.members {
                if *member != self.me && !state.progress.contains_key(member) {
                    state.progress.insert(*member, Progress::new(next, 0));
                }
            }
        }
        match self.role {
            Role::Observer if self.is_member(&self.me) => {
                self.role = Role::Follower;
                out.push(Action::Event(EngineEvent::RoleChanged {
                    role: Role::Follower,
                    round: self.hard.term,
                    leader: self.leader,
                }));
                self.reset_election_timer(out);
            }
            Role::Follower | Role::PreCandidate | Role::Candidate if !self.is_member(&self.me) => {
                self.become_follower(self.hard.term, self.leader, out);
            }
            _ => {}
        }
    }

    /// A committed membership change: a removed leader steps down, a removed follower stops
    /// being replicated to.
    pub(super) fn on_change_committed(
        &mut self,
        index: u64,
        change: ConfigChange,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        out.push(Action::Event(EngineEvent::MembershipChanged {
            members: self.members_at(index),
            committed: true,
        }));
        if let ConfigChange::Remove(id) = change {
            if id == self.me && self.role == Role::Leader {
                out.push(Action::Event(EngineEvent::SteppedDown {
                    round: self.hard.term,
                    reason: "removed from the validator set",
                }));
                self.become_follower(self.hard.term, None, out);
            } else if let Some(state) = self.leader_state.as_mut() {
                state.progress.remove(&id);
            }
        }
    }

    /// Appends a membership change, one at a time, once this leader has committed an entry of its
    /// own term (the condition that makes single-server changes safe).
    pub(super) fn propose_change(
        &mut self,
        now: Millis,
        change: ConfigChange,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        if self.log.term_at(self.commit_index) != Some(self.hard.term) {
            return self
                .reject_command("the leader has not committed an entry of its term yet", out);
        }
        if self
            .log
            .last_change_index()
            .is_some_and(|i| i > self.commit_index)
        {
            return self.reject_command("a membership change is already in progress", out);
        }
        if self
            .leader_state
            .as_ref()
            .is_some_and(|s| s.transfer.is_some())
        {
            return self.reject_command("a leadership transfer is in progress", out);
        }
        match change {
            ConfigChange::Add(id) if self.is_member(&id) => {
                return self.reject_command(format!("{} is already a validator", id.short()), out);
            }
            ConfigChange::Remove(id) if !self.is_member(&id) => {
                return self.reject_command(format!("{} is not a validator", id.short()), out);
            }
            ConfigChange::Remove(_) if self.members.len() == 1 => {
                return self.reject_command("cannot remove the last validator", out);
            }
            _ => {}
        }
        if !self.sync_execution(out) {
            return;
        }
        let template = BlockTemplate {
            max_txs: 0,
            ..self.template(now)
        };
        let built = match self.execution.build(&template, Vec::new()) {
            Ok(built) => built,
            Err(e) => return self.reject_command(format!("could not build a block: {e}"), out),
        };
        let entry = self.signed_entry(built.block, Some(change));
        self.append_as_leader(now, entry, out);
    }

    /// Hands leadership to `target`: stop proposing, bring it up to date, tell it to campaign.
    pub(super) fn start_transfer(
        &mut self,
        now: Millis,
        target: NodeId,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        if target == self.me {
            return self.reject_command("already the leader", out);
        }
        if !self.is_member(&target) {
            return self.reject_command(format!("{} is not a validator", target.short()), out);
        }
        let last_index = self.log.last_index();
        let Some(state) = self.leader_state.as_mut() else {
            return;
        };
        state.transfer = Some(target);
        let caught_up = state
            .progress
            .get(&target)
            .is_some_and(|p| p.matched == last_index);
        out.push(Action::SetTimer {
            id: TRANSFER_TIMER,
            after: self.params.election_timeout_max_ms,
        });
        if caught_up {
            out.push(Action::Send {
                to: target,
                msg: RaftMessage::TimeoutNow {
                    term: self.hard.term,
                },
            });
        } else {
            self.send_append(now, target, out);
        }
    }

    pub(super) fn on_transfer_timeout(&mut self, out: &mut Vec<Action<RaftMessage>>) {
        if let Some(state) = self.leader_state.as_mut()
            && state.transfer.take().is_some()
        {
            self.reject_command("leadership transfer timed out", out);
        }
    }
}
