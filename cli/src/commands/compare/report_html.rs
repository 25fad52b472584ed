//! `report.html`: one self-contained file (inline CSS and SVG charts, nothing fetched from
//! anywhere) with the readings, the table of every run and phase, and the charts.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use super::charts;
use super::plan::FaultKind;
use super::report_json::{Report, Run};

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222}\
table{border-collapse:collapse;font-size:13px;margin:1em 0}\
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}\
th{background:#f0f0f0}td.l,th.l{text-align:left}\
.bad{color:#b00;font-weight:bold}.ok{color:#070}\
figure{margin:1.5em 0}figcaption{font-size:13px;color:#555}";

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

fn safety_cell(run: &Run) -> String {
    let s = &run.safety;
    if !s.agreement {
        format!(
            "<span class=bad>diverged at {:?}</span>",
            s.divergent_heights.iter().take(5).collect::<Vec<_>>()
        )
    } else if s.acknowledged_lost > 0 || s.reorgs > 0 {
        format!(
            "<span class=bad>{} lost, {} reorgs</span>",
            s.acknowledged_lost, s.reorgs
        )
    } else {
        format!(
            "<span class=ok>agree over {} heights, nothing lost</span>",
            s.heights_checked
        )
    }
}

fn runs_table(report: &Report) -> String {
    let mut out = String::from(
        "<table><tr><th class=l>engine</th><th>n</th><th class=l>fault</th><th class=l>phase</th>\
         <th>tx/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>msgs/block</th>\
         <th>bytes/block</th><th>CPU % per node</th><th>to next commit ms</th><th>to 90% ms</th>\
         <th class=l>safety</th></tr>",
    );
    for run in &report.runs {
        if !run.ok() {
            let _ = write!(
                out,
                "<tr><td class=l>{}</td><td>{}</td><td class=l>{}</td><td class=l colspan=11>{}: {}</td></tr>",
                escape(&run.engine),
                run.validators,
                run.fault,
                escape(&run.status),
                escape(run.reason.as_deref().unwrap_or(""))
            );
            continue;
        }
        for (k, p) in run.phases.iter().enumerate() {
            let first = k == 0;
            let cpu: Vec<String> = p.cpu_percent.iter().map(|c| format!("{c:.0}")).collect();
            let _ = write!(
                out,
                "<tr><td class=l>{}</td><td>{}</td><td class=l>{}</td><td class=l>{}</td><td>{:.0}</td>\
                 <td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=l>{}</td></tr>",
                escape(&run.engine),
                run.validators,
                run.fault,
                p.phase,
                p.tx_per_s,
                p.latency_ms.p50,
                p.latency_ms.p90,
                p.latency_ms.p99,
                opt(p.messages_per_block),
                opt(p.bytes_per_block),
                cpu.join(" "),
                if first {
                    opt(run.recovery.fault_to_next_commit_ms)
                } else {
                    String::new()
                },
                if first {
                    opt(run.recovery.fault_to_90pct_ms)
                } else {
                    String::new()
                },
                if first {
                    safety_cell(run)
                } else {
                    String::new()
                },
            );
        }
    }
    out.push_str("</table>");
    out
}

fn figure(svg: String, caption: &str) -> String {
    format!(
        "<figure>{svg}<figcaption>{}</figcaption></figure>",
        escape(caption)
    )
}

/// One chart of the report: inline in the page, and a file of its own.
pub struct Chart {
    /// File name without extension (`throughput-crash-leader`).
    pub name: String,
    /// The SVG element, without a namespace declaration (inline in HTML it needs none).
    pub svg: String,
    /// What it shows.
    pub caption: &'static str,
}

/// Every chart of the report, in page order.
pub fn charts(report: &Report) -> Vec<Chart> {
    let mut out = Vec::new();
    for fault in &report.config.faults {
        let runs: Vec<&Run> = report
            .runs
            .iter()
            .filter(|r| r.ok() && r.fault == *fault)
            .collect();
        if runs.is_empty() {
            continue;
        }
        out.push(Chart {
            name: format!("throughput-{fault}"),
            svg: charts::throughput(*fault, &runs, &report.config.schedule),
            caption: "Committed transactions per second, in half-second bins; the vertical lines mark the fault and its recovery.",
        });
        out.push(Chart {
            name: format!("latency-{fault}"),
            svg: charts::latency_cdf(*fault, &runs),
            caption: "Fraction of transactions committed within a given send-to-commit latency.",
        });
    }
    out.push(Chart {
        name: "messages-per-block".into(),
        svg: charts::messages_per_block(&report.runs, &report.scaling),
        caption: "Consensus messages all nodes sent per committed block, against the number of validators.",
    });
    if report.config.faults.iter().any(|f| *f != FaultKind::None) {
        out.push(Chart {
            name: "recovery".into(),
            svg: charts::recovery(&report.runs, &report.config.faults),
            caption: "Time from injecting each fault to the next committed block.",
        });
    }
    if !report.scaling.is_empty() {
        let points: Vec<(String, usize, f64)> = report
            .scaling
            .iter()
            .filter(|p| p.status == "ok")
            .map(|p| (p.engine.clone(), p.validators, p.tx_per_s))
            .collect();
        out.push(Chart {
            name: "scaling".into(),
            svg: charts::against_n("Committed tx/s against n", "tx/s", &points),
            caption: "Throughput of the same workload as the validator set grows.",
        });
    }
    out
}

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>synod compare</h1><p><code>{}</code></p><p>{} transactions per run at {} tx/s, \
         the same signed transactions for every engine; the fault at {:.1} s, recovery at {:.1} s. \
         Sizing: {}.</p>",
        escape(&report.command),
        report.config.txs,
        report.config.rate,
        report.config.schedule.fault_at.as_secs_f64(),
        report.config.schedule.recover_at.as_secs_f64(),
        escape(&report.config.sizing_reason),
    );
    body.push_str("<h2>What it shows</h2><ul>");
    for reading in &report.readings {
        let _ = write!(body, "<li>{}</li>", escape(reading));
    }
    body.push_str("</ul><h2>Every run and phase</h2>");
    body.push_str(&runs_table(report));
    body.push_str("<h2>Charts</h2>");
    for chart in charts(report) {
        body.push_str(&figure(chart.svg, chart.caption));
    }
    format!(
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>synod compare</title>\
         <style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
}

/// Writes the page to `path`.
pub fn write(report: &Report, path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, render(report)).with_context(|| format!("writing {}", path.display()))
}

/// Writes each chart as a standalone SVG file into `dir` (for a README or a slide), with the
/// namespace declaration a file needs to be shown as an image. Returns how many it wrote.
pub fn write_charts(report: &Report, dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = 0;
    for chart in charts(report) {
        // A chart that could not be drawn is a note, not an SVG: the page has it, no file does.
        let Some(rest) = chart.svg.strip_prefix("<svg") else {
            continue;
        };
        let file = dir.join(format!("{}.svg", chart.name));
        let svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\"{rest}");
        std::fs::write(&file, svg).with_context(|| format!("writing {}", file.display()))?;
        written += 1;
    }
    Ok(written)
}
