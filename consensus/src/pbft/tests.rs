use synod_chain::BlockHeader;
use synod_chain::block::{HEADER_VERSION, Seal};
use synod_chain::codec;
use synod_chain::hash::Hash;
use synod_chain::keys::{PublicKey, SecretKey};
use synod_genesis::PbftParams;

use super::messages::MAX_PREPARED;
use super::new_view::select;
use super::*;
use crate::engine::ChainState;
use crate::sim::scenario::Scenario;
use crate::sim::{EngineFactory, Sim, SimConfig, bank};

fn factory(params: PbftParams) -> EngineFactory<PbftEngine> {
    let verifier = Verifier::new();
    Box::new(move |setup, restored| {
        let mut config = PbftConfig::new(
            setup.key.clone(),
            setup.validators.clone(),
            params.clone(),
            setup.seed,
        );
        config.verifier = verifier.clone();
        PbftEngine::new(config, setup.ledger.clone(), restored).map_err(|e| e.to_string())
    })
}

#[test]
fn four_replicas_commit_transactions() {
    let sim = Scenario::new("basic", 4, 7)
        .load(500, 100, 2_000)
        .expect_height(2, 2_500)
        .expect_converged(3_000)
        .run(factory(PbftParams::default()))
        .unwrap_or_else(|f| panic!("{f}"));
    let txs: usize = (1..=sim.height(0))
        .filter_map(|h| sim.block(0, h))
        .map(|b| b.txs.len())
        .sum();
    assert!(txs > 500, "only {txs} transactions committed");
    assert_eq!(sim.status(0).unwrap().role, Role::Leader);
}

#[test]
fn a_single_replica_commits_alone() {
    let mut sim = Sim::new(SimConfig::new(1, 1), factory(PbftParams::default())).unwrap();
    sim.submit(10);
    sim.run_until(1_000).unwrap();
    assert!(sim.height(0) >= 1);
}

#[test]
fn a_restarted_replica_keeps_its_view() {
    let mut sim = Sim::new(SimConfig::new(5, 4), factory(PbftParams::default())).unwrap();
    sim.submit(20);
    sim.run_until(500).unwrap();
    sim.crash(0);
    for _ in 0..40 {
        sim.submit(5);
        let t = sim.now();
        sim.run_until(t + 250).unwrap();
    }
    let view = sim.engine(1).unwrap().view();
    assert!(view >= 1, "the backups replaced the crashed primary");
    sim.crash(1);
    sim.restart(1).unwrap();
    assert_eq!(sim.engine(1).unwrap().view(), view);
}

#[test]
fn damaged_or_inconsistent_state_is_refused() {
    let fx = bank::fixture();
    let chain = ChainState {
        tip: fx.genesis.block.header,
        accounts: fx.genesis.accounts.clone(),
    };
    let key = bank::validator_key(0);
    let config = || PbftConfig::new(key.clone(), vec![key.public()], PbftParams::default(), 1);
    let mut engine_state = std::collections::BTreeMap::new();
    engine_state.insert(b"pbft/view".to_vec(), vec![1, 2, 3]);
    let restored = Restored {
        engine_state,
        chain: chain.clone(),
        recent: Vec::new(),
    };
    assert!(matches!(
        PbftEngine::new(config(), fx.ledger.clone(), restored),
        Err(PbftStateError::Corrupt { .. })
    ));
    // A committed record for a block the chain does not end with.
    let other = header(3, Hash::ZERO, 0);
    let tip = CommittedTip {
        header: other,
        certificate: commit_certificate(
            std::slice::from_ref(&key),
            Ballot {
                view: 0,
                seq: 3,
                digest: other.hash(),
            },
            "c",
        ),
    };
    let mut engine_state = std::collections::BTreeMap::new();
    engine_state.insert(b"pbft/committed".to_vec(), codec::encode(&tip));
    let restored = Restored {
        engine_state,
        chain,
        recent: Vec::new(),
    };
    assert!(matches!(
        PbftEngine::new(config(), fx.ledger.clone(), restored),
        Err(PbftStateError::Inconsistent(_))
    ));
    let mut wrong_key = config();
    wrong_key.me = bank::validator_key(1).public();
    assert!(matches!(
        PbftEngine::new(
            wrong_key,
            fx.ledger.clone(),
            Restored {
                engine_state: Default::default(),
                chain: ChainState {
                    tip: fx.genesis.block.header,
                    accounts: fx.genesis.accounts.clone(),
                },
                recent: Vec::new(),
            }
        ),
        Err(PbftStateError::Config(_))
    ));
}

fn keys(n: usize) -> Vec<SecretKey> {
    (0..n).map(bank::validator_key).collect()
}

fn header(height: u64, parent: Hash, round: u64) -> BlockHeader {
    BlockHeader {
        version: HEADER_VERSION,
        parent,
        height,
        timestamp_ms: 1_000 + height,
        tx_root: Hash::ZERO,
        state_root: Hash([height as u8; 32]),
        proposer: PublicKey::default(),
        seal: Seal {
            round,
            bits: 0,
            nonce: 0,
        },
    }
}

fn commit_certificate(keys: &[SecretKey], ballot: Ballot, chain_id: &str) -> CommitCertificate {
    CommitCertificate {
        ballot,
        signatures: keys
            .iter()
            .map(|k| {
                (
                    k.public(),
                    Signed::sign(k, chain_id, Commit(ballot)).signature,
                )
            })
            .collect(),
    }
}

#[test]
fn commit_certificates_verify_for_anyone_with_the_validator_set() {
    let chain = "cert-chain";
    let keys = keys(4);
    let validators: Vec<NodeId> = keys.iter().map(SecretKey::public).collect();
    let block = header(9, Hash([1; 32]), 2);
    let ballot = Ballot {
        view: 2,
        seq: 9,
        digest: block.hash(),
    };
    let proof = commit_certificate(&keys[..3], ballot, chain).encode();
    let verified = verify_commit_certificate(&validators, chain, block.hash(), 9, &proof).unwrap();
    assert_eq!(verified.ballot, ballot);

    let check =
        |proof: &[u8]| verify_commit_certificate(&validators, chain, block.hash(), 9, proof);
    // One short of a quorum.
    let short = commit_certificate(&keys[..2], ballot, chain).encode();
    assert!(matches!(
        check(&short),
        Err(CertificateError::TooFewSigners { got: 2, needed: 3 })
    ));
    // A replica counted twice.
    let mut twice = commit_certificate(&keys[..3], ballot, chain);
    twice.signatures[2] = twice.signatures[1];
    assert!(matches!(
        check(&twice.encode()),
        Err(CertificateError::DuplicateSigner(_))
    ));
    // A stranger's signature.
    let stranger = SecretKey::from_seed([9; 32]);
    let mut outsider = commit_certificate(&keys[..2], ballot, chain);
    outsider
        .signatures
        .extend(commit_certificate(&[stranger], ballot, chain).signatures);
    assert!(matches!(
        check(&outsider.encode()),
        Err(CertificateError::NotAValidator(_))
    ));
    // A flipped signature byte.
    let mut flipped = commit_certificate(&keys[..3], ballot, chain);
    flipped.signatures[0].1.0[5] ^= 1;
    assert!(matches!(
        check(&flipped.encode()),
        Err(CertificateError::BadSignature { .. })
    ));
    // Another block, another height, another chain, garbage.
    let other = header(9, Hash([2; 32]), 2).hash();
    assert!(matches!(
        verify_commit_certificate(&validators, chain, other, 9, &proof),
        Err(CertificateError::WrongBlock { .. })
    ));
    assert!(verify_commit_certificate(&validators, chain, block.hash(), 10, &proof).is_err());
    assert!(matches!(
        verify_commit_certificate(&validators, "other-chain", block.hash(), 9, &proof),
        Err(CertificateError::BadSignature { .. })
    ));
    assert!(matches!(
        check(&[1, 2, 3]),
        Err(CertificateError::Encoding(_))
    ));
}

fn prepared(view: u64, header: BlockHeader) -> PreparedCertificate {
    PreparedCertificate {
        ballot: Ballot {
            view,
            seq: header.height,
            digest: header.hash(),
        },
        header,
        pre_prepare: Default::default(),
        prepares: Vec::new(),
    }
}

fn view_change(executed: Option<BlockHeader>, prepared: Vec<PreparedCertificate>) -> ViewChange {
    ViewChange {
        view: 9,
        checkpoint: None,
        executed: executed.map(|header| CommittedTip {
            header,
            certificate: CommitCertificate {
                ballot: Ballot {
                    view: 0,
                    seq: header.height,
                    digest: header.hash(),
                },
                signatures: Vec::new(),
            },
        }),
        prepared,
    }
}

#[test]
fn new_view_follows_the_chain_from_the_highest_executed_block() {
    let b5 = header(5, Hash([5; 32]), 1);
    let b6 = header(6, b5.hash(), 1);
    let b7 = header(7, b6.hash(), 2);
    // A certificate at 7 from a later view whose parent is not the block chosen at 6.
    let orphan7 = header(7, Hash([66; 32]), 4);
    let b8 = header(8, b7.hash(), 2);
    let vcs = [
        view_change(Some(b5), vec![prepared(1, b6), prepared(2, b7)]),
        view_change(Some(b6), vec![prepared(4, orphan7), prepared(2, b8)]),
        view_change(None, vec![]),
    ];
    let refs: Vec<&ViewChange> = vcs.iter().collect();
    let selection = select(&refs, false);
    assert_eq!(selection.base, 6, "the highest certified executed block");
    let chosen: Vec<Hash> = selection.chosen.iter().map(|c| c.ballot.digest).collect();
    assert_eq!(
        chosen,
        vec![b7.hash(), b8.hash()],
        "the chain, not the highest view alone"
    );
    assert_eq!(selection.end(), 8);
    assert!(
        select(&refs, true).chosen.is_empty(),
        "the broken variant forgets them"
    );

    // The highest view wins among certificates that extend the chain.
    let b7_later = header(7, b6.hash(), 3);
    let vcs = [
        view_change(Some(b6), vec![prepared(2, b7)]),
        view_change(Some(b6), vec![prepared(3, b7_later)]),
    ];
    let refs: Vec<&ViewChange> = vcs.iter().collect();
    assert_eq!(
        select(&refs, false).chosen[0].ballot.digest,
        b7_later.hash()
    );

    // A gap stops the chain: nothing is chosen above it.
    let b9 = header(9, b8.hash(), 2);
    let vcs = [view_change(
        Some(b6),
        vec![prepared(2, b7), prepared(2, b9)],
    )];
    let refs: Vec<&ViewChange> = vcs.iter().collect();
    assert_eq!(select(&refs, false).end(), 7);

    // From genesis any certified block at height 1 extends it.
    let g1 = header(1, Hash([7; 32]), 0);
    let vcs = [view_change(None, vec![prepared(0, g1)])];
    let refs: Vec<&ViewChange> = vcs.iter().collect();
    assert_eq!(select(&refs, false).end(), 1);
}

#[test]
fn oversized_sequences_are_refused_before_allocation() {
    let b = header(1, Hash::ZERO, 0);
    let too_many = view_change(None, vec![prepared(0, b); MAX_PREPARED + 1]);
    let key = SecretKey::from_seed([3; 32]);
    let msg = PbftMessage::ViewChange {
        view_change: Box::new(Signed::sign(&key, "c", too_many)),
        blocks: Vec::new(),
    };
    assert!(PbftMessage::decode(&msg.encode()).is_err());
    let fine = PbftMessage::ViewChange {
        view_change: Box::new(Signed::sign(
            &key,
            "c",
            view_change(None, vec![prepared(0, b)]),
        )),
        blocks: Vec::new(),
    };
    assert_eq!(PbftMessage::decode(&fine.encode()).unwrap(), fine);
    let mut huge = vec![6u8, 0, 0, 0];
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(PbftMessage::decode(&huge).is_err());
    assert!(codec::decode::<CommitCertificate>(&[0; 8], 1 << 20).is_err());
}

#[test]
fn byzantine_behaviours_parse_and_print() {
    for behaviour in ByzantineBehaviour::ALL {
        assert_eq!(
            behaviour.to_string().parse::<ByzantineBehaviour>(),
            Ok(behaviour)
        );
    }
    let address = bank::fixture().addresses[2];
    let censor = ByzantineBehaviour::Censor(Some(address));
    assert_eq!(censor.to_string().parse::<ByzantineBehaviour>(), Ok(censor));
    assert!("lie".parse::<ByzantineBehaviour>().is_err());
}

#[test]
fn the_engine_can_move_to_the_driver_thread() {
    fn send<T: Send + 'static>() {}
    send::<PbftEngine>();
    send::<PbftMessage>();
}
