//! `synod compare` end to end on a small workload: real testnets, every fault this build can
//! inject, and the reports it writes. Numbers are whatever the machine gives; only their
//! presence, shape and the safety outcome are checked (speed is never asserted).
//!
//! When PBFT lands, the pbft rows turn from `unavailable` to `ok` with no change here but the
//! expectation below, and the byzantine fault gets its own case: Raft's honest nodes diverge
//! (or lose acknowledged transactions) and PBFT's do not.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use synod_tests::testnet::{synod, synod_ok};

const FAULTS: [&str; 3] = ["none", "crash-leader", "partition"];

#[test]
fn compare_writes_a_row_per_engine_and_phase_and_a_self_contained_page() {
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
        let raft = runs
            .iter()
            .find(|r| r["engine"] == "raft" && r["fault"] == fault)
            .unwrap();
        assert_eq!(raft["status"], "ok", "{raft}");
        let phases: Vec<&str> = raft["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["phase"].as_str().unwrap())
            .collect();
        assert_eq!(phases, ["before", "during", "after"]);
        for phase in raft["phases"].as_array().unwrap() {
            for field in ["tx_per_s", "latency_ms", "messages", "bytes", "cpu_percent"] {
                assert!(!phase[field].is_null(), "{fault} {phase}: {field}");
            }
            assert_eq!(phase["cpu_percent"].as_array().unwrap().len(), 3);
        }
        let safety = &raft["safety"];
        assert_eq!(safety["agreement"], true, "{fault}: {safety}");
        assert_eq!(safety["acknowledged_lost"], 0, "{fault}: {safety}");
        assert!(raft["admitted"].as_u64().unwrap() > 0);
        assert!(!raft["reading"].as_str().unwrap().is_empty());
        if fault != "none" {
            assert!(
                raft["recovery"]["fault_to_next_commit_ms"].is_number(),
                "{fault}: {}",
                raft["recovery"]
            );
        }
        let pbft = runs
            .iter()
            .find(|r| r["engine"] == "pbft" && r["fault"] == fault)
            .unwrap();
        assert_eq!(pbft["status"], "unavailable", "{pbft}");
        assert!(
            pbft["reason"]
                .as_str()
                .unwrap()
                .contains("not available in this build"),
            "{pbft}"
        );
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
}

#[test]
fn the_byzantine_fault_is_refused_until_the_node_takes_a_behaviour() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let result = synod(&[
        "compare",
        "--engines",
        "raft",
        "--faults",
        "byzantine",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert!(!result.status.success());
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(err.contains("not available in this build"), "{err}");
}
