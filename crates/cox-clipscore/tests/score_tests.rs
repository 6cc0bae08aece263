//! CLIPScore formula, the top-1 / top-3 protocol and the grounding score on hand-computed cases,
//! and the scorer end to end on a tiny random checkpoint.

use cox_clipscore::testing::{tiny_config, write_tiny_clip};
use cox_clipscore::{
    clip_score_from_embeddings, grounding_scores, rank_concepts, text_for_words, top_n_clipscore,
    ClipBpe, ClipModel, ClipParams, ClipScorer, ClipTokenizer, MeanStd,
};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn score_formula_hand_cases() {
    // cos = 1 → w.
    assert!(close(
        clip_score_from_embeddings(&[3.0, 4.0], &[6.0, 8.0], 2.5).into(),
        2.5
    ));
    // cos = 0.6 (3-4-5 triangle against the x axis) → 2.5 · 0.6 = 1.5; w scales linearly.
    assert!(close(
        clip_score_from_embeddings(&[3.0, 4.0], &[1.0, 0.0], 2.5).into(),
        1.5
    ));
    assert!(close(
        clip_score_from_embeddings(&[3.0, 4.0], &[1.0, 0.0], 1.0).into(),
        0.6
    ));
    assert!(close(
        clip_score_from_embeddings(&[3.0, 4.0], &[1.0, 0.0], 5.0).into(),
        3.0
    ));
    // Negative cosine is clipped to 0, orthogonal is 0.
    assert_eq!(
        clip_score_from_embeddings(&[3.0, 4.0], &[-1.0, 0.0], 2.5),
        0.0
    );
    assert_eq!(
        clip_score_from_embeddings(&[1.0, 0.0], &[0.0, 1.0], 2.5),
        0.0
    );
    assert_eq!(
        clip_score_from_embeddings(&[0.0, 0.0], &[0.0, 1.0], 2.5),
        0.0
    );
}

#[test]
fn prompt_text() {
    let w = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let p = "A photo is described by the words ";
    assert_eq!(
        text_for_words(p, &w(&["dog", "grass", "ball"])),
        "A photo is described by the words dog, grass, ball."
    );
    assert_eq!(
        text_for_words(p, &w(&["dog"])),
        "A photo is described by the words dog."
    );
    assert_eq!(
        text_for_words(p, &[]),
        "A photo is described by the words ."
    );
}

#[test]
fn ranks_are_reverse_stable_argsort() {
    // np.argsort([0.5, 0, 2, 0, 0.5], kind="stable") = [1, 3, 0, 4, 2]; reversed: [2, 4, 0, 3, 1].
    assert_eq!(
        rank_concepts(&[0.5, 0.0, 2.0, 0.0, 0.5]).unwrap(),
        vec![2, 4, 0, 3, 1]
    );
    assert_eq!(rank_concepts(&[]).unwrap(), Vec::<usize>::new());
    assert!(rank_concepts(&[1.0, f32::NAN])
        .unwrap_err()
        .to_string()
        .contains("concept 1"));
}

#[test]
fn top1_top3_on_a_hand_made_matrix() {
    // 3 test images × 4 concepts. Activations (row = image):
    let acts = [
        0.0, 3.0, 1.0, 2.0, // ranks 1, 3, 2, 0
        5.0, 0.0, 0.0, 0.0, // rank 0, then the tied zeros by higher index first: 3, 2
        0.2, 0.2, 0.9, 0.1, // ranks 2, then tie 0.2: 1 before 0
    ];
    let cs = [
        0.1, 0.8, 0.4, 0.6, //
        0.7, 0.3, 0.2, 0.5, //
        0.9, 0.6, 0.3, 0.0, //
    ];
    let r = top_n_clipscore(&cs, &acts, 4).unwrap();
    assert_eq!(
        r.top_concepts,
        vec![vec![1, 3, 2, 0], vec![0, 3, 2, 1], vec![2, 1, 0, 3]]
    );
    let t1 = [0.8, 0.7, 0.3];
    let t3 = [
        (0.8 + 0.6 + 0.4) / 3.0,
        (0.7 + 0.5 + 0.2) / 3.0,
        (0.3 + 0.6 + 0.9) / 3.0,
    ];
    for i in 0..3 {
        assert!((r.per_image[i].0 - t1[i]).abs() < 1e-6);
        assert!((r.per_image[i].1 - t3[i]).abs() < 1e-6);
    }
    // Mean and population std (np.std) by hand: top-1 = [0.8, 0.7, 0.3], mean 0.6,
    // deviations 0.2, 0.1, -0.3 → var = (0.04 + 0.01 + 0.09) / 3.
    assert!((r.top1.mean - 0.6).abs() < 1e-6);
    assert!((r.top1.std - (0.14f64 / 3.0).sqrt()).abs() < 1e-6);
    assert_eq!(r.top1.n, 3);
    assert!((r.top3.mean - (t3[0] + t3[1] + t3[2]) / 3.0).abs() < 1e-6);
    // K < 3: top-3 averages what there is.
    let r = top_n_clipscore(&[0.2, 0.4], &[1.0, 0.0], 2).unwrap();
    assert!((r.per_image[0].1 - 0.3).abs() < 1e-6);
    // Shape errors.
    assert!(top_n_clipscore(&[0.1; 6], &[0.1; 4], 2).is_err());
    assert!(top_n_clipscore(&[0.1; 6], &[0.1; 6], 4).is_err());
    assert!(top_n_clipscore(&[], &[], 0).is_err());
    // No image: an error, not a NaN summary.
    assert!(top_n_clipscore(&[], &[], 3).is_err());
}

#[test]
fn mean_std_is_population() {
    let m = MeanStd::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
    assert_eq!((m.mean, m.std), (5.0, 2.0));
}

#[test]
fn grounding_is_the_mean_over_mas_images() {
    // 4 images × 2 concepts; concept 0's MAS images are 0, 2, 3 and concept 1's is image 1.
    let cs = [0.1, 0.9, 0.3, 0.8, 0.5, 0.0, 0.7, 0.4];
    let g = grounding_scores(&cs, 2, &[vec![0, 2, 3], vec![1]]).unwrap();
    assert!((g[0] - (0.1 + 0.5 + 0.7) / 3.0).abs() < 1e-6);
    assert!((g[1] - 0.8).abs() < 1e-6);
    assert!(grounding_scores(&cs, 2, &[vec![], vec![1]]).unwrap()[0].is_nan());
    assert!(grounding_scores(&cs, 2, &[vec![4], vec![1]])
        .unwrap_err()
        .to_string()
        .contains("image 4"));
    assert!(grounding_scores(&cs, 2, &[vec![0]]).is_err());
}

fn toy_scorer(batch_size: usize) -> (tempfile::TempDir, ClipScorer) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_clip(dir.path(), &tiny_config(), 11).unwrap();
    let model = ClipModel::load(
        dir.path(),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let bpe =
        ClipBpe::from_merges_text_lenient("#version: 0.2\nd o\ndo g</w>\nc a\nca t</w>\n").unwrap();
    let params = ClipParams {
        batch_size,
        ..Default::default()
    };
    (
        dir,
        ClipScorer::new(model, ClipTokenizer::from(bpe), params).unwrap(),
    )
}

fn images() -> Vec<image::DynamicImage> {
    (0..5u8)
        .map(|k| {
            image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(
                40 + u32::from(k) * 7,
                33,
                |x, y| {
                    image::Rgb([
                        (x * 5 + u32::from(k) * 40) as u8,
                        (y * 7) as u8,
                        (x * y) as u8,
                    ])
                },
            ))
        })
        .collect()
}

#[test]
fn scorer_end_to_end_is_consistent_and_batch_invariant() {
    let (_d1, one) = toy_scorer(1);
    let (_d2, many) = toy_scorer(32);
    let imgs = images();
    let words: Vec<Vec<String>> = [
        ["dog", "cat"].as_slice(),
        &["cat"],
        &["grass", "ball", "dog"],
    ]
    .iter()
    .map(|ws| ws.iter().map(|w| w.to_string()).collect())
    .collect();
    let texts: Vec<String> = words.iter().map(|w| one.text_for_words(w)).collect();
    assert_eq!(texts[0], "A photo is described by the words dog, cat.");
    let (e1, e32) = (
        one.embed_images(&imgs).unwrap(),
        many.embed_images(&imgs).unwrap(),
    );
    let (t1, t32) = (
        one.embed_texts(&texts).unwrap(),
        many.embed_texts(&texts).unwrap(),
    );
    for (a, b) in e1.iter().zip(&e32).chain(t1.iter().zip(&t32)) {
        assert_eq!(a.len(), 24);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "embeddings are L2-normalised");
        assert!(
            a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5),
            "batching changed an embedding"
        );
    }
    // clip_score of one pair = 2.5 · max(e_img · e_txt, 0) from the batched embeddings.
    let cs = one.clip_score(&imgs[2], &words[1]).unwrap();
    let dot: f32 = e32[2].iter().zip(&t32[1]).map(|(x, y)| x * y).sum();
    assert!((cs - 2.5 * dot.max(0.0)).abs() < 1e-5);

    // Table 1 protocol = the pure helper on the score matrix.
    let acts: Vec<f32> = (0..imgs.len() * 3).map(|i| ((i * 7) % 5) as f32).collect();
    let r = many.test_clipscore(&imgs, &acts, &words).unwrap();
    let m = many.score_matrix(&e32, &t32);
    let expect = top_n_clipscore(&m, &acts, 3).unwrap();
    assert!(
        (r.top1.mean - expect.top1.mean).abs() < 1e-6
            && (r.top3.std - expect.top3.std).abs() < 1e-6
    );
    assert!(many.test_clipscore(&imgs, &acts[1..], &words).is_err());

    // Grounding: mean CS of each concept's MAS images.
    let g = many
        .grounding_scores(
            &[
                imgs[..2].to_vec(),
                vec![imgs[4].clone()],
                imgs[1..4].to_vec(),
            ],
            &words,
        )
        .unwrap();
    let by_hand = |c: usize, is: &[usize]| {
        is.iter().map(|&i| f64::from(m[i * 3 + c])).sum::<f64>() / is.len() as f64
    };
    assert!((g[0] - by_hand(0, &[0, 1])).abs() < 1e-5);
    assert!((g[1] - by_hand(1, &[4])).abs() < 1e-5);
    assert!((g[2] - by_hand(2, &[1, 2, 3])).abs() < 1e-5);
}

#[test]
fn image_files_embed_like_decoded_images_and_bad_files_are_named() {
    let (_d, scorer) = toy_scorer(2);
    let dir = tempfile::tempdir().unwrap();
    let imgs = images();
    let paths: Vec<std::path::PathBuf> = imgs
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let p = dir.path().join(format!("img{i}.png"));
            img.save(&p).unwrap();
            p
        })
        .collect();
    let from_files = scorer.embed_image_files(&paths).unwrap();
    let direct = scorer.embed_images(&imgs).unwrap();
    assert_eq!(from_files, direct);
    // The embedded-images protocol equals the image one.
    let words: Vec<Vec<String>> = vec![vec!["dog".into()], vec!["cat".into()]];
    let acts: Vec<f32> = (0..imgs.len() * 2).map(|i| (i % 3) as f32).collect();
    assert_eq!(
        scorer
            .test_clipscore_embedded(&from_files, &acts, &words)
            .unwrap(),
        scorer.test_clipscore(&imgs, &acts, &words).unwrap()
    );
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"not a jpeg").unwrap();
    let e = scorer
        .embed_image_files(&[&paths[0], &bad])
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken.jpg"), "{e}");
}

#[test]
fn ties_follow_the_documented_numpy_stable_order() {
    // np.argsort(v, kind="stable")[-5:][::-1] for this vector (numpy 2.0.2) is [3, 7, 19, 18, 17].
    let mut v = [0f32; 20];
    v[3] = 1.0;
    v[7] = 0.5;
    assert_eq!(rank_concepts(&v).unwrap()[..5], [3, 7, 19, 18, 17]);
}
