//! The line chart every curve of the lab is drawn with: percentile curves,
//! figures against a parameter, round time over a run, and `lab profile`'s
//! time series ([`time_series`]).
//!
//! A [`LineChart`] is data only: a title, two [`Axis`] (label, scale, tick
//! format) and named [`Series`] of points in data units, each point with an
//! optional error bar. [`LineChart::draw`] draws it on any plotters backend,
//! so one description gives the SVG and the PNG. Points a scale cannot show
//! (zero on a log axis) are left out rather than failing the plot. The
//! legend goes in a column to the right of the plot area, never over the
//! data ([`layout`]); an axis of nanoseconds is labelled with its one unit
//! (`style::TickFormat::for_axis`).

use super::style::{self, Scale, TickFormat, Ticked, FAMILY};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One axis of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// With its unit: `guest writes per second`, `latency`.
    pub label: String,
    pub scale: Scale,
    pub ticks: TickFormat,
    /// A linear axis starts at 0 (counts, rates, times).
    pub zero: bool,
    /// Ticks at the data's own x values (vCPU counts), not round numbers.
    pub ticks_at_data: bool,
}

impl Axis {
    pub fn new(label: impl Into<String>, scale: Scale, ticks: TickFormat) -> Axis {
        Axis {
            label: label.into(),
            scale,
            ticks,
            zero: scale == Scale::Linear,
            ticks_at_data: false,
        }
    }
}

/// One point; `err` is the `(low, high)` of an error bar in y data units.
/// A `hollow` point's marker is an open circle: its runs differ from their
/// neighbours' in a way the line does not show (in a sweep, an `auto`
/// `mmu_lock` that parked), which the chart's title says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub err: Option<(f64, f64)>,
    pub hollow: bool,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Point {
        Point {
            x,
            y,
            err: None,
            hollow: false,
        }
    }
}

/// A named line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub colour: RGBColor,
    pub points: Vec<Point>,
    /// Draw a dot at each point (sparse data such as a sweep).
    pub markers: bool,
    /// Show in the legend (off for a repeat of a name already shown).
    pub legend: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
}

/// A time series chart for `lab profile`: linear axes, one line per named
/// series, colours in series order.
pub fn time_series(
    title: &str,
    x_label: &str,
    y_label: &str,
    y_ticks: TickFormat,
    series: Vec<(String, Vec<(f64, f64)>)>,
) -> LineChart {
    LineChart {
        title: title.into(),
        x: Axis::new(x_label, Scale::Linear, TickFormat::Si),
        y: Axis::new(y_label, Scale::Linear, y_ticks),
        series: series
            .into_iter()
            .enumerate()
            .map(|(i, (name, pts))| Series {
                name,
                colour: style::series_colour(i),
                points: pts.into_iter().map(|(x, y)| Point::new(x, y)).collect(),
                markers: false,
                legend: true,
            })
            .collect(),
    }
}

pub(super) fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing failed: {e:?}")
}

/// How a legend entry is drawn: a line (line charts) or a box (bars).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mark {
    Line,
    Box,
}

/// One legend entry.
pub(super) type Entry = (String, RGBColor, Mark);

/// The page of a chart: the title across the top, then the plot area and,
/// when there are `entries`, a legend column to its right, as wide as its
/// longest name (at most 40% of the page). The legend is drawn here; the
/// plot area is returned.
pub(super) fn layout<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    entries: &[Entry],
) -> Result<DrawingArea<DB, Shift>, String> {
    let body = root
        .titled(title, (FAMILY, style::title_pt(title)))
        .map_err(err)?;
    if entries.is_empty() {
        return Ok(body);
    }
    let font: TextStyle = (FAMILY, style::LEGEND_PT).into();
    let text_w = entries
        .iter()
        .map(|(name, _, _)| {
            body.estimate_text_size(name, &font)
                .map(|(w, _)| w)
                .unwrap_or(8 * name.len() as u32)
        })
        .max()
        .unwrap_or(0);
    let (w, _) = body.dim_in_pixel();
    let legend_w = (text_w + 44).min(w * 2 / 5);
    let (plot, legend) = body.split_horizontally(w - legend_w);
    let row = (style::LEGEND_PT as f64 * 1.6) as i32;
    // Level with the top of the plot area (below the chart's margin).
    let top = 14 + row / 2;
    for (i, (name, colour, mark)) in entries.iter().enumerate() {
        let y = top + i as i32 * row;
        match mark {
            Mark::Line => legend
                .draw(&PathElement::new(
                    vec![(6, y), (28, y)],
                    ShapeStyle::from(colour).stroke_width(2),
                ))
                .map_err(err)?,
            Mark::Box => legend
                .draw(&Rectangle::new([(10, y - 6), (24, y + 6)], colour.filled()))
                .map_err(err)?,
        }
        legend
            .draw(&Text::new(
                name.clone(),
                (34, y - style::LEGEND_PT as i32 / 2 - 1),
                (FAMILY, style::LEGEND_PT),
            ))
            .map_err(err)?;
    }
    Ok(plot)
}

/// The chart's frame on the plot area: margins and label areas, on `x` by
/// `y`, each `(low, high, ticks)` in drawing coordinates.
pub(super) fn frame<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    (x0, x1, xticks): (f64, f64, Vec<f64>),
    (y0, y1, yticks): (f64, f64, Vec<f64>),
) -> Result<ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>, String> {
    let x = Ticked {
        lo: x0,
        hi: x1,
        ticks: xticks,
    };
    let y = Ticked {
        lo: y0,
        hi: y1,
        ticks: yticks,
    };
    ChartBuilder::on(area)
        .margin(14)
        .margin_right(24)
        .x_label_area_size(52)
        .y_label_area_size(84)
        .build_cartesian_2d(x, y)
        .map_err(err)
}

/// Axes, tick labels (`(description, formatter)` per axis) and grid; the
/// vertical grid lines only with `x_grid`.
pub(super) fn mesh<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>,
    (x_desc, x_fmt): (&str, &dyn Fn(&f64) -> String),
    (y_desc, y_fmt): (&str, &dyn Fn(&f64) -> String),
    x_grid: bool,
) -> Result<(), String> {
    let mut m = chart.configure_mesh();
    m.x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_fmt)
        .y_label_formatter(y_fmt)
        .label_style((FAMILY, style::TICK_PT))
        .axis_desc_style((FAMILY, style::LABEL_PT))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT);
    if !x_grid {
        m.disable_x_mesh();
    }
    m.draw().map_err(err)
}

/// Draw a title and a line of text where a chart has nothing to show.
pub(super) fn draw_empty<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    why: &str,
) -> Result<(), String> {
    let root = root
        .titled(title, (FAMILY, style::title_pt(title)))
        .map_err(err)?;
    let (w, h) = root.dim_in_pixel();
    root.draw(&Text::new(
        why.to_string(),
        (w as i32 / 2 - 80, h as i32 / 2),
        (FAMILY, style::LABEL_PT),
    ))
    .map_err(err)
}

impl LineChart {
    /// Draw on `root` (filled white first).
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        style::ensure_font()?;
        root.fill(&WHITE).map_err(err)?;
        let (sx, sy) = (self.x.scale, self.y.scale);
        // Everything in drawing coordinates; undrawable points dropped.
        // `(x, y, optional (low, high), hollow)` per drawable point.
        type Drawn = (f64, f64, Option<(f64, f64)>, bool);
        let lines: Vec<Vec<Drawn>> = self
            .series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .filter_map(|p| {
                        let e = p
                            .err
                            .and_then(|(lo, hi)| Some((sy.forward(lo)?, sy.forward(hi)?)));
                        Some((sx.forward(p.x)?, sy.forward(p.y)?, e, p.hollow))
                    })
                    .collect()
            })
            .collect();
        let all: Vec<(f64, f64)> = lines
            .iter()
            .flatten()
            .flat_map(|&(x, y, e, _)| {
                let mut v = vec![(x, y)];
                if let Some((lo, hi)) = e {
                    v.push((x, lo));
                    v.push((x, hi));
                }
                v
            })
            .collect();
        if all.is_empty() {
            return draw_empty(root, &self.title, "no data to draw");
        }
        let fold = |f: fn(&(f64, f64)) -> f64| {
            all.iter()
                .map(f)
                .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        let (xmin, xmax) = fold(|p| p.0);
        let (ymin, ymax) = fold(|p| p.1);
        let (x0, x1) = sx.range(xmin, xmax, self.x.zero);
        let (y0, y1) = sy.range(ymin, ymax, self.y.zero);
        let xdata: Vec<f64> = if self.x.ticks_at_data {
            self.series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.x))
                .collect()
        } else {
            Vec::new()
        };
        let xticks = if self.x.ticks_at_data && sx == Scale::Linear {
            let mut v: Vec<f64> = xdata.clone();
            v.sort_by(f64::total_cmp);
            v.dedup();
            if v.len() <= 12 {
                v
            } else {
                sx.ticks(x0, x1, &[])
            }
        } else {
            sx.ticks(x0, x1, &xdata)
        };
        let yticks = sy.ticks(y0, y1, &[]);

        let entries: Vec<Entry> = self
            .series
            .iter()
            .filter(|s| s.legend)
            .map(|s| (s.name.clone(), s.colour, Mark::Line))
            .collect();
        let area = layout(root, &self.title, &entries)?;
        let mut chart = frame(&area, (x0, x1, xticks), (y0, y1, yticks))?;
        let (xf, x_label) = self.x.ticks.for_axis(&self.x.label, sx, x0, x1);
        let (yf, y_label) = self.y.ticks.for_axis(&self.y.label, sy, y0, y1);
        mesh(
            &mut chart,
            (&x_label, &|t| sx.label(*t, xf)),
            (&y_label, &|t| sy.label(*t, yf)),
            true,
        )?;

        let cap = (x1 - x0) * 0.008;
        for (s, pts) in self.series.iter().zip(&lines) {
            // A thick path is drawn as a polygon with mitred joins, and a
            // jagged series (a round time per round) grows spikes that cross
            // the whole chart in the PNG: long series get a thin line.
            let width = if pts.len() > 100 { 1 } else { 2 };
            let line = ShapeStyle::from(&s.colour).stroke_width(width);
            let xy: Vec<(f64, f64)> = pts.iter().map(|&(x, y, _, _)| (x, y)).collect();
            chart
                .draw_series(LineSeries::new(xy.clone(), line))
                .map_err(err)?;
            if s.markers {
                chart
                    .draw_series(pts.iter().map(|&(x, y, _, hollow)| {
                        let style = if hollow {
                            s.colour.stroke_width(2)
                        } else {
                            s.colour.filled()
                        };
                        Circle::new((x, y), 4, style)
                    }))
                    .map_err(err)?;
            }
            let thin = ShapeStyle::from(&s.colour).stroke_width(1);
            for &(x, _, e, _) in pts {
                if let Some((lo, hi)) = e {
                    chart
                        .draw_series([
                            PathElement::new(vec![(x, lo), (x, hi)], thin),
                            PathElement::new(vec![(x - cap, lo), (x + cap, lo)], thin),
                            PathElement::new(vec![(x - cap, hi), (x + cap, hi)], thin),
                        ])
                        .map_err(err)?;
                }
            }
        }
        root.present().map_err(err)
    }
}
