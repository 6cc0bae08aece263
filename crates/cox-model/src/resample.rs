//! Image resizing exactly as the two backends of transformers' image processors do it.
//!
//! transformers resizes images in one of two ways, and a model's states depend on which:
//!
//! * **Pillow** ([`ResizeBackend::Pil`]): `PIL.Image.resize` — transformers 4.x's default
//!   `CLIPImageProcessor` and 5.x's `*ImageProcessorPil` classes. A port of Pillow's
//!   `ImagingResample`: separable convolution, the filter's support widened by the scale when
//!   downscaling (anti-aliasing), coefficients normalised per output pixel and rounded to 22-bit
//!   fixed point, horizontal pass first, 8-bit rounding and clipping between the passes.
//! * **torchvision** ([`ResizeBackend::Torchvision`]): `torchvision.transforms.v2.functional.resize`
//!   with `antialias=True` on a `uint8` tensor — transformers 5.x's default image processors
//!   (`CLIPImageProcessor` is a `TorchvisionBackend` there) and 4.x's `*ImageProcessorFast`. A
//!   port of PyTorch's uint8 anti-aliased kernel: the same coefficients as Pillow (computed with
//!   PyTorch's form of the cubic polynomial), but rounded to 16-bit integers with the largest
//!   precision that keeps the largest weight below 2¹⁵, horizontal pass first.
//!
//! Both ports are integer-exact: the fixture tests compare every 8-bit value with Pillow and
//! PyTorch (`tests/fixtures/pixels/`).

use image::RgbImage;

/// Which library's resampling to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeBackend {
    /// torchvision on uint8 tensors with anti-aliasing (transformers 5.x's default).
    #[default]
    Torchvision,
    /// Pillow's `Image.resize` (transformers 4.x's default for CLIP, 5.x's `*Pil` processors).
    Pil,
}

impl ResizeBackend {
    /// The backend transformers uses for a processor class named in `image_processor_type`:
    /// `…Pil` → Pillow, `…Fast` and plain names → torchvision (transformers 5.x, where the plain
    /// class is the torchvision one).
    pub fn for_processor_type(name: &str) -> Self {
        if name.ends_with("Pil") {
            ResizeBackend::Pil
        } else {
            ResizeBackend::Torchvision
        }
    }

    /// The name used in configuration and logs.
    pub fn name(self) -> &'static str {
        match self {
            ResizeBackend::Torchvision => "torchvision",
            ResizeBackend::Pil => "pil",
        }
    }
}

/// A resampling filter, by PIL resample code (0 nearest, 1 Lanczos, 2 bilinear, 3 bicubic,
/// 4 box, 5 Hamming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Nearest neighbour (no convolution).
    Nearest,
    /// Lanczos with `a = 3`.
    Lanczos,
    /// Triangle filter.
    Bilinear,
    /// Keys' cubic with `a = −0.5`.
    Bicubic,
    /// Box filter.
    Box,
    /// Hamming-windowed sinc.
    Hamming,
}

impl Filter {
    /// The filter for a PIL resample code, `None` for an unknown code.
    pub fn from_pil_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => Filter::Nearest,
            1 => Filter::Lanczos,
            2 => Filter::Bilinear,
            3 => Filter::Bicubic,
            4 => Filter::Box,
            5 => Filter::Hamming,
            _ => return None,
        })
    }

    /// Half-width of the kernel at scale 1.
    fn support(self) -> f64 {
        match self {
            Filter::Nearest | Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    /// The kernel as `backend` evaluates it (the two libraries write the cubic differently,
    /// which can move a coefficient by one unit after rounding).
    fn eval(self, x: f64, backend: ResizeBackend) -> f64 {
        const A: f64 = -0.5;
        match self {
            Filter::Bicubic => {
                let x = x.abs();
                match backend {
                    ResizeBackend::Pil => {
                        if x < 1.0 {
                            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                        } else if x < 2.0 {
                            (((x - 5.0) * x + 8.0) * x - 4.0) * A
                        } else {
                            0.0
                        }
                    }
                    ResizeBackend::Torchvision => {
                        if x < 1.0 {
                            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                        } else if x < 2.0 {
                            ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
                        } else {
                            0.0
                        }
                    }
                }
            }
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let px = x * std::f64::consts::PI;
                    px.sin() / px * (0.54 + 0.46 * px.cos())
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
            Filter::Nearest => 1.0,
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let px = x * std::f64::consts::PI;
        px.sin() / px
    }
}

/// Integer coefficients of one pass: per output pixel the first source index and the taps.
struct Pass {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
    precision: u32,
}

/// Pillow's `precompute_coeffs` / PyTorch's `_compute_indices_min_size_weights_aa`, then the
/// backend's fixed-point rounding.
fn pass(in_size: usize, out_size: usize, filter: Filter, backend: ResizeBackend) -> Pass {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let ss = 1.0 / filterscale;
    let mut bounds = Vec::with_capacity(out_size);
    let mut float = vec![0f64; out_size * ksize];
    let mut wmax = 0f64;
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) truncates toward zero; both libraries clamp right after.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let k = &mut float[xx * ksize..xx * ksize + n];
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate() {
            *kx = filter.eval((x as f64 + xmin as f64 - center + 0.5) * ss, backend);
            ww += *kx;
        }
        if ww != 0.0 {
            for kx in k.iter_mut() {
                *kx /= ww;
                wmax = wmax.max(*kx);
            }
        }
        bounds.push((xmin, n));
    }
    let precision = match backend {
        // Pillow's PRECISION_BITS = 32 − 8 − 2.
        ResizeBackend::Pil => 22,
        // PyTorch: the largest precision < 22 at which the largest weight still fits in int16.
        ResizeBackend::Torchvision => {
            let mut p = 0u32;
            while p < 22 {
                let next = (0.5 + wmax * f64::from(1u32 << (p + 1))) as i64;
                if next >= 1 << 15 {
                    break;
                }
                p += 1;
            }
            p
        }
    };
    let one = f64::from(1u32 << precision);
    let weights = float
        .iter()
        .map(|&w| {
            if w < 0.0 {
                (-0.5 + w * one) as i32
            } else {
                (0.5 + w * one) as i32
            }
        })
        .collect();
    Pass {
        bounds,
        weights,
        ksize,
        precision,
    }
}

/// `clamp(v >> precision, 0, 255)` with an arithmetic shift.
fn clip8(v: i32, precision: u32) -> u8 {
    (v >> precision).clamp(0, 255) as u8
}

/// Resamples rows `rows` of `src` (`in_w × 3` bytes per row) horizontally into `out_w` pixels.
fn horizontal(src: &[u8], in_w: usize, rows: std::ops::Range<usize>, p: &Pass) -> Vec<u8> {
    let out_w = p.bounds.len();
    let half = if p.precision == 0 {
        0
    } else {
        1i32 << (p.precision - 1)
    };
    let mut out = vec![0u8; rows.len() * out_w * 3];
    for (r, y) in rows.enumerate() {
        let line = &src[y * in_w * 3..(y + 1) * in_w * 3];
        for (xx, &(xmin, n)) in p.bounds.iter().enumerate() {
            let k = &p.weights[xx * p.ksize..xx * p.ksize + n];
            let mut acc = [half; 3];
            for (x, &w) in k.iter().enumerate() {
                let px = (xmin + x) * 3;
                for c in 0..3 {
                    acc[c] += i32::from(line[px + c]) * w;
                }
            }
            for c in 0..3 {
                out[(r * out_w + xx) * 3 + c] = clip8(acc[c], p.precision);
            }
        }
    }
    out
}

/// Resamples `src` (`w × h`, `row0` being the index of its first row in the coefficients)
/// vertically.
fn vertical(src: &[u8], w: usize, row0: usize, p: &Pass) -> Vec<u8> {
    let out_h = p.bounds.len();
    let half = if p.precision == 0 {
        0
    } else {
        1i32 << (p.precision - 1)
    };
    let mut out = vec![0u8; w * out_h * 3];
    for (yy, &(ymin, n)) in p.bounds.iter().enumerate() {
        let k = &p.weights[yy * p.ksize..yy * p.ksize + n];
        let ymin = ymin - row0;
        for xx in 0..w {
            let mut acc = [half; 3];
            for (y, &wt) in k.iter().enumerate() {
                let px = ((ymin + y) * w + xx) * 3;
                for c in 0..3 {
                    acc[c] += i32::from(src[px + c]) * wt;
                }
            }
            for c in 0..3 {
                out[(yy * w + xx) * 3 + c] = clip8(acc[c], p.precision);
            }
        }
    }
    out
}

/// Nearest-neighbour source indexes of one axis.
///
/// Pillow (`ImagingScaleAffine`) starts at `0.5·scale` and adds `scale` per pixel in f64,
/// truncating; PyTorch's `nearest` mode computes `floorf(o·scale)` in f32 (with exact shortcuts
/// for equal sizes and doubling).
fn nearest_index(in_size: usize, out_size: usize, backend: ResizeBackend) -> Vec<usize> {
    match backend {
        ResizeBackend::Pil => {
            let a = in_size as f64 / out_size as f64;
            let mut xo = a * 0.5;
            (0..out_size)
                .map(|_| {
                    let i = (xo.max(0.0) as usize).min(in_size - 1);
                    xo += a;
                    i
                })
                .collect()
        }
        ResizeBackend::Torchvision => (0..out_size)
            .map(|o| {
                if out_size == in_size {
                    o
                } else if out_size == 2 * in_size {
                    o >> 1
                } else {
                    let scale = in_size as f32 / out_size as f32;
                    ((o as f32 * scale).floor() as usize).min(in_size - 1)
                }
            })
            .collect(),
    }
}

/// Nearest-neighbour resizing as `backend` does it.
fn nearest(img: &RgbImage, out_w: usize, out_h: usize, backend: ResizeBackend) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let xs = nearest_index(in_w, out_w, backend);
    let ys = nearest_index(in_h, out_h, backend);
    let mut out = RgbImage::new(out_w as u32, out_h as u32);
    for (y, &sy) in ys.iter().enumerate() {
        for (x, &sx) in xs.iter().enumerate() {
            out.put_pixel(x as u32, y as u32, *img.get_pixel(sx as u32, sy as u32));
        }
    }
    out
}

/// Resizes 8-bit RGB to `out_w × out_h` as `backend` does with `filter`.
///
/// ```
/// use cox_model::resample::{resize, Filter, ResizeBackend};
/// let img = image::RgbImage::from_pixel(8, 6, image::Rgb([10, 200, 30]));
/// for backend in [ResizeBackend::Pil, ResizeBackend::Torchvision] {
///     let out = resize(&img, 4, 3, Filter::Bicubic, backend);
///     // A constant image stays constant: the weights of every output pixel sum to one.
///     assert!(out.pixels().all(|p| p.0 == [10, 200, 30]));
/// }
/// ```
///
/// # Panics
/// If the input or the output is empty (callers check sizes first).
#[track_caller]
pub fn resize(
    img: &RgbImage,
    out_w: u32,
    out_h: u32,
    filter: Filter,
    backend: ResizeBackend,
) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let (out_w, out_h) = (out_w as usize, out_h as usize);
    assert!(
        in_w > 0 && in_h > 0 && out_w > 0 && out_h > 0,
        "resize of a {in_w}×{in_h} image to {out_w}×{out_h}"
    );
    if (in_w, in_h) == (out_w, out_h) {
        return img.clone();
    }
    if filter == Filter::Nearest {
        return nearest(img, out_w, out_h, backend);
    }
    let src = img.as_raw();
    let vpass = (out_h != in_h).then(|| pass(in_h, out_h, filter, backend));
    // Horizontal pass first (both libraries), over only the source rows the vertical pass
    // reads.
    let (tmp, row0) = if out_w != in_w {
        let hpass = pass(in_w, out_w, filter, backend);
        let rows = match &vpass {
            Some(v) => {
                let first = v.bounds[0].0;
                let (lmin, ln) = v.bounds[out_h - 1];
                first..lmin + ln
            }
            None => 0..in_h,
        };
        let first = rows.start;
        (horizontal(src, in_w, rows, &hpass), first)
    } else {
        (src.to_vec(), 0)
    };
    let out = match &vpass {
        Some(v) => vertical(&tmp, out_w, row0, v),
        None => tmp,
    };
    RgbImage::from_raw(out_w as u32, out_h as u32, out).expect("buffer of out_w × out_h × 3")
}
