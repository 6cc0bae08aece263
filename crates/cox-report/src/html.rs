//! HTML helpers: escaping, URL paths, number formatting and the page shell.
//!
//! Pages are polyglot markup: valid HTML5 that is also well-formed XML (void elements self-closed,
//! every attribute quoted, only XML's five named entities, no `<` or `&` in the inline script), so
//! tests can parse them with an XML parser.

/// Escapes text for HTML element content and quoted attribute values: `&`, `<`, `>`, `"` and `'`
/// become character references. Every user-controlled string in the report goes through it.
///
/// ```
/// assert_eq!(cox_report::escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
///            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline are not allowed in XML; drop them.
            c if c.is_control() && c != '\t' && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}

/// A relative path as a URL path for `src`/`href`: `/`-separated segments with every byte outside
/// `A-Z a-z 0-9 - . _ ~` percent-encoded (so spaces, `#`, `?` and `%` in file names work from
/// `file://`). The result needs no further escaping in an attribute.
///
/// ```
/// assert_eq!(cox_report::html::url_path("thumbs/a b#1.png"), "thumbs/a%20b%231.png");
/// ```
pub fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A number with `decimals` digits after the point; NaN as `NaN`, infinities as `∞`/`−∞`, and a
/// negative zero as `0`.
///
/// ```
/// use cox_report::html::fmt_num;
/// assert_eq!(fmt_num(0.61049, 3), "0.610");
/// assert_eq!(fmt_num(-0.0001, 2), "0.00");
/// assert_eq!(fmt_num(f64::NEG_INFINITY, 2), "−∞");
/// ```
pub fn fmt_num(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "∞".into()
        } else {
            "−∞".into()
        };
    }
    let s = format!("{v:.decimals$}");
    // "-0.00" → "0.00".
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// The script on every page: after `load` it lets lazy images load, waits for every image, then
/// records `data-images-total` and `data-images-broken` (images with `!complete || naturalWidth
/// === 0`) on `<body>`, so a headless browser's `--dump-dom` shows whether every image loaded.
/// It contains no `<` or `&`, so the page stays well-formed XML.
pub const CHECK_IMAGES_SCRIPT: &str = "window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  imgs.forEach(function (i) { if (i.loading === 'lazy') { i.loading = 'eager'; } });
  Promise.all(imgs.map(function (i) {
    return i.complete ? null : new Promise(function (done) {
      i.addEventListener('load', done);
      i.addEventListener('error', done);
    });
  })).then(function () {
    var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; }).length;
    document.body.dataset.imagesTotal = String(imgs.length);
    document.body.dataset.imagesBroken = String(broken);
  });
});";

/// A complete page: `<head>` with the title and `style.css`, a top bar linking to the index with
/// `subtitle`, the `main` content, a footer and [`CHECK_IMAGES_SCRIPT`]. `title` and `subtitle` are
/// escaped here; `main` is markup.
pub(crate) fn page(title: &str, subtitle: &str, page_class: &str, main: &str) -> String {
    let mut s = String::with_capacity(main.len() + 2048);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n");
    s.push_str(&format!("<title>{}</title>\n", escape(title)));
    s.push_str("<link rel=\"stylesheet\" href=\"style.css\" />\n</head>\n");
    s.push_str(&format!("<body class=\"{page_class}\">\n"));
    s.push_str("<header class=\"topbar\"><a class=\"brand\" href=\"index.html\">CoX-LMM</a>");
    if !subtitle.is_empty() {
        s.push_str(&format!("<span class=\"run\">{}</span>", escape(subtitle)));
    }
    s.push_str("</header>\n<main>\n");
    s.push_str(main);
    s.push_str("</main>\n<footer>Static report written by coxlmm. Opens from file:// with no server and no network.</footer>\n");
    s.push_str("<script>\n");
    s.push_str(CHECK_IMAGES_SCRIPT);
    s.push_str("\n</script>\n</body>\n</html>\n");
    s
}
