//! The report's charts, drawn with plotters' SVG backend into strings that the HTML report
//! inlines: throughput over time with the fault marked, latency distributions, messages per
//! block against n, recovery time per fault, and throughput against n.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::plan::{FaultKind, Schedule};
use super::report_json::{Run, ScalePoint};

type Drawn = Result<(), Box<dyn std::error::Error>>;
type Root<'b> = DrawingArea<SVGBackend<'b>, Shift>;
type Plane<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A titled plane over `x` and `y` with its axes described.
fn plane<'a, 'b>(
    root: &'a Root<'b>,
    title: &str,
    (x, x_desc): (Range<f64>, &str),
    (y, y_desc): (Range<f64>, &str),
) -> Result<Plane<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()?;
    Ok(chart)
}

/// One engine's line, labelled for the legend.
fn line(chart: &mut Plane<'_, '_>, engine: &str, label: String, points: Vec<(f64, f64)>) -> Drawn {
    let c = colour(engine);
    chart
        .draw_series(LineSeries::new(points, c.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    Ok(())
}

/// The legend box.
fn legend<'a, 'b: 'a>(chart: &mut Plane<'a, 'b>, position: SeriesLabelPosition) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

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
        let mut chart = plane(
            root,
            &title,
            (0.0..x_max, "seconds since the load started"),
            (0.0..y_max, "tx/s"),
        )?;
        for run in runs {
            let points = run.timeline.iter().map(|(t, v)| (t / 1000.0, *v)).collect();
            let label = format!("{} (n = {})", run.engine, run.validators);
            line(&mut chart, &run.engine, label, points)?;
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
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// The distribution of send-to-commit latency of each engine under `fault`.
pub fn latency_cdf(fault: FaultKind, runs: &[&Run]) -> String {
    let title = format!("Commit latency distribution: {fault}");
    svg(&title, |root| {
        let x_max = top(runs.iter().flat_map(|r| r.latency_cdf.iter().map(|p| p.0)));
        let mut chart = plane(
            root,
            &title,
            (0.0..x_max, "latency, ms"),
            (0.0..1.0, "fraction committed"),
        )?;
        for run in runs {
            line(
                &mut chart,
                &run.engine,
                run.engine.clone(),
                run.latency_cdf.clone(),
            )?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// `value` of each engine against its validator count: one line per engine.
pub fn against_n(title: &str, y_desc: &str, points: &[(String, usize, f64)]) -> String {
    svg(title, |root| {
        let x_max = points.iter().map(|p| p.1).max().unwrap_or(1) as f64 + 1.0;
        let y_max = top(points.iter().map(|p| p.2));
        let mut chart = plane(
            root,
            title,
            (0.0..x_max, "validators (n)"),
            (0.0..y_max, y_desc),
        )?;
        let mut engines: Vec<&String> = points.iter().map(|p| &p.0).collect();
        engines.dedup();
        for engine in engines {
            let mut points: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.0 == *engine)
                .map(|p| (p.1 as f64, p.2))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let c = colour(engine);
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
            line(&mut chart, engine, engine.clone(), points)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Messages per committed block against n, from the scaling run or else the baseline runs.
pub fn messages_per_block(runs: &[Run], scaling: &[ScalePoint]) -> String {
    let points: Vec<(String, usize, f64)> = if scaling.is_empty() {
        runs.iter()
            .filter(|r| r.ok() && r.fault == FaultKind::None)
            .filter_map(|r| {
                let m = r.per_block().0?;
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
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}
