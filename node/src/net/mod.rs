//! The network task: owns the libp2p swarm, sends consensus envelopes and sync requests, gossips
//! transaction batches, re-dials known peers, and hands everything inbound to an [`Inbound`].
//!
//! Everything a stranger can make it do is bounded: connections (total, per peer, pending),
//! sync requests and gossip messages per peer and second ([`rate`]), the commands queued for it,
//! and the blocking work it starts. Gossip is relayed only after the node checked it. A peer that
//! sends bad data can be banned for a while. Injected [`Faults`] act here, on every message in
//! and out.

pub mod behaviour;
pub mod codec;
pub mod rate;
pub mod sender;

/// The peer ids commands name (re-exported so tools need not depend on libp2p for them).
pub use libp2p::PeerId;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm, identity};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::error::NodeError;
use crate::faults::{Channel, DelayLine, Faults, Verdict};
use behaviour::{SynodBehaviourEvent, build_swarm};

/// Receives what peers send. Called from the network task; must not block (except
/// [`Inbound::sync_request`], which runs on a blocking thread).
pub trait Inbound: Send + Sync + 'static {
    /// A consensus envelope from `from`.
    fn consensus(&self, from: PeerId, bytes: Vec<u8>);
    /// A gossiped transaction batch, first relayed to us by `from`. The inbound must answer with
    /// [`NetCommand::GossipVerdict`] for `id` (gossipsub relays nothing before).
    fn gossip_txs(&self, from: PeerId, id: gossipsub::MessageId, bytes: Vec<u8>);
    /// A sync request; returns the response bytes.
    fn sync_request(&self, from: PeerId, bytes: &[u8]) -> Vec<u8>;
    /// The set of connected peers changed.
    fn peers_changed(&self, connected: &[PeerId]);
    /// An outbound consensus message could not be delivered.
    fn send_failed(&self, to: PeerId);
    /// The network dropped something inbound, for `reason` (counted in the metrics).
    fn dropped(&self, reason: &'static str);
}

/// Requests to the network task.
pub enum NetCommand {
    /// Send a consensus envelope.
    Consensus {
        /// The recipient.
        to: PeerId,
        /// The envelope.
        bytes: Vec<u8>,
    },
    /// Gossip a transaction batch.
    GossipTxs(Vec<u8>),
    /// Whether a gossiped message checked out: `Accept` relays it, `Reject` also scores its
    /// source down, `Ignore` just drops it.
    GossipVerdict {
        /// The message.
        id: gossipsub::MessageId,
        /// The peer it came from.
        source: PeerId,
        /// The verdict.
        verdict: gossipsub::MessageAcceptance,
    },
    /// Disconnect `peer` and refuse it for `duration` (it served bad data or flooded us).
    Ban {
        /// The peer.
        peer: PeerId,
        /// For how long.
        duration: Duration,
    },
    /// Ask `to` for blocks.
    Sync {
        /// The peer asked.
        to: PeerId,
        /// The request.
        bytes: Vec<u8>,
        /// Where the response (or `None` on failure) goes.
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
}

/// Where the network listens and whom it knows.
pub struct NetSetup {
    /// The node's identity (its validator key).
    pub keypair: identity::Keypair,
    /// Listen address.
    pub listen: SocketAddr,
    /// Addresses to dial at start and whenever they are disconnected.
    pub dial: Vec<Multiaddr>,
    /// Known addresses of validators, by peer id (used to reach them for consensus messages).
    pub known: HashMap<PeerId, Multiaddr>,
    /// The gossip topic for transactions (per chain).
    pub tx_topic: String,
    /// Injected faults to apply to every message.
    pub faults: Arc<Faults>,
    /// An open (permissionless) network: any peer may send consensus messages, so each peer's
    /// messages and bytes per second are bounded here, before anything decodes them.
    pub open: bool,
}

/// Commands queued for the network task before senders see it full.
const COMMAND_QUEUE: usize = 65_536;
/// Sync requests served at once (each reads the store on a blocking thread).
const MAX_SYNC_SERVING: usize = 4;
/// Sync requests a peer may make per second (and in a burst).
const SYNC_RATE: (f64, f64) = (20.0, 40.0);
/// Gossip messages a peer may relay to us per second (and in a burst).
const GOSSIP_RATE: (f64, f64) = (200.0, 400.0);
/// Consensus messages a peer of an open network may send per second (and in a burst): a
/// proof-of-work node sends a few per block and per relayed transaction batch.
const OPEN_CONSENSUS_RATE: (f64, f64) = (500.0, 1_000.0);
/// Consensus bytes a peer of an open network may send per second (and in a burst, which holds
/// the largest message).
const OPEN_CONSENSUS_BYTES: (f64, f64) = (
    32.0 * 1_048_576.0,
    2.0 * behaviour::MAX_CONSENSUS_BYTES as f64,
);

/// A cloneable handle for sending commands to the network task.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<NetCommand>,
}

impl NetworkHandle {
    /// Queues a command; false if the network task is that far behind (the command is dropped:
    /// consensus protocols resend, gossip is best effort) or has stopped.
    pub fn send(&self, command: NetCommand) -> bool {
        self.commands.try_send(command).is_ok()
    }
}

/// `host:port` to a TCP multiaddr, resolving names.
pub fn to_multiaddr(text: &str) -> Result<Multiaddr, String> {
    let addr = text
        .to_socket_addrs()
        .map_err(|e| format!("{text}: {e}"))?
        .next()
        .ok_or_else(|| format!("{text} resolves to nothing"))?;
    Ok(socket_multiaddr(addr))
}

/// A socket address as a TCP multiaddr.
pub fn socket_multiaddr(addr: SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) => Protocol::Ip4(ip),
        std::net::IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(addr.port()))
}

/// The peer id of an ed25519 public key (validator key = libp2p identity).
pub fn peer_id_of(key: &synod_chain::PublicKey) -> Option<PeerId> {
    identity::ed25519::PublicKey::try_from_bytes(&key.0)
        .ok()
        .map(|k| identity::PublicKey::from(k).to_peer_id())
}

/// The public key a peer id names: an ed25519 key's peer id embeds the key itself (an identity
/// multihash of its protobuf encoding), so no lookup is needed. `None` for other key types.
pub fn node_id_of(peer: &PeerId) -> Option<synod_chain::PublicKey> {
    let multihash = peer.as_ref();
    // 0x00 is the identity hash: the digest is the encoded public key.
    if multihash.code() != 0x00 {
        return None;
    }
    let key = identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed25519 = key.try_into_ed25519().ok()?;
    Some(synod_chain::PublicKey(ed25519.to_bytes()))
}

/// Gossip batches kept while no peer is subscribed yet.
const MAX_QUEUED_GOSSIP: usize = 256;

/// Starts listening and returns the handle and the task to spawn.
pub fn start(
    setup: NetSetup,
    inbound: Arc<dyn Inbound>,
) -> Result<(NetworkHandle, impl std::future::Future<Output = ()>), NodeError> {
    let topic = IdentTopic::new(setup.tx_topic.clone());
    let mut swarm = build_swarm(setup.keypair, &topic.hash())?;
    // Catch a taken port before libp2p reports it asynchronously.
    drop(crate::listen::bind("p2p", setup.listen)?);
    swarm
        .listen_on(socket_multiaddr(setup.listen))
        .map_err(|e| NodeError::Listen {
            what: "p2p",
            addr: setup.listen.to_string(),
            reason: e.to_string(),
        })?;
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .map_err(|e| NodeError::Network(e.to_string()))?;
    for (peer, addr) in &setup.known {
        swarm.add_peer_address(*peer, addr.clone());
    }
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let task = NetworkTask {
        swarm,
        topic,
        dial: setup.dial,
        known: setup.known,
        inbound,
        connected: HashSet::new(),
        sync_pending: HashMap::new(),
        queued_gossip: VecDeque::new(),
        sync_rate: rate::PerPeer::new(SYNC_RATE.0, SYNC_RATE.1),
        gossip_rate: rate::PerPeer::new(GOSSIP_RATE.0, GOSSIP_RATE.1),
        consensus_rate: setup.open.then(|| ConsensusLimits {
            messages: rate::PerPeer::new(OPEN_CONSENSUS_RATE.0, OPEN_CONSENSUS_RATE.1),
            bytes: rate::PerPeer::new(OPEN_CONSENSUS_BYTES.0, OPEN_CONSENSUS_BYTES.1),
        }),
        dialed: HashMap::new(),
        sync_serving: Arc::new(tokio::sync::Semaphore::new(MAX_SYNC_SERVING)),
        bans: BTreeMap::new(),
        faults: setup.faults,
        delayed: DelayLine::default(),
    };
    Ok((NetworkHandle { commands: tx }, task.run(rx)))
}

struct NetworkTask {
    swarm: Swarm<behaviour::SynodBehaviour>,
    topic: IdentTopic,
    dial: Vec<Multiaddr>,
    known: HashMap<PeerId, Multiaddr>,
    inbound: Arc<dyn Inbound>,
    connected: HashSet<PeerId>,
    sync_pending: HashMap<OutboundRequestId, oneshot::Sender<Option<Vec<u8>>>>,
    queued_gossip: VecDeque<Vec<u8>>,
    sync_rate: rate::PerPeer,
    gossip_rate: rate::PerPeer,
    /// Per-peer limits on consensus messages (open networks only).
    consensus_rate: Option<ConsensusLimits>,
    /// The peer found at each configured address, once a connection told us.
    dialed: HashMap<Multiaddr, PeerId>,
    sync_serving: Arc<tokio::sync::Semaphore>,
    /// Banned peers, by when their ban ends.
    bans: BTreeMap<Instant, Vec<PeerId>>,
    faults: Arc<Faults>,
    /// Consensus messages an injected delay holds back.
    delayed: DelayLine,
}

type SyncAnswer = (request_response::ResponseChannel<Vec<u8>>, Vec<u8>);

/// Message and byte rates of one kind of traffic, per peer.
struct ConsensusLimits {
    messages: rate::PerPeer,
    bytes: rate::PerPeer,
}

impl ConsensusLimits {
    fn allow(&mut self, peer: PeerId, len: usize) -> bool {
        self.messages.allow(peer) && self.bytes.allow_cost(peer, len as f64)
    }

    fn forget_idle(&mut self) {
        self.messages.forget_idle();
        self.bytes.forget_idle();
    }
}

impl NetworkTask {
    async fn run(mut self, mut commands: mpsc::Receiver<NetCommand>) {
        let (answers_tx, mut answers) = mpsc::channel::<SyncAnswer>(MAX_SYNC_SERVING * 4);
        let mut redial = tokio::time::interval(Duration::from_secs(2));
        loop {
            let next_delayed = self.delayed.next_due();
            tokio::select! {
                _ = tokio::time::sleep_until(next_delayed.unwrap_or_else(Instant::now).into()),
                    if next_delayed.is_some() => self.release_delayed(),
                event = self.swarm.select_next_some() => self.on_event(event, &answers_tx),
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                Some((channel, bytes)) = answers.recv() => {
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, bytes);
                }
                _ = redial.tick() => {
                    self.lift_bans();
                    self.redial();
                    self.flush_gossip();
                    self.sync_rate.forget_idle();
                    self.gossip_rate.forget_idle();
                    if let Some(limits) = &mut self.consensus_rate {
                        limits.forget_idle();
                    }
                }
            }
        }
    }

    /// Dials every configured address whose peer is not connected. The peer behind an address
    /// is known from the genesis (validators), or learned from our own first connection to it
    /// (never from what a peer claims: a stranger claiming our peers' addresses would otherwise
    /// keep us from dialing them); an address whose peer is not known yet is dialed until one is.
    fn redial(&mut self) {
        for addr in self.dial.clone() {
            let peer = self
                .known
                .iter()
                .find(|(_, a)| **a == addr)
                .map(|(p, _)| *p)
                .or_else(|| self.dialed.get(&addr).copied());
            let result = match peer {
                Some(p) if !self.connected.contains(&p) => self.swarm.dial(
                    libp2p::swarm::dial_opts::DialOpts::peer_id(p)
                        .addresses(vec![addr.clone()])
                        .build(),
                ),
                None => self.swarm.dial(addr.clone()),
                _ => continue,
            };
            if let Err(e) = result {
                debug!(%addr, error = %e, "dial failed");
            }
        }
    }

    fn lift_bans(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.bans.first_entry() {
            if *entry.key() > now {
                break;
            }
            for peer in entry.remove() {
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
                info!(%peer, "ban lifted");
            }
        }
    }

    fn on_command(&mut self, command: NetCommand) {
        match command {
            NetCommand::GossipVerdict {
                id,
                source,
                verdict,
            } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, verdict);
            }
            NetCommand::Ban { peer, duration } => {
                warn!(%peer, seconds = duration.as_secs(), "banning a peer");
                self.swarm.behaviour_mut().blocked.block_peer(peer);
                self.bans
                    .entry(Instant::now() + duration)
                    .or_default()
                    .push(peer);
            }
            NetCommand::Consensus { to, bytes } => match self.faults.outbound_consensus(&to) {
                Verdict::Send => self.send_consensus(to, bytes),
                Verdict::Delay(after) => {
                    if !self.delayed.hold(Instant::now() + after, to, bytes) {
                        self.inbound.dropped("delay_overflow");
                    }
                }
                Verdict::Drop => {}
            },
            NetCommand::GossipTxs(bytes) => {
                self.queued_gossip.push_back(bytes);
                while self.queued_gossip.len() > MAX_QUEUED_GOSSIP {
                    self.queued_gossip.pop_front();
                }
                self.flush_gossip();
            }
            NetCommand::Sync { reply, to, .. } if self.faults.cuts(&to, Channel::SyncOut) => {
                let _ = reply.send(None);
            }
            NetCommand::Sync { to, bytes, reply } => {
                let addresses = self.known.get(&to).cloned().into_iter().collect();
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request_with_addresses(&to, bytes, addresses);
                self.sync_pending.insert(id, reply);
            }
        }
    }

    fn send_consensus(&mut self, to: PeerId, bytes: Vec<u8>) {
        let addresses = self.known.get(&to).cloned().into_iter().collect();
        self.swarm
            .behaviour_mut()
            .consensus
            .send_request_with_addresses(&to, bytes, addresses);
    }

    /// Sends the delayed messages that are due, unless a partition cut their peer off since.
    fn release_delayed(&mut self) {
        for (to, bytes) in self.delayed.take_due(Instant::now()) {
            if !self.faults.cuts(&to, Channel::ConsensusOut) {
                self.send_consensus(to, bytes);
            }
        }
    }

    /// Publishes queued gossip; keeps it if no peer has subscribed yet.
    fn flush_gossip(&mut self) {
        while let Some(bytes) = self.queued_gossip.front() {
            match self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(self.topic.clone(), bytes.clone())
            {
                Ok(_) | Err(gossipsub::PublishError::Duplicate) => {
                    self.queued_gossip.pop_front();
                }
                Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => break,
                Err(e) => {
                    warn!(error = %e, "dropping a gossip batch");
                    self.queued_gossip.pop_front();
                }
            }
        }
    }

    fn on_event(
        &mut self,
        event: SwarmEvent<SynodBehaviourEvent>,
        answers: &mpsc::Sender<SyncAnswer>,
    ) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                if let libp2p::core::ConnectedPoint::Dialer { address, .. } = &endpoint {
                    self.learn_address(address, peer_id);
                }
                if self.connected.insert(peer_id) {
                    debug!(peer = %peer_id, "connected");
                    if !self.admit_peer(peer_id) {
                        return;
                    }
                    self.peers_changed();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if self.connected.remove(&peer_id) => {
                debug!(peer = %peer_id, "disconnected");
                self.peers_changed();
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::Behaviour(SynodBehaviourEvent::Gossipsub(event)) => match event {
                gossipsub::Event::Message {
                    propagation_source,
                    message_id,
                    message,
                } => {
                    let cut = self.faults.cuts(&propagation_source, Channel::GossipIn);
                    if !cut && self.gossip_rate.allow(propagation_source) {
                        self.inbound
                            .gossip_txs(propagation_source, message_id, message.data);
                    } else {
                        if !cut {
                            self.inbound.dropped("gossip_rate");
                        }
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .report_message_validation_result(
                                &message_id,
                                &propagation_source,
                                gossipsub::MessageAcceptance::Ignore,
                            );
                    }
                }
                gossipsub::Event::Subscribed { .. } => self.flush_gossip(),
                gossipsub::Event::SlowPeer {
                    peer_id,
                    failed_messages,
                } => debug!(peer = %peer_id, ?failed_messages, "gossip to a slow peer was dropped"),
                _ => {}
            },
            SwarmEvent::Behaviour(SynodBehaviourEvent::Consensus(event)) => match event {
                request_response::Event::Message {
                    peer,
                    message:
                        request_response::Message::Request {
                            request, channel, ..
                        },
                    ..
                } => {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .consensus
                        .send_response(channel, Vec::new());
                    if let Some(limits) = &mut self.consensus_rate
                        && !limits.allow(peer, request.len())
                    {
                        self.inbound.dropped("consensus_rate");
                        return;
                    }
                    if !self.faults.cuts(&peer, Channel::ConsensusIn) {
                        self.inbound.consensus(peer, request);
                    }
                }
                request_response::Event::OutboundFailure { peer, error, .. } => {
                    debug!(%peer, %error, "consensus message not delivered");
                    self.inbound.send_failed(peer);
                }
                _ => {}
            },
            SwarmEvent::Behaviour(SynodBehaviourEvent::Sync(event)) => match event {
                request_response::Event::Message {
                    peer,
                    message:
                        request_response::Message::Request {
                            request, channel, ..
                        },
                    ..
                } => {
                    // Cut off, over its rate, or with every server busy: an empty answer, at
                    // once (counted as a fault's drop, or as busy).
                    let cut = self.faults.cuts(&peer, Channel::SyncIn);
                    let permit = (!cut && self.sync_rate.allow(peer))
                        .then(|| self.sync_serving.clone().try_acquire_owned().ok())
                        .flatten();
                    let Some(permit) = permit else {
                        if !cut {
                            self.inbound.dropped("sync_busy");
                        }
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_response(channel, Vec::new());
                        return;
                    };
                    let inbound = self.inbound.clone();
                    let answers = answers.clone();
                    tokio::task::spawn_blocking(move || {
                        let response = inbound.sync_request(peer, &request);
                        let _ = answers.blocking_send((channel, response));
                        drop(permit);
                    });
                }
                request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                } => {
                    if let Some(reply) = self.sync_pending.remove(&request_id) {
                        let _ = reply.send(Some(response));
                    }
                }
                request_response::Event::OutboundFailure { request_id, .. } => {
                    if let Some(reply) = self.sync_pending.remove(&request_id) {
                        let _ = reply.send(None);
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Remembers that `address`, if it is one we dial, reaches `peer`.
    fn learn_address(&mut self, address: &Multiaddr, peer: PeerId) {
        // A dialed address may come back with the peer id appended.
        let bare: Multiaddr = address
            .iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .collect();
        if self.dial.contains(&bare) {
            self.dialed.insert(bare, peer);
        }
    }

    /// Whether `peer` is a genesis validator or answered at an address we dial ourselves.
    fn is_trusted(&self, peer: &PeerId) -> bool {
        self.known.contains_key(peer) || self.dialed.values().any(|p| p == peer)
    }

    /// Keeps a new peer unless it is a stranger beyond [`behaviour::MAX_STRANGERS`]: validators
    /// and the peers behind our own configured addresses always get through, so strangers
    /// holding connections cannot cut them apart.
    fn admit_peer(&mut self, peer: PeerId) -> bool {
        if self.is_trusted(&peer) {
            return true;
        }
        let strangers = self
            .connected
            .iter()
            .filter(|p| !self.is_trusted(p))
            .count();
        if strangers <= behaviour::MAX_STRANGERS {
            return true;
        }
        self.inbound.dropped("too_many_peers");
        self.connected.remove(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
        false
    }

    fn peers_changed(&self) {
        let peers: Vec<PeerId> = self.connected.iter().copied().collect();
        self.inbound.peers_changed(&peers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_id_names_its_key() {
        let key = synod_chain::SecretKey::from_seed([5; 32]).public();
        let peer = peer_id_of(&key).expect("an ed25519 key has a peer id");
        assert_eq!(node_id_of(&peer), Some(key));
        assert_eq!(node_id_of(&PeerId::random()), None);
    }
}
