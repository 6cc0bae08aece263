//! The word lists behind `valid_word`: an English dictionary and a stopword list.

use std::collections::HashSet;
use std::io::Read;
use std::sync::OnceLock;

use crate::error::{GroundError, Result};
use crate::pystr::{is_number, py_isspace};

/// The bundled English word list (web2, 235,970 mixed-case words), gzip-compressed.
const BUNDLED_WORDS_GZ: &[u8] = include_bytes!("../data/web2-words.txt.gz");
/// The bundled stopword list (xl-vlms `gist_stopwords.txt`, 1,160 entries), verbatim.
const BUNDLED_STOPWORDS: &str = include_str!("../data/gist_stopwords.txt");

/// An English dictionary and a stopword list, with the reference's `valid_word` test.
///
/// Membership is exact and case-sensitive: the dictionary is kept as given (web2 is mixed case), and
/// the word tested is already lower-cased by the caller, so a word that the dictionary only holds
/// capitalised ("Aaron") is never valid — the reference's behaviour.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    words: HashSet<String>,
    stopwords: HashSet<String>,
}

impl Vocabulary {
    /// Builds a vocabulary from a dictionary and a stopword list, both taken verbatim (no trimming,
    /// no case folding). Duplicates are harmless.
    ///
    /// # Errors
    /// [`GroundError::EmptyList`] when `words` is empty. An empty stopword list is allowed and means
    /// "no stopwords".
    ///
    /// ```
    /// use cox_ground_text::Vocabulary;
    /// let vocab = Vocabulary::from_lists(["dog", "cat", "Paris", "the"], ["the"])?;
    /// assert!(vocab.is_valid_word("dog"));
    /// assert!(!vocab.is_valid_word("paris")); // only present capitalised
    /// assert!(!vocab.is_valid_word("the")); // a stopword
    /// assert!(vocab.is_valid_word("1e5")); // numbers always pass
    /// # Ok::<(), cox_ground_text::GroundError>(())
    /// ```
    pub fn from_lists<W, S>(words: W, stopwords: S) -> Result<Self>
    where
        W: IntoIterator,
        W::Item: Into<String>,
        S: IntoIterator,
        S::Item: Into<String>,
    {
        let words: HashSet<String> = words.into_iter().map(Into::into).collect();
        if words.is_empty() {
            return Err(GroundError::EmptyList {
                which: "English words",
            });
        }
        let stopwords = stopwords.into_iter().map(Into::into).collect();
        Ok(Self { words, stopwords })
    }

    /// The bundled lists of the reference: web2 (235,970 words) and the 1,160 gist stopwords, the
    /// latter split on "," only, so that the last entry is `"zz\n"` and "zz" is *not* a stopword
    /// (see [`parse_stopwords`]). Decoded once, on first use (about 0.1 s), then shared.
    pub fn bundled() -> &'static Vocabulary {
        static BUNDLED: OnceLock<Vocabulary> = OnceLock::new();
        BUNDLED.get_or_init(|| {
            let mut text = String::with_capacity(2_500_000);
            flate2::read::GzDecoder::new(BUNDLED_WORDS_GZ)
                .read_to_string(&mut text)
                .expect("the bundled word list is valid gzip-compressed UTF-8");
            Vocabulary::from_lists(parse_word_list(&text), parse_stopwords(BUNDLED_STOPWORDS))
                .expect("the bundled word list is not empty")
        })
    }

    /// The reference's `valid_word(w)` for an already normalised word (see
    /// [`normalize_word`](crate::normalize_word)):
    /// `(w in words and len(w) > 2 and w not in stopwords) or is_number(w)`, where `len` counts
    /// characters (Unicode scalar values), as Python does.
    pub fn is_valid_word(&self, w: &str) -> bool {
        (self.words.contains(w) && w.chars().count() > 2 && !self.stopwords.contains(w))
            || is_number(w)
    }

    /// Whether `w` is in the dictionary, as-is.
    pub fn contains_word(&self, w: &str) -> bool {
        self.words.contains(w)
    }

    /// Whether `w` is in the stopword list, as-is.
    pub fn is_stopword(&self, w: &str) -> bool {
        self.stopwords.contains(w)
    }

    /// The number of distinct dictionary words.
    pub fn num_words(&self) -> usize {
        self.words.len()
    }

    /// The number of distinct stopwords.
    pub fn num_stopwords(&self) -> usize {
        self.stopwords.len()
    }
}

/// Splits a dictionary file's text into words: one per line (`\n` or `\r\n`), lines kept verbatim,
/// blank (whitespace-only) lines skipped, as NLTK's word-list reader does.
pub fn parse_word_list(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.chars().all(py_isspace))
        .map(str::to_string)
        .collect()
}

/// Splits a stopword file's text exactly as the reference does: on "," only, nothing trimmed.
///
/// A file that ends with a newline therefore yields a last entry with the newline in it, which is
/// kept: for the bundled list that entry is `"zz\n"`, so the word "zz" is not a stopword.
///
/// ```
/// assert_eq!(cox_ground_text::parse_stopwords("a,b\n"), ["a", "b\n"]);
/// ```
pub fn parse_stopwords(text: &str) -> Vec<String> {
    text.split(',').map(str::to_string).collect()
}
