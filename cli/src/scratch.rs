//! A testnet created for one measurement (`bench`, `compare`): written to a folder, started, and
//! stopped (and removed unless kept) when the measurement is done, however it ends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::cluster::Cluster;
use crate::commands::testnet::{InitArgs, up_quiet};
use crate::procs;

/// How long a new testnet may take to connect and commit its first block.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running testnet, stopped when dropped if this process created it.
pub struct Scratch {
    /// Its nodes.
    pub cluster: Cluster,
    owned: bool,
    keep: bool,
}

impl Scratch {
    /// Writes the testnet `init` describes (replacing its folder) and starts every node.
    pub fn create(init: &InitArgs, keep: bool) -> anyhow::Result<Scratch> {
        let manifest = synod_genesis::testnet::init(&init.options()?)
            .with_context(|| format!("creating a testnet in {}", init.dir.display()))?;
        let scratch = Scratch {
            cluster: Cluster::new(&init.dir, manifest),
            owned: true,
            keep,
        };
        up_quiet(&init.dir, READY_TIMEOUT)?;
        Ok(scratch)
    }

    /// Uses the testnet already in `dir`, starting whatever is stopped; leaves it running.
    pub fn adopt(dir: &Path) -> anyhow::Result<Scratch> {
        let manifest = up_quiet(dir, READY_TIMEOUT)?;
        Ok(Scratch {
            cluster: Cluster::new(dir, manifest),
            owned: false,
            keep: true,
        })
    }

    /// The testnet folder.
    pub fn dir(&self) -> &PathBuf {
        &self.cluster.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.owned {
            for i in 0..self.cluster.len() {
                let _ = procs::stop(&self.cluster.home(i), Duration::from_secs(10));
            }
            if !self.keep {
                let _ = std::fs::remove_dir_all(&self.cluster.dir);
            }
        }
    }
}
