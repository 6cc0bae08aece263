//! The reference's word filter: the bundled lists, `valid_word`, Python's `float()` grammar and the
//! lower-case/strip normalisation.

use cox_ground_text::{
    is_number, normalize_word, parse_stopwords, parse_word_list, GroundError, Vocabulary,
};

fn check_valid(word: &str, expect: bool) {
    assert_eq!(
        Vocabulary::bundled().is_valid_word(word),
        expect,
        "valid_word({word:?})"
    );
}

fn check_number(s: &str, expect: bool) {
    assert_eq!(is_number(s), expect, "is_number({s:?})");
}

#[test]
fn bundled_lists_have_the_reference_sizes() {
    let vocab = Vocabulary::bundled();
    assert_eq!(vocab.num_words(), 235_970);
    // 1,160 entries, two of them repeated.
    assert_eq!(vocab.num_stopwords(), 1_158);
    let raw = include_str!("../data/gist_stopwords.txt");
    assert_eq!(parse_stopwords(raw).len(), 1_160);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn bundled_word_list_is_the_published_file() {
    // The vendored gzip decodes to exactly the provenance file whose size and SHA-256
    // data/README.md records.
    use std::io::Read;
    let gz = include_bytes!("../data/web2-words.txt.gz");
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut text)
        .unwrap();
    assert_eq!(text.len(), 2_493_838);
    assert_eq!(
        sha256_hex(&text),
        "f12c6b63f7112d5459bf11ad7f94dbd72f46911947a2668821d594ccd1fea5cb"
    );
    let words = parse_word_list(std::str::from_utf8(&text).unwrap());
    let vocab = Vocabulary::bundled();
    assert_eq!(words.len(), vocab.num_words());
    assert!(words.iter().all(|w| vocab.contains_word(w)));
}

#[test]
fn bundled_stopwords_are_the_published_file() {
    let raw = include_bytes!("../data/gist_stopwords.txt");
    assert_eq!(raw.len(), 6_272);
    assert_eq!(
        sha256_hex(raw),
        "3d6500507c52b28191db46d2229921f9dbb2f15b17a0946a5931d7f86754ca94"
    );
}

#[test]
fn last_stopword_keeps_its_newline() {
    let vocab = Vocabulary::bundled();
    assert!(vocab.is_stopword("zz\n"));
    assert!(!vocab.is_stopword("zz"));
    assert!(vocab.is_stopword("zero"));
    let raw = include_str!("../data/gist_stopwords.txt");
    assert_eq!(
        parse_stopwords(raw).last().map(String::as_str),
        Some("zz\n")
    );
    assert_eq!(parse_stopwords(raw).first().map(String::as_str), Some("0o"));
}

#[test]
fn dictionary_words_pass() {
    for w in [
        "dog", "dogs", "puppy", "cat", "car", "bus", "train", "giraffe",
    ] {
        check_valid(w, true);
    }
}

#[test]
fn membership_is_case_sensitive() {
    // web2 holds "Aaron" and "Paris" only capitalised: the lower-cased candidate never matches.
    let vocab = Vocabulary::bundled();
    assert!(vocab.contains_word("Paris") && !vocab.contains_word("paris"));
    check_valid("paris", false);
    check_valid("aaron", false);
    // An upper-case string is never produced by normalisation, and is not in the list as such.
    check_valid("DOG", false);
}

#[test]
fn stopwords_are_rejected() {
    for w in ["one", "two", "the", "about", "zero", "three"] {
        assert!(Vocabulary::bundled().contains_word(w), "{w} is a web2 word");
        check_valid(w, false);
    }
}

#[test]
fn short_words_are_rejected() {
    // "pa" and "ye" are web2 words and not stopwords, but only two characters long.
    for w in ["pa", "ye", "ly"] {
        assert!(Vocabulary::bundled().contains_word(w));
        assert!(!Vocabulary::bundled().is_stopword(w));
        check_valid(w, false);
    }
    check_valid("", false);
}

#[test]
fn length_counts_characters_not_bytes() {
    // "né" is 3 bytes but 2 characters: rejected by `len(w) > 2` even when in the dictionary.
    let vocab = Vocabulary::from_lists(["né", "née"], Vec::<String>::new()).unwrap();
    assert!(!vocab.is_valid_word("né"));
    assert!(vocab.is_valid_word("née"));
}

#[test]
fn numbers_always_pass() {
    for w in [
        "1", "42", "2024", "nan", "inf", "-1e5", "1e5", "1_0", "3.14", ".5", "1.",
    ] {
        check_valid(w, true);
    }
    for w in ["1__0", "_1", "1_", "1e", "1,000", "1.2.3", "½"] {
        check_valid(w, false);
    }
}

#[test]
fn subword_pieces_and_non_words_fail() {
    for w in ["▁dog", "tion", "qzx", "dog!", "<s>", "</s>"] {
        check_valid(w, false);
    }
}

#[test]
fn python_float_grammar() {
    let yes = [
        "0",
        "7",
        "-7",
        "+7",
        "007",
        "1.5",
        "-1.5",
        "1.",
        ".5",
        "-.5",
        "+.5e-3",
        "1e5",
        "1E5",
        "1e+5",
        "1e-5",
        "-1e5",
        "1.e5",
        "1_000",
        "1_000.000_1",
        "1e1_0",
        "0_0",
        "1e999",
        "-1e-999",
        "nan",
        "NaN",
        "-nan",
        "+NAN",
        "inf",
        "-inf",
        "+Inf",
        "INF",
        "infinity",
        "-Infinity",
        "iNfInItY",
        " 3.5 ",
        "\t1\n",
        "\u{0b}1\u{0c}",
        "\r-2\r",
        // Unicode decimal digits and whitespace are mapped to ASCII first.
        "\u{661}\u{662}",
        "\u{ff11}\u{ff12}",
        "\u{ff11}_\u{ff12}",
        "\u{966}.\u{967}",
        "\u{a0}5\u{3000}",
        "\u{1d7ce}",
        "\u{11f55}",
        "\u{1e4f9}",
    ];
    for s in yes {
        check_number(s, true);
    }
    let no = [
        "",
        " ",
        "+",
        "-",
        ".",
        "e5",
        ".e5",
        "1e",
        "1e+",
        "1e-",
        "1.2.3",
        "1..2",
        "--1",
        "+-1",
        "- 1",
        "1 2",
        "1__0",
        "_1",
        "1_",
        "_",
        "1_.5",
        "1._5",
        "1_e5",
        "1e_5",
        "1e5_",
        "+_1",
        "in_f",
        "infinit",
        "infinityy",
        "infin",
        "nana",
        "nan(1)",
        "inf1",
        "0x10",
        "0b1",
        "0o7",
        "1f",
        "1d",
        "1,5",
        "one",
        "dog",
        "\u{1c}1",
        "1\u{1f}",
        "1\0",
        "\u{b2}",
        "\u{2155}",
        "\u{7f}",
        "\u{2160}",
        "\u{e9}1",
    ];
    for s in no {
        check_number(s, false);
    }
}

#[test]
fn normalisation_is_lower_then_python_strip() {
    for (raw, want) in [
        ("Dog", "dog"),
        (" dog", "dog"),
        ("▁dog", "▁dog"),
        ("\u{1c}Dog\u{1f}\u{3000}", "dog"),
        ("  ", ""),
        ("ΟΔΟΣ", "οδος"),
        ("New York", "new york"),
    ] {
        assert_eq!(normalize_word(raw), want, "normalize_word({raw:?})");
    }
}

#[test]
fn parsing_lists() {
    assert_eq!(parse_word_list("a\r\nb\n\n  \nc"), ["a", "b", "c"]);
    assert_eq!(parse_stopwords("a, b,c\n"), ["a", " b", "c\n"]);
    assert_eq!(parse_stopwords(""), [""]);
}

#[test]
fn empty_dictionary_is_an_error() {
    let err = Vocabulary::from_lists(Vec::<String>::new(), ["the"]).unwrap_err();
    assert!(matches!(err, GroundError::EmptyList { .. }), "{err}");
    // No stopwords at all is fine.
    let vocab = Vocabulary::from_lists(["one"], Vec::<String>::new()).unwrap();
    assert!(vocab.is_valid_word("one"));
}

#[test]
fn io_reads_lists_and_names_missing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let words = dir.path().join("words.txt");
    let stops = dir.path().join("stop.txt");
    std::fs::write(&words, "Dog\ndog\ncat\nthe\n").unwrap();
    std::fs::write(&stops, "the,cat\n").unwrap();
    let vocab = cox_ground_text::io::read_vocabulary(&words, &stops).unwrap();
    assert!(vocab.is_valid_word("dog"));
    assert!(!vocab.is_valid_word("the"));
    // "cat\n" is the stopword, not "cat".
    assert!(vocab.is_valid_word("cat"));

    let missing = dir.path().join("nope.txt");
    let err = cox_ground_text::io::read_vocabulary(&missing, &stops).unwrap_err();
    assert!(matches!(err, GroundError::ReadList { .. }));
    assert!(err.to_string().contains("nope.txt"), "{err}");
    let err = cox_ground_text::io::read_stopwords(&missing).unwrap_err();
    assert!(err.to_string().contains("stopwords"), "{err}");

    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    let err = cox_ground_text::io::read_vocabulary(&empty, &stops).unwrap_err();
    assert!(matches!(err, GroundError::EmptyList { .. }), "{err}");
}
