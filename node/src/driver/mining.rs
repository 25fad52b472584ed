//! The driver's side of mining: it runs the miner threads on the engine's templates
//! (`Action::Mine`, `Action::StopMining`), hands solutions back (`Input::BlockMined`), and carries
//! out the operator's requests: `set_mining` (on or off, threads, payout) and `mine` (N blocks now,
//! like bitcoind's `generatetoaddress`). A `mine` request turns mining on with its payout and
//! threads, counts the blocks this node's miner found that the chain committed, answers with
//! their ids once it has N, and then puts the operator's settings back (also when its client
//! went away).

use std::collections::{HashSet, VecDeque};

use serde::Serialize;
use synod_chain::Block;
use synod_chain::hash::Hash;
use synod_consensus::engine::{Input, NodeId};
use tokio::sync::oneshot;
use tracing::info;

use super::Driver;
use crate::clock::now_ms;
use crate::engines::HostedEngine;
use crate::error::NodeError;
use crate::miner::Miner;

/// Ids of blocks this node's miner found, remembered to credit a `mine` request.
const FOUND_REMEMBERED: usize = 4_096;

/// How a node starts mining (from its config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiningSetup {
    /// Mine from the start.
    pub enabled: bool,
    /// Miner threads when mining.
    pub threads: usize,
    /// Whom mined blocks pay.
    pub payout: NodeId,
}

/// The operator's mining settings, as `set_mining` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MiningState {
    /// Whether the node mines.
    pub enabled: bool,
    /// Miner threads when it does.
    pub threads: usize,
    /// Whom mined blocks pay.
    pub payout: NodeId,
}

/// An operator's mining request, for the driver.
pub enum MiningRequest {
    /// Changes the settings; each `None` keeps the current value.
    Set {
        /// On or off.
        enabled: Option<bool>,
        /// Threads.
        threads: Option<usize>,
        /// Payout key.
        payout: Option<NodeId>,
        /// The settings after the change, or why it was refused.
        reply: oneshot::Sender<Result<MiningState, String>>,
    },
    /// Mines `count` blocks now and answers with their ids.
    Blocks {
        /// How many.
        count: u64,
        /// Payout key (default: the current one).
        payout: Option<NodeId>,
        /// Threads (default: the configured ones, at least one).
        threads: Option<usize>,
        /// The ids, or why the request was refused.
        reply: oneshot::Sender<Result<Vec<Hash>, String>>,
    },
}

/// A `mine` request in progress.
struct Session {
    wanted: u64,
    payout: NodeId,
    ids: Vec<Hash>,
    reply: oneshot::Sender<Result<Vec<Hash>, String>>,
    restore: MiningState,
}

/// The miner, the settings and the request in progress.
pub(super) struct Mining {
    pub miner: Miner,
    settings: MiningState,
    session: Option<Session>,
    found: HashSet<Hash>,
    found_order: VecDeque<Hash>,
}

impl Mining {
    /// Mining as `setup` says, with `miner` (which runs no threads yet).
    pub fn new(miner: Miner, setup: MiningSetup) -> Mining {
        Mining {
            miner,
            settings: MiningState {
                enabled: setup.enabled,
                threads: setup.threads,
                payout: setup.payout,
            },
            session: None,
            found: HashSet::new(),
            found_order: VecDeque::new(),
        }
    }

    /// Threads to run for `settings`: none while mining is off.
    fn threads_for(settings: &MiningState) -> usize {
        if settings.enabled {
            settings.threads.max(1)
        } else {
            0
        }
    }

    /// Starts the threads the settings ask for (before the engine's first template).
    pub fn start(&mut self) {
        self.miner.set_threads(Self::threads_for(&self.settings));
    }

    fn remember_found(&mut self, hash: Hash) {
        if self.found.insert(hash) {
            self.found_order.push_back(hash);
            while self.found_order.len() > FOUND_REMEMBERED {
                if let Some(old) = self.found_order.pop_front() {
                    self.found.remove(&old);
                }
            }
        }
    }

    /// Blocks found and wanted by the `mine` request in progress.
    pub fn progress(&self) -> Option<(u64, u64)> {
        self.session
            .as_ref()
            .map(|s| (s.ids.len() as u64, s.wanted))
    }
}

impl<E: HostedEngine> Driver<E> {
    /// A block the miner solved: remembered as this node's, then validated by the engine. One
    /// solved under settings that changed meanwhile is dropped: the threads can be a solution
    /// ahead of a switch-off or a new payout (a `mine` request that has its blocks puts the
    /// settings back while the next template may already be solved), and the operator asked
    /// for no more blocks, or for blocks paying someone else.
    pub(super) fn on_mined(&mut self, block: Block) -> Result<(), NodeError> {
        let settings = self.mining.settings;
        if !settings.enabled || block.header.proposer != settings.payout {
            info!(
                height = block.header.height,
                hash = %block.hash().short(),
                "dropped a block mined under mining settings that changed meanwhile"
            );
            return Ok(());
        }
        self.mining.remember_found(block.hash());
        self.step(Input::BlockMined(block))
    }

    /// Credits a committed block to the `mine` request in progress if this node mined it for
    /// the request's payout.
    pub(super) fn credit_commit(&mut self, block: &Block) {
        let hash = block.hash();
        if !self.mining.found.contains(&hash) {
            return;
        }
        if let Some(session) = &mut self.mining.session
            && block.header.proposer == session.payout
            && (session.ids.len() as u64) < session.wanted
        {
            session.ids.push(hash);
        }
    }

    /// Ends the `mine` request in progress if it has its blocks or its client went away, and puts
    /// the operator's settings back. Runs between engine steps.
    pub(super) fn finish_mine_request(&mut self) -> Result<(), NodeError> {
        let done = self
            .mining
            .session
            .as_ref()
            .is_some_and(|s| s.ids.len() as u64 >= s.wanted || s.reply.is_closed());
        if !done {
            return Ok(());
        }
        let Some(session) = self.mining.session.take() else {
            return Ok(());
        };
        info!(
            blocks = session.ids.len(),
            wanted = session.wanted,
            "mine request finished"
        );
        let _ = session.reply.send(Ok(session.ids));
        // Putting back settings the engine already accepted cannot be refused.
        let _ = self.apply_mining(session.restore)?;
        Ok(())
    }

    /// Carries out an operator's mining request.
    pub(super) fn on_mining_request(&mut self, request: MiningRequest) -> Result<(), NodeError> {
        let busy = "a `mine` request is running on this node; wait for it to finish";
        match request {
            MiningRequest::Set {
                enabled,
                threads,
                payout,
                reply,
            } => {
                if self.mining.session.is_some() {
                    let _ = reply.send(Err(busy.into()));
                    return Ok(());
                }
                let current = self.mining.settings;
                let wanted = MiningState {
                    enabled: enabled.unwrap_or(current.enabled),
                    threads: threads.unwrap_or(current.threads),
                    payout: payout.unwrap_or(current.payout),
                };
                let result = self.apply_mining(wanted)?.map(|()| self.mining.settings);
                let _ = reply.send(result);
            }
            MiningRequest::Blocks {
                count,
                payout,
                threads,
                reply,
            } => {
                if self.mining.session.is_some() {
                    let _ = reply.send(Err(busy.into()));
                    return Ok(());
                }
                if count == 0 {
                    let _ = reply.send(Ok(Vec::new()));
                    return Ok(());
                }
                let restore = self.mining.settings;
                let wanted = MiningState {
                    enabled: true,
                    threads: threads.unwrap_or(restore.threads).max(1),
                    payout: payout.unwrap_or(restore.payout),
                };
                if let Err(reason) = self.apply_mining(wanted)? {
                    let _ = reply.send(Err(reason));
                    return Ok(());
                }
                info!(blocks = count, payout = %wanted.payout.short(), threads = wanted.threads, "mining blocks on request");
                self.mining.session = Some(Session {
                    wanted: count,
                    payout: wanted.payout,
                    ids: Vec::new(),
                    reply,
                    restore,
                });
                self.publish_status();
            }
        }
        Ok(())
    }

    /// Makes `settings` current: the engine first (it may refuse), then the threads, then the
    /// engine's actions (a fresh template, or a stop).
    fn apply_mining(&mut self, settings: MiningState) -> Result<Result<(), String>, NodeError> {
        let mut actions = Vec::new();
        if let Err(reason) =
            self.engine
                .set_mining(now_ms(), settings.enabled, settings.payout, &mut actions)
        {
            return Ok(Err(reason));
        }
        self.mining
            .miner
            .set_threads(Mining::threads_for(&settings));
        self.mining.settings = settings;
        for action in actions {
            self.execute(action)?;
        }
        self.flush()?;
        self.publish_status();
        Ok(Ok(()))
    }
}
