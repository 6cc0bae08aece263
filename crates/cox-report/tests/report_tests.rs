//! Tests of cox-report: escaping, SVG and page well-formedness (parsed as XML), deterministic
//! bytes, concept cards, thumbnails that resolve inside the site, and the display statistics.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cox_report::html::{fmt_num, url_path};
use cox_report::svg::{bar_chart, heatmap, histogram_chart, line_chart, nice_ticks, ChartOpts};
use cox_report::{
    coactivation, escape, histogram, write_site, ConceptReport, ImageRef, ReportData, ReportError,
};

fn opts() -> ChartOpts {
    ChartOpts::new(400.0, 200.0, "x <axis>", "y & axis", "a \"title\"")
}

/// Parses an SVG and returns how many elements of each name it has.
fn parse_svg(svg: &str) -> std::collections::BTreeMap<String, usize> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("invalid XML: {e}\n{svg}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let mut counts = std::collections::BTreeMap::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        *counts.entry(n.tag_name().name().to_string()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn escaping() {
    let check = |input: &str, expect: &str| assert_eq!(escape(input), expect, "{input:?}");
    check("plain words", "plain words");
    check("a < b > c", "a &lt; b &gt; c");
    check("Tom & Jerry", "Tom &amp; Jerry");
    check("\"quoted\" 'single'", "&quot;quoted&quot; &#39;single&#39;");
    check(
        "<script>alert(1)</script>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
    );
    check("&amp;", "&amp;amp;");
    check("ünïcode “quotes” λ", "ünïcode “quotes” λ");
    // Control characters are not allowed in XML: dropped, except tab and newline.
    check("a\u{0}b\u{7}c\td\ne", "abc\td\ne");

    assert_eq!(
        url_path("thumbs/train-000001.png"),
        "thumbs/train-000001.png"
    );
    assert_eq!(url_path("thumbs/a b#?%.png"), "thumbs/a%20b%23%3F%25.png");
    assert_eq!(url_path("x/\"><img"), "x/%22%3E%3Cimg");
    assert_eq!(url_path("ü"), "%C3%BC");

    assert_eq!(fmt_num(1.0 / 3.0, 3), "0.333");
    assert_eq!(fmt_num(-0.0004, 3), "0.000");
    assert_eq!(fmt_num(-0.5, 1), "-0.5");
    assert_eq!(fmt_num(f64::NAN, 2), "NaN");
}

#[test]
fn svgs_are_well_formed_with_the_expected_marks() {
    // Line chart: one path; markers add one circle per finite point.
    let pts = [(0.0, 5.0), (1.0, 3.0), (2.0, f64::NAN), (3.0, 1.0)];
    let c = parse_svg(&line_chart(&pts, true, false, &opts()));
    assert_eq!(c["path"], 1);
    assert_eq!(c["circle"], 3);
    // Log scale, empty, single point, constant series.
    parse_svg(&line_chart(
        &[(0.0, 1e4), (1.0, 10.0), (2.0, 1.0)],
        false,
        true,
        &opts(),
    ));
    let empty = line_chart(&[], false, false, &opts());
    assert!(empty.contains("no data"));
    parse_svg(&empty);
    parse_svg(&line_chart(&[(3.0, 2.0)], true, false, &opts()));
    parse_svg(&line_chart(&[(0.0, 2.0), (1.0, 2.0)], false, true, &opts()));
    // Labels are escaped (parsing would fail otherwise) and present as text.
    let svg = line_chart(&pts, false, false, &opts());
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(
        texts.contains(&"x <axis>")
            && texts.contains(&"y & axis")
            && texts.contains(&"a \"title\"")
    );

    // Bar chart: one rect per row, negative values and hostile labels included.
    let rows = vec![
        ("dog".to_string(), 3.0),
        ("<b>&".to_string(), -1.5),
        ("nan".to_string(), f64::NAN),
    ];
    assert_eq!(parse_svg(&bar_chart(&rows, &opts()))["rect"], 3);
    // Histogram: one rect per bin.
    let (edges, counts) = histogram(&[0.1, 0.2, 0.2, 0.9, 5.0], 7);
    assert_eq!(
        parse_svg(&histogram_chart(&edges, &counts, &opts()))["rect"],
        7
    );
    // Heatmap: a 3 × 3 matrix with a NaN; the bins |v| < 0.05 are not drawn.
    let m = [1.0, 0.5, 0.0, 0.5, 1.0, -0.52, 0.0, -0.52, f64::NAN];
    let svg = heatmap(&m, 3, &opts());
    let c = parse_svg(&svg);
    // Bins present: +1.0, +0.5, −0.5 and NaN → four paths.
    assert_eq!(c["path"], 4, "{svg}");
    // Row 0 = [1.0, 0.5, 0.0]: runs "M0 0h1…" (bin 10) and "M1 0h1…" (bin 5).
    assert!(svg.contains("M0 0h1v1h-1z") && svg.contains("M1 0h1v1h-1z"));
    assert!(!svg.contains("M2 0h"), "a zero cell must not be drawn");
    // A 100 × 100 identity stays small: one path of 100 runs.
    let mut eye = vec![0.0; 100 * 100];
    for i in 0..100 {
        eye[i * 100 + i] = 1.0;
    }
    let big = heatmap(&eye, 100, &opts());
    assert!(big.len() < 6000, "{} bytes", big.len());
    parse_svg(&big);
}

#[test]
fn nice_ticks_are_round() {
    let check = |lo: f64, hi: f64, n: usize, step: f64, first: f64, last: f64| {
        let (t, s) = nice_ticks(lo, hi, n);
        assert_eq!(s, step, "{lo}..{hi}");
        assert_eq!(
            (t[0], *t.last().unwrap()),
            (first, last),
            "{lo}..{hi}: {t:?}"
        );
        assert!(t[0] <= lo && *t.last().unwrap() >= hi);
    };
    check(0.0, 0.93, 5, 0.2, 0.0, 1.0);
    check(0.0, 59.0, 6, 10.0, 0.0, 60.0);
    check(900.0, 4900.0, 5, 1000.0, 0.0, 5000.0);
    check(0.5, 0.71, 5, 0.05, 0.5, 0.75);
    check(-3.0, 7.0, 5, 2.0, -4.0, 8.0);
}

#[test]
fn coactivation_hand_checked() {
    // Columns: a = [1,0,0,1], b = [0,1,0,1], c = 2a, d = 0 (dead), f = [3,1,2,2].
    // Centred: a = ±½, b = [−½,½,−½,½], f = [1,−1,0,0]. Σab = 0 → r = 0; c = 2a → r = 1;
    // Σaf = 1, Σa² = 1, Σf² = 2 → r = 1/√2; Σbf = −1 → r = −1/√2; Σbb = 1.
    let cols: [[f32; 4]; 5] = [
        [1.0, 0.0, 0.0, 1.0],
        [0.0, 1.0, 0.0, 1.0],
        [2.0, 0.0, 0.0, 2.0],
        [0.0, 0.0, 0.0, 0.0],
        [3.0, 1.0, 2.0, 2.0],
    ];
    let (m, k) = (4, 5);
    let acts: Vec<f32> = (0..m)
        .flat_map(|s| (0..k).map(move |c| cols[c][s]))
        .collect();
    let r = coactivation(&acts, m, k);
    let at = |i: usize, j: usize| r[i * k + j];
    let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
    assert!(close(at(0, 1), 0.0));
    assert!(close(at(0, 2), 1.0));
    assert!(close(at(0, 4), 1.0 / 2f64.sqrt()));
    assert!(close(at(4, 1), -1.0 / 2f64.sqrt()));
    // Dead concept: row, column and diagonal 0; others' diagonal exactly 1; symmetric.
    for j in 0..k {
        assert_eq!(at(3, j), 0.0);
        assert_eq!(at(j, 3), 0.0);
    }
    for i in [0, 1, 2, 4] {
        assert_eq!(at(i, i), 1.0);
    }
    for i in 0..k {
        for j in 0..k {
            assert_eq!(at(i, j), at(j, i));
        }
    }
    // A NaN poisons its concept only.
    let mut bad = acts.clone();
    bad[k] = f32::NAN; // sample 1, concept 0
    let r = coactivation(&bad, m, k);
    assert!(r[1].is_nan() && r[0].is_nan());
    assert!(close(r[k + 4], -1.0 / 2f64.sqrt()));
}

#[test]
fn histogram_hand_checked() {
    let (e, c) = histogram(&[0.0, 1.0, 2.0, 3.0, 4.0], 4);
    assert_eq!(e, [0.0, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(c, [1, 1, 1, 2]); // the maximum falls in the last bin
    let (e, c) = histogram(&[2.0, 2.0, f32::NAN, f32::INFINITY], 2);
    assert_eq!(e, [1.5, 2.0, 2.5]);
    assert_eq!(c, [0, 2]);
    let (_, c) = histogram(&[], 3);
    assert_eq!(c, [0, 0, 0]);
}

/// Every file under `dir`, relative, sorted, with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

struct Built {
    _tmp: tempfile::TempDir,
    site: PathBuf,
    images: Vec<PathBuf>,
}

fn build(k: usize, explained: usize) -> (Built, cox_report::SiteSummary, ReportData) {
    let tmp = tempfile::tempdir().unwrap();
    let images = common::write_scenes(&tmp.path().join("images"), 40);
    let data = common::report(k, &images, explained);
    let site = tmp.path().join("site");
    let summary = write_site(&data, &site).unwrap();
    (
        Built {
            _tmp: tmp,
            site,
            images,
        },
        summary,
        data,
    )
}

/// Parses a page as XML (the pages are polyglot markup) and returns every `src`/`href` value.
fn page_links(path: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc =
        parse_page(&text).unwrap_or_else(|e| panic!("{} is not well-formed: {e}", path.display()));
    let links = doc
        .descendants()
        .filter(|n| n.is_element())
        .flat_map(|n| [n.attribute("src"), n.attribute("href")])
        .flatten()
        .map(str::to_string)
        .collect();
    (text, links)
}

/// Parses a page as XML (`<!DOCTYPE html>` is a DTD to roxmltree, so it must be allowed).
fn parse_page(text: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
    let opt = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, opt)
}

/// Undoes `url_path`'s percent-encoding.
fn unpercent(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn site_pages_cards_and_links() {
    let (b, summary, data) = build(12, 3);
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);
    // The 40 distinct images, each copied once although they appear on several pages.
    assert_eq!(summary.thumbnails_copied, 40);
    let mut expected: BTreeSet<String> = ["index.html", "style.css"].map(String::from).into();
    expected.extend((0..12).map(|c| format!("concept-{c:03}.html")));
    expected.extend((0..3).map(|e| format!("explain-{e:03}.html")));
    let html: BTreeSet<String> = summary
        .files
        .iter()
        .filter(|f| !f.starts_with("thumbs/"))
        .cloned()
        .collect();
    assert_eq!(html, expected);

    let mut pages_seen = 0;
    for f in &expected {
        if !f.ends_with(".html") {
            continue;
        }
        pages_seen += 1;
        let (text, links) = page_links(&b.site.join(f));
        // Every local link and image resolves inside the site; nothing points at the network or
        // embeds data.
        for l in &links {
            assert!(
                !l.contains("://") && !l.starts_with("data:") && !l.starts_with("//"),
                "{f}: {l}"
            );
            let target = unpercent(l.split('#').next().unwrap());
            assert!(
                b.site.join(&target).is_file(),
                "{f}: {l} does not exist in the site"
            );
            assert!(!target.contains(".."), "{f}: {l}");
        }
        assert!(
            text.contains("document.body.dataset.imagesBroken"),
            "{f}: no image check"
        );
        assert!(!text.contains("<script>alert"), "{f}");
        // Every image is lazy.
        assert_eq!(
            text.matches("<img ").count(),
            text.matches("loading=\"lazy\"").count(),
            "{f}"
        );
    }
    assert_eq!(pages_seen, 16);

    // The index: one card per concept, with its words and 5 thumbnails.
    let (index, links) = page_links(&b.site.join("index.html"));
    let doc = parse_page(&index).unwrap();
    for c in &data.concepts {
        let id = format!("concept-{:03}", c.index);
        let card = doc
            .descendants()
            .find(|n| n.attribute("id") == Some(id.as_str()))
            .unwrap_or_else(|| panic!("no card {id}"));
        assert_eq!(card.attribute("class"), Some("card"));
        let imgs = card.descendants().filter(|n| n.has_tag_name("img")).count();
        assert_eq!(imgs, 5, "{id}");
        let words: Vec<&str> = card
            .descendants()
            .filter(|n| n.has_tag_name("li"))
            .filter_map(|n| n.text())
            .collect();
        assert_eq!(
            words,
            c.words.iter().map(String::as_str).collect::<Vec<_>>(),
            "{id}"
        );
        assert!(links.contains(&format!("concept-{:03}.html", c.index)));
    }
    let imgs = doc.descendants().filter(|n| n.has_tag_name("img")).count();
    assert_eq!(imgs, common::index_images(12, 3));
    // The hostile title is escaped text, not markup.
    let title = doc.descendants().find(|n| n.has_tag_name("title")).unwrap();
    assert_eq!(title.text(), Some("Concepts of “square” <synthetic> & co"));
    // Plots are inline SVG: objective, recon-vs-K and the heatmap.
    for id in ["plot-objective", "plot-recon", "plot-coactivation"] {
        let fig = doc
            .descendants()
            .find(|n| n.attribute("id") == Some(id))
            .unwrap();
        assert!(fig.descendants().any(|n| n.has_tag_name("svg")), "{id}");
    }
    // The table bolds the best value in the direction of each row.
    assert!(index.contains("<b>0.610 <span class=\"std\">± 0.090</span></b>"));
    assert!(index.contains("<b>0.004</b>") && !index.contains("<b>0.501</b>"));

    // A concept page: 20 images, a bar per word logit, a histogram.
    let (page, _) = page_links(&b.site.join("concept-003.html"));
    let doc = parse_page(&page).unwrap();
    assert_eq!(
        doc.descendants().filter(|n| n.has_tag_name("img")).count(),
        20
    );
    let logits = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("plot-logits"))
        .unwrap();
    assert_eq!(
        logits
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .count(),
        12
    );
    assert!(doc
        .descendants()
        .any(|n| n.attribute("id") == Some("plot-hist")));
    // The explanation page marks the token in the caption.
    let explain = std::fs::read_to_string(b.site.join("explain-001.html")).unwrap();
    assert!(explain.contains("<mark>square</mark>"));
    let _ = &b.images;
}

#[test]
fn same_data_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let images = common::write_scenes(&tmp.path().join("images"), 40);
    let data = common::report(7, &images, 2);
    write_site(&data, &tmp.path().join("a")).unwrap();
    write_site(&data, &tmp.path().join("b")).unwrap();
    let (a, b) = (
        snapshot(&tmp.path().join("a")),
        snapshot(&tmp.path().join("b")),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert!(x.1 == y.1, "{} differs", x.0);
    }
    // Rewriting into the same folder changes nothing.
    write_site(&data, &tmp.path().join("a")).unwrap();
    assert!(snapshot(&tmp.path().join("a")) == a);
}

#[test]
fn missing_thumbnails_become_placeholders_and_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(site.join("thumbs")).unwrap();
    common::scene(0).save(site.join("thumbs/ok.png")).unwrap();
    let img = |id: &str, thumb: Option<&str>, error: Option<&str>| ImageRef {
        sample_id: id.into(),
        thumbnail: thumb.map(PathBuf::from),
        activation: Some(1.0),
        caption: None,
        error: error.map(String::from),
    };
    let missing_abs = tmp.path().join("nowhere.png");
    let inside_abs = site.join("thumbs/ok.png").canonicalize().unwrap();
    let data = ReportData {
        concepts: vec![
            ConceptReport {
                index: 4,
                words: vec!["dog".into()],
                mas: vec![
                    img("ok", Some("thumbs/ok.png"), None),
                    img("inside", Some(inside_abs.to_str().unwrap()), None),
                    img("gone", Some("thumbs/gone.png"), None),
                    img("abs", Some(missing_abs.to_str().unwrap()), None),
                    img("escape", Some("../outside.png"), None),
                ],
                ..Default::default()
            },
            ConceptReport {
                index: 5,
                mas: vec![img(
                    "unreadable",
                    None,
                    Some("cannot open image /x.png: not found"),
                )],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let summary = write_site(&data, &site).unwrap();
    assert_eq!(summary.problems.len(), 4, "{:#?}", summary.problems);
    for (p, needle) in summary.problems.iter().zip([
        "sample abs: cannot read thumbnail",
        "sample escape: thumbnail ../outside.png is not inside the site folder",
        "sample gone: thumbnail thumbs/gone.png not found",
        "sample unreadable: cannot open image /x.png",
    ]) {
        assert!(p.starts_with(needle), "{p} / {needle}");
    }
    let (index, _) = page_links(&site.join("index.html"));
    // The absolute path inside the site is referenced in place, not copied.
    assert_eq!(summary.thumbnails_copied, 0);
    assert_eq!(index.matches("<img ").count(), 2);
    assert_eq!(index.matches("src=\"thumbs/ok.png\"").count(), 2);
    assert_eq!(index.matches("class=\"thumb missing\"").count(), 4);
    assert!(index.contains("src=\"thumbs/ok.png\""));
}

#[test]
fn stale_pages_are_removed_and_other_files_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let images = common::write_scenes(&tmp.path().join("images"), 40);
    let site = tmp.path().join("site");
    write_site(&common::report(12, &images, 3), &site).unwrap();
    std::fs::write(site.join("notes.html"), "mine").unwrap();
    std::fs::write(site.join("concept-old.html"), "mine too").unwrap();
    write_site(&common::report(4, &images, 1), &site).unwrap();
    assert!(site.join("concept-003.html").exists());
    assert!(!site.join("concept-004.html").exists());
    assert!(!site.join("concept-011.html").exists());
    assert!(!site.join("explain-001.html").exists());
    assert!(site.join("notes.html").exists() && site.join("concept-old.html").exists());
}

#[test]
fn duplicate_concepts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let c = ConceptReport {
        index: 2,
        ..Default::default()
    };
    let data = ReportData {
        concepts: vec![c.clone(), c],
        ..Default::default()
    };
    assert!(matches!(
        write_site(&data, tmp.path()),
        Err(ReportError::DuplicateConcept(2))
    ));
}

#[test]
fn hundred_concepts_keep_the_index_small() {
    let (b, summary, _) = build(100, 0);
    let index = std::fs::read_to_string(b.site.join("index.html")).unwrap();
    assert_eq!(index.len(), summary.index_bytes);
    // About 1.3 kB per card plus a heatmap of 100 × 100 runs; nothing per-concept heavy.
    assert!(
        summary.index_bytes < 250_000,
        "index.html is {} bytes",
        summary.index_bytes
    );
    assert!(!index.contains("data:image"));
    assert_eq!(index.matches("<img ").count(), 500);
    assert_eq!(index.matches("class=\"card\"").count(), 100);
    // No histogram or logit chart on the index.
    assert!(!index.contains("plot-hist") && !index.contains("plot-logits"));
    eprintln!(
        "index.html with 100 concepts: {} bytes",
        summary.index_bytes
    );
}

#[test]
fn empty_report_is_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let summary = write_site(&ReportData::default(), tmp.path()).unwrap();
    assert_eq!(summary.files, ["index.html", "style.css"]);
    page_links(&tmp.path().join("index.html"));
}

#[test]
fn report_data_round_trips_through_json() {
    let tmp = tempfile::tempdir().unwrap();
    let images = common::write_scenes(&tmp.path().join("images"), 40);
    let mut data = common::report(3, &images, 1);
    // Values that print and parse exactly (serde_json's default float parsing may differ in the
    // last bit for arbitrary f64).
    data.plots.objective_trace = vec![4.5, 2.25, 2.0];
    data.plots.coactivation = Some(vec![1.0, 0.5, 0.0, 0.5, 1.0, -0.25, 0.0, -0.25, 1.0]);
    for c in &mut data.concepts {
        c.activation_share = Some(0.125);
    }
    let json = serde_json::to_string(&data).unwrap();
    let back: ReportData = serde_json::from_str(&json).unwrap();
    assert_eq!(back, data);
    // Cells in JSON: null, {"value", "std"} or a string.
    assert!(json.contains("{\"value\":0.61,\"std\":0.09}") && json.contains("\"n/a\""));
}

#[test]
fn steering_results_appear_escaped_on_the_concept_page() {
    let tmp = tempfile::tempdir().unwrap();
    let c = ConceptReport {
        index: 3,
        steering: vec![cox_report::SteeringRun {
            setting: "+4 × atom at block 2, generated positions".into(),
            changed: 0.5,
            examples: vec![cox_report::SteeringExample {
                sample_id: "test-000001".into(),
                before: "a small blue circle".into(),
                after: "a small red <circle>".into(),
            }],
        }],
        ..Default::default()
    };
    let data = ReportData {
        concepts: vec![c],
        ..Default::default()
    };
    write_site(&data, tmp.path()).unwrap();
    let page = std::fs::read_to_string(tmp.path().join("concept-003.html")).unwrap();
    assert!(page.contains("<h2>Steering</h2>"));
    assert!(page.contains("+4 × atom at block 2, generated positions"));
    assert!(page.contains("50% of captions changed"));
    assert!(page.contains("a small blue circle</td><td>a small red &lt;circle&gt;"));
    // No steering, no section.
    let data = ReportData {
        concepts: vec![ConceptReport {
            index: 1,
            ..Default::default()
        }],
        ..Default::default()
    };
    let other = tempfile::tempdir().unwrap();
    write_site(&data, other.path()).unwrap();
    let page = std::fs::read_to_string(other.path().join("concept-001.html")).unwrap();
    assert!(!page.contains("Steering"));
}
