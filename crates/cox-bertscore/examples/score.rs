//! BERTScore of grounded words against captions with a BERT model directory.
//!
//! ```text
//! cargo xtask fetch
//! cargo run -p cox-bertscore --example score -- .cache/models/all-minilm-l6-v2 \
//!     "dog,frisbee,grass" "A dog catches a frisbee." "A brown dog on the lawn."
//! ```
//! The second argument is the grounded words, comma-separated; the rest are the reference captions.
//! Prints one JSON line: the model, layer and P/R/F1 (the best over the captions).

use cox_bertscore::{candidate_from_words, BertScoreParams, BertScorer, DEFAULT_WORD_SEPARATOR};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        anyhow::bail!("usage: score MODEL_DIR WORD,WORD,... CAPTION [CAPTION...]");
    }
    let words: Vec<&str> = args[1].split(',').map(str::trim).collect();
    let candidate = candidate_from_words(&words, DEFAULT_WORD_SEPARATOR);
    let captions: Vec<&str> = args[2..].iter().map(String::as_str).collect();
    let scorer = BertScorer::load(&args[0], &BertScoreParams::default())?;
    let scores = scorer.score(&[candidate.as_str()], &[captions])?;
    println!("{}", serde_json::to_string(&scores[0])?);
    Ok(())
}
