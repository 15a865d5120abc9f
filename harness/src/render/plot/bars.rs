//! The grouped bar chart: one group of bars per category (a perf event),
//! one bar per implementation in its colour, with min-max error bars over
//! repeats. Categories sit at whole x positions; a log y axis (values per
//! operation span orders of magnitude across events) draws bars up from the
//! bottom of the axis.

use super::line::{draw_empty, err, frame, legend, mesh, Axis};
use super::style;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One bar: its value and, for repeats, its `(low, high)` whisker.
pub type Bar = (f64, Option<(f64, f64)>);

/// One implementation's bars: a value (and range) per category.
#[derive(Clone, Debug, PartialEq)]
pub struct BarSeries {
    pub name: String,
    pub colour: RGBColor,
    /// Per category: the bar, if the series has one there.
    pub values: Vec<Option<Bar>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub categories: Vec<String>,
    pub y: Axis,
    pub series: Vec<BarSeries>,
}

impl BarChart {
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        style::ensure_font()?;
        root.fill(&WHITE).map_err(err)?;
        let sy = self.y.scale;
        let ys: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .flat_map(|&(v, e)| {
                let mut out = vec![v];
                if let Some((lo, hi)) = e {
                    out.extend([lo, hi]);
                }
                out
            })
            .filter_map(|v| sy.forward(v))
            .collect();
        if ys.is_empty() || self.categories.is_empty() {
            return draw_empty(root, &self.title, "no data to draw");
        }
        let lo = ys.iter().copied().fold(f64::MAX, f64::min);
        let hi = ys.iter().copied().fold(f64::MIN, f64::max);
        let (y0, y1) = sy.range(lo, hi, self.y.zero);
        let n = self.categories.len();
        let (x0, x1) = (-0.5, n as f64 - 0.5);
        let xticks: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let yticks = sy.ticks(y0, y1, &[]);
        let mut chart = frame(root, &self.title, (x0, x1, xticks), (y0, y1, yticks))?;
        let cats = &self.categories;
        let yf = self.y.ticks;
        mesh(
            &mut chart,
            ("perf event", &|t| {
                cats.get(t.round().max(0.0) as usize)
                    .cloned()
                    .unwrap_or_default()
            }),
            (&self.y.label, &|t| sy.label(*t, yf)),
            false,
        )?;

        let k = self.series.len().max(1) as f64;
        let width = 0.8 / k;
        let mut tops = Vec::new();
        for (si, s) in self.series.iter().enumerate() {
            let fill = s.colour.filled();
            let mut bars = Vec::new();
            let mut whiskers = Vec::new();
            for (ci, v) in s.values.iter().enumerate() {
                let Some((v, e)) = *v else { continue };
                let Some(top) = sy.forward(v) else { continue };
                let left = ci as f64 - 0.4 + si as f64 * width;
                bars.push(Rectangle::new(
                    [(left, y0), (left + width * 0.92, top)],
                    fill,
                ));
                // The bar's column, for the legend's placement.
                let mid = left + width / 2.0;
                tops.extend([(mid, top), (mid, (top + y0) / 2.0), (mid, y0)]);
                if let Some((Some(l), Some(h))) = e.map(|(l, h)| (sy.forward(l), sy.forward(h))) {
                    let mid = left + width * 0.46;
                    whiskers.push(PathElement::new(
                        vec![(mid, l), (mid, h)],
                        BLACK.stroke_width(1),
                    ));
                }
            }
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(&s.name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill));
            chart.draw_series(whiskers).map_err(err)?;
        }
        legend(&mut chart, &tops)?;
        root.present().map_err(err)
    }
}
