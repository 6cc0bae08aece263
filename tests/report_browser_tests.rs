//! The report in a real browser: a generated site (12 concepts, real PNG thumbnails, 3 explained
//! images) is opened from `file://` in headless chromium; `--dump-dom` must show every concept card
//! and the page's own image check (`data-images-broken="0"` on `<body>`), and a screenshot must be a
//! real rendering. The screenshot is kept as `target/report-screenshot.png` for people to look at.
//!
//! Without chromium the test prints a loud skip and passes, unless `COXLMM_REQUIRE_BROWSER=1`
//! (CI), where it fails and says how to install it. `COXLMM_CHROMIUM` names a browser binary.

#[path = "../crates/cox-report/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const K: usize = 12;
const EXPLAINED: usize = 3;

/// The browser binary: `$COXLMM_CHROMIUM`, else the first of the usual names on `PATH`.
fn find_browser() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("COXLMM_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn browser_or_skip() -> Option<PathBuf> {
    let found = find_browser();
    if found.is_none() {
        if std::env::var("COXLMM_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!(
                "chromium is not installed but COXLMM_REQUIRE_BROWSER=1: install it with \
                 `apt-get install -y chromium` (Debian/Ubuntu) or point COXLMM_CHROMIUM at a \
                 Chrome/Chromium binary"
            );
        }
        // Written to the process's stderr directly, so that libtest's output capture of passing
        // tests does not hide it.
        use std::io::Write as _;
        let _ = std::io::stderr().write_all(
            b"\n************************************************************\n\
              *** skipped: chromium not installed (report browser test) ***\n\
              *** apt-get install -y chromium, or set COXLMM_CHROMIUM   ***\n\
              ************************************************************\n",
        );
    }
    found
}

/// Runs headless chromium with a fresh profile and the given extra arguments on `url`; returns
/// stdout. Fails the test on a non-zero exit or after two minutes.
fn chromium(browser: &Path, scratch: &Path, extra: &[String], url: &str) -> String {
    let profile = tempfile::tempdir_in(scratch).unwrap();
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=5000",
    ]
    .map(String::from)
    .into();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    args.extend(extra.iter().cloned());
    args.push(url.to_string());
    let out_file = scratch.join(format!("stdout-{}.html", extra.len()));
    let mut child = Command::new(browser)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 2 minutes: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium failed ({status}): {args:?}");
    std::fs::read_to_string(&out_file).unwrap()
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.canonicalize().unwrap().display())
}

/// The value of `attr="…"` in the dumped `<body …>` tag.
fn body_attr(dom: &str, attr: &str) -> Option<String> {
    let start = dom.find("<body")?;
    let tag = &dom[start..start + dom[start..].find('>')?];
    let key = format!("{attr}=\"");
    let i = tag.find(&key)? + key.len();
    Some(tag[i..i + tag[i..].find('"')?].to_string())
}

fn check_images(dom: &str, page: &str, total: usize, broken: usize) {
    assert_eq!(
        body_attr(dom, "data-images-total").as_deref(),
        Some(total.to_string().as_str()),
        "{page}: images total (is the page's load script running?)"
    );
    assert_eq!(
        body_attr(dom, "data-images-broken").as_deref(),
        Some(broken.to_string().as_str()),
        "{page}: broken images"
    );
}

#[test]
fn report_renders_in_a_real_browser() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let images = common::write_scenes(&tmp.path().join("images"), 40);
    let data = common::report(K, &images, EXPLAINED);
    let site = tmp.path().join("site");
    let summary = cox_report::write_site(&data, &site).unwrap();
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);
    let dump = ["--dump-dom".to_string()];

    // The index: every card, every image loaded (the lazy ones included).
    let dom = chromium(
        &browser,
        tmp.path(),
        &dump,
        &file_url(&site.join("index.html")),
    );
    for c in 0..K {
        assert!(
            dom.contains(&format!("id=\"concept-{c:03}\"")),
            "no card concept-{c:03} in the DOM"
        );
    }
    check_images(&dom, "index.html", common::index_images(K, EXPLAINED), 0);
    assert!(dom.contains("<svg"), "no inline SVG plot in the DOM");

    // A concept page (20 images) and an explanation page (the image + 3 × 3 MAS thumbnails).
    let dom = chromium(
        &browser,
        tmp.path(),
        &dump,
        &file_url(&site.join("concept-005.html")),
    );
    check_images(&dom, "concept-005.html", 20, 0);
    let dom = chromium(
        &browser,
        tmp.path(),
        &dump,
        &file_url(&site.join("explain-002.html")),
    );
    check_images(&dom, "explain-002.html", 1 + 3 * 3, 0);

    // The check can fail: a site whose thumbnail file disappeared reports it broken.
    let broken_site = tmp.path().join("broken");
    let small = common::report(2, &images, 0);
    cox_report::write_site(&small, &broken_site).unwrap();
    // The first thumbnail the index shows.
    let index = std::fs::read_to_string(broken_site.join("index.html")).unwrap();
    let at = index.find("src=\"thumbs/").unwrap() + "src=\"".len();
    let first = broken_site.join(&index[at..at + index[at..].find('"').unwrap()]);
    std::fs::remove_file(&first).unwrap();
    let dom = chromium(
        &browser,
        tmp.path(),
        &dump,
        &file_url(&broken_site.join("index.html")),
    );
    let broken: usize = body_attr(&dom, "data-images-broken")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(broken, 1, "a deleted thumbnail must be reported broken");

    // A screenshot at a desktop size: a real rendering, not a blank page.
    let shot = tmp.path().join("screenshot.png");
    chromium(
        &browser,
        tmp.path(),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".into(),
        ],
        &file_url(&site.join("index.html")),
    );
    let img = image::open(&shot)
        .expect("the screenshot is a PNG")
        .to_rgb8();
    assert_eq!(img.dimensions(), (1280, 900));
    let mut colours = std::collections::BTreeSet::new();
    for p in img.pixels() {
        colours.insert(p.0);
    }
    assert!(
        colours.len() > 50,
        "screenshot has only {} colours",
        colours.len()
    );
    // The dark top bar is drawn (the stylesheet loaded).
    assert_eq!(
        img.get_pixel(640, 5).0,
        [17, 24, 39],
        "top bar colour: is style.css applied?"
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(&shot, target.join("report-screenshot.png")).unwrap();
    eprintln!(
        "report browser test: index.html {} bytes, screenshot {} colours → {}",
        summary.index_bytes,
        colours.len(),
        target.join("report-screenshot.png").display()
    );
}
