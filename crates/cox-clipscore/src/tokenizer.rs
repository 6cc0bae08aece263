//! The CLIP tokenizer: OpenAI's byte-level BPE (`SimpleTokenizer`) with `clip.tokenize`'s
//! context handling, or an HF `tokenizer.json` when a CLIP directory ships one.
//!
//! [`ClipBpe`] reimplements OpenAI's `SimpleTokenizer` over `bpe_simple_vocab_16e6.txt.gz`:
//!
//! 1. basic cleaning — the parts of `ftfy.fix_text` that act on well-formed text (NFC, curly
//!    quotes to straight ones, Latin ligatures, full-width ASCII to half width, control
//!    characters removed), then `html.unescape` twice — and whitespace normalisation
//!    (`" ".join(text.split())`, Python's whitespace), then lower case;
//! 2. the CLIP pre-tokeniser regex
//!    `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`;
//! 3. each piece as UTF-8 bytes mapped through GPT-2's `bytes_to_unicode`, the last symbol
//!    marked with `</w>`, merged greedily by rank.
//!
//! [`ClipBpe::tokenize`] is `clip.tokenize(text, context_length=77, truncate=True)`:
//! `[<|startoftext|>] + ids + [<|endoftext|>]`, cut to the context with the last kept id replaced
//! by `<|endoftext|>`, padded with 0.
//!
//! **Deviations from the reference.** `ftfy`'s mojibake repair (re-decoding text that was
//! decoded with the wrong codec) is not implemented, and `html.unescape` knows numeric
//! references plus the named entities `amp lt gt quot apos nbsp` (with `;`, and the first four
//! and `nbsp` also without, as Python does). Ordinary text — including all of the project's
//! prompts, which are built from lower-case dictionary words — is unaffected; the fixture test
//! (`tests/fixtures/tokenizer/`) shows which inputs `ftfy` changes.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::error::{ClipError, Result};

/// CLIP's context length (77 token positions).
pub const CONTEXT_LENGTH: usize = 77;

/// The start-of-text marker of the CLIP vocabulary.
pub const SOT: &str = "<|startoftext|>";
/// The end-of-text marker of the CLIP vocabulary.
pub const EOT: &str = "<|endoftext|>";

/// Number of merges `SimpleTokenizer` reads: lines `1 .. 49152 - 256 - 2 + 1` of the file.
const NUM_MERGES: usize = 49152 - 256 - 2;

/// GPT-2's reversible byte → printable character table (`bytes_to_unicode`).
fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let printable = |b: u32| {
        (u32::from(b'!')..=u32::from(b'~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut n = 0;
    for b in 0..256u32 {
        table[b as usize] = if printable(b) {
            char::from_u32(b).expect("byte is a char")
        } else {
            n += 1;
            char::from_u32(256 + n - 1).expect("valid char")
        };
    }
    table
}

/// The order in which `bytes_to_unicode().values()` lists the byte characters: the printable
/// bytes first, in byte order, then the others.
fn byte_vocab_order(table: &[char; 256]) -> Vec<char> {
    let mut printable: Vec<char> = Vec::new();
    let mut other: Vec<char> = Vec::new();
    for (b, &c) in table.iter().enumerate() {
        if c as u32 == b as u32 {
            printable.push(c);
        } else {
            other.push(c);
        }
    }
    printable.extend(other);
    printable
}

/// OpenAI CLIP's byte-level BPE tokenizer.
#[derive(Debug, Clone)]
pub struct ClipBpe {
    encoder: HashMap<String, u32>,
    ranks: HashMap<(String, String), usize>,
    byte_chars: [char; 256],
    pat: Regex,
    sot: u32,
    eot: u32,
}

impl ClipBpe {
    /// Loads `bpe_simple_vocab_16e6.txt.gz` (gzip) or its decompressed text.
    ///
    /// # Errors
    /// [`ClipError::Io`] when the file cannot be read, [`ClipError::Tokenizer`] when it is not
    /// a CLIP merges file (too few merge lines, malformed lines).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| ClipError::io(path, e))?;
        let text = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut s = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut s)
                .map_err(|e| ClipError::Tokenizer {
                    path: path.to_path_buf(),
                    msg: format!("cannot decompress: {e}"),
                })?;
            s
        } else {
            String::from_utf8(bytes).map_err(|e| ClipError::Tokenizer {
                path: path.to_path_buf(),
                msg: format!("not UTF-8: {e}"),
            })?
        };
        Self::from_merges_text(&text, path)
    }

    /// Builds the tokenizer from the merges file's text; `label` names it in errors.
    ///
    /// ```
    /// use cox_clipscore::ClipBpe;
    /// // A two-merge toy file (the first line is a header, as in the real file).
    /// let bpe = ClipBpe::from_merges_text_lenient("#version: 0.2\nd o\ndo g</w>\n")?;
    /// assert_eq!(bpe.encode("dog")?, vec![bpe.token_id("dog</w>").unwrap()]);
    /// # Ok::<(), cox_clipscore::ClipError>(())
    /// ```
    pub fn from_merges_text(text: &str, label: &Path) -> Result<Self> {
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() < NUM_MERGES + 1 {
            return Err(ClipError::Tokenizer {
                path: label.to_path_buf(),
                msg: format!(
                    "{} lines, a CLIP merges file has at least {} (is this \
                     bpe_simple_vocab_16e6.txt.gz?)",
                    lines.len(),
                    NUM_MERGES + 1
                ),
            });
        }
        Self::build(&lines[1..=NUM_MERGES], label)
    }

    /// Like [`ClipBpe::from_merges_text`] but uses every line after the header, however many;
    /// for tests and toy vocabularies.
    pub fn from_merges_text_lenient(text: &str) -> Result<Self> {
        let lines: Vec<&str> = text.split('\n').skip(1).filter(|l| !l.is_empty()).collect();
        Self::build(&lines, Path::new("<memory>"))
    }

    fn build(merge_lines: &[&str], label: &Path) -> Result<Self> {
        let byte_chars = bytes_to_unicode();
        let mut vocab: Vec<String> = byte_vocab_order(&byte_chars)
            .into_iter()
            .map(String::from)
            .collect();
        let with_end: Vec<String> = vocab.iter().map(|v| format!("{v}</w>")).collect();
        vocab.extend(with_end);
        let mut ranks = HashMap::with_capacity(merge_lines.len());
        for (i, line) in merge_lines.iter().enumerate() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() != 2 {
                return Err(ClipError::Tokenizer {
                    path: label.to_path_buf(),
                    msg: format!("merge line {} is {line:?}, expected two symbols", i + 2),
                });
            }
            vocab.push(format!("{}{}", parts[0], parts[1]));
            ranks.insert((parts[0].to_string(), parts[1].to_string()), i);
        }
        vocab.push(SOT.to_string());
        vocab.push(EOT.to_string());
        let encoder: HashMap<String, u32> = vocab
            .into_iter()
            .enumerate()
            .map(|(i, v)| (v, i as u32))
            .collect();
        let sot = encoder[SOT];
        let eot = encoder[EOT];
        let pat = Regex::new(
            r"(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        )
        .expect("the CLIP pattern compiles");
        Ok(Self {
            encoder,
            ranks,
            byte_chars,
            pat,
            sot,
            eot,
        })
    }

    /// Vocabulary size (49408 for the real file).
    pub fn vocab_size(&self) -> usize {
        self.encoder.len()
    }

    /// Id of `<|startoftext|>`.
    pub fn sot_id(&self) -> u32 {
        self.sot
    }

    /// Id of `<|endoftext|>`.
    pub fn eot_id(&self) -> u32 {
        self.eot
    }

    /// Id of a vocabulary entry (`"dog</w>"`), if present.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.encoder.get(token).copied()
    }

    /// Merges one pre-token (already mapped to byte characters) into BPE symbols.
    fn bpe(&self, token: &str) -> Vec<String> {
        if token == SOT || token == EOT {
            return vec![token.to_string()];
        }
        let chars: Vec<char> = token.chars().collect();
        let mut word: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        if let Some(last) = word.last_mut() {
            last.push_str("</w>");
        }
        if word.len() < 2 {
            return word;
        }
        loop {
            // The lowest-ranked pair present; pairs not in the merges never merge.
            let mut best: Option<(usize, usize)> = None;
            for i in 0..word.len() - 1 {
                if let Some(&r) = self.ranks.get(&(word[i].clone(), word[i + 1].clone())) {
                    if best.is_none_or(|(br, _)| r < br) {
                        best = Some((r, i));
                    }
                }
            }
            let Some((_, at)) = best else { break };
            let (first, second) = (word[at].clone(), word[at + 1].clone());
            // Merge every non-overlapping occurrence, left to right, as the reference does.
            let mut merged = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == first && word[i + 1] == second {
                    merged.push(format!("{first}{second}"));
                    i += 2;
                } else {
                    merged.push(word[i].clone());
                    i += 1;
                }
            }
            word = merged;
            if word.len() == 1 {
                break;
            }
        }
        word
    }

    /// The cleaned, lower-cased text the pre-tokeniser sees (`_clean_lower` of open_clip).
    pub fn clean(text: &str) -> String {
        let fixed = fix_text(text);
        let unescaped = html_unescape(&html_unescape(&fixed));
        whitespace_clean(&unescaped).to_lowercase()
    }

    /// Token ids of `text` without `<|startoftext|>`/`<|endoftext|>` (`SimpleTokenizer.encode`).
    ///
    /// # Errors
    /// [`ClipError::Tokenizer`] if a BPE symbol is missing from the vocabulary (impossible with
    /// the real file, whose vocabulary holds every merge result).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let cleaned = Self::clean(text);
        let mut ids = Vec::new();
        for m in self.pat.find_iter(&cleaned) {
            let piece = m.as_str();
            let mapped: String = if piece == SOT || piece == EOT {
                piece.to_string()
            } else {
                piece.bytes().map(|b| self.byte_chars[b as usize]).collect()
            };
            for sym in self.bpe(&mapped) {
                let id = self
                    .encoder
                    .get(&sym)
                    .copied()
                    .ok_or_else(|| ClipError::Tokenizer {
                        path: PathBuf::from("<vocabulary>"),
                        msg: format!("BPE symbol {sym:?} is not in the vocabulary"),
                    })?;
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// `clip.tokenize(text, context_length, truncate=True)` for one text: start and end markers,
    /// truncation that keeps the end marker, zero padding to `context_length`.
    ///
    /// # Panics
    /// If `context_length < 2`.
    #[track_caller]
    pub fn tokenize(&self, text: &str, context_length: usize) -> Result<Vec<u32>> {
        let body = self.encode(text)?;
        Ok(frame(&body, self.sot, self.eot, context_length))
    }
}

/// `[sot] + body + [eot]`, truncated to `context_length` with the last id set to `eot`
/// (`truncate=True`), then zero-padded.
#[track_caller]
pub(crate) fn frame(body: &[u32], sot: u32, eot: u32, context_length: usize) -> Vec<u32> {
    assert!(context_length >= 2, "context_length must be at least 2");
    let mut ids = Vec::with_capacity(context_length);
    ids.push(sot);
    ids.extend_from_slice(body);
    ids.push(eot);
    if ids.len() > context_length {
        ids.truncate(context_length);
        ids[context_length - 1] = eot;
    }
    ids.resize(context_length, 0);
    ids
}

/// Python's `str.isspace()` (Unicode White_Space plus the information separators U+001C–U+001F).
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `" ".join(text.split())`.
fn whitespace_clean(text: &str) -> String {
    text.split(is_py_space)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The parts of `ftfy.fix_text` (default settings) that act on well-formed text: control
/// characters removed, curly quotes straightened, Latin ligatures and full-width characters
/// decomposed, line breaks unified, NFC; then `strip()` is left to the caller's whitespace step.
fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // fix_line_breaks: CRLF, CR, LS, PS, NEL -> LF.
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\u{2028}' | '\u{2029}' | '\u{85}' => out.push('\n'),
            // uncurl_quotes.
            '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' => out.push('\''),
            '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' => out.push('"'),
            // fix_latin_ligatures.
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            '\u{132}' => out.push_str("IJ"),
            '\u{133}' => out.push_str("ij"),
            // fix_character_width: full-width ASCII and the ideographic space.
            '\u{ff01}'..='\u{ff5e}' => {
                out.push(char::from_u32(c as u32 - 0xff01 + 0x21).expect("ASCII"))
            }
            '\u{3000}' => out.push(' '),
            // remove_control_chars (ftfy's CONTROL_CHARS table, the parts that occur in text).
            '\u{0}'..='\u{8}'
            | '\u{b}'
            | '\u{e}'..='\u{1f}'
            | '\u{7f}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffc}' => {}
            _ => out.push(c),
        }
    }
    let mut n = tokenizers::NormalizedString::from(out.as_str());
    n.nfc();
    n.get().to_string()
}

/// Python's `html.unescape`, restricted to numeric references and a few named entities.
fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos + 1..];
        match decode_entity(tail) {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = &tail[used..];
            }
            None => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes the entity at the start of `s` (just after `&`); returns the text and the bytes used.
fn decode_entity(s: &str) -> Option<(String, usize)> {
    if let Some(num) = s.strip_prefix('#') {
        let (hex, digits_start) = match num.chars().next() {
            Some('x') | Some('X') => (true, 1),
            _ => (false, 0),
        };
        let digits: String = num[digits_start..]
            .chars()
            .take_while(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .collect();
        if digits.is_empty() {
            return None;
        }
        let mut used = 1 + digits_start + digits.len();
        if num[digits_start + digits.len()..].starts_with(';') {
            used += 1;
        }
        let value = u32::from_str_radix(&digits, if hex { 16 } else { 10 }).unwrap_or(u32::MAX);
        return Some((numeric_char(value), used));
    }
    const WITH_OPTIONAL_SEMI: &[(&str, &str)] = &[
        ("amp", "&"),
        ("lt", "<"),
        ("gt", ">"),
        ("quot", "\""),
        ("nbsp", "\u{a0}"),
    ];
    if let Some(rest) = s.strip_prefix("apos;") {
        let _ = rest;
        return Some(("'".to_string(), 5));
    }
    for (name, value) in WITH_OPTIONAL_SEMI {
        if let Some(after) = s.strip_prefix(name) {
            let used = name.len() + usize::from(after.starts_with(';'));
            return Some((value.to_string(), used));
        }
    }
    None
}

/// `html._replace_charref` for numeric references.
fn numeric_char(value: u32) -> String {
    const CP1252: [u32; 32] = [
        0x20ac, 0x81, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8d, 0x017d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013,
        0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x9d, 0x017e, 0x0178,
    ];
    let c = if (0x80..=0x9f).contains(&value) {
        CP1252[(value - 0x80) as usize]
    } else if value == 0 || (0xd800..=0xdfff).contains(&value) || value > 0x10ffff {
        0xfffd
    } else {
        value
    };
    char::from_u32(c).unwrap_or('\u{fffd}').to_string()
}

/// Which tokenizer a CLIP directory uses.
#[derive(Debug, Clone)]
pub enum ClipTokenizer {
    /// OpenAI's BPE from `bpe_simple_vocab_16e6.txt.gz`.
    Bpe(Box<ClipBpe>),
    /// An HF `tokenizer.json`; `sot`/`eot` are the ids of `<|startoftext|>`/`<|endoftext|>`.
    Hf {
        /// The tokenizer.
        tokenizer: Box<tokenizers::Tokenizer>,
        /// Id of `<|startoftext|>`.
        sot: u32,
        /// Id of `<|endoftext|>`.
        eot: u32,
    },
}

impl From<ClipBpe> for ClipTokenizer {
    fn from(bpe: ClipBpe) -> Self {
        ClipTokenizer::Bpe(Box::new(bpe))
    }
}

impl ClipTokenizer {
    /// Loads an HF `tokenizer.json` (the `tokenizer.json` of `openai/clip-vit-base-patch32`).
    ///
    /// # Errors
    /// [`ClipError::Tokenizer`] if the file does not parse or lacks `<|startoftext|>` /
    /// `<|endoftext|>`.
    pub fn from_tokenizer_json(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bad = |msg: String| ClipError::Tokenizer {
            path: path.to_path_buf(),
            msg,
        };
        let mut tokenizer =
            tokenizers::Tokenizer::from_file(path).map_err(|e| bad(e.to_string()))?;
        // Framing, truncation and zero padding are `clip.tokenize`'s, applied in `tokenize`;
        // padding or truncation configured in the file would put pad ids inside the text.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| bad(e.to_string()))?;
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| bad(format!("no {t} token")))
        };
        let (sot, eot) = (id(SOT)?, id(EOT)?);
        Ok(ClipTokenizer::Hf {
            tokenizer: Box::new(tokenizer),
            sot,
            eot,
        })
    }

    /// Id of `<|endoftext|>` (the position CLIP pools the text embedding from).
    pub fn eot_id(&self) -> u32 {
        match self {
            ClipTokenizer::Bpe(b) => b.eot_id(),
            ClipTokenizer::Hf { eot, .. } => *eot,
        }
    }

    /// `clip.tokenize(text, context_length, truncate=True)`: ids padded with 0.
    ///
    /// With a `tokenizer.json`, the text is encoded without special tokens and framed the same
    /// way, so both tokenizers give the same ids for the same vocabulary.
    pub fn tokenize(&self, text: &str, context_length: usize) -> Result<Vec<u32>> {
        match self {
            ClipTokenizer::Bpe(b) => b.tokenize(text, context_length),
            ClipTokenizer::Hf {
                tokenizer,
                sot,
                eot,
            } => {
                let enc = tokenizer
                    .encode(text, false)
                    .map_err(|e| ClipError::Tokenizer {
                        path: PathBuf::from("tokenizer.json"),
                        msg: e.to_string(),
                    })?;
                Ok(frame(enc.get_ids(), *sot, *eot, context_length))
            }
        }
    }
}
