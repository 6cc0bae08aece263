//! Building blocks shared by the vision tower and the decoder.
//!
//! candle's fused kernels for RMSNorm, LayerNorm, softmax and RoPE have no backward pass
//! (`apply_op*_no_bwd`, or an error on backward), so a model built on them silently stops
//! gradients. Every block here therefore picks its implementation per call: when any input
//! takes part in autograd (`Tensor::track_op`, true for `Var`s from a `VarMap` and everything
//! computed from them) it composes differentiable primitive ops; otherwise (weights
//! memory-mapped from disk) it uses the fused kernel. Both paths compute the same function.

use candle_core::{DType, Module, Tensor, D};
use candle_nn::VarBuilder;

use crate::config::Activation;

/// Whether any of `ts` takes part in autograd.
pub(crate) fn tracks(ts: &[&Tensor]) -> bool {
    ts.iter().any(|t| t.track_op())
}

/// A dense layer `y = x Wᵀ + b` with HF's `[out, in]` weight layout.
///
/// Frozen weights are stored transposed and contiguous (`[in, out]`), which candle's CPU matmul
/// runs about 1.5× faster than the strided transpose; trainable (`Var`) weights keep a
/// transposed view so gradients reach the variable.
#[derive(Debug, Clone)]
pub struct Linear {
    weight_t: Tensor,
    bias: Option<Tensor>,
    adapter: Option<LowRank>,
}

/// A low-rank update of a frozen dense layer (LoRA, Hu et al. 2021): the layer computes
/// `x Wᵀ + scale · (x Aᵀ) Bᵀ`, i.e. its weight is `W + scale · B A`. Used while training adapters
/// (`a` and `b` are then `Var`s); a trained adapter is merged into the weight before a checkpoint
/// is written, so inference never sees one.
#[derive(Debug, Clone)]
pub struct LowRank {
    /// `A`: `[rank, in]`.
    pub a: Tensor,
    /// `B`: `[out, rank]`.
    pub b: Tensor,
    /// The factor `alpha / rank`.
    pub scale: f64,
}

impl Linear {
    /// Loads `weight` (and `bias` when `bias` is true) under `vb`.
    pub fn load(
        vb: VarBuilder,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
    ) -> candle_core::Result<Self> {
        // Checkpoint backends read the matrix already transposed, so the contiguous copy below
        // is free (no second copy of the weight while loading).
        let weight = crate::weights::with_transposed_load(|| vb.get((out_dim, in_dim), "weight"))?;
        let bias = if bias {
            Some(vb.get(out_dim, "bias")?)
        } else {
            None
        };
        let weight_t = if weight.track_op() {
            weight.t()?
        } else {
            weight.t()?.contiguous()?
        };
        Ok(Self {
            weight_t,
            bias,
            adapter: None,
        })
    }

    /// The `[out, in]` weight matrix (a transposed view of the stored `[in, out]` matrix).
    pub fn weight(&self) -> candle_core::Result<Tensor> {
        self.weight_t.t()
    }

    /// Input width.
    pub fn in_dim(&self) -> usize {
        self.weight_t.dims()[0]
    }

    /// Output width.
    pub fn out_dim(&self) -> usize {
        self.weight_t.dims()[1]
    }

    /// Attaches (or, with `None`, removes) a low-rank update. Its shapes must match the layer.
    pub fn set_adapter(&mut self, adapter: Option<LowRank>) -> candle_core::Result<()> {
        if let Some(ad) = &adapter {
            let (r, i) = ad.a.dims2()?;
            let (o, r2) = ad.b.dims2()?;
            if i != self.in_dim() || o != self.out_dim() || r != r2 {
                candle_core::bail!(
                    "adapter A {:?} / B {:?} does not fit a layer {} -> {}",
                    ad.a.dims(),
                    ad.b.dims(),
                    self.in_dim(),
                    self.out_dim()
                )
            }
        }
        self.adapter = adapter;
        Ok(())
    }

    /// The attached low-rank update, if any.
    pub fn adapter(&self) -> Option<&LowRank> {
        self.adapter.as_ref()
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims();
        let Some((&in_dim, lead)) = dims.split_last() else {
            candle_core::bail!("linear layer applied to a scalar")
        };
        let rows: usize = lead.iter().product();
        let x2 = x.reshape((rows, in_dim))?;
        let frozen_weight_tracked_input = x2.track_op()
            && !self.weight_t.track_op()
            && x2.device().is_cpu()
            && x2.dtype() == DType::F32
            && self.weight_t.dtype() == DType::F32;
        let mut y = if frozen_weight_tracked_input {
            // candle's matmul backward always computes the right operand's gradient too; for a
            // frozen weight that is a wasted product as large as the input's gradient.
            x2.contiguous()?.apply_op1(FrozenMatmul {
                weight_t: self.weight_t.clone(),
            })?
        } else {
            x2.matmul(&self.weight_t)?
        };
        if let Some(ad) = &self.adapter {
            let low = x2.matmul(&ad.a.t()?)?.matmul(&ad.b.t()?)?;
            y = (y + (low * ad.scale)?)?;
        }
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        let mut out_dims = lead.to_vec();
        out_dims.push(self.weight_t.dim(1)?);
        y.reshape(out_dims)
    }
}

/// `x · weight_t` (`x`: `[rows, in]`) for a constant `weight_t` (`[in, out]`, possibly a transposed
/// view), computing only `x`'s gradient on the backward pass when `x` takes part in autograd
/// (candle's matmul backward would also form the constant's gradient, as large as the matrix).
pub(crate) fn frozen_matmul(x: &Tensor, weight_t: &Tensor) -> candle_core::Result<Tensor> {
    if x.track_op()
        && !weight_t.track_op()
        && x.device().is_cpu()
        && x.dtype() == DType::F32
        && weight_t.dtype() == DType::F32
    {
        x.contiguous()?.apply_op1(FrozenMatmul {
            weight_t: weight_t.clone(),
        })
    } else {
        x.matmul(weight_t)
    }
}

/// `x · weight_t` for a constant `weight_t` (`[in, out]`, contiguous) whose backward pass computes
/// only the input's gradient (`grad · weight_tᵀ`). CPU and f32 only (the caller checks).
struct FrozenMatmul {
    weight_t: Tensor,
}

impl candle_core::CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("frozen-matmul: f32 input expected")
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("frozen-matmul: contiguous input expected")
        };
        let x = Tensor::from_slice(&data[start..end], layout.shape(), &candle_core::Device::Cpu)?;
        let y = x.matmul(&self.weight_t)?;
        let shape = y.shape().clone();
        let (st, _) = y.storage_and_layout();
        match &*st {
            candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)) => {
                Ok((candle_core::CpuStorage::F32(v.clone()), shape))
            }
            _ => candle_core::bail!("frozen-matmul: unexpected output storage"),
        }
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_res.matmul(&self.weight_t.t()?)?))
    }
}

/// Llama's RMSNorm: `x / sqrt(mean(x²) + eps) * w`, computed in f32.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// Loads `weight` under `vb`.
    pub fn load(vb: VarBuilder, dim: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            eps,
        })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if tracks(&[x, &self.weight]) {
            let dtype = x.dtype();
            let xf = x.to_dtype(DType::F32)?;
            let ms = xf.sqr()?.mean_keepdim(D::Minus1)?;
            let normed = xf.broadcast_div(&(ms + self.eps)?.sqrt()?)?;
            normed.to_dtype(dtype)?.broadcast_mul(&self.weight)
        } else {
            candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps as f32)
        }
    }
}

/// LayerNorm with weight and bias, statistics in f32.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Loads `weight` and `bias` under `vb`.
    pub fn load(vb: VarBuilder, dim: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            bias: vb.get(dim, "bias")?,
            eps,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if tracks(&[x, &self.weight, &self.bias]) {
            let dtype = x.dtype();
            let xf = x.to_dtype(DType::F32)?;
            let centred = xf.broadcast_sub(&xf.mean_keepdim(D::Minus1)?)?;
            let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
            let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
            normed
                .to_dtype(dtype)?
                .broadcast_mul(&self.weight)?
                .broadcast_add(&self.bias)
        } else {
            candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps as f32)
        }
    }
}

/// Softmax over the last dimension.
pub(crate) fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.track_op() {
        // Subtracting a detached max leaves the function (and its gradient) unchanged.
        let max = x.max_keepdim(D::Minus1)?.detach();
        let e = x.broadcast_sub(&max)?.exp()?;
        e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
    } else {
        candle_nn::ops::softmax_last_dim(&x.contiguous()?)
    }
}

/// Applies an activation function.
pub(crate) fn activate(act: Activation, x: &Tensor) -> candle_core::Result<Tensor> {
    match act {
        Activation::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
        Activation::Gelu => x.gelu_erf(),
        Activation::GeluTanh => x.gelu(),
        Activation::Silu => x.silu(),
        Activation::Relu => x.relu(),
    }
}

/// Rotary embedding in the "rotate half" (non-interleaved) convention used by HF Llama.
///
/// `x` is `[batch, heads, seq, head_dim]`; `cos`/`sin` are `[seq, head_dim / 2]`.
pub(crate) fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    if tracks(&[x]) {
        let half = x.dim(D::Minus1)? / 2;
        let cos = Tensor::cat(&[cos, cos], D::Minus1)?;
        let sin = Tensor::cat(&[sin, sin], D::Minus1)?;
        let x1 = x.narrow(D::Minus1, 0, half)?;
        let x2 = x.narrow(D::Minus1, half, half)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?
    } else {
        candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn frozen_weight_linear_gives_the_input_gradient_of_a_plain_matmul() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (5, 3), &dev).unwrap();
        let lin = Linear {
            weight_t: w.t().unwrap().contiguous().unwrap(),
            bias: None,
            adapter: None,
        };
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 4, 3), &dev).unwrap()).unwrap();
        let y = lin.forward(x.as_tensor()).unwrap();
        let loss = (y.sqr().unwrap().sum_all().unwrap() * 0.5).unwrap();
        let g = loss.backward().unwrap();
        let got = g.get(x.as_tensor()).unwrap();
        // Reference: the same function with a broadcast matmul on the transposed view.
        let y2 = x.as_tensor().broadcast_matmul(&w.t().unwrap()).unwrap();
        let want = y2.broadcast_matmul(&w).unwrap();
        let d = (&y - &y2).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-5);
        let d = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-5);
        // The frozen weight receives no gradient.
        assert!(g.get(&lin.weight_t).is_none());
    }

    #[test]
    fn a_low_rank_adapter_computes_the_merged_weight_and_trains_only_its_factors() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (5, 3), &dev).unwrap();
        let b0 = Tensor::randn(0f32, 1.0, 5, &dev).unwrap();
        let a = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3), &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, (5, 2), &dev).unwrap()).unwrap();
        let mut lin = Linear {
            weight_t: w.t().unwrap().contiguous().unwrap(),
            bias: Some(b0.clone()),
            adapter: None,
        };
        lin.set_adapter(Some(LowRank {
            a: a.as_tensor().clone(),
            b: b.as_tensor().clone(),
            scale: 0.5,
        }))
        .unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 4, 3), &dev).unwrap();
        let y = lin.forward(&x).unwrap();
        let merged = (&w + (b.as_tensor().matmul(a.as_tensor()).unwrap() * 0.5).unwrap()).unwrap();
        let want = x
            .broadcast_matmul(&merged.t().unwrap())
            .unwrap()
            .broadcast_add(&b0)
            .unwrap();
        let d = (&y - &want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-5);
        let g = y.sum_all().unwrap().backward().unwrap();
        assert!(g.get(a.as_tensor()).is_some() && g.get(b.as_tensor()).is_some());
        assert!(g.get(&lin.weight_t).is_none());
        // A misfit adapter is refused; removing it restores the plain layer.
        assert!(lin
            .set_adapter(Some(LowRank {
                a: b.as_tensor().clone(),
                b: a.as_tensor().clone(),
                scale: 1.0
            }))
            .is_err());
        lin.set_adapter(None).unwrap();
        let plain = x
            .broadcast_matmul(&w.t().unwrap())
            .unwrap()
            .broadcast_add(&b0)
            .unwrap();
        let d = (lin.forward(&x).unwrap() - plain)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-5);
    }
}
