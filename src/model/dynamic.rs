//! Dynamic convolution (Chen et al., CVPR 2020) on dfdx public ops: K kernels mixed per sample by
//! an attention vector π = softmax(FC₂(ReLU(FC₁(GAP(x)))) / τ), then one convolution with the
//! aggregated kernel, as a batched product with the im2col columns.

use super::blueprint::ConvSpec;
use super::conv::{group_expansion, im2col, transposed_cols, transposed_out, ConvGeometry, T4};
use dfdx::prelude::*;

type T2<D, Tp = NoneTape> = Tensor<(usize, usize), f32, D, Tp>;
type T1<D, Tp = NoneTape> = Tensor<(usize,), f32, D, Tp>;

/// The attention branch's parameters, on the caller's tape: FC₁ (hidden × C, hidden),
/// FC₂ (K × hidden, K).
pub struct AttentionWeights<D: Device<f32> + 'static, Tp> {
    pub fc1_weight: T2<D, Tp>,
    pub fc1_bias: T1<D, Tp>,
    pub fc2_weight: T2<D, Tp>,
    pub fc2_bias: T1<D, Tp>,
}

/// Per-sample kernel weights π (B, K) for input x (B, C, H, W) at temperature τ.
pub fn attention<D, Tp>(x: T4<D, Tp>, a: AttentionWeights<D, Tp>, temperature: f32) -> T2<D, Tp>
where
    D: Device<f32> + 'static,
    Tp: Tape<f32, D> + Merge<Tp>,
{
    attention_head(x.mean::<_, Axes2<2, 3>>(), a, temperature)
}

/// The attention from already pooled features (B, C): FC → ReLU → FC → softmax(z/τ).
pub fn attention_head<D, Tp>(pooled: T2<D, Tp>, a: AttentionWeights<D, Tp>, temperature: f32) -> T2<D, Tp>
where
    D: Device<f32> + 'static,
    Tp: Tape<f32, D> + Merge<Tp>,
{
    let b = pooled.shape().0;
    let (hidden, k) = (a.fc1_weight.shape().0, a.fc2_weight.shape().0);
    let h =
        pooled.matmul(a.fc1_weight.permute::<_, Axes2<1, 0>>()) + a.fc1_bias.broadcast_like::<_, Axis<0>>(&(b, hidden));
    let z =
        h.relu().matmul(a.fc2_weight.permute::<_, Axes2<1, 0>>()) + a.fc2_bias.broadcast_like::<_, Axis<0>>(&(b, k));
    (z * (1.0 / temperature)).softmax::<Axis<1>>()
}

/// Convolution of x (B, C, H, W) with per-sample kernels Σₖ π[b, k]·Wₖ, where `kernels` holds
/// the K kernels flattened, (K, O·(C/g)·k·k) in OIHW order — or, for a transposed conv
/// (groups 1), (K, C·O·k·k) in PyTorch's ConvTranspose order (C, O, k, k).
pub fn dynamic_conv2d<D, Tp>(x: T4<D, Tp>, pi: T2<D, Tp>, kernels: T2<D, Tp>, spec: &ConvSpec) -> T4<D, Tp>
where
    D: Device<f32> + 'static,
    Tp: Tape<f32, D> + Merge<Tp>,
{
    let (b, c, h, w) = *x.shape();
    let (o, k, groups) = (spec.cout, spec.kernel, spec.groups);
    let (stride, padding) = (spec.stride, spec.padding);
    let g = ConvGeometry { kernel: k, stride, padding };
    if spec.transposed {
        assert_eq!(groups, 1, "grouped transposed convolutions are not supported");
        let (oh, ow) = transposed_out(h, w, g);
        let wb = pi
            .matmul(kernels)
            .reshape_like(&(b, c, o, k, k))
            .permute::<_, Axes5<0, 3, 4, 1, 2>>()
            .reshape_like(&(b, k * k * c, o));
        let cols = transposed_cols(x, g).reshape_like(&(b, oh * ow, k * k * c));
        return cols.matmul(wb).reshape_like(&(b, oh, ow, o)).permute::<_, Axes4<0, 3, 1, 2>>();
    }
    let (oh, ow) = g.out(h, w);
    let p = oh * ow;
    if groups == c && o == c {
        // Depthwise: per-sample taps (B, k·k, C) times the columns, summed over the taps.
        let taps = pi.matmul(kernels).reshape_like(&(b, c, k * k)).permute::<_, Axes3<0, 2, 1>>();
        let taps = taps.broadcast_like::<_, Axis<1>>(&(b, p, k * k, c));
        let cols = im2col(x, g).reshape_like(&(b, p, k * k, c));
        let out: Tensor<(usize, usize, usize), f32, D, Tp> = (cols * taps).sum::<_, Axis<2>>();
        return out.reshape_like(&(b, oh, ow, c)).permute::<_, Axes4<0, 3, 1, 2>>();
    }
    let dense = if groups == 1 {
        kernels
    } else {
        // Spread each grouped kernel into a dense one (zeros across groups).
        let dev = kernels.device().clone();
        let kk = kernels.shape().0;
        let n = kernels.shape().1;
        let zero: T2<D> = dev.zeros_like(&(kk, 1));
        let padded = (kernels, zero).concat_along(Axis::<1>);
        let idx = super::conv::cached_index_shaped(&dev, ("dynamic_groups", [kk, n, o, c, k, groups, 0]), || {
            let one = group_expansion(o, c, k, groups);
            let m = one.len();
            let idx = (0..kk).flat_map(|_| one.iter().map(|&i| if i == o * (c / groups) * k * k { n } else { i }));
            (idx.collect(), (kk, m))
        });
        padded.gather(idx)
    };
    let wb = pi.matmul(dense).reshape_like(&(b, o, c, k, k)).permute::<_, Axes5<0, 3, 4, 2, 1>>().reshape_like(&(
        b,
        k * k * c,
        o,
    ));
    let cols = im2col(x, g).reshape_like(&(b, p, k * k * c));
    cols.matmul(wb).reshape_like(&(b, oh, ow, o)).permute::<_, Axes4<0, 3, 1, 2>>()
}

#[cfg(test)]
mod tests {
    use super::super::conv::reference::{central_differences, rel_err, values, Conv};
    use super::*;

    /// The whole operator in f64 plain loops: attention, aggregation, convolution.
    struct Reference {
        conv: Conv,
        kernels: usize,
        hidden: usize,
        temperature: f64,
        /// Transposed convolution (kernel layout C, O, k, k); `conv.h/w` are the input size.
        transposed: bool,
    }

    /// f64 transposed convolution of one sample.
    fn transposed(x: &[f64], w: &[f64], r: &Conv) -> Vec<f64> {
        let (k, s, p) = (r.k, r.stride, r.pad);
        let (oh, ow) = ((r.h - 1) * s + k - 2 * p, (r.w - 1) * s + k - 2 * p);
        let mut y = vec![0.0; r.o * oh * ow];
        for c in 0..r.c {
            for iy in 0..r.h {
                for ix in 0..r.w {
                    for o in 0..r.o {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (oy, ox) =
                                    ((iy * s + ky) as isize - p as isize, (ix * s + kx) as isize - p as isize);
                                if oy >= 0 && ox >= 0 && (oy as usize) < oh && (ox as usize) < ow {
                                    y[(o * oh + oy as usize) * ow + ox as usize] +=
                                        x[(c * r.h + iy) * r.w + ix] * w[((c * r.o + o) * k + ky) * k + kx];
                                }
                            }
                        }
                    }
                }
            }
        }
        y
    }

    /// Parameter vector layout: [x | kernels | fc1_w | fc1_b | fc2_w | fc2_b].
    impl Reference {
        fn sizes(&self) -> [usize; 6] {
            let r = &self.conv;
            let kp = r.o * r.c / r.groups * r.k * r.k;
            [
                r.b * r.c * r.h * r.w,
                self.kernels * kp,
                self.hidden * r.c,
                self.hidden,
                self.kernels * self.hidden,
                self.kernels,
            ]
        }

        fn forward(&self, v: &[f64]) -> Vec<f64> {
            let r = &self.conv;
            let s = self.sizes();
            let mut parts = Vec::new();
            let mut at = 0;
            for n in s {
                parts.push(&v[at..at + n]);
                at += n;
            }
            let (x, ker, w1, b1, w2, b2) = (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]);
            let kp = s[1] / self.kernels;
            let hw = r.h * r.w;
            let mut y = Vec::new();
            for b in 0..r.b {
                let pooled: Vec<f64> = (0..r.c)
                    .map(|c| x[(b * r.c + c) * hw..(b * r.c + c + 1) * hw].iter().sum::<f64>() / hw as f64)
                    .collect();
                let hid: Vec<f64> = (0..self.hidden)
                    .map(|j| (b1[j] + (0..r.c).map(|c| w1[j * r.c + c] * pooled[c]).sum::<f64>()).max(0.0))
                    .collect();
                let z: Vec<f64> = (0..self.kernels)
                    .map(|k| {
                        (b2[k] + (0..self.hidden).map(|j| w2[k * self.hidden + j] * hid[j]).sum::<f64>())
                            / self.temperature
                    })
                    .collect();
                let m = z.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
                let pi: Vec<f64> = e.iter().map(|v| v / e.iter().sum::<f64>()).collect();
                let wagg: Vec<f64> =
                    (0..kp).map(|i| (0..self.kernels).map(|k| pi[k] * ker[k * kp + i]).sum()).collect();
                let one = Conv { b: 1, ..*r };
                let xb = &x[b * r.c * hw..(b + 1) * r.c * hw];
                y.extend(if self.transposed { transposed(xb, &wagg, &one) } else { one.forward(xb, &wagg) });
            }
            y
        }
    }

    fn check(conv: Conv, temperature: f32) {
        check_with(conv, temperature, false)
    }

    fn check_with(conv: Conv, temperature: f32, is_transposed: bool) {
        let dev: Cpu = Default::default();
        let (kk, hidden) = (4, (conv.c / 4).max(1));
        let reference =
            Reference { conv, kernels: kk, hidden, temperature: temperature as f64, transposed: is_transposed };
        let r = &reference.conv;
        let s = reference.sizes();
        let total: usize = s.iter().sum();
        let mut v = values(total, 11);
        // Larger FC weights so that the attention differs across samples and kernels.
        for x in &mut v[s[0] + s[1]..] {
            *x *= 3.0;
        }
        let (oh, ow) = if is_transposed {
            ((r.h - 1) * r.stride + r.k - 2 * r.pad, (r.w - 1) * r.stride + r.k - 2 * r.pad)
        } else {
            r.out()
        };
        let rv = values(r.b * r.o * oh * ow, 12);
        let f = |a: &[f64]| a.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let mut at = 0;
        let mut take = |n: usize| {
            let out = f(&v[at..at + n]);
            at += n;
            out
        };
        let x: T4<Cpu> = dev.tensor_from_vec(take(s[0]), (r.b, r.c, r.h, r.w));
        let kernels: T2<Cpu> = dev.tensor_from_vec(take(s[1]), (kk, s[1] / kk));
        let fc1_weight: T2<Cpu> = dev.tensor_from_vec(take(s[2]), (hidden, r.c));
        let fc1_bias: T1<Cpu> = dev.tensor_from_vec(take(s[3]), (hidden,));
        let fc2_weight: T2<Cpu> = dev.tensor_from_vec(take(s[4]), (kk, hidden));
        let fc2_bias: T1<Cpu> = dev.tensor_from_vec(take(s[5]), (kk,));
        let a = AttentionWeights {
            fc1_weight: fc1_weight.leaky_trace(),
            fc1_bias: fc1_bias.leaky_trace(),
            fc2_weight: fc2_weight.leaky_trace(),
            fc2_bias: fc2_bias.leaky_trace(),
        };
        let xt = x.leaky_trace();
        let pi = attention(xt.with_empty_tape(), a, temperature);
        let spec = ConvSpec {
            padding: r.pad,
            groups: r.groups,
            dynamic: true,
            transposed: is_transposed,
            ..ConvSpec::new(r.c, r.o, r.k, r.stride)
        };
        let y = dynamic_conv2d(xt, pi, kernels.leaky_trace(), &spec);
        let want = reference.forward(&v);
        assert!(rel_err(&y.as_vec(), &want) < 1e-5, "forward");
        let rt: T4<Cpu> = dev.tensor_from_vec(f(&rv), (r.b, r.o, oh, ow));
        let grads = (y * rt).sum().backward();
        // Central differences of L = Σ r·y on the f64 reference, per parameter.
        let loss = |v: &[f64]| reference.forward(v).iter().zip(&rv).map(|(a, b)| a * b).sum::<f64>();
        let numeric = central_differences(loss, &v);
        let got: Vec<Vec<f32>> = vec![
            grads.get(&x).as_vec(),
            grads.get(&kernels).as_vec(),
            grads.get(&fc1_weight).as_vec(),
            grads.get(&fc1_bias).as_vec(),
            grads.get(&fc2_weight).as_vec(),
            grads.get(&fc2_bias).as_vec(),
        ];
        let names = ["input", "kernels", "fc1 weight", "fc1 bias", "fc2 weight", "fc2 bias"];
        let mut at = 0;
        for ((g, n), name) in got.iter().zip(s).zip(names) {
            let e = rel_err(g, &numeric[at..at + n]);
            assert!(e < 1e-5, "{name} gradient: relative error {e}");
            at += n;
        }
    }

    #[test]
    fn dynamic_conv_and_all_its_gradients_match_the_f64_reference() {
        check(Conv { b: 3, c: 4, h: 7, w: 5, o: 3, k: 3, stride: 1, pad: 1, groups: 1 }, 1.0);
        check(Conv { b: 2, c: 8, h: 9, w: 7, o: 5, k: 3, stride: 2, pad: 1, groups: 1 }, 30.0);
        check(Conv { b: 2, c: 4, h: 5, w: 7, o: 6, k: 1, stride: 1, pad: 0, groups: 2 }, 3.0);
        check(Conv { b: 2, c: 5, h: 4, w: 3, o: 3, k: 1, stride: 1, pad: 0, groups: 1 }, 2.0);
        check(Conv { b: 3, c: 6, h: 7, w: 9, o: 6, k: 3, stride: 2, pad: 1, groups: 6 }, 3.0);
    }

    #[test]
    fn dynamic_transposed_conv_and_its_gradients_match_the_f64_reference() {
        check_with(Conv { b: 2, c: 4, h: 3, w: 4, o: 3, k: 4, stride: 2, pad: 1, groups: 1 }, 2.0, true);
        check_with(Conv { b: 3, c: 8, h: 2, w: 3, o: 2, k: 4, stride: 2, pad: 1, groups: 1 }, 30.0, true);
    }
}
