//! Thumbnails, grids and byte-stable PNG encoding: pure functions on pixels (plus [`write_png`]).

use std::path::Path;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::imageops::{self, FilterType as Resample};
use image::{DynamicImage, ImageEncoder, Rgb, RgbImage};

use crate::error::{Result, VisualError};

/// The background of grids and of transparent pixels: white.
const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);

/// A square `side × side` thumbnail: the image is scaled so that its short side is `side`, then the
/// centre `side × side` square is cropped (the same framing as CLIP's resize + centre crop).
///
/// Downscaling uses Catmull–Rom (bicubic); when the short side is smaller than `side` the image is
/// upscaled with nearest-neighbour, so that small synthetic scenes (64 px) stay crisp instead of
/// blurred. Both are deterministic: the same image always gives the same pixels. Transparent images
/// are composited over white.
///
/// # Panics
/// If `side` is zero or the image is empty.
///
/// ```
/// use cox_ground_visual::thumbnail;
/// use image::{DynamicImage, RgbImage};
/// let wide = DynamicImage::ImageRgb8(RgbImage::new(200, 100));
/// let t = thumbnail(&wide, 96);
/// assert_eq!(t.dimensions(), (96, 96));
/// ```
#[track_caller]
pub fn thumbnail(image: &DynamicImage, side: u32) -> RgbImage {
    assert!(side > 0, "thumbnail: side must be positive");
    let (w, h) = (image.width(), image.height());
    assert!(w > 0 && h > 0, "thumbnail: empty image ({w}×{h})");
    let rgb = flatten(image);
    let short = w.min(h);
    // Scale so that the short side becomes exactly `side`; the long side is rounded, never below `side`.
    let scale = |x: u32| -> u32 {
        (((x as u64 * side as u64) + short as u64 / 2) / short as u64).max(side as u64) as u32
    };
    let (nw, nh) = (scale(w), scale(h));
    let filter = if short < side {
        Resample::Nearest
    } else {
        Resample::CatmullRom
    };
    let resized = if (nw, nh) == (w, h) {
        rgb
    } else {
        imageops::resize(&rgb, nw, nh, filter)
    };
    let (x, y) = ((nw - side) / 2, (nh - side) / 2);
    imageops::crop_imm(&resized, x, y, side, side).to_image()
}

/// The image as 8-bit RGB, alpha composited over white.
fn flatten(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as u32;
        let mix = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
    })
}

/// The tiles laid out in rows of `cols`, with `pad` pixels of white around and between them.
///
/// Every cell is as large as the largest tile (tiles are placed at the cell's top-left corner, so
/// equal-sized thumbnails fill their cells exactly). With `n` tiles the grid has `min(cols, n)`
/// columns and `ceil(n / cols)` rows, so it is
/// `c·w + (c + 1)·pad` wide and `r·h + (r + 1)·pad` high.
///
/// # Panics
/// If `tiles` is empty or `cols` is zero.
///
/// ```
/// use cox_ground_visual::grid;
/// use image::RgbImage;
/// let tiles = vec![RgbImage::new(10, 10); 7];
/// let g = grid(&tiles, 5, 2);
/// assert_eq!(g.dimensions(), (5 * 10 + 6 * 2, 2 * 10 + 3 * 2));
/// ```
#[track_caller]
pub fn grid(tiles: &[RgbImage], cols: usize, pad: u32) -> RgbImage {
    assert!(!tiles.is_empty(), "grid: no tiles");
    assert!(cols > 0, "grid: cols must be positive");
    let cw = tiles.iter().map(|t| t.width()).max().unwrap_or(0);
    let ch = tiles.iter().map(|t| t.height()).max().unwrap_or(0);
    let c = cols.min(tiles.len()) as u32;
    let r = tiles.len().div_ceil(cols) as u32;
    let mut out = RgbImage::from_pixel(c * cw + (c + 1) * pad, r * ch + (r + 1) * pad, BACKGROUND);
    for (i, tile) in tiles.iter().enumerate() {
        let (col, row) = ((i % cols) as u32, (i / cols) as u32);
        let x = pad + col * (cw + pad);
        let y = pad + row * (ch + pad);
        imageops::replace(&mut out, tile, x as i64, y as i64);
    }
    out
}

/// The tile drawn in place of an image that could not be read: light grey with a dark grey border
/// and a red diagonal cross, `side × side`.
///
/// ```
/// let p = cox_ground_visual::placeholder(32);
/// assert_eq!(p.dimensions(), (32, 32));
/// assert_eq!(p.get_pixel(0, 0).0, [128, 128, 128]);
/// ```
pub fn placeholder(side: u32) -> RgbImage {
    RgbImage::from_fn(side, side, |x, y| {
        let border = x == 0 || y == 0 || x + 1 == side || y + 1 == side;
        let diag = x.abs_diff(y) <= side / 48 || (x + y + 1).abs_diff(side) <= side / 48;
        if border {
            Rgb([128, 128, 128])
        } else if diag {
            Rgb([200, 40, 40])
        } else {
            Rgb([232, 232, 232])
        }
    })
}

/// PNG bytes of an RGB image, with fixed encoder settings (best compression, adaptive filtering, no
/// metadata chunks): the same pixels always give the same bytes.
///
/// # Errors
/// [`VisualError::Encode`] if the encoder fails (an image with a zero dimension).
///
/// ```
/// use image::RgbImage;
/// let img = RgbImage::from_pixel(4, 3, image::Rgb([10, 20, 30]));
/// let a = cox_ground_visual::encode_png(&img)?;
/// assert_eq!(a, cox_ground_visual::encode_png(&img.clone())?);
/// assert_eq!(&a[1..4], b"PNG");
/// # Ok::<(), cox_ground_visual::VisualError>(())
/// ```
pub fn encode_png(image: &RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    PngEncoder::new_with_quality(&mut bytes, CompressionType::Best, FilterType::Adaptive)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|source| VisualError::Encode {
            what: format!("a {}×{} image", image.width(), image.height()),
            source,
        })?;
    Ok(bytes)
}

/// Encodes with [`encode_png`] and writes the file atomically (parent folders are created).
///
/// # Errors
/// [`VisualError::Encode`] or [`VisualError::Write`] naming the file.
pub fn write_png(image: &RgbImage, path: &Path) -> Result<()> {
    let bytes = encode_png(image)?;
    cox_store::atomic_write(path, &bytes)?;
    Ok(())
}
