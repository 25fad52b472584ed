use serde_json::{Value, json};
use synod_chain::keys::SecretKey;
use synod_chain::pow::asert::next_bits_asert;
use synod_chain::target::Target;

use super::*;
use crate::dev_keys::dev_key;

fn key_hex(i: u8) -> String {
    SecretKey::from_seed([i + 1; 32]).public().to_string()
}

fn valid_json(engine: &str, validators: usize) -> Value {
    json!({
        "chain_id": "test-chain",
        "genesis_time": "2026-11-23T09:00:00Z",
        "engine": { "kind": engine },
        "validators": (0..validators).map(|i| json!({
            "name": format!("node{i}"),
            "public_key": key_hex(i as u8),
            "address": format!("127.0.0.1:{}", 26000 + i),
        })).collect::<Vec<_>>(),
        "accounts": [
            { "address": SecretKey::from_seed([50; 32]).address().to_string(), "balance": 1000 },
        ],
    })
}

/// Parses `value` and returns the one error line, which must name `field`.
fn error_of(value: &Value) -> String {
    match Genesis::from_json(&value.to_string()) {
        Ok(_) => panic!("accepted: {value}"),
        Err(e) => e.to_string(),
    }
}

fn assert_field(value: Value, field: &str, needle: &str) {
    let message = error_of(&value);
    assert!(
        message.starts_with(&format!("{field}:")) && message.contains(needle),
        "expected `{field}: ...{needle}...`, got `{message}`"
    );
}

#[test]
fn valid_files_parse_with_defaults() {
    for (engine, n) in [("raft", 1), ("raft", 3), ("pbft", 4), ("pow", 0)] {
        let genesis = Genesis::from_json(&valid_json(engine, n).to_string()).unwrap();
        assert_eq!(genesis.engine.kind(), engine);
        assert_eq!(genesis.genesis_time_ms(), 1_795_424_400_000);
    }
    let genesis = Genesis::from_json(&valid_json("raft", 3).to_string()).unwrap();
    assert_eq!(genesis.engine, EngineConfig::Raft(RaftParams::default()));
    // Saving and reloading gives the same genesis and hash.
    let again = Genesis::from_json(&genesis.to_json()).unwrap();
    assert_eq!(again, genesis);
    assert_eq!(again.hash(), genesis.hash());
}

#[test]
fn hash_ignores_formatting_but_not_content() {
    let value = valid_json("raft", 3);
    let compact = Genesis::from_json(&value.to_string()).unwrap();
    let pretty = Genesis::from_json(&serde_json::to_string_pretty(&value).unwrap()).unwrap();
    assert_eq!(compact.hash(), pretty.hash());
    let mut changed = value.clone();
    changed["accounts"][0]["balance"] = json!(1001);
    assert_ne!(
        Genesis::from_json(&changed.to_string()).unwrap().hash(),
        compact.hash()
    );
    // Block 0 commits to the genesis hash.
    let state = compact.state();
    assert_eq!(state.block.header.parent, compact.hash());
    assert_eq!(state.genesis_hash, compact.hash());
}

#[test]
fn unknown_engine_and_unknown_fields() {
    let mut v = valid_json("raft", 3);
    v["engine"]["kind"] = json!("paxos");
    let message = error_of(&v);
    assert!(message.starts_with("engine"), "{message}");
    assert!(message.contains("paxos"), "{message}");

    let mut v = valid_json("raft", 3);
    v["engine"]["heartbeat_ms"] = json!(5);
    assert_field(v, "engine.heartbeat_ms", "unknown field");

    let mut v = valid_json("raft", 3);
    v["validators"][1]["port"] = json!(5);
    assert_field(v, "validators[1].port", "unknown field");
}

#[test]
fn bad_keys_name_their_field() {
    let mut v = valid_json("raft", 3);
    v["validators"][2]["public_key"] = json!(&key_hex(2)[1..]);
    assert_field(
        v,
        "validators[2].public_key",
        "expected 64 hex chars, got 63",
    );

    let mut v = valid_json("raft", 3);
    v["validators"][0]["public_key"] = json!("zz".repeat(32));
    assert_field(v, "validators[0].public_key", "not hex");

    // y = 2 is not on the curve.
    let mut v = valid_json("raft", 3);
    v["validators"][1]["public_key"] = json!(format!("02{}", "00".repeat(31)));
    assert_field(v, "validators[1].public_key", "not a valid curve point");

    // The identity point has small order.
    let mut v = valid_json("raft", 3);
    v["validators"][1]["public_key"] = json!(format!("01{}", "00".repeat(31)));
    assert_field(v, "validators[1].public_key", "small order");

    let mut v = valid_json("raft", 3);
    v["accounts"][0]["address"] = json!("1234");
    assert_field(v, "accounts[0].address", "expected 40 hex chars");
}

#[test]
fn validator_set_rules() {
    assert_field(valid_json("raft", 0), "validators", "at least 1");
    assert_field(valid_json("pbft", 3), "validators", "at least 4 validators");

    let mut v = valid_json("raft", 3);
    v["validators"][2]["public_key"] = json!(key_hex(0));
    assert_field(v, "validators[2].public_key", "duplicate validator key");

    let mut v = valid_json("raft", 3);
    v["validators"][1]["name"] = json!("node0");
    assert_field(v, "validators[1].name", "duplicate validator name");

    let mut v = valid_json("raft", 3);
    v["validators"][1]["address"] = json!("localhost");
    assert_field(v, "validators[1].address", "expected host:port");

    let mut v = valid_json("raft", 3);
    v["validators"][1]["address"] = json!("127.0.0.1:0");
    assert_field(v, "validators[1].address", "port 0");
}

#[test]
fn balances_must_not_overflow() {
    let mut v = valid_json("raft", 1);
    v["accounts"] = json!([
        { "address": SecretKey::from_seed([50; 32]).address().to_string(), "balance": u64::MAX },
        { "address": SecretKey::from_seed([51; 32]).address().to_string(), "balance": 1 },
    ]);
    assert_field(v, "accounts[1].balance", "overflows");

    let mut v = valid_json("raft", 1);
    v["accounts"][0]["balance"] = json!(-5);
    assert_field(v, "accounts[0].balance", "invalid value");

    let mut v = valid_json("raft", 1);
    v["accounts"] = json!([
        { "address": SecretKey::from_seed([50; 32]).address().to_string(), "balance": 1 },
        { "address": SecretKey::from_seed([50; 32]).address().to_string(), "balance": 1 },
    ]);
    assert_field(v, "accounts[1].address", "duplicate account");

    // A number beyond u64 is refused by the parser, naming the field.
    let text = valid_json("raft", 1)
        .to_string()
        .replace("\"balance\":1000", "\"balance\":99999999999999999999999");
    let message = Genesis::from_json(&text).unwrap_err().to_string();
    assert!(message.starts_with("accounts[0].balance"), "{message}");
}

#[test]
fn timing_relations() {
    let mut v = valid_json("raft", 3);
    v["engine"]["heartbeat_interval_ms"] = json!(400);
    assert_field(
        v,
        "engine.heartbeat_interval_ms",
        "below election_timeout_min_ms",
    );

    let mut v = valid_json("raft", 3);
    v["engine"]["election_timeout_min_ms"] = json!(900);
    assert_field(
        v,
        "engine.election_timeout_max_ms",
        "below election_timeout_min_ms",
    );

    let mut v = valid_json("pbft", 4);
    v["engine"]["watermark_window"] = json!(150);
    assert_field(v, "engine.watermark_window", "twice checkpoint_interval");

    let mut v = valid_json("pow", 0);
    v["engine"]["initial_bits"] = json!("1d800001");
    assert_field(v, "engine.initial_bits", "negative");

    let mut v = valid_json("pow", 0);
    v["engine"]["initial_bits"] = json!("12345");
    assert_field(v, "engine.initial_bits", "8 hex chars");

    let mut v = valid_json("pow", 0);
    v["engine"]["retarget_window"] = json!(1);
    assert_field(v, "engine.retarget_window", "at least 2");

    let mut v = valid_json("raft", 3);
    v["engine"]["max_block_txs"] = json!(0);
    assert_field(v, "engine.max_block_txs", "between 1 and");
}

#[test]
fn pow_difficulty_and_bounds() {
    let genesis = Genesis::from_json(&valid_json("pow", 0).to_string()).unwrap();
    let EngineConfig::Pow(p) = &genesis.engine else {
        panic!("not pow: {:?}", genesis.engine);
    };
    assert_eq!(p.difficulty, DifficultyAlgorithm::Asert);
    assert_eq!(p.asert_half_life_ms, 60_000);
    assert_eq!(p.max_future_block_time_ms, 15_000);
    assert_eq!(p.max_reorg_depth, 1_000);
    // Written out in lowercase, and read back.
    assert!(genesis.to_json().contains(r#""difficulty": "asert""#));
    let mut v = valid_json("pow", 0);
    v["engine"]["difficulty"] = json!("bitcoin");
    let bitcoin = Genesis::from_json(&v.to_string()).unwrap();
    assert!(
        matches!(&bitcoin.engine, EngineConfig::Pow(p) if p.difficulty == DifficultyAlgorithm::Bitcoin)
    );
    assert_ne!(bitcoin.hash(), genesis.hash());

    // Each broken rule names its field.
    let broken = [
        ("difficulty", json!("lwma"), "unknown variant `lwma`"),
        (
            "asert_half_life_ms",
            json!(4_000),
            "at least target_block_time_ms",
        ),
        ("max_future_block_time_ms", json!(999), "at least 1000"),
        (
            "max_future_block_time_ms",
            json!(60_000),
            "below asert_half_life_ms",
        ),
        ("max_reorg_depth", json!(0), "at least 1"),
        ("retarget_clamp", json!(0), "at least 1"),
        (
            "retarget_window",
            json!(u64::MAX / 4),
            "unusable with clamp 4",
        ),
    ];
    for (field, value, needle) in broken {
        let mut v = valid_json("pow", 0);
        v["engine"][field] = value;
        assert_field(v, &format!("engine.{field}"), needle);
    }
    // A valid file gives the engine both rules, and an anchor that keeps the initial bits on
    // schedule.
    assert!(p.bitcoin_retarget().is_ok());
    let asert = p.asert().unwrap();
    let anchor = p.asert_anchor(genesis.genesis_time_ms());
    let on_time = genesis.genesis_time_ms() + 3 * p.target_block_time_ms;
    assert_eq!(
        next_bits_asert(&asert, &anchor, 3, on_time),
        Ok(p.initial_bits)
    );
    let late = on_time + p.asert_half_life_ms;
    let eased = next_bits_asert(&asert, &anchor, 3, late).unwrap();
    assert!(Target::from_compact(eased).unwrap() > Target::from_compact(p.initial_bits).unwrap());

    // Bitcoin's difficulty has no half-life to protect, so Bitcoin's own 2 h bound is fine.
    let mut v = valid_json("pow", 0);
    v["engine"]["difficulty"] = json!("bitcoin");
    v["engine"]["max_future_block_time_ms"] = json!(7_200_000);
    assert!(Genesis::from_json(&v.to_string()).is_ok());
}

#[test]
fn chain_id_and_time() {
    let mut v = valid_json("raft", 1);
    v["chain_id"] = json!("has space");
    assert_field(v, "chain_id", "letters, digits");
    let mut v = valid_json("raft", 1);
    v["chain_id"] = json!("");
    assert_field(v, "chain_id", "1 to 64");
    let mut v = valid_json("raft", 1);
    v["genesis_time"] = json!("tomorrow");
    assert_field(v, "genesis_time", "RFC 3339");
}

#[test]
fn broken_json_is_a_clear_error() {
    let err = Genesis::from_json("{ \"chain_id\": ").unwrap_err();
    assert!(matches!(err, GenesisError::Parse(_)));
    assert!(err.to_string().contains("EOF"), "{err}");
    let err = Genesis::from_json("{}").unwrap_err();
    assert!(
        err.to_string().contains("missing field `chain_id`"),
        "{err}"
    );
    let err = Genesis::from_json(&format!("{} trailing", valid_json("raft", 1))).unwrap_err();
    assert!(err.to_string().contains("trailing"), "{err}");
}

#[test]
fn all_problems_are_reported_at_once() {
    let mut v = valid_json("raft", 3);
    v["chain_id"] = json!("bad id");
    v["engine"]["heartbeat_interval_ms"] = json!(1000);
    v["validators"][1]["name"] = json!("node0");
    let err = Genesis::from_json(&v.to_string()).unwrap_err();
    let fields: Vec<&str> = err.fields().iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "chain_id",
            "engine.heartbeat_interval_ms",
            "validators[1].name"
        ]
    );
}

#[test]
fn dev_keys_only_on_dev_chains() {
    let dev = dev_key("test-chain", 2);
    assert_eq!(dev.public(), dev_key("test-chain", 2).public());
    assert_ne!(dev.public(), dev_key("other-chain", 2).public());
    let mut v = valid_json("raft", 3);
    v["validators"][1]["public_key"] = json!(dev.public().to_string());
    assert_field(v.clone(), "validators[1].public_key", "dev key #2");
    v["dev"] = json!(true);
    let genesis = Genesis::from_json(&v.to_string()).unwrap();
    assert!(genesis.check_key_allowed(&dev, "node_key").is_ok());

    let non_dev = Genesis::from_json(&valid_json("raft", 3).to_string()).unwrap();
    let err = non_dev.check_key_allowed(&dev, "node_key").unwrap_err();
    assert!(matches!(
        err,
        GenesisError::DevKeyOnNonDevChain { index: 2, .. }
    ));
    assert!(
        non_dev
            .check_key_allowed(&SecretKey::from_seed([1; 32]), "node_key")
            .is_ok()
    );
}

#[test]
fn testnet_init_writes_a_ready_folder_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let options = TestnetOptions {
        dir: dir.clone(),
        engine: EngineKind::Raft,
        validators: 3,
        accounts: 2,
        balance: 1_000_000,
        chain_id: None,
        dev: true,
        base_port: 0,
        force: false,
        genesis_time_ms: 1_795_424_400_000,
        engine_params: Vec::new(),
        first_account_key: None,
        max_pending_txs: crate::DEFAULT_MAX_PENDING_TXS,
    };
    let manifest = testnet::init(&options).unwrap();
    assert_eq!(manifest.nodes.len(), 3);
    assert_eq!(manifest.accounts.len(), 2);
    let mut ports = std::collections::HashSet::new();
    for (i, node) in manifest.nodes.iter().enumerate() {
        assert!(ports.insert(node.listen.clone()) && ports.insert(node.rpc.clone()));
        let loaded = manifest.home(&dir, i).unwrap().load().unwrap();
        assert_eq!(loaded.config.peers.len(), 2);
        assert_eq!(
            loaded.genesis.validator_index(&loaded.key.public()),
            Some(i)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(loaded.home.key_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
    let genesis = Genesis::load(&dir.join("genesis.json")).unwrap();
    assert!(genesis.dev);
    assert_eq!(TestnetManifest::load(&dir).unwrap(), manifest);

    let err = testnet::init(&options).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    let err = testnet::init(&TestnetOptions {
        force: true,
        max_pending_txs: 999,
        ..options.clone()
    })
    .unwrap_err();
    assert!(err.to_string().contains("max_pending_txs"), "{err}");
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let forced = testnet::init(&TestnetOptions {
        force: true,
        ..options.clone()
    })
    .unwrap();
    assert_eq!(forced.nodes.len(), 3);
    assert!(
        dir.join("notes.txt").exists(),
        "force must not delete foreign files"
    );

    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("x"), "x").unwrap();
    let err = testnet::init(&TestnetOptions {
        dir: other,
        force: true,
        ..options
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("not a synod testnet folder"),
        "{err}"
    );
}

#[test]
fn broken_home_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    testnet::init(&TestnetOptions {
        dir: dir.clone(),
        engine: EngineKind::Raft,
        validators: 1,
        accounts: 0,
        balance: 1,
        chain_id: None,
        dev: false,
        base_port: 0,
        force: false,
        genesis_time_ms: 0,
        engine_params: Vec::new(),
        first_account_key: None,
        max_pending_txs: crate::DEFAULT_MAX_PENDING_TXS,
    })
    .unwrap();
    let home = Home::new(dir.join("node0"));
    home.load().unwrap();
    std::fs::write(home.config_path(), "listen = 5").unwrap();
    assert!(home.load().unwrap_err().to_string().contains("config.toml"));
    let missing = Home::new(dir.join("node9"));
    assert!(
        missing
            .load()
            .unwrap_err()
            .to_string()
            .contains("not a node home")
    );
}

#[test]
fn testnets_of_different_sizes_can_fund_the_same_accounts() {
    let tmp = tempfile::tempdir().unwrap();
    let options = |n: usize, first: Option<u32>| TestnetOptions {
        dir: tmp.path().join(format!("net{n}")),
        engine: EngineKind::Raft,
        validators: n,
        accounts: 2,
        balance: 1_000_000,
        chain_id: Some("synod-same-accounts".into()),
        dev: true,
        base_port: 0,
        force: false,
        genesis_time_ms: 0,
        engine_params: Vec::new(),
        first_account_key: first,
        max_pending_txs: crate::DEFAULT_MAX_PENDING_TXS,
    };
    let three = testnet::init(&options(3, Some(16))).unwrap();
    let five = testnet::init(&options(5, Some(16))).unwrap();
    assert_eq!(three.accounts[0].address, five.accounts[0].address);
    let err = testnet::init(&options(7, Some(4))).unwrap_err();
    assert!(err.to_string().contains("would be a node key"), "{err}");
}
