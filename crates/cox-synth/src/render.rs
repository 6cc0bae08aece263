//! The rasteriser: a textured background and outlined, anti-aliased shapes from signed distance functions.
//!
//! Rendering is a pure function of [`SceneFactors`]; it draws no random numbers, so an image is reproducible
//! from its factors alone.

use image::{Rgb, RgbImage};

use crate::factors::{SceneFactors, Shape, Texture};

/// The outline colour drawn around every object, so that objects stay separable from any background.
pub const OUTLINE_RGB: [u8; 3] = [16, 16, 20];

/// Sub-samples per pixel side for anti-aliasing (4 × 4 = 16 samples per edge pixel).
const SUPERSAMPLE: usize = 4;

/// A shape's outline polygon in unit coordinates (circumradius 1, y down); `None` for the circle.
fn polygon(shape: Shape) -> Option<Vec<[f32; 2]>> {
    use std::f32::consts::PI;
    match shape {
        Shape::Circle => None,
        Shape::Square => Some(vec![
            [-0.72, -0.72],
            [0.72, -0.72],
            [0.72, 0.72],
            [-0.72, 0.72],
        ]),
        Shape::Triangle => Some(vec![[0.0, -1.0], [0.866, 0.5], [-0.866, 0.5]]),
        Shape::Diamond => Some(vec![[0.0, -1.0], [0.8, 0.0], [0.0, 1.0], [-0.8, 0.0]]),
        Shape::Star => Some(
            (0..10)
                .map(|k| {
                    let a = -PI / 2.0 + k as f32 * PI / 5.0;
                    let r = if k % 2 == 0 { 1.0 } else { 0.45 };
                    [r * a.cos(), r * a.sin()]
                })
                .collect(),
        ),
        Shape::Cross => {
            let (w, l) = (0.32, 0.94);
            Some(vec![
                [-w, -l],
                [w, -l],
                [w, -w],
                [l, -w],
                [l, w],
                [w, w],
                [w, l],
                [-w, l],
                [-w, w],
                [-l, w],
                [-l, -w],
                [-w, -w],
            ])
        }
    }
}

/// The signed distance (negative inside) from `p` to a polygon, in the polygon's units.
fn polygon_sdf(poly: &[[f32; 2]], p: [f32; 2]) -> f32 {
    let mut d2 = f32::INFINITY;
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let a = poly[i];
        let b = poly[(i + n - 1) % n];
        let e = [b[0] - a[0], b[1] - a[1]];
        let w = [p[0] - a[0], p[1] - a[1]];
        let t = ((w[0] * e[0] + w[1] * e[1]) / (e[0] * e[0] + e[1] * e[1])).clamp(0.0, 1.0);
        let q = [w[0] - e[0] * t, w[1] - e[1] * t];
        d2 = d2.min(q[0] * q[0] + q[1] * q[1]);
        // Even–odd crossing test for the sign.
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            inside = !inside;
        }
    }
    if inside {
        -d2.sqrt()
    } else {
        d2.sqrt()
    }
}

/// The background colour of pixel `(x, y)`: the base colour modulated by the texture.
fn background_pixel(f: &SceneFactors, x: u32, y: u32) -> [u8; 3] {
    let base = f.background.rgb();
    let period = (f.image_size / 8).max(4);
    let offset: i32 = match f.texture {
        Texture::Plain => 0,
        // Diagonal stripes, half a period light and half dark.
        Texture::Striped => {
            if (x + y) % period < period / 2 {
                22
            } else {
                -10
            }
        }
        // Light dots on a staggered grid, a fifth of the period in radius.
        Texture::Dotted => {
            let row = y / period;
            let shift = if row % 2 == 0 {
                0.0
            } else {
                period as f32 / 2.0
            };
            let cx = ((x as f32 + 0.5 + shift) % period as f32) - period as f32 / 2.0;
            let cy = ((y as f32 + 0.5) % period as f32) - period as f32 / 2.0;
            if cx * cx + cy * cy <= (period as f32 * 0.2).powi(2) {
                30
            } else {
                0
            }
        }
    };
    base.map(|c| (c as i32 + offset).clamp(0, 255) as u8)
}

/// Renders a scene: the textured background, then each object outlined and anti-aliased.
///
/// The fill covers signed distance ≤ 0, the outline the next `max(1, side/64)` pixels; edge pixels average
/// 4 × 4 sub-samples, so an object's interior pixels carry exactly its [`Colour::rgb`](crate::Colour::rgb).
///
/// ```
/// let scene = cox_synth::generate_scene(&Default::default(), 0, cox_synth::Split::Train, 0).unwrap();
/// let img = cox_synth::render(&scene.factors);
/// assert_eq!(img.dimensions(), (64, 64));
/// let o = &scene.factors.objects[0];
/// let px = img.get_pixel(o.centre[0] as u32, o.centre[1] as u32);
/// assert_eq!(px.0, o.colour.rgb());
/// ```
pub fn render(f: &SceneFactors) -> RgbImage {
    let side = f.image_size;
    let mut img = RgbImage::from_fn(side, side, |x, y| Rgb(background_pixel(f, x, y)));
    let outline = (side as f32 / 64.0).max(1.0);
    for o in &f.objects {
        let poly = polygon(o.shape);
        let sdf = |p: [f32; 2]| -> f32 {
            let u = [
                (p[0] - o.centre[0]) / o.radius,
                (p[1] - o.centre[1]) / o.radius,
            ];
            let d = match &poly {
                None => (u[0] * u[0] + u[1] * u[1]).sqrt() - 1.0,
                Some(poly) => polygon_sdf(poly, u),
            };
            d * o.radius
        };
        let fill = o.colour.rgb();
        let reach = o.radius + outline + 1.0;
        let x0 = (o.centre[0] - reach).floor().max(0.0) as u32;
        let y0 = (o.centre[1] - reach).floor().max(0.0) as u32;
        let x1 = ((o.centre[0] + reach).ceil() as u32).min(side);
        let y1 = ((o.centre[1] + reach).ceil() as u32).min(side);
        for y in y0..y1 {
            for x in x0..x1 {
                let (mut n_fill, mut n_line) = (0usize, 0usize);
                for sy in 0..SUPERSAMPLE {
                    for sx in 0..SUPERSAMPLE {
                        let p = [
                            x as f32 + (sx as f32 + 0.5) / SUPERSAMPLE as f32,
                            y as f32 + (sy as f32 + 0.5) / SUPERSAMPLE as f32,
                        ];
                        let d = sdf(p);
                        if d <= 0.0 {
                            n_fill += 1;
                        } else if d <= outline {
                            n_line += 1;
                        }
                    }
                }
                if n_fill + n_line == 0 {
                    continue;
                }
                let total = (SUPERSAMPLE * SUPERSAMPLE) as f32;
                let bg = img.get_pixel(x, y).0;
                let px: [u8; 3] = std::array::from_fn(|c| {
                    let v = (n_fill as f32 * fill[c] as f32
                        + n_line as f32 * OUTLINE_RGB[c] as f32
                        + (total - (n_fill + n_line) as f32) * bg[c] as f32)
                        / total;
                    v.round().clamp(0.0, 255.0) as u8
                });
                img.put_pixel(x, y, Rgb(px));
            }
        }
    }
    img
}

/// Encodes an image as PNG bytes (deterministic: the same image always gives the same bytes).
///
/// ```
/// let img = image::RgbImage::new(4, 4);
/// let png = cox_synth::encode_png(&img).unwrap();
/// assert_eq!(&png[1..4], b"PNG");
/// ```
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}
