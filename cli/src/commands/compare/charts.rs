//! The report's charts, drawn with plotters' SVG backend into strings that the HTML report
//! inlines: throughput over time with the fault marked, latency distributions, messages per
//! block against n, recovery time per fault, and throughput against n.

use plotters::prelude::*;

use super::plan::{FaultKind, Schedule};
use super::report_json::{Run, ScalePoint};

type Drawn = Result<(), Box<dyn std::error::Error>>;

const SIZE: (u32, u32) = (720, 320);
const FONT: &str = "sans-serif";

/// The line colour of each engine, the same in every chart.
pub fn colour(engine: &str) -> RGBColor {
    match engine {
        "raft" => RGBColor(31, 119, 180),
        "pbft" => RGBColor(214, 39, 40),
        _ => RGBColor(44, 160, 44),
    }
}

/// Draws with `draw` into an SVG string; a chart that fails to draw becomes a note in its place.
fn svg(
    title: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn,
) -> String {
    let mut out = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
            .and_then(|()| draw(&root))
            .and_then(|()| {
                root.present()
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
            })
    };
    match result {
        // Inline SVG in HTML needs no namespace declaration; leaving it out keeps the file free
        // of any URL.
        Ok(()) => out.replace(" xmlns=\"http://www.w3.org/2000/svg\"", ""),
        Err(e) => format!("<p>{title}: the chart could not be drawn ({e})</p>"),
    }
}

fn top(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0_f64, f64::max).max(1.0) * 1.1
}

/// Committed tx/s over time for each engine under `fault`, with the fault and the recovery
/// marked.
pub fn throughput(fault: FaultKind, runs: &[&Run], schedule: &Schedule) -> String {
    let title = format!("Committed tx/s over time: {fault}");
    svg(&title, |root| {
        let x_max = top(runs
            .iter()
            .flat_map(|r| r.timeline.iter().map(|p| p.0 / 1000.0)));
        let y_max = top(runs.iter().flat_map(|r| r.timeline.iter().map(|p| p.1)));
        let mut chart = ChartBuilder::on(root)
            .caption(&title, (FONT, 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the load started")
            .y_desc("tx/s")
            .draw()?;
        for run in runs {
            let c = colour(&run.engine);
            chart
                .draw_series(LineSeries::new(
                    run.timeline.iter().map(|(t, v)| (t / 1000.0, *v)),
                    c.stroke_width(2),
                ))?
                .label(format!("{} (n = {})", run.engine, run.validators))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        if fault != FaultKind::None {
            for (at, what) in [
                (schedule.fault_at, "fault"),
                (schedule.recover_at, "recovery"),
            ] {
                let x = at.as_secs_f64();
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x, 0.0), (x, y_max)],
                    BLACK.mix(0.6).stroke_width(1),
                )))?;
                chart.draw_series(std::iter::once(Text::new(
                    what.to_string(),
                    (x, y_max * 0.97),
                    (FONT, 13),
                )))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// The distribution of send-to-commit latency of each engine under `fault`.
pub fn latency_cdf(fault: FaultKind, runs: &[&Run]) -> String {
    let title = format!("Commit latency distribution: {fault}");
    svg(&title, |root| {
        let x_max = top(runs.iter().flat_map(|r| r.latency_cdf.iter().map(|p| p.0)));
        let mut chart = ChartBuilder::on(root)
            .caption(&title, (FONT, 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("latency, ms")
            .y_desc("fraction committed")
            .draw()?;
        for run in runs {
            let c = colour(&run.engine);
            chart
                .draw_series(LineSeries::new(
                    run.latency_cdf.iter().copied(),
                    c.stroke_width(2),
                ))?
                .label(run.engine.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// `value` of each engine against its validator count: one line per engine.
pub fn against_n(title: &str, y_desc: &str, points: &[(String, usize, f64)]) -> String {
    svg(title, |root| {
        let x_max = points.iter().map(|p| p.1).max().unwrap_or(1) as f64 + 1.0;
        let y_max = top(points.iter().map(|p| p.2));
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("validators (n)")
            .y_desc(y_desc)
            .draw()?;
        let mut engines: Vec<&String> = points.iter().map(|p| &p.0).collect();
        engines.dedup();
        for engine in engines {
            let c = colour(engine);
            let mut line: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.0 == *engine)
                .map(|p| (p.1 as f64, p.2))
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(line.clone(), c.stroke_width(2)))?
                .label(engine.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart.draw_series(line.into_iter().map(|p| Circle::new(p, 4, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Messages per committed block against n, from the scaling run or else the baseline runs.
pub fn messages_per_block(runs: &[Run], scaling: &[ScalePoint]) -> String {
    let points: Vec<(String, usize, f64)> = if scaling.is_empty() {
        runs.iter()
            .filter(|r| r.ok() && r.fault == FaultKind::None)
            .filter_map(|r| {
                let m = r.phase("during")?.messages_per_block?;
                Some((r.engine.clone(), r.validators, m))
            })
            .collect()
    } else {
        scaling
            .iter()
            .filter_map(|p| Some((p.engine.clone(), p.validators, p.messages_per_block?)))
            .collect()
    };
    against_n(
        "Consensus messages per committed block",
        "messages / block",
        &points,
    )
}

/// From each fault to the next commit, per engine (bars grouped by fault).
pub fn recovery(runs: &[Run], faults: &[FaultKind]) -> String {
    let title = "From the fault to the next commit";
    let faults: Vec<FaultKind> = faults
        .iter()
        .copied()
        .filter(|f| *f != FaultKind::None)
        .collect();
    let mut engines: Vec<&str> = runs
        .iter()
        .filter(|r| r.ok())
        .map(|r| r.engine.as_str())
        .collect();
    engines.dedup();
    svg(title, |root| {
        let value = |engine: &str, fault: FaultKind| {
            runs.iter()
                .find(|r| r.ok() && r.engine == engine && r.fault == fault)
                .and_then(|r| r.recovery.fault_to_next_commit_ms)
        };
        let y_max = top(faults
            .iter()
            .flat_map(|f| engines.iter().filter_map(move |e| value(e, *f))));
        let labels: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..faults.len().max(1) as f64, 0.0..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(faults.len().max(1) * 2 + 1)
            .x_label_formatter(&|x| {
                let i = (x - 0.5).round();
                if (x - 0.5 - i).abs() < 0.01 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("ms")
            .draw()?;
        let width = 0.8 / engines.len().max(1) as f64;
        for (k, engine) in engines.iter().enumerate() {
            let c = colour(engine);
            let bars: Vec<Rectangle<(f64, f64)>> = faults
                .iter()
                .enumerate()
                .filter_map(|(i, f)| {
                    let v = value(engine, *f)?;
                    let x0 = i as f64 + 0.1 + k as f64 * width;
                    Some(Rectangle::new(
                        [(x0, 0.0), (x0 + width * 0.9, v)],
                        c.filled(),
                    ))
                })
                .collect();
            chart
                .draw_series(bars)?
                .label(engine.to_string())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}
