//! ids(t) on real tokenizers built in the test: word-level, GPT-2 byte-level BPE, SentencePiece
//! Unigram, and a LLaMA-style SentencePiece BPE where the issue-#18 pitfall (a lone `▁`) happens.

use cox_hook::{is_boundary_only, HookError, TokenOfInterest, TokenizerKind};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::models::unigram::Unigram;
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::normalizers::{Prepend, Replace, Sequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::{AddedToken, Tokenizer};

fn id(tok: &Tokenizer, piece: &str) -> u32 {
    tok.token_to_id(piece)
        .unwrap_or_else(|| panic!("{piece} not in vocab"))
}

fn ids_of(tok: &Tokenizer, pieces: &[&str]) -> Vec<u32> {
    let mut v: Vec<u32> = pieces.iter().map(|p| id(tok, p)).collect();
    v.sort_unstable();
    v
}

/// The word-level tokenizer of the tiny LLaVA checkpoints (whitespace pre-tokenizer).
fn word_level() -> Tokenizer {
    let words = [
        "<unk>", "<s>", "</s>", "a", "dog", "Dog", "cat", "runs", "▁", "Ġ",
    ];
    let model = WordLevel::builder()
        .vocab(
            words
                .iter()
                .enumerate()
                .map(|(i, w)| (w.to_string(), i as u32))
                .collect(),
        )
        .unk_token("<unk>".into())
        .build()
        .unwrap();
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Whitespace {}));
    tok.add_special_tokens(&[
        AddedToken::from("<s>", true),
        AddedToken::from("</s>", true),
    ]);
    tok
}

fn bpe(vocab: &[&str], merges: &[(&str, &str)], unk: Option<&str>, byte_fallback: bool) -> BPE {
    let v: Vocab = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.to_string(), i as u32))
        .collect();
    let m = merges
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let mut b = BPE::builder()
        .vocab_and_merges(v, m)
        .byte_fallback(byte_fallback);
    if let Some(u) = unk {
        b = b.unk_token(u.into());
    }
    b.build().unwrap()
}

/// A GPT-2/OPT-style byte-level BPE: a word after a space is `Ġdog`.
fn byte_level_bpe() -> Tokenizer {
    let vocab = [
        "<unk>", "Ġ", "a", "d", "o", "g", "D", "c", "t", "Ġd", "Ġdo", "Ġdog", "do", "dog", "Do",
        "Dog", "Ġa",
    ];
    let merges = [
        ("Ġ", "d"),
        ("Ġd", "o"),
        ("Ġdo", "g"),
        ("d", "o"),
        ("do", "g"),
        ("D", "o"),
        ("Do", "g"),
        ("Ġ", "a"),
    ];
    let mut tok = Tokenizer::new(bpe(&vocab, &merges, None, false));
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    tok
}

/// A SentencePiece Unigram model (T5/ALBERT style) with a Metaspace pre-tokenizer.
fn unigram() -> Tokenizer {
    let pieces = [
        ("<unk>", 0.0),
        ("▁", -2.0),
        ("▁dog", -3.0),
        ("▁Dog", -4.0),
        ("dog", -6.0),
        ("▁a", -2.5),
        ("▁hot", -4.0),
        ("d", -8.0),
        ("o", -8.0),
        ("g", -8.0),
        ("a", -8.0),
    ];
    let vocab = pieces.iter().map(|(p, s)| (p.to_string(), *s)).collect();
    let mut tok = Tokenizer::new(Unigram::from(vocab, Some(0), false).unwrap());
    tok.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)));
    tok.add_special_tokens(&[AddedToken::from("<unk>", true)]);
    tok
}

/// A LLaMA/Vicuna-style SentencePiece BPE (`tokenizer.json` of llava-hf): normalizer
/// `Prepend("▁")` + `Replace(" ", "▁")`, no pre-tokenizer, byte fallback. `" dog"` becomes
/// `▁▁dog` and encodes as `▁`, `▁dog` — the first id is the lone `▁`.
fn llama_bpe() -> Tokenizer {
    let vocab = [
        "<unk>", "<s>", "</s>", "<0x7A>", "▁", "d", "o", "g", "D", "t", "a", "y", "▁d", "▁do",
        "▁dog", "▁D", "▁Do", "▁Dog", "▁t", "▁to", "▁today", "da", "day", "z",
    ];
    let merges = [
        ("▁", "d"),
        ("▁d", "o"),
        ("▁do", "g"),
        ("▁", "D"),
        ("▁D", "o"),
        ("▁Do", "g"),
        ("▁", "t"),
        ("▁t", "o"),
        ("d", "a"),
        ("da", "y"),
        ("▁to", "day"),
    ];
    let mut tok = Tokenizer::new(bpe(&vocab, &merges, Some("<unk>"), true));
    tok.with_normalizer(Some(Sequence::new(vec![
        Prepend::new("▁".into()).into(),
        Replace::new(" ", "▁").unwrap().into(),
    ])));
    tok.add_special_tokens(&[
        AddedToken::from("<unk>", true),
        AddedToken::from("<s>", true),
        AddedToken::from("</s>", true),
    ]);
    tok
}

#[test]
fn tokenizer_kinds_are_detected() {
    assert_eq!(
        TokenizerKind::detect(&word_level()),
        TokenizerKind::WordLevel
    );
    assert_eq!(
        TokenizerKind::detect(&byte_level_bpe()),
        TokenizerKind::ByteLevelBpe
    );
    assert_eq!(
        TokenizerKind::detect(&unigram()),
        TokenizerKind::SentencePiece
    );
    assert_eq!(
        TokenizerKind::detect(&llama_bpe()),
        TokenizerKind::SentencePiece
    );
}

#[test]
fn word_level_uses_bare_words() {
    let tok = word_level();
    let toi = TokenOfInterest::new(&tok, "dog").unwrap();
    assert_eq!(toi.ids, ids_of(&tok, &["dog", "Dog"]));
    assert_eq!(toi.pieces, ["dog", "Dog"]);
    assert!(toi.whole_word);
    // "Dog" builds the same set: t.lower() = "dog".
    assert_eq!(TokenOfInterest::new(&tok, "Dog").unwrap().ids, toi.ids);
    // "runs": only the bare word exists.
    assert_eq!(TokenOfInterest::new(&tok, "runs").unwrap().pieces, ["runs"]);
}

#[test]
fn unknown_words_are_not_representable() {
    for tok in [word_level(), llama_bpe(), unigram()] {
        let err = TokenOfInterest::new(&tok, "zzz").unwrap_err();
        assert!(matches!(err, HookError::NotRepresentable { .. }), "{err}");
        assert!(err.to_string().contains("\"zzz\""), "{err}");
    }
    // Even though "▁" and "Ġ" are words of this vocabulary, they are never a token of interest.
    for t in ["▁", "Ġ"] {
        let err = TokenOfInterest::new(&word_level(), t).unwrap_err();
        assert!(
            matches!(err, HookError::NotRepresentable { .. }),
            "{t}: {err}"
        );
    }
    for t in ["", "hot dog", " dog"] {
        let err = TokenOfInterest::new(&word_level(), t).unwrap_err();
        assert!(
            matches!(err, HookError::InvalidToken { .. }),
            "{t:?}: {err}"
        );
    }
}

#[test]
fn byte_level_bpe_uses_the_g_dot_piece() {
    let tok = byte_level_bpe();
    // The reference's variants: encode("dog") = [dog], encode("Dog") = [Dog], encode(" dog") =
    // [Ġdog]; the per-kind word start adds Ġdog (ĠDog is not in this vocabulary).
    assert_eq!(tok.encode(" dog", false).unwrap().get_tokens(), ["Ġdog"]);
    let toi = TokenOfInterest::new(&tok, "dog").unwrap();
    assert_eq!(toi.ids, ids_of(&tok, &["Ġdog", "dog", "Dog"]));
    assert!(toi.whole_word);
    assert!(!toi.matches(id(&tok, "Ġ")));
    // The caption " a dog" finds Ġdog at index 1.
    let caption = tok.encode(" a dog", false).unwrap();
    assert_eq!(caption.get_tokens(), ["Ġa", "Ġdog"]);
    assert_eq!(toi.find(caption.get_ids()), Some(1));
}

#[test]
fn unigram_uses_word_start_pieces() {
    let tok = unigram();
    let toi = TokenOfInterest::new(&tok, "dog").unwrap();
    assert_eq!(toi.ids, ids_of(&tok, &["▁dog", "▁Dog"]));
    assert!(toi.whole_word);
    assert!(!toi.matches(id(&tok, "▁")));
    assert!(
        !toi.matches(id(&tok, "dog")),
        "an in-word piece is not the word"
    );
}

/// Issue #18: with the LLaMA tokenizer, the reference's `" " + t` variant contributes the lone
/// `▁`, which then matches every space; here it never does.
#[test]
fn llama_lone_word_start_never_matches() {
    let tok = llama_bpe();
    let space = id(&tok, "▁");
    let spaced = tok.encode(" dog", false).unwrap();
    assert_eq!(
        spaced.get_tokens(),
        ["▁", "▁dog"],
        "the pitfall is real in this fixture"
    );
    assert_eq!(spaced.get_ids()[0], space);

    let toi = TokenOfInterest::new(&tok, "dog").unwrap();
    assert_eq!(toi.kind, TokenizerKind::SentencePiece);
    assert_eq!(toi.ids, ids_of(&tok, &["▁dog", "▁Dog"]));
    assert!(!toi.matches(space));
    assert!(toi.pieces.iter().all(|p| !is_boundary_only(p)));
    // A generation "▁ ▁today" has no dog: the lone ▁ must not lock on (the "today" symptom).
    let generated = [space, id(&tok, "▁today"), space];
    assert_eq!(toi.find(&generated), None);
    assert_eq!(toi.find(&[space, id(&tok, "▁Dog")]), Some(1));
}

#[test]
fn boundary_only_pieces() {
    for p in ["▁", "Ġ", " ", "▁▁", "\n", ""] {
        assert!(is_boundary_only(p), "{p:?}");
    }
    for p in ["▁dog", "Ġa", "dog", "<0x20>"] {
        assert!(!is_boundary_only(p), "{p:?}");
    }
}
