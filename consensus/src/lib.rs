//! synod's consensus: the [`engine::Engine`] contract every engine implements as a pure state
//! machine, the engines themselves, and [`sim`], the deterministic simulator that drives them
//! under faults.
//!
//! Nothing in this crate performs I/O, reads a clock, spawns threads or draws OS randomness.

pub mod engine;
pub mod execution;
pub mod finality;
pub mod pbft;
pub mod pool;
pub mod pow;
pub mod pressure;
pub mod raft;
pub mod rng;
pub mod sim;

pub use engine::{
    Action, ChainSnapshot, ChainState, Command, CommittedBlock, Engine, EngineEvent, EngineStatus,
    Input, Message, Millis, NodeId, Restored, Role, SyncedBlock, TimerId,
};
