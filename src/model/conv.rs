//! Convolution on dfdx 0.13 with runtime shapes, made of public tensor ops only (gather,
//! reshape, permute, matmul), so it runs on every dfdx device and dfdx differentiates it.
//! Layout: NCHW activations, OIHW weights (PyTorch's).
//!
//! Parameters must be on the input's tape before they are reshaped or permuted
//! (`w.retaped::<Tp>()`): an op on a tensor without a tape is not recorded, and the gradient
//! would stop at the transformed copy instead of reaching the parameter.

use dfdx::prelude::*;

/// A 4-D activation or weight tensor with runtime dimensions.
pub type T4<D, Tp = NoneTape> = Tensor<(usize, usize, usize, usize), f32, D, Tp>;

/// Geometry of a 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvGeometry {
    pub fn out(&self, h: usize, w: usize) -> (usize, usize) {
        let k = self.kernel;
        ((h + 2 * self.padding - k) / self.stride + 1, (w + 2 * self.padding - k) / self.stride + 1)
    }
}

/// Row indices for im2col over a channels-last (B·H·W, C) matrix with `pad_rows` zero rows
/// appended: for every output pixel (b, oy, ox) and tap (ky, kx), the input row it reads, or one
/// of the zero rows when the tap falls in the padding (spread over the zero rows so that the
/// scatter-add of the backward pass does not pile onto one row).
pub fn im2col_rows(b: usize, h: usize, w: usize, g: ConvGeometry, pad_rows: usize) -> Vec<usize> {
    let (oh, ow) = g.out(h, w);
    let k = g.kernel;
    let zero0 = b * h * w;
    let mut idx = Vec::with_capacity(b * oh * ow * k * k);
    for n in 0..b {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..k {
                    for kx in 0..k {
                        let y = (oy * g.stride + ky) as isize - g.padding as isize;
                        let x = (ox * g.stride + kx) as isize - g.padding as isize;
                        if y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w {
                            idx.push(n * h * w + y as usize * w + x as usize);
                        } else {
                            idx.push(zero0 + (idx.len() % pad_rows));
                        }
                    }
                }
            }
        }
    }
    idx
}

/// Rows for a transposed convolution, as for `im2col_rows`: output (oy, ox) with tap (ky, kx)
/// reads input ((oy + p − ky)/s, (ox + p − kx)/s) when both divide exactly and are inside.
pub fn transposed_rows(b: usize, h: usize, w: usize, g: ConvGeometry, pad_rows: usize) -> Vec<usize> {
    let (k, s, p) = (g.kernel, g.stride, g.padding);
    let (oh, ow) = ((h - 1) * s + k - 2 * p, (w - 1) * s + k - 2 * p);
    let zero0 = b * h * w;
    let at = |o: usize, t: usize, n: usize| -> Option<usize> {
        let v = o as isize + p as isize - t as isize;
        (v >= 0 && v % s as isize == 0 && ((v / s as isize) as usize) < n).then(|| (v / s as isize) as usize)
    };
    let mut idx = Vec::with_capacity(b * oh * ow * k * k);
    for n in 0..b {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..k {
                    for kx in 0..k {
                        match (at(oy, ky, h), at(ox, kx, w)) {
                            (Some(y), Some(x)) => idx.push(n * h * w + y * w + x),
                            _ => idx.push(zero0 + idx.len() % pad_rows),
                        }
                    }
                }
            }
        }
    }
    idx
}

/// Zero rows appended for padding taps.
const PAD_ROWS: usize = 64;

/// What an index tensor is for and the geometry it was built for.
type IndexKey = (&'static str, [usize; 7]);

/// Index tensors already on a device, per device type and geometry, and how many indices they
/// hold together.
#[derive(Default)]
struct IndexCache {
    tensors: std::collections::HashMap<(std::any::TypeId, IndexKey), Box<dyn std::any::Any>>,
    indices: usize,
}

/// At most this many cached indices (1 GiB of u64): inference meets a new batch size at the
/// end of every chunk of crops, and DY-ResNet-18 at 256×192 needs 0.83 M indices per sample.
const INDEX_CACHE_LIMIT: usize = 1 << 27;

impl IndexCache {
    /// Keeps `value` (`n` indices), first dropping everything when the total would pass `limit`;
    /// a tensor larger than `limit` alone is not kept.
    fn insert(&mut self, key: (std::any::TypeId, IndexKey), value: Box<dyn std::any::Any>, n: usize, limit: usize) {
        if self.indices + n > limit {
            self.tensors.clear();
            self.indices = 0;
        }
        if n <= limit {
            self.tensors.insert(key, value);
            self.indices += n;
        }
    }
}

thread_local! {
    static INDEX_CACHE: std::cell::RefCell<IndexCache> = Default::default();
}

/// The index tensor for `key` on `dev`, built by `build` the first time only: building the
/// im2col indices on the host and copying them to the GPU on every forward took longer than the
/// GPU's own work. One process drives one GPU, so the device type and the
/// geometry identify a tensor; the cache is dropped whole when it would pass
/// `INDEX_CACHE_LIMIT` indices.
pub(crate) fn cached_index<D: Device<f32> + 'static>(
    dev: &D,
    key: IndexKey,
    build: impl FnOnce() -> Vec<usize>,
) -> Tensor<(usize,), usize, D> {
    cached_index_shaped(dev, key, || {
        let idx = build();
        let n = idx.len();
        (idx, (n,))
    })
}

/// `cached_index` for an index tensor of any shape.
pub(crate) fn cached_index_shaped<D: Device<f32> + 'static, S: Shape + 'static>(
    dev: &D,
    key: IndexKey,
    build: impl FnOnce() -> (Vec<usize>, S),
) -> Tensor<S, usize, D> {
    let full_key = (std::any::TypeId::of::<D>(), key);
    INDEX_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(t) = cache.tensors.get(&full_key).and_then(|t| t.downcast_ref::<Tensor<S, usize, D>>()) {
            return t.clone();
        }
        let (idx, shape) = build();
        let n = idx.len();
        let t = dev.tensor_from_vec(idx, shape);
        cache.insert(full_key, Box::new(t.clone()), n, INDEX_CACHE_LIMIT);
        t
    })
}

fn geometry_key(b: usize, h: usize, w: usize, g: ConvGeometry) -> [usize; 7] {
    [b, h, w, g.kernel, g.stride, g.padding, PAD_ROWS]
}

/// The cached `im2col_rows` on `dev` (convolutions and max-pool share them).
fn im2col_index<D: Device<f32> + 'static>(
    dev: &D,
    b: usize,
    h: usize,
    w: usize,
    g: ConvGeometry,
) -> Tensor<(usize,), usize, D> {
    cached_index(dev, ("im2col", geometry_key(b, h, w, g)), || im2col_rows(b, h, w, g, PAD_ROWS))
}

/// Gathers rows `idx` of x in channels-last form, with `PAD_ROWS` rows of `fill` appended:
/// (idx.len(), C).
fn gather_rows<D: Device<f32> + 'static, Tp: Tape<f32, D>>(
    x: T4<D, Tp>,
    idx: Tensor<(usize,), usize, D>,
    fill: f32,
) -> Tensor<(usize, usize), f32, D, Tp> {
    let dev = x.device().clone();
    let (b, c, h, w) = *x.shape();
    let rows = x.permute::<_, Axes4<0, 2, 3, 1>>().reshape_like(&(b * h * w, c));
    let pad: Tensor<(usize, usize), f32, D> = dev.ones_like(&(PAD_ROWS, c)) * fill;
    let padded = (rows, pad).concat_along(Axis::<0>);
    padded.gather(idx)
}

/// im2col columns (B·Ho·Wo, k·k·C), ordered (ky, kx, c) within a row.
pub fn im2col<D: Device<f32> + 'static, Tp: Tape<f32, D>>(
    x: T4<D, Tp>,
    g: ConvGeometry,
) -> Tensor<(usize, usize), f32, D, Tp> {
    let (b, c, h, w) = *x.shape();
    let (oh, ow) = g.out(h, w);
    if g.kernel == 1 && g.stride == 1 && g.padding == 0 {
        // A 1×1 convolution reads each pixel once: its columns are the channels-last rows.
        return x.permute::<_, Axes4<0, 2, 3, 1>>().reshape_like(&(b * h * w, c));
    }
    let idx = im2col_index(x.device(), b, h, w, g);
    gather_rows(x, idx, 0.0).reshape_like(&(b * oh * ow, g.kernel * g.kernel * c))
}

/// Output size of a transposed convolution.
pub fn transposed_out(h: usize, w: usize, g: ConvGeometry) -> (usize, usize) {
    ((h - 1) * g.stride + g.kernel - 2 * g.padding, (w - 1) * g.stride + g.kernel - 2 * g.padding)
}

/// Columns of a transposed convolution: (B·Ho·Wo, k·k·C), ordered (ky, kx, c).
pub fn transposed_cols<D: Device<f32> + 'static, Tp: Tape<f32, D>>(
    x: T4<D, Tp>,
    g: ConvGeometry,
) -> Tensor<(usize, usize), f32, D, Tp> {
    let (b, c, h, w) = *x.shape();
    let (oh, ow) = transposed_out(h, w, g);
    let idx =
        cached_index(x.device(), ("transposed", geometry_key(b, h, w, g)), || transposed_rows(b, h, w, g, PAD_ROWS));
    gather_rows(x, idx, 0.0).reshape_like(&(b * oh * ow, g.kernel * g.kernel * c))
}

/// Transposed convolution: x (B, Cin, H, W) with w (Cin, Cout, k, k) (PyTorch's layout) →
/// (B, Cout, (H−1)·s + k − 2p, …).
pub fn conv_transpose2d<D, Tp, R>(x: T4<D, Tp>, w: T4<D, R>, stride: usize, padding: usize) -> T4<D, Tp>
where
    D: Device<f32> + 'static,
    Tp: Tape<f32, D> + Merge<R>,
    R: Tape<f32, D>,
{
    let (b, _, h, wd) = *x.shape();
    let (ci, co, k, _) = *w.shape();
    let g = ConvGeometry { kernel: k, stride, padding };
    let (oh, ow) = transposed_out(h, wd, g);
    let wm = w.permute::<_, Axes4<2, 3, 0, 1>>().reshape_like(&(k * k * ci, co));
    transposed_cols(x, g).matmul(wm).reshape_like(&(b, oh, ow, co)).permute::<_, Axes4<0, 3, 1, 2>>()
}

/// Max-pool with a k×k window (padding never wins: it reads −∞).
pub fn max_pool2d<D: Device<f32> + 'static, Tp: Tape<f32, D>>(
    x: T4<D, Tp>,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> T4<D, Tp> {
    let (b, c, h, w) = *x.shape();
    let g = ConvGeometry { kernel, stride, padding };
    let (oh, ow) = g.out(h, w);
    let idx = im2col_index(x.device(), b, h, w, g);
    let cols = gather_rows(x, idx, f32::NEG_INFINITY).reshape_like(&(b * oh * ow, kernel * kernel, c));
    let out: Tensor<(usize, usize), f32, D, Tp> = cols.max::<_, Axis<1>>();
    out.reshape_like(&(b, oh, ow, c)).permute::<_, Axes4<0, 3, 1, 2>>()
}

/// Dense convolution (groups = 1): x (B, C, H, W) ⊛ w (O, C, k, k) → (B, O, Ho, Wo).
pub fn conv2d<D, Tp, R>(x: T4<D, Tp>, w: T4<D, R>, stride: usize, padding: usize) -> T4<D, Tp>
where
    D: Device<f32> + 'static,
    Tp: Tape<f32, D> + Merge<R>,
    R: Tape<f32, D>,
{
    let (b, _, h, wd) = *x.shape();
    let (o, c, k, _) = *w.shape();
    let g = ConvGeometry { kernel: k, stride, padding };
    let (oh, ow) = g.out(h, wd);
    let wm = w.permute::<_, Axes4<2, 3, 1, 0>>().reshape_like(&(k * k * c, o));
    let out = im2col(x, g).matmul(wm);
    out.reshape_like(&(b, oh, ow, o)).permute::<_, Axes4<0, 3, 1, 2>>()
}

/// Depthwise convolution: x (B, C, H, W) ⊛ w (C, 1, k, k), each channel with its own kernel;
/// a product with the im2col columns summed over the k·k taps.
pub fn depthwise_conv2d<D, Tp, R>(x: T4<D, Tp>, w: T4<D, R>, stride: usize, padding: usize) -> T4<D, Tp>
where
    D: Device<f32> + 'static,
    Tp: Tape<f32, D> + Merge<R>,
    R: Tape<f32, D>,
{
    let (b, c, h, wd) = *x.shape();
    let k = w.shape().2;
    let g = ConvGeometry { kernel: k, stride, padding };
    let (oh, ow) = g.out(h, wd);
    let n = b * oh * ow;
    let cols = im2col(x, g).reshape_like(&(n, k * k, c));
    let taps = w.reshape_like(&(c, k * k)).permute::<_, Axes2<1, 0>>().broadcast_like::<_, Axis<0>>(&(n, k * k, c));
    let out: Tensor<(usize, usize), f32, D, Tp> = (cols * taps).sum::<_, Axis<1>>();
    out.reshape_like(&(b, oh, ow, c)).permute::<_, Axes4<0, 3, 1, 2>>()
}

/// Index that spreads a grouped kernel (O, C/g, k, k) over a dense (O, C, k, k) one; entries
/// outside the group read the appended zero at position O·(C/g)·k·k.
pub fn group_expansion(o: usize, c: usize, k: usize, groups: usize) -> Vec<usize> {
    let (cg, og) = (c / groups, o / groups);
    let zero = o * cg * k * k;
    let mut idx = Vec::with_capacity(o * c * k * k);
    for oi in 0..o {
        for ci in 0..c {
            let inside = ci / cg == oi / og;
            for t in 0..k * k {
                idx.push(if inside { (oi * cg + ci % cg) * k * k + t } else { zero });
            }
        }
    }
    idx
}

/// Any grouped convolution: groups = 1 dense, groups = C = O depthwise, otherwise the grouped
/// kernel is spread into a dense one (zeros across groups) — simple and exact, meant for small
/// group counts.
pub fn grouped_conv2d<D, Tp, R>(x: T4<D, Tp>, w: T4<D, R>, stride: usize, padding: usize, groups: usize) -> T4<D, Tp>
where
    D: Device<f32> + 'static,
    Tp: Tape<f32, D> + Merge<R>,
    R: Tape<f32, D>,
{
    let c = x.shape().1;
    let (o, cg, k, _) = *w.shape();
    assert!(
        groups >= 1 && c % groups == 0 && o % groups == 0 && cg * groups == c,
        "channels {c} → {o} do not split into {groups} groups"
    );
    if groups == 1 {
        return conv2d(x, w, stride, padding);
    }
    if groups == c && o == c {
        return depthwise_conv2d(x, w, stride, padding);
    }
    let dev = w.device().clone();
    let n = o * cg * k * k;
    let flat = w.reshape_like(&(n,));
    let zero: Tensor<(usize,), f32, D> = dev.zeros_like(&(1,));
    let padded = (flat, zero).concat_along(Axis::<0>);
    let idx = cached_index(&dev, ("groups", [o, c, k, groups, 0, 0, 0]), || group_expansion(o, c, k, groups));
    let dense = padded.gather(idx).reshape_like(&(o, c, k, k));
    conv2d(x, dense, stride, padding)
}

/// ReLU6(x + 3) / 6, PyTorch's `hardsigmoid`.
pub fn hardsigmoid<S: Shape, D: Device<f32> + 'static, Tp: Tape<f32, D>>(
    x: Tensor<S, f32, D, Tp>,
) -> Tensor<S, f32, D, Tp> {
    (x + 3.0).clamp(0.0, 6.0) / 6.0
}

/// x · ReLU6(x + 3) / 6, PyTorch's `hardswish` (gradient (2x + 3)/6 between −3 and 3).
pub fn hardswish<S: Shape, D: Device<f32> + 'static, Tp: Tape<f32, D> + Merge<Tp>>(
    x: Tensor<S, f32, D, Tp>,
) -> Tensor<S, f32, D, Tp> {
    let gate = hardsigmoid(x.with_empty_tape());
    x * gate
}

/// Bilinear ×2 upsampling along the last axis (align_corners = False): output 2i reads
/// 0.75·x[i] + 0.25·x[i − 1], output 2i + 1 reads 0.75·x[i] + 0.25·x[i + 1], clamped at the edges.
fn upsample2x_last<D: Device<f32> + 'static, Tp: Tape<f32, D> + Merge<Tp>>(x: T4<D, Tp>) -> T4<D, Tp> {
    let dev = x.device().clone();
    let (b, c, h, w) = *x.shape();
    let rows = x.permute::<_, Axes4<3, 0, 1, 2>>().reshape_like(&(w, b * c * h));
    let near = cached_index(&dev, ("upsample_near", [w, 0, 0, 0, 0, 0, 0]), || (0..2 * w).map(|j| j / 2).collect());
    let far = cached_index(&dev, ("upsample_far", [w, 0, 0, 0, 0, 0, 0]), || {
        (0..2 * w).map(|j| if j % 2 == 0 { (j / 2).saturating_sub(1) } else { (j / 2 + 1).min(w - 1) }).collect()
    });
    let a: Tensor<(usize, usize), f32, D, Tp> = rows.with_empty_tape().gather(near);
    let f: Tensor<(usize, usize), f32, D, Tp> = rows.gather(far);
    (a * 0.75 + f * 0.25).reshape_like(&(2 * w, b, c, h)).permute::<_, Axes4<1, 2, 3, 0>>()
}

/// Bilinear ×2 upsampling of (B, C, H, W), PyTorch's `interpolate(scale_factor=2,
/// mode="bilinear", align_corners=False)`.
pub fn upsample2x<D: Device<f32> + 'static, Tp: Tape<f32, D> + Merge<Tp>>(x: T4<D, Tp>) -> T4<D, Tp> {
    let wide = upsample2x_last(x);
    let tall = upsample2x_last(wide.permute::<_, Axes4<0, 1, 3, 2>>());
    tall.permute::<_, Axes4<0, 1, 3, 2>>()
}

#[cfg(test)]
pub(crate) mod reference {
    //! Plain-loop f64 convolution and its gradients: the independent reference for tests.

    pub struct Conv {
        pub b: usize,
        pub c: usize,
        pub h: usize,
        pub w: usize,
        pub o: usize,
        pub k: usize,
        pub stride: usize,
        pub pad: usize,
        pub groups: usize,
    }

    impl Conv {
        pub fn out(&self) -> (usize, usize) {
            ((self.h + 2 * self.pad - self.k) / self.stride + 1, (self.w + 2 * self.pad - self.k) / self.stride + 1)
        }

        /// Calls f(b, o, oy, ox, c, ky, kx, x_index) for every multiply of the convolution.
        fn each(&self, mut f: impl FnMut(usize, usize, usize, usize, usize, usize, usize, usize)) {
            let (oh, ow) = self.out();
            let (cg, og) = (self.c / self.groups, self.o / self.groups);
            for b in 0..self.b {
                for o in 0..self.o {
                    let grp = o / og;
                    for oy in 0..oh {
                        for ox in 0..ow {
                            for ci in 0..cg {
                                let c = grp * cg + ci;
                                for ky in 0..self.k {
                                    for kx in 0..self.k {
                                        let y = (oy * self.stride + ky) as isize - self.pad as isize;
                                        let x = (ox * self.stride + kx) as isize - self.pad as isize;
                                        if y < 0 || x < 0 || y as usize >= self.h || x as usize >= self.w {
                                            continue;
                                        }
                                        let xi = ((b * self.c + c) * self.h + y as usize) * self.w + x as usize;
                                        f(b, o, oy, ox, ci, ky, kx, xi);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        fn wi(&self, o: usize, ci: usize, ky: usize, kx: usize) -> usize {
            ((o * (self.c / self.groups) + ci) * self.k + ky) * self.k + kx
        }

        fn oi(&self, b: usize, o: usize, oy: usize, ox: usize) -> usize {
            let (oh, ow) = self.out();
            ((b * self.o + o) * oh + oy) * ow + ox
        }

        pub fn forward(&self, x: &[f64], w: &[f64]) -> Vec<f64> {
            let (oh, ow) = self.out();
            let mut y = vec![0.0; self.b * self.o * oh * ow];
            self.each(|b, o, oy, ox, ci, ky, kx, xi| y[self.oi(b, o, oy, ox)] += x[xi] * w[self.wi(o, ci, ky, kx)]);
            y
        }

        /// Gradients of L = Σ r·y with respect to x and w.
        pub fn backward(&self, x: &[f64], w: &[f64], r: &[f64]) -> (Vec<f64>, Vec<f64>) {
            let mut gx = vec![0.0; x.len()];
            let mut gw = vec![0.0; w.len()];
            self.each(|b, o, oy, ox, ci, ky, kx, xi| {
                let g = r[self.oi(b, o, oy, ox)];
                gx[xi] += g * w[self.wi(o, ci, ky, kx)];
                gw[self.wi(o, ci, ky, kx)] += g * x[xi];
            });
            (gx, gw)
        }
    }

    /// Deterministic values in [-1, 1).
    pub fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    /// ∂loss/∂v by central differences (step 1e-6) on an f64 function.
    pub fn central_differences(loss: impl Fn(&[f64]) -> f64, v: &[f64]) -> Vec<f64> {
        (0..v.len())
            .map(|i| {
                let (mut p, mut m) = (v.to_vec(), v.to_vec());
                p[i] += 1e-6;
                m[i] -= 1e-6;
                (loss(&p) - loss(&m)) / 2e-6
            })
            .collect()
    }

    /// Largest |a − b| relative to the largest |b| (the tensors' scale).
    pub fn rel_err(a: &[f32], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
        a.iter().zip(b).map(|(x, y)| (*x as f64 - y).abs()).fold(0.0, f64::max) / scale
    }
}

#[cfg(test)]
mod tests {
    use super::reference::{rel_err, values, Conv};
    use super::*;

    fn check(r: Conv) {
        let dev: Cpu = Default::default();
        let (oh, ow) = r.out();
        let xv = values(r.b * r.c * r.h * r.w, 1);
        let wv = values(r.o * r.c / r.groups * r.k * r.k, 2);
        let rv = values(r.b * r.o * oh * ow, 3);
        let f32v = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let x: T4<Cpu> = dev.tensor_from_vec(f32v(&xv), (r.b, r.c, r.h, r.w));
        let w: T4<Cpu> = dev.tensor_from_vec(f32v(&wv), (r.o, r.c / r.groups, r.k, r.k));
        let rt: T4<Cpu> = dev.tensor_from_vec(f32v(&rv), (r.b, r.o, oh, ow));
        let y = grouped_conv2d(x.leaky_trace(), w.leaky_trace(), r.stride, r.pad, r.groups);
        let want = r.forward(&xv, &wv);
        assert!(rel_err(&y.as_vec(), &want) < 1e-5, "forward");
        let grads = (y * rt).sum().backward();
        let (gx, gw) = r.backward(&xv, &wv, &rv);
        assert!(rel_err(&grads.get(&x).as_vec(), &gx) < 1e-5, "input gradient");
        assert!(rel_err(&grads.get(&w).as_vec(), &gw) < 1e-5, "weight gradient");
    }

    /// f64 transposed conv: every input pixel scatters w[ci, co] into the output.
    fn transposed_reference(
        x: &[f64],
        w: &[f64],
        [b, ci, h, wd]: [usize; 4],
        co: usize,
        k: usize,
        s: usize,
        p: usize,
    ) -> Vec<f64> {
        let (oh, ow) = ((h - 1) * s + k - 2 * p, (wd - 1) * s + k - 2 * p);
        let mut y = vec![0.0; b * co * oh * ow];
        for n in 0..b {
            for c in 0..ci {
                for iy in 0..h {
                    for ix in 0..wd {
                        for o in 0..co {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let (oy, ox) =
                                        ((iy * s + ky) as isize - p as isize, (ix * s + kx) as isize - p as isize);
                                    if oy >= 0 && ox >= 0 && (oy as usize) < oh && (ox as usize) < ow {
                                        y[((n * co + o) * oh + oy as usize) * ow + ox as usize] +=
                                            x[((n * ci + c) * h + iy) * wd + ix] * w[((c * co + o) * k + ky) * k + kx];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        y
    }

    #[test]
    fn transposed_conv_and_gradients_match_the_f64_reference() {
        let dev: Cpu = Default::default();
        for &(b, ci, h, w, co, k, s, p) in &[
            (2usize, 3usize, 5usize, 4usize, 4usize, 4usize, 2usize, 1usize),
            (1, 2, 3, 5, 3, 3, 2, 1),
            (2, 4, 4, 3, 2, 4, 2, 1),
        ] {
            let xv = values(b * ci * h * w, 31);
            let wv = values(ci * co * k * k, 32);
            let want = transposed_reference(&xv, &wv, [b, ci, h, w], co, k, s, p);
            let f = |a: &[f64]| a.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let x: T4<Cpu> = dev.tensor_from_vec(f(&xv), (b, ci, h, w));
            let wt: T4<Cpu> = dev.tensor_from_vec(f(&wv), (ci, co, k, k));
            let y = conv_transpose2d(x.leaky_trace(), wt.leaky_trace(), s, p);
            assert!(rel_err(&y.as_vec(), &want) < 1e-5, "forward");
            let r = values(want.len(), 33);
            let (oh, ow) = ((h - 1) * s + k - 2 * p, (w - 1) * s + k - 2 * p);
            let grads = (y * dev.tensor_from_vec(f(&r), (b, co, oh, ow))).sum().backward();
            // L = Σ r·y is linear: the gradients are the reference applied to unit vectors.
            let loss = |xv: &[f64], wv: &[f64]| {
                transposed_reference(xv, wv, [b, ci, h, w], co, k, s, p).iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
            };
            let unit = |n: usize, i: usize| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect::<Vec<f64>>();
            let gx: Vec<f64> = (0..xv.len()).map(|i| loss(&unit(xv.len(), i), &wv)).collect();
            let gw: Vec<f64> = (0..wv.len()).map(|i| loss(&xv, &unit(wv.len(), i))).collect();
            assert!(rel_err(&grads.get(&x).as_vec(), &gx) < 1e-5, "input gradient");
            assert!(rel_err(&grads.get(&wt).as_vec(), &gw) < 1e-5, "weight gradient");
        }
    }

    #[test]
    fn the_index_cache_stays_within_its_limit() {
        let key = |i: usize| (std::any::TypeId::of::<Cpu>(), ("test", [i, 0, 0, 0, 0, 0, 0]));
        let mut cache = IndexCache::default();
        for i in 0..10 {
            cache.insert(key(i), Box::new(i), 30, 100);
            assert!(cache.indices <= 100);
            assert_eq!(cache.indices, 30 * cache.tensors.len());
        }
        // 10 insertions of 30 under a limit of 100: cleared after every third, so one is left.
        assert_eq!(cache.tensors.len(), 1);
        assert!(cache.tensors.contains_key(&key(9)));
        cache.insert(key(10), Box::new(10usize), 101, 100);
        assert_eq!((cache.tensors.len(), cache.indices), (0, 0), "too large to keep, and the rest was dropped");
    }

    #[test]
    fn cached_indices_serve_each_geometry_its_own_columns() {
        // Interleaved and repeated geometries: the second round reads the cached index tensors;
        // conv and max-pool share the im2col key, and batch, size, stride and padding each
        // change it.
        let geometries = [
            Conv { b: 2, c: 3, h: 7, w: 5, o: 4, k: 3, stride: 1, pad: 1, groups: 1 },
            Conv { b: 2, c: 3, h: 7, w: 5, o: 4, k: 3, stride: 2, pad: 1, groups: 1 },
            Conv { b: 3, c: 3, h: 7, w: 5, o: 4, k: 3, stride: 1, pad: 1, groups: 1 },
            Conv { b: 2, c: 3, h: 7, w: 5, o: 4, k: 3, stride: 1, pad: 0, groups: 1 },
        ];
        for _ in 0..2 {
            for r in &geometries {
                check(Conv { ..*r });
                let dev: Cpu = Default::default();
                let x: T4<Cpu> = dev.tensor_from_vec(
                    values(r.b * r.c * r.h * r.w, 9).iter().map(|&v| v as f32).collect(),
                    (r.b, r.c, r.h, r.w),
                );
                let pooled = max_pool2d(x.clone(), r.k, r.stride, r.pad).as_vec();
                // Max over the in-bounds taps of each window, by hand.
                let xv = x.as_vec();
                let (oh, ow) = r.out();
                let mut want = vec![];
                for n in 0..r.b {
                    for c in 0..r.c {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let mut m = f32::NEG_INFINITY;
                                for ky in 0..r.k {
                                    for kx in 0..r.k {
                                        let y = (oy * r.stride + ky) as isize - r.pad as isize;
                                        let xx = (ox * r.stride + kx) as isize - r.pad as isize;
                                        if y >= 0 && xx >= 0 && (y as usize) < r.h && (xx as usize) < r.w {
                                            m = m.max(xv[((n * r.c + c) * r.h + y as usize) * r.w + xx as usize]);
                                        }
                                    }
                                }
                                want.push(m);
                            }
                        }
                    }
                }
                assert_eq!(pooled, want);
            }
        }
    }

    #[test]
    fn bilinear_upsampling_by_hand() {
        let dev: Cpu = Default::default();
        // 1×1×2×3: rows [0, 4, 8] and [12, 16, 20].
        let x: T4<Cpu> = dev.tensor_from_vec(vec![0.0, 4.0, 8.0, 12.0, 16.0, 20.0], (1, 1, 2, 3));
        let y = upsample2x(x.leaky_trace());
        assert_eq!(*y.shape(), (1, 1, 4, 6));
        // Along x: [0, 1, 3, 5, 7, 8] on the first row; along y the same weights with 12 between rows.
        let row0 = [0.0, 1.0, 3.0, 5.0, 7.0, 8.0];
        let want: Vec<f32> = [0.0, 3.0, 9.0, 12.0].iter().flat_map(|&dy| row0.iter().map(move |&v| v + dy)).collect();
        assert_eq!(y.as_vec(), want);
        // Each input pixel's weights sum to 4 over the output (a ×2 upsampling in both axes).
        let g = y.sum().backward().get(&x).as_vec();
        assert!((g.iter().sum::<f32>() - 24.0).abs() < 1e-5);
    }

    #[test]
    fn max_pool_by_hand() {
        let dev: Cpu = Default::default();
        // 1×1×4×4 ramp; 3×3 stride 2 pad 1 → 2×2 of the window maxima 5, 7, 13, 15.
        let x: T4<Cpu> = dev.tensor_from_vec((0..16).map(|v| v as f32 - 8.0).collect(), (1, 1, 4, 4));
        let y = max_pool2d(x.leaky_trace(), 3, 2, 1);
        assert_eq!(y.as_vec(), vec![-3.0, -1.0, 5.0, 7.0]);
        let g = y.sum().backward().get(&x).as_vec();
        let mut want = vec![0.0; 16];
        for i in [5, 7, 13, 15] {
            want[i] = 1.0;
        }
        assert_eq!(g, want, "the gradient goes to each window's maximum");
    }

    #[test]
    fn grouped_and_depthwise_convs_match_the_f64_reference() {
        check(Conv { b: 2, c: 4, h: 7, w: 5, o: 6, k: 3, stride: 1, pad: 1, groups: 2 });
        check(Conv { b: 2, c: 6, h: 9, w: 7, o: 6, k: 3, stride: 2, pad: 1, groups: 2 });
        check(Conv { b: 2, c: 5, h: 7, w: 9, o: 5, k: 3, stride: 1, pad: 1, groups: 5 });
        check(Conv { b: 3, c: 4, h: 9, w: 8, o: 4, k: 3, stride: 2, pad: 1, groups: 4 });
        check(Conv { b: 1, c: 3, h: 11, w: 7, o: 3, k: 5, stride: 2, pad: 2, groups: 3 });
    }

    #[test]
    fn dense_conv_matches_the_f64_reference() {
        check(Conv { b: 2, c: 3, h: 7, w: 5, o: 4, k: 3, stride: 1, pad: 1, groups: 1 });
        check(Conv { b: 2, c: 5, h: 9, w: 11, o: 3, k: 3, stride: 2, pad: 1, groups: 1 });
        check(Conv { b: 1, c: 2, h: 6, w: 7, o: 5, k: 1, stride: 2, pad: 0, groups: 1 });
        // 1×1 at stride 1 skips im2col (pointwise convs).
        check(Conv { b: 2, c: 3, h: 5, w: 7, o: 4, k: 1, stride: 1, pad: 0, groups: 1 });
        check(Conv { b: 3, c: 3, h: 11, w: 9, o: 2, k: 7, stride: 2, pad: 3, groups: 1 });
    }
}
