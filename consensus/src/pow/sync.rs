//! Block propagation and catching up. A new tip is announced by its header; peers fetch the
//! bodies they lack by hash. A locator (ids of one's chain, ten dense ones from the tip and then
//! exponentially sparser, down to the oldest retained block) lets a peer find the last block two
//! chains share, even when they fork, and answer with the headers after it: a node that was
//! down catches up headers first, fetching bodies only for the best chain of headers it knows.
//! A peer answers only from the part of its chain it holds bodies for (above its finalized
//! height); a node further behind than that is told the peer's height and fetches the range from
//! the peer's store instead ([`Action::RequestSync`], answered with [`crate::Input::Synced`]).
//! A periodic timer asks a random peer for headers (anti-entropy against lost announcements),
//! re-asks bodies that did not come, and relays old pending transactions again.

use std::collections::BTreeMap;

use synod_chain::hash::Hash;
use synod_chain::{Block, BlockHeader};

use super::intake::Admission;
use super::messages::{
    MAX_ANNOUNCE_HEADERS, MAX_BLOCKS_PER_MESSAGE, MAX_HEADERS, MAX_LOCATOR, MAX_SYNCED_BLOCKS,
    MAX_TXS_PER_ANSWER,
};
use super::{MAX_BODIES_IN_FLIGHT, PowEngine, PowMessage, SYNC_TIMER, StoreSync};
use crate::engine::{Action, NodeId, SyncedBlock};

/// Dense locator entries before the steps start doubling.
const DENSE_LOCATOR: usize = 10;

impl PowEngine {
    /// A locator for the chain ending at `hash`: its id and its ancestors', one by one for the
    /// first ten, then doubling the step, ending with the oldest retained block.
    pub(super) fn locator(&self, hash: &Hash) -> Vec<Hash> {
        let Some(start) = self.tree.get(hash) else {
            return Vec::new();
        };
        let base = self.tree.base();
        let mut locator = Vec::new();
        let mut height = start.height();
        let mut step = 1u64;
        loop {
            if let Some(node) = self.tree.ancestor(hash, height) {
                locator.push(node.hash);
            }
            if height <= base || locator.len() >= MAX_LOCATOR {
                break;
            }
            if locator.len() >= DENSE_LOCATOR {
                step = step.saturating_mul(2);
            }
            height = height.saturating_sub(step).max(base);
        }
        locator
    }

    pub(super) fn on_get_headers(
        &mut self,
        from: NodeId,
        locator: Vec<Hash>,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        let floor = self.finalized.max(self.tree.base());
        let start = locator
            .iter()
            .take(MAX_LOCATOR)
            .filter_map(|h| self.tree.get(h))
            .find(|n| n.height() >= floor && self.tree.is_canonical(n))
            .map(|n| n.height());
        let tip_height = self.tree.tip().height();
        let headers: Vec<BlockHeader> = match start {
            Some(height) => (height + 1..=tip_height)
                .take(MAX_HEADERS)
                .filter_map(|h| self.tree.canonical_at(h).map(|n| n.header))
                .collect(),
            None => Vec::new(),
        };
        out.push(Action::Send {
            to: from,
            msg: PowMessage::Headers {
                headers,
                tip_height,
            },
        });
    }

    /// Offers consecutive headers from `from`; stops at the first that does not join the tree.
    /// Returns the id of the last one in the tree if all of them are. With `ask`, a first header
    /// whose parent is unknown makes the engine ask `from` for the headers between.
    fn offer_headers(
        &mut self,
        from: NodeId,
        headers: Vec<BlockHeader>,
        ask: bool,
        out: &mut Vec<Action<PowMessage>>,
    ) -> Option<Hash> {
        let mut last = None;
        for header in headers {
            let hash = header.hash();
            match self.offer_header(header, Some(from), out) {
                Admission::Known | Admission::Added => last = Some(hash),
                Admission::Orphan => {
                    if ask {
                        let locator = self.locator(&self.tip_hash());
                        out.push(Action::Send {
                            to: from,
                            msg: PowMessage::GetHeaders { locator },
                        });
                    }
                    return None;
                }
                Admission::Early | Admission::Rejected => return None,
            }
        }
        last
    }

    pub(super) fn on_announce(
        &mut self,
        from: NodeId,
        headers: Vec<BlockHeader>,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        let headers = headers.into_iter().take(MAX_ANNOUNCE_HEADERS).collect();
        self.offer_headers(from, headers, true, out);
        self.after_new_data(out);
    }

    pub(super) fn on_headers(
        &mut self,
        from: NodeId,
        headers: Vec<BlockHeader>,
        tip_height: u64,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        if headers.is_empty() {
            // Nothing of our chain is in the part of the peer's chain it serves, yet it is ahead:
            // our fork from it (or our tip) lies below its finalized height, so the bodies we
            // would need are only in its store. Headers we may already hold do not help.
            if tip_height > self.tree.tip().height() {
                self.start_store_sync(from, tip_height, out);
            }
            return;
        }
        let full = headers.len() >= MAX_HEADERS;
        let headers = headers.into_iter().take(MAX_HEADERS).collect();
        // An answer that does not connect is not asked again: the next timer tick will.
        let last = self.offer_headers(from, headers, false, out);
        if let (true, Some(last)) = (full, last) {
            let locator = self.locator(&last);
            out.push(Action::Send {
                to: from,
                msg: PowMessage::GetHeaders { locator },
            });
        }
        self.after_new_data(out);
    }

    pub(super) fn on_get_blocks(
        &mut self,
        from: NodeId,
        hashes: Vec<Hash>,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        let mut blocks: Vec<Block> = Vec::new();
        let mut txs = 0;
        for hash in hashes.iter().take(MAX_BLOCKS_PER_MESSAGE) {
            let Some(block) = self.tree.get(hash).and_then(|n| n.block()) else {
                continue;
            };
            txs += block.txs.len();
            if !blocks.is_empty() && txs > MAX_TXS_PER_ANSWER {
                break;
            }
            blocks.push(block);
        }
        if !blocks.is_empty() {
            out.push(Action::Send {
                to: from,
                msg: PowMessage::Blocks { blocks },
            });
        }
    }

    pub(super) fn on_blocks(
        &mut self,
        from: Option<NodeId>,
        blocks: Vec<Block>,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        for block in blocks.into_iter().take(MAX_BLOCKS_PER_MESSAGE) {
            self.offer_block(block, from, true, out);
        }
        self.after_new_data(out);
    }

    /// Asks `peer`'s store for its chain, unless a store sync is under way: from just above the
    /// point where the heaviest chain of headers we know forks from ours (our tip, if we know of
    /// none heavier). If an earlier answer did not connect (the peer's chain forks lower than we
    /// know), the request starts from our finalized height instead.
    fn start_store_sync(&mut self, peer: NodeId, target: u64, out: &mut Vec<Action<PowMessage>>) {
        if self
            .store_sync
            .is_some_and(|s| self.now < s.asked_at.saturating_add(2 * self.sync_interval_ms))
        {
            return;
        }
        let tip = self.tree.tip();
        let best = self.tree.best();
        let height = if self.store_sync_from_finalized {
            self.finalized + 1
        } else if best.chainwork > tip.chainwork {
            self.tree
                .fork_point(&best.hash)
                .map_or(tip.height(), |fork| fork.height())
                .max(self.finalized)
                + 1
        } else {
            tip.height() + 1
        };
        self.store_sync = Some(StoreSync {
            peer,
            target,
            asked_at: self.now,
        });
        out.push(Action::RequestSync { from: peer, height });
    }

    /// Blocks from a peer's store. They are checked like any others; the sync goes on from the
    /// last of them if they connected and the peer has more.
    pub(super) fn on_synced(
        &mut self,
        blocks: Vec<SyncedBlock>,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        let sync = self.store_sync;
        let from = sync.map(|s| s.peer);
        let mut last = None;
        let mut connected = true;
        for synced in blocks.into_iter().take(MAX_SYNCED_BLOCKS) {
            let height = synced.block.header.height;
            if self.offer_block(synced.block, from, false, out).in_tree() {
                last = Some(height);
            } else {
                connected = false;
                break;
            }
        }
        self.after_new_data(out);
        let Some(sync) = sync else {
            return;
        };
        match last {
            Some(height) if connected && height < sync.target => {
                self.store_sync = Some(StoreSync {
                    asked_at: self.now,
                    ..sync
                });
                out.push(Action::RequestSync {
                    from: sync.peer,
                    height: height + 1,
                });
            }
            _ => {
                // Done; or the answer did not connect, and the next attempt starts lower.
                self.store_sync = None;
                self.store_sync_from_finalized = last.is_none() && !connected;
            }
        }
    }

    /// Fetches the bodies missing on the branch to the block with the most work, if it beats the
    /// tip: from the peer that sent each header, or a random one once a request has gone
    /// unanswered for a sync interval.
    pub(super) fn request_bodies(&mut self, out: &mut Vec<Action<PowMessage>>) {
        let tip_work = self.tree.tip().chainwork;
        let best = self.tree.best();
        if best.chainwork <= tip_work {
            return;
        }
        let mut missing = Vec::new();
        let mut cursor = Some(best);
        while let Some(node) = cursor {
            if self.tree.is_canonical(node) {
                break;
            }
            if node.body.is_none() {
                missing.push((node.hash, node.from, node.requested));
            }
            cursor = self.tree.get(&node.header.parent);
        }
        missing.reverse();
        let timeout = self.sync_interval_ms;
        let pending = |requested: Option<(NodeId, u64)>, now: u64| {
            requested.is_some_and(|(_, at)| now < at.saturating_add(timeout))
        };
        let mut in_flight = missing
            .iter()
            .filter(|(_, _, r)| pending(*r, self.now))
            .count();
        let mut asks: BTreeMap<NodeId, Vec<Hash>> = BTreeMap::new();
        for (hash, from, requested) in missing {
            if in_flight >= MAX_BODIES_IN_FLIGHT {
                break;
            }
            if pending(requested, self.now) {
                continue;
            }
            let peer = match (requested, from) {
                (None, Some(from)) => Some(from),
                _ => self.random_peer(),
            };
            let Some(peer) = peer else {
                break;
            };
            if let Some(node) = self.tree.get_mut(&hash) {
                node.requested = Some((peer, self.now));
            }
            in_flight += 1;
            asks.entry(peer).or_default().push(hash);
        }
        for (peer, hashes) in asks {
            for chunk in hashes.chunks(MAX_BLOCKS_PER_MESSAGE) {
                out.push(Action::Send {
                    to: peer,
                    msg: PowMessage::GetBlocks {
                        hashes: chunk.to_vec(),
                    },
                });
            }
        }
    }

    pub(super) fn on_sync_timer(&mut self, out: &mut Vec<Action<PowMessage>>) {
        out.push(Action::SetTimer {
            id: SYNC_TIMER,
            after: self.sync_interval_ms,
        });
        if let Some(peer) = self.random_peer() {
            let locator = self.locator(&self.tip_hash());
            out.push(Action::Send {
                to: peer,
                msg: PowMessage::GetHeaders { locator },
            });
        }
        if self
            .store_sync
            .is_some_and(|s| self.now >= s.asked_at.saturating_add(4 * self.sync_interval_ms))
        {
            self.store_sync = None;
        }
        self.request_bodies(out);
        self.relay_due(out);
    }
}
