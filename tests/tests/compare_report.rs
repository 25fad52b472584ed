//! `synod compare` end to end on a small workload: real testnets, every fault this build can
//! inject, and the reports it writes. Numbers are whatever the machine gives; only their
//! presence, shape and the safety outcome are checked (speed is never asserted).
//!
//! Raft and PBFT both run every fault. Under the byzantine fault (an equivocating leader) Raft's
//! honest nodes diverge and PBFT's agree and lose nothing.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use synod_tests::testnet::{one_testnet_at_a_time, synod_ok};

const FAULTS: [&str; 3] = ["none", "crash-leader", "partition"];

#[test]
fn compare_writes_a_row_per_engine_and_phase_and_a_self_contained_page() {
    let _serial = one_testnet_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let out_arg = out.to_string_lossy().to_string();
    let table = synod_ok(&[
        "compare",
        "--engines",
        "raft,pbft",
        "--faults",
        &FAULTS.join(","),
        "--txs",
        "900",
        "--rate",
        "300",
        "--accounts",
        "8",
        "--out",
        &out_arg,
    ]);
    assert!(table.contains("report.html"), "{table}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2 * FAULTS.len(), "a run per engine and fault");
    for fault in FAULTS {
        for (engine, n) in [("raft", 3), ("pbft", 4)] {
            let run = runs
                .iter()
                .find(|r| r["engine"] == engine && r["fault"] == fault)
                .unwrap();
            assert_ok_run(run, fault, n);
        }
    }
    let engines = report["engines"].as_array().unwrap();
    assert_eq!(engines[0]["validators"], 3, "raft sized 2f+1 for f = 1");
    assert_eq!(engines[1]["validators"], 4, "pbft sized 3f+1");
    assert!(!report["readings"].as_array().unwrap().is_empty());

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // Throughput and latency per fault, messages per block, recovery.
    assert!(
        html.matches("<svg").count() >= 2 * FAULTS.len() + 2,
        "inline charts"
    );
    for reference in ["src=", "href=", "http://", "https://", "@import", "url("] {
        assert!(!html.contains(reference), "external reference {reference}");
    }
    // Each chart also as a file an image viewer (or a README) shows.
    for fault in FAULTS {
        let file = out.join("charts").join(format!("throughput-{fault}.svg"));
        let svg = std::fs::read_to_string(&file).unwrap();
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{}",
            file.display()
        );
    }
}

/// A run that went through: three phases with every measure, agreement, nothing lost.
fn assert_ok_run(run: &Value, fault: &str, validators: usize) {
    assert_complete_run(run, fault, validators);
    let safety = &run["safety"];
    assert_eq!(safety["agreement"], true, "{fault}: {safety}");
    assert_eq!(safety["acknowledged_lost"], 0, "{fault}: {safety}");
}

/// A run that went through with three phases and every measure, whatever its safety outcome.
fn assert_complete_run(run: &Value, fault: &str, validators: usize) {
    assert_eq!(run["status"], "ok", "{run}");
    let phases: Vec<&str> = run["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["before", "during", "after"]);
    for phase in run["phases"].as_array().unwrap() {
        for field in ["tx_per_s", "latency_ms", "messages", "bytes", "cpu_percent"] {
            assert!(!phase[field].is_null(), "{fault} {phase}: {field}");
        }
        assert_eq!(phase["cpu_percent"].as_array().unwrap().len(), validators);
    }
    assert!(run["admitted"].as_u64().unwrap() > 0);
    assert!(!run["reading"].as_str().unwrap().is_empty());
    if fault != "none" {
        assert!(
            run["recovery"]["fault_to_next_commit_ms"].is_number(),
            "{fault}: {}",
            run["recovery"]
        );
    }
}

/// An equivocating leader, the same fault for both: Raft's followers cannot tell the leader's
/// twin blocks apart and the honest nodes diverge; PBFT's honest replicas agree and lose
/// nothing. The workload runs long enough for the restarted Raft node to lead again.
#[test]
fn a_byzantine_leader_splits_raft_and_not_pbft() {
    let _serial = one_testnet_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    synod_ok(&[
        "compare",
        "--engines",
        "raft,pbft",
        "--faults",
        "byzantine",
        "--txs",
        "1200",
        "--rate",
        "200",
        "--out",
        &out.to_string_lossy(),
    ]);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let runs = report["runs"].as_array().unwrap();
    let raft = runs.iter().find(|r| r["engine"] == "raft").unwrap();
    assert_complete_run(raft, "byzantine", 3);
    let safety = &raft["safety"];
    assert_eq!(safety["agreement"], false, "{raft}");
    assert!(
        !safety["divergent_heights"].as_array().unwrap().is_empty(),
        "{safety}"
    );
    assert!(
        raft["reading"].as_str().unwrap().contains("diverged"),
        "{raft}"
    );
    let pbft = runs.iter().find(|r| r["engine"] == "pbft").unwrap();
    assert_ok_run(pbft, "byzantine", 4);
}
