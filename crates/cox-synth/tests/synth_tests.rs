//! cox-synth tests: determinism, per-scene independence, caption/factor consistency, vocabulary,
//! rendered pixels, layout, labels and the dataset writer.

use std::collections::{HashMap, HashSet};

use cox_synth::*;

fn cfg() -> SynthConfig {
    SynthConfig::default()
}

fn png(scene: &Scene) -> Vec<u8> {
    encode_png(&render(&scene.factors)).unwrap()
}

fn object(shape: Shape, colour: Colour, size: Size, centre: [f32; 2], side: u32) -> ObjectFactors {
    ObjectFactors {
        shape,
        colour,
        size,
        position: Position::ALL[(centre[0] * 3.0 / side as f32) as usize],
        row: Row::ALL[(centre[1] * 3.0 / side as f32) as usize],
        centre,
        radius: size.radius_fraction() * side as f32,
    }
}

#[test]
fn same_seed_gives_identical_images_and_captions() {
    let a = generate_split(&cfg(), 11, Split::Train, 40).unwrap();
    let b = generate_split(&cfg(), 11, Split::Train, 40).unwrap();
    assert_eq!(a, b);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(png(x), png(y), "{}", x.id);
    }
}

#[test]
fn different_seeds_and_splits_differ() {
    let a = generate_split(&cfg(), 1, Split::Train, 20).unwrap();
    let b = generate_split(&cfg(), 2, Split::Train, 20).unwrap();
    let c = generate_split(&cfg(), 1, Split::Val, 20).unwrap();
    let differing = |p: &[Scene], q: &[Scene]| {
        p.iter()
            .zip(q)
            .filter(|(x, y)| x.factors != y.factors)
            .count()
    };
    assert!(differing(&a, &b) >= 18);
    assert!(differing(&a, &c) >= 18);
    assert!(a.iter().zip(&b).any(|(x, y)| png(x) != png(y)));
    assert_ne!(
        scene_seed(1, Split::Train, 0),
        scene_seed(1, Split::Train, 1)
    );
}

#[test]
fn scene_is_independent_of_its_batch() {
    let batch = generate_split(&cfg(), 5, Split::Test, 30).unwrap();
    let shard = generate_range(&cfg(), 5, Split::Test, 17..30).unwrap();
    for i in [0u64, 3, 17, 29] {
        let alone = generate_scene(&cfg(), 5, Split::Test, i).unwrap();
        assert_eq!(alone, batch[i as usize]);
        assert_eq!(png(&alone), png(&batch[i as usize]));
    }
    assert_eq!(&shard[..], &batch[17..]);
    // Reference captions follow the config, the factors do not depend on how many captions are drawn.
    let three = generate_scene(
        &SynthConfig {
            captions_per_scene: 3,
            ..cfg()
        },
        5,
        Split::Test,
        3,
    )
    .unwrap();
    assert_eq!(three.factors, batch[3].factors);
    assert_eq!(three.captions[..], batch[3].captions[..3]);
}

/// Parses a canonical caption back into (size, colour, shape, position) per object and the background.
fn parse_canonical(caption: &str) -> (Vec<[String; 4]>, String, String) {
    let (objects, bg) = caption.rsplit_once(" on a ").unwrap();
    let bg: Vec<&str> = bg.split(' ').collect();
    assert_eq!(bg.len(), 3, "{caption}");
    assert_eq!(bg[2], "background");
    let objs = objects
        .split(" and ")
        .map(|o| {
            let w: Vec<&str> = o.split(' ').collect();
            assert_eq!(w.len(), 7, "{o}");
            assert!(w[0] == "a" || w[0] == "an");
            [w[1], w[2], w[3], w[6]].map(String::from)
        })
        .collect();
    (objs, bg[0].to_string(), bg[1].to_string())
}

#[test]
fn canonical_caption_matches_factors() {
    for s in generate_split(&cfg(), 3, Split::Train, 500).unwrap() {
        let f = &s.factors;
        assert_eq!(s.captions[0], s.canonical);
        assert_eq!(s.canonical, canonical_caption(f));
        let (objs, texture, background) = parse_canonical(&s.canonical);
        assert_eq!(texture, f.texture.word());
        assert_eq!(background, f.background.word());
        assert_eq!(objs.len(), f.objects.len());
        let mut expected: Vec<&ObjectFactors> = f.objects.iter().collect();
        expected.sort_by_key(|o| (o.position.column(), o.row.index()));
        for (got, o) in objs.iter().zip(expected) {
            assert_eq!(
                got,
                &[
                    o.size.word(),
                    o.colour.word(),
                    o.shape.word(),
                    o.position.word()
                ]
                .map(String::from)
            );
        }
    }
}

#[test]
fn every_noun_phrase_in_every_caption_matches_an_object() {
    for s in generate_split(&cfg(), 4, Split::Val, 400).unwrap() {
        assert_eq!(s.captions.len(), 5);
        let distinct: HashSet<&String> = s.captions.iter().collect();
        assert!(distinct.len() >= 4, "{:?}", s.captions);
        for c in &s.captions {
            let words: Vec<&str> = c.split(' ').collect();
            assert!(words.iter().all(|w| !w.is_empty()), "{c:?}");
            let mut mentioned = 0;
            for (i, w) in words.iter().enumerate() {
                let Some(shape) = Shape::from_word(w) else {
                    continue;
                };
                mentioned += 1;
                let mut size = None;
                let mut colour = None;
                for adj in words[..i]
                    .iter()
                    .rev()
                    .take_while(|a| **a != "a" && **a != "an")
                {
                    if let Some(x) = Size::ALL.iter().find(|x| x.word() == *adj) {
                        size = Some(*x);
                    } else if let Some(x) = Colour::ALL.iter().find(|x| x.word() == *adj) {
                        colour = Some(*x);
                    } else {
                        panic!("unexpected word {adj:?} before {w:?} in {c:?}");
                    }
                }
                assert!(
                    s.factors.objects.iter().any(|o| o.shape == shape
                        && size.is_none_or(|x| x == o.size)
                        && colour.is_none_or(|x| x == o.colour)),
                    "{c:?} vs {:?}",
                    s.factors
                );
            }
            assert_eq!(mentioned, s.factors.objects.len(), "{c:?}");
            for bg in Background::ALL {
                if words.contains(&bg.word()) {
                    assert_eq!(*bg, s.factors.background, "{c:?}");
                }
            }
            for t in Texture::ALL {
                if words.contains(&t.word()) {
                    assert_eq!(*t, s.factors.texture, "{c:?}");
                }
            }
        }
    }
}

#[test]
fn every_caption_word_is_in_the_vocabulary() {
    let vocab = vocabulary();
    assert!(vocab.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    // 25 factor words + 20 function words; the tiny model's tokenizer is built from this list.
    assert_eq!(vocab.len(), 45, "{vocab:?}");
    assert!(vocab
        .iter()
        .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase())));
    let vocab: HashSet<&str> = vocab.into_iter().collect();
    let mut used = HashSet::new();
    let scenes = generate_split(
        &SynthConfig {
            captions_per_scene: 8,
            ..cfg()
        },
        9,
        Split::Train,
        1500,
    )
    .unwrap();
    for s in &scenes {
        for c in &s.captions {
            for w in c.split(' ') {
                assert!(vocab.contains(w), "{w:?} in {c:?}");
                used.insert(w.to_string());
            }
        }
    }
    // The vocabulary is tight: every word is actually produced by the grammar.
    let unused: Vec<&&str> = vocab.iter().filter(|w| !used.contains(**w)).collect();
    assert!(unused.is_empty(), "never produced: {unused:?}");
}

#[test]
fn factors_are_sampled_roughly_uniformly() {
    let scenes = generate_split(&cfg(), 8, Split::Train, 3000).unwrap();
    let objects: Vec<&ObjectFactors> = scenes.iter().flat_map(|s| &s.factors.objects).collect();
    let n = objects.len() as f64;
    assert!(
        (n / 3000.0 - 2.0).abs() < 0.1,
        "mean objects per scene {}",
        n / 3000.0
    );
    let check = |name: &str, counts: HashMap<String, usize>, values: usize, total: f64| {
        assert_eq!(counts.len(), values, "{name}: {counts:?}");
        for (v, c) in &counts {
            let expected = total / values as f64;
            assert!(
                (*c as f64 - expected).abs() < 0.15 * expected,
                "{name}={v}: {c} vs {expected}"
            );
        }
    };
    let count = |f: &dyn Fn(&ObjectFactors) -> String| {
        let mut m = HashMap::new();
        for o in &objects {
            *m.entry(f(o)).or_insert(0) += 1;
        }
        m
    };
    check(
        "shape",
        count(&|o| o.shape.to_string()),
        Shape::ALL.len(),
        n,
    );
    check(
        "colour",
        count(&|o| o.colour.to_string()),
        Colour::ALL.len(),
        n,
    );
    check("size", count(&|o| o.size.to_string()), 2, n);
    check("position", count(&|o| o.position.to_string()), 3, n);
    check("row", count(&|o| o.row.to_string()), 3, n);
    let mut bg = HashMap::new();
    let mut tex = HashMap::new();
    for s in &scenes {
        *bg.entry(s.factors.background.to_string()).or_insert(0) += 1;
        *tex.entry(s.factors.texture.to_string()).or_insert(0) += 1;
    }
    check("background", bg, 4, 3000.0);
    check("texture", tex, 3, 3000.0);
}

#[test]
fn objects_stay_in_their_cells_inside_the_image_without_overlap() {
    for side in [32, 64, 128] {
        let c = SynthConfig {
            image_size: side,
            ..cfg()
        };
        for s in generate_split(&c, 6, Split::Train, 1000).unwrap() {
            let cell = side as f32 / 3.0;
            let objs = &s.factors.objects;
            for o in objs {
                assert_eq!(
                    (o.centre[0] / cell) as usize,
                    o.position.column(),
                    "{:?}",
                    o
                );
                assert_eq!((o.centre[1] / cell) as usize, o.row.index(), "{:?}", o);
                for v in o.centre {
                    assert!(
                        v - o.radius >= 0.0 && v + o.radius <= side as f32,
                        "{:?}",
                        o
                    );
                }
            }
            for (i, a) in objs.iter().enumerate() {
                for b in &objs[i + 1..] {
                    assert!((a.position, a.row) != (b.position, b.row));
                    let d = ((a.centre[0] - b.centre[0]).powi(2)
                        + (a.centre[1] - b.centre[1]).powi(2))
                    .sqrt();
                    assert!(
                        d >= a.radius + b.radius,
                        "{side}: overlap in {}: {a:?} {b:?}",
                        s.id
                    );
                }
            }
        }
    }
}

/// Pixels of exactly `rgb` inside the grid cell `(col, row)`.
fn count_in_cell(img: &image::RgbImage, rgb: [u8; 3], col: usize, row: usize) -> usize {
    let side = img.width() as f32;
    img.enumerate_pixels()
        .filter(|(x, y, p)| {
            p.0 == rgb
                && (*x as f32 * 3.0 / side) as usize == col
                && (*y as f32 * 3.0 / side) as usize == row
        })
        .count()
}

#[test]
fn object_colour_appears_at_its_stated_position() {
    for side in [32, 64, 96] {
        let c = SynthConfig {
            image_size: side,
            ..cfg()
        };
        for s in generate_split(&c, 12, Split::Train, 200).unwrap() {
            let img = render(&s.factors);
            assert_eq!(img.dimensions(), (side, side));
            for o in &s.factors.objects {
                let centre = img.get_pixel(o.centre[0] as u32, o.centre[1] as u32).0;
                assert_eq!(centre, o.colour.rgb(), "{} {:?}", s.id, o);
                let n = count_in_cell(&img, o.colour.rgb(), o.position.column(), o.row.index());
                let min = (o.radius * o.radius * 0.3) as usize;
                assert!(n >= min, "{side}px {}: {n} < {min} pixels of {:?}", s.id, o);
            }
        }
    }
}

#[test]
fn small_objects_cover_fewer_pixels_than_large_ones() {
    for &shape in Shape::ALL {
        for &colour in Colour::ALL {
            let count = |size| {
                let f = SceneFactors {
                    image_size: 64,
                    background: Background::Dark,
                    texture: Texture::Striped,
                    objects: vec![object(shape, colour, size, [32.0, 32.0], 64)],
                };
                render(&f).pixels().filter(|p| p.0 == colour.rgb()).count()
            };
            let (small, large) = (count(Size::Small), count(Size::Large));
            assert!(small > 20, "{shape} small: {small} pixels");
            assert!(
                large as f64 > 2.0 * small as f64,
                "{shape} {colour}: small {small}, large {large}"
            );
        }
    }
}

#[test]
fn objects_are_outlined_and_background_is_textured() {
    let f = SceneFactors {
        image_size: 64,
        background: Background::Grass,
        texture: Texture::Plain,
        objects: vec![object(
            Shape::Square,
            Colour::Green,
            Size::Large,
            [32.5, 32.5],
            64,
        )],
    };
    let img = render(&f);
    // The pixel just outside the square's right edge (half-side 0.72 r) is dark outline.
    let r = f.objects[0].radius;
    let edge = (32.5 + 0.72 * r + 0.5) as u32;
    let p = img.get_pixel(edge, 32).0;
    assert!(p.iter().all(|&c| c < 60), "outline pixel {p:?}");
    assert_eq!(img.get_pixel(1, 1).0, Background::Grass.rgb());
    for t in [Texture::Striped, Texture::Dotted] {
        let g = render(&SceneFactors {
            texture: t,
            objects: vec![],
            ..f.clone()
        });
        let distinct: HashSet<[u8; 3]> = g.pixels().map(|p| p.0).collect();
        assert!(distinct.len() >= 2, "{t} has no pattern");
        assert!(g.pixels().all(|p| p
            .0
            .iter()
            .zip(Background::Grass.rgb())
            .all(|(a, b)| a.abs_diff(b) <= 30)));
    }
}

#[test]
fn labels_list_the_factors_of_objects_with_the_noun() {
    let f = SceneFactors {
        image_size: 64,
        background: Background::Sand,
        texture: Texture::Dotted,
        objects: vec![
            object(Shape::Circle, Colour::Red, Size::Small, [10.0, 10.0], 64),
            object(Shape::Star, Colour::Blue, Size::Large, [32.0, 50.0], 64),
            object(Shape::Circle, Colour::White, Size::Large, [54.0, 30.0], 64),
        ],
    };
    let circle = scene_labels(&f, "circle", FactorKind::DEFAULT).unwrap();
    assert_eq!(
        circle,
        [
            "background=sand",
            "colour=red",
            "colour=white",
            "position=left",
            "position=right",
            "size=large",
            "size=small",
            "texture=dotted"
        ]
    );
    let star = scene_labels(
        &f,
        "star",
        &[FactorKind::Shape, FactorKind::Row, FactorKind::Colour],
    )
    .unwrap();
    assert_eq!(star, ["colour=blue", "row=bottom", "shape=star"]);
    assert!(scene_labels(&f, "square", FactorKind::ALL)
        .unwrap()
        .is_empty());
    assert!(
        matches!(scene_labels(&f, "dog", FactorKind::ALL), Err(SynthError::UnknownNoun(n)) if n == "dog")
    );
    let scenes = [
        f.clone(),
        SceneFactors {
            objects: vec![],
            ..f
        },
    ];
    let all = factor_labels(&scenes, "star", &[FactorKind::Size]).unwrap();
    assert_eq!(all, vec![vec!["size=large".to_string()], vec![]]);
}

#[test]
fn config_validation_rejects_bad_settings() {
    assert!(cfg().validate().is_ok());
    for bad in [
        SynthConfig {
            image_size: 16,
            ..cfg()
        },
        SynthConfig {
            image_size: 512,
            ..cfg()
        },
        SynthConfig {
            min_objects: 0,
            ..cfg()
        },
        SynthConfig {
            min_objects: 3,
            max_objects: 2,
            ..cfg()
        },
        SynthConfig {
            max_objects: 4,
            ..cfg()
        },
        SynthConfig {
            captions_per_scene: 0,
            ..cfg()
        },
        SynthConfig {
            captions_per_scene: 9,
            ..cfg()
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(SynthError::InvalidConfig { .. })),
            "{bad:?}"
        );
        assert!(generate_scene(&bad, 0, Split::Train, 0).is_err());
    }
    let one = generate_split(
        &SynthConfig {
            min_objects: 3,
            max_objects: 3,
            ..cfg()
        },
        0,
        Split::Train,
        20,
    )
    .unwrap();
    assert!(one.iter().all(|s| s.factors.objects.len() == 3));
}

#[test]
fn factors_round_trip_through_json() {
    let s = generate_scene(&cfg(), 21, Split::Train, 4).unwrap();
    let json = serde_json::to_string(&s.factors).unwrap();
    assert!(
        json.contains("\"background\":\"") && json.contains("\"shape\":\""),
        "{json}"
    );
    let back: SceneFactors = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s.factors);
    assert_eq!(png(&s), encode_png(&render(&back)).unwrap());
}

#[test]
fn writer_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let scenes = generate_dataset(
        &cfg(),
        33,
        SplitSizes {
            train: 12,
            val: 4,
            test: 5,
        },
    )
    .unwrap();
    let summary = io::write_dataset(dir.path(), &scenes).unwrap();
    assert_eq!(summary.images, 21);
    let captions = io::read_captions(dir.path()).unwrap();
    let factors = io::read_factors(dir.path()).unwrap();
    assert_eq!(captions.len(), 21);
    assert_eq!(factors.len(), 21);
    let ids: HashSet<&str> = captions.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 21, "ids unique");
    for ((c, f), s) in captions.iter().zip(&factors).zip(&scenes) {
        assert_eq!(c.id, s.id);
        assert_eq!(c.split, s.split);
        assert_eq!(c.captions, s.captions);
        assert_eq!(c.image, format!("images/{}.png", s.id));
        assert_eq!(f.id, s.id);
        assert_eq!(f.factors, s.factors);
        let bytes = std::fs::read(dir.path().join(&c.image)).unwrap();
        assert_eq!(bytes, png(s));
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(img, render(&s.factors));
    }
    // The raw lines have the documented keys, and no temporary file is left behind.
    let first = std::fs::read_to_string(dir.path().join("captions.jsonl")).unwrap();
    let v: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(v["split"], "train");
    assert_eq!(v["image"], "images/train-000000.png");
    assert_eq!(v["captions"].as_array().unwrap().len(), 5);
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let mut dup = scenes[..2].to_vec();
    dup[1].id = dup[0].id.clone();
    assert!(matches!(
        io::write_dataset(dir.path(), &dup),
        Err(SynthError::DuplicateId(_))
    ));
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}
