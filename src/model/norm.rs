//! Batch normalisation over NCHW activations on dfdx public ops.

use super::conv::T4;
use dfdx::prelude::*;

pub type T1<D, Tp = NoneTape> = Tensor<(usize,), f32, D, Tp>;

/// Training mode: normalise with the batch's per-channel mean and (biased) variance, then scale
/// by γ and shift by β. Returns the output and the batch mean and variance (biased), from which
/// the caller updates its running averages.
pub fn batch_norm_train<D, Tp>(
    x: T4<D, Tp>,
    gamma: T1<D, Tp>,
    beta: T1<D, Tp>,
    eps: f32,
) -> (T4<D, Tp>, Vec<f32>, Vec<f32>)
where
    D: Device<f32> + 'static,
    Tp: Tape<f32, D> + Merge<Tp>,
{
    let shape = *x.shape();
    // x is used twice; the copy with an empty tape shares its id, and the tapes merge below.
    let mean: T1<D, Tp> = x.with_empty_tape().mean::<_, Axes3<0, 2, 3>>();
    let mean_values = mean.as_vec();
    let centered = x - mean.broadcast_like::<_, Axes3<0, 2, 3>>(&shape);
    let var: T1<D, Tp> = centered.with_empty_tape().square().mean::<_, Axes3<0, 2, 3>>();
    let var_values = var.as_vec();
    let inv_std = (var + eps).sqrt().recip();
    let normed = centered * inv_std.broadcast_like::<_, Axes3<0, 2, 3>>(&shape);
    let y =
        normed * gamma.broadcast_like::<_, Axes3<0, 2, 3>>(&shape) + beta.broadcast_like::<_, Axes3<0, 2, 3>>(&shape);
    (y, mean_values, var_values)
}

/// Per-channel (scale, shift) of inference-mode batch norm: y = x·scale + shift with
/// scale = γ / √(running_var + ε) and shift = β − running_mean·scale. Folding these into the
/// preceding convolution is what makes inference cheap.
pub fn inference_affine(
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma.iter().zip(running_var).map(|(g, v)| g / (v + eps).sqrt()).collect();
    let shift = beta.iter().zip(running_mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
    (scale, shift)
}

/// Inference mode with running statistics: a per-channel affine map.
pub fn batch_norm_eval<D, Tp>(x: T4<D, Tp>, scale: &T1<D>, shift: &T1<D>) -> T4<D, Tp>
where
    D: Device<f32> + 'static,
    Tp: Tape<f32, D> + Merge<Tp> + Default,
{
    let shape = *x.shape();
    x * scale.retaped::<Tp>().broadcast_like::<_, Axes3<0, 2, 3>>(&shape)
        + shift.retaped::<Tp>().broadcast_like::<_, Axes3<0, 2, 3>>(&shape)
}

/// PyTorch's running-average update: running ← (1 − m)·running + m·batch, with the batch
/// variance made unbiased (× n / (n − 1), n = B·H·W) for the running estimate.
pub fn update_running(
    running_mean: &mut [f32],
    running_var: &mut [f32],
    mean: &[f32],
    var_biased: &[f32],
    n: usize,
    momentum: f32,
) {
    let unbias = if n > 1 { n as f32 / (n - 1) as f32 } else { 1.0 };
    for c in 0..running_mean.len() {
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean[c];
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * var_biased[c] * unbias;
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv::reference::{central_differences, rel_err, values};
    use super::*;

    /// f64 batch norm, training mode: [x | γ | β] → y.
    fn reference(v: &[f64], [b, c, h, w]: [usize; 4], eps: f64) -> Vec<f64> {
        let n = b * c * h * w;
        let (x, g, bt) = (&v[..n], &v[n..n + c], &v[n + c..n + 2 * c]);
        let mut y = vec![0.0; n];
        for ch in 0..c {
            let idx: Vec<usize> = (0..b).flat_map(|bi| (0..h * w).map(move |i| (bi * c + ch) * h * w + i)).collect();
            let m = idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64;
            let var = idx.iter().map(|&i| (x[i] - m).powi(2)).sum::<f64>() / idx.len() as f64;
            for &i in &idx {
                y[i] = (x[i] - m) / (var + eps).sqrt() * g[ch] + bt[ch];
            }
        }
        y
    }

    #[test]
    fn training_mode_and_its_gradients_match_the_f64_reference() {
        let dev: Cpu = Default::default();
        let dims = [3, 4, 5, 3];
        let n: usize = dims.iter().product();
        let c = dims[1];
        let mut v = values(n + 2 * c, 21);
        for (i, x) in v[..n].iter_mut().enumerate() {
            *x = *x * 2.0 + (i % 4) as f64; // channels with different means
        }
        let f = |a: &[f64]| a.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let x: T4<Cpu> = dev.tensor_from_vec(f(&v[..n]), (3, 4, 5, 3));
        let gamma: T1<Cpu> = dev.tensor_from_vec(f(&v[n..n + c]), (c,));
        let beta: T1<Cpu> = dev.tensor_from_vec(f(&v[n + c..]), (c,));
        let (y, _, var) = batch_norm_train(x.leaky_trace(), gamma.leaky_trace(), beta.leaky_trace(), 1e-5);
        let want = reference(&v, dims, 1e-5);
        assert!(rel_err(&y.as_vec(), &want) < 1e-5, "forward");
        assert!(var.iter().all(|&s| s > 0.1));
        let r = values(n, 22);
        let rt: T4<Cpu> = dev.tensor_from_vec(f(&r), (3, 4, 5, 3));
        let grads = (y * rt).sum().backward();
        let loss = |v: &[f64]| reference(v, dims, 1e-5).iter().zip(&r).map(|(a, b)| a * b).sum::<f64>();
        let numeric = central_differences(loss, &v);
        let e = rel_err(&grads.get(&x).as_vec(), &numeric[..n]);
        assert!(e < 1e-5, "input gradient: {e}");
        assert!(rel_err(&grads.get(&gamma).as_vec(), &numeric[n..n + c]) < 1e-5, "γ gradient");
        assert!(rel_err(&grads.get(&beta).as_vec(), &numeric[n + c..]) < 1e-5, "β gradient");
    }

    #[test]
    fn inference_mode_is_the_folded_affine_and_running_stats_follow_pytorch() {
        let (scale, shift) = inference_affine(&[2.0], &[1.0], &[3.0], &[4.0 - 1e-5], 1e-5);
        assert!((scale[0] - 1.0).abs() < 1e-6 && (shift[0] + 2.0).abs() < 1e-6);
        let dev: Cpu = Default::default();
        let x: T4<Cpu> = dev.tensor_from_vec(vec![5.0, 7.0], (1, 1, 1, 2));
        let y = batch_norm_eval(x, &dev.tensor_from_vec(scale, (1,)), &dev.tensor_from_vec(shift, (1,)));
        assert_eq!(y.as_vec(), vec![3.0, 5.0], "(x − 3)/2·2 + 1");
        let (mut rm, mut rv) = (vec![0.0], vec![1.0]);
        update_running(&mut rm, &mut rv, &[2.0], &[3.0], 4, 0.1);
        assert!((rm[0] - 0.2).abs() < 1e-7 && (rv[0] - (0.9 + 0.1 * 4.0)).abs() < 1e-6);
    }
}
