//! The site writer: pages, stylesheet and thumbnails.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::data::{Cell, ConceptReport, ExplainedImage, ImageRef, ReportData, Table};
use crate::error::{ReportError, Result};
use crate::html::{escape, fmt_num, page, url_path};
use crate::stats::histogram;
use crate::svg::{bar_chart, heatmap, histogram_chart, line_chart, ChartOpts};

/// The stylesheet every page links.
const STYLE: &str = include_str!("style.css");

/// Words and logits shown in a concept page's bar chart.
const MAX_LOGIT_BARS: usize = 30;
/// Steered captions shown per steering experiment on a concept page.
const MAX_STEERING_EXAMPLES: usize = 12;
/// Histogram bins of a concept page.
const HIST_BINS: usize = 30;
/// Words shown on an index card.
const CARD_WORDS: usize = 8;
/// Thumbnails shown on an index card.
const CARD_THUMBS: usize = 5;

/// What [`write_site`] wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SiteSummary {
    /// `out_dir/index.html`.
    pub index: PathBuf,
    /// Every file written, relative to the site folder, sorted.
    pub files: Vec<String>,
    /// Size of `index.html` in bytes.
    pub index_bytes: usize,
    /// Thumbnails copied into `thumbs/` from absolute paths.
    pub thumbnails_copied: usize,
    /// Images shown as placeholders, and why (sorted, each once).
    pub problems: Vec<String>,
}

/// Writes the report of `data` into `out_dir` (created if needed) and returns what it wrote.
///
/// The site: `index.html` (run settings, metric tables, the objective trace, the
/// reconstruction-error-versus-K plot and the co-activation heatmap when present, one card per
/// concept with `id="concept-NNN"`: top words, top-5 thumbnails, activation share),
/// `concept-NNN.html` per concept (word-logit bar chart, activation histogram, most co-activating
/// concepts, the top images with captions and activations), `explain-NNN.html` per explained image
/// (`NNN` = its position in [`ReportData::explained`]) and `style.css`. Plots are inline SVG;
/// images are lazy-loaded files (never inline data), so the index stays small with many
/// concepts. Thumbnails given as absolute paths outside the site are copied to
/// `thumbs/<stem>-<hash>.<ext>`; relative ones (and absolute ones inside `out_dir`) must already be
/// in the site. A missing thumbnail becomes a placeholder and an entry of
/// [`SiteSummary::problems`], never an error. Files are written atomically; the same data gives
/// byte-identical files. Pages named `concept-*.html` or `explain-*.html` left over from an earlier
/// report in the same folder are removed; nothing else is.
///
/// # Errors
/// [`ReportError::DuplicateConcept`] when two concepts share an index, [`ReportError::Dir`] or
/// [`ReportError::Write`] when the folder or a file cannot be written.
///
/// ```
/// use cox_report::{write_site, ConceptReport, ReportData};
/// let dir = tempfile::tempdir()?;
/// let data = ReportData {
///     title: "dog".into(),
///     concepts: vec![ConceptReport { index: 0, words: vec!["dog".into()], ..Default::default() }],
///     ..Default::default()
/// };
/// let summary = write_site(&data, dir.path())?;
/// assert!(summary.files.contains(&"concept-000.html".to_string()));
/// assert!(std::fs::read_to_string(&summary.index)?.contains("id=\"concept-000\""));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_site(data: &ReportData, out_dir: &Path) -> Result<SiteSummary> {
    let mut seen = BTreeSet::new();
    for c in &data.concepts {
        if !seen.insert(c.index) {
            return Err(ReportError::DuplicateConcept(c.index));
        }
    }
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::Dir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut site = Site {
        out_dir: out_dir.to_path_buf(),
        data,
        copied: BTreeMap::new(),
        problems: BTreeSet::new(),
        files: BTreeMap::new(),
        by_index: data.concepts.iter().map(|c| (c.index, c)).collect(),
    };
    for (pos, c) in data.concepts.iter().enumerate() {
        let html = site.concept_page(pos, c)?;
        site.files
            .insert(concept_page_name(c.index), html.into_bytes());
    }
    for (pos, e) in data.explained.iter().enumerate() {
        let html = site.explain_page(pos, e)?;
        site.files.insert(explain_page_name(pos), html.into_bytes());
    }
    let index = site.index_page()?;
    let index_bytes = index.len();
    site.files.insert("index.html".into(), index.into_bytes());
    site.files
        .insert("style.css".into(), STYLE.as_bytes().to_vec());

    remove_stale_pages(out_dir, &site.files)?;
    for (name, bytes) in &site.files {
        cox_store::atomic_write(&out_dir.join(name), bytes)?;
    }
    let mut files: Vec<String> = site.files.keys().cloned().collect();
    files.extend(site.copied.values().filter_map(|v| v.clone().ok()));
    files.sort();
    files.dedup();
    Ok(SiteSummary {
        index: out_dir.join("index.html"),
        files,
        index_bytes,
        thumbnails_copied: site.copied.values().filter(|v| v.is_ok()).count(),
        problems: site.problems.into_iter().collect(),
    })
}

fn concept_page_name(index: usize) -> String {
    format!("concept-{index:03}.html")
}

fn explain_page_name(pos: usize) -> String {
    format!("explain-{pos:03}.html")
}

/// Removes `concept-<digits>.html` and `explain-<digits>.html` files that this report does not write.
fn remove_stale_pages(out_dir: &Path, keep: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    let dir_err = |source| ReportError::Dir {
        path: out_dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(out_dir).map_err(dir_err)? {
        let name = entry.map_err(dir_err)?.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = ["concept-", "explain-"].iter().any(|p| {
            name.strip_prefix(p)
                .and_then(|r| r.strip_suffix(".html"))
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        });
        if stale && !keep.contains_key(name) {
            std::fs::remove_file(out_dir.join(name)).map_err(dir_err)?;
        }
    }
    Ok(())
}

struct Site<'a> {
    out_dir: PathBuf,
    data: &'a ReportData,
    /// Absolute source → its path in the site, or why it could not be copied.
    copied: BTreeMap<PathBuf, std::result::Result<String, String>>,
    problems: BTreeSet<String>,
    files: BTreeMap<String, Vec<u8>>,
    by_index: BTreeMap<usize, &'a ConceptReport>,
}

impl Site<'_> {
    /// The site-relative path of an image's thumbnail, copying it in when it is absolute; `Err`
    /// with the reason when there is none (recorded in the problems).
    fn resolve(&mut self, img: &ImageRef) -> Result<std::result::Result<String, String>> {
        let Some(path) = &img.thumbnail else {
            let why = img
                .error
                .clone()
                .unwrap_or_else(|| "no thumbnail".to_string());
            if img.error.is_some() {
                self.problems
                    .insert(format!("sample {}: {why}", img.sample_id));
            }
            return Ok(Err(why));
        };
        let inside = if path.is_absolute() {
            self.site_relative(path)
        } else {
            None
        };
        let path = inside.as_deref().unwrap_or(path);
        let result = if path.is_absolute() {
            self.copy_in(path)?
        } else if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            Err(format!(
                "thumbnail {} is not inside the site folder",
                path.display()
            ))
        } else if !self.out_dir.join(path).is_file() {
            Err(format!(
                "thumbnail {} not found in {}",
                path.display(),
                self.out_dir.display()
            ))
        } else {
            let parts: Vec<String> = path
                .components()
                .filter_map(|c| match c {
                    Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            Ok(parts.join("/"))
        };
        if let Err(why) = &result {
            self.problems
                .insert(format!("sample {}: {why}", img.sample_id));
        }
        Ok(result)
    }

    /// An absolute path that lies inside the site folder, as a site-relative path (so files that
    /// are already in the site, such as `cox-ground-visual`'s thumbnails, are not copied again).
    fn site_relative(&self, path: &Path) -> Option<PathBuf> {
        let site = self.out_dir.canonicalize().ok()?;
        let file = path.canonicalize().ok()?;
        file.strip_prefix(&site).ok().map(Path::to_path_buf)
    }

    /// Copies an absolute file into `thumbs/` (once per source path).
    fn copy_in(&mut self, src: &Path) -> Result<std::result::Result<String, String>> {
        if let Some(done) = self.copied.get(src) {
            return Ok(done.clone());
        }
        // Through the safe image reader: a FIFO or device named as an image fails at once
        // instead of blocking or being read without end.
        let result = match cox_image::read_image_file(src, &cox_image::ImageLimits::default()) {
            Err(cox_image::ImageError::Io { cause, .. }) => {
                Err(format!("cannot read thumbnail {}: {cause}", src.display()))
            }
            Err(cox_image::ImageError::Bad { problem, .. }) => {
                Err(format!("cannot use thumbnail {}: {problem}", src.display()))
            }
            Ok(bytes) => {
                let stem = cox_store::sanitized_stem(src);
                let ext: String = src
                    .extension()
                    .map(|s| s.to_string_lossy().to_ascii_lowercase())
                    .filter(|e| {
                        !e.is_empty()
                            && e.len() <= 5
                            && e.bytes().all(|b| b.is_ascii_alphanumeric())
                    })
                    .unwrap_or_else(|| "img".into());
                let hash = Sha256::digest(src.to_string_lossy().as_bytes());
                let name = format!(
                    "thumbs/{stem}-{:02x}{:02x}{:02x}{:02x}.{ext}",
                    hash[0], hash[1], hash[2], hash[3]
                );
                cox_store::atomic_write(&self.out_dir.join(&name), &bytes)?;
                Ok(name)
            }
        };
        self.copied.insert(src.to_path_buf(), result.clone());
        Ok(result)
    }

    /// A thumbnail `<img>` (lazy-loaded) or a placeholder box saying why there is none.
    fn thumb(&mut self, img: &ImageRef, class: &str) -> Result<String> {
        let alt = match img.activation {
            Some(a) => format!(
                "sample {} (activation {})",
                img.sample_id,
                fmt_num(a as f64, 3)
            ),
            None => format!("sample {}", img.sample_id),
        };
        Ok(match self.resolve(img)? {
            Ok(src) => format!(
                "<img class=\"{class}\" src=\"{}\" alt=\"{}\" title=\"{}\" loading=\"lazy\" decoding=\"async\" />",
                url_path(&src),
                escape(&alt),
                escape(&alt)
            ),
            Err(why) => format!(
                "<span class=\"{class} missing\" title=\"{}\">no image</span>",
                escape(&why)
            ),
        })
    }

    fn words_of(&self, concept: usize, n: usize) -> String {
        self.by_index
            .get(&concept)
            .map(|c| {
                c.words
                    .iter()
                    .take(n)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }

    fn subtitle(&self) -> String {
        let s = &self.data.settings;
        let mut parts = Vec::new();
        if let Some(t) = &s.token {
            parts.push(format!("token “{t}”"));
        }
        if let Some(m) = &s.model {
            parts.push(m.clone());
        }
        if let Some(l) = &s.layer {
            parts.push(format!("layer {l}"));
        }
        if let Some(m) = &s.method {
            parts.push(match s.k {
                Some(k) => format!("{m}, K = {k}"),
                None => m.clone(),
            });
        }
        if parts.is_empty() {
            self.data.title.clone()
        } else {
            parts.join(" · ")
        }
    }

    fn title(&self) -> String {
        if self.data.title.is_empty() {
            "CoX-LMM report".to_string()
        } else {
            self.data.title.clone()
        }
    }

    fn index_page(&mut self) -> Result<String> {
        let data = self.data;
        let mut m = String::new();
        let _ = writeln!(
            m,
            "<section class=\"hero\"><h1>{}</h1><p class=\"sub\">{}</p></section>",
            escape(&self.title()),
            escape(&self.subtitle())
        );
        m.push_str(&settings_panel(data));
        for (i, t) in data.tables.iter().enumerate() {
            m.push_str(&table_html(t, i));
        }
        if !data.concepts.is_empty() {
            let _ = write!(
                m,
                "<section id=\"concepts\"><h2>Concepts <span class=\"count\">{}</span></h2>\n<div class=\"cards\">\n",
                data.concepts.len()
            );
            for c in &data.concepts {
                m.push_str(&self.card(c)?);
            }
            m.push_str("</div></section>\n");
        }
        // The fit diagnostics come after the concepts, which are what a reader opens the report for.
        m.push_str(&self.plots_html());
        if !data.explained.is_empty() {
            m.push_str(&self.explained_table()?);
        }
        Ok(page(&self.title(), &self.subtitle(), "index", &m))
    }

    fn plots_html(&self) -> String {
        let p = &self.data.plots;
        let mut figs = Vec::new();
        if !p.objective_trace.is_empty() {
            let pts: Vec<(f64, f64)> = p
                .objective_trace
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as f64, v))
                .collect();
            let pos = p.objective_trace.iter().all(|&v| v > 0.0);
            let (lo, hi) = p
                .objective_trace
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            let log = pos && hi / lo > 50.0;
            figs.push(figure(
                "objective",
                "Objective per iteration",
                &line_chart(
                    &pts,
                    false,
                    log,
                    &ChartOpts::new(
                        460.0,
                        240.0,
                        "iteration",
                        "objective",
                        "Objective per iteration",
                    ),
                ),
                &format!("final {}", fmt_num(*p.objective_trace.last().unwrap(), 4)),
            ));
        }
        if !p.recon_error_vs_k.is_empty() {
            let pts: Vec<(f64, f64)> = p
                .recon_error_vs_k
                .iter()
                .map(|&(k, e)| (k as f64, e))
                .collect();
            figs.push(figure(
                "recon",
                "Reconstruction error versus K",
                &line_chart(
                    &pts,
                    true,
                    false,
                    &ChartOpts::new(
                        460.0,
                        240.0,
                        "K (concepts)",
                        "error",
                        "Reconstruction error versus K",
                    ),
                ),
                "",
            ));
        }
        if let Some(c) = &p.coactivation {
            let k = (c.len() as f64).sqrt().round() as usize;
            if k * k == c.len() && k > 0 {
                figs.push(figure(
                    "coactivation",
                    "Concept co-activation",
                    &heatmap(
                        c,
                        k,
                        &ChartOpts::new(
                            320.0,
                            300.0,
                            "",
                            "",
                            "Correlation of concept activations over training samples",
                        ),
                    ),
                    "Pearson correlation of activation columns",
                ));
            }
        }
        if figs.is_empty() {
            return String::new();
        }
        format!(
            "<section id=\"plots\"><h2>Fit</h2><div class=\"plots\">{}</div></section>\n",
            figs.join("")
        )
    }

    fn card(&mut self, c: &ConceptReport) -> Result<String> {
        let mut s = String::new();
        let id = format!("concept-{:03}", c.index);
        let _ = write!(
            s,
            "<article class=\"card\" id=\"{id}\"><header><a class=\"cname\" href=\"{}\">Concept {}</a>",
            concept_page_name(c.index),
            c.index
        );
        if let Some(share) = c.activation_share {
            let _ = write!(
                s,
                "<span class=\"share\" title=\"share of the total activation mass\">{}%</span>",
                fmt_num(share * 100.0, 1)
            );
        }
        s.push_str("</header>");
        if let Some(share) = c.activation_share {
            let _ = write!(
                s,
                "<div class=\"meter\"><span style=\"width: {}%\"></span></div>",
                fmt_num((share * 100.0).clamp(0.0, 100.0), 1)
            );
        }
        if let Some(f) = &c.factor {
            let _ = write!(
                s,
                "<p class=\"factor\">matches <b>{}</b> · AUC {}</p>",
                escape(&f.factor),
                fmt_num(f.auc, 3)
            );
        }
        s.push_str(&chips(&c.words, CARD_WORDS));
        if !c.mas.is_empty() {
            s.push_str("<div class=\"strip\">");
            for img in c.mas.iter().take(CARD_THUMBS) {
                let t = self.thumb(img, "thumb")?;
                let act = img
                    .activation
                    .map(|a| format!("<span class=\"act\">{}</span>", fmt_num(a as f64, 2)))
                    .unwrap_or_default();
                let _ = write!(s, "<figure>{t}{act}</figure>");
            }
            s.push_str("</div>");
        }
        s.push_str("</article>\n");
        Ok(s)
    }

    fn explained_table(&mut self) -> Result<String> {
        let mut s = String::from(
            "<section id=\"explained\"><h2>Local explanations</h2><table class=\"metrics explained\"><thead><tr><th>Image</th><th>Sample</th><th>Generated caption</th><th>Token</th><th>Top concepts</th></tr></thead><tbody>\n",
        );
        for (pos, e) in self.data.explained.iter().enumerate() {
            let t = self.thumb(&e.image, "thumb small")?;
            let concepts: Vec<String> = e
                .concepts
                .iter()
                .take(3)
                .map(|c| {
                    format!(
                        "<a href=\"{}\">#{}</a> {} <span class=\"muted\">({})</span>",
                        concept_page_name(c.concept),
                        c.concept,
                        escape(&self.words_of(c.concept, 3)),
                        fmt_num(c.activation as f64, 2)
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "<tr><td><a href=\"{page}\">{t}</a></td><td><a href=\"{page}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&e.image.sample_id),
                escape(e.image.caption.as_deref().unwrap_or("")),
                if e.token_generated { "<span class=\"yes\">yes</span>" } else { "<span class=\"no\">no</span>" },
                concepts.join("<br />"),
                page = explain_page_name(pos),
            );
        }
        s.push_str("</tbody></table></section>\n");
        Ok(s)
    }

    fn concept_page(&mut self, pos: usize, c: &ConceptReport) -> Result<String> {
        let data = self.data;
        let mut m = String::new();
        // Navigation: index, previous and next concept in display order.
        m.push_str("<nav class=\"crumbs\"><a href=\"index.html#concepts\">← all concepts</a>");
        if pos > 0 {
            let p = data.concepts[pos - 1].index;
            let _ = write!(m, "<a href=\"{}\">‹ concept {p}</a>", concept_page_name(p));
        }
        if let Some(n) = data.concepts.get(pos + 1) {
            let _ = write!(
                m,
                "<a href=\"{}\">concept {} ›</a>",
                concept_page_name(n.index),
                n.index
            );
        }
        m.push_str("</nav>\n");
        let _ = write!(m, "<section class=\"hero\"><h1>Concept {}</h1>", c.index);
        m.push_str(&chips(&c.words, usize::MAX));
        m.push_str("</section>\n");

        // Key numbers.
        let acts = &c.activations;
        let finite: Vec<f64> = acts
            .iter()
            .filter(|a| a.is_finite())
            .map(|&a| a as f64)
            .collect();
        let zeros = acts.iter().filter(|&&a| a == 0.0).count();
        let mut stats: Vec<(String, String)> = Vec::new();
        if let Some(share) = c.activation_share {
            stats.push((
                "activation share".into(),
                format!("{}%", fmt_num(share * 100.0, 2)),
            ));
        }
        if !acts.is_empty() {
            stats.push(("training samples".into(), acts.len().to_string()));
            stats.push((
                "active (> 0)".into(),
                format!(
                    "{}%",
                    fmt_num(
                        100.0 * acts.iter().filter(|&&a| a > 0.0).count() as f64
                            / acts.len() as f64,
                        1
                    )
                ),
            ));
        }
        if !finite.is_empty() {
            let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = finite.iter().sum::<f64>() / finite.len() as f64;
            stats.push(("max activation".into(), fmt_num(max, 3)));
            stats.push(("mean activation".into(), fmt_num(mean, 3)));
        }
        if let Some(f) = &c.factor {
            stats.push((
                "matched factor".into(),
                format!("{} (AUC {})", f.factor, fmt_num(f.auc, 3)),
            ));
        }
        if !stats.is_empty() {
            m.push_str("<dl class=\"stats\">");
            for (k, v) in &stats {
                let _ = write!(m, "<div><dt>{}</dt><dd>{}</dd></div>", escape(k), escape(v));
            }
            m.push_str("</dl>\n");
        }

        // Steering: captions before → after (`coxlmm steer`).
        if !c.steering.is_empty() {
            m.push_str("<section><h2>Steering</h2>\n");
            for run in &c.steering {
                let _ = writeln!(
                    m,
                    "<h3>{} <span class=\"muted\">{}% of captions changed</span></h3><table class=\"steer\"><tr><th>sample</th><th>before</th><th>after</th></tr>",
                    escape(&run.setting),
                    fmt_num(run.changed * 100.0, 0)
                );
                for e in run.examples.iter().take(MAX_STEERING_EXAMPLES) {
                    let _ = writeln!(
                        m,
                        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                        escape(&e.sample_id),
                        escape(&e.before),
                        escape(&e.after)
                    );
                }
                m.push_str("</table>\n");
            }
            m.push_str("</section>\n");
        }

        // Plots.
        let mut figs = Vec::new();
        if !c.word_logits.is_empty() {
            let rows: Vec<(String, f64)> = c
                .word_logits
                .iter()
                .take(MAX_LOGIT_BARS)
                .map(|w| (w.word.clone(), w.logit as f64))
                .collect();
            figs.push(figure(
                "logits",
                "Decoded words (logit lens)",
                &bar_chart(
                    &rows,
                    &ChartOpts::new(
                        460.0,
                        0.0,
                        "logit  W_U · u_k",
                        "",
                        "Logits of the decoded words",
                    ),
                ),
                &format!("top {} of {} candidates", rows.len(), c.word_logits.len()),
            ));
        }
        if !acts.is_empty() {
            // Sparse activations are mostly exact zeros; the histogram shows the non-zero ones.
            let nonzero: Vec<f32> = acts.iter().copied().filter(|&a| a != 0.0).collect();
            let (shown, note) = if zeros > 0 && !nonzero.is_empty() {
                (
                    nonzero,
                    format!(
                        "{zeros} of {} samples are exactly 0 (not shown)",
                        acts.len()
                    ),
                )
            } else {
                (acts.clone(), format!("{} samples", acts.len()))
            };
            let (edges, counts) = histogram(&shown, HIST_BINS);
            figs.push(figure(
                "hist",
                "Activation on training samples",
                &histogram_chart(
                    &edges,
                    &counts,
                    &ChartOpts::new(
                        460.0,
                        240.0,
                        "activation",
                        "samples",
                        "Histogram of the concept's training activations",
                    ),
                ),
                &note,
            ));
        }
        if !figs.is_empty() {
            let _ = writeln!(
                m,
                "<section><div class=\"plots\">{}</div></section>",
                figs.join("")
            );
        }

        // Most co-activating concepts.
        if let Some(co) = &data.plots.coactivation {
            let k = (co.len() as f64).sqrt().round() as usize;
            if k * k == co.len() && c.index < k {
                let mut others: Vec<(usize, f64)> = (0..k)
                    .filter(|&j| j != c.index)
                    .map(|j| (j, co[c.index * k + j]))
                    .filter(|(_, r)| r.is_finite())
                    .collect();
                others.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                if !others.is_empty() {
                    m.push_str("<section><h2>Most co-activating concepts</h2><ul class=\"coact\">");
                    for (j, r) in others.iter().take(5) {
                        let _ = write!(
                            m,
                            "<li><a href=\"{}\">Concept {j}</a> <span class=\"muted\">r = {}</span> {}</li>",
                            concept_page_name(*j),
                            fmt_num(*r, 2),
                            escape(&self.words_of(*j, 5))
                        );
                    }
                    m.push_str("</ul></section>\n");
                }
            }
        }

        // Top images.
        let images = if c.top_images.is_empty() {
            &c.mas
        } else {
            &c.top_images
        };
        if !images.is_empty() {
            let _ = writeln!(
                m,
                "<section><h2>Most-activating samples <span class=\"count\">{}</span></h2><div class=\"gallery\">",
                images.len()
            );
            for (rank, img) in images.iter().enumerate() {
                let t = self.thumb(img, "thumb big")?;
                let _ = writeln!(
                    m,
                    "<figure class=\"tile\">{t}<figcaption><span class=\"rank\">#{}</span> <span class=\"act\">{}</span><span class=\"sid\">{}</span>{}</figcaption></figure>",
                    rank + 1,
                    img.activation.map(|a| fmt_num(a as f64, 3)).unwrap_or_default(),
                    escape(&img.sample_id),
                    img.caption
                        .as_deref()
                        .map(|cap| format!("<span class=\"cap\">{}</span>", escape(cap)))
                        .unwrap_or_default()
                );
            }
            m.push_str("</div></section>\n");
        }
        Ok(page(
            &format!("Concept {} · {}", c.index, self.title()),
            &self.subtitle(),
            "concept",
            &m,
        ))
    }

    fn explain_page(&mut self, pos: usize, e: &ExplainedImage) -> Result<String> {
        let data = self.data;
        let mut m = String::new();
        m.push_str("<nav class=\"crumbs\"><a href=\"index.html#explained\">← all explanations</a>");
        if pos > 0 {
            let _ = write!(
                m,
                "<a href=\"{}\">‹ previous</a>",
                explain_page_name(pos - 1)
            );
        }
        if pos + 1 < data.explained.len() {
            let _ = write!(m, "<a href=\"{}\">next ›</a>", explain_page_name(pos + 1));
        }
        m.push_str("</nav>\n");
        let t = self.thumb(&e.image, "thumb hero-img")?;
        let _ = write!(
            m,
            "<section class=\"explain-head\">{t}<div><h1>Sample {}</h1>",
            escape(&e.image.sample_id)
        );
        if let Some(cap) = &e.image.caption {
            let _ = write!(
                m,
                "<p class=\"caption\">“{}”</p>",
                highlight(cap, data.settings.token.as_deref())
            );
        }
        let _ = write!(
            m,
            "<p>Token of interest generated: {}</p>",
            if e.token_generated {
                "<span class=\"yes\">yes</span>"
            } else {
                "<span class=\"no\">no</span>"
            }
        );
        if !e.references.is_empty() {
            m.push_str("<details><summary>Reference captions</summary><ul>");
            for r in &e.references {
                let _ = write!(m, "<li>{}</li>", escape(r));
            }
            m.push_str("</ul></details>");
        }
        m.push_str("</div></section>\n");
        if !e.concepts.is_empty() {
            let max = e
                .concepts
                .iter()
                .map(|c| c.activation as f64)
                .filter(|a| a.is_finite())
                .fold(0.0f64, f64::max);
            m.push_str("<section><h2>Concepts, by activation</h2><table class=\"metrics concepts\"><thead><tr><th>Concept</th><th>Activation</th><th>Words</th><th>Most-activating samples</th></tr></thead><tbody>\n");
            for c in &e.concepts {
                let width = if max > 0.0 {
                    (c.activation as f64 / max * 100.0).clamp(0.0, 100.0)
                } else {
                    0.0
                };
                let mut thumbs = String::new();
                if let Some(cr) = self.by_index.get(&c.concept).copied() {
                    for img in cr.mas.iter().take(3) {
                        thumbs.push_str(&self.thumb(img, "thumb small")?);
                    }
                }
                let _ = writeln!(
                    m,
                    "<tr><td><a href=\"{}\">Concept {}</a></td><td class=\"num\"><div class=\"meter inline\"><span style=\"width: {}%\"></span></div>{}</td><td>{}</td><td class=\"mini\">{}</td></tr>",
                    concept_page_name(c.concept),
                    c.concept,
                    fmt_num(width, 1),
                    fmt_num(c.activation as f64, 3),
                    escape(&self.words_of(c.concept, 8)),
                    thumbs
                );
            }
            m.push_str("</tbody></table></section>\n");
        }
        Ok(page(
            &format!("Sample {} · {}", e.image.sample_id, self.title()),
            &self.subtitle(),
            "explain",
            &m,
        ))
    }
}

/// Words as chips (at most `n`).
fn chips(words: &[String], n: usize) -> String {
    if words.is_empty() {
        return "<p class=\"muted\">no grounded words</p>".into();
    }
    let mut s = String::from("<ul class=\"chips\">");
    for w in words.iter().take(n) {
        let _ = write!(s, "<li>{}</li>", escape(w));
    }
    s.push_str("</ul>");
    s
}

/// A plot in a `<figure>` with a heading and an optional note.
fn figure(id: &str, heading: &str, svg: &str, note: &str) -> String {
    let note = if note.is_empty() {
        String::new()
    } else {
        format!("<figcaption>{}</figcaption>", escape(note))
    };
    format!(
        "<figure class=\"plot\" id=\"plot-{id}\"><h3>{}</h3>{svg}{note}</figure>",
        escape(heading)
    )
}

/// The caption with the whole-word, case-insensitive occurrences of the token marked.
fn highlight(caption: &str, token: Option<&str>) -> String {
    let Some(token) = token.filter(|t| !t.trim().is_empty()) else {
        return escape(caption);
    };
    let token = token.trim().to_lowercase();
    caption
        .split(' ')
        .map(|w| {
            let core = w
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            if core == token {
                format!("<mark>{}</mark>", escape(w))
            } else {
                escape(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn settings_panel(data: &ReportData) -> String {
    let s = &data.settings;
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            rows.push((k.to_string(), v));
        }
    };
    add("model", s.model.clone());
    add("layer", s.layer.clone());
    add("token", s.token.clone());
    add("method", s.method.clone());
    add("K", s.k.map(|k| k.to_string()));
    add("λ", s.lambda.map(|l| format!("{l}")));
    add("seed", s.seed.map(|v| v.to_string()));
    add("training samples", s.train_samples.map(|v| v.to_string()));
    add("test samples", s.test_samples.map(|v| v.to_string()));
    add("skipped samples", s.skipped_samples.map(|v| v.to_string()));
    add("dataset", s.dataset.clone());
    for (k, v) in &s.timings {
        rows.push((format!("time: {k}"), format!("{} s", fmt_num(*v, 2))));
    }
    for (k, v) in &s.extra {
        rows.push((k.clone(), v.clone()));
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from("<section id=\"settings\"><h2>Run</h2><dl class=\"settings\">");
    for (k, v) in rows {
        let _ = write!(
            out,
            "<div><dt>{}</dt><dd>{}</dd></div>",
            escape(&k),
            escape(&v)
        );
    }
    out.push_str("</dl></section>\n");
    out
}

fn table_html(t: &Table, i: usize) -> String {
    let decimals = t.decimals.unwrap_or(3);
    let mut s = format!("<section class=\"table\" id=\"table-{i}\">");
    if !t.caption.is_empty() {
        let _ = write!(s, "<h2>{}</h2>", escape(&t.caption));
    }
    s.push_str("<div class=\"scroll\"><table class=\"metrics\"><thead><tr><th>Metric</th>");
    for c in &t.columns {
        let _ = write!(s, "<th class=\"num\">{}</th>", escape(c));
    }
    let has_notes = t.rows.iter().any(|r| r.note.is_some());
    if has_notes {
        s.push_str("<th>Note</th>");
    }
    s.push_str("</tr></thead><tbody>");
    for r in &t.rows {
        // The best finite value of the row, when the row says which direction is better.
        let best = r.higher_is_better.and_then(|hib| {
            let vals = r.cells.iter().filter_map(|c| match c {
                Cell::Number { value, .. } if value.is_finite() => Some(*value),
                _ => None,
            });
            if hib {
                vals.reduce(f64::max)
            } else {
                vals.reduce(f64::min)
            }
        });
        let arrow = match r.higher_is_better {
            Some(true) => " <span class=\"muted\" title=\"higher is better\">↑</span>",
            Some(false) => " <span class=\"muted\" title=\"lower is better\">↓</span>",
            None => "",
        };
        let _ = write!(s, "<tr><th scope=\"row\">{}{arrow}</th>", escape(&r.name));
        for j in 0..t.columns.len().max(r.cells.len()) {
            let cell = r.cells.get(j).unwrap_or(&Cell::Empty);
            let text = match cell {
                Cell::Empty => "<span class=\"muted\">—</span>".to_string(),
                Cell::Text(x) => escape(x),
                Cell::Number { value, std } => {
                    let mut x = fmt_num(*value, decimals);
                    if let Some(sd) = std {
                        x.push_str(&format!(
                            " <span class=\"std\">± {}</span>",
                            fmt_num(*sd, decimals)
                        ));
                    }
                    if best == Some(*value) {
                        format!("<b>{x}</b>")
                    } else {
                        x
                    }
                }
            };
            let _ = write!(s, "<td class=\"num\">{text}</td>");
        }
        if has_notes {
            let _ = write!(
                s,
                "<td class=\"note\">{}</td>",
                escape(r.note.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div></section>\n");
    s
}
