//! The Qwen2-VL and Qwen2.5-VL vision transformers with their 2×2 patch mergers.
//!
//! Tensor names follow transformers (`patch_embed.proj`, `blocks.N.{norm1,attn.qkv,attn.proj,
//! norm2,mlp.*}`, `merger.{ln_q,mlp.0,mlp.2}`), so one [`VarBuilder`] positioned at `visual` or
//! `model.visual` loads a checkpoint. Images are encoded one at a time: every attention segment
//! of transformers' packed `cu_seqlens` lies inside one image, so this is the same computation.

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::VarBuilder;

use super::config::{QwenArch, QwenVisionConfig};
use crate::error::{Error, Result};
use crate::nn::{activate, rope, softmax_last, LayerNorm, Linear, RmsNorm};

#[derive(Debug, Clone)]
enum Norm {
    Layer(LayerNorm),
    Rms(RmsNorm),
}

impl Norm {
    fn load(vb: VarBuilder, arch: QwenArch, dim: usize) -> candle_core::Result<Self> {
        Ok(match arch {
            QwenArch::Qwen2Vl => Norm::Layer(LayerNorm::load(vb, dim, 1e-6)?),
            QwenArch::Qwen25Vl => Norm::Rms(RmsNorm::load(vb, dim, 1e-6)?),
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Norm::Layer(n) => n.forward(x),
            Norm::Rms(n) => n.forward(x),
        }
    }
}

#[derive(Debug, Clone)]
enum Mlp {
    /// Qwen2-VL: `fc2(act(fc1(x)))`.
    Plain { fc1: Linear, fc2: Linear },
    /// Qwen2.5-VL: `down(act(gate(x)) * up(x))`, all with biases.
    Gated {
        gate: Linear,
        up: Linear,
        down: Linear,
    },
}

#[derive(Debug, Clone)]
struct Block {
    norm1: Norm,
    qkv: Linear,
    proj: Linear,
    norm2: Norm,
    mlp: Mlp,
    act: crate::config::Activation,
    heads: usize,
}

impl Block {
    fn load(vb: VarBuilder, c: &QwenVisionConfig, arch: QwenArch) -> candle_core::Result<Self> {
        let (d, i) = (c.width, c.intermediate_size);
        let mlp = match arch {
            QwenArch::Qwen2Vl => Mlp::Plain {
                fc1: Linear::load(vb.pp("mlp.fc1"), d, i, true)?,
                fc2: Linear::load(vb.pp("mlp.fc2"), i, d, true)?,
            },
            QwenArch::Qwen25Vl => Mlp::Gated {
                gate: Linear::load(vb.pp("mlp.gate_proj"), d, i, true)?,
                up: Linear::load(vb.pp("mlp.up_proj"), d, i, true)?,
                down: Linear::load(vb.pp("mlp.down_proj"), i, d, true)?,
            },
        };
        Ok(Self {
            norm1: Norm::load(vb.pp("norm1"), arch, d)?,
            qkv: Linear::load(vb.pp("attn.qkv"), d, 3 * d, true)?,
            proj: Linear::load(vb.pp("attn.proj"), d, d, true)?,
            norm2: Norm::load(vb.pp("norm2"), arch, d)?,
            mlp,
            act: c.hidden_act,
            heads: c.num_heads,
        })
    }

    /// `x`: `[n, d]`; `segments`: consecutive `(start, len)` ranges that attend among
    /// themselves; `cos`/`sin`: `[n, head_dim / 2]` f32.
    fn forward(
        &self,
        x: &Tensor,
        segments: &[(usize, usize)],
        cos: &Tensor,
        sin: &Tensor,
        score_budget: usize,
    ) -> candle_core::Result<Tensor> {
        let (n, d) = x.dims2()?;
        let hd = d / self.heads;
        let dtype = x.dtype();
        let h = self.norm1.forward(x)?;
        // [n, 3, heads, hd] -> three [1, heads, n, hd].
        let qkv = self.qkv.forward(&h)?.reshape((n, 3, self.heads, hd))?;
        let part = |i: usize| -> candle_core::Result<Tensor> {
            qkv.i((.., i))?
                .transpose(0, 1)?
                .unsqueeze(0)?
                .to_dtype(DType::F32)?
                .contiguous()
        };
        // The rotary embedding is applied in f32 and cast back, as transformers does.
        let q = rope(&part(0)?, cos, sin)?.to_dtype(dtype)?;
        let k = rope(&part(1)?, cos, sin)?.to_dtype(dtype)?;
        let v = part(2)?.to_dtype(dtype)?;
        let scale = (hd as f64).powf(-0.5);
        let mut outs = Vec::with_capacity(segments.len());
        for &(s, l) in segments {
            // A large image's full attention is computed a few heads at a time, so the f32
            // scores stay below `score_budget` bytes (16 heads over 5 120 patches would need
            // 1.7 GB at once).
            let per_head = l * l * 4;
            let chunk = score_budget
                .checked_div(per_head)
                .unwrap_or(self.heads)
                .clamp(1, self.heads);
            // Past one head, the queries are split too (each row's softmax is independent).
            let rows = score_budget.checked_div(l * 4).unwrap_or(l).clamp(1, l);
            let mut parts = Vec::with_capacity(self.heads.div_ceil(chunk));
            for h0 in (0..self.heads).step_by(chunk) {
                let nh = chunk.min(self.heads - h0);
                let ks = k.narrow(1, h0, nh)?.narrow(2, s, l)?.to_dtype(DType::F32)?;
                let kt = ks.t()?;
                let vs = v.narrow(1, h0, nh)?.narrow(2, s, l)?.contiguous()?;
                let mut row_parts = Vec::with_capacity(l.div_ceil(rows));
                for r0 in (0..l).step_by(rows) {
                    let nr = rows.min(l - r0);
                    let qs = q
                        .narrow(1, h0, nh)?
                        .narrow(2, s + r0, nr)?
                        .to_dtype(DType::F32)?;
                    let scores = (qs.matmul(&kt)? * scale)?;
                    let probs = softmax_last(&scores)?.to_dtype(dtype)?;
                    row_parts.push(probs.matmul(&vs)?);
                }
                parts.push(Tensor::cat(&row_parts, 2)?);
            }
            outs.push(Tensor::cat(&parts, 1)?);
        }
        let y = Tensor::cat(&outs, 2)?
            .squeeze(0)?
            .transpose(0, 1)?
            .reshape((n, d))?;
        let x = (x + self.proj.forward(&y)?)?;
        let h = self.norm2.forward(&x)?;
        let m = match &self.mlp {
            Mlp::Plain { fc1, fc2 } => fc2.forward(&activate(self.act, &fc1.forward(&h)?)?)?,
            Mlp::Gated { gate, up, down } => {
                down.forward(&(activate(self.act, &gate.forward(&h)?)? * up.forward(&h)?)?)?
            }
        };
        x + m
    }
}

/// The vision transformer and merger of a Qwen2-VL or Qwen2.5-VL checkpoint.
#[derive(Debug, Clone)]
pub struct QwenVision {
    patch_w_t: Tensor,
    blocks: Vec<Block>,
    ln_q: Norm,
    mlp0: Linear,
    mlp2: Linear,
    inv_freq: Vec<f32>,
    config: QwenVisionConfig,
    arch: QwenArch,
    score_budget: usize,
}

impl QwenVision {
    /// Builds the tower from `vb` positioned at `visual` (or `model.visual`).
    pub fn load(
        vb: VarBuilder,
        config: &QwenVisionConfig,
        arch: QwenArch,
    ) -> candle_core::Result<Self> {
        let c = config;
        let (p, t) = (c.patch_size, c.temporal_patch_size);
        // The Conv3d with stride = kernel is a matrix product over flattened patches.
        let w = vb.get((c.width, c.in_channels, t, p, p), "patch_embed.proj.weight")?;
        let patch_w_t = w.reshape((c.width, c.patch_dim()))?.t()?.contiguous()?;
        let blocks = (0..c.depth)
            .map(|i| Block::load(vb.pp(format!("blocks.{i}")), c, arch))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let merged = c.width * c.spatial_merge_size * c.spatial_merge_size;
        let ln_q = Norm::load(vb.pp("merger.ln_q"), arch, c.width)?;
        let mlp0 = Linear::load(vb.pp("merger.mlp.0"), merged, merged, true)?;
        let mlp2 = Linear::load(vb.pp("merger.mlp.2"), merged, c.out_hidden_size, true)?;
        // Axial rotary frequencies over head_dim / 2, shared by the row and column positions.
        let spatial = c.head_dim() / 2;
        let inv_freq = (0..spatial)
            .step_by(2)
            .map(|i| 1.0 / (c.rope_theta as f32).powf(i as f32 / spatial as f32))
            .collect();
        Ok(Self {
            patch_w_t,
            blocks,
            ln_q,
            mlp0,
            mlp2,
            inv_freq,
            config: c.clone(),
            arch,
            score_budget: 256 << 20,
        })
    }

    /// Sets how many bytes of f32 attention scores one block computes at once (default
    /// 256 MiB); larger images are attended a few heads, then a few query rows, at a time. The
    /// result does not change.
    pub fn with_score_budget(mut self, bytes: usize) -> Self {
        self.score_budget = bytes;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &QwenVisionConfig {
        &self.config
    }

    /// `(row, column)` patch positions in merge-block order, as the processor orders rows.
    fn positions(&self, gh: usize, gw: usize) -> Vec<(usize, usize)> {
        let m = self.config.spatial_merge_size;
        let mut out = Vec::with_capacity(gh * gw);
        for bh in 0..gh / m {
            for bw in 0..gw / m {
                for mh in 0..m {
                    for mw in 0..m {
                        out.push((bh * m + mh, bw * m + mw));
                    }
                }
            }
        }
        out
    }

    /// Qwen2.5-VL's window order over merge units and the window lengths in patches
    /// (transformers' `get_vision_window_index` for one image).
    fn window_index(&self, gh: usize, gw: usize) -> (Vec<usize>, Vec<usize>) {
        let c = &self.config;
        let m = c.spatial_merge_size;
        let ws = c.window_size / m / c.patch_size;
        let (lh, lw) = (gh / m, gw / m);
        let nwh = (lh + ws - lh % ws) / ws;
        let nww = (lw + ws - lw % ws) / ws;
        let mut order = Vec::with_capacity(lh * lw);
        let mut lens = Vec::new();
        for wh in 0..nwh {
            for ww in 0..nww {
                let mut count = 0;
                for y in wh * ws..(wh + 1) * ws {
                    for x in ww * ws..(ww + 1) * ws {
                        if y < lh && x < lw {
                            order.push(y * lw + x);
                            count += 1;
                        }
                    }
                }
                if count > 0 {
                    lens.push(count * m * m);
                }
            }
        }
        (order, lens)
    }

    /// Encodes one image's `pixel_values` `[grid_h * grid_w, patch_dim]` with grid
    /// `(1, grid_h, grid_w)` into `[grid_h * grid_w / merge², out_hidden_size]` features.
    pub fn encode(&self, pixel_values: &Tensor, grid_thw: (usize, usize, usize)) -> Result<Tensor> {
        let c = &self.config;
        let (gt, gh, gw) = grid_thw;
        let m = c.spatial_merge_size;
        if gt != 1 {
            return Err(Error::Input(format!(
                "image grids with {gt} temporal patches (videos) are not supported"
            )));
        }
        if gh == 0 || gw == 0 || gh % m != 0 || gw % m != 0 {
            return Err(Error::Input(format!(
                "image grid {gh}×{gw} is not a positive multiple of the merge size {m}"
            )));
        }
        let n = gh * gw;
        let (rows, dim) = pixel_values.dims2()?;
        if rows != n || dim != c.patch_dim() {
            return Err(Error::Input(format!(
                "pixel_values have shape [{rows}, {dim}], grid {gh}×{gw} needs [{n}, {}]",
                c.patch_dim()
            )));
        }
        let dev = pixel_values.device();
        let dtype = self.patch_w_t.dtype();
        let mut x = pixel_values.to_dtype(dtype)?.matmul(&self.patch_w_t)?;
        let mut pos = self.positions(gh, gw);
        let unit = m * m;
        let (full, windows, order) = match self.arch {
            QwenArch::Qwen2Vl => (vec![(0, n)], vec![(0, n)], None),
            QwenArch::Qwen25Vl => {
                let (order, lens) = self.window_index(gh, gw);
                let patch_order: Vec<u32> = order
                    .iter()
                    .flat_map(|&u| (u * unit..(u + 1) * unit).map(|i| i as u32))
                    .collect();
                let idx = Tensor::new(patch_order.as_slice(), dev)?;
                x = x.index_select(&idx, 0)?;
                pos = patch_order.iter().map(|&i| pos[i as usize]).collect();
                let mut segs = Vec::with_capacity(lens.len());
                let mut s = 0;
                for l in lens {
                    segs.push((s, l));
                    s += l;
                }
                (vec![(0, n)], segs, Some(order))
            }
        };
        let (cos, sin) = self.rotary(&pos, dev)?;
        for (i, b) in self.blocks.iter().enumerate() {
            let segs = if c.fullatt_block_indexes.contains(&i) {
                &full
            } else {
                &windows
            };
            x = b.forward(&x, segs, &cos, &sin, self.score_budget)?;
        }
        let merged = self.ln_q.forward(&x)?.reshape((n / unit, c.width * unit))?;
        let h = self.mlp0.forward(&merged)?.gelu_erf()?;
        let mut out = self.mlp2.forward(&h)?;
        if let Some(order) = order {
            // Back from window order to the processor's row order.
            let mut reverse = vec![0u32; order.len()];
            for (k, &u) in order.iter().enumerate() {
                reverse[u] = k as u32;
            }
            out = out.index_select(&Tensor::new(reverse.as_slice(), dev)?, 0)?;
        }
        Ok(out)
    }

    /// `cos`/`sin` `[n, head_dim / 2]` (f32) of the axial embedding: row angles, then column
    /// angles.
    fn rotary(&self, pos: &[(usize, usize)], dev: &Device) -> Result<(Tensor, Tensor)> {
        let f = self.inv_freq.len();
        let mut angles = Vec::with_capacity(pos.len() * 2 * f);
        for &(r, col) in pos {
            angles.extend(self.inv_freq.iter().map(|w| r as f32 * w));
            angles.extend(self.inv_freq.iter().map(|w| col as f32 * w));
        }
        let cos: Vec<f32> = angles.iter().map(|a| a.cos()).collect();
        let sin: Vec<f32> = angles.iter().map(|a| a.sin()).collect();
        Ok((
            Tensor::from_vec(cos, (pos.len(), 2 * f), dev)?,
            Tensor::from_vec(sin, (pos.len(), 2 * f), dev)?,
        ))
    }
}
