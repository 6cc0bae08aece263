//! Image decoding and CLIP preprocessing exactly as transformers' `CLIPImageProcessor` does it,
//! configured by `preprocessor_config.json` (or the `image_processor` object of
//! `processor_config.json`, where transformers 5.x writes it).
//!
//! Steps, in transformers' order: convert to RGB (transparent pixels composited onto white, as
//! transformers 5.x's `convert_to_rgb` does), resize so the shortest edge equals
//! `size.shortest_edge` (the long edge `int(shortest * long / short)`), centre crop to
//! `crop_size` (zero padding when the image is smaller), rescale by `rescale_factor` and
//! normalise by `image_mean`/`image_std`. Output is channel-first `[3, H, W]` f32.
//!
//! transformers has two image backends whose pixels differ by up to one grey level, so the
//! [`ResizeBackend`] is part of the configuration: **torchvision** (transformers 5.x's
//! `CLIPImageProcessor`, 4.x's `CLIPImageProcessorFast`: PyTorch's uint8 anti-aliased resize,
//! crop padding `⌊(crop − size)/2⌋`, fused `(x − 255·mean)/(255·std)`) or **Pillow** (4.x's
//! `CLIPImageProcessor`, 5.x's `CLIPImageProcessorPil`: `PIL.Image.resize`, crop padding
//! `⌈(crop − size)/2⌉`, `x·rescale` then `(x − mean)/std`). Both resamplers are integer-exact
//! ports ([`crate::resample`]); `tests/fixtures/pixels/` checks `pixel_values` against both
//! transformers backends. 16-bit images are scaled to 8 bits (`v / 257`), where Pillow would
//! clip; CMYK JPEGs are converted to RGB by the decoder.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use image::{DynamicImage, RgbImage};

use crate::error::{Error, Result};
use crate::resample::{resize, Filter, ResizeBackend};

/// CLIP's normalisation mean.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's normalisation standard deviation.
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// The fields of `preprocessor_config.json` this crate honours.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessorConfig {
    /// Convert any colour type to RGB.
    pub do_convert_rgb: bool,
    /// Resize before cropping.
    pub do_resize: bool,
    /// Target of the shortest edge.
    pub shortest_edge: u32,
    /// PIL resample code (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic).
    pub resample: u32,
    /// Crop the centre.
    pub do_center_crop: bool,
    /// Crop `(height, width)`.
    pub crop_size: (u32, u32),
    /// Multiply by `rescale_factor`.
    pub do_rescale: bool,
    /// Usually 1/255.
    pub rescale_factor: f32,
    /// Normalise by mean/std.
    pub do_normalize: bool,
    /// Per-channel mean.
    pub image_mean: [f32; 3],
    /// Per-channel standard deviation.
    pub image_std: [f32; 3],
    /// Whose resampling, cropping and normalisation arithmetic to reproduce.
    pub backend: ResizeBackend,
}

impl Default for ImageProcessorConfig {
    /// `CLIPImageProcessor()` defaults.
    fn default() -> Self {
        Self {
            do_convert_rgb: true,
            do_resize: true,
            shortest_edge: 224,
            resample: 3,
            do_center_crop: true,
            crop_size: (224, 224),
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
            backend: ResizeBackend::Torchvision,
        }
    }
}

impl ImageProcessorConfig {
    /// Parses a `preprocessor_config.json`; absent keys keep CLIP's defaults.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_str(&text, Some(path))
    }

    /// Parses preprocessor JSON; `path` only labels errors.
    pub fn from_json_str(text: &str, path: Option<&Path>) -> Result<Self> {
        let label = || {
            path.map(Path::to_path_buf)
                .unwrap_or_else(|| "<preprocessor>".into())
        };
        let bad = |msg: String| Error::Json { path: label(), msg };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        Self::from_json_value(&v, path)
    }

    /// Reads the image-processor settings of a model directory: `preprocessor_config.json`
    /// (transformers 4.x), else the `image_processor` object of `processor_config.json`
    /// (transformers 5.x). `None` when neither exists.
    pub fn from_model_dir(dir: &Path) -> Result<Option<(Self, PathBuf)>> {
        let pre = dir.join("preprocessor_config.json");
        if pre.is_file() {
            return Ok(Some((Self::from_file(&pre)?, pre)));
        }
        let proc = dir.join("processor_config.json");
        if proc.is_file() {
            let text = std::fs::read_to_string(&proc).map_err(|e| Error::io(&proc, e))?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Json {
                path: proc.clone(),
                msg: e.to_string(),
            })?;
            if let Some(ip) = v.get("image_processor") {
                return Ok(Some((Self::from_json_value(ip, Some(&proc))?, proc)));
            }
        }
        Ok(None)
    }

    /// Parses an image-processor JSON object; `path` only labels errors.
    pub fn from_json_value(v: &serde_json::Value, path: Option<&Path>) -> Result<Self> {
        let label = || {
            path.map(Path::to_path_buf)
                .unwrap_or_else(|| "<preprocessor>".into())
        };
        let bad = |msg: String| Error::Json { path: label(), msg };
        let mut c = Self::default();
        if let Some(t) = v.get("image_processor_type").and_then(|x| x.as_str()) {
            c.backend = ResizeBackend::for_processor_type(t);
        }
        let flag = |k: &str, d: bool| v.get(k).and_then(|x| x.as_bool()).unwrap_or(d);
        c.do_convert_rgb = flag("do_convert_rgb", c.do_convert_rgb);
        c.do_resize = flag("do_resize", c.do_resize);
        c.do_center_crop = flag("do_center_crop", c.do_center_crop);
        c.do_rescale = flag("do_rescale", c.do_rescale);
        c.do_normalize = flag("do_normalize", c.do_normalize);
        if let Some(r) = v.get("resample").and_then(|x| x.as_u64()) {
            c.resample = r as u32;
            if Filter::from_pil_code(c.resample).is_none() {
                return Err(bad(format!(
                    "resample {r} is not a PIL resampling filter (0 nearest, 1 lanczos, 2 \
                     bilinear, 3 bicubic, 4 box, 5 hamming)"
                )));
            }
        }
        if let Some(r) = v.get("rescale_factor").and_then(|x| x.as_f64()) {
            c.rescale_factor = r as f32;
        }
        match v.get("size") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Number(n)) => {
                c.shortest_edge = n
                    .as_u64()
                    .ok_or_else(|| bad("size must be a positive integer".into()))?
                    as u32;
            }
            Some(s) => {
                if let Some(e) = s.get("shortest_edge").and_then(|x| x.as_u64()) {
                    c.shortest_edge = e as u32;
                } else {
                    return Err(bad(format!(
                        "size {s} is not supported (LLaVA-1.5 uses {{\"shortest_edge\": N}})"
                    )));
                }
            }
        }
        match v.get("crop_size") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Number(n)) => {
                let n = n
                    .as_u64()
                    .ok_or_else(|| bad("crop_size must be an integer".into()))?
                    as u32;
                c.crop_size = (n, n);
            }
            Some(s) => {
                let h = s.get("height").and_then(|x| x.as_u64());
                let w = s.get("width").and_then(|x| x.as_u64());
                match (h, w) {
                    (Some(h), Some(w)) => c.crop_size = (h as u32, w as u32),
                    _ => return Err(bad(format!("crop_size {s} needs height and width"))),
                }
            }
        }
        let triple = |k: &str| -> Result<Option<[f32; 3]>> {
            match v.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Number(n)) => {
                    let x = n.as_f64().unwrap_or(0.0) as f32;
                    Ok(Some([x, x, x]))
                }
                Some(a) => {
                    let xs: Option<Vec<f32>> = a.as_array().map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_f64().map(|x| x as f32))
                            .collect()
                    });
                    match xs {
                        Some(xs) if xs.len() == 3 => Ok(Some([xs[0], xs[1], xs[2]])),
                        _ => Err(bad(format!("{k} must be a list of 3 numbers"))),
                    }
                }
            }
        };
        if let Some(m) = triple("image_mean")? {
            c.image_mean = m;
        }
        if let Some(s) = triple("image_std")? {
            c.image_std = s;
        }
        if c.image_std.contains(&0.0)
            || c.shortest_edge == 0
            || c.crop_size.0 == 0
            || c.crop_size.1 == 0
        {
            return Err(bad(
                "image_std entries, size and crop_size must be non-zero".into(),
            ));
        }
        Ok(c)
    }

    /// Output `(height, width)` of [`ImageProcessor::preprocess`] for an image of the given size.
    pub fn output_size(&self, height: u32, width: u32) -> (u32, u32) {
        let (h, w) = if self.do_resize {
            self.resized_size(height, width)
        } else {
            (height, width)
        };
        if self.do_center_crop {
            self.crop_size
        } else {
            (h, w)
        }
    }

    /// HF's `get_resize_output_image_size(..., default_to_square=False)`.
    fn resized_size(&self, height: u32, width: u32) -> (u32, u32) {
        let (short, long) = if height <= width {
            (height, width)
        } else {
            (width, height)
        };
        let new_short = self.shortest_edge;
        let new_long = ((new_short as u64 * long as u64) / short.max(1) as u64) as u32;
        if height <= width {
            (new_short, new_long.max(1))
        } else {
            (new_long.max(1), new_short)
        }
    }

    fn filter(&self) -> Filter {
        Filter::from_pil_code(self.resample).unwrap_or(Filter::Bicubic)
    }
}

/// Decodes images safely and turns them into normalised pixel tensors.
#[derive(Debug, Clone)]
pub struct ImageProcessor {
    /// The preprocessing recipe.
    pub config: ImageProcessorConfig,
    /// Images with more pixels than this are rejected before decoding (default 100 Mpx).
    pub max_pixels: u64,
}

impl ImageProcessor {
    /// A processor with the given recipe and the default pixel limit.
    pub fn new(config: ImageProcessorConfig) -> Self {
        Self {
            config,
            max_pixels: 100_000_000,
        }
    }

    /// Reads the image-processor settings of a model directory
    /// ([`ImageProcessorConfig::from_model_dir`]), or CLIP's defaults when there are none.
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        let config = match ImageProcessorConfig::from_model_dir(dir)? {
            Some((c, path)) => {
                tracing::info!(
                    "image preprocessing from {} ({} resampling)",
                    path.display(),
                    c.backend.name()
                );
                c
            }
            None => {
                tracing::warn!(
                    "neither preprocessor_config.json nor processor_config.json in {}; using \
                     CLIP's preprocessing defaults",
                    dir.display()
                );
                ImageProcessorConfig::default()
            }
        };
        Ok(Self::new(config))
    }

    /// Sets the resampling backend (overriding what the configuration implies).
    pub fn with_backend(mut self, backend: ResizeBackend) -> Self {
        self.config.backend = backend;
        self
    }

    /// Sets the pixel limit.
    pub fn with_max_pixels(mut self, max_pixels: u64) -> Self {
        self.max_pixels = max_pixels;
        self
    }

    /// Decodes an image file (JPEG or PNG) with [`cox_image`]'s safe opening: only regular files
    /// (a FIFO or device is refused at once), the file length and header checked against the
    /// pixel limit before the whole file is read, and empty, corrupt, truncated, unsupported and
    /// oversized files rejected with an error naming the path.
    pub fn load_image(&self, path: impl AsRef<Path>) -> Result<DynamicImage> {
        let path = path.as_ref();
        let limits = cox_image::ImageLimits::for_pixels(self.max_pixels);
        let bytes = cox_image::read_image_file(path, &limits).map_err(image_error)?;
        self.decode(&bytes, path)
    }

    /// Decodes image bytes; `label` names the source in errors.
    pub fn decode(&self, bytes: &[u8], label: &Path) -> Result<DynamicImage> {
        let limits = cox_image::ImageLimits::for_pixels(self.max_pixels);
        cox_image::decode_image(bytes, label, &limits).map_err(image_error)
    }

    /// Converts to 8-bit RGB as transformers 5.x's `convert_to_rgb` does: grey is replicated,
    /// transparent pixels are composited onto white with Pillow's `alpha_composite` integer
    /// arithmetic, 16-bit and float images are scaled to 8 bits.
    pub fn to_rgb8(img: &DynamicImage) -> RgbImage {
        match img {
            DynamicImage::ImageRgb8(rgb) => rgb.clone(),
            other if other.color().has_alpha() => {
                let rgba = other.to_rgba8();
                let mut out = RgbImage::new(rgba.width(), rgba.height());
                for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
                    o.0 = composite_on_white(p.0);
                }
                out
            }
            other => other.to_rgb8(),
        }
    }

    /// Preprocesses a decoded image into a `[3, H, W]` f32 buffer (channel-first).
    pub fn preprocess_to_vec(&self, img: &DynamicImage) -> Result<(Vec<f32>, u32, u32)> {
        let c = &self.config;
        // `do_convert_rgb = false` still needs three channels for the model; HF would fail
        // later on such inputs, here they are converted all the same.
        let mut rgb = Self::to_rgb8(img);
        if c.do_resize {
            let (h, w) = c.resized_size(rgb.height(), rgb.width());
            if h as u64 * w as u64 > self.max_pixels {
                return Err(Error::Input(format!(
                    "resizing a {}×{} image to a shortest edge of {} gives {w}×{h} pixels, above \
                     the limit of {} (extreme aspect ratio)",
                    rgb.width(),
                    rgb.height(),
                    c.shortest_edge,
                    self.max_pixels
                )));
            }
            if (h, w) != (rgb.height(), rgb.width()) {
                rgb = resize(&rgb, w, h, c.filter(), c.backend);
            }
        }
        if c.do_center_crop {
            rgb = center_crop(&rgb, c.crop_size.0, c.crop_size.1, c.backend);
        }
        let (w, h) = (rgb.width(), rgb.height());
        let plane = (w * h) as usize;
        let mut out = vec![0f32; 3 * plane];
        let fused = c.backend == ResizeBackend::Torchvision && c.do_normalize;
        // torchvision's fused rescale + normalise: mean and std scaled by 1/rescale_factor
        // (as f32 tensors times a Python float), then (x - mean') / std'.
        let inv = (1.0 / f64::from(c.rescale_factor)) as f32;
        let (mean_f, std_f): (Vec<f32>, Vec<f32>) = if c.do_rescale {
            (
                c.image_mean.iter().map(|m| m * inv).collect(),
                c.image_std.iter().map(|s| s * inv).collect(),
            )
        } else {
            (c.image_mean.to_vec(), c.image_std.to_vec())
        };
        for (i, px) in rgb.pixels().enumerate() {
            for ch in 0..3 {
                let x = px.0[ch] as f32;
                out[ch * plane + i] = if fused {
                    (x - mean_f[ch]) / std_f[ch]
                } else {
                    let mut v = x;
                    if c.do_rescale {
                        v *= c.rescale_factor;
                    }
                    if c.do_normalize {
                        v = (v - c.image_mean[ch]) / c.image_std[ch];
                    }
                    v
                };
            }
        }
        Ok((out, h, w))
    }

    /// Preprocesses a decoded image into a `[1, 3, H, W]` f32 tensor on `device`.
    pub fn preprocess(&self, img: &DynamicImage, device: &Device) -> Result<Tensor> {
        let (data, h, w) = self.preprocess_to_vec(img)?;
        Ok(Tensor::from_vec(
            data,
            (1, 3, h as usize, w as usize),
            device,
        )?)
    }

    /// Decodes and preprocesses an image file into `[1, 3, H, W]`.
    pub fn preprocess_path(&self, path: impl AsRef<Path>, device: &Device) -> Result<Tensor> {
        let img = self.load_image(path)?;
        self.preprocess(&img, device)
    }
}

/// transformers' `center_crop`: offsets `⌊(H − h)/2⌋`, `⌊(W − w)/2⌋` when the image is larger;
/// when it is smaller it is zero-padded, placed at `⌈(h − H)/2⌉` (Pillow backend) or
/// `⌊(h − H)/2⌋` (torchvision backend).
fn center_crop(img: &RgbImage, out_h: u32, out_w: u32, backend: ResizeBackend) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    if w as u32 == out_w && h as u32 == out_h {
        return img.clone();
    }
    let offset = |size: i64, crop: i64| -> i64 {
        if size >= crop {
            (size - crop) / 2
        } else {
            match backend {
                ResizeBackend::Pil => (size - crop).div_euclid(2),
                ResizeBackend::Torchvision => -((crop - size) / 2),
            }
        }
    };
    let top = offset(h, out_h as i64);
    let left = offset(w, out_w as i64);
    let mut out = RgbImage::new(out_w, out_h);
    for y in 0..out_h as i64 {
        let sy = y + top;
        if sy < 0 || sy >= h {
            continue;
        }
        for x in 0..out_w as i64 {
            let sx = x + left;
            if sx < 0 || sx >= w {
                continue;
            }
            out.put_pixel(x as u32, y as u32, *img.get_pixel(sx as u32, sy as u32));
        }
    }
    out
}

/// Pillow's `alpha_composite` of one RGBA pixel over opaque white, then `convert("RGB")`.
fn composite_on_white(p: [u8; 4]) -> [u8; 3] {
    let a = u32::from(p[3]);
    if a == 0 {
        return [255, 255, 255];
    }
    // With an opaque destination: coef1 = a·2⁷, coef2 = (255 − a)·2⁷ (PRECISION_BITS = 7).
    let coef1 = a << 7;
    let coef2 = (255 - a) << 7;
    let blend = |src: u8| -> u8 {
        let tmp = u32::from(src) * coef1 + 255 * coef2 + (0x80 << 7);
        // SHIFTFORDIV255(a) = ((a >> 8) + a) >> 8, then the precision shift.
        ((((tmp >> 8) + tmp) >> 8) >> 7) as u8
    };
    [blend(p[0]), blend(p[1]), blend(p[2])]
}

/// The model's error for an image that cannot be opened.
fn image_error(e: cox_image::ImageError) -> Error {
    match e {
        cox_image::ImageError::Io { path, cause } => Error::io(path, cause),
        cox_image::ImageError::Bad { path, problem } => Error::Image { path, msg: problem },
    }
}
