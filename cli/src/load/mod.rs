//! A signed workload driven into a live testnet: the transactions signed up front, senders that
//! pace them to an offered rate and retry what a node answers "busy" for (or what a node that
//! went down never answered), and a watcher that sees every committed block once and stamps its
//! transactions. `bench` and `compare` both measure with it.
//!
//! Latency is what a client sees: from the moment a transaction's batch was sent to the moment
//! the watcher saw it in a committed block.

pub mod flood;
pub mod send;
pub mod sign;
pub mod stats;
pub mod watch;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use synod_chain::hash::Hash;

pub use send::Failover;
pub use watch::{SeenBlock, Watch};

/// The offered load.
#[derive(Clone, Debug)]
pub struct Offer {
    /// Offered transactions per second (0: as fast as the nodes accept).
    pub rate: usize,
    /// Transactions per RPC call.
    pub batch: usize,
    /// Give up on sending and watching this long after the last transaction is due.
    pub slack: Duration,
}

/// What a driven workload came to, per transaction in workload order.
#[derive(Clone, Debug)]
pub struct Trace {
    /// When the send began.
    pub started: Instant,
    /// When each transaction's batch was sent, for those a node acknowledged.
    pub sent: Vec<Option<Instant>>,
    /// When the watcher first saw each transaction committed.
    pub committed: Vec<Option<Instant>>,
    /// Every block the watcher saw, in height order.
    pub blocks: Vec<SeenBlock>,
    /// Refusals for good, one line each.
    pub rejected: Vec<String>,
    /// "Busy, retry later" answers (each retried).
    pub busy: usize,
}

impl Trace {
    /// Transactions a node acknowledged.
    pub fn admitted(&self) -> usize {
        self.sent.iter().flatten().count()
    }

    /// Acknowledged transactions seen committed.
    pub fn done(&self) -> usize {
        self.sent
            .iter()
            .zip(&self.committed)
            .filter(|(s, c)| s.is_some() && c.is_some())
            .count()
    }

    /// When the first acknowledged transaction was sent (the start, if none was).
    pub fn first_sent(&self) -> Instant {
        self.sent
            .iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(self.started)
    }

    /// When the last transaction was seen committed, if any was.
    pub fn last_commit(&self) -> Option<Instant> {
        self.committed.iter().flatten().max().copied()
    }

    /// The run cut into windows of `width` from the first send: per window, the transactions
    /// seen committed in it and their send-to-commit latencies (sorted). Shows whether
    /// throughput and latency drift as the chain grows.
    pub fn windows(&self, width: Duration) -> Vec<(usize, Vec<Duration>)> {
        let first = self.first_sent();
        let width = width.max(Duration::from_millis(1));
        let mut windows: Vec<(usize, Vec<Duration>)> = Vec::new();
        for (sent, committed) in self.sent.iter().zip(&self.committed) {
            let (Some(sent), Some(committed)) = (sent, committed) else {
                continue;
            };
            let slot = (committed.saturating_duration_since(first).as_secs_f64()
                / width.as_secs_f64()) as usize;
            if windows.len() <= slot {
                windows.resize_with(slot + 1, || (0, Vec::new()));
            }
            windows[slot].0 += 1;
            windows[slot]
                .1
                .push(committed.saturating_duration_since(*sent));
        }
        for (_, latencies) in &mut windows {
            latencies.sort();
        }
        windows
    }

    /// Send-to-commit latencies of the transactions sent in `[from, to)`, sorted.
    pub fn latencies(&self, from: Instant, to: Instant) -> Vec<Duration> {
        let mut out: Vec<Duration> = self
            .sent
            .iter()
            .zip(&self.committed)
            .filter_map(|(s, c)| {
                let (s, c) = (s.as_ref()?, c.as_ref()?);
                (*s >= from && *s < to).then(|| c.saturating_duration_since(*s))
            })
            .collect();
        out.sort();
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Which transactions each sender sends, in order: `lanes[t]` goes to `targets[t]`.
pub type Lanes = Vec<Vec<usize>>;

/// Lanes that give each account's transactions (transaction `i` is account `i % accounts`'s)
/// to one sender, as clients stick to one node: a node that is cut off holds up its own
/// clients, not every account's next nonce.
pub fn lanes_by_account(count: usize, accounts: usize, senders: usize) -> Lanes {
    let senders = senders.max(1);
    let mut lanes = vec![Vec::new(); senders];
    for i in 0..count {
        lanes[(i % accounts.max(1)) % senders].push(i);
    }
    lanes
}

/// A lane cut into calls: each call carries the lane's transactions whose places in the
/// workload fall within `batch` of the call's first, so every sender sends as often as the
/// offered rate spreads its share, however the lanes interleave.
fn slots(lane: &[usize], batch: usize) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let mut start = 0;
    for k in 1..=lane.len() {
        if k == lane.len() || lane[k] >= lane[start] + batch {
            out.push(&lane[start..k]);
            start = k;
        }
    }
    out
}

/// Sends `raw` (hex transactions with ids `ids`), lane `t` by a sender to `targets[t]`, each
/// transaction no earlier than its place in the workload at `offer`'s rate, while `watch` stamps
/// commits; returns when every acknowledged transaction was seen committed or the deadline
/// passes. `progress` is called about twice a second with (seen, height).
pub fn drive(
    raw: &[String],
    ids: &[Hash],
    targets: &[String],
    lanes: &Lanes,
    offer: &Offer,
    watch: &Watch,
    progress: &(dyn Fn(usize, u64) + Sync),
) -> Trace {
    let index: HashMap<Hash, usize> = ids.iter().enumerate().map(|(i, h)| (*h, i)).collect();
    let sent = Mutex::new(vec![None; raw.len()]);
    let rejected = Mutex::new(Vec::new());
    let busy = AtomicUsize::new(0);
    let senders_done = AtomicUsize::new(0);
    let started = Instant::now();
    let batch = offer.batch.max(1);
    let due = if offer.rate == 0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(raw.len() as f64 / offer.rate as f64)
    };
    let deadline = started + due + offer.slack;
    let (committed, blocks) = std::thread::scope(|scope| {
        for (t, lane) in lanes.iter().enumerate() {
            let (sent, rejected, busy, senders_done) = (&sent, &rejected, &busy, &senders_done);
            scope.spawn(move || {
                let mut failover = Failover::new(targets.to_vec(), t);
                // Paced, a call carries what falls due together; as fast as accepted, a full
                // batch of the lane.
                let calls: Vec<&[usize]> = if offer.rate == 0 {
                    lane.chunks(batch).collect()
                } else {
                    slots(lane, batch)
                };
                for chunk in calls {
                    if offer.rate > 0 {
                        let first = chunk.first().copied().unwrap_or(0);
                        let at =
                            started + Duration::from_secs_f64(first as f64 / offer.rate as f64);
                        if let Some(wait) = at.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let chunk: Vec<(usize, String)> =
                        chunk.iter().map(|i| (*i, raw[*i].clone())).collect();
                    let retried = send::send_until_settled(
                        &mut failover,
                        chunk,
                        &mut |i, at| lock(sent)[i] = Some(at),
                        &mut |e| lock(rejected).push(e),
                        deadline,
                    );
                    busy.fetch_add(retried, Ordering::Relaxed);
                }
                senders_done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let finished = || senders_done.load(Ordering::SeqCst) == lanes.len();
        let admitted = || lock(&sent).iter().filter(|x| x.is_some()).count();
        watch.run(&index, deadline, &finished, &admitted, progress)
    });
    Trace {
        started,
        sent: sent.into_inner().unwrap_or_else(|e| e.into_inner()),
        committed,
        blocks,
        rejected: rejected.into_inner().unwrap_or_else(|e| e.into_inner()),
        busy: busy.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_commits_by_commit_time() {
        let t0 = Instant::now();
        let at = |ms| Some(t0 + Duration::from_millis(ms));
        let trace = Trace {
            started: t0,
            sent: vec![at(0), at(0), at(5_000), None, at(12_000)],
            committed: vec![at(100), at(9_900), at(10_500), at(11_000), at(25_000)],
            blocks: Vec::new(),
            rejected: Vec::new(),
            busy: 0,
        };
        let windows = trace.windows(Duration::from_secs(10));
        let counts: Vec<usize> = windows.iter().map(|w| w.0).collect();
        // The unacknowledged one is left out; the window with no commits is there, empty.
        assert_eq!(counts, vec![2, 1, 1]);
        assert_eq!(
            windows[0].1,
            vec![Duration::from_millis(100), Duration::from_millis(9_900)]
        );
        assert_eq!(windows[2].1, vec![Duration::from_millis(13_000)]);
    }

    #[test]
    fn lanes_and_their_calls() {
        let by_account = lanes_by_account(8, 4, 2);
        assert_eq!(by_account, vec![vec![0, 2, 4, 6], vec![1, 3, 5, 7]]);
        assert_eq!(slots(&by_account[1], 4), vec![&[1, 3][..], &[5, 7]]);
        assert_eq!(
            slots(&[0, 1, 4, 5, 8, 9], 2),
            vec![&[0, 1][..], &[4, 5], &[8, 9]]
        );
        assert!(slots(&[], 4).is_empty());
    }
}
