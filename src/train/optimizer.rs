//! The optimiser of a run, as the config names it: Adam ([`super::adam`]) or PyTorch's SGD, and
//! its state as extra tensors of a training checkpoint (`optimizer.exp_avg.<name>` and
//! `optimizer.exp_avg_sq.<name>` for Adam, `optimizer.momentum.<name>` for SGD).

use super::adam::Adam;
use crate::config::{Optimizer as Kind, TrainConfig};
use crate::model::backend::ConvBackend;
use crate::model::checkpoint::OPTIMIZER_PREFIX;
use crate::model::layers::{Flat, Param};
use crate::model::network::Network;
use anyhow::{Context, Result};
use dfdx::prelude::*;
use std::collections::BTreeMap;

/// PyTorch's SGD: d = g + λp; b = μb + d (b = d at the first step); p −= lr·(d + μb) with
/// Nesterov, lr·b without.
pub struct Sgd<D: Device<f32>> {
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: f32,
    pub buffers: Vec<Flat<D>>,
}

impl<D: Device<f32>> Sgd<D> {
    pub fn new(params: &[&Param<D>], momentum: f32, nesterov: bool, weight_decay: f32) -> Self {
        let buffers =
            params.iter().filter(|p| p.trainable).map(|p| p.value.device().zeros_like(&(p.numel(),))).collect();
        Sgd { momentum, nesterov, weight_decay, buffers }
    }

    /// One update; `grads` are the trainable parameters' gradients, in registry order.
    pub fn update(&mut self, params: Vec<&mut Param<D>>, grads: &[Flat<D>], lr: f64) {
        let lr = lr as f32;
        for ((p, b), g) in params.into_iter().filter(|p| p.trainable).zip(self.buffers.iter_mut()).zip(grads) {
            let mut d = g.clone();
            if self.weight_decay > 0.0 {
                d = d + p.value.clone() * self.weight_decay;
            }
            *b = b.clone() * self.momentum + d.clone();
            let step = if self.nesterov { d + b.clone() * self.momentum } else { b.clone() };
            p.value = p.value.clone() - step * lr;
        }
    }
}

/// The optimiser `train.optimizer` names, over the network's trainable parameters.
pub enum Optimizer<D: Device<f32>> {
    Adam(Adam<D>),
    Sgd(Sgd<D>),
}

impl<D: ConvBackend> Optimizer<D> {
    pub fn new(net: &Network<D>, cfg: &TrainConfig) -> Self {
        let (params, decay) = (net.params(), cfg.weight_decay as f32);
        match cfg.optimizer {
            Kind::Adam => Optimizer::Adam(Adam::new(&params, decay)),
            Kind::Sgd => Optimizer::Sgd(Sgd::new(&params, cfg.momentum as f32, cfg.nesterov, decay)),
        }
    }

    /// One update; `grads` are the trainable parameters' gradients, in registry order.
    pub fn update(&mut self, params: Vec<&mut Param<D>>, grads: &[Flat<D>], lr: f64) {
        match self {
            Optimizer::Adam(a) => a.update(params, grads, lr),
            Optimizer::Sgd(s) => s.update(params, grads, lr),
        }
    }

    /// The optimiser's buffers as checkpoint tensors, named after the parameters they follow.
    pub fn state_tensors(&self, net: &Network<D>) -> Vec<Param<D>> {
        let trainable: Vec<&Param<D>> = net.params().into_iter().filter(|p| p.trainable).collect();
        let buffers: Vec<(&str, &Flat<D>, &Param<D>)> = match self {
            Optimizer::Adam(a) => trainable
                .iter()
                .zip(&a.moments)
                .flat_map(|(p, (m, v))| [("exp_avg", m, *p), ("exp_avg_sq", v, *p)])
                .collect(),
            Optimizer::Sgd(s) => trainable.iter().zip(&s.buffers).map(|(p, b)| ("momentum", b, *p)).collect(),
        };
        buffers
            .into_iter()
            .map(|(kind, value, p)| Param {
                name: format!("{OPTIMIZER_PREFIX}{kind}.{}", p.name),
                shape: p.shape.clone(),
                value: value.clone(),
                trainable: false,
            })
            .collect()
    }

    /// Takes back the buffers [`Optimizer::state_tensors`] gave, once loaded from a checkpoint.
    pub fn restore(&mut self, tensors: Vec<Param<D>>) {
        match self {
            Optimizer::Adam(a) => {
                for (pair, mv) in a.moments.iter_mut().zip(tensors.chunks_exact(2)) {
                    *pair = (mv[0].value.clone(), mv[1].value.clone());
                }
            }
            Optimizer::Sgd(s) => s.buffers = tensors.into_iter().map(|t| t.value).collect(),
        }
    }

    /// Checkpoint metadata besides the tensors: Adam's step count.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        match self {
            Optimizer::Adam(a) => BTreeMap::from([("adam_step".to_string(), a.step.to_string())]),
            Optimizer::Sgd(_) => BTreeMap::new(),
        }
    }

    /// Reads back what [`Optimizer::metadata`] wrote.
    pub fn restore_metadata(&mut self, meta: &BTreeMap<String, String>, source: &str) -> Result<()> {
        if let Optimizer::Adam(a) = self {
            let step = meta.get("adam_step").with_context(|| format!("{source}: no 'adam_step' metadata"))?;
            a.step = step.parse().with_context(|| format!("{source}: adam_step"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_matches_pytorch_by_hand() {
        // f(p) = Σ c·p²: g = 2cp. Nesterov, μ 0.9, λ 0.1, lr 0.5, two steps.
        let dev: Cpu = Default::default();
        let c = [1.0f32, -0.5];
        let mut p = Param::new(&dev, "w".into(), vec![2], vec![1.0, 2.0], true);
        let mut sgd = Sgd::new(&[&p], 0.9, true, 0.1);
        let (mut rp, mut rb) = ([1.0f64, 2.0], [0.0f64; 2]);
        for _ in 0..2 {
            let x: Tensor<(usize,), f32, Cpu, OwnedTape<f32, Cpu>> = p.t1();
            let grads = (x.square() * dev.tensor_from_vec(c.to_vec(), (2,))).sum().backward();
            let g = grads.get(&p.value);
            sgd.update(vec![&mut p], &[g], 0.5);
            for i in 0..2 {
                let d = 2.0 * c[i] as f64 * rp[i] + 0.1 * rp[i];
                rb[i] = 0.9 * rb[i] + d;
                rp[i] -= 0.5 * (d + 0.9 * rb[i]);
            }
        }
        let got = p.value.as_vec();
        assert!((got[0] as f64 - rp[0]).abs() < 1e-5 && (got[1] as f64 - rp[1]).abs() < 1e-5, "{got:?} vs {rp:?}");
    }
}
