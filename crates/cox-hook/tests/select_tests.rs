//! Selection over hand-built token ids and residual tensors: the position arithmetic, the
//! ground-truth filters, the skip reasons, and layer specs.

use candle_core::{Device, Tensor};
use cox_hook::{
    check_layers, layer_name, parse_layers, record_position, select, GtFilter, HookError,
    PositionRule, SelectOptions, SkipReason, TokenOfInterest,
};
use cox_model::LayerSel;
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::Tokenizer;

const WORDS: [&str; 7] = ["<unk>", "USER", "ASSISTANT", "a", "dog", "on", "grass"];

fn tok() -> Tokenizer {
    let model = WordLevel::builder()
        .vocab(
            WORDS
                .iter()
                .enumerate()
                .map(|(i, w)| (w.to_string(), i as u32))
                .collect(),
        )
        .unk_token("<unk>".into())
        .build()
        .unwrap();
    let mut t = Tokenizer::new(model);
    t.with_pre_tokenizer(Some(Whitespace {}));
    t
}

/// Residuals whose row `r`, column `c` holds `100·layer + r + c/10`, so a row names itself.
fn residuals(rows: usize, hidden: usize, layers: usize) -> Vec<Tensor> {
    (0..layers)
        .map(|l| {
            let v: Vec<f32> = (0..rows * hidden)
                .map(|i| (100 * l + i / hidden) as f32 + (i % hidden) as f32 / 10.0)
                .collect();
            Tensor::from_vec(v, (rows, hidden), &Device::Cpu).unwrap()
        })
        .collect()
}

fn caps(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}

/// A hand-computed case. Prompt "USER a dog ASSISTANT" (4 ids; the prompt's "dog" at position 2
/// must be ignored), then generated "a dog on grass" at positions 4..8. The generated "dog" is
/// j = 1 at sequence position 5; the state predicting it is row 4 (the fed-back "a"); rows cover
/// 4 + 4 - 1 = 7 positions.
#[test]
fn predicting_row_is_the_one_before_the_first_generated_token() {
    let t = tok();
    let toi = TokenOfInterest::new(&t, "dog").unwrap();
    let prompt = [1u32, 3, 4, 2];
    let generated = [3u32, 4, 5, 6];
    let res = residuals(7, 3, 2);
    let gt = caps(&["a dog on grass"]);
    let sel = select(
        &toi,
        &gt,
        prompt.len(),
        &generated,
        &res,
        &SelectOptions::default(),
    )
    .unwrap();
    assert_eq!(sel.skip_reason, None);
    let rec = sel.kept.unwrap();
    assert_eq!(rec.token_index, 1);
    assert_eq!(rec.token_id, 4);
    assert_eq!(rec.position, 4);
    assert_eq!(
        rec.vectors,
        vec![vec![4.0, 4.1, 4.2], vec![104.0, 104.1, 104.2]]
    );

    let at = SelectOptions {
        position: PositionRule::AtToken,
        ..Default::default()
    };
    let rec = select(&toi, &gt, 4, &generated, &res, &at)
        .unwrap()
        .kept
        .unwrap();
    assert_eq!(rec.position, 5);
    assert_eq!(rec.vectors[0], [5.0, 5.1, 5.2]);

    // Batch-1 3-D tensors (a full forward pass) read the same rows.
    let res3: Vec<Tensor> = res.iter().map(|r| r.unsqueeze(0).unwrap()).collect();
    let rec3 = select(&toi, &gt, 4, &generated, &res3, &SelectOptions::default())
        .unwrap()
        .kept
        .unwrap();
    assert_eq!(rec3.vectors[1], [104.0, 104.1, 104.2]);
}

#[test]
fn record_position_cases() {
    let cases = [
        // (prompt_len, j, rule, expected)
        (600, 0, PositionRule::Predicting, Some(599)),
        (600, 0, PositionRule::AtToken, Some(600)),
        (5, 7, PositionRule::Predicting, Some(11)),
        (0, 0, PositionRule::Predicting, None),
        (0, 3, PositionRule::Predicting, Some(2)),
    ];
    for (p, j, rule, want) in cases {
        assert_eq!(record_position(p, j, rule), want, "{p} {j} {rule:?}");
    }
}

#[test]
fn skip_reasons() {
    let t = tok();
    let toi = TokenOfInterest::new(&t, "dog").unwrap();
    let res = residuals(6, 2, 1);
    let d = SelectOptions::default();
    let skip = |captions: &[&str], generated: &[u32], opts: &SelectOptions| {
        let sel = select(&toi, &caps(captions), 3, generated, &res, opts).unwrap();
        assert!(sel.kept.is_none());
        sel.skip_reason.unwrap()
    };
    // Ground truth first: the model is not even consulted.
    assert_eq!(
        skip(&["a cat", "a dog"], &[4, 4, 4, 4], &d),
        SkipReason::GtFilter
    );
    assert_eq!(skip(&[], &[4, 4, 4, 4], &d), SkipReason::GtFilter);
    // "dog" only in the prompt does not count.
    assert_eq!(
        skip(&["a dog"], &[3, 5, 6, 3], &d),
        SkipReason::TokenNotGenerated
    );
    // AtToken with t as the last generated token: that token was never fed back.
    let at = SelectOptions {
        position: PositionRule::AtToken,
        ..d
    };
    assert_eq!(
        skip(&["dog"], &[3, 5, 6, 4], &at),
        SkipReason::PositionNotCaptured
    );
    // ... while Predicting reads row 3 + 3 - 1 = 5, the last captured row.
    let rec = select(&toi, &caps(&["dog"]), 3, &[3, 5, 6, 4], &res, &d)
        .unwrap()
        .kept
        .unwrap();
    assert_eq!((rec.token_index, rec.position), (3, 5));
}

#[test]
fn ground_truth_filters() {
    let c = caps(&["Two hotdogs on a plate.", "A Dog.", "a dog"]);
    let cases = [
        (GtFilter::First, "dog", true),
        (GtFilter::First, "Dog", false),
        (GtFilter::First, "cat", false),
        (GtFilter::Any, "Dog", true),
        (GtFilter::Any, "cat", false),
        (GtFilter::None, "cat", true),
    ];
    for (f, t, want) in cases {
        assert_eq!(f.accepts(t, &c), want, "{f:?} {t}");
    }
    let t = tok();
    let toi = TokenOfInterest::new(&t, "dog").unwrap();
    let any = SelectOptions {
        gt: GtFilter::Any,
        ..Default::default()
    };
    let sel = select(
        &toi,
        &caps(&["cat", "dogs"]),
        3,
        &[4],
        &residuals(3, 1, 1),
        &any,
    )
    .unwrap();
    assert_eq!(sel.kept.unwrap().position, 2);
}

#[test]
fn inconsistent_residuals_are_errors() {
    let t = tok();
    let toi = TokenOfInterest::new(&t, "dog").unwrap();
    let d = SelectOptions::default();
    let gt = caps(&["dog"]);
    let mut res = residuals(6, 2, 1);
    res.extend(residuals(5, 2, 1));
    assert!(matches!(
        select(&toi, &gt, 3, &[4], &res, &d),
        Err(HookError::Shape(_))
    ));
    let short = residuals(2, 2, 1);
    assert!(matches!(
        select(&toi, &gt, 3, &[4], &short, &d),
        Err(HookError::Shape(_))
    ));
    let bad = vec![Tensor::zeros((2, 3, 4), candle_core::DType::F32, &Device::Cpu).unwrap()];
    assert!(matches!(
        select(&toi, &gt, 1, &[4], &bad, &d),
        Err(HookError::Shape(_))
    ));
}

#[test]
fn layer_specs() {
    assert_eq!(
        parse_layers("31,norm").unwrap(),
        [LayerSel::Block(31), LayerSel::FinalNorm]
    );
    assert_eq!(
        parse_layers(" 0 , language_model.model.layers.5,language_model.model.norm").unwrap(),
        [LayerSel::Block(0), LayerSel::Block(5), LayerSel::FinalNorm]
    );
    for bad in ["", "31,31", "norm,final_norm", "-1", "last", "layers.x"] {
        let err = parse_layers(bad).unwrap_err();
        assert!(
            matches!(err, HookError::InvalidLayer { .. }),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(layer_name(LayerSel::Block(31)), "31");
    assert_eq!(layer_name(LayerSel::FinalNorm), "norm");
    check_layers(&[LayerSel::Block(31), LayerSel::FinalNorm], 32).unwrap();
    let err = check_layers(&[LayerSel::Block(32)], 32).unwrap_err();
    assert!(matches!(
        err,
        HookError::LayerOutOfRange {
            layer: 32,
            num_blocks: 32
        }
    ));
    assert!(err.to_string().contains("0..=31"), "{err}");
}
