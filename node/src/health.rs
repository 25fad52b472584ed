//! The node's health: problems reported by its parts while it runs, and the checks `/health`
//! makes (is the driver turning, are there peers). A node never runs half-alive: when a task dies
//! the node exits with the reason; until then `/health` says what is wrong.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::context::NodeContext;

/// How long the driver may go without finishing a loop turn before `/health` calls it stalled.
const DRIVER_STALL_MS: u64 = 5_000;

/// Problems reported by the node's parts, by part.
#[derive(Debug, Default)]
pub struct Health {
    problems: Mutex<BTreeMap<&'static str, String>>,
}

/// What `/health` answers.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HealthReport {
    /// `ok`, or `unhealthy` when any problem is listed.
    pub status: &'static str,
    /// Each problem, naming the part.
    pub problems: Vec<String>,
    /// Things worth knowing that do not make the node unhealthy.
    pub warnings: Vec<String>,
}

impl Health {
    /// Records a problem of `part` (replacing its previous one).
    pub fn report(&self, part: &'static str, problem: impl Into<String>) {
        self.lock().insert(part, problem.into());
    }

    /// Clears `part`'s problem.
    pub fn clear(&self, part: &'static str) {
        self.lock().remove(part);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, String>> {
        self.problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The node's health now.
    pub fn check(&self, ctx: &NodeContext) -> HealthReport {
        let mut problems: Vec<String> = self
            .lock()
            .iter()
            .map(|(part, problem)| format!("{part}: {problem}"))
            .collect();
        if ctx.inbox.is_some() {
            let last = ctx.driver_heartbeat.load(Ordering::Relaxed);
            let now = crate::clock::now_ms();
            if last == 0 {
                problems.push("driver: has not started".into());
            } else if now.saturating_sub(last) > DRIVER_STALL_MS {
                problems.push(format!(
                    "driver: stalled, last turn {} ms ago",
                    now.saturating_sub(last)
                ));
            }
        }
        let mut warnings = Vec::new();
        if ctx.status().peers == 0 {
            warnings.push("network: no peers connected".to_string());
        }
        HealthReport {
            status: if problems.is_empty() {
                "ok"
            } else {
                "unhealthy"
            },
            problems,
            warnings,
        }
    }
}
