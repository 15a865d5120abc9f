//! The line chart every curve of the lab is drawn with: percentile curves,
//! figures against a parameter, round time over a run, and `lab profile`'s
//! time series ([`time_series`]).
//!
//! A [`LineChart`] is data only: a title, two [`Axis`] (label, scale, tick
//! format) and named [`Series`] of points in data units, each point with an
//! optional error bar. [`LineChart::draw`] draws it on any plotters backend,
//! so one description gives the SVG and the PNG. Points a scale cannot show
//! (zero on a log axis) are left out rather than failing the plot. The
//! legend goes in the corner of the plot the data leaves emptiest.

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

/// Pick the corner the data leaves emptiest, from points in `0..=1` page
/// fractions (y up).
pub(super) fn legend_corner(points: &[(f64, f64)]) -> SeriesLabelPosition {
    let corners = [
        (SeriesLabelPosition::UpperLeft, 0.0, 0.45, 0.55, 1.0),
        (SeriesLabelPosition::UpperRight, 0.55, 1.0, 0.55, 1.0),
        (SeriesLabelPosition::LowerRight, 0.55, 1.0, 0.0, 0.45),
        (SeriesLabelPosition::LowerLeft, 0.0, 0.45, 0.0, 0.45),
    ];
    let count = |(x0, x1, y0, y1): (f64, f64, f64, f64)| {
        points
            .iter()
            .filter(|(x, y)| (x0..=x1).contains(x) && (y0..=y1).contains(y))
            .count()
    };
    let mut best = 0;
    let mut best_n = usize::MAX;
    for (i, c) in corners.iter().enumerate() {
        let n = count((c.1, c.2, c.3, c.4));
        if n < best_n {
            best = i;
            best_n = n;
        }
    }
    corners[best].0.clone()
}

/// The chart's frame: title, margins, label areas, on `x` by `y`, each
/// `(low, high, ticks)` in drawing coordinates.
pub(super) fn frame<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
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
    ChartBuilder::on(root)
        .caption(title, (FAMILY, style::title_pt(title)))
        .margin(14)
        .margin_right(34)
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

/// The legend, in the corner the data (`points`, drawing coordinates)
/// leaves emptiest.
pub(super) fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>,
    points: &[(f64, f64)],
) -> Result<(), String> {
    let (x, y) = (chart.x_range(), chart.y_range());
    let frac: Vec<(f64, f64)> = points
        .iter()
        .map(|(px, py)| {
            (
                (px - x.start) / (x.end - x.start),
                (py - y.start) / (y.end - y.start),
            )
        })
        .collect();
    chart
        .configure_series_labels()
        .position(legend_corner(&frac))
        .label_font((FAMILY, style::LEGEND_PT))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(err)
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

        let mut chart = frame(root, &self.title, (x0, x1, xticks), (y0, y1, yticks))?;
        let (xf, yf) = (self.x.ticks, self.y.ticks);
        mesh(
            &mut chart,
            (&self.x.label, &|t| sx.label(*t, xf)),
            (&self.y.label, &|t| sy.label(*t, yf)),
            true,
        )?;

        let cap = (x1 - x0) * 0.008;
        for (s, pts) in self.series.iter().zip(&lines) {
            let line = ShapeStyle::from(&s.colour).stroke_width(2);
            let xy: Vec<(f64, f64)> = pts.iter().map(|&(x, y, _, _)| (x, y)).collect();
            let a = chart
                .draw_series(LineSeries::new(xy.clone(), line))
                .map_err(err)?;
            if s.legend {
                a.label(&s.name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], line));
            }
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
        legend(&mut chart, &all)?;
        root.present().map_err(err)
    }
}
