//! Commands that talk to a running node over JSON-RPC: `tx send`, `status`, `block`, `account`,
//! `propose`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use synod_chain::keyfile::read_key_file;
use synod_chain::keys::Address;
use synod_chain::{Memo, Transaction};
use synod_node::rpc::client::ClientError;

use super::target::Target;
use crate::table::{Table, key_values};

/// `synod tx ...`
#[derive(Subcommand, Debug)]
pub enum TxCommand {
    /// Sign a transfer with a key file and submit it (the nonce is looked up).
    Send(SendArgs),
}

/// Arguments of `synod tx send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// Key file of the sending account.
    #[arg(long, value_name = "KEY_FILE")]
    from: PathBuf,
    /// Recipient address (40 hex chars).
    #[arg(long)]
    to: Address,
    /// Amount to send.
    #[arg(long)]
    amount: u64,
    /// Fee for the block proposer.
    #[arg(long, default_value_t = 1)]
    fee: u64,
    /// A note (at most 256 bytes).
    #[arg(long, default_value = "")]
    memo: String,
    /// Wait until the transaction is committed and show where.
    #[arg(long)]
    wait: bool,
    /// How long to keep sending the same transaction while the node answers "busy, retry
    /// later" or cannot be reached, backing off between tries (0: try once).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    retry_for: u64,
    #[command(flatten)]
    target: Target,
}

/// The first and the longest wait between two tries of a busy or unreachable node.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Runs `call` until it answers, retrying a busy (-32012) or unreachable node with doubling
/// waits (at least the busy node's `retry_after_ms`) for up to `retry_for` from `started`;
/// `retries` counts the retries of every call.
fn with_backoff<T>(
    started: Instant,
    retry_for: Duration,
    retries: &mut u32,
    mut call: impl FnMut() -> Result<T, ClientError>,
) -> anyhow::Result<T> {
    let mut wait = FIRST_BACKOFF;
    loop {
        let error = match call() {
            Ok(answer) => return Ok(answer),
            Err(e @ (ClientError::Rpc { code: -32012, .. } | ClientError::Io { .. })) => e,
            Err(e) => return Err(e.into()),
        };
        // A busy node says when to come back; never sooner than the backoff.
        if let ClientError::Rpc {
            data: Some(data), ..
        } = &error
            && let Some(hint) = data["retry_after_ms"].as_u64()
        {
            wait = wait.max(Duration::from_millis(hint)).min(MAX_BACKOFF);
        }
        if started.elapsed() + wait > retry_for {
            return Err(anyhow::Error::new(error).context(format!(
                "gave up after {retries} retries in {:.1} s",
                started.elapsed().as_secs_f64()
            )));
        }
        eprintln!("{error}; retrying in {} ms", wait.as_millis());
        std::thread::sleep(wait);
        *retries += 1;
        wait = (wait * 2).min(MAX_BACKOFF);
    }
}

/// Arguments of commands that take only a target.
#[derive(Args, Debug)]
pub struct TargetOnly {
    #[command(flatten)]
    pub target: Target,
}

/// Arguments of `synod block`.
#[derive(Args, Debug)]
pub struct BlockArgs {
    /// Height, or block id (64 hex chars); or `verify` followed by one, to check the block as a
    /// stranger would (its body and its finality proof, against the genesis alone).
    block: String,
    /// The block to verify, after `verify`.
    #[arg(value_name = "BLOCK")]
    verify_block: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The genesis to verify against (default: the testnet folder's `genesis.json`, not the
    /// node's word).
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
}

/// The `get_block` parameters for a height or a block id.
fn block_params(block: &str) -> Value {
    match block.parse::<u64>() {
        Ok(height) => json!({ "height": height }),
        Err(_) => json!({ "hash": block }),
    }
}

/// `synod block verify <block>`: fetches the block's canonical header, transaction ids and
/// proof, and checks them against a genesis this command reads itself.
fn verify(args: &BlockArgs, block: &str) -> anyhow::Result<()> {
    let genesis_path = match (&args.genesis, &args.target.rpc) {
        (Some(path), _) => path.clone(),
        (None, None) => args.target.dir.join("genesis.json"),
        (None, Some(_)) => bail!("with --rpc, say which genesis to verify against: --genesis FILE"),
    };
    let genesis = synod_genesis::Genesis::load(&genesis_path)?;
    let mut params = block_params(block);
    params["txs"] = json!("ids");
    let b = args.target.client()?.call("get_block", params)?;
    let field = |name: &str| {
        b[name]
            .as_str()
            .with_context(|| format!("the node's answer has no {name:?}"))
    };
    let header_bytes = hex::decode(field("header")?).context("the header is not hex")?;
    let header = synod_chain::BlockHeader::decode(&header_bytes)
        .map_err(|e| anyhow::anyhow!("the header does not decode: {e}"))?;
    let id: synod_chain::hash::Hash = field("hash")?.parse().context("the block id")?;
    // The node must serve the block asked for, not another one that happens to verify.
    match block.parse::<u64>() {
        Ok(height) if header.height != height => bail!(
            "asked for block {height}, the node served a header at height {}",
            header.height
        ),
        Ok(_) => {}
        Err(_) if block.parse::<synod_chain::hash::Hash>().ok() != Some(header.hash()) => {
            bail!("the node served a header whose id is not {block}")
        }
        Err(_) => {}
    }
    let proof = hex::decode(field("proof")?).context("the proof is not hex")?;
    let tx_ids = b["tx_ids"]
        .as_array()
        .context("the node's answer has no tx_ids")?
        .iter()
        .map(|v| {
            v.as_str()
                .and_then(|s| s.parse().ok())
                .context("a transaction id is not 64 hex chars")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    super::verify::verify_and_report(&genesis, Some(id), &header, &tx_ids, &proof)
}

/// Arguments of `synod account`.
#[derive(Args, Debug)]
pub struct AccountArgs {
    /// The address (40 hex chars).
    address: Address,
    #[command(flatten)]
    target: Target,
}

pub fn tx(command: TxCommand) -> anyhow::Result<()> {
    let TxCommand::Send(args) = command;
    let key = read_key_file(&args.from)?;
    let mut client = args.target.client()?;
    let (started, retry_for, mut retries) =
        (Instant::now(), Duration::from_secs(args.retry_for), 0);
    let status = with_backoff(started, retry_for, &mut retries, || {
        client.call("status", json!({}))
    })?;
    let chain_id = status["chain_id"].as_str().unwrap_or_default().to_string();
    let account = with_backoff(started, retry_for, &mut retries, || {
        client.call("get_account", json!({ "address": key.address() }))
    })?;
    let nonce = account["next_nonce"]
        .as_u64()
        .context("node returned no nonce")?;
    let tx = Transaction {
        chain_id,
        from: key.public(),
        to: args.to,
        amount: args.amount,
        fee: args.fee,
        nonce,
        memo: Memo(args.memo.into_bytes()),
    }
    .sign(&key);
    let id = tx.id();
    // A try whose answer was lost may have been admitted (the client also resends once by
    // itself on a dropped connection): "known" means this very transaction is pending, and a
    // refusal of its nonce may mean it already committed; the node says which.
    with_backoff(started, retry_for, &mut retries, || {
        match client.call("send_transaction", json!({ "tx": tx })) {
            Err(ClientError::Rpc {
                data: Some(data), ..
            }) if data["reason"] == "known" => Ok(Value::Null),
            Err(ClientError::Rpc {
                code,
                message,
                data: Some(data),
            }) if data["reason"] == "stale_nonce" || data["reason"] == "nonce_taken" => {
                match client.call("get_transaction", json!({ "id": id })) {
                    Ok(found) if found["status"] == "committed" || found["status"] == "pending" => {
                        Ok(Value::Null)
                    }
                    _ => Err(ClientError::Rpc {
                        code,
                        message,
                        data: Some(data),
                    }),
                }
            }
            other => other,
        }
    })?;
    let after = match retries {
        0 => String::new(),
        1 => " after 1 retry".to_string(),
        n => format!(" after {n} retries"),
    };
    println!("submitted {id} (nonce {nonce}) to {}{after}", client.addr());
    if args.wait {
        let started = Instant::now();
        loop {
            match client.call("get_transaction", json!({ "id": id })) {
                Ok(found) if found["status"] == "committed" => {
                    println!(
                        "committed in block {} at height {} after {} ms",
                        found["block"].as_str().unwrap_or("?"),
                        found["height"],
                        started.elapsed().as_millis()
                    );
                    break;
                }
                Ok(found) if found["status"] == "dropped" => {
                    bail!(
                        "the node dropped the transaction: {}",
                        found["reason"].as_str().unwrap_or("no reason given")
                    );
                }
                Ok(_) => {}
                Err(ClientError::Rpc { code: -32004, .. }) => {}
                Err(e) => return Err(e.into()),
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("not committed within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

pub fn status(args: TargetOnly) -> anyhow::Result<()> {
    let mut client = args.target.client()?;
    let s = client.call("status", json!({}))?;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let node = (
        "node",
        format!("{} ({})", text(&s["moniker"]), client.addr()),
    );
    let chain = (
        "chain",
        format!("{} ({})", text(&s["chain_id"]), text(&s["engine"])),
    );
    // Proof of work has no rounds, leaders or validator set: its nodes show their mining.
    let fields: Vec<(&str, String)> = if s["mining"].is_boolean() {
        let mining = if s["mining"] == true {
            format!(
                "on, {}",
                super::mine::format_hash_rate(s["hash_rate"].as_f64().unwrap_or(0.0))
            )
        } else {
            "off".into()
        };
        vec![
            node,
            chain,
            ("role", text(&s["role"])),
            ("mining", mining),
            ("height", text(&s["height"])),
            ("tip", text(&s["tip"])),
            ("finalized height", text(&s["finalized_height"])),
            ("chainwork", text(&s["chainwork"])),
            ("peers", text(&s["peers"])),
            ("mempool", text(&s["mempool"])),
            ("committed txs", text(&s["committed_txs"])),
        ]
    } else {
        vec![
            node,
            chain,
            (
                "role",
                format!("{} in round {}", text(&s["role"]), text(&s["round"])),
            ),
            ("leader", text(&s["leader"])),
            ("height", text(&s["height"])),
            ("tip", text(&s["tip"])),
            ("peers", text(&s["peers"])),
            (
                "validators",
                s["validators"].as_array().map_or(0, Vec::len).to_string(),
            ),
            ("mempool", text(&s["mempool"])),
            ("committed txs", text(&s["committed_txs"])),
        ]
    };
    println!("{}", key_values(fields));
    Ok(())
}

pub fn block(args: BlockArgs) -> anyhow::Result<()> {
    match (args.block.as_str(), &args.verify_block) {
        ("verify", Some(block)) => return verify(&args, block),
        ("verify", None) => bail!("say which block to verify: synod block verify <height|id>"),
        (_, Some(extra)) => {
            bail!("unexpected argument {extra:?} (did you mean `synod block verify`?)")
        }
        _ => {}
    }
    let mut client = args.target.client()?;
    let b = client.call("get_block", block_params(&args.block))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&b)?);
        return Ok(());
    }
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut fields = vec![
        ("height", b["height"].to_string()),
        ("id", text(&b["hash"])),
        ("parent", text(&b["parent"])),
        (
            "time",
            synod_genesis::time::format_rfc3339_utc(b["timestamp_ms"].as_u64().unwrap_or(0)),
        ),
        ("proposer", text(&b["proposer"])),
        ("round", b["round"].to_string()),
        ("final", b["final"].to_string()),
        (
            "finality proof",
            match (
                b["finality"]["verified"].as_bool(),
                b["finality"]["error"].as_str(),
            ) {
                (Some(true), _) => "checks (on this node)".to_string(),
                (_, Some(e)) => format!("DOES NOT CHECK: {e}"),
                _ => "-".to_string(),
            },
        ),
        ("transactions", b["tx_count"].to_string()),
    ];
    // Proof-of-work blocks carry their work and their depth in the chain.
    if !b["confirmations"].is_null() {
        fields.extend([
            ("bits", text(&b["bits"])),
            ("nonce", b["nonce"].to_string()),
            ("chainwork", text(&b["chainwork"])),
            ("confirmations", b["confirmations"].to_string()),
        ]);
    }
    println!("{}", key_values(fields));
    if let Some(txs) = b["txs"].as_array().filter(|t| !t.is_empty()) {
        let mut table = Table::new(["#", "from", "to", "amount", "fee", "nonce"]);
        for (i, tx) in txs.iter().enumerate() {
            let t = &tx["tx"];
            table.row([
                i.to_string(),
                t["from"].as_str().unwrap_or("").chars().take(8).collect(),
                t["to"].as_str().unwrap_or("").chars().take(8).collect(),
                t["amount"].to_string(),
                t["fee"].to_string(),
                t["nonce"].to_string(),
            ]);
        }
        println!("\n{}", table.render());
    }
    Ok(())
}

pub fn account(args: AccountArgs) -> anyhow::Result<()> {
    let mut client = args.target.client()?;
    let a = client.call("get_account", json!({ "address": args.address }))?;
    println!(
        "{}",
        key_values([
            ("address", args.address.to_string()),
            ("balance", a["balance"].to_string()),
            ("nonce", a["nonce"].to_string()),
            ("next nonce", a["next_nonce"].to_string()),
        ])
    );
    Ok(())
}

pub fn propose(args: TargetOnly) -> anyhow::Result<()> {
    let mut client = args.target.client()?;
    client.call("propose", json!({}))?;
    println!("{} is cutting a block", client.addr());
    Ok(())
}
