//! OpenAI CLIP's image preprocessing (`clip.load(...)[1]`, docs/method.md §5.1):
//! `Resize(n_px, BICUBIC)` → `CenterCrop(n_px)` → RGB → `ToTensor()` → `Normalize(mean, std)`.
//!
//! * Resize: torchvision on a PIL image, i.e. the short side becomes `n_px` and the long side
//!   `int(n_px * long / short)`, resampled by cox-model's **port of Pillow's `ImagingResample`**
//!   with its bicubic filter ([`cox_model::resample`]). On 8-bit RGB input the result is
//!   identical to Pillow's: the fixture test (`tests/fixtures/preprocess/`, Pillow 13.0) finds 0
//!   differing values on four images (downscaled, upscaled, portrait with a half-pixel crop
//!   offset, high-frequency stripes).
//! * CenterCrop: torchvision's offsets `int(round((H − n_px) / 2))` (Python rounds halves to
//!   even), zero padding when the image is smaller.
//! * The image is converted to 8-bit RGB **before** resizing (the reference converts after). The
//!   two agree for RGB and grey input (COCO's JPEGs); they differ for images with alpha (Pillow
//!   resizes premultiplied RGBA, then drops alpha) and for palette PNGs (Pillow resizes mode `P`
//!   with nearest-neighbour sampling; the decoder here has already expanded the palette).
//!
//! Output: channel-first `[3, n_px, n_px]` f32, `(x / 255 − mean) / std` with CLIP's mean/std.

use candle_core::{Device, Tensor};
use cox_model::resample::{resize, Filter, ResizeBackend};
use image::{DynamicImage, RgbImage};

use crate::error::{ClipError, Result};

pub use cox_model::processor::{CLIP_MEAN, CLIP_STD};

/// Resizes 8-bit RGB like Pillow's `Image.resize((w, h), Image.BICUBIC)` (cox-model's
/// integer-exact port of Pillow's resampler).
///
/// ```
/// use cox_clipscore::preprocess::resize_bicubic_pil;
/// let img = image::RgbImage::from_pixel(8, 6, image::Rgb([10, 200, 30]));
/// let out = resize_bicubic_pil(&img, 4, 3);
/// // A constant image stays constant: the weights of every output pixel sum to one.
/// assert!(out.pixels().all(|p| p.0 == [10, 200, 30]));
/// ```
pub fn resize_bicubic_pil(img: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    resize(img, out_w, out_h, Filter::Bicubic, ResizeBackend::Pil)
}

/// torchvision's `Resize(n)` output size for an image `w × h`: `(new_w, new_h)`.
pub fn resized_size(w: u32, h: u32, n_px: u32) -> (u32, u32) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    // Python's `int(n * long / short)`: a correctly rounded float quotient, then truncation.
    let new_long = ((f64::from(n_px) * f64::from(long)) / f64::from(short)) as u32;
    if w <= h {
        (n_px, new_long)
    } else {
        (new_long, n_px)
    }
}

/// torchvision's `CenterCrop(n)` on a PIL image (zero padding when smaller).
pub fn center_crop(img: &RgbImage, n_px: u32) -> RgbImage {
    // Python's round() rounds halves to even; (d / 2) is a half exactly when d is odd.
    let offset = |d: i64| -> i64 {
        let q = d.div_euclid(2);
        // An odd d is a half: round to the even neighbour of q and q + 1.
        if d.rem_euclid(2) == 1 && q.rem_euclid(2) == 1 {
            q + 1
        } else {
            q
        }
    };
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let n = i64::from(n_px);
    let (top, left) = (offset(h - n), offset(w - n));
    let mut out = RgbImage::new(n_px, n_px);
    for y in 0..n {
        let sy = y + top;
        if !(0..h).contains(&sy) {
            continue;
        }
        for x in 0..n {
            let sx = x + left;
            if (0..w).contains(&sx) {
                out.put_pixel(x as u32, y as u32, *img.get_pixel(sx as u32, sy as u32));
            }
        }
    }
    out
}

/// CLIP's preprocessing of one decoded image into `[3, n_px, n_px]` (channel-first) f32.
///
/// ```
/// use cox_clipscore::preprocess::{clip_preprocess, CLIP_MEAN, CLIP_STD};
/// let img = image::DynamicImage::new_rgb8(320, 240);
/// let px = clip_preprocess(&img, 224)?;
/// assert_eq!(px.len(), 3 * 224 * 224);
/// // A black pixel becomes -mean/std.
/// assert!((px[0] - (-CLIP_MEAN[0] / CLIP_STD[0])).abs() < 1e-6);
/// # Ok::<(), cox_clipscore::ClipError>(())
/// ```
///
/// # Errors
/// [`ClipError::Input`] for an empty image or `n_px == 0`.
pub fn clip_preprocess(img: &DynamicImage, n_px: u32) -> Result<Vec<f32>> {
    if img.width() == 0 || img.height() == 0 || n_px == 0 {
        return Err(ClipError::Input(format!(
            "cannot preprocess a {}×{} image to {n_px} px",
            img.width(),
            img.height()
        )));
    }
    let rgb = cox_model::ImageProcessor::to_rgb8(img);
    let (w, h) = resized_size(rgb.width(), rgb.height(), n_px);
    let resized = resize_bicubic_pil(&rgb, w.max(1), h.max(1));
    let cropped = center_crop(&resized, n_px);
    let plane = (n_px * n_px) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in cropped.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(px.0[c]) / 255.0 - CLIP_MEAN[c]) / CLIP_STD[c];
        }
    }
    Ok(out)
}

/// [`clip_preprocess`] of a batch as a `[batch, 3, n_px, n_px]` tensor on `device`.
pub fn preprocess_batch(images: &[DynamicImage], n_px: u32, device: &Device) -> Result<Tensor> {
    let mut data = Vec::with_capacity(images.len() * 3 * (n_px * n_px) as usize);
    for img in images {
        data.extend(clip_preprocess(img, n_px)?);
    }
    let n = n_px as usize;
    Ok(Tensor::from_vec(data, (images.len(), 3, n, n), device)?)
}
