//! Commits blocks to a store in a loop, printing `committed <height> <id>` after each commit
//! returns. The crash test kills it with SIGKILL at random moments and checks that every printed
//! block survived.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use synod_chain::block::Seal;
use synod_chain::fixtures::Fixture;
use synod_chain::ledger::BlockTemplate;
use synod_chain::{Finality, Store};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(
        args.next()
            .context("usage: crash-writer DB [TXS_PER_BLOCK]")?,
    );
    let txs_per_block: usize = args.next().map_or(Ok(50), |n| n.parse())?;
    let fx = Fixture::new("crash-test", 16, 1_000_000_000, 1);
    let store = Store::open(&path, &fx.genesis)?;
    let stdout = std::io::stdout();
    loop {
        let reader = store.reader()?;
        let tip = store.tip();
        let parent = reader.header_at(tip.height)?.context("tip header")?;
        let height = tip.height + 1;
        let txs = (0..txs_per_block).map(|i| {
            let from = (height as usize + i) % fx.keys.len();
            let to = (from + 1 + i) % fx.keys.len();
            let nonce = reader.account(&fx.addresses[from]).map(|a| a.nonce);
            (from, to, nonce)
        });
        // One transaction per sender per block keeps every nonce valid.
        let mut seen = std::collections::HashSet::new();
        let mut candidates = Vec::new();
        for (from, to, nonce) in txs {
            if seen.insert(from) {
                candidates.push(fx.transfer(from, to, 1 + height % 7, 1, nonce?));
            }
        }
        let built = fx.ledger.build_block(
            &reader,
            &parent,
            &BlockTemplate {
                proposer: fx.keys[(height % 16) as usize].public(),
                timestamp_ms: parent.timestamp_ms + 1000,
                seal: Seal::default(),
                max_txs: 10_000,
            },
            candidates,
        )?;
        drop(reader);
        anyhow::ensure!(built.rejected.is_empty(), "rejected {:?}", built.rejected);
        // Alternate finality so both the undo-keeping and the final paths are crashed into.
        let finality = if height % 2 == 0 {
            Finality::Final
        } else {
            Finality::Tentative
        };
        store.commit_block(&built.block, &built.changes, b"proof", finality, &[])?;
        // Merge the tx index now and then, so kills also land inside index merges.
        if height % 3 == 0 {
            store.index_transactions(2)?;
        }
        let mut out = stdout.lock();
        writeln!(out, "committed {height} {}", built.block.hash())?;
        out.flush()?;
    }
}
