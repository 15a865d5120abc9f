//! The grouped bar chart: one group of bars per category (a perf event),
//! one bar per implementation in its colour, with min-max error bars over
//! repeats. Categories sit at whole x positions; a log y axis (values per
//! operation span orders of magnitude across events) draws bars up from the
//! bottom of the axis. The legend is a column beside the bars
//! (`line::layout`).

use super::line::{draw_empty, err, frame, layout, mesh, Axis, Entry, Mark};
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
        let entries: Vec<Entry> = self
            .series
            .iter()
            .map(|s| (s.name.clone(), s.colour, Mark::Box))
            .collect();
        let area = layout(root, &self.title, &entries)?;
        let mut chart = frame(&area, (x0, x1, xticks), (y0, y1, yticks))?;
        let cats = &self.categories;
        let (yf, y_label) = self.y.ticks.for_axis(&self.y.label, sy, y0, y1);
        mesh(
            &mut chart,
            ("perf event", &|t| {
                cats.get(t.round().max(0.0) as usize)
                    .cloned()
                    .unwrap_or_default()
            }),
            (&y_label, &|t| sy.label(*t, yf)),
            false,
        )?;

        let k = self.series.len().max(1) as f64;
        let width = 0.8 / k;
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
                if let Some((Some(l), Some(h))) = e.map(|(l, h)| (sy.forward(l), sy.forward(h))) {
                    let mid = left + width * 0.46;
                    whiskers.push(PathElement::new(
                        vec![(mid, l), (mid, h)],
                        BLACK.stroke_width(1),
                    ));
                }
            }
            chart.draw_series(bars).map_err(err)?;
            chart.draw_series(whiskers).map_err(err)?;
        }
        root.present().map_err(err)
    }
}
