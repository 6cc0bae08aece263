//! Image decoding and CLIP preprocessing as `preprocessor_config.json` (`CLIPImageProcessor`)
//! describes it.
//!
//! Steps, in HF's order: convert to RGB, resize so the shortest edge equals
//! `size.shortest_edge` (the long edge scaled by `int(shortest * long / short)`), centre crop
//! to `crop_size` (zero padding when the image is smaller), multiply by `rescale_factor`,
//! normalise by `image_mean`/`image_std`. Output is channel-first `[3, H, W]` f32.
//!
//! **Deviation from HF:** resampling uses the `image` crate's filters instead of Pillow's:
//! `resample = 3` (bicubic) → `CatmullRom` and `2` (bilinear) → `Triangle`, `0` → `Nearest`,
//! `1` (Lanczos) → `Lanczos3`. Both libraries widen the kernel when downscaling (anti-aliasing)
//! and round to 8 bits after resizing, but Pillow's fixed-point arithmetic differs, so pixels
//! may differ by a few grey levels. 16-bit images are scaled to 8 bits (`v / 257`), where
//! Pillow would clip; CMYK JPEGs are converted to RGB by the decoder.

use std::path::Path;

use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};

use crate::error::{Error, Result};

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
        let mut c = Self::default();
        let flag = |k: &str, d: bool| v.get(k).and_then(|x| x.as_bool()).unwrap_or(d);
        c.do_convert_rgb = flag("do_convert_rgb", c.do_convert_rgb);
        c.do_resize = flag("do_resize", c.do_resize);
        c.do_center_crop = flag("do_center_crop", c.do_center_crop);
        c.do_rescale = flag("do_rescale", c.do_rescale);
        c.do_normalize = flag("do_normalize", c.do_normalize);
        if let Some(r) = v.get("resample").and_then(|x| x.as_u64()) {
            c.resample = r as u32;
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

    fn filter(&self) -> FilterType {
        match self.resample {
            0 => FilterType::Nearest,
            1 => FilterType::Lanczos3,
            2 => FilterType::Triangle,
            _ => FilterType::CatmullRom,
        }
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

    /// Reads `preprocessor_config.json` from a model directory, or CLIP's defaults when absent.
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        let p = dir.join("preprocessor_config.json");
        let config = if p.is_file() {
            ImageProcessorConfig::from_file(&p)?
        } else {
            tracing::warn!(
                "{} not found; using CLIP's preprocessing defaults",
                p.display()
            );
            ImageProcessorConfig::default()
        };
        Ok(Self::new(config))
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

    /// Converts to 8-bit RGB: grey and grey+alpha are replicated, alpha is dropped, 16-bit and
    /// float images are scaled to 8 bits.
    pub fn to_rgb8(img: &DynamicImage) -> RgbImage {
        match img {
            DynamicImage::ImageRgb8(rgb) => rgb.clone(),
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
                rgb = image::imageops::resize(&rgb, w, h, c.filter());
            }
        }
        if c.do_center_crop {
            rgb = center_crop(&rgb, c.crop_size.0, c.crop_size.1);
        }
        let (w, h) = (rgb.width(), rgb.height());
        let plane = (w * h) as usize;
        let mut out = vec![0f32; 3 * plane];
        for (i, px) in rgb.pixels().enumerate() {
            for ch in 0..3 {
                let mut v = px.0[ch] as f32;
                if c.do_rescale {
                    v *= c.rescale_factor;
                }
                if c.do_normalize {
                    v = (v - c.image_mean[ch]) / c.image_std[ch];
                }
                out[ch * plane + i] = v;
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

/// HF's `center_crop`: offsets `(H - h) / 2`, `(W - w) / 2` (floor), zero padding when smaller.
fn center_crop(img: &RgbImage, out_h: u32, out_w: u32) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    if w as u32 == out_w && h as u32 == out_h {
        return img.clone();
    }
    let top = (h - out_h as i64).div_euclid(2);
    let left = (w - out_w as i64).div_euclid(2);
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

/// The model's error for an image that cannot be opened.
fn image_error(e: cox_image::ImageError) -> Error {
    match e {
        cox_image::ImageError::Io { path, cause } => Error::io(path, cause),
        cox_image::ImageError::Bad { path, problem } => Error::Image { path, msg: problem },
    }
}
