//! `synod keygen`: new key files, and what an existing one controls.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use synod_chain::keyfile::{read_key_file, write_key_file};
use synod_chain::keys::SecretKey;

use crate::table::key_values;

/// Arguments of `synod keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the new key (refuses to overwrite an existing file).
    #[arg(long, value_name = "FILE", required_unless_present = "show")]
    out: Option<PathBuf>,
    /// Instead of generating, print the public key and address of an existing key file.
    #[arg(long, value_name = "FILE", conflicts_with = "out")]
    show: Option<PathBuf>,
}

pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let (key, path) = match (args.out, args.show) {
        (Some(out), _) => {
            let key = SecretKey::generate();
            write_key_file(&out, &key).context("writing the key")?;
            (key, out)
        }
        (None, Some(show)) => (read_key_file(&show)?, show),
        (None, None) => anyhow::bail!("pass --out FILE or --show FILE"),
    };
    println!(
        "{}",
        key_values([
            ("key file", path.display().to_string()),
            ("public key", key.public().to_string()),
            ("address", key.address().to_string()),
        ])
    );
    Ok(())
}
