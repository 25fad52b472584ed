//! Elections: pre-vote, votes persisted before they are granted, the election restriction, the
//! leader lease that lets followers ignore disruptive candidates, and check-quorum.

use super::{
    CHECK_QUORUM_TIMER, ELECTION_TIMER, HEARTBEAT_TIMER, LeaderState, Progress, RaftEngine,
    RaftMessage,
};
use crate::engine::{Action, EngineEvent, Millis, NodeId, Role};

impl RaftEngine {
    /// Whether a candidate's log is at least as up to date as ours (Raft §5.4.1).
    fn log_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        (last_term, last_index) >= (self.log.last_term(), self.log.last_index())
    }

    /// Whether we have heard from a live leader within the minimum election timeout; if so we
    /// refuse (pre-)votes for higher terms, so a node that was partitioned cannot depose it.
    fn in_leader_lease(&self, now: Millis) -> bool {
        match self.role {
            Role::Leader => true,
            _ => {
                self.leader.is_some()
                    && self.last_leader_contact.is_some_and(|t| {
                        now.saturating_sub(t) < self.params.election_timeout_min_ms
                    })
            }
        }
    }

    pub(super) fn send_to_members(&self, msg: RaftMessage, out: &mut Vec<Action<RaftMessage>>) {
        for member in self.members.iter().filter(|m| **m != self.me) {
            out.push(Action::Send {
                to: *member,
                msg: msg.clone(),
            });
        }
    }

    pub(super) fn on_election_timeout(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        if !self.can_campaign() || self.role == Role::Leader {
            return;
        }
        self.start_pre_vote(now, out);
    }

    /// Enters `role` with only our own vote and a fresh timer; true if that vote is a majority
    /// already (a one-member cluster).
    fn begin_campaign(&mut self, role: Role, out: &mut Vec<Action<RaftMessage>>) -> bool {
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.me);
        self.set_role(role, out);
        self.reset_election_timer(out);
        self.votes.len() >= self.majority()
    }

    fn start_pre_vote(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        if self.begin_campaign(Role::PreCandidate, out) {
            return self.start_election(now, false, out);
        }
        self.send_to_members(
            RaftMessage::PreVote {
                term: self.hard.term + 1,
                last_index: self.log.last_index(),
                last_term: self.log.last_term(),
            },
            out,
        );
    }

    pub(super) fn on_pre_vote(
        &mut self,
        now: Millis,
        from: NodeId,
        term: u64,
        last_index: u64,
        last_term: u64,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        let granted = term > self.hard.term
            && self.is_member(&from)
            && self.log_up_to_date(last_index, last_term)
            && !self.in_leader_lease(now);
        out.push(Action::Send {
            to: from,
            msg: RaftMessage::PreVoteResponse {
                term: if granted { term } else { self.hard.term },
                granted,
            },
        });
    }

    pub(super) fn on_pre_vote_response(
        &mut self,
        now: Millis,
        from: NodeId,
        term: u64,
        granted: bool,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        if !granted && term > self.hard.term {
            return self.become_follower(term, None, out);
        }
        if self.role != Role::PreCandidate || !granted || term != self.hard.term + 1 {
            return;
        }
        if self.is_member(&from) {
            self.votes.insert(from);
        }
        if self.votes.len() >= self.majority() {
            self.start_election(now, false, out);
        }
    }

    /// Increments the term, votes for itself (persisted first) and asks the members for votes.
    pub(super) fn start_election(
        &mut self,
        now: Millis,
        transfer: bool,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        self.hard.term += 1;
        self.hard.voted_for = Some(self.me);
        self.persist_hard(out);
        if self.begin_campaign(Role::Candidate, out) {
            return self.become_leader(now, out);
        }
        self.send_to_members(
            RaftMessage::Vote {
                term: self.hard.term,
                last_index: self.log.last_index(),
                last_term: self.log.last_term(),
                transfer,
            },
            out,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_vote(
        &mut self,
        now: Millis,
        from: NodeId,
        term: u64,
        last_index: u64,
        last_term: u64,
        transfer: bool,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        let reject = |engine: &Self, out: &mut Vec<Action<RaftMessage>>| {
            out.push(Action::Send {
                to: from,
                msg: RaftMessage::VoteResponse {
                    term: engine.hard.term,
                    granted: false,
                },
            });
        };
        if term < self.hard.term {
            return reject(self, out);
        }
        if term > self.hard.term {
            if !transfer && self.in_leader_lease(now) {
                return reject(self, out);
            }
            self.become_follower(term, None, out);
        }
        #[allow(unused_mut)]
        let mut free = self.hard.voted_for.is_none() || self.hard.voted_for == Some(from);
        #[cfg(feature = "test-faults")]
        if self.fault == super::RaftFault::VoteTwice {
            free = true;
        }
        let granted = free && self.is_member(&from) && self.log_up_to_date(last_index, last_term);
        if granted {
            self.hard.voted_for = Some(from);
            // The vote is durable before the answer leaves (the driver orders Persist first).
            self.persist_hard(out);
            self.reset_election_timer(out);
        }
        out.push(Action::Send {
            to: from,
            msg: RaftMessage::VoteResponse {
                term: self.hard.term,
                granted,
            },
        });
    }

    pub(super) fn on_vote_response(
        &mut self,
        now: Millis,
        from: NodeId,
        term: u64,
        granted: bool,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        if term > self.hard.term {
            return self.become_follower(term, None, out);
        }
        if self.role != Role::Candidate || term != self.hard.term || !granted {
            return;
        }
        if self.is_member(&from) {
            self.votes.insert(from);
        }
        if self.votes.len() >= self.majority() {
            self.become_leader(now, out);
        }
    }

    fn become_leader(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        self.leader = Some(self.me);
        self.last_leader_contact = Some(now);
        let next = self.log.last_index() + 1;
        let progress = self
            .members
            .iter()
            .filter(|m| **m != self.me)
            .map(|m| (*m, Progress::new(next, now)))
            .collect();
        self.leader_state = Some(LeaderState {
            progress,
            transfer: None,
            outgoing: None,
            batch_armed: false,
        });
        self.set_role(Role::Leader, out);
        out.push(Action::CancelTimer(ELECTION_TIMER));
        out.push(Action::SetTimer {
            id: HEARTBEAT_TIMER,
            after: self.params.heartbeat_interval_ms,
        });
        out.push(Action::SetTimer {
            id: CHECK_QUORUM_TIMER,
            after: self.check_quorum_period(),
        });
        // An entry of this term is what lets earlier entries commit (Raft §5.4.2).
        self.propose_block(now, true, out);
    }

    pub(super) fn on_timeout_now(
        &mut self,
        now: Millis,
        from: NodeId,
        term: u64,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        if term < self.hard.term {
            return;
        }
        if term > self.hard.term || self.leader != Some(from) {
            self.become_follower(term, Some(from), out);
        }
        if self.can_campaign() && self.role != Role::Leader {
            self.start_election(now, true, out);
        }
    }

    /// How often a leader checks that a majority still answers it.
    pub(super) fn check_quorum_period(&self) -> Millis {
        self.params.election_timeout_max_ms
    }

    /// A leader that has not heard from a majority within twice the longest election timeout
    /// steps down at its next check (so two to three times that timeout after the last answer),
    /// and a partitioned leader stops accepting work that can never commit. Not sooner: its followers keep following it until their own timeouts pass, and a leader
    /// whose followers are only slow to answer (each busy executing a large append) would
    /// otherwise abdicate under load and hand the whole backlog to an election. Nothing relies on
    /// the leader stepping down early for safety: it serves no reads on a lease.
    pub(super) fn on_check_quorum(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        if self.role != Role::Leader {
            return;
        }
        let window = 2 * self.params.election_timeout_max_ms;
        let me_counts = usize::from(self.is_member(&self.me));
        let active = self.leader_state.as_ref().map_or(0, |state| {
            state
                .progress
                .iter()
                .filter(|(id, p)| self.is_member(id) && now.saturating_sub(p.last_ack) < window)
                .count()
        });
        if active + me_counts < self.majority() {
            out.push(Action::Event(EngineEvent::SteppedDown {
                round: self.hard.term,
                reason: "lost quorum",
            }));
            self.become_follower(self.hard.term, None, out);
            return;
        }
        self.last_leader_contact = Some(now);
        out.push(Action::SetTimer {
            id: CHECK_QUORUM_TIMER,
            after: self.check_quorum_period(),
        });
    }
}
