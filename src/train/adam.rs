//! Adam over the flat parameter registry, in device tensor ops (so it runs where the model
//! runs), with PyTorch's arithmetic: bias-corrected step size, ε added after the square root,
//! optional L2 weight decay added to the gradient.

use crate::model::layers::{Flat, Param};
use dfdx::prelude::*;

pub struct Adam<D: Device<f32>> {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// Updates done so far.
    pub step: u64,
    /// First and second moments of each trainable parameter, in registry order.
    pub moments: Vec<(Flat<D>, Flat<D>)>,
}

impl<D: Device<f32>> Adam<D> {
    pub fn new(params: &[&Param<D>], weight_decay: f32) -> Self {
        let moments = params
            .iter()
            .filter(|p| p.trainable)
            .map(|p| {
                let dev = p.value.device();
                (dev.zeros_like(&(p.numel(),)), dev.zeros_like(&(p.numel(),)))
            })
            .collect();
        Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, step: 0, moments }
    }

    /// One update with learning rate `lr`; `grads` are the trainable parameters' gradients, in
    /// registry order.
    pub fn update(&mut self, params: Vec<&mut Param<D>>, grads: &[Flat<D>], lr: f64) {
        self.step += 1;
        let t = self.step as i32;
        let step_size = (lr / (1.0 - (self.beta1 as f64).powi(t))) as f32;
        let correction2 = (1.0 - (self.beta2 as f64).powi(t)).sqrt() as f32;
        let (b1, b2) = (self.beta1, self.beta2);
        let trainable = params.into_iter().filter(|p| p.trainable);
        for ((p, (m, v)), g) in trainable.zip(self.moments.iter_mut()).zip(grads) {
            let mut g = g.clone();
            if self.weight_decay > 0.0 {
                g = g + p.value.clone() * self.weight_decay;
            }
            *m = m.clone() * b1 + g.clone() * (1.0 - b1);
            *v = v.clone() * b2 + g.square() * (1.0 - b2);
            let denom = v.clone().sqrt() / correction2 + self.eps;
            p.value = p.value.clone() - (m.clone() / denom) * step_size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three steps on f(p) = Σ c_i p_i² against plain scalar Adam in f64.
    #[test]
    fn matches_scalar_adam() {
        let dev: Cpu = Default::default();
        let c = [1.0f32, -2.0, 0.5];
        let mut p = Param::new(&dev, "w".into(), vec![3], vec![0.3, -0.7, 1.1], true);
        let mut adam = Adam::new(&[&p], 0.01);
        let (mut rp, mut rm, mut rv) = ([0.3f64, -0.7, 1.1], [0.0f64; 3], [0.0f64; 3]);
        for step in 1..=3 {
            let lr = 0.1 / step as f64;
            let x: Tensor<(usize,), f32, Cpu, OwnedTape<f32, Cpu>> = p.t1();
            let loss = (x.square() * dev.tensor_from_vec(c.to_vec(), (3,))).sum();
            let grads = loss.backward();
            let g = grads.get(&p.value);
            adam.update(vec![&mut p], &[g], lr);
            for i in 0..3 {
                let g = 2.0 * c[i] as f64 * rp[i] + 0.01 * rp[i];
                rm[i] = 0.9 * rm[i] + 0.1 * g;
                rv[i] = 0.999 * rv[i] + 0.001 * g * g;
                let denom = rv[i].sqrt() / (1.0 - 0.999f64.powi(step)).sqrt() + 1e-8;
                rp[i] -= lr / (1.0 - 0.9f64.powi(step)) * rm[i] / denom;
            }
        }
        let got = p.value.as_vec();
        for i in 0..3 {
            assert!((got[i] as f64 - rp[i]).abs() < 1e-5, "{i}: {} vs {}", got[i], rp[i]);
        }
    }
}
