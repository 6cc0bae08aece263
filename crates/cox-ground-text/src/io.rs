//! Reading user word lists from files: the crate's only filesystem access.

use std::path::Path;

use crate::error::{GroundError, Result};
use crate::vocab::{parse_stopwords, parse_word_list, Vocabulary};

/// Reads a dictionary file: UTF-8, one word per line, see [`parse_word_list`].
///
/// # Errors
/// [`GroundError::ReadList`] naming the path when the file cannot be read or is not UTF-8.
pub fn read_word_list(path: impl AsRef<Path>) -> Result<Vec<String>> {
    read(path.as_ref(), "English words").map(|text| parse_word_list(&text))
}

/// Reads a stopword file in the reference's format: UTF-8, comma-separated, split on "," only (a
/// trailing newline stays in the last entry), see [`parse_stopwords`].
///
/// # Errors
/// [`GroundError::ReadList`] naming the path when the file cannot be read or is not UTF-8.
pub fn read_stopwords(path: impl AsRef<Path>) -> Result<Vec<String>> {
    read(path.as_ref(), "stopwords").map(|text| parse_stopwords(&text))
}

/// A [`Vocabulary`] from a dictionary file and a stopword file (see [`read_word_list`] and
/// [`read_stopwords`]).
///
/// # Errors
/// [`GroundError::ReadList`] naming the path, or [`GroundError::EmptyList`] when the dictionary
/// has no words.
pub fn read_vocabulary(
    words_path: impl AsRef<Path>,
    stopwords_path: impl AsRef<Path>,
) -> Result<Vocabulary> {
    Vocabulary::from_lists(read_word_list(words_path)?, read_stopwords(stopwords_path)?)
}

fn read(path: &Path, which: &'static str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| GroundError::ReadList {
        which,
        path: path.to_path_buf(),
        source,
    })
}
