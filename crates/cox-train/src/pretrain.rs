//! Vision pretraining: the tower and projector learn the world's per-object attributes from
//! labelled cells before the captioner is trained.
//!
//! LLaVA-1.5 starts from a CLIP tower pretrained on 400 M image–text pairs; only the connector and
//! the language model learn from captions. Our tower has no such pretraining, and the caption loss
//! is a weak teacher for it: the committed captioner's image tokens carried the shape of small
//! objects for only 80 % of held-out objects (an MLP probe), and its captions named 75 % of them
//! right. This stage stands in for the tower's pretraining: a temporary linear head per attribute
//! reads each layout cell's image tokens (the 3 × 3 cells of the world; a finer patch grid is
//! mean-pooled per cell) and is trained with cross-entropy on the cell's shape, colour and size
//! ("empty" is a class of each), and two more read the mean of all image tokens for the scene's
//! background and texture. The heads are discarded; the tower and projector keep what they
//! learnt and the captioning stage continues from them (with the tower frozen, anything the heads
//! did not ask for is only what the tower happened to keep: without the scene heads, texture
//! accuracy fell from 99.9 % to 85 %).

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use cox_model::ImageProcessor;
use cox_synth::{Background, Colour, Scene, Shape, Size, Texture};

use crate::data::scene_pixels;
use crate::error::{Result, TrainError};

/// The layout cells per side of the world.
const CELLS: usize = 3;

/// One vision-pretraining batch: pixels and, per scene and layout cell (row-major), the class of
/// each attribute (the last class of each is "no object in this cell").
#[derive(Debug, Clone)]
pub struct CellBatch {
    /// Pixel values `[batch, 3, H, W]`, preprocessed as the checkpoint's processor does.
    pub pixels: Tensor,
    /// Shape class per cell `[batch · 9]` (`Shape::ALL` order; `Shape::ALL.len()` = empty).
    pub shape: Tensor,
    /// Colour class per cell `[batch · 9]`.
    pub colour: Tensor,
    /// Size class per cell `[batch · 9]`.
    pub size: Tensor,
    /// Background class per scene `[batch]`.
    pub background: Tensor,
    /// Texture class per scene `[batch]`.
    pub texture: Tensor,
    /// Scenes in the batch.
    pub scenes: usize,
    /// Shape classes as plain numbers (for the accuracy printed in the log).
    pub shape_ids: Vec<u32>,
}

/// Builds a [`CellBatch`] from rendered scenes.
pub fn make_cell_batch(
    processor: &ImageProcessor,
    scenes: &[Scene],
    device: &Device,
) -> Result<CellBatch> {
    let cells = CELLS * CELLS;
    let mut pixels = Vec::new();
    let mut side = 0;
    let mut shape = vec![Shape::ALL.len() as u32; scenes.len() * cells];
    let mut colour = vec![Colour::ALL.len() as u32; scenes.len() * cells];
    let mut size = vec![Size::ALL.len() as u32; scenes.len() * cells];
    let mut background = Vec::with_capacity(scenes.len());
    let mut texture = Vec::with_capacity(scenes.len());
    for (i, s) in scenes.iter().enumerate() {
        let px = scene_pixels(processor, s)?;
        side = ((px.len() / 3) as f64).sqrt() as usize;
        pixels.extend(px);
        background.push(position_of(Background::ALL, &s.factors.background));
        texture.push(position_of(Texture::ALL, &s.factors.texture));
        for o in &s.factors.objects {
            let cell = i * cells + o.row.index() * CELLS + o.position.column();
            shape[cell] = position_of(Shape::ALL, &o.shape);
            colour[cell] = position_of(Colour::ALL, &o.colour);
            size[cell] = position_of(Size::ALL, &o.size);
        }
    }
    let n = shape.len();
    Ok(CellBatch {
        pixels: Tensor::from_vec(pixels, (scenes.len(), 3, side, side), device)?,
        shape: Tensor::from_vec(shape.clone(), n, device)?,
        colour: Tensor::from_vec(colour, n, device)?,
        size: Tensor::from_vec(size, n, device)?,
        background: Tensor::from_vec(background, scenes.len(), device)?,
        texture: Tensor::from_vec(texture, scenes.len(), device)?,
        scenes: scenes.len(),
        shape_ids: shape,
    })
}

fn position_of<T: PartialEq>(all: &[T], v: &T) -> u32 {
    all.iter().position(|x| x == v).expect("a value of ALL") as u32
}

/// The temporary attribute heads of the pretraining stage (not part of the checkpoint).
pub struct CellHeads {
    /// Its variables (trained with the tower, then dropped).
    pub varmap: VarMap,
    shape: Linear,
    colour: Linear,
    size: Linear,
    background: Linear,
    texture: Linear,
}

impl CellHeads {
    /// Heads reading `hidden`-wide cell features, initialised from `seed`.
    pub fn new(hidden: usize, seed: u64) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let shape = candle_nn::linear(hidden, Shape::ALL.len() + 1, vb.pp("shape"))?;
        let colour = candle_nn::linear(hidden, Colour::ALL.len() + 1, vb.pp("colour"))?;
        let size = candle_nn::linear(hidden, Size::ALL.len() + 1, vb.pp("size"))?;
        let background = candle_nn::linear(hidden, Background::ALL.len(), vb.pp("background"))?;
        let texture = candle_nn::linear(hidden, Texture::ALL.len(), vb.pp("texture"))?;
        // candle-nn's default init draws from its own RNG; re-draw from the seed so that the stage
        // is reproducible.
        for (i, (name, var)) in sorted_vars(&varmap).into_iter().enumerate() {
            let dims = var.dims().to_vec();
            let fan_in = *dims.last().unwrap_or(&1) as f64;
            let bound = if name.ends_with("bias") {
                0.0
            } else {
                1.0 / fan_in.sqrt()
            };
            let vals = seeded_uniform(seed ^ (0x9e37_79b9 + i as u64), var.elem_count(), bound);
            var.set(&Tensor::from_vec(vals, dims, &Device::Cpu)?)?;
        }
        Ok(Self {
            varmap,
            shape,
            colour,
            size,
            background,
            texture,
        })
    }

    /// The mean of the five cross-entropies (shape, colour and size over all cells of
    /// `cell_features` `[batch · 9, hidden]`; background and texture over the scenes of
    /// `scene_features` `[batch, hidden]`), and the shape logits `[cells, classes]`.
    pub fn loss(
        &self,
        cell_features: &Tensor,
        scene_features: &Tensor,
        batch: &CellBatch,
    ) -> Result<(Tensor, Tensor)> {
        use candle_nn::loss::cross_entropy;
        let shape_logits = self.shape.forward(cell_features)?;
        let terms = [
            cross_entropy(&shape_logits, &batch.shape)?,
            cross_entropy(&self.colour.forward(cell_features)?, &batch.colour)?,
            cross_entropy(&self.size.forward(cell_features)?, &batch.size)?,
            cross_entropy(&self.background.forward(scene_features)?, &batch.background)?,
            cross_entropy(&self.texture.forward(scene_features)?, &batch.texture)?,
        ];
        let n = terms.len() as f64;
        let sum = Tensor::stack(&terms, 0)?.sum_all()?;
        Ok(((sum / n)?, shape_logits))
    }
}

fn sorted_vars(varmap: &VarMap) -> Vec<(String, candle_core::Var)> {
    let mut v: Vec<_> = varmap
        .data()
        .lock()
        .expect("varmap lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// `n` values uniform in `[-bound, bound]` from a SplitMix64 stream seeded with `seed`.
fn seeded_uniform(seed: u64, n: usize, bound: f64) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            ((2.0 * u - 1.0) * bound) as f32
        })
        .collect()
}

/// Pools image tokens `[batch, g·g, hidden]` (a `g × g` patch grid, `g` a multiple of 3) into
/// layout cells `[batch · 9, hidden]`: the mean of the tokens inside each cell, cells row-major.
pub fn cell_features(image_tokens: &Tensor) -> Result<Tensor> {
    let (b, t, h) = image_tokens.dims3()?;
    let g = (t as f64).sqrt().round() as usize;
    if g * g != t || g % CELLS != 0 {
        return Err(TrainError::InvalidConfig {
            field: "patch_size",
            value: format!("{g} × {g} = {t} image tokens"),
            expected: "a square patch grid whose side is a multiple of 3 (one or more patches per layout cell) for vision pretraining",
        });
    }
    let m = g / CELLS;
    if m == 1 {
        return Ok(image_tokens.reshape((b * CELLS * CELLS, h))?);
    }
    Ok(image_tokens
        .reshape((b, CELLS, m, CELLS, m, h))?
        .mean(4)?
        .mean(2)?
        .reshape((b * CELLS * CELLS, h))?)
}

/// The fraction of occupied cells whose shape the head classifies right.
pub fn shape_accuracy(shape_logits: &Tensor, batch: &CellBatch) -> Result<f32> {
    let pred: Vec<u32> = shape_logits.argmax(D::Minus1)?.to_vec1()?;
    let empty = Shape::ALL.len() as u32;
    let (mut right, mut total) = (0usize, 0usize);
    for (p, &t) in pred.iter().zip(&batch.shape_ids) {
        if t != empty {
            total += 1;
            right += usize::from(*p == t);
        }
    }
    Ok(right as f32 / total.max(1) as f32)
}
