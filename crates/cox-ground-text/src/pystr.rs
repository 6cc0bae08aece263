//! The three pieces of Python string semantics the reference filter relies on: `str.lower()`,
//! `str.strip()` (whitespace as `str.isspace`) and "does `float(s)` parse".

/// Python's `str.isspace` for one character.
///
/// Rust's [`char::is_whitespace`] (Unicode `White_Space`) differs from Python only on the four
/// information separators U+001C–U+001F, which Python counts as whitespace.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s.lower().strip()` as the reference applies it to every decoded token.
///
/// Lower-casing uses Rust's full Unicode mapping ([`str::to_lowercase`], final sigma included), which
/// agrees with Python's `str.lower` up to the Unicode version of the two runtimes.
///
/// ```
/// assert_eq!(cox_ground_text::normalize_word(" Dog\u{1f}"), "dog");
/// ```
pub fn normalize_word(s: &str) -> String {
    s.to_lowercase().trim_matches(py_isspace).to_string()
}

/// Whether Python's `float(s)` accepts `s` (the reference's `is_number`).
///
/// This follows CPython's `float()` for `str` arguments exactly:
/// 1. A non-ASCII string is first mapped character by character: Unicode whitespace becomes a space,
///    a decimal digit of any script (category Nd, Unicode 15.0 as in Python 3.12) becomes the ASCII
///    digit, and any other non-ASCII character makes the parse fail.
/// 2. Leading and trailing ASCII whitespace (space, `\t\n\v\f\r`) is stripped; nothing may remain
///    empty.
/// 3. Underscores are allowed only between two digits (`1_000`, `1e1_0`; not `_1`, `1_`, `1__0`,
///    `1_.5`), and are then removed.
/// 4. What is left must match `[sign] (digits ["." [digits]] | "." digits) [("e"|"E") [sign] digits]`
///    or `[sign] ("inf" | "infinity" | "nan")` case-insensitively. Overflow is not an error
///    (`float("1e999")` is `inf`), and there is no hexadecimal form and no NaN payload.
///
/// ```
/// use cox_ground_text::is_number;
/// for yes in ["1", "-1e5", "1_000", " 3.5 ", "nan", "-Infinity", "1.", ".5", "1e999", "\u{661}"] {
///     assert!(is_number(yes), "{yes:?}");
/// }
/// for no in ["", "1__0", "_1", "1_", "1e", ".", "infinit", "0x10", "nan(1)", "1 2", "one"] {
///     assert!(!is_number(no), "{no:?}");
/// }
/// ```
pub fn is_number(s: &str) -> bool {
    // Step 1: the ASCII transform of non-ASCII strings.
    let mut buf = Vec::with_capacity(s.len());
    for c in s.chars() {
        if (c as u32) < 127 {
            buf.push(c as u8);
        } else if py_isspace(c) {
            buf.push(b' ');
        } else if let Some(d) = unicode_decimal(c) {
            buf.push(b'0' + d);
        } else {
            return false;
        }
    }
    // Step 2: strip ASCII whitespace (CPython's `Py_ISSPACE`).
    let is_ascii_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = buf.iter().position(|b| !is_ascii_space(b));
    let Some(start) = start else {
        return false;
    };
    let end = buf.iter().rposition(|b| !is_ascii_space(b)).unwrap() + 1;
    let s = &buf[start..end];
    // Step 3: underscores only between digits.
    let mut clean = Vec::with_capacity(s.len());
    let mut prev = 0u8;
    for &b in s {
        if b == b'_' {
            if !prev.is_ascii_digit() {
                return false;
            }
        } else {
            if prev == b'_' && !b.is_ascii_digit() {
                return false;
            }
            clean.push(b);
        }
        prev = b;
    }
    if prev == b'_' {
        return false;
    }
    // Step 4: the strtod grammar, or inf/nan.
    parses_as_float(&clean)
}

fn parses_as_float(s: &[u8]) -> bool {
    let body = match s.first() {
        Some(b'+' | b'-') => &s[1..],
        _ => s,
    };
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_slice(), b"inf" | b"infinity" | b"nan") {
        return true;
    }
    let mut i = 0;
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < body.len() && body[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - from
    };
    let int_digits = digits(&mut i);
    let mut frac_digits = 0;
    if i < body.len() && body[i] == b'.' {
        i += 1;
        frac_digits = digits(&mut i);
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if i < body.len() && (body[i] == b'e' || body[i] == b'E') {
        i += 1;
        if i < body.len() && (body[i] == b'+' || body[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == body.len()
}

/// The code points of the digit zero of every run of ten Unicode decimal digits (category Nd),
/// Unicode 15.0 (Python 3.12): every Nd character is `zero + value` for one of these.
const DECIMAL_ZEROS: [u32; 68] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x11F50, 0x16A60, 0x16AC0,
    0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E950,
    0x1FBF0,
];

/// Python's `unicodedata.decimal(c)` (what CPython's `Py_UNICODE_TODECIMAL` returns).
fn unicode_decimal(c: char) -> Option<u8> {
    let cp = c as u32;
    let idx = DECIMAL_ZEROS.partition_point(|&z| z <= cp);
    let zero = DECIMAL_ZEROS[idx.checked_sub(1)?];
    (cp - zero < 10).then(|| (cp - zero) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_table_is_sorted_runs_of_ten() {
        assert!(DECIMAL_ZEROS.windows(2).all(|w| w[1] - w[0] >= 10));
        assert_eq!(unicode_decimal('7'), Some(7));
        assert_eq!(unicode_decimal('\u{ff19}'), Some(9));
        assert_eq!(unicode_decimal('\u{1d7ff}'), Some(9));
        assert_eq!(unicode_decimal('\u{1d800}'), None);
        assert_eq!(unicode_decimal('a'), None);
        assert_eq!(unicode_decimal('\u{2155}'), None); // vulgar fraction one fifth: No, not Nd
        assert_eq!(unicode_decimal('\u{00b2}'), None); // superscript two: No, not Nd
    }
}
