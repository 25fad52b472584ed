//! The libp2p swarm: TCP + noise + yamux, identify, gossipsub for transactions, and two
//! request-response protocols (consensus messages, block sync). Kept in one module that rarely
//! changes: instantiating libp2p's generics is the slow part of a rebuild.

// The NetworkBehaviour derive generates an event enum (and variants) we cannot document.
#![allow(missing_docs)]

use std::time::Duration;

use libp2p::{
    StreamProtocol, Swarm, allow_block_list, connection_limits, gossipsub, identify, identity,
    noise, request_response, tcp, yamux,
};
use synod_chain::hash::sha256;

use super::codec::BoundedBytes;
use crate::error::NodeError;

/// Consensus messages, each a signed envelope (one request per message, empty response). The
/// version changes with any engine message's encoding, so nodes that could not decode each
/// other's messages do not open a stream at all (rather than drop every message as malformed).
pub const CONSENSUS_PROTOCOL: &str = "/synod/consensus/2";
/// Block ranges for observers and lagging nodes.
pub const SYNC_PROTOCOL: &str = "/synod/sync/1";
/// Largest consensus envelope accepted (a full block plus framing).
pub const MAX_CONSENSUS_BYTES: u64 = 16 << 20;
/// Largest sync request / response.
pub const MAX_SYNC_REQUEST_BYTES: u64 = 1024;
/// Largest sync response.
pub const MAX_SYNC_RESPONSE_BYTES: u64 = 32 << 20;
/// Largest gossip message (a batch of transactions).
pub const MAX_GOSSIP_BYTES: usize = 1 << 20;

/// Peers outside the validator set connected at once (validators are never turned away: the
/// network task counts and disconnects strangers beyond this; see `NetworkTask::admit_peer`).
pub const MAX_STRANGERS: usize = 96;
/// Established connections to one peer.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// Connections being set up, each way.
pub const MAX_PENDING_CONNECTIONS: u32 = 64;

/// Everything the swarm speaks.
#[derive(libp2p::swarm::NetworkBehaviour)]
pub struct SynodBehaviour {
    /// Caps on connections (per peer, pending), so a flood of dials cannot exhaust us.
    pub limits: connection_limits::Behaviour,
    /// Peers banned for serving bad data or flooding.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Peer identification (protocol version, listen addresses).
    pub identify: identify::Behaviour,
    /// Transaction gossip.
    pub gossipsub: gossipsub::Behaviour,
    /// Direct consensus messages.
    pub consensus: request_response::Behaviour<BoundedBytes>,
    /// Block sync.
    pub sync: request_response::Behaviour<BoundedBytes>,
}

/// Gossip peer scoring for the transaction topic: invalid batches cost a peer dearly (it stops
/// being gossiped to and from well before it can cause harm); nothing penalizes a peer for a quiet
/// topic, which a lightly loaded testnet is.
fn score_params(tx_topic: &gossipsub::TopicHash) -> gossipsub::PeerScoreParams {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        first_message_deliveries_weight: 1.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: 0.5,
        ..gossipsub::TopicScoreParams::default()
    };
    let mut params = gossipsub::PeerScoreParams::default();
    params.topics.insert(tx_topic.clone(), topic);
    params
}

/// Builds the swarm for `keypair` (the validator key), scoring gossip on `tx_topic`.
pub fn build_swarm(
    keypair: identity::Keypair,
    tx_topic: &gossipsub::TopicHash,
) -> Result<Swarm<SynodBehaviour>, NodeError> {
    let network = |e: &dyn std::fmt::Display| NodeError::Network(e.to_string());
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| network(&e))?
        .with_behaviour(|key| {
            let gossip_config = gossipsub::ConfigBuilder::default()
                .heartbeat_interval(Duration::from_millis(500))
                .validation_mode(gossipsub::ValidationMode::Strict)
                // Nothing is relayed before the node has checked it (see NetCommand::GossipVerdict).
                .validate_messages()
                .max_transmit_size(MAX_GOSSIP_BYTES)
                // The same batch relayed by two peers is one message.
                .message_id_fn(|m: &gossipsub::Message| {
                    gossipsub::MessageId::from(sha256(&m.data).0.to_vec())
                })
                .build()
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let mut gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config,
            )
            .map_err(|e| Box::<dyn std::error::Error + Send + Sync>::from(e.to_string()))?;
            gossipsub
                .with_peer_score(
                    score_params(tx_topic),
                    gossipsub::PeerScoreThresholds::default(),
                )
                .map_err(|e| Box::<dyn std::error::Error + Send + Sync>::from(e.to_string()))?;
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                .with_max_pending_incoming(Some(MAX_PENDING_CONNECTIONS))
                .with_max_pending_outgoing(Some(MAX_PENDING_CONNECTIONS));
            let rr_config = request_response::Config::default()
                .with_request_timeout(Duration::from_secs(10))
                .with_max_concurrent_streams(4096);
            Ok(SynodBehaviour {
                limits: connection_limits::Behaviour::new(limits),
                blocked: allow_block_list::Behaviour::default(),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/synod/1.0.0".into(),
                    key.public(),
                )),
                gossipsub,
                consensus: request_response::Behaviour::with_codec(
                    BoundedBytes {
                        max_request: MAX_CONSENSUS_BYTES,
                        max_response: 16,
                    },
                    [(
                        StreamProtocol::new(CONSENSUS_PROTOCOL),
                        request_response::ProtocolSupport::Full,
                    )],
                    rr_config.clone(),
                ),
                sync: request_response::Behaviour::with_codec(
                    BoundedBytes {
                        max_request: MAX_SYNC_REQUEST_BYTES,
                        max_response: MAX_SYNC_RESPONSE_BYTES,
                    },
                    [(
                        StreamProtocol::new(SYNC_PROTOCOL),
                        request_response::ProtocolSupport::Full,
                    )],
                    rr_config,
                ),
            })
        })
        .map_err(|e| network(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}
