//! The token of interest: which token ids count as "the model generated t".

use std::collections::BTreeSet;

use tokenizers::models::ModelWrapper;
use tokenizers::Tokenizer;

use crate::error::{HookError, Result};

/// How a tokenizer marks the start of a word, which decides how `t` is spelled as a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenizerKind {
    /// SentencePiece (LLaMA / Vicuna, Unigram or BPE with byte fallback): a word start is `▁dog`.
    SentencePiece,
    /// GPT-2-style byte-level BPE (OPT): a word after a space is `Ġdog`.
    ByteLevelBpe,
    /// A word-level (or WordPiece) vocabulary: the bare word `dog`.
    WordLevel,
}

impl TokenizerKind {
    /// The kind of `tok`: Unigram models are SentencePiece, WordLevel/WordPiece models are
    /// word-level, and a BPE model is whichever of `▁`-prefixed and `Ġ`-prefixed tokens its
    /// vocabulary has more of (word-level when neither).
    pub fn detect(tok: &Tokenizer) -> Self {
        match tok.get_model() {
            ModelWrapper::Unigram(_) => TokenizerKind::SentencePiece,
            ModelWrapper::WordLevel(_) | ModelWrapper::WordPiece(_) => TokenizerKind::WordLevel,
            ModelWrapper::BPE(_) => {
                let vocab = tok.get_vocab(false);
                let count = |c: char| vocab.keys().filter(|k| k.starts_with(c)).count();
                let (sp, bl) = (count('▁'), count('Ġ'));
                if sp == 0 && bl == 0 {
                    TokenizerKind::WordLevel
                } else if sp >= bl {
                    TokenizerKind::SentencePiece
                } else {
                    TokenizerKind::ByteLevelBpe
                }
            }
        }
    }

    /// The word-start marker pieces carry (`"▁"`, `"Ġ"`), `None` for word-level vocabularies.
    pub fn word_start(self) -> Option<&'static str> {
        match self {
            TokenizerKind::SentencePiece => Some("▁"),
            TokenizerKind::ByteLevelBpe => Some("Ġ"),
            TokenizerKind::WordLevel => None,
        }
    }
}

/// The token of interest `t` and the ids that stand for it in generated text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenOfInterest {
    /// `t` as given (the ground-truth filter searches captions for this string).
    pub token: String,
    /// The tokenizer's kind.
    pub kind: TokenizerKind,
    /// The accepted ids, increasing.
    pub ids: Vec<u32>,
    /// The token string of each id, in the order of `ids`.
    pub pieces: Vec<String>,
    /// Whether `t` itself is one vocabulary token (`▁dog` / `Ġdog` / `dog`); when not, the ids are
    /// only the first pieces of longer encodings (as in the reference).
    pub whole_word: bool,
}

/// `w` with its first character uppercased (Python's `str.capitalize` lowercases the rest too).
fn capitalize(w: &str) -> String {
    let mut chars = w.chars();
    match chars.next() {
        Some(c) => c
            .to_uppercase()
            .chain(chars.as_str().to_lowercase().chars())
            .collect(),
        None => String::new(),
    }
}

/// Whether `piece` is only word-boundary markers or whitespace (`▁`, `Ġ`, ` `, `▁▁`, …): such a
/// token is never a spelling of a word (the issue-#18 pitfall).
pub fn is_boundary_only(piece: &str) -> bool {
    piece
        .chars()
        .all(|c| c == '▁' || c == 'Ġ' || c.is_whitespace())
}

/// Whether `piece` is a byte-fallback token such as `<0x20>`.
fn is_byte_token(piece: &str) -> bool {
    piece.len() == 6 && piece.starts_with("<0x") && piece.ends_with('>')
}

impl TokenOfInterest {
    /// Builds ids(t). The reference takes the first id of `encode(v)` (no special tokens) for
    /// `v ∈ {t, t.capitalize(), t.lower(), " " + t}`; here, per tokenizer kind, the word-start
    /// pieces of `{t, t.capitalize(), t.lower()}` (`▁dog`, `Ġdog`, or the bare word) are added when
    /// they are vocabulary tokens, and every candidate that is a lone boundary token (`▁`, `Ġ`,
    /// whitespace), a byte-fallback token, the unknown token or a special token is refused — so
    /// SentencePiece's encoding of `" dog"` (`▁`, `▁dog`) never contributes `▁`.
    ///
    /// # Errors
    /// [`HookError::InvalidToken`] when `t` is empty or holds whitespace;
    /// [`HookError::NotRepresentable`] when no candidate survives (e.g. every spelling maps to
    /// `<unk>`).
    pub fn new(tok: &Tokenizer, t: &str) -> Result<Self> {
        let token = t.to_string();
        if t.is_empty() || t.chars().any(char::is_whitespace) {
            return Err(HookError::InvalidToken {
                token,
                msg: "expected one word without whitespace".into(),
            });
        }
        let kind = TokenizerKind::detect(tok);
        let specials: BTreeSet<u32> = tok
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, a)| a.special)
            .map(|(id, _)| id)
            .collect();
        let unk: Option<String> = match tok.get_model() {
            ModelWrapper::BPE(m) => m.unk_token.clone(),
            ModelWrapper::WordLevel(m) => Some(m.unk_token.clone()),
            _ => None,
        };
        let acceptable = |id: u32| -> std::result::Result<String, String> {
            let piece = tok
                .id_to_token(id)
                .ok_or_else(|| format!("id {id} has no token"))?;
            let refused = specials.contains(&id)
                || unk.as_deref() == Some(piece.as_str())
                || piece == "<unk>"
                || is_boundary_only(&piece)
                || is_byte_token(&piece);
            if refused {
                Err(piece)
            } else {
                Ok(piece)
            }
        };

        let mut words: Vec<String> = Vec::new();
        for w in [t.to_string(), capitalize(t), t.to_lowercase()] {
            if !words.contains(&w) {
                words.push(w);
            }
        }
        let mut ids = BTreeSet::new();
        let mut tried = Vec::new();
        let start = kind.word_start().unwrap_or("");
        let whole_word = tok
            .token_to_id(&format!("{start}{t}"))
            .is_some_and(|id| acceptable(id).is_ok());
        for w in &words {
            let piece = format!("{start}{w}");
            match tok.token_to_id(&piece) {
                Some(id) => match acceptable(id) {
                    Ok(_) => {
                        ids.insert(id);
                    }
                    Err(p) => tried.push(format!("{piece:?} is refused ({p:?})")),
                },
                None => tried.push(format!("{piece:?} is not in the vocabulary")),
            }
        }
        let mut variants = words.clone();
        variants.push(format!(" {t}"));
        for v in &variants {
            let enc = tok
                .encode(v.as_str(), false)
                .map_err(|e| HookError::Tokenizer(e.to_string()))?;
            match enc.get_ids().first() {
                Some(&id) => match acceptable(id) {
                    Ok(_) => {
                        ids.insert(id);
                    }
                    Err(p) => tried.push(format!("{v:?} starts with {p:?}")),
                },
                None => tried.push(format!("{v:?} encodes to nothing")),
            }
        }
        if ids.is_empty() {
            return Err(HookError::NotRepresentable {
                token,
                kind,
                detail: tried.join("; "),
            });
        }
        let ids: Vec<u32> = ids.into_iter().collect();
        let pieces = ids
            .iter()
            .map(|&id| tok.id_to_token(id).unwrap_or_default())
            .collect();
        Ok(Self {
            token,
            kind,
            ids,
            pieces,
            whole_word,
        })
    }

    /// Whether `id` stands for the token of interest.
    pub fn matches(&self, id: u32) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    /// The index of the first generated token that stands for `t`.
    pub fn find(&self, generated: &[u32]) -> Option<usize> {
        generated.iter().position(|&id| self.matches(id))
    }
}
