//! The look every plot shares: the bundled font, one colour per
//! implementation, sizes, and the axis scales with their ticks.
//!
//! **Font.** plotters draws text through `ab_glyph` from fonts registered
//! at run time, so `lab plot` needs no fontconfig or FreeType: DejaVu Sans
//! (`harness/assets/fonts/`, licence beside it) is compiled into the binary
//! and registered once as `sans-serif`. The SVG files name `sans-serif` and
//! let the viewer pick its own; the PNG files are drawn with DejaVu Sans.
//!
//! **Colours.** An implementation has the same colour in every plot of
//! every report: the designs of `lab list` have fixed colours (Tableau 10,
//! the baseline `mmu-lock` in dark grey), and any other name takes one of
//! the remaining colours by a hash of the name, so it is stable too.
//!
//! **Scales.** Each axis is drawn on plotters' plain `f64` coordinates
//! after a transform, with the ticks chosen here ([`Scale::ticks`]) and
//! labelled in data units: `Log10` for latencies (decades, with 2 and 5
//! between when the range is short), `Log2` for vCPUs and chain lengths
//! (ticks at the values present), `Nines` for percentile curves (x =
//! log10(1/(1-q)): 0%, 90%, 99%, 99.9%, ...), and `Linear`.

use plotters::style::{FontStyle, RGBColor};
use std::sync::OnceLock;

/// Size of every plot, readable in a README.
pub const SIZE: (u32, u32) = (800, 500);
pub const TITLE_PT: u32 = 22;

/// A title's size: [`TITLE_PT`], smaller for a long title so that it fits
/// the chart's width (about 60 characters fit at full size).
pub fn title_pt(title: &str) -> u32 {
    let n = title.chars().count() as u32;
    if n <= 60 {
        TITLE_PT
    } else {
        (TITLE_PT * 60 / n).max(12)
    }
}
pub const LABEL_PT: u32 = 16;
pub const TICK_PT: u32 = 13;
pub const LEGEND_PT: u32 = 14;
/// The family plotters resolves to the bundled font.
pub const FAMILY: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Register the bundled font with plotters (once per process; idempotent).
pub fn ensure_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS)
            .map_err(|_| "the bundled font does not load".to_string())
    })
    .clone()
}

const MMU_LOCK_GREY: RGBColor = RGBColor(0x4d, 0x4d, 0x4d);
/// Tableau 10, less its grey.
const PALETTE: [RGBColor; 9] = [
    RGBColor(0x4e, 0x79, 0xa7), // blue
    RGBColor(0xf2, 0x8e, 0x2b), // orange
    RGBColor(0xe1, 0x57, 0x59), // red
    RGBColor(0x59, 0xa1, 0x4f), // green
    RGBColor(0xb0, 0x7a, 0xa1), // purple
    RGBColor(0x76, 0xb7, 0xb2), // teal
    RGBColor(0xed, 0xc9, 0x48), // yellow
    RGBColor(0xff, 0x9d, 0xa7), // pink
    RGBColor(0x9c, 0x75, 0x5f), // brown
];

/// The colour of an implementation, the same in every plot.
pub fn impl_colour(name: &str) -> RGBColor {
    // The designs of `lab list`: the faithful lockless design red (it
    // loses writes), its repair green, the rest in the remaining hues.
    match name {
        "mmu-lock" => MMU_LOCK_GREY,
        "seqlock" => PALETTE[0],
        "rmap-lock" => PALETTE[1],
        "lockless" => PALETTE[2],
        "lockless-gen" => PALETTE[3],
        "concurrent-map" => PALETTE[4],
        other => {
            // FNV-1a: stable across runs and builds.
            let h = other.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            });
            PALETTE[5 + (h % 4) as usize]
        }
    }
}

/// The colour of the `i`th series of a chart whose series are not
/// implementations (profile counters).
pub fn series_colour(i: usize) -> RGBColor {
    if i == 0 {
        PALETTE[0]
    } else {
        [
            MMU_LOCK_GREY,
            PALETTE[1],
            PALETTE[2],
            PALETTE[3],
            PALETTE[4],
        ]
        .into_iter()
        .chain(PALETTE[5..].iter().copied())
        .nth((i - 1) % 13)
        .unwrap_or(PALETTE[0])
    }
}

/// How an axis maps data to the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log10,
    Log2,
    /// Quantiles q in [0, 1) drawn at log10(1/(1-q)).
    Nines,
}

/// How tick values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickFormat {
    /// `12.3us`.
    Ns,
    /// `1.23M`.
    Si,
    /// Whole numbers as they are (vCPUs).
    Integer,
}

impl TickFormat {
    /// A tick label: the unit's usual form without trailing zeros, since
    /// ticks sit at round values (`200us`, not `200.0us`; `1k`, `0.01`).
    pub fn format(self, v: f64) -> String {
        let s = match self {
            TickFormat::Ns => crate::record::units::format_ns(v),
            TickFormat::Si => crate::record::units::format_si(v),
            TickFormat::Integer => return format!("{}", v.round()),
        };
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        if num.contains('.') {
            format!("{}{unit}", num.trim_end_matches('0').trim_end_matches('.'))
        } else {
            s.clone()
        }
    }
}

impl Scale {
    /// `Log10` for values whose positive part spans more than `factor`
    /// (their zeros are then left out), else `Linear`.
    pub fn for_values(values: impl IntoIterator<Item = f64>, factor: f64) -> Scale {
        let (lo, hi) = values
            .into_iter()
            .filter(|v| *v > 0.0 && v.is_finite())
            .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if hi > 0.0 && hi / lo > factor {
            Scale::Log10
        } else {
            Scale::Linear
        }
    }

    /// Data value to drawing coordinate (`None` where the scale has no
    /// place for it: zero or below on a log scale, q >= 1 on nines).
    pub fn forward(self, v: f64) -> Option<f64> {
        let t = match self {
            Scale::Linear => v,
            Scale::Log10 if v > 0.0 => v.log10(),
            Scale::Log2 if v > 0.0 => v.log2(),
            Scale::Nines if (0.0..1.0).contains(&v) => -(1.0 - v).log10(),
            _ => return None,
        };
        t.is_finite().then_some(t)
    }

    pub fn inverse(self, t: f64) -> f64 {
        match self {
            Scale::Linear => t,
            Scale::Log10 => 10f64.powf(t),
            Scale::Log2 => 2f64.powf(t),
            Scale::Nines => 1.0 - 10f64.powf(-t),
        }
    }

    /// The drawing range for drawing coordinates spanning `lo..=hi`, with
    /// room around them; `zero` pins a linear range's bottom at 0 when the
    /// data is not negative.
    pub fn range(self, lo: f64, hi: f64, zero: bool) -> (f64, f64) {
        match self {
            Scale::Linear => {
                let lo = if zero && lo >= 0.0 { 0.0 } else { lo };
                let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
                let pad = span * 0.06;
                (if lo == 0.0 { 0.0 } else { lo - pad }, hi + pad)
            }
            Scale::Log10 => {
                // Whole decades, unless that wastes most of a decade.
                let a = if lo - lo.floor() > 0.6 {
                    lo - 0.1
                } else {
                    lo.floor()
                };
                let b = if hi.ceil() - hi > 0.6 {
                    hi + 0.1
                } else {
                    hi.ceil()
                };
                if b - a < 0.3 {
                    (a - 0.15, b + 0.15)
                } else {
                    (a, b)
                }
            }
            Scale::Log2 => {
                let pad = ((hi - lo) * 0.06).max(0.25);
                (lo - pad, hi + pad)
            }
            Scale::Nines => (0.0, hi.ceil().max(1.0)),
        }
    }

    /// Tick positions (drawing coordinates) inside `lo..=hi`. `at` are the
    /// data values present, used as ticks on a `Log2` axis.
    pub fn ticks(self, lo: f64, hi: f64, at: &[f64]) -> Vec<f64> {
        match self {
            Scale::Linear => nice_ticks(lo, hi, 7),
            Scale::Nines => (lo.ceil() as i64..=hi.floor() as i64)
                .map(|n| n as f64)
                .collect(),
            Scale::Log2 => {
                let mut v: Vec<f64> = at
                    .iter()
                    .filter_map(|&x| self.forward(x))
                    .filter(|t| (lo..=hi).contains(t))
                    .collect();
                if v.len() < 2 {
                    v = (lo.ceil() as i64..=hi.floor() as i64)
                        .map(|n| n as f64)
                        .collect();
                }
                v.sort_by(f64::total_cmp);
                v.dedup();
                // Too many to label: keep every other one.
                while v.len() > 10 {
                    v = v.into_iter().step_by(2).collect();
                }
                v
            }
            Scale::Log10 => {
                let decades: Vec<f64> = (lo.ceil() as i64..=hi.floor() as i64)
                    .map(|n| n as f64)
                    .collect();
                let mut v = decades.clone();
                if decades.len() <= 3 {
                    for d in (lo.floor() as i64)..=(hi.ceil() as i64) {
                        for m in [2.0f64, 5.0] {
                            let t = d as f64 + m.log10();
                            if (lo..=hi).contains(&t) {
                                v.push(t);
                            }
                        }
                    }
                }
                if v.len() < 2 {
                    v = nice_ticks(lo, hi, 4);
                }
                v.sort_by(f64::total_cmp);
                v
            }
        }
    }

    /// The label of the tick at drawing coordinate `t`.
    pub fn label(self, t: f64, fmt: TickFormat) -> String {
        match self {
            Scale::Nines => {
                // 0 -> 0%, 1 -> 90%, 2 -> 99%, 3 -> 99.9%, ...
                let n = t.round() as i32;
                if n <= 0 {
                    "0%".into()
                } else if n == 1 {
                    "90%".into()
                } else {
                    format!("99.{}%", "9".repeat((n - 2) as usize)).replace("99.%", "99%")
                }
            }
            s => fmt.format(s.inverse(t)),
        }
    }
}

/// A plotters coordinate over drawing coordinates `lo..hi` whose ticks
/// (and grid lines) are exactly `ticks`, labelled by the chart's formatter.
#[derive(Clone, Debug)]
pub struct Ticked {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
}

impl plotters::coord::ranged1d::Ranged for Ticked {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = if self.hi > self.lo {
            (v - self.lo) / (self.hi - self.lo)
        } else {
            0.5
        };
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<H: plotters::coord::ranged1d::KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// About `n` ticks at 1, 2 or 5 times a power of ten inside `lo..=hi`.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_axis_labels_and_positions() {
        assert_eq!(Scale::Nines.forward(0.0), Some(0.0));
        assert!((Scale::Nines.forward(0.99).unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(Scale::Nines.forward(1.0), None);
        let labels: Vec<String> = (0..5)
            .map(|n| Scale::Nines.label(n as f64, TickFormat::Ns))
            .collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    }

    #[test]
    fn log_ticks_are_decades_or_finer_for_short_ranges() {
        let t = Scale::Log10.ticks(2.0, 6.0, &[]);
        assert_eq!(t, vec![2.0, 3.0, 4.0, 5.0, 6.0]);
        let short = Scale::Log10.ticks(3.0, 4.0, &[]);
        let labels: Vec<String> = short
            .iter()
            .map(|&t| Scale::Log10.label(t, TickFormat::Ns))
            .collect();
        assert_eq!(labels, ["1us", "2us", "5us", "10us"]);
        assert_eq!(TickFormat::Si.format(1000.0), "1k");
        assert_eq!(TickFormat::Si.format(0.01), "0.01");
        assert_eq!(TickFormat::Ns.format(2.5e6), "2.5ms");
        assert_eq!(TickFormat::Si.format(250.0), "250");
        let v = Scale::Log2.ticks(-0.3, 5.3, &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0]);
        assert_eq!(v, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
    }

    #[test]
    fn colours_are_stable_and_distinct_for_the_designs() {
        let names = rmap_impls::ImplKind::ALL.map(|k| k.name());
        let c: std::collections::HashSet<(u8, u8, u8)> = names
            .iter()
            .map(|n| {
                let RGBColor(r, g, b) = impl_colour(n);
                (r, g, b)
            })
            .collect();
        assert_eq!(c.len(), names.len());
        assert_eq!(impl_colour("kvm-host"), impl_colour("kvm-host"));
        assert!(!names
            .iter()
            .any(|n| impl_colour(n) == impl_colour("kvm-host")));
    }
}
