//! The writer: MAS lists + the samples' image paths → thumbnails, per-concept grids and a JSON record.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::imaging::{grid, placeholder, thumbnail, write_png};
use crate::mas::{Mas, DEFAULT_N_MAS};

/// The name of the JSON record [`write_visual_grounding`] writes in its output folder.
pub const VISUAL_GROUNDING_FILE: &str = "visual_grounding.json";

/// Where a training sample's image is: one entry per row of the activation matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleImage {
    /// The sample's id (the dataset's id, e.g. a COCO id or `train-000042`).
    pub id: String,
    /// The image file.
    pub image: PathBuf,
}

/// Settings of [`write_visual_grounding`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisualParams {
    /// Thumbnail side in pixels (default 96).
    pub thumb_side: u32,
    /// How many of each concept's samples go into its grid (default [`DEFAULT_N_MAS`]); every
    /// sample of the MAS list gets a thumbnail.
    pub grid_samples: usize,
    /// Columns of the grid (default 5).
    pub grid_cols: usize,
    /// White padding around and between grid tiles, in pixels (default 4).
    pub grid_pad: u32,
}

impl Default for VisualParams {
    fn default() -> Self {
        Self {
            thumb_side: 96,
            grid_samples: DEFAULT_N_MAS,
            grid_cols: 5,
            grid_pad: 4,
        }
    }
}

/// One most-activating sample of a concept, with its files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MasImage {
    /// The sample's row in the activation matrix.
    pub sample: usize,
    /// The sample's id.
    pub id: String,
    /// The source image path, as given.
    pub image: String,
    /// The thumbnail, relative to the output folder (`thumbs/<id>.png`); `None` when the image could
    /// not be read.
    pub thumbnail: Option<String>,
    /// The sample's activation for the concept.
    pub activation: f32,
    /// Why the image could not be read (names the path), `None` when it was.
    pub error: Option<String>,
}

/// One concept's most-activating samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConceptImages {
    /// The concept index `k`.
    pub concept: usize,
    /// The grid of the first `grid_samples` samples, relative to the output folder
    /// (`concept-NNN-grid.png`); `None` when the concept has no samples.
    pub grid: Option<String>,
    /// The samples, in descending order of activation.
    pub samples: Vec<MasImage>,
}

/// The visual grounding of a dictionary: what `visual_grounding.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisualGrounding {
    /// Thumbnail side in pixels.
    pub thumb_side: u32,
    /// One entry per concept, in concept order.
    pub concepts: Vec<ConceptImages>,
}

/// An input image that could not be used (it is drawn as a placeholder tile).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageProblem {
    /// The sample's row.
    pub sample: usize,
    /// The sample's id.
    pub id: String,
    /// The image path.
    pub path: PathBuf,
    /// What went wrong (names the path).
    pub reason: String,
}

/// What [`write_visual_grounding`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct VisualOutput {
    /// The records written to `visual_grounding.json`.
    pub grounding: VisualGrounding,
    /// Every sample whose image could not be read, once each, in sample order.
    pub problems: Vec<ImageProblem>,
}

/// A file-name-safe form of a sample id: ASCII letters, digits, `-`, `_` and `.` are kept, every
/// other character becomes `_`, a leading `.` becomes `_` (no hidden files, no `..`), the empty id
/// becomes `_`, and the result is cut to 80 characters. Different ids may map to the same name;
/// [`write_visual_grounding`] then appends `-<sample>`.
///
/// ```
/// assert_eq!(cox_ground_visual::sanitise_id("train-000042"), "train-000042");
/// assert_eq!(cox_ground_visual::sanitise_id("../a b/ü.jpg"), "_._a_b__.jpg");
/// ```
pub fn sanitise_id(id: &str) -> String {
    let mut s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if s.starts_with('.') {
        s.replace_range(0..1, "_");
    }
    if s.is_empty() {
        s.push('_');
    }
    s
}

/// Writes the visual grounding of a dictionary into `out_dir` and returns its records.
///
/// `mas[k]` is concept `k`'s most-activating samples (from [`most_activating`](crate::most_activating))
/// and `samples[i]` the id and image of activation row `i`. Each distinct image is read once
/// (whatever the number of concepts it appears in) and written as `out_dir/thumbs/<id>.png`
/// (`params.thumb_side` px, see [`thumbnail`](crate::thumbnail); `<id>` is [`sanitise_id`], with
/// `-<sample>` appended when two ids would share a file name, compared case-insensitively). Each
/// concept with samples gets `out_dir/concept-NNN-grid.png` (its first `params.grid_samples`
/// thumbnails, see [`grid`](crate::grid)), and everything is recorded in
/// `out_dir/visual_grounding.json` ([`VISUAL_GROUNDING_FILE`]). Files are written atomically and are
/// byte-identical for identical inputs.
///
/// A missing or undecodable image does not abort: its records carry an `error` naming the path and
/// the reason, its grid tile is a [`placeholder`](crate::placeholder), and it is listed once in
/// [`VisualOutput::problems`].
///
/// # Errors
/// [`VisualError::Write`](crate::VisualError::Write) or
/// [`VisualError::Encode`](crate::VisualError::Encode) when an output cannot be written.
///
/// # Panics
/// If a MAS names a sample `>= samples.len()`, or `params` has a zero `thumb_side` or `grid_cols`.
///
/// ```no_run
/// use cox_ground_visual::{most_activating, write_visual_grounding, SampleImage, VisualParams};
/// let acts = [0.0, 1.0, 2.0, 0.5]; // two samples × two concepts
/// let samples = vec![
///     SampleImage { id: "a".into(), image: "images/a.png".into() },
///     SampleImage { id: "b".into(), image: "images/b.png".into() },
/// ];
/// let mas = most_activating(&acts, 2, 2, 5)?;
/// let out = write_visual_grounding(&mas, &samples, "site".as_ref(), &VisualParams::default())?;
/// for p in &out.problems {
///     eprintln!("warning: {}", p.reason);
/// }
/// # Ok::<(), cox_ground_visual::VisualError>(())
/// ```
#[track_caller]
pub fn write_visual_grounding(
    mas: &[Vec<Mas>],
    samples: &[SampleImage],
    out_dir: &Path,
    params: &VisualParams,
) -> Result<VisualOutput> {
    assert!(
        params.thumb_side > 0,
        "write_visual_grounding: thumb_side must be positive"
    );
    assert!(
        params.grid_cols > 0,
        "write_visual_grounding: grid_cols must be positive"
    );
    let used: BTreeMap<usize, ()> = mas.iter().flatten().map(|m| (m.sample, ())).collect();
    if let Some((&last, _)) = used.last_key_value() {
        assert!(
            last < samples.len(),
            "write_visual_grounding: a MAS names sample {last} but only {} samples were given",
            samples.len()
        );
    }

    // File names in sample order, so they do not depend on the order of the concepts.
    let mut taken = HashSet::new();
    let mut names = BTreeMap::new();
    for &sample in used.keys() {
        let mut name = sanitise_id(&samples[sample].id);
        if !taken.insert(name.to_ascii_lowercase()) {
            name = format!("{name}-{sample}");
            while !taken.insert(name.to_ascii_lowercase()) {
                name.push('_');
            }
        }
        names.insert(sample, format!("thumbs/{name}.png"));
    }

    // Each image is read once; its thumbnail is kept for the grids.
    let mut thumbs: BTreeMap<usize, std::result::Result<RgbImage, String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for &sample in used.keys() {
        let src = &samples[sample];
        let thumb = load(&src.image).map(|img| thumbnail(&img, params.thumb_side));
        match &thumb {
            Ok(t) => write_png(t, &out_dir.join(&names[&sample]))?,
            Err(reason) => problems.push(ImageProblem {
                sample,
                id: src.id.clone(),
                path: src.image.clone(),
                reason: reason.clone(),
            }),
        }
        thumbs.insert(sample, thumb);
    }

    let blank = placeholder(params.thumb_side);
    let mut concepts = Vec::with_capacity(mas.len());
    for (concept, list) in mas.iter().enumerate() {
        let samples_out: Vec<MasImage> = list
            .iter()
            .map(|m| {
                let thumb = &thumbs[&m.sample];
                MasImage {
                    sample: m.sample,
                    id: samples[m.sample].id.clone(),
                    image: samples[m.sample].image.to_string_lossy().into_owned(),
                    thumbnail: thumb.as_ref().ok().map(|_| names[&m.sample].clone()),
                    activation: m.activation,
                    error: thumb.as_ref().err().cloned(),
                }
            })
            .collect();
        let tiles: Vec<RgbImage> = list
            .iter()
            .take(params.grid_samples)
            .map(|m| thumbs[&m.sample].as_ref().unwrap_or(&blank).clone())
            .collect();
        let grid_name = if tiles.is_empty() {
            None
        } else {
            let name = format!("concept-{concept:03}-grid.png");
            write_png(
                &grid(&tiles, params.grid_cols, params.grid_pad),
                &out_dir.join(&name),
            )?;
            Some(name)
        };
        concepts.push(ConceptImages {
            concept,
            grid: grid_name,
            samples: samples_out,
        });
    }

    let grounding = VisualGrounding {
        thumb_side: params.thumb_side,
        concepts,
    };
    let mut json = serde_json::to_vec_pretty(&grounding)?;
    json.push(b'\n');
    cox_store::atomic_write(&out_dir.join(VISUAL_GROUNDING_FILE), &json)?;
    Ok(VisualOutput {
        grounding,
        problems,
    })
}

/// Decodes an image with the project's safe opening (regular files only, limits checked before
/// reading, truncated files refused), or says why not, naming the path.
fn load(path: &Path) -> std::result::Result<image::DynamicImage, String> {
    cox_image::open_image(path, &cox_image::ImageLimits::default()).map_err(|e| e.to_string())
}
