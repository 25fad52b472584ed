//! Snapshots on the wire: a leader sends its committed chain state in chunks to a follower whose
//! next entry it no longer holds; the follower installs it as its chain state and log prefix.

use serde::{Deserialize, Serialize};
use synod_chain::BlockHeader;
use synod_chain::codec;
use synod_chain::keys::Address;
use synod_chain::ledger::Account;

use super::storage;
use super::{LeaderContact, RaftEngine, RaftMessage, SnapshotMeta};
use crate::engine::{Action, ChainSnapshot, ChainState, EngineEvent, Millis, NodeId, Role};

/// Bytes per snapshot chunk.
const CHUNK_BYTES: usize = 256 << 10;
/// Largest snapshot a follower accepts (bounds what a peer can make it buffer).
const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

/// The chain state a snapshot carries.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    header: BlockHeader,
    accounts: Vec<(Address, Account)>,
}

impl RaftEngine {
    /// Starts sending a snapshot of the committed state to `peer`.
    pub(super) fn start_snapshot(
        &mut self,
        _now: Millis,
        peer: NodeId,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        let applied = self.applied();
        let stale = self.leader_state.as_ref().is_none_or(|s| {
            s.outgoing
                .as_ref()
                .is_none_or(|(meta, _)| meta.index < self.log.snapshot_index())
        });
        if stale {
            let Some(term) = self.log.term_at(applied) else {
                return;
            };
            let meta = SnapshotMeta {
                index: applied,
                term,
                block: self.execution.tip_hash(),
                members: self.members_at(applied),
                signature: self.log.signature_at(applied),
            };
            let data = codec::encode(&SnapshotData {
                header: *self.execution.tip(),
                accounts: self
                    .execution
                    .accounts()
                    .iter()
                    .map(|(a, acc)| (*a, *acc))
                    .collect(),
            });
            out.push(Action::Event(EngineEvent::Snapshot {
                height: applied,
                installed: false,
            }));
            if let Some(state) = self.leader_state.as_mut() {
                state.outgoing = Some((meta, data));
            }
        }
        if let Some(p) = self
            .leader_state
            .as_mut()
            .and_then(|s| s.progress.get_mut(&peer))
        {
            p.snapshot_offset = Some(0);
        }
        self.send_snapshot_chunk(peer, out);
    }

    /// Sends the chunk of the outgoing snapshot that `peer` is waiting for.
    pub(super) fn send_snapshot_chunk(&mut self, peer: NodeId, out: &mut Vec<Action<RaftMessage>>) {
        let Some(state) = self.leader_state.as_ref() else {
            return;
        };
        let (Some((meta, data)), Some(offset)) = (
            state.outgoing.as_ref(),
            state.progress.get(&peer).and_then(|p| p.snapshot_offset),
        ) else {
            return;
        };
        let start = (offset as usize).min(data.len());
        let end = (start + CHUNK_BYTES).min(data.len());
        out.push(Action::Send {
            to: peer,
            msg: RaftMessage::Snapshot {
                term: self.hard.term,
                meta: meta.clone(),
                offset: start as u64,
                total: data.len() as u64,
                data: data[start..end].to_vec(),
            },
        });
    }

    pub(super) fn on_snapshot_response(
        &mut self,
        now: Millis,
        from: NodeId,
        term: u64,
        index: u64,
        next_offset: u64,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        if term > self.hard.term {
            return self.become_follower(term, None, out);
        }
        if self.role != Role::Leader || term < self.hard.term {
            return;
        }
        let Some(state) = self.leader_state.as_mut() else {
            return;
        };
        let Some((meta, data)) = state.outgoing.as_ref() else {
            return;
        };
        let (meta_index, total) = (meta.index, data.len() as u64);
        let Some(p) = state.progress.get_mut(&from) else {
            return;
        };
        p.last_ack = now;
        if p.snapshot_offset.is_none() || index != meta_index {
            return;
        }
        if next_offset >= total {
            p.snapshot_offset = None;
            p.matched = p.matched.max(meta_index);
            p.next = meta_index + 1;
            p.inflight = 0;
            self.send_append(now, from, out);
        } else {
            p.snapshot_offset = Some(next_offset);
            self.send_snapshot_chunk(from, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_snapshot(
        &mut self,
        now: Millis,
        from: NodeId,
        term: u64,
        meta: SnapshotMeta,
        offset: u64,
        total: u64,
        data: Vec<u8>,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        let respond = |engine: &Self, next_offset: u64, out: &mut Vec<Action<RaftMessage>>| {
            out.push(Action::Send {
                to: from,
                msg: RaftMessage::SnapshotResponse {
                    term: engine.hard.term,
                    index: meta.index,
                    next_offset,
                },
            });
        };
        match self.hear_from_leader(now, from, term, out) {
            LeaderContact::Stale => return respond(self, 0, out),
            LeaderContact::Halted => return,
            LeaderContact::Accepted => {}
        }
        if meta.index <= self.commit_index {
            self.incoming = None;
            return respond(self, total, out);
        }
        if total > MAX_SNAPSHOT_BYTES {
            return;
        }
        if offset == 0 {
            self.incoming = Some(super::IncomingSnapshot {
                meta: meta.clone(),
                total,
                data: Vec::with_capacity(total.min(16 << 20) as usize),
            });
        }
        let Some(incoming) = self.incoming.as_mut() else {
            return respond(self, 0, out);
        };
        if incoming.meta != meta || incoming.total != total || offset != incoming.data.len() as u64
        {
            let next = if incoming.meta == meta {
                incoming.data.len() as u64
            } else {
                0
            };
            return respond(self, next, out);
        }
        if incoming.data.len() as u64 + data.len() as u64 > total {
            self.incoming = None;
            return respond(self, 0, out);
        }
        incoming.data.extend_from_slice(&data);
        if (incoming.data.len() as u64) < total {
            let next = incoming.data.len() as u64;
            return respond(self, next, out);
        }
        let Some(incoming) = self.incoming.take() else {
            return;
        };
        let decoded: SnapshotData = match codec::decode(&incoming.data, total as usize) {
            Ok(d) => d,
            Err(_) => return respond(self, 0, out),
        };
        if decoded.header.height != meta.index || decoded.header.hash() != meta.block {
            return respond(self, 0, out);
        }
        self.install_snapshot(meta.clone(), decoded, out);
        respond(self, total, out);
    }

    fn install_snapshot(
        &mut self,
        meta: SnapshotMeta,
        data: SnapshotData,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        self.log
            .reset_to_snapshot(meta.index, meta.term, meta.signature);
        let drop_all = self.log.last_index() == meta.index;
        self.snapshot_members = meta.members.clone();
        self.commit_index = self.commit_index.max(meta.index);
        let accounts = data.accounts.into_iter().collect();
        self.execution.reset(ChainState {
            tip: data.header,
            accounts,
        });
        out.push(Action::InstallSnapshot(Box::new(ChainSnapshot {
            header: data.header,
            accounts: self.execution.accounts().clone(),
            proof: meta
                .signature
                .map(|signature| {
                    codec::encode(&super::proof::RaftCommitProof {
                        term: meta.term,
                        signature,
                    })
                })
                .unwrap_or_default(),
            persist: storage::write_snapshot(&meta, drop_all),
        })));
        out.push(Action::Event(EngineEvent::Snapshot {
            height: meta.index,
            installed: true,
        }));
        self.pool.prune_all(self.execution.accounts());
        self.on_membership_changed(out);
    }
}
