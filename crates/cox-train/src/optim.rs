//! AdamW whose state can be saved and restored, so that a run cut short resumes exactly.
//!
//! The update is candle-nn's `AdamW` step for step (same operations in the same order, so the
//! same bits; a test checks it), but the moments and the step counter are reachable:
//! [`ResumableAdamW::save_state`] writes them to a safetensors file and
//! [`ResumableAdamW::load_state`] puts them back. candle's optimiser keeps them private, which is
//! why a resumed run could only restart its optimiser. Not yet used by [`crate::Trainer`]: it is
//! the piece `cargo xtask train-synth --resume` (issue 17, part 2) needs.

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::ParamsAdamW;

use crate::error::{Result, TrainError};

/// AdamW (decoupled weight decay) over a fixed list of variables.
#[derive(Debug)]
pub struct ResumableAdamW {
    vars: Vec<Var>,
    first: Vec<Var>,
    second: Vec<Var>,
    step_t: usize,
    /// Learning rate, betas, epsilon and weight decay.
    pub params: ParamsAdamW,
}

impl ResumableAdamW {
    /// Zero moments for `vars` (in this order: the saved state is matched by position).
    pub fn new(vars: Vec<Var>, params: ParamsAdamW) -> Result<Self> {
        let zeros = |v: &Var| Var::zeros(v.shape(), v.dtype(), v.device());
        let first = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        let second = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        Ok(Self {
            vars,
            first,
            second,
            step_t: 0,
            params,
        })
    }

    /// Updates taken so far.
    pub fn steps_taken(&self) -> usize {
        self.step_t
    }

    /// Sets the learning rate of the next step.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    /// One update from `grads` (variables without a gradient are left alone).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_t += 1;
        let p = &self.params;
        let lr_lambda = p.lr * p.weight_decay;
        let scale_m = 1f64 / (1f64 - p.beta1.powi(self.step_t as i32));
        let scale_v = 1f64 / (1f64 - p.beta2.powi(self.step_t as i32));
        for ((theta, m), v) in self.vars.iter().zip(&self.first).zip(&self.second) {
            let Some(g) = grads.get(theta) else {
                continue;
            };
            let next_m = ((m.as_tensor() * p.beta1)? + (g * (1.0 - p.beta1))?)?;
            let next_v = ((v.as_tensor() * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let next_theta = (theta.as_tensor() * (1f64 - lr_lambda))?;
            let adjusted = (m_hat / (v_hat.sqrt()? + p.eps)?)?;
            let next_theta = (next_theta - (adjusted * p.lr)?)?;
            m.set(&next_m)?;
            v.set(&next_v)?;
            theta.set(&next_theta)?;
        }
        Ok(())
    }

    /// Writes the moments (`m.{i}`, `v.{i}`) and the step counter (`step_t`, f64) to `path`
    /// through a temporary file and a rename.
    pub fn save_state(&self, path: &Path) -> Result<()> {
        let mut t: HashMap<String, Tensor> = HashMap::new();
        for (i, (m, v)) in self.first.iter().zip(&self.second).enumerate() {
            t.insert(format!("m.{i}"), m.as_tensor().clone());
            t.insert(format!("v.{i}"), v.as_tensor().clone());
        }
        t.insert(
            "step_t".into(),
            Tensor::new(&[self.step_t as f64], &Device::Cpu)?,
        );
        let tmp = path.with_extension("tmp");
        candle_core::safetensors::save(&t, &tmp)?;
        std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
    }

    /// Restores what [`Self::save_state`] wrote for the same variables (same count and shapes).
    pub fn load_state(&mut self, path: &Path) -> Result<()> {
        let t = candle_core::safetensors::load(path, &Device::Cpu)?;
        let bad = |msg: String| TrainError::OptimiserState {
            path: path.to_path_buf(),
            msg,
        };
        if t.len() != 2 * self.vars.len() + 1 {
            return Err(bad(format!(
                "{} moments for {} variables (a state saved by another model or setting)",
                t.len().saturating_sub(1),
                self.vars.len()
            )));
        }
        for (i, (m, v)) in self.first.iter().zip(&self.second).enumerate() {
            for (name, var) in [(format!("m.{i}"), m), (format!("v.{i}"), v)] {
                let x = t
                    .get(&name)
                    .ok_or_else(|| bad(format!("a tensor {name}")))?;
                if x.shape() != var.shape() {
                    return Err(bad(format!(
                        "{name} of shape {:?}, found {:?}",
                        var.shape(),
                        x.shape()
                    )));
                }
                var.set(&x.to_dtype(var.dtype())?)?;
            }
        }
        let s = t
            .get("step_t")
            .ok_or_else(|| bad("a tensor step_t".into()))?
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?;
        self.step_t = s.first().copied().unwrap_or(0.0) as usize;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::Optimizer;

    fn grads_for(vars: &[Var], k: usize) -> GradStore {
        // A loss whose gradients differ per step: sum((x - k)^3) / 10.
        let mut loss = Tensor::new(0f32, &Device::Cpu).unwrap();
        for v in vars {
            let d = (v.as_tensor() - k as f64).unwrap();
            let l = (d.sqr().unwrap() * d).unwrap().sum_all().unwrap();
            loss = (loss + (l / 10.0).unwrap()).unwrap();
        }
        loss.backward().unwrap()
    }

    fn fresh() -> Vec<Var> {
        let a = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        let b = Tensor::new(&[0.5f32, -1.5], &Device::Cpu).unwrap();
        vec![Var::from_tensor(&a).unwrap(), Var::from_tensor(&b).unwrap()]
    }

    fn values(vars: &[Var]) -> Vec<Vec<f32>> {
        vars.iter()
            .map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    }

    #[test]
    fn same_bits_as_candle_and_resumes_exactly() {
        let params = ParamsAdamW {
            lr: 0.05,
            weight_decay: 0.01,
            ..ParamsAdamW::default()
        };
        let lrs = [0.05, 0.04, 0.03, 0.02];
        let (va, vb) = (fresh(), fresh());
        let mut ours = ResumableAdamW::new(va.clone(), params.clone()).unwrap();
        let mut theirs = candle_nn::AdamW::new(vb.clone(), params.clone()).unwrap();
        for (k, lr) in lrs.iter().enumerate() {
            ours.set_learning_rate(*lr);
            theirs.set_learning_rate(*lr);
            ours.step(&grads_for(&va, k)).unwrap();
            theirs.step(&grads_for(&vb, k)).unwrap();
        }
        assert_eq!(values(&va), values(&vb));

        // Cut after two steps, save, restore into a new optimiser: the same end point.
        let vc = fresh();
        let mut first = ResumableAdamW::new(vc.clone(), params.clone()).unwrap();
        for (k, lr) in lrs.iter().enumerate().take(2) {
            first.set_learning_rate(*lr);
            first.step(&grads_for(&vc, k)).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optimiser.safetensors");
        first.save_state(&path).unwrap();
        let saved = values(&vc);
        let vd: Vec<Var> = saved
            .iter()
            .zip(&vc)
            .map(|(x, v)| {
                Var::from_tensor(
                    &Tensor::new(x.as_slice(), &Device::Cpu)
                        .unwrap()
                        .reshape(v.shape())
                        .unwrap(),
                )
                .unwrap()
            })
            .collect();
        let mut resumed = ResumableAdamW::new(vd.clone(), params).unwrap();
        resumed.load_state(&path).unwrap();
        assert_eq!(resumed.steps_taken(), 2);
        for (k, lr) in lrs.iter().enumerate().skip(2) {
            resumed.set_learning_rate(*lr);
            resumed.step(&grads_for(&vd, k)).unwrap();
        }
        assert_eq!(values(&vd), values(&va));

        // A state for other variables is refused with a message naming the file.
        let mut other = ResumableAdamW::new(fresh()[..1].to_vec(), ParamsAdamW::default()).unwrap();
        let err = other.load_state(&path).unwrap_err().to_string();
        assert!(err.contains("optimiser.safetensors"), "{err}");
    }
}
