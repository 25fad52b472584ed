//! Raft testnets of real `synod node` processes on 127.0.0.1 (OS-chosen ports): transactions
//! commit everywhere, every node's database ends up identical, a SIGKILLed leader loses nothing
//! that was acknowledged, a node that missed 500 blocks catches up, the edge drops forged and
//! malformed messages, bad RPC calls get errors, and bad homes refuse to start.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synod_chain::SignedTransaction;
use synod_chain::hash::Hash;
use synod_chain::keys::SecretKey;
use synod_genesis::{Genesis, Home};
use synod_node::rpc::client::{ClientError, RpcClient};
use synod_tests::chain_audit::{
    account_keys, assert_databases_identical, chain_id, commit_on_every_node, is_committed, submit,
    transfers, wait_committed_on, wait_converged,
};
use synod_tests::outsider;
use synod_tests::testnet::{Testnet, observer_home, start_node, synod_bin, wait_for};
use synod_tests::{Background, ChildGuard};

fn commit_everywhere(validators: usize) {
    let net = Testnet::init("raft", validators, validators, &[]);
    net.up();
    // Each node receives transfers from its own account.
    commit_on_every_node(&net);
}

#[test]
fn three_node_testnet_commits_everywhere_and_databases_agree() {
    commit_everywhere(3);
}

#[test]
fn five_node_testnet_commits_everywhere_and_databases_agree() {
    commit_everywhere(5);
}

/// SIGKILL the leader under load: a new leader commits, and every transaction acknowledged as
/// committed before the kill is in the chain on every node once the killed node is back.
#[test]
fn leader_sigkill_under_load_loses_nothing_acknowledged() {
    let net = Arc::new(Testnet::init("raft", 3, 2, &[]));
    net.up();
    let keys = account_keys(&net);
    let chain = chain_id(&net);
    let sent: Arc<Mutex<Vec<Hash>>> = Arc::default();
    let load = {
        let (net, sent) = (net.clone(), sent.clone());
        Background::spawn(move |stop| {
            let mut nonce = 0;
            let mut target = 0;
            while !stop.load(Ordering::Relaxed) {
                let txs = transfers(&chain, &keys[0], &keys[1], nonce, 10);
                // A batch whose node is down is retried on the next one: no nonce gaps.
                loop {
                    target = (target + 1) % 3;
                    if let Ok(ids) = submit(&mut net.client(target), &txs) {
                        sent.lock().unwrap().extend(ids);
                        break;
                    }
                    assert!(!stop.load(Ordering::Relaxed));
                }
                nonce += 10;
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };
    let leader = {
        let mut found = None;
        wait_for(Duration::from_secs(30), "a leader with commits", || {
            found = net.leader();
            found.is_some() && net.height(found.unwrap_or(0)) >= 5
        });
        found.unwrap()
    };
    // Everything the leader reports committed now is acknowledged.
    let acknowledged: Vec<Hash> = {
        let mut client = net.client(leader);
        let ids = sent.lock().unwrap().clone();
        ids.into_iter()
            .filter(|id| is_committed(&mut client, id))
            .collect()
    };
    assert!(
        acknowledged.len() >= 10,
        "only {} acknowledged",
        acknowledged.len()
    );
    let before = net.height(leader);
    net.kill(leader);
    let killed_at = Instant::now();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    wait_for(Duration::from_secs(30), "a new leader commits", || {
        net.leader().is_some_and(|l| l != leader)
            && survivors.iter().any(|i| net.height(*i) > before)
    });
    println!(
        "new leader committing {:?} after the kill",
        killed_at.elapsed()
    );
    std::thread::sleep(Duration::from_millis(500));
    load.finish();
    net.start(leader);
    let all: Vec<Hash> = sent.lock().unwrap().clone();
    wait_committed_on(&net, 0..3, &acknowledged, Duration::from_secs(60));
    // What was submitted after the kill commits too (clients forwarded it or gossip carried it).
    wait_committed_on(&net, [survivors[0]], &all, Duration::from_secs(60));
    wait_converged(&net, before + 1, Duration::from_secs(30));
    assert_databases_identical(&net);
}

/// A follower is down while 500 blocks commit; it restarts and converges.
#[test]
fn node_down_for_500_blocks_rejoins_and_converges() {
    let net = Testnet::init("raft", 3, 1, &[]);
    net.up();
    let leader = net.leader().unwrap();
    let follower = (leader + 1) % 3;
    net.kill(follower);
    let start = net.height(leader);
    let mut client = net.client(leader);
    while net.height(leader) < start + 500 {
        for _ in 0..50 {
            client.call("propose", json!({})).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let target = net.height(leader);
    net.start(follower);
    wait_for(Duration::from_secs(120), "the follower catches up", || {
        net.height(follower) >= target
    });
    wait_converged(&net, target, Duration::from_secs(30));
    assert_databases_identical(&net);
}

fn dropped(metrics: &str, reason: &str) -> u64 {
    metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "synod_messages_dropped_total{{reason=\"{reason}\"}}"
            ))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Garbage on the p2p port, and envelopes that are malformed, forged, or from a key outside the
/// validator set: all dropped and counted; the node keeps committing.
#[test]
fn edge_drops_forged_and_malformed_messages() {
    let net = Testnet::init("raft", 3, 1, &[]);
    net.up();
    let target = 0;
    let node = &net.manifest.nodes[target];
    let genesis = Genesis::load(&Home::new(net.home(target)).genesis_path()).unwrap();
    let node_key = genesis.validators[target].public_key;
    let impersonated = genesis.validators[1].public_key;

    // Raw garbage straight to the TCP port.
    let mut raw = std::net::TcpStream::connect(&node.listen).unwrap();
    raw.write_all(&[0xab; 4096]).unwrap();
    drop(raw);

    // A libp2p peer with a key that is not a validator.
    let outsider = SecretKey::generate();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (handle, peer) = outsider::connect(&runtime, &outsider, &node.listen, &node_key, false);
    let chain = genesis.hash();
    let send =
        |bytes: Vec<u8>| handle.send(synod_node::net::NetCommand::Consensus { to: peer, bytes });
    // Well-signed, but the sender is not a validator.
    send(synod_node::envelope::seal(
        &outsider, &chain, &node_key, b"hello",
    ));
    // Claims to come from validator 1 over the outsider's connection: refused before any
    // signature check.
    let mut impersonating =
        synod_node::envelope::seal(&outsider, &chain, &node_key, b"vote for me");
    impersonating[32..64].copy_from_slice(&impersonated.0);
    send(impersonating);
    // Not an envelope at all.
    send(vec![1, 2, 3]);

    // Over a connection authenticated as validator 2 (its key, stolen from its home), an
    // envelope whose signature was tampered with.
    let insider = synod_chain::keyfile::read_key_file(&Home::new(net.home(2)).key_path()).unwrap();
    let (insider_handle, _) = outsider::connect(&runtime, &insider, &node.listen, &node_key, false);
    let mut tampered = synod_node::envelope::seal(&insider, &chain, &node_key, b"vote for me");
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    insider_handle.send(synod_node::net::NetCommand::Consensus {
        to: peer,
        bytes: tampered,
    });

    let mut client = net.client(target);
    wait_for(Duration::from_secs(30), "the four drops counted", || {
        let metrics = client.metrics().unwrap_or_default();
        dropped(&metrics, "not_a_validator") >= 1
            && dropped(&metrics, "sender_mismatch") >= 1
            && dropped(&metrics, "forged") >= 1
            && dropped(&metrics, "malformed") >= 1
    });
    // Still working.
    let keys = account_keys(&net);
    let ids = submit(
        &mut client,
        &transfers(&chain_id(&net), &keys[0], &keys[0], 0, 3),
    )
    .unwrap();
    wait_for(Duration::from_secs(30), "a commit after the attack", || {
        ids.iter().all(|id| is_committed(&mut client, id))
    });
    drop(handle);
    drop(insider_handle);
}

/// Bad JSON-RPC requests get JSON-RPC errors with the right codes.
#[test]
fn bad_rpc_requests_get_errors() {
    let net = Testnet::init("raft", 3, 1, &[]);
    net.up();
    let mut client = net.client(0);
    let raw = |client: &mut RpcClient, body: &str| -> Value {
        serde_json::from_slice(&client.http("POST", "/", body.as_bytes()).unwrap()).unwrap()
    };
    let code = |v: &Value| v["error"]["code"].as_i64();
    assert_eq!(code(&raw(&mut client, "{not json")), Some(-32700));
    assert_eq!(code(&raw(&mut client, "{}")), Some(-32600));
    assert_eq!(code(&raw(&mut client, "[]")), Some(-32600));
    assert_eq!(
        code(&raw(
            &mut client,
            r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#
        )),
        Some(-32601)
    );
    assert_eq!(
        code(&raw(
            &mut client,
            r#"{"jsonrpc":"2.0","id":1,"method":"get_block","params":{"height":"x"}}"#
        )),
        Some(-32602)
    );
    assert_eq!(
        code(&raw(
            &mut client,
            r#"{"jsonrpc":"2.0","id":1,"method":"get_block","params":[1]}"#
        )),
        Some(-32602)
    );
    let batch = raw(
        &mut client,
        r#"[{"jsonrpc":"2.0","id":1,"method":"status"},{"jsonrpc":"2.0","id":2,"method":"get_block","params":{"height":999999}}]"#,
    );
    assert_eq!(batch.as_array().unwrap().len(), 2);
    assert!(batch[0]["result"]["height"].is_u64());
    assert_eq!(code(&batch[1]), Some(-32004));

    let err = client
        .call("send_transaction", json!({ "raw": "zz" }))
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Rpc { code: -32602, .. }),
        "{err}"
    );
    let key = account_keys(&net).remove(0);
    let (tx, mut signature) = transfers(&chain_id(&net), &key, &key, 0, 1)
        .remove(0)
        .into_parts();
    signature.0[3] ^= 1;
    let forged = SignedTransaction::from_parts(tx, signature);
    match client.call("send_transaction", json!({ "tx": forged })) {
        Err(ClientError::Rpc {
            code: -32010, data, ..
        }) => assert_eq!(data.unwrap()["reason"], "bad_signature"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    let other_chain = transfers("another-chain", &key, &key, 0, 1).remove(0);
    match client.call("send_transaction", json!({ "tx": other_chain })) {
        Err(ClientError::Rpc {
            code: -32010, data, ..
        }) => assert_eq!(data.unwrap()["reason"], "wrong_chain"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    // A nonce far past the account's: busy for now, with when to try again.
    let far_ahead = transfers(&chain_id(&net), &key, &key, 1_000_000, 1).remove(0);
    match client.call("send_transaction", json!({ "tx": far_ahead })) {
        Err(ClientError::Rpc {
            code: -32012, data, ..
        }) => assert_eq!(data.unwrap()["retry_after_ms"], 100),
        other => panic!("expected a busy answer, got {other:?}"),
    }
}

/// Runs `synod node --home` expecting it to refuse to start; returns its stderr.
fn refused(home: &std::path::Path) -> String {
    let mut child = Command::new(synod_bin())
        .args(["node", "--home"])
        .arg(home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success());
            let output = child.wait_with_output().unwrap();
            return String::from_utf8_lossy(&output.stderr).to_string();
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_homes_refuse_to_start_with_a_clear_message() {
    let net = Testnet::init("raft", 3, 1, &["--random-keys"]);

    // A key that is not one of the genesis validators.
    let home = net.home(0);
    std::fs::remove_file(home.join("node_key")).unwrap();
    synod_chain::keyfile::write_key_file(&home.join("node_key"), &SecretKey::generate()).unwrap();
    let err = refused(&home);
    assert!(err.contains("is not a validator of chain"), "{err}");

    // A database that belongs to another chain.
    let home = net.home(1);
    let config = Home::new(&home).load_config().unwrap();
    let other = synod_chain::fixtures::Fixture::new("some-other-chain", 1, 1, 0);
    drop(synod_chain::Store::open(&Home::new(&home).db_path(&config), &other.genesis).unwrap());
    let err = refused(&home);
    assert!(
        err.contains("database belongs to chain \"some-other-chain\""),
        "{err}"
    );

    // The RPC port is taken.
    let home = net.home(2);
    let config = Home::new(&home).load_config().unwrap();
    let _squatter = std::net::TcpListener::bind(&config.rpc).unwrap();
    let err = refused(&home);
    assert!(err.contains("cannot listen on rpc address"), "{err}");
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");

    // A missing home.
    let err = refused(&net.dir.join("nowhere"));
    assert!(err.contains("not a node home"), "{err}");
    // A dev key is refused on a non-dev chain (the genesis here uses random keys).
    let dev = synod_genesis::dev_keys::dev_key(&net.manifest.chain_id, 0);
    let home = net.home(0);
    std::fs::remove_file(home.join("node_key")).unwrap();
    synod_chain::keyfile::write_key_file(&home.join("node_key"), &dev).unwrap();
    let err = refused(&home);
    assert!(err.contains("dev key"), "{err}");
}

/// A node outside the validator set, configured as an observer, follows the chain by syncing
/// and verifying blocks; it never votes.
#[test]
fn observer_follows_the_chain() {
    let net = Testnet::init("raft", 3, 1, &[]);
    net.up();
    let peers = net
        .manifest
        .nodes
        .iter()
        .map(|n| n.listen.clone())
        .collect();
    let (home, rpc) = observer_home(&net, "observer", peers);
    let _observer = start_node(&home);

    let keys = account_keys(&net);
    let ids = submit(
        &mut net.client(0),
        &transfers(&chain_id(&net), &keys[0], &keys[0], 0, 20),
    )
    .unwrap();
    let mut observer = RpcClient::new(&rpc).with_timeout(Duration::from_secs(5));
    wait_for(
        Duration::from_secs(60),
        "the observer has every transaction",
        || ids.iter().all(|id| is_committed(&mut observer, id)),
    );
    let status = observer.call("status", json!({})).unwrap();
    assert_eq!(status["role"], "observer");
    let leader = net.leader().unwrap();
    let height = status["height"].as_u64().unwrap();
    let theirs = net
        .client(leader)
        .call("get_block", json!({ "height": height, "txs": "none" }))
        .unwrap();
    let ours = observer
        .call("get_block", json!({ "height": height, "txs": "none" }))
        .unwrap();
    assert_eq!(ours["hash"], theirs["hash"]);
    assert!(matches!(
        observer.call("propose", json!({})),
        Err(ClientError::Rpc { code: -32001, .. })
    ));
    let mut observer = observer.with_token(home.read_cookie());
    assert!(matches!(
        observer.call("propose", json!({})),
        Err(ClientError::Rpc { code: -32011, .. })
    ));
}

/// A raw HTTP POST with the given headers; returns the status code and the body.
fn post(addr: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The cross-site attack of issue 10: a web page in the operator's browser posts an
/// `add_validator` to the node's loopback RPC as `text/plain` with its own Host and Origin. It is
/// refused at every layer, the validator set does not change, and the same call with the node's
/// cookie goes through to the engine.
#[test]
fn admin_rpc_needs_the_cookie_and_refuses_cross_site_requests() {
    let net = Testnet::init("raft", 3, 1, &[]);
    net.up();
    let addr = net.manifest.nodes[0].rpc.clone();
    let port = addr.rsplit_once(':').unwrap().1;
    let stranger = SecretKey::generate().public();
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"add_validator","params":{{"key":"{stranger}","allow_non_genesis":true}}}}"#
    );
    let evil_host = format!("evil.example:{port}");
    let cases: [(&[(&str, &str)], u16); 3] = [
        (
            &[
                ("content-type", "text/plain"),
                ("host", &evil_host),
                ("origin", "http://evil.example"),
            ],
            415,
        ),
        (
            &[
                ("content-type", "application/json"),
                ("host", &evil_host),
                ("origin", "http://evil.example"),
            ],
            403,
        ),
        (
            &[("content-type", "application/json"), ("host", &addr)],
            401,
        ),
    ];
    for (headers, expected) in cases {
        let (status, body) = post(&addr, headers, &call);
        assert_eq!(status, expected, "{headers:?}: {body}");
        assert!(!body.contains("access-control"), "no CORS headers");
    }
    let members = |net: &Testnet| {
        net.status(0).unwrap()["validators"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(members(&net), 3, "the validator set did not change");

    // With the cookie: a key no genesis names is refused unless asked for explicitly.
    let leader = net.leader().unwrap();
    let mut admin = net.client(leader);
    match admin.call("add_validator", json!({ "key": stranger })) {
        Err(ClientError::Rpc {
            code: -32011,
            message,
            ..
        }) => {
            assert!(message.contains("allow_non_genesis"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    admin.call("propose", json!({})).unwrap();
    let cookie = Home::new(net.home(leader)).read_cookie().unwrap();
    let bearer = format!("Bearer {cookie}");
    let leader_addr = net.manifest.nodes[leader].rpc.clone();
    let (status, body) = post(
        &leader_addr,
        &[
            ("content-type", "application/json"),
            ("host", &leader_addr),
            ("authorization", &bearer),
        ],
        r#"{"jsonrpc":"2.0","id":1,"method":"propose"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"accepted\":true"), "{body}");
}

/// `synod tx send` to a node that is down keeps trying with backoff, and the transfer is
/// admitted and commits once the node is back; the command says how many retries it took.
#[test]
fn tx_send_retries_a_node_that_is_down_until_it_is_back() {
    use std::io::{BufRead, BufReader};

    let net = Testnet::init("raft", 3, 2, &[]);
    net.up();
    net.kill(2);
    let from = net.dir.join(&net.manifest.accounts[0].key);
    let to = net.manifest.accounts[1].address.to_string();
    let child = Command::new(synod_bin())
        .args(["tx", "send", "--dir"])
        .arg(&net.dir)
        .args(["--node", "node2", "--from"])
        .arg(&from)
        .args(["--to", &to, "--amount", "7", "--wait", "--retry-for", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    // The first try fails (the node is down) before the node is started again.
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("retrying in"), "{line}");
    net.start(2);
    let status = child.0.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{out}");
    assert!(out.contains("retr"), "the retries are reported: {out}");
    assert!(out.contains("committed in block"), "{out}");
}

/// Sends `txs` in one call. Returns the ids admitted, the transactions refused for now (any
/// refusal for good fails the test) and the first refusal for backpressure.
fn send_round<'a>(
    client: &mut RpcClient,
    txs: &[&'a SignedTransaction],
) -> (Vec<Hash>, Vec<&'a SignedTransaction>, Option<Value>) {
    let raw: Vec<String> = txs.iter().map(|t| hex::encode(t.encode())).collect();
    let results = client
        .call("send_transactions", json!({ "raw": raw }))
        .unwrap();
    let (mut admitted, mut refused, mut pushback) = (Vec::new(), Vec::new(), None);
    for (tx, result) in txs.iter().zip(results.as_array().unwrap()) {
        if result.get("error").is_none() {
            admitted.push(tx.id());
            continue;
        }
        assert_eq!(result["retry"], true, "refused for good: {result}");
        if result["reason"] == "overloaded" && pushback.is_none() {
            pushback = Some(result.clone());
        }
        refused.push(*tx);
    }
    (admitted, refused, pushback)
}

/// Once the leader holds more pending than it should take on (here 200 in uncommitted blocks
/// or ready for the next ones, a fifth of `max_pending_txs = 1000`, with blocks of 20), a
/// follower answers its clients "busy" before admitting anything, as the leader does: the leader says so in its appends. Everything
/// admitted commits on every node, and the follower admits again once the leader has drained.
#[test]
fn a_follower_relays_the_leaders_backpressure_and_what_it_admitted_commits() {
    let net = Testnet::init(
        "raft",
        3,
        2,
        &["--param", "max_block_txs=20", "--max-pending-txs", "1000"],
    );
    net.up();
    let mut leader = None;
    wait_for(Duration::from_secs(30), "a leader", || {
        leader = net.leader();
        leader.is_some()
    });
    let mut follower = (0..3).find(|i| Some(*i) != leader).unwrap();
    let keys = account_keys(&net);
    let all = transfers(&chain_id(&net), &keys[0], &keys[1], 0, 20_000);
    let mut client = net.client(follower);
    let mut admitted: Vec<Hash> = Vec::new();
    // Each round sends what was refused for now, then fresh transactions: 100 at a time.
    let mut unsent = all.iter();
    let mut waiting: Vec<&SignedTransaction> = Vec::new();
    let mut pushback: Option<Value> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while pushback.is_none() && Instant::now() < deadline {
        let fill = 100 - waiting.len().min(100);
        waiting.extend(unsent.by_ref().take(fill));
        let (ids, refused, refusal) = send_round(&mut client, &waiting);
        admitted.extend(ids);
        waiting = refused;
        pushback = refusal;
        // Only a follower's pushback shows the relay: had leadership moved to this node, it
        // pushed back on its own count. Then go on with another follower.
        if pushback.is_some() && net.status(follower).is_none_or(|s| s["role"] != "follower") {
            pushback = None;
            let leader = net.leader();
            follower = (0..3)
                .find(|i| Some(*i) != leader && *i != follower)
                .unwrap();
            client = net.client(follower);
        }
    }
    let pushback = pushback.expect("the follower never pushed back");
    assert_eq!(pushback["retry_after_ms"], 500);
    assert!(admitted.len() >= 100, "only {} admitted", admitted.len());

    wait_committed_on(&net, 0..3, &admitted, Duration::from_secs(120));
    // Drained: what was turned away is admitted now, and commits too.
    let mut retried: Vec<Hash> = Vec::new();
    wait_for(Duration::from_secs(30), "the follower admits again", || {
        let (ids, refused, _) = send_round(&mut client, &waiting);
        retried.extend(ids);
        waiting = refused;
        waiting.is_empty()
    });
    wait_committed_on(&net, [follower], &retried, Duration::from_secs(60));
}
