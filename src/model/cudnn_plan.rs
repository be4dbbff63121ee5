//! What cuDNN is asked to compute for one convolution layer: its descriptors (dims, padding,
//! stride, dilation, groups; NCHW tensors, KCRS filters, all fp32) and which of cuDNN's three
//! convolution calls plays each part of the layer's forward and backward pass.
//!
//! Plain Rust, so that the mapping is checked without a GPU: the tests run a naive grouped
//! cross-correlation (and its two adjoints) over exactly these descriptor values and compare
//! them with the CPU path.
//!
//! - A regular, grouped or depthwise conv is cuDNN's convolution with `groups` groups.
//! - A transposed conv (IOHW weights) is the backward-data of the regular conv it transposes:
//!   its input plays the output gradient, its weights the filter (K = Cin, C = Cout).
//! - A dynamic conv runs every sample with its own aggregated kernel: the batch becomes one
//!   image of N·Cin channels and the per-sample kernels one filter bank of N·Cout (or, for a
//!   transposed conv, N·Cin) filters in N·groups groups. NCHW memory is unchanged by this view.

use super::blueprint::ConvSpec;

/// A 4-D NCHW tensor or KCRS filter shape as cuDNN takes it.
pub type Dims = [i32; 4];

/// Which cuDNN call computes a layer's output from its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardCall {
    /// `cudnnConvolutionForward(x, w) → y`; the input gradient is `BackwardData(w, dy)` and the
    /// weight gradient `BackwardFilter(x, dy)`.
    Convolution,
    /// `cudnnConvolutionBackwardData(w, x) → y` (a transposed conv); the input gradient is
    /// `Forward(dy, w)` and the weight gradient `BackwardFilter(dy, x)`.
    BackwardData,
}

/// cuDNN's view of one conv layer on one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvPlan {
    pub call: ForwardCall,
    /// The regular convolution's input ("x" of cuDNN's descriptors): the layer's input for
    /// `Convolution`, its output for `BackwardData`.
    pub conv_input: Dims,
    /// The regular convolution's output ("y"): the layer's output for `Convolution`, its input
    /// for `BackwardData`.
    pub conv_output: Dims,
    pub filter: Dims,
    pub pad: [i32; 2],
    pub stride: [i32; 2],
    pub dilation: [i32; 2],
    pub groups: i32,
}

impl ConvPlan {
    /// The plan of `spec` on a batch of `batch` inputs of `height × width`; a dynamic conv's
    /// filter is the per-sample aggregated kernels, sample after sample.
    pub fn new(spec: &ConvSpec, batch: usize, height: usize, width: usize) -> ConvPlan {
        let out = spec.out_size(crate::config::Size::new(width, height));
        let (k, p, s) = (spec.kernel as i32, spec.padding as i32, spec.stride as i32);
        // A dynamic conv is one image of all samples' channels, one group set per sample.
        let (images, per_image) = if spec.dynamic { (1, batch as i32) } else { (batch as i32, 1) };
        let (cin, cout, groups) = (spec.cin as i32, spec.cout as i32, spec.groups as i32);
        let layer_in = [images, per_image * cin, height as i32, width as i32];
        let layer_out = [images, per_image * cout, out.height as i32, out.width as i32];
        let (call, conv_input, conv_output, filter) = if spec.transposed {
            // IOHW weights: the regular conv maps Cout channels to Cin (K = Cin, C/groups = Cout/groups).
            (ForwardCall::BackwardData, layer_out, layer_in, [per_image * cin, cout / groups, k, k])
        } else {
            (ForwardCall::Convolution, layer_in, layer_out, [per_image * cout, cin / groups, k, k])
        };
        ConvPlan {
            call,
            conv_input,
            conv_output,
            filter,
            pad: [p, p],
            stride: [s, s],
            dilation: [1, 1],
            groups: per_image * groups,
        }
    }

    /// cuDNN's output size of the regular convolution (`cudnnGetConvolution2dForwardOutputDim`).
    pub fn output_dims(&self) -> Dims {
        let [n, _, h, w] = self.conv_input;
        let along = |len: i32, i: usize| {
            let span = self.dilation[i] * (self.filter[2 + i] - 1) + 1;
            (len + 2 * self.pad[i] - span) / self.stride[i] + 1
        };
        [n, self.filter[0], along(h, 0), along(w, 1)]
    }

    /// Whether the descriptors agree with each other as cuDNN requires.
    pub fn is_consistent(&self) -> bool {
        let g = self.groups;
        g > 0
            && self.filter[0] % g == 0
            && self.conv_input[1] == self.filter[1] * g
            && self.output_dims() == self.conv_output
    }
}

/// The regular convolution of a plan, computed naively as cuDNN defines it (cross-correlation;
/// every dim read from the plan), and its two adjoints. For tests and the GPU self-check.
pub mod naive {
    use super::ConvPlan;

    fn count(d: [i32; 4]) -> usize {
        d.iter().map(|&v| v as usize).product()
    }

    /// Visits every (input index, filter index, output index) that the convolution multiplies.
    fn each_tap(plan: &ConvPlan, mut f: impl FnMut(usize, usize, usize)) {
        let [n, c, h, w] = plan.conv_input.map(|v| v as usize);
        let [k, cg, r, s] = plan.filter.map(|v| v as usize);
        let [_, _, ho, wo] = plan.conv_output.map(|v| v as usize);
        let g = plan.groups as usize;
        let (kg, [ph, pw], [sh, sw], [dh, dw]) =
            (k / g, plan.pad.map(|v| v as isize), plan.stride.map(|v| v as usize), plan.dilation.map(|v| v as usize));
        for b in 0..n {
            for o in 0..k {
                let group = o / kg;
                for oy in 0..ho {
                    for ox in 0..wo {
                        let out = ((b * k + o) * ho + oy) * wo + ox;
                        for ci in 0..cg {
                            let chan = group * cg + ci;
                            for ky in 0..r {
                                for kx in 0..s {
                                    let y = (oy * sh + ky * dh) as isize - ph;
                                    let x = (ox * sw + kx * dw) as isize - pw;
                                    if y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w {
                                        let inp = ((b * c + chan) * h + y as usize) * w + x as usize;
                                        f(inp, ((o * cg + ci) * r + ky) * s + kx, out);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// y = conv(x, w).
    pub fn forward(plan: &ConvPlan, x: &[f64], w: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; count(plan.conv_output)];
        each_tap(plan, |i, f, o| y[o] += x[i] * w[f]);
        y
    }

    /// dx = convᵀ(dy, w): cuDNN's backward-data.
    pub fn backward_data(plan: &ConvPlan, dy: &[f64], w: &[f64]) -> Vec<f64> {
        let mut dx = vec![0.0; count(plan.conv_input)];
        each_tap(plan, |i, f, o| dx[i] += dy[o] * w[f]);
        dx
    }

    /// dw = Σ x ⊗ dy: cuDNN's backward-filter.
    pub fn backward_filter(plan: &ConvPlan, x: &[f64], dy: &[f64]) -> Vec<f64> {
        let mut dw = vec![0.0; count(plan.filter)];
        each_tap(plan, |i, f, o| dw[f] += x[i] * dy[o]);
        dw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::ops;
    use crate::model::layers::{init_rng, random_values};
    use dfdx::prelude::*;

    fn f64s(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&x| x as f64).collect()
    }

    fn close(got: &[f32], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
        assert!(worst <= 1e-4 * scale, "{what}: off by {worst} (scale {scale})");
    }

    /// The per-sample kernels Σₖ π[b, k]·Wₖ, sample after sample: the dynamic conv's filter.
    fn aggregated(pi: &[f32], bank: &[f32], kernels: usize) -> Vec<f64> {
        let per = bank.len() / kernels;
        pi.chunks(kernels)
            .flat_map(|a| {
                (0..per).map(move |j| (0..kernels).map(|k| a[k] as f64 * bank[k * per + j] as f64).sum::<f64>())
            })
            .collect()
    }

    /// The CPU path's output and gradients (input, weights, attention) for a random input, and
    /// what the naive convolution over `ConvPlan::new`'s descriptors gives for the same values.
    fn check(spec: ConvSpec, batch: usize, h: usize, w: usize) {
        let what = format!("{spec:?} on {batch}×{h}×{w}");
        let plan = ConvPlan::new(&spec, batch, h, w);
        assert!(plan.is_consistent(), "{what}: {plan:?}");
        let dev = Cpu::default();
        let mut rng = init_rng(7);
        let kernels = if spec.dynamic { 3 } else { 1 };
        let xv = random_values(&mut rng, batch * spec.cin * h * w);
        let wv = random_values(&mut rng, kernels * spec.kernel_params());
        let piv: Vec<f32> = random_values(&mut rng, batch * kernels).iter().map(|v| v.abs() + 0.1).collect();
        let x: Tensor<(usize, usize, usize, usize), f32, Cpu> =
            dev.tensor_from_vec(xv.clone(), (batch, spec.cin, h, w));
        let wt: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(wv.clone(), (wv.len(),));
        let pi: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(piv.clone(), (batch, kernels));
        let y = if spec.dynamic {
            ops::dynamic_conv(x.leaky_trace(), pi.leaky_trace(), wt.leaky_trace(), &spec)
        } else {
            ops::conv(x.leaky_trace(), wt.leaky_trace(), &spec)
        };
        let (yv, shape) = (y.as_vec(), *y.shape());
        let dyv = random_values(&mut rng, shape.num_elements());
        let grads = (y * dev.tensor_from_vec(dyv.clone(), shape)).sum().backward();
        let (gx, gw) = (grads.get(&x).as_vec(), grads.get(&wt).as_vec());

        // The filter cuDNN gets: the weights, or the per-sample aggregated kernels.
        let filter = if spec.dynamic { aggregated(&piv, &wv, kernels) } else { f64s(&wv) };
        let (xd, dyd) = (f64s(&xv), f64s(&dyv));
        let (want_y, want_gx, want_gfilter) = match plan.call {
            ForwardCall::Convolution => (
                naive::forward(&plan, &xd, &filter),
                naive::backward_data(&plan, &dyd, &filter),
                naive::backward_filter(&plan, &xd, &dyd),
            ),
            ForwardCall::BackwardData => (
                naive::backward_data(&plan, &xd, &filter),
                naive::forward(&plan, &dyd, &filter),
                naive::backward_filter(&plan, &dyd, &xd),
            ),
        };
        close(&yv, &want_y, &format!("{what}: output"));
        close(&gx, &want_gx, &format!("{what}: input gradient"));
        if spec.dynamic {
            // The bank's gradient: each sample's filter gradient spread back by its π.
            let per = spec.kernel_params();
            let want: Vec<f64> = (0..kernels * per)
                .map(|i| (0..batch).map(|b| piv[b * kernels + i / per] as f64 * want_gfilter[b * per + i % per]).sum())
                .collect();
            close(&gw, &want, &format!("{what}: kernel bank gradient"));
            // And π's: each sample's filter gradient against each kernel of the bank.
            let gpi = grads.get(&pi).as_vec();
            let want: Vec<f64> = (0..batch * kernels)
                .map(|i| {
                    let (b, k) = (i / kernels, i % kernels);
                    (0..per).map(|j| want_gfilter[b * per + j] * wv[k * per + j] as f64).sum()
                })
                .collect();
            close(&gpi, &want, &format!("{what}: attention gradient"));
        } else {
            close(&gw, &want_gfilter, &format!("{what}: weight gradient"));
        }
    }

    fn conv(cin: usize, cout: usize, k: usize, s: usize) -> ConvSpec {
        ConvSpec::new(cin, cout, k, s)
    }

    #[test]
    fn dense_grouped_and_depthwise_convs_map_onto_cudnns_convolution() {
        for dynamic in [false, true] {
            for stride in [1, 2] {
                check(conv(3, 5, 3, stride).dynamic(dynamic), 2, 9, 7);
                check(conv(4, 6, 1, stride).dynamic(dynamic), 3, 6, 5);
                check(ConvSpec { groups: 2, ..conv(4, 6, 3, stride) }.dynamic(dynamic), 2, 7, 8);
                check(ConvSpec::depthwise(6, 3, stride).dynamic(dynamic), 2, 8, 6);
                check(ConvSpec::depthwise(4, 5, stride).dynamic(dynamic), 2, 9, 9);
            }
            check(conv(3, 4, 7, 2).dynamic(dynamic), 2, 16, 12);
        }
    }

    #[test]
    fn transposed_convs_map_onto_cudnns_backward_data() {
        for dynamic in [false, true] {
            let deconv = ConvSpec { transposed: true, padding: 1, ..conv(6, 4, 4, 2) };
            check(deconv.dynamic(dynamic), 2, 5, 4);
            check(ConvSpec { transposed: true, padding: 1, ..conv(3, 5, 3, 1) }.dynamic(dynamic), 3, 4, 6);
        }
    }

    #[test]
    fn descriptors_by_hand() {
        // DY-ResNet-18's 3×3 stride-2 conv, 64 → 128, on a batch of 32 at 64×48.
        let spec = conv(64, 128, 3, 2).dynamic(true);
        let plan = ConvPlan::new(&spec, 32, 64, 48);
        assert_eq!(plan.call, ForwardCall::Convolution);
        assert_eq!(plan.conv_input, [1, 32 * 64, 64, 48]);
        assert_eq!(plan.filter, [32 * 128, 64, 3, 3]);
        assert_eq!(plan.conv_output, [1, 32 * 128, 32, 24]);
        assert_eq!((plan.groups, plan.pad, plan.stride), (32, [1, 1], [2, 2]));
        // The head's 4×4 stride-2 deconv, 256 → 256, static: the backward-data of a conv.
        let spec = ConvSpec { transposed: true, padding: 1, ..conv(256, 256, 4, 2) };
        let plan = ConvPlan::new(&spec, 8, 8, 6);
        assert_eq!(plan.call, ForwardCall::BackwardData);
        assert_eq!((plan.conv_input, plan.conv_output), ([8, 256, 16, 12], [8, 256, 8, 6]));
        assert_eq!((plan.filter, plan.groups), ([256, 256, 4, 4], 1));
        // A depthwise conv: one group per channel.
        let plan = ConvPlan::new(&ConvSpec::depthwise(96, 3, 1), 4, 10, 10);
        assert_eq!((plan.filter, plan.groups), ([96, 1, 3, 3], 96));
    }
}
