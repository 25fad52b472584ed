//! `synod testnet status`: a table of every node (pid, role, round, height, peers, mempool,
//! committed tx/s over one second, and the faults injected into it).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use synod_genesis::TestnetManifest;
use synod_genesis::testnet::EngineKind;

use super::load;
use crate::cluster::status_of;
use crate::procs;
use crate::table::Table;

/// One line for a node's `faults` status object: what is cut and how links are slowed, and what
/// the faults dropped.
pub fn describe_faults(faults: &Value) -> String {
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect()
    };
    let mut parts = Vec::new();
    if let Some(behaviour) = faults["byzantine"].as_str() {
        parts.push(format!("byzantine {behaviour}"));
    }
    let cut = names(&faults["partition"]);
    if !cut.is_empty() {
        parts.push(format!("cut off {}", cut.join(",")));
    }
    let delay = &faults["delay"];
    if delay.is_object() {
        let toward = names(&delay["toward"]);
        parts.push(format!(
            "delay {}±{} ms, {}% loss{}",
            delay["ms"],
            delay["jitter_ms"],
            delay["loss_pct"],
            if toward.is_empty() {
                String::new()
            } else {
                format!(" to {}", toward.join(","))
            }
        ));
    }
    let dropped: u64 = faults["dropped"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    if parts.is_empty() {
        if dropped > 0 {
            format!("none ({dropped} dropped before)")
        } else {
            "none".into()
        }
    } else {
        format!("{} ({dropped} dropped)", parts.join("; "))
    }
}

/// The status table, sampling committed transactions over one second for tx/s.
pub fn status_table(dir: &Path, manifest: &TestnetManifest) -> String {
    let first: Vec<Option<Value>> = manifest
        .nodes
        .iter()
        .map(|n| status_of(&n.rpc, Duration::from_secs(2)))
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    // Proof of work has no rounds; its nodes show their miners' hash rates instead.
    let pow = manifest.engine == EngineKind::Pow;
    let mut table = Table::new([
        "node",
        "pid",
        "role",
        if pow { "hash rate" } else { "round" },
        "height",
        "peers",
        "mempool",
        "tx/s",
        "rpc",
        "faults",
    ]);
    for (node, before) in manifest.nodes.iter().zip(first) {
        let pid = procs::running_pid(&dir.join(&node.home));
        let now = status_of(&node.rpc, Duration::from_secs(2));
        let field = |s: &Option<Value>, k: &str| {
            s.as_ref().map_or("-".to_string(), |s| match &s[k] {
                Value::String(v) => v.clone(),
                Value::Null => "-".into(),
                v => v.to_string(),
            })
        };
        let rate = match (&before, &now) {
            (Some(a), Some(b)) => {
                let delta = b["committed_txs"]
                    .as_u64()
                    .unwrap_or(0)
                    .saturating_sub(a["committed_txs"].as_u64().unwrap_or(0));
                format!("{:.0}", delta as f64 / t0.elapsed().as_secs_f64())
            }
            _ => "-".into(),
        };
        table.row([
            node.name.clone(),
            pid.map_or("down".into(), |p| p.to_string()),
            field(&now, "role"),
            if pow {
                now.as_ref()
                    .and_then(|s| s["hash_rate"].as_f64())
                    .map_or("-".into(), crate::commands::mine::format_hash_rate)
            } else {
                field(&now, "round")
            },
            field(&now, "height"),
            field(&now, "peers"),
            field(&now, "mempool"),
            rate,
            node.rpc.clone(),
            now.as_ref()
                .map_or("-".into(), |s| describe_faults(&s["faults"])),
        ]);
    }
    table.render()
}

/// `synod testnet status [--watch]`.
pub fn status(dir: &Path, watch: bool) -> anyhow::Result<()> {
    let manifest = load(dir)?;
    if !watch {
        println!("{}", status_table(dir, &manifest));
        return Ok(());
    }
    loop {
        let table = status_table(dir, &manifest);
        // Clear the screen and redraw from the top.
        print!(
            "\x1b[2J\x1b[H{} ({}): refreshing every second, Ctrl-C to stop\n\n{table}\n",
            manifest.chain_id,
            dir.display()
        );
        std::io::stdout().flush()?;
    }
}
