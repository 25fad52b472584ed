//! The aserti3-2d conformance vectors (Bitcoin Cash, 2020-11-15), every line of every run.
//!
//! Data: `testdata/asert/` (see its README). Each line names the tip (height, time) and the bits
//! required of its child; the run's header gives the anchor.
#![allow(clippy::unwrap_used)]

use synod_chain::pow::asert::{AsertAnchor, AsertParams, next_bits_asert};

struct Run {
    name: String,
    anchor: AsertAnchor,
    iterations: usize,
    /// (height, time, expected bits) per line.
    lines: Vec<(u64, u64, u32)>,
}

fn parse_bits(text: &str) -> u32 {
    u32::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

fn read_run(name: &str) -> Run {
    let path = format!("{}/../testdata/asert/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let header = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("##")?.trim().strip_prefix(key))
            .map(|v| v.trim_start_matches(':').trim().to_string())
            .unwrap_or_else(|| panic!("{name}: no {key}"))
    };
    let anchor = AsertAnchor {
        height: header("anchor height").parse().unwrap(),
        parent_timestamp: header("anchor ancestor time").parse().unwrap(),
        bits: parse_bits(&header("anchor nBits")),
    };
    let iterations = header("iterations").parse().unwrap();
    let lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(fields.len(), 4, "{name}: {l}");
            (
                fields[1].parse().unwrap(),
                fields[2].parse().unwrap(),
                parse_bits(fields[3]),
            )
        })
        .collect();
    Run {
        name: name.to_string(),
        anchor,
        iterations,
        lines,
    }
}

#[test]
fn every_published_vector() {
    let params = AsertParams::new(600, 172_800, 0x1d00ffff).unwrap();
    let mut total = 0;
    for i in 1..=10 {
        let run = read_run(&format!("run{i:02}"));
        assert_eq!(run.lines.len(), run.iterations, "{}", run.name);
        for &(height, time, expected) in &run.lines {
            let bits = next_bits_asert(&params, &run.anchor, height, time).unwrap();
            assert_eq!(
                bits, expected,
                "{} height {height} time {time}: got {bits:08x}, want {expected:08x}",
                run.name
            );
        }
        total += run.lines.len();
    }
    assert_eq!(
        total,
        10 + 10 + 10 + 225 + 225 + 1000 + 1000 + 500 + 10 + 10
    );
}
