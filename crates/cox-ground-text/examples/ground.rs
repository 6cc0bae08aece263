//! Grounds two hand-made concepts through a hand-made LM head and a tiny WordLevel tokenizer, prints
//! each concept's candidates with their logits, and runs the Rnd-Words baseline next to it.
//!
//! ```text
//! cargo run -p cox-ground-text --example ground
//! ```

use std::collections::HashMap;

use cox_ground_text::{
    ground_concepts, rnd_words, GroundingParams, LmHeadRef, RndWordsParams, Vocabulary,
};
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::Tokenizer;

fn main() -> anyhow::Result<()> {
    // The tokens and, for each, a 4-d output embedding: axis 0 = animals, 1 = vehicles, 2 = function
    // words and fragments, 3 = numbers.
    let rows: [(&str, [f32; 4]); 12] = [
        ("<unk>", [0.0, 0.0, 0.0, 0.0]),
        ("dog", [1.0, 0.0, 0.1, 0.0]),
        ("puppy", [0.9, 0.0, 0.0, 0.0]),
        ("the", [0.95, 0.9, 1.0, 0.0]),
        ("og", [0.8, 0.0, 0.5, 0.0]),
        ("Dog", [0.7, 0.0, 0.0, 0.0]),
        ("bus", [0.0, 1.0, 0.0, 0.0]),
        ("train", [0.0, 0.9, 0.0, 0.0]),
        ("car", [0.0, 0.8, 0.0, 0.0]),
        ("42", [0.0, 0.85, 0.0, 1.0]),
        ("pa", [0.6, 0.0, 0.0, 0.0]),
        ("cat", [0.5, 0.0, 0.0, 0.0]),
    ];
    let vocab: HashMap<String, u32> = rows
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (t.to_string(), i as u32))
        .collect();
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("<unk>".into())
        .build()
        .map_err(anyhow::Error::msg)?;
    let tokenizer = Tokenizer::new(model);
    let head: Vec<f32> = rows.iter().flat_map(|(_, r)| *r).collect();
    let head = LmHeadRef::new(&head, rows.len(), 4)?;

    // Concept 0 points at animals, concept 1 at vehicles.
    let concepts = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let params = GroundingParams {
        pre_num_top_tokens: 6,
        num_grounded_words: 3,
        ..Default::default()
    };
    let words = Vocabulary::bundled();
    let grounded = ground_concepts(head, &concepts, 2, &tokenizer, words, &params)?;
    for c in &grounded {
        println!("concept {}: {:?}", c.concept, c.words);
        for cand in &c.candidates {
            let mark = if cand.kept {
                "kept"
            } else if cand.valid {
                "valid"
            } else {
                "-"
            };
            println!(
                "  {:>3} {:>8.3} {:<8} {}",
                cand.token_id, cand.logit, cand.text, mark
            );
        }
    }

    let counts: Vec<usize> = grounded.iter().map(|c| c.words.len()).collect();
    let baseline = rnd_words(head, &counts, &tokenizer, words, &RndWordsParams::default())?;
    for c in &baseline {
        println!("Rnd-Words {}: {:?}", c.concept, c.words);
    }
    Ok(())
}
