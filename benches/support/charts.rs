//! SVG bar charts of a benchmark's tables, for docs/performance.md: grouped bars (one group per
//! cell, one bar per contender) with an optional reference line, drawn with plotters' SVG backend.
//!
//! A bench writes its charts only when `WIREPOOL_BENCH_CHARTS` names a directory
//! (`WIREPOOL_BENCH_CHARTS=docs/img cargo bench --bench pool_core` refreshes the committed
//! ones), so an ordinary or quick run leaves the documentation alone.

use std::error::Error;
use std::path::PathBuf;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Okabe–Ito colours (distinguishable with the common colour-vision deficiencies); a series
/// names its colour by index, so wirepool is vermillion (0) and the limits grey or black (6, 7)
/// in every chart.
pub const COLOURS: [RGBColor; 8] = [
    RGBColor(213, 94, 0),
    RGBColor(0, 114, 178),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];
const FONT: &str = "sans-serif";

/// One panel: `values[s][g]` is series `s`'s bar in group `g` (`None`: not measured).
pub struct Panel {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub groups: Vec<String>,
    /// Each series' legend entry and index into [`COLOURS`].
    pub series: Vec<(String, usize)>,
    pub values: Vec<Vec<Option<f64>>>,
    /// A horizontal line across the panel, and its legend entry.
    pub line: Option<(f64, String)>,
}

/// Where to write charts: the directory `WIREPOOL_BENCH_CHARTS` names, if set.
pub fn dir() -> Option<PathBuf> {
    std::env::var_os("WIREPOOL_BENCH_CHARTS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// The one-minute load average, for a chart's caption (`/proc/loadavg`).
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Writes `panels`, `rows` × `cols` of `panel_size` pixels each, under `caption`, to
/// `<dir>/<name>.svg`, and says so on stderr. A failure is reported, not fatal: the tables
/// are the bench's result.
pub fn write(
    dir: &std::path::Path,
    name: &str,
    caption: &str,
    (rows, cols): (usize, usize),
    panel_size: (u32, u32),
    panels: &[Panel],
) {
    let path = dir.join(format!("{name}.svg"));
    let size = (panel_size.0 * cols as u32, panel_size.1 * rows as u32 + 30);
    let drawn = std::fs::create_dir_all(dir)
        .map_err(|e| Box::new(e) as Box<dyn Error>)
        .and_then(|()| {
            let root = SVGBackend::new(&path, size).into_drawing_area();
            root.fill(&WHITE)?;
            let root = root.titled(caption, (FONT, 16))?;
            for (i, (area, panel)) in root
                .split_evenly((rows, cols))
                .iter()
                .zip(panels)
                .enumerate()
            {
                draw(area, panel, i == 0)?;
            }
            root.present()?;
            Ok(())
        });
    match drawn {
        Ok(()) => eprintln!("chart written: {}", path.display()),
        Err(e) => eprintln!("chart {} not written: {e}", path.display()),
    }
}

/// Width kept right of every panel for the legend, so it never covers a bar.
const LEGEND_WIDTH: u32 = 250;

fn draw(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    p: &Panel,
    legend: bool,
) -> Result<(), Box<dyn Error>> {
    let n = p.groups.len();
    let top = p
        .values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .chain(p.line.as_ref().map(|l| l.0))
        .fold(0.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 14))
        .margin(8)
        .margin_right(LEGEND_WIDTH)
        .x_label_area_size(38)
        .y_label_area_size(62)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..top)?;
    let x_label = |x: &f64| {
        let i = x.round();
        let exact = (x - i).abs() < 1e-9 && i >= 0.0;
        exact
            .then(|| p.groups.get(i as usize).cloned())
            .flatten()
            .unwrap_or_default()
    };
    let y_label = |y: &f64| {
        if top >= 10.0 {
            format!("{y:.0}")
        } else {
            format!("{y:.1}")
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(n + 1)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .x_desc(p.x_desc.as_str())
        .y_desc(p.y_desc.as_str())
        .label_style((FONT, 12))
        .draw()?;
    let width = 0.84 / p.series.len() as f64;
    for (s, ((_, colour), values)) in p.series.iter().zip(&p.values).enumerate() {
        let colour = COLOURS[colour % COLOURS.len()];
        let bars = values.iter().enumerate().filter_map(move |(g, v)| {
            let x0 = g as f64 - 0.42 + s as f64 * width;
            v.map(|v| Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v)], colour.filled()))
        });
        chart.draw_series(bars)?;
    }
    if let Some((y, _)) = &p.line {
        let line = PathElement::new(
            vec![(-0.5, *y), (n as f64 - 0.5, *y)],
            BLACK.stroke_width(1),
        );
        chart.draw_series(std::iter::once(line))?;
    }
    if legend {
        // In the panel's pixels, in the column the chart left free.
        let x = i32::try_from(area.dim_in_pixel().0.saturating_sub(LEGEND_WIDTH)).unwrap_or(0) + 16;
        let mut y = 40;
        for (name, colour) in &p.series {
            let colour = COLOURS[colour % COLOURS.len()];
            area.draw(&Rectangle::new(
                [(x, y - 5), (x + 10, y + 5)],
                colour.filled(),
            ))?;
            area.draw(&Text::new(name.as_str(), (x + 16, y - 7), (FONT, 12)))?;
            y += 20;
        }
        if let Some((_, name)) = &p.line {
            area.draw(&PathElement::new(
                vec![(x, y), (x + 10, y)],
                BLACK.stroke_width(1),
            ))?;
            area.draw(&Text::new(name.as_str(), (x + 16, y - 7), (FONT, 12)))?;
        }
    }
    Ok(())
}
