//! Image preprocessing as transformers' `Qwen2VLImageProcessor` (the torchvision backend, the
//! default in transformers 5) does it.
//!
//! Steps: convert to 8-bit RGB (transparency composited onto white); `smart_resize` the size to
//! multiples of `patch_size * merge_size` (28) with `min_pixels <= h * w <= max_pixels`
//! (Python's round-half-to-even included); resize with torchvision's antialiased `uint8` kernel
//! ([`crate::resample`], through [`resize_rgb`]; Pillow for the `…Pil` processor class); rescale and
//! normalise with the mean and standard deviation premultiplied by `1 / rescale_factor`, in f32,
//! as the fused torchvision path does; cut into `patch_size` squares, ordered by 2×2 merge
//! block, each patch flattened as `(channel, time, row, column)` with the still image repeated
//! `temporal_patch_size` times. The result is `pixel_values` `[grid_h * grid_w, 3 * 2 * 14 * 14]`
//! and `image_grid_thw = [1, grid_h, grid_w]`.

use std::path::Path;

use candle_core::{Device, Tensor};
use image::{DynamicImage, RgbImage};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::processor::{ImageProcessor, CLIP_MEAN, CLIP_STD};
use crate::resample::{Filter, ResizeBackend};

/// The fields of a Qwen2-VL image-processor configuration this crate honours.
#[derive(Debug, Clone, PartialEq)]
pub struct QwenImageProcessorConfig {
    /// Convert any colour type to RGB.
    pub do_convert_rgb: bool,
    /// Resize with `smart_resize` (when false the image must already be a multiple of 28).
    pub do_resize: bool,
    /// Resampling filter (`resample`, a PIL code; 3 bicubic by default).
    pub resample: Filter,
    /// Which library's resize to reproduce: torchvision (transformers 5's
    /// `Qwen2VLImageProcessor`) unless `image_processor_type` ends in `Pil`.
    pub backend: ResizeBackend,
    /// Multiply by `rescale_factor`.
    pub do_rescale: bool,
    /// Usually 1/255.
    pub rescale_factor: f64,
    /// Normalise by mean/std.
    pub do_normalize: bool,
    /// Per-channel mean.
    pub image_mean: [f32; 3],
    /// Per-channel standard deviation.
    pub image_std: [f32; 3],
    /// Lower bound on the resized pixel count (`size.shortest_edge` / `min_pixels`).
    pub min_pixels: u64,
    /// Upper bound on the resized pixel count (`size.longest_edge` / `max_pixels`).
    pub max_pixels: u64,
    /// Side of a patch.
    pub patch_size: usize,
    /// Frames per temporal patch.
    pub temporal_patch_size: usize,
    /// Side of a merge block in patches.
    pub merge_size: usize,
}

impl Default for QwenImageProcessorConfig {
    /// `Qwen2VLImageProcessor()` defaults.
    fn default() -> Self {
        Self {
            do_convert_rgb: true,
            do_resize: true,
            resample: Filter::Bicubic,
            backend: ResizeBackend::Torchvision,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
            min_pixels: 56 * 56,
            max_pixels: 28 * 28 * 1280,
            patch_size: 14,
            temporal_patch_size: 2,
            merge_size: 2,
        }
    }
}

impl QwenImageProcessorConfig {
    /// Reads the image settings of a model directory: `preprocessor_config.json` (hub
    /// checkpoints), else the `image_processor` object of `processor_config.json` (what
    /// transformers 5 writes).
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        let pre = dir.join("preprocessor_config.json");
        if pre.is_file() {
            let v = read_json(&pre)?;
            return Self::from_value(&v, &pre);
        }
        let proc = dir.join("processor_config.json");
        if proc.is_file() {
            let v = read_json(&proc)?;
            let Some(ip) = v.get("image_processor") else {
                return Err(Error::Json {
                    path: proc,
                    msg: "no \"image_processor\" object".into(),
                });
            };
            return Self::from_value(ip, &proc);
        }
        Err(Error::MissingFile {
            path: pre,
            hint: "a Qwen2-VL checkpoint needs preprocessor_config.json or processor_config.json"
                .into(),
        })
    }

    /// Parses the image-processor JSON object; `path` only labels errors.
    pub fn from_value(v: &Value, path: &Path) -> Result<Self> {
        let bad = |msg: String| Error::Json {
            path: path.to_path_buf(),
            msg,
        };
        let mut c = Self::default();
        let flag = |k: &str, d: bool| v.get(k).and_then(Value::as_bool).unwrap_or(d);
        c.do_convert_rgb = flag("do_convert_rgb", c.do_convert_rgb);
        c.do_resize = flag("do_resize", c.do_resize);
        c.do_rescale = flag("do_rescale", c.do_rescale);
        c.do_normalize = flag("do_normalize", c.do_normalize);
        if let Some(r) = v.get("resample").and_then(Value::as_u64) {
            c.resample = Filter::from_pil_code(r as u32)
                .ok_or_else(|| bad(format!("resample {r} is not a PIL resampling code (0-5)")))?;
        }
        if let Some(t) = v.get("image_processor_type").and_then(Value::as_str) {
            c.backend = ResizeBackend::for_processor_type(t);
        }
        if let Some(r) = v.get("rescale_factor").and_then(Value::as_f64) {
            c.rescale_factor = r;
        }
        let triple = |k: &str, d: [f32; 3]| -> Result<[f32; 3]> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(d),
                Some(Value::Number(n)) => {
                    let x = n.as_f64().unwrap_or(0.0) as f32;
                    Ok([x; 3])
                }
                Some(Value::Array(a)) if a.len() == 3 => {
                    let xs: Vec<f32> = a
                        .iter()
                        .filter_map(Value::as_f64)
                        .map(|x| x as f32)
                        .collect();
                    if xs.len() == 3 {
                        Ok([xs[0], xs[1], xs[2]])
                    } else {
                        Err(bad(format!("{k} must hold three numbers")))
                    }
                }
                Some(other) => Err(bad(format!("{k} {other} must hold three numbers"))),
            }
        };
        c.image_mean = triple("image_mean", c.image_mean)?;
        c.image_std = triple("image_std", c.image_std)?;
        if c.image_std.contains(&0.0) {
            return Err(bad("image_std has a zero entry".into()));
        }
        // As `Qwen2VLImageProcessor.__init__`: `size` first, then `min_pixels`/`max_pixels`
        // override it.
        if let Some(s) = v.get("size").filter(|s| s.is_object()) {
            if let Some(x) = s
                .get("shortest_edge")
                .or_else(|| s.get("min_pixels"))
                .and_then(Value::as_u64)
            {
                c.min_pixels = x;
            }
            if let Some(x) = s
                .get("longest_edge")
                .or_else(|| s.get("max_pixels"))
                .and_then(Value::as_u64)
            {
                c.max_pixels = x;
            }
        }
        if let Some(x) = v.get("min_pixels").and_then(Value::as_u64) {
            c.min_pixels = x;
        }
        if let Some(x) = v.get("max_pixels").and_then(Value::as_u64) {
            c.max_pixels = x;
        }
        let us = |k: &str, d: usize| {
            v.get(k)
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .unwrap_or(d)
        };
        c.patch_size = us("patch_size", c.patch_size);
        c.temporal_patch_size = us("temporal_patch_size", c.temporal_patch_size);
        c.merge_size = us("merge_size", c.merge_size);
        if c.patch_size == 0 || c.temporal_patch_size == 0 || c.merge_size == 0 {
            return Err(bad(
                "patch_size, temporal_patch_size and merge_size must be positive".into(),
            ));
        }
        if c.min_pixels > c.max_pixels {
            return Err(bad(format!(
                "min_pixels {} is above max_pixels {}",
                c.min_pixels, c.max_pixels
            )));
        }
        Ok(c)
    }

    /// The resize factor, `patch_size * merge_size`.
    pub fn factor(&self) -> u32 {
        (self.patch_size * self.merge_size) as u32
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// Python's `round` (half to even) of `x / y` for positive integers.
fn round_div_half_even(x: u64, y: u64) -> u64 {
    let (q, r) = (x / y, x % y);
    match (2 * r).cmp(&y) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q % 2),
    }
}

/// transformers' `smart_resize`: the `(height, width)` the image is resized to, both multiples
/// of `factor`, with `min_pixels <= h * w <= max_pixels` where possible and the aspect ratio kept
/// as closely as possible. Images narrower than `factor` are enlarged, never rejected; an
/// aspect ratio above 200 is an error, as in transformers.
pub fn smart_resize(
    height: u32,
    width: u32,
    factor: u32,
    min_pixels: u64,
    max_pixels: u64,
) -> Result<(u32, u32)> {
    if height == 0 || width == 0 || factor == 0 {
        return Err(Error::Input(format!(
            "cannot resize a {width}×{height} image with factor {factor}"
        )));
    }
    let (h, w, f) = (height as u64, width as u64, factor as u64);
    if h.max(w) as f64 / h.min(w) as f64 > 200.0 {
        return Err(Error::Input(format!(
            "absolute aspect ratio must be smaller than 200, got {} ({width}×{height})",
            h.max(w) as f64 / h.min(w) as f64
        )));
    }
    let mut h_bar = round_div_half_even(h, f) * f;
    let mut w_bar = round_div_half_even(w, f) * f;
    let (hf, wf, ff) = (h as f64, w as f64, f as f64);
    if h_bar * w_bar > max_pixels {
        let beta = ((hf * wf) / max_pixels as f64).sqrt();
        h_bar = f.max(((hf / beta / ff).floor() as u64) * f);
        w_bar = f.max(((wf / beta / ff).floor() as u64) * f);
    } else if h_bar * w_bar < min_pixels {
        let beta = (min_pixels as f64 / (hf * wf)).sqrt();
        h_bar = ((hf * beta / ff).ceil() as u64) * f;
        w_bar = ((wf * beta / ff).ceil() as u64) * f;
    }
    Ok((h_bar as u32, w_bar as u32))
}

/// Resizes an RGB image to `width × height` as transformers does for these processors:
/// [`crate::resample::resize`] with the configured filter and backend (by default torchvision's
/// antialiased `uint8` kernel, which transformers 5's `Qwen2VLImageProcessor` runs on the CPU).
///
/// Every caller goes through this one function so the resampler can be swapped in one place.
pub fn resize_rgb(
    img: &RgbImage,
    width: u32,
    height: u32,
    filter: Filter,
    backend: ResizeBackend,
) -> RgbImage {
    crate::resample::resize(img, width, height, filter, backend)
}

/// A preprocessed image: flattened patches and their grid.
#[derive(Debug, Clone)]
pub struct QwenPixels {
    /// `[grid_t * grid_h * grid_w, channels * temporal * patch * patch]`, f32.
    pub pixel_values: Tensor,
    /// `(grid_t, grid_h, grid_w)` in patches (`image_grid_thw`).
    pub grid_thw: (usize, usize, usize),
    /// Language-model tokens the image becomes: `grid_t * grid_h * grid_w / merge²`.
    pub num_tokens: usize,
}

/// Qwen2-VL image preprocessing (the recipe plus a decode limit).
#[derive(Debug, Clone)]
pub struct QwenImageProcessor {
    /// The recipe.
    pub config: QwenImageProcessorConfig,
    /// Decoding and limits (shared with LLaVA's processor).
    pub decoder: ImageProcessor,
}

impl QwenImageProcessor {
    /// A processor with the given recipe and the default decode limit.
    pub fn new(config: QwenImageProcessorConfig) -> Self {
        Self {
            config,
            decoder: ImageProcessor::new(Default::default()),
        }
    }

    /// Reads the recipe from a model directory.
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        Ok(Self::new(QwenImageProcessorConfig::from_model_dir(dir)?))
    }

    /// Overrides the resize backend (e.g. Pillow, to reproduce transformers 4.x's slow
    /// `Qwen2VLImageProcessor`).
    pub fn with_backend(mut self, backend: ResizeBackend) -> Self {
        self.config.backend = backend;
        self
    }

    /// Sets the limit on decoded image pixels (files above it are rejected before decoding).
    pub fn with_max_decoded_pixels(mut self, max_pixels: u64) -> Self {
        self.decoder = self.decoder.with_max_pixels(max_pixels);
        self
    }

    /// The `(height, width)` an image of `height × width` is resized to.
    pub fn output_size(&self, height: u32, width: u32) -> Result<(u32, u32)> {
        let c = &self.config;
        if !c.do_resize {
            return Ok((height, width));
        }
        smart_resize(height, width, c.factor(), c.min_pixels, c.max_pixels)
    }

    /// Preprocesses a decoded image into channel-first f32 `[3, H, W]` values (resized,
    /// rescaled, normalised) and the resized `(H, W)`.
    pub fn normalized(&self, img: &DynamicImage) -> Result<(Vec<f32>, usize, usize)> {
        let c = &self.config;
        // transformers' `convert_to_rgb` composites transparency onto white, as `to_rgb8` does.
        let rgb = ImageProcessor::to_rgb8(img);
        let (h0, w0) = (rgb.height(), rgb.width());
        let (h, w) = self.output_size(h0, w0)?;
        let f = c.factor();
        if h % f != 0 || w % f != 0 || h == 0 || w == 0 {
            return Err(Error::Input(format!(
                "the image is {w}×{h} pixels after resizing, not a multiple of {f} \
                 (set do_resize or resize it beforehand)"
            )));
        }
        let rgb = if (h, w) == (h0, w0) {
            rgb
        } else {
            resize_rgb(&rgb, w, h, c.resample, c.backend)
        };
        let (h, w) = (h as usize, w as usize);
        // The torchvision backend fuses rescale and normalise: mean and std premultiplied by
        // 1 / rescale_factor (a Python float, cast to f32 by torch), then `(x - mean) / std` in
        // f32. The Pillow backend rescales first, then normalises, both in f32.
        let fused = c.backend == ResizeBackend::Torchvision && c.do_normalize;
        let inv = (1.0 / c.rescale_factor) as f32;
        let (mean, std): ([f32; 3], [f32; 3]) = if fused && c.do_rescale {
            (c.image_mean.map(|m| m * inv), c.image_std.map(|s| s * inv))
        } else {
            (c.image_mean, c.image_std)
        };
        let scale = c.rescale_factor as f32;
        let raw = rgb.as_raw();
        let mut out = vec![0f32; 3 * h * w];
        for ch in 0..3 {
            for p in 0..h * w {
                let x = raw[p * 3 + ch] as f32;
                out[ch * h * w + p] = if fused {
                    (x - mean[ch]) / std[ch]
                } else {
                    let mut v = x;
                    if c.do_rescale {
                        v *= scale;
                    }
                    if c.do_normalize {
                        v = (v - mean[ch]) / std[ch];
                    }
                    v
                };
            }
        }
        Ok((out, h, w))
    }

    /// Preprocesses a decoded image into flattened patches (`pixel_values`) and its grid.
    pub fn preprocess(&self, img: &DynamicImage, device: &Device) -> Result<QwenPixels> {
        let c = &self.config;
        let (vals, h, w) = self.normalized(img)?;
        let (p, m, t) = (c.patch_size, c.merge_size, c.temporal_patch_size);
        let (gh, gw) = (h / p, w / p);
        let row = 3 * t * p * p;
        let mut out = Vec::with_capacity(gh * gw * row);
        // Rows in merge-block order (block row, block column, row in block, column in block);
        // each row is (channel, time, y, x) with the frame repeated along time.
        for bh in 0..gh / m {
            for bw in 0..gw / m {
                for mh in 0..m {
                    for mw in 0..m {
                        let (py, px) = ((bh * m + mh) * p, (bw * m + mw) * p);
                        for ch in 0..3 {
                            for _ in 0..t {
                                for y in 0..p {
                                    let base = ch * h * w + (py + y) * w + px;
                                    out.extend_from_slice(&vals[base..base + p]);
                                }
                            }
                        }
                    }
                }
            }
        }
        let n = gh * gw;
        Ok(QwenPixels {
            pixel_values: Tensor::from_vec(out, (n, row), device)?,
            grid_thw: (1, gh, gw),
            num_tokens: n / (m * m),
        })
    }

    /// Decodes and preprocesses an image file.
    pub fn preprocess_path(&self, path: impl AsRef<Path>, device: &Device) -> Result<QwenPixels> {
        let img = self.decoder.load_image(path)?;
        self.preprocess(&img, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_resize_matches_python() {
        // round(70 / 28) = round(2.5) = 2 in Python.
        assert_eq!(smart_resize(42, 70, 28, 3136, 15680).unwrap(), (56, 56));
        // Narrower than 28 px: enlarged to reach min_pixels.
        assert_eq!(smart_resize(90, 20, 28, 3136, 15680).unwrap(), (140, 28));
        // Above max_pixels: shrunk.
        assert_eq!(smart_resize(150, 200, 28, 3136, 15680).unwrap(), (84, 140));
        assert!(smart_resize(1, 300, 28, 3136, 15680).is_err());
        // A 1×1 image is enlarged to the minimum.
        assert_eq!(smart_resize(1, 1, 28, 3136, 15680).unwrap(), (56, 56));
    }

    #[test]
    fn identity_resize_keeps_pixels() {
        let img = RgbImage::from_fn(5, 4, |x, y| image::Rgb([x as u8 * 40, y as u8 * 50, 7]));
        let out = resize_rgb(&img, 5, 4, Filter::Bicubic, ResizeBackend::Torchvision);
        assert_eq!(out, img);
    }
}
