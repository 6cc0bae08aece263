//! Inline SVG plots, generated as strings: line charts, horizontal bar charts, histograms and a
//! diverging heatmap. Each function returns one self-contained `<svg>` element (with a `viewBox`, so
//! CSS scales it) that is well-formed XML; labels are escaped. Output depends only on the inputs.

use crate::html::{escape, fmt_num};

const AXIS: &str = "#9ca3af";
const GRID: &str = "#eef0f3";
const INK: &str = "#4b5563";
const LINE: &str = "#2563eb";
const BAR: &str = "#60a5fa";

/// Size and labels of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartOpts {
    /// Width of the drawing in SVG units (pixels at 100 %).
    pub width: f64,
    /// Height.
    pub height: f64,
    /// Label under the x axis (may be empty).
    pub x_label: String,
    /// Label beside the y axis (may be empty).
    pub y_label: String,
    /// Accessible description (`<title>` of the drawing).
    pub title: String,
}

impl ChartOpts {
    /// A `width × height` chart with the given axis labels and title.
    pub fn new(width: f64, height: f64, x_label: &str, y_label: &str, title: &str) -> Self {
        Self {
            width,
            height,
            x_label: x_label.into(),
            y_label: y_label.into(),
            title: title.into(),
        }
    }
}

/// About `target` round tick values (steps of 1, 2 or 5 × 10ⁿ) covering `[lo, hi]`, and the step.
///
/// ```
/// let (ticks, step) = cox_report::svg::nice_ticks(0.0, 0.93, 5);
/// assert_eq!(step, 0.2);
/// assert_eq!(ticks.len(), 6); // 0, 0.2, …, 1.0
/// ```
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = mag
        * if norm <= 1.0 {
            1.0
        } else if norm <= 2.0 {
            2.0
        } else if norm <= 5.0 {
            5.0
        } else {
            10.0
        };
    // Round the step to 12 significant digits so that 0.2 prints as 0.2.
    let step = format!("{step:.12e}").parse::<f64>().unwrap_or(step);
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    let ticks = (first..=last)
        .map(|i| {
            let t = i as f64 * step;
            format!("{t:.12e}").parse::<f64>().unwrap_or(t)
        })
        .collect();
    (ticks, step)
}

/// A tick label: as many decimals as the step needs, or scientific notation for large or tiny values.
pub fn tick_label(v: f64, step: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}").replace(".0e", "e");
    }
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    fmt_num(v, decimals)
}

/// Margins (left, right, top, bottom) of the plotting area.
const MARGIN: (f64, f64, f64, f64) = (62.0, 14.0, 12.0, 40.0);

fn open(o: &ChartOpts, class: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart {class}\" viewBox=\"0 0 {} {}\" role=\"img\" font-family=\"system-ui, sans-serif\" font-size=\"11\"><title>{}</title>",
        n(o.width),
        n(o.height),
        escape(&o.title)
    )
}

/// A coordinate with two decimals, trailing zeros trimmed.
fn n(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// The x axis at height `y`: a tick mark and label at each of `ticks` (step `step`, placed by `px`),
/// then the axis line from `ml` to `ml + pw`.
fn x_axis(
    ticks: impl Iterator<Item = f64>,
    step: f64,
    px: &dyn Fn(f64) -> f64,
    ml: f64,
    pw: f64,
    y: f64,
) -> String {
    let mut s = String::new();
    for t in ticks {
        s.push_str(&format!(
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\" stroke=\"{AXIS}\" /><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"{INK}\">{}</text>",
            n(y),
            n(y + 4.0),
            n(y + 16.0),
            escape(&tick_label(t, step)),
            x = n(px(t)),
        ));
    }
    s.push_str(&format!(
        "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{AXIS}\" />",
        n(ml),
        n(ml + pw),
        y = n(y)
    ));
    s
}

fn axis_labels(o: &ChartOpts) -> String {
    let (ml, _, mt, mb) = MARGIN;
    let mut s = String::new();
    if !o.x_label.is_empty() {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{INK}\">{}</text>",
            n(ml + (o.width - ml - MARGIN.1) / 2.0),
            n(o.height - 6.0),
            escape(&o.x_label)
        ));
    }
    if !o.y_label.is_empty() {
        let cy = mt + (o.height - mt - mb) / 2.0;
        s.push_str(&format!(
            "<text x=\"12\" y=\"{}\" text-anchor=\"middle\" fill=\"{INK}\" transform=\"rotate(-90 12 {})\">{}</text>",
            n(cy),
            n(cy),
            escape(&o.y_label)
        ));
    }
    s
}

/// A line chart of `(x, y)` points in order (non-finite points are skipped), with round ticks on
/// both axes, optional point markers and a log₁₀ y axis when `log_y` is set and every y is positive
/// (the y label then says "log scale").
///
/// ```
/// use cox_report::svg::{line_chart, ChartOpts};
/// let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 100.0 / (1.0 + i as f64))).collect();
/// let svg = line_chart(&pts, false, true, &ChartOpts::new(400.0, 200.0, "iteration", "objective", "trace"));
/// assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
/// ```
pub fn line_chart(points: &[(f64, f64)], markers: bool, log_y: bool, o: &ChartOpts) -> String {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let log = log_y && !pts.is_empty() && pts.iter().all(|&(_, y)| y > 0.0);
    let ty = |y: f64| if log { y.log10() } else { y };
    let mut s = open(o, "line");
    let (ml, mr, mt, mb) = MARGIN;
    let (pw, ph) = (o.width - ml - mr, o.height - mt - mb);
    if pts.is_empty() {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{INK}\">no data</text></svg>",
            n(o.width / 2.0),
            n(o.height / 2.0)
        ));
        return s;
    }
    let xmin = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let xmax = pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let ymin = pts.iter().map(|p| ty(p.1)).fold(f64::INFINITY, f64::min);
    let ymax = pts
        .iter()
        .map(|p| ty(p.1))
        .fold(f64::NEG_INFINITY, f64::max);
    let (xt, xs) = nice_ticks(xmin, xmax, 6);
    let (yt, ys) = if log {
        // Whole decades when the range spans at least one, else round ticks of the exponent.
        let (lo, hi) = (ymin.floor(), ymax.ceil());
        if hi - lo >= 2.0 {
            let step = ((hi - lo) / 5.0).ceil().max(1.0);
            let mut t = Vec::new();
            let mut e = lo;
            while e <= hi + 1e-9 {
                t.push(e);
                e += step;
            }
            (t, step)
        } else {
            nice_ticks(ymin, ymax, 4)
        }
    } else {
        nice_ticks(ymin, ymax, 5)
    };
    let (x0, x1) = (xt[0], *xt.last().unwrap());
    let (y0, y1) = (yt[0], *yt.last().unwrap());
    let px = |x: f64| {
        ml + if x1 > x0 {
            (x - x0) / (x1 - x0) * pw
        } else {
            pw / 2.0
        }
    };
    let py = |y: f64| {
        mt + ph
            - if y1 > y0 {
                (y - y0) / (y1 - y0) * ph
            } else {
                ph / 2.0
            }
    };
    for &t in &yt {
        let label = if log {
            tick_label(10f64.powf(t), 10f64.powf(t) / 10.0)
        } else {
            tick_label(t, ys)
        };
        s.push_str(&format!(
            "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{GRID}\" /><text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{INK}\">{}</text>",
            n(ml),
            n(ml + pw),
            n(ml - 6.0),
            n(py(t) + 4.0),
            escape(&label),
            y = n(py(t)),
        ));
    }
    s.push_str(&x_axis(xt.iter().copied(), xs, &px, ml, pw, mt + ph));
    let path: Vec<String> = pts
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            format!(
                "{}{} {}",
                if i == 0 { "M" } else { "L" },
                n(px(x)),
                n(py(ty(y)))
            )
        })
        .collect();
    s.push_str(&format!(
        "<path d=\"{}\" fill=\"none\" stroke=\"{LINE}\" stroke-width=\"2\" stroke-linejoin=\"round\" />",
        path.join("")
    ));
    if markers {
        for &(x, y) in &pts {
            s.push_str(&format!(
                "<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"#fff\" stroke=\"{LINE}\" stroke-width=\"2\"><title>{}: {}</title></circle>",
                n(px(x)),
                n(py(ty(y))),
                escape(&tick_label(x, xs)),
                escape(&fmt_num(y, 4))
            ));
        }
    }
    let mut o2 = o.clone();
    if log && !o2.y_label.is_empty() {
        o2.y_label.push_str(" (log scale)");
    }
    s.push_str(&axis_labels(&o2));
    s.push_str("</svg>");
    s
}

/// Horizontal bars, one row per `(label, value)` in order, from a zero baseline (negative values
/// extend left of it), each labelled with its value; the height grows with the rows
/// (`o.height` is ignored).
///
/// ```
/// use cox_report::svg::{bar_chart, ChartOpts};
/// let svg = bar_chart(&[("dog".into(), 12.5), ("puppy".into(), 9.0)], &ChartOpts::new(400.0, 0.0, "logit", "", "words"));
/// assert_eq!(svg.matches("<rect").count(), 2);
/// ```
pub fn bar_chart(rows: &[(String, f64)], o: &ChartOpts) -> String {
    let row_h = 18.0;
    let (label_w, value_w, top, bottom) = (110.0, 56.0, 6.0, 30.0);
    let height = top + bottom + row_h * rows.len().max(1) as f64;
    let mut o = o.clone();
    o.height = height;
    let mut s = open(&o, "bars");
    let finite = rows.iter().map(|r| r.1).filter(|v| v.is_finite());
    let lo = finite.clone().fold(0.0f64, f64::min);
    let hi = finite.fold(0.0f64, f64::max);
    let (lo, hi) = if hi > lo { (lo, hi) } else { (0.0, 1.0) };
    let pw = o.width - label_w - value_w;
    let px = |v: f64| label_w + (v - lo) / (hi - lo) * pw;
    let base = px(0.0);
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let v = if v.is_finite() { *v } else { 0.0 };
        let (x0, x1) = if v >= 0.0 {
            (base, px(v))
        } else {
            (px(v), base)
        };
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{INK}\">{}</text><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\" fill=\"{BAR}\"><title>{}: {}</title></rect><text x=\"{}\" y=\"{}\" fill=\"{INK}\">{}</text>",
            n(label_w - 6.0),
            n(y + 12.5),
            escape(label),
            n(x0),
            n(y + 3.0),
            n((x1 - x0).max(0.5)),
            n(row_h - 6.0),
            escape(label),
            escape(&fmt_num(v, 3)),
            n(x1.max(base) + 4.0),
            n(y + 12.5),
            escape(&fmt_num(v, 2)),
        ));
    }
    let axis_y = top + row_h * rows.len().max(1) as f64;
    s.push_str(&format!(
        "<line x1=\"{b}\" x2=\"{b}\" y1=\"{}\" y2=\"{}\" stroke=\"{AXIS}\" />",
        n(top),
        n(axis_y),
        b = n(base)
    ));
    if !o.x_label.is_empty() {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{INK}\">{}</text>",
            n(label_w + pw / 2.0),
            n(axis_y + 20.0),
            escape(&o.x_label)
        ));
    }
    s.push_str("</svg>");
    s
}

/// A histogram from `edges` (`counts.len() + 1` of them, increasing) and `counts`, as adjacent
/// bars with round ticks on both axes.
///
/// # Panics
/// If `edges.len() != counts.len() + 1`.
///
/// ```
/// use cox_report::svg::{histogram_chart, ChartOpts};
/// let (edges, counts) = cox_report::histogram(&[0.1, 0.2, 0.2, 0.9], 4);
/// let svg = histogram_chart(&edges, &counts, &ChartOpts::new(400.0, 200.0, "activation", "samples", "hist"));
/// assert_eq!(svg.matches("<rect").count(), 4);
/// ```
#[track_caller]
pub fn histogram_chart(edges: &[f64], counts: &[usize], o: &ChartOpts) -> String {
    assert_eq!(
        edges.len(),
        counts.len() + 1,
        "histogram_chart: edges must be one more than counts"
    );
    let (ml, mr, mt, mb) = MARGIN;
    let (pw, ph) = (o.width - ml - mr, o.height - mt - mb);
    let mut s = open(o, "hist");
    let cmax = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (yt, ys) = nice_ticks(0.0, cmax, 4);
    let ytop = *yt.last().unwrap();
    let (lo, hi) = (edges[0], *edges.last().unwrap());
    let px = |x: f64| {
        ml + if hi > lo {
            (x - lo) / (hi - lo) * pw
        } else {
            0.0
        }
    };
    let py = |c: f64| mt + ph - c / ytop * ph;
    for &t in &yt {
        s.push_str(&format!(
            "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{GRID}\" /><text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{INK}\">{}</text>",
            n(ml),
            n(ml + pw),
            n(ml - 6.0),
            n(py(t) + 4.0),
            escape(&tick_label(t, ys.max(1.0))),
            y = n(py(t)),
        ));
    }
    for (i, &c) in counts.iter().enumerate() {
        let (x0, x1) = (px(edges[i]), px(edges[i + 1]));
        s.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{BAR}\"><title>[{}, {}): {c}</title></rect>",
            n(x0 + 0.5),
            n(py(c as f64)),
            n((x1 - x0 - 1.0).max(0.5)),
            n(mt + ph - py(c as f64)),
            escape(&fmt_num(edges[i], 3)),
            escape(&fmt_num(edges[i + 1], 3)),
        ));
    }
    let (xt, xs) = nice_ticks(lo, hi, 6);
    s.push_str(&x_axis(
        xt.iter()
            .copied()
            .filter(|&t| t >= lo - 1e-12 && t <= hi + 1e-12),
        xs,
        &px,
        ml,
        pw,
        mt + ph,
    ));
    s.push_str(&axis_labels(o));
    s.push_str("</svg>");
    s
}

/// The colour of a value in [−1, 1] on a blue–white–red diverging scale.
fn diverging(v: f64) -> String {
    let t = v.clamp(-1.0, 1.0);
    let (r, g, b) = if t >= 0.0 {
        (185.0, 28.0, 28.0)
    } else {
        (29.0, 78.0, 216.0)
    };
    let a = t.abs();
    let mix = |c: f64| (255.0 + (c - 255.0) * a).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(r), mix(g), mix(b))
}

/// A `k × k` heatmap of row-major values in [−1, 1] (a correlation matrix), on a blue–white–red
/// scale with a legend. To stay small for large `k`, values are binned in steps of 0.1 and each
/// bin is one `<path>` of horizontal runs; bins with `|v| < 0.05` are left white, and NaN is grey.
/// Rows and columns are labelled with the concept indices (every `ceil(k / 12)`-th).
///
/// # Panics
/// If `values.len() != k * k`.
///
/// ```
/// use cox_report::svg::{heatmap, ChartOpts};
/// let svg = heatmap(&[1.0, -0.5, -0.5, 1.0], 2, &ChartOpts::new(300.0, 300.0, "", "", "co-activation"));
/// assert!(svg.contains("<path"));
/// ```
#[track_caller]
pub fn heatmap(values: &[f64], k: usize, o: &ChartOpts) -> String {
    assert_eq!(values.len(), k * k, "heatmap: values must be k × k");
    let mut s = open(o, "heat");
    let (ml, mt, legend_w) = (30.0, 8.0, 46.0);
    let side = (o.width - ml - legend_w)
        .min(o.height - mt - 24.0)
        .max(10.0);
    let cell = side / k.max(1) as f64;
    // Bin b in -10..=10 (value ≈ b / 10); None = NaN.
    let bin = |v: f64| -> Option<i32> {
        if v.is_nan() {
            None
        } else {
            Some((v.clamp(-1.0, 1.0) * 10.0).round() as i32)
        }
    };
    let mut paths: std::collections::BTreeMap<Option<i32>, String> = Default::default();
    for i in 0..k {
        let mut j = 0;
        while j < k {
            let b = bin(values[i * k + j]);
            let mut end = j + 1;
            while end < k && bin(values[i * k + end]) == b {
                end += 1;
            }
            if b != Some(0) {
                paths.entry(b).or_default().push_str(&format!(
                    "M{j} {i}h{}v1h-{}z",
                    end - j,
                    end - j
                ));
            }
            j = end;
        }
    }
    s.push_str(&format!(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fff\" stroke=\"{AXIS}\" />",
        n(ml),
        n(mt),
        n(side),
        n(side)
    ));
    s.push_str(&format!(
        "<g transform=\"translate({} {}) scale({})\" shape-rendering=\"crispEdges\">",
        n(ml),
        n(mt),
        cell
    ));
    for (b, d) in &paths {
        let fill = match b {
            Some(b) => diverging(*b as f64 / 10.0),
            None => "#d1d5db".to_string(),
        };
        s.push_str(&format!("<path fill=\"{fill}\" d=\"{d}\" />"));
    }
    s.push_str("</g>");
    let every = k.div_ceil(12).max(1);
    for i in (0..k).step_by(every) {
        let c = (i as f64 + 0.5) * cell;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{INK}\" font-size=\"9\">{i}</text><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{INK}\" font-size=\"9\">{i}</text>",
            n(ml - 4.0),
            n(mt + c + 3.0),
            n(ml + c),
            n(mt + side + 12.0),
        ));
    }
    // Legend: 21 swatches from +1 (top) to −1 (bottom).
    let lx = ml + side + 12.0;
    let sh = side / 21.0;
    for b in 0..21 {
        let v = 1.0 - b as f64 / 10.0;
        s.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"{}\" fill=\"{}\" />",
            n(lx),
            n(mt + b as f64 * sh),
            n(sh + 0.3),
            diverging(v)
        ));
    }
    for (v, y) in [
        ("+1", mt + 4.0),
        ("0", mt + side / 2.0 + 3.0),
        ("−1", mt + side),
    ] {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" fill=\"{INK}\" font-size=\"9\">{v}</text>",
            n(lx + 13.0),
            n(y)
        ));
    }
    s.push_str("</svg>");
    s
}
