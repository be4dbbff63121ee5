//! Custom dfdx ops on the Cpu device: values leave the tensors (`as_vec`), the kernels run per
//! sample in parallel, and a backward closure on the tape adds the gradients back.
//!
//! Inputs are made contiguous first: a gradient buffer follows its tensor's physical layout, so
//! adding a logically ordered gradient into a permuted view's buffer would scramble it.

use super::kernels::{backward, forward, forward_split, scratch_len, Geometry};
use super::profile::{conv_flops, conv_kind, timer, Pass};
use super::simd::with_avx2;
use crate::model::blueprint::ConvSpec;
use crate::model::conv::T4;
use dfdx::prelude::*;
use rayon::prelude::*;

type Flat<Tp> = Tensor<(usize,), f32, Cpu, Tp>;

fn add_into(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

thread_local! {
    /// im2col columns, reused per thread: they are rewritten in full before they are read, so
    /// they need neither fresh pages nor zeroing (together about 12% of inference time, `perf`).
    static COLUMNS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The input of an inference conv, reused likewise.
    static INPUT: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The aggregated kernels of a group of samples (inference), reused likewise.
    static AGGREGATED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` floats of this thread's buffer in `cell` (contents unspecified); a fresh
/// buffer if the thread's is in use (a nested call).
fn with_buffer<R>(
    cell: &'static std::thread::LocalKey<std::cell::RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    cell.with(|c| match c.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len, 0.0);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// dst = Σₖ a[k]·bankₖ[start..start + dst.len()], where the bank holds K = a.len() kernels of
/// `bank.len() / K` floats each: one sample's kernel (or a block of it) of a dynamic conv.
fn mix_kernels(a: &[f32], bank: &[f32], start: usize, dst: &mut [f32]) {
    let n = bank.len() / a.len();
    let end = start + dst.len();
    for (d, v) in dst.iter_mut().zip(&bank[start..end]) {
        *d = a[0] * v;
    }
    for (k, &ak) in a.iter().enumerate().skip(1) {
        for (d, v) in dst.iter_mut().zip(&bank[k * n + start..k * n + end]) {
            *d += ak * v;
        }
    }
}

/// The kernels of every sample, out (S × n) = π (S × K) · bank (K × n), in column blocks, so
/// each thread reads the kernel bank once per group of samples rather than once per sample
/// (the bank of DY-ResNet-18 is 176 MB; reading it per sample cost about a tenth of inference).
fn aggregate_kernels(pi: &[f32], bank: &[f32], kk: usize, out: &mut [f32]) {
    const BLOCK: usize = 4096;
    let n = bank.len() / kk;
    let samples = pi.len() / kk;
    let per_thread = samples.div_ceil(rayon::current_num_threads()).max(1);
    out.par_chunks_mut(per_thread * n).enumerate().for_each(|(c, rows)| {
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            for (r, row) in rows.chunks_mut(n).enumerate() {
                mix_kernels(&pi[(c * per_thread + r) * kk..][..kk], bank, start, &mut row[start..end]);
            }
        }
    });
}

/// A tensor's values in one memcpy: dfdx's `as_vec` walks the strides element by element,
/// which cost about 7% of an inference pass. `contiguous` is free for the contiguous tensors
/// these ops see.
fn host<S: Shape>(t: &Tensor<S, f32, Cpu>) -> Vec<f32> {
    let t = t.clone().contiguous();
    let mut v = vec![0.0; t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

/// Runs `f` on a tensor's values copied into this thread's reused `INPUT` buffer (for values
/// an op reads only while it runs; `host` for values a backward pass keeps).
fn with_values<S: Shape, R>(t: &Tensor<S, f32, Cpu>, f: impl FnOnce(&[f32]) -> R) -> R {
    with_buffer(&INPUT, t.shape().num_elements(), |buf| {
        t.copy_into(buf);
        f(buf)
    })
}

/// Sums partial gradients.
fn summed(mut a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
    add_into(&mut a, &b);
    a
}

/// Weight gradients are summed over the batch in this many groups of consecutive samples, in
/// parallel, and the groups' sums added in index order: the same bits whatever the thread count
/// and scheduling (a rayon fold groups samples by work stealing, which made two identical runs
/// differ in the last bits and exact resume fail).
const GRADIENT_GROUPS: usize = 8;

fn group_len(batch: usize) -> usize {
    batch.div_ceil(GRADIENT_GROUPS).max(1)
}

/// Static convolution: x (B, C, H, W) with a flat weight in PyTorch layout.
pub fn conv<Tp>(x: T4<Cpu, Tp>, w: Flat<Tp>, spec: &ConvSpec) -> T4<Cpu, Tp>
where
    Tp: Tape<f32, Cpu> + Merge<Tp>,
{
    let (x, xtape) = x.contiguous().split_tape();
    let (w, wtape) = w.split_tape();
    let mut tape = xtape.merge(wtape);
    let dev = x.device().clone();
    let (b, c, h, wd) = *x.shape();
    let spec = *spec;
    let g = Geometry::of(&spec, h, wd);
    let crate::config::Size { width: ow, height: oh } = spec.out_size(crate::config::Size::new(wd, h));
    let (per_in, per_out, scratch) = (c * h * wd, spec.cout * oh * ow, scratch_len(&spec, &g));
    let flops = conv_flops(&spec, b, g.oh * g.ow);
    let _t = timer(|| conv_kind(&spec), Pass::Forward, flops);
    let (xv, wv) = (host(&x), host(&w));
    let mut yv = vec![0.0f32; b * per_out];
    yv.par_chunks_mut(per_out).enumerate().for_each(|(i, y)| {
        with_buffer(&COLUMNS, scratch, |s| forward(&spec, &g, &xv[i * per_in..][..per_in], &wv, y, s))
    });
    let out = dev.tensor_from_vec(yv, (b, spec.cout, oh, ow));
    let (xg, wg, og) = (x.ghost(), w.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let _t = timer(|| conv_kind(&spec), Pass::Backward, flops * (1.0 + spec.input_grad as u8 as f64));
        // One copy of the output gradient; the input gradient accumulates in place.
        let gy = grads.get_or_alloc_mut(&og)?.to_vec();
        let gx = grads.get_or_alloc_mut(&xg)?;
        let per_group = group_len(b);
        let partials: Vec<Vec<f32>> = gx
            .par_chunks_mut(per_in * per_group)
            .enumerate()
            .map(|(k, gxs)| {
                let (mut gw, mut s) = (vec![0.0f32; wv.len()], vec![0.0f32; scratch]);
                for (j, gxi) in gxs.chunks_mut(per_in).enumerate() {
                    let i = k * per_group + j;
                    let (xi, gyi) = (&xv[i * per_in..][..per_in], &gy[i * per_out..][..per_out]);
                    backward(&spec, &g, (xi, &wv), gyi, (gxi, &mut gw), &mut s);
                }
                gw
            })
            .collect();
        let gw = partials.into_iter().reduce(summed).unwrap_or_else(|| vec![0.0f32; wv.len()]);
        add_into(grads.get_or_alloc_mut(&wg)?, &gw);
        Ok(())
    });
    out.put_tape(tape)
}

/// Dynamic convolution: per-sample kernels Σₖ π[b, k]·Kₖ from `kernels` (K × |W| flat).
pub fn dynamic_conv<Tp>(
    x: T4<Cpu, Tp>,
    pi: Tensor<(usize, usize), f32, Cpu, Tp>,
    kernels: Flat<Tp>,
    spec: &ConvSpec,
) -> T4<Cpu, Tp>
where
    Tp: Tape<f32, Cpu> + Merge<Tp>,
{
    let (x, xtape) = x.contiguous().split_tape();
    let (pi, ptape) = pi.contiguous().split_tape();
    let (kernels, ktape) = kernels.split_tape();
    let mut tape = xtape.merge(ptape).merge(ktape);
    let dev = x.device().clone();
    let (b, c, h, wd) = *x.shape();
    let kk = pi.shape().1;
    let spec = *spec;
    let g = Geometry::of(&spec, h, wd);
    let crate::config::Size { width: ow, height: oh } = spec.out_size(crate::config::Size::new(wd, h));
    let (per_in, per_out, scratch) = (c * h * wd, spec.cout * oh * ow, scratch_len(&spec, &g));
    let flops = conv_flops(&spec, b, g.oh * g.ow);
    let _t = timer(|| conv_kind(&spec), Pass::Forward, flops);
    let (xv, pv, kv) = (host(&x), host(&pi), host(&kernels));
    let n = kv.len() / kk;
    let mut yv = vec![0.0f32; b * per_out];
    yv.par_chunks_mut(per_out).enumerate().for_each_init(
        || vec![0.0f32; n],
        |wb, (i, y)| {
            mix_kernels(&pv[i * kk..][..kk], &kv, 0, wb);
            with_buffer(&COLUMNS, scratch, |s| forward(&spec, &g, &xv[i * per_in..][..per_in], wb, y, s));
        },
    );
    let out = dev.tensor_from_vec(yv, (b, spec.cout, oh, ow));
    let (xg, pg, kg, og) = (x.ghost(), pi.ghost(), kernels.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let _t = timer(|| conv_kind(&spec), Pass::Backward, flops * (1.0 + spec.input_grad as u8 as f64));
        let gy = grads.get_or_alloc_mut(&og)?.to_vec();
        let mut gpi = vec![0.0f32; b * kk];
        let gx = grads.get_or_alloc_mut(&xg)?;
        let per_group = group_len(b);
        let partials: Vec<Vec<f32>> = gx
            .par_chunks_mut(per_in * per_group)
            .zip(gpi.par_chunks_mut(kk * per_group))
            .enumerate()
            .map(|(group, (gxs, gps))| {
                let mut gk = vec![0.0f32; kk * n];
                let (mut wb, mut gw, mut s) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; scratch]);
                for (j, (gxi, gpii)) in gxs.chunks_mut(per_in).zip(gps.chunks_mut(kk)).enumerate() {
                    let i = group * per_group + j;
                    mix_kernels(&pv[i * kk..][..kk], &kv, 0, &mut wb);
                    gw.fill(0.0);
                    let (xi, gyi) = (&xv[i * per_in..][..per_in], &gy[i * per_out..][..per_out]);
                    backward(&spec, &g, (xi, &wb), gyi, (gxi, &mut gw), &mut s);
                    // ∂L/∂π[i, k] = ⟨∂L/∂W(i), Kₖ⟩ and ∂L/∂Kₖ += π[i, k]·∂L/∂W(i).
                    for k in 0..kk {
                        let kslice = &kv[k * n..(k + 1) * n];
                        gpii[k] = gw.iter().zip(kslice).map(|(a, b)| a * b).sum();
                        let a = pv[i * kk + k];
                        for (d, v) in gk[k * n..(k + 1) * n].iter_mut().zip(&gw) {
                            *d += a * v;
                        }
                    }
                }
                gk
            })
            .collect();
        let gk = partials.into_iter().reduce(summed).unwrap_or_else(|| vec![0.0f32; kk * n]);
        add_into(grads.get_or_alloc_mut(&pg)?, &gpi);
        add_into(grads.get_or_alloc_mut(&kg)?, &gk);
        Ok(())
    });
    out.put_tape(tape)
}

/// Inference-only convolution with batch norm folded in and the activation fused:
/// y = act(conv(x, W) + bias), W shared or, with `pi` (B × K), aggregated per sample from K
/// kernels. No tape: weights and BN are constants here.
pub fn conv_folded(
    x: T4<Cpu>,
    attention: Option<&crate::model::fast_op::Attention>,
    w: &[f32],
    bias: &[f32],
    relu_cap: Option<f32>,
    spec: &ConvSpec,
) -> T4<Cpu> {
    conv_folded_in_groups(x, attention, w, bias, relu_cap, spec, 16 << 20)
}

/// The mean of each `hw`-long plane, summed in f64 (as the global average pool computes it),
/// `LANES` planes at a time (`interleaved_sums`: the same bits as one plane at a time).
fn plane_means(xv: &[f32], hw: usize) -> Vec<f32> {
    let mut means = vec![0.0f32; xv.len() / hw];
    means.par_chunks_mut(LANES).enumerate().for_each(|(q, out)| {
        let rows: [&[f32]; LANES] = std::array::from_fn(|l| &xv[(q * LANES + l.min(out.len() - 1)) * hw..][..hw]);
        let sums = interleaved_sums(rows, |_, v| v as f64);
        out.iter_mut().zip(sums).for_each(|(m, s)| *m = (s / hw as f64) as f32);
    });
    means
}

/// Σ term(lane, v) over each of `LANES` equally long rows, in f64, from −0.0 as
/// `Iterator::sum::<f64>` adds: the rows' chains interleaved (one f64 sum is a chain of dependent
/// adds, each waiting for the previous one), each row's adds in its order.
#[allow(clippy::needless_range_loop)] // `j` indexes the four lanes' rows at once
fn interleaved_sums(rows: [&[f32]; LANES], term: impl Fn(usize, f32) -> f64) -> [f64; LANES] {
    let mut sums = [-0.0f64; LANES];
    for j in 0..rows[0].len() {
        for l in 0..LANES {
            sums[l] += term(l, rows[l][j]);
        }
    }
    sums
}

/// `conv_folded` aggregating the kernels of at most `max_floats / |W|` samples at a time
/// (and at least one per thread).
fn conv_folded_in_groups(
    x: T4<Cpu>,
    attention: Option<&crate::model::fast_op::Attention>,
    w: &[f32],
    bias: &[f32],
    relu_cap: Option<f32>,
    spec: &ConvSpec,
    max_floats: usize,
) -> T4<Cpu> {
    let x = x.contiguous();
    let dev = x.device().clone();
    let (b, _, h, wd) = *x.shape();
    let g = Geometry::of(spec, h, wd);
    let crate::config::Size { width: ow, height: oh } = spec.out_size(crate::config::Size::new(wd, h));
    let _t = timer(|| conv_kind(spec), Pass::Forward, conv_flops(spec, b, g.oh * g.ow));
    // The input in a reused buffer: a fresh one costs zeroing and cold memory (about a third of
    // the time of a stride-2 depthwise layer, whose input is four times its output).
    with_values(&x, |xv| {
        let y = folded_in_groups(xv, (b, h * wd, oh * ow), attention, (w, bias, relu_cap), (spec, &g), max_floats);
        dev.tensor_from_vec(y, (b, spec.cout, oh, ow))
    })
}

/// `conv_folded_in_groups` on the input's values `xv` (b samples whose channel planes hold
/// `plane_in` floats, giving planes of `p` floats): the output's values.
fn folded_in_groups(
    xv: &[f32],
    (b, plane_in, p): (usize, usize, usize),
    attention: Option<&crate::model::fast_op::Attention>,
    (w, bias, relu_cap): (&[f32], &[f32], Option<f32>),
    (spec, g): (&ConvSpec, &Geometry),
    max_floats: usize,
) -> Vec<f32> {
    let (per_in, per_out, scratch) = (spec.cin * plane_in, spec.cout * p, scratch_len(spec, g));
    let pi = attention.map(|f| f(&plane_means(xv, plane_in)));
    let pi = pi.as_deref();
    let kk = pi.map_or(1, |v| v.len() / b);
    let n = w.len() / kk;
    let mut yv = vec![0.0f32; b * per_out];
    // Samples `first..` with their kernels (`agg` holds one per sample, or None: static).
    let run = |first: usize, ys: &mut [f32], agg: Option<&[f32]>| {
        // Fewer samples than threads: each sample's output channels are split between them.
        let parts = rayon::current_num_threads().div_ceil((ys.len() / per_out.max(1)).max(1));
        ys.par_chunks_mut(per_out).enumerate().for_each(|(j, y)| {
            let weights = agg.map_or(w, |a| &a[j * n..][..n]);
            let x = &xv[(first + j) * per_in..][..per_in];
            with_buffer(&COLUMNS, scratch, |s| forward_split(spec, g, x, weights, y, s, parts));
            for (o, row) in y.chunks_mut(p).enumerate() {
                let bo = bias[o];
                match relu_cap {
                    Some(cap) => row.iter_mut().for_each(|v| *v = (*v + bo).clamp(0.0, cap)),
                    None => row.iter_mut().for_each(|v| *v += bo),
                }
            }
        })
    };
    match pi {
        None => run(0, &mut yv, None),
        Some(pv) => {
            let group = max_floats / n.max(1);
            let group = group.max(rayon::current_num_threads()).min(b);
            for (gi, ys) in yv.chunks_mut(group * per_out).enumerate() {
                let (first, count) = (gi * group, ys.len() / per_out);
                with_buffer(&AGGREGATED, count * n, |agg| {
                    aggregate_kernels(&pv[first * kk..(first + count) * kk], w, kk, agg);
                    run(first, ys, Some(agg));
                });
            }
        }
    }
    yv
}

/// Batch norm's per-channel sums run over this many channels at once: one f64 sum is a chain of
/// dependent adds (each waits for the previous one); interleaved channels keep the CPU busy
/// while each channel's adds stay in their order (the same bits as one channel at a time).
const LANES: usize = 4;

/// `f(first channel, lanes)` for groups of up to `LANES` consecutive channels, in parallel; the
/// per-channel results in channel order.
fn channel_groups<T: Send>(c: usize, f: impl Fn(usize, usize) -> Vec<T> + Sync + Send) -> Vec<T> {
    (0..c.div_ceil(LANES)).into_par_iter().flat_map_iter(|g| f(g * LANES, LANES.min(c - g * LANES))).collect()
}

/// The planes of `LANES` channels from `ch0` in sample `i` of x (B, C, HW); lanes past the last
/// channel repeat it (computed, then ignored).
fn lane_planes(xv: &[f32], (_, c, hw): (usize, usize, usize), i: usize, ch0: usize) -> [&[f32]; LANES] {
    std::array::from_fn(|l| &xv[(i * c + (ch0 + l).min(c - 1)) * hw..][..hw])
}

/// Σ term(lane, v) over each channel, as `Iterator::sum::<f64>` over each (sample, channel)
/// plane and then over the samples would add them.
fn plane_sums(xv: &[f32], dims: (usize, usize, usize), ch0: usize, term: impl Fn(usize, f32) -> f64) -> [f64; LANES] {
    // `Iterator::sum` starts from −0.0.
    let mut total = [-0.0f64; LANES];
    for i in 0..dims.0 {
        let part = interleaved_sums(lane_planes(xv, dims, i, ch0), &term);
        (0..LANES).for_each(|l| total[l] += part[l]);
    }
    total
}

/// Σ term(lane, x, g) over each channel's elements in order (two sums per channel, from 0).
fn gradient_sums(
    xv: &[f32],
    gy: &[f32],
    dims: (usize, usize, usize),
    ch0: usize,
    term: impl Fn(usize, f32, f32) -> (f64, f64),
) -> [(f64, f64); LANES] {
    let mut sums = [(0.0f64, 0.0f64); LANES];
    for i in 0..dims.0 {
        let (xs, gs) = (lane_planes(xv, dims, i, ch0), lane_planes(gy, dims, i, ch0));
        for j in 0..dims.2 {
            for l in 0..LANES {
                let (a, b) = term(l, xs[l][j], gs[l][j]);
                sums[l].0 += a;
                sums[l].1 += b;
            }
        }
    }
    sums
}

/// One channel's normalisation in training-mode batch norm: batch mean, 1/√(σ² + ε), γ, β.
struct Normalised {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Normalised {
    fn at(&self, ch: usize) -> Channel {
        Channel { mean: self.mean[ch], inv_std: self.inv_std[ch], gamma: self.gamma[ch], beta: self.beta[ch] }
    }
}

/// One channel's batch norm constants.
#[derive(Clone, Copy)]
struct Channel {
    mean: f32,
    inv_std: f32,
    gamma: f32,
    beta: f32,
}

impl Channel {
    /// The pre-activation γ·(v − μ)/σ + β.
    #[inline(always)]
    fn pre(self, v: f32) -> f32 {
        (v - self.mean) * self.inv_std * self.gamma + self.beta
    }
}

with_avx2! {
    /// y = act(pre(x)) over one plane; `cap`: None (no activation) or ReLU's cap.
    fn normalise_plane(ch: Channel, cap: Option<f32>, x: &[f32], y: &mut [f32]) {
        match cap {
            Some(cap) => y.iter_mut().zip(x).for_each(|(o, &v)| *o = ch.pre(v).max(0.0).min(cap)),
            None => y.iter_mut().zip(x).for_each(|(o, &v)| *o = ch.pre(v)),
        }
    }
}

with_avx2! {
    /// g = 0 where ReLU clipped pre(x) (a select, not a branch: whether it clips is a coin toss;
    /// `&`, not `&&`, for the same reason).
    fn mask_clipped(ch: Channel, cap: f32, x: &[f32], g: &mut [f32]) {
        for (d, &v) in g.iter_mut().zip(x) {
            let p = ch.pre(v);
            *d = if (p > 0.0) & (p < cap) { *d } else { 0.0 };
        }
    }
}

with_avx2! {
    /// gx += γ/σ·(g − mean(g) − x̂·mean(g·x̂)) over one plane, in f64.
    fn input_gradient_plane(ch: Channel, means: (f64, f64), x: &[f32], g: &[f32], gx: &mut [f32]) {
        let ((m, s), (mg, mgx)) = ((ch.mean, ch.inv_std), means);
        let k0 = (ch.gamma * s) as f64;
        for ((d, &v), &gk) in gx.iter_mut().zip(x).zip(g) {
            *d += (k0 * (gk as f64 - mg - ((v - m) * s) as f64 * mgx)) as f32;
        }
    }
}

/// Training-mode batch norm with the activation fused: y = act(γ·(x − μ)/√(σ² + ε) + β), with
/// batch statistics per channel; returns y and the batch mean and (biased) variance.
/// `relu_cap`: None (no activation), ∞ (ReLU) or 6 (ReLU6).
pub fn batch_norm_train<Tp>(
    x: T4<Cpu, Tp>,
    gamma: Flat<Tp>,
    beta: Flat<Tp>,
    eps: f32,
    relu_cap: Option<f32>,
) -> (T4<Cpu, Tp>, Vec<f32>, Vec<f32>)
where
    Tp: Tape<f32, Cpu> + Merge<Tp>,
{
    let (x, xtape) = x.contiguous().split_tape();
    let (gamma, gtape) = gamma.split_tape();
    let (beta, btape) = beta.split_tape();
    let mut tape = xtape.merge(gtape).merge(btape);
    let dev = x.device().clone();
    let (b, c, h, w) = *x.shape();
    let (hw, n) = (h * w, (b * h * w) as f64);
    let _t = timer(|| "batch norm + act".into(), Pass::Forward, 0.0);
    let (xv, gv, bv) = (host(&x), host(&gamma), host(&beta));
    // Per-channel statistics (in f64: sums over B·H·W values).
    let dims = (b, c, hw);
    let stats: Vec<(f32, f32)> = channel_groups(c, |ch0, lanes| {
        let total = plane_sums(&xv, dims, ch0, |_, v| v as f64);
        let mean: [f64; LANES] = std::array::from_fn(|l| total[l] / n);
        let total = plane_sums(&xv, dims, ch0, |l, v| (v as f64 - mean[l]).powi(2));
        (0..lanes).map(|l| (mean[l] as f32, (total[l] / n) as f32)).collect()
    });
    let inv_std: Vec<f32> = stats.iter().map(|&(_, v)| 1.0 / (v + eps).sqrt()).collect();
    let means: Vec<f32> = stats.iter().map(|s| s.0).collect();
    let vars: Vec<f32> = stats.iter().map(|s| s.1).collect();
    let affine = Normalised { mean: means.clone(), inv_std, gamma: gv, beta: bv };
    let mut yv = vec![0.0f32; xv.len()];
    yv.par_chunks_mut(hw).zip(xv.par_chunks(hw)).enumerate().for_each(|(i, (y, xp))| {
        normalise_plane(affine.at(i % c), relu_cap, xp, y);
    });
    let out = dev.tensor_from_vec(yv, (b, c, h, w));
    let (xg, gg, bg, og) = (x.ghost(), gamma.ghost(), beta.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let _t = timer(|| "batch norm + act".into(), Pass::Backward, 0.0);
        // g = ∂L/∂(pre-activation): the activation passes the gradient where it does not clip,
        // found from the pre-activation recomputed from x (the same bits as y's). Clipped
        // elements then add 0 to the sums below rather than nothing: the same bits while x̂ is
        // finite (with a NaN or infinite input the statistics are NaN either way).
        let mut g = grads.get_or_alloc_mut(&og)?.to_vec();
        if let Some(cap) = relu_cap {
            g.par_chunks_mut(hw).zip(xv.par_chunks(hw)).enumerate().for_each(|(i, (gp, xp))| {
                mask_clipped(affine.at(i % c), cap, xp, gp);
            });
        }
        let plane = |i: usize| i * hw..(i + 1) * hw;
        // Σ g and Σ g·x̂ per channel, in f64.
        let sums: Vec<(f64, f64)> = channel_groups(c, |ch0, lanes| {
            let at: [Channel; LANES] = std::array::from_fn(|l| affine.at((ch0 + l).min(c - 1)));
            let sums = gradient_sums(&xv, &g, dims, ch0, |l, v, gk| {
                let Channel { mean: m, inv_std: s, .. } = at[l];
                (gk as f64, (gk * ((v - m) * s)) as f64)
            });
            sums[..lanes].to_vec()
        });
        let gx = grads.get_or_alloc_mut(&xg)?;
        gx.par_chunks_mut(hw).enumerate().for_each(|(i, gxp)| {
            let (ch, means) = (i % c, (sums[i % c].0 / n, sums[i % c].1 / n));
            input_gradient_plane(affine.at(ch), means, &xv[plane(i)], &g[plane(i)], gxp);
        });
        let (dg, db): (Vec<f32>, Vec<f32>) = sums.iter().map(|&(sg, sgx)| (sgx as f32, sg as f32)).unzip();
        add_into(grads.get_or_alloc_mut(&gg)?, &dg);
        add_into(grads.get_or_alloc_mut(&bg)?, &db);
        Ok(())
    });
    (out.put_tape(tape), means, vars)
}

/// k×k max-pool (padding never wins), parallel over (sample, channel) planes; the gradient goes
/// to each window's first maximum, as in PyTorch.
pub fn max_pool<Tp: Tape<f32, Cpu>>(x: T4<Cpu, Tp>, k: usize, stride: usize, padding: usize) -> T4<Cpu, Tp> {
    let (x, mut tape) = x.contiguous().split_tape();
    let dev = x.device().clone();
    let (b, c, h, w) = *x.shape();
    let spec = ConvSpec { padding, ..ConvSpec::new(c, c, k, stride) };
    let g = Geometry::of(&spec, h, w);
    let (oh, ow) = (g.oh, g.ow);
    let _t = timer(|| "max pool".into(), Pass::Forward, 0.0);
    let xv = host(&x);
    let mut yv = vec![0.0f32; b * c * oh * ow];
    let mut arg = vec![0u32; yv.len()];
    yv.par_chunks_mut(oh * ow).zip(arg.par_chunks_mut(oh * ow)).enumerate().for_each(|(i, (y, a))| {
        let plane = &xv[i * h * w..][..h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut at) = (f32::NEG_INFINITY, 0usize);
                for ky in 0..k {
                    let Some(yy) = (oy * stride + ky).checked_sub(padding).filter(|&v| v < h) else { continue };
                    for kx in 0..k {
                        let Some(xx) = (ox * stride + kx).checked_sub(padding).filter(|&v| v < w) else { continue };
                        let v = plane[yy * w + xx];
                        if v > best {
                            (best, at) = (v, yy * w + xx);
                        }
                    }
                }
                y[oy * ow + ox] = best;
                a[oy * ow + ox] = at as u32;
            }
        }
    });
    let out = dev.tensor_from_vec(yv, (b, c, oh, ow));
    let (xg, og) = (x.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let _t = timer(|| "max pool".into(), Pass::Backward, 0.0);
        let gy = grads.get_or_alloc_mut(&og)?.to_vec();
        let gx = grads.get_or_alloc_mut(&xg)?;
        gx.par_chunks_mut(h * w).enumerate().for_each(|(i, gp)| {
            for j in 0..oh * ow {
                gp[arg[i * oh * ow + j] as usize] += gy[i * oh * ow + j];
            }
        });
        Ok(())
    });
    out.put_tape(tape)
}

/// Global average pool (B, C, H, W) → (B, C), parallel over planes.
pub fn global_avg_pool<Tp: Tape<f32, Cpu>>(x: T4<Cpu, Tp>) -> Tensor<(usize, usize), f32, Cpu, Tp> {
    let (x, mut tape) = x.contiguous().split_tape();
    let dev = x.device().clone();
    let (b, c, h, w) = *x.shape();
    let hw = h * w;
    let _t = timer(|| "global avg pool".into(), Pass::Forward, 0.0);
    // Only the means are kept: the values pass through a reused buffer.
    let means = with_values(&x, |xv| plane_means(xv, hw));
    let out = dev.tensor_from_vec(means, (b, c));
    let (xg, og) = (x.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let _t = timer(|| "global avg pool".into(), Pass::Backward, 0.0);
        let gy = grads.get_or_alloc_mut(&og)?.to_vec();
        let gx = grads.get_or_alloc_mut(&xg)?;
        gx.par_chunks_mut(hw).zip(gy.par_iter()).for_each(|(p, &g)| {
            let d = g / hw as f32;
            p.iter_mut().for_each(|v| *v += d);
        });
        Ok(())
    });
    out.put_tape(tape)
}

/// The two inputs that output `i` of a bilinear ×2 upsampling (align_corners = False) of `n`
/// reads: 0.75 of `near` + 0.25 of `far` (the neighbour on its side, clamped at the edges).
fn upsample_taps(i: usize, n: usize) -> (usize, usize) {
    let near = i / 2;
    (near, if i % 2 == 0 { near.saturating_sub(1) } else { (near + 1).min(n - 1) })
}

/// One (h × w) plane upsampled to (2h × 2w): along the rows first, then the columns, each
/// output 0.75·near + 0.25·far, as the generic op (two gathers) computes it, bit for bit.
fn upsample_plane(x: &[f32], (h, w): (usize, usize), y: &mut [f32]) {
    let mut wide = vec![0.0f32; h * 2 * w];
    for (xr, tr) in x.chunks_exact(w).zip(wide.chunks_exact_mut(2 * w)) {
        for (j, t) in tr.iter_mut().enumerate() {
            let (near, far) = upsample_taps(j, w);
            *t = xr[near] * 0.75 + xr[far] * 0.25;
        }
    }
    for (i, yr) in y.chunks_exact_mut(2 * w).enumerate() {
        let (near, far) = upsample_taps(i, h);
        let (a, f) = (&wide[near * 2 * w..][..2 * w], &wide[far * 2 * w..][..2 * w]);
        for ((o, &p), &q) in yr.iter_mut().zip(a).zip(f) {
            *o = p * 0.75 + q * 0.25;
        }
    }
}

/// The adjoint of `upsample_plane`: gx += each output gradient spread back onto its inputs.
fn upsample_plane_backward(gy: &[f32], (h, w): (usize, usize), gx: &mut [f32]) {
    let mut wide = vec![0.0f32; h * 2 * w];
    for (i, gr) in gy.chunks_exact(2 * w).enumerate() {
        let (near, far) = upsample_taps(i, h);
        for (t, &g) in wide[near * 2 * w..][..2 * w].iter_mut().zip(gr) {
            *t += g * 0.75;
        }
        for (t, &g) in wide[far * 2 * w..][..2 * w].iter_mut().zip(gr) {
            *t += g * 0.25;
        }
    }
    for (tr, gr) in wide.chunks_exact(2 * w).zip(gx.chunks_exact_mut(w)) {
        for (j, &g) in tr.iter().enumerate() {
            let (near, far) = upsample_taps(j, w);
            gr[near] += g * 0.75;
            gr[far] += g * 0.25;
        }
    }
}

/// Bilinear ×2 upsampling of (B, C, H, W) (PyTorch's `interpolate(scale_factor=2,
/// mode="bilinear", align_corners=False)`), plane by plane in parallel: the generic op's two
/// gathers and the permutes around them were a quarter of a MobileNet's inference time.
pub fn upsample2x<Tp: Tape<f32, Cpu>>(x: T4<Cpu, Tp>) -> T4<Cpu, Tp> {
    let (x, mut tape) = x.contiguous().split_tape();
    let dev = x.device().clone();
    let (b, c, h, w) = *x.shape();
    let _t = timer(|| "upsample ×2".into(), Pass::Forward, 0.0);
    let mut yv = vec![0.0f32; b * c * 4 * h * w];
    with_values(&x, |xv| {
        yv.par_chunks_mut(4 * h * w).zip(xv.par_chunks(h * w)).for_each(|(y, xp)| upsample_plane(xp, (h, w), y));
    });
    let out = dev.tensor_from_vec(yv, (b, c, 2 * h, 2 * w));
    let (xg, og) = (x.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let _t = timer(|| "upsample ×2".into(), Pass::Backward, 0.0);
        let gy = grads.get_or_alloc_mut(&og)?.to_vec();
        let gx = grads.get_or_alloc_mut(&xg)?;
        gx.par_chunks_mut(h * w).zip(gy.par_chunks(4 * h * w)).for_each(|(g, d)| upsample_plane_backward(d, (h, w), g));
        Ok(())
    });
    out.put_tape(tape)
}

with_avx2! {
    /// y = x · gate(x), gate = clamp(x + 3, 0, 6) / 6, as dfdx's add, clamp, divide and multiply
    /// compute it (the same bits).
    fn hardswish_forward(x: &[f32], y: &mut [f32]) {
        for (o, &v) in y.iter_mut().zip(x) {
            let t = v + 3.0;
            let c = t.clamp(0.0, 6.0);
            *o = v * (c / 6.0);
        }
    }
}

with_avx2! {
    /// gx += g·gate + g·x/6 where 0 ≤ x + 3 ≤ 6, in the order of dfdx's backward ops.
    fn hardswish_backward(x: &[f32], g: &[f32], gx: &mut [f32]) {
        for ((d, &v), &gk) in gx.iter_mut().zip(x).zip(g) {
            let t = v + 3.0;
            let c = t.clamp(0.0, 6.0);
            let slope = if (0.0..=6.0).contains(&t) { 1.0 } else { 0.0 };
            *d = (*d + gk * (c / 6.0)) + gk * v * (1.0 / 6.0) * slope;
        }
    }
}

/// Hard-swish (MobileNetV3) in one parallel pass instead of four dfdx ops, each allocating.
pub fn hardswish<Tp: Tape<f32, Cpu>>(x: T4<Cpu, Tp>) -> T4<Cpu, Tp> {
    let (x, mut tape) = x.contiguous().split_tape();
    let dev = x.device().clone();
    let shape = *x.shape();
    let _t = timer(|| "hardswish".into(), Pass::Forward, 0.0);
    const CHUNK: usize = 1 << 14;
    let n = shape.num_elements();
    let mut yv = vec![0.0f32; n];
    let mut forward = |xv: &[f32]| {
        yv.par_chunks_mut(CHUNK).zip(xv.par_chunks(CHUNK)).for_each(|(y, p)| hardswish_forward(p, y));
    };
    // The input is kept only when a backward pass will need it.
    let kept = if Tp::OWNS_TAPE {
        let xv = host(&x);
        forward(&xv);
        xv
    } else {
        with_values(&x, forward);
        Vec::new()
    };
    let out = dev.tensor_from_vec(yv, shape);
    let (xg, og) = (x.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let _t = timer(|| "hardswish".into(), Pass::Backward, 0.0);
        let gy = grads.get_or_alloc_mut(&og)?.to_vec();
        let gx = grads.get_or_alloc_mut(&xg)?;
        gx.par_chunks_mut(CHUNK).zip(kept.par_chunks(CHUNK).zip(gy.par_chunks(CHUNK))).for_each(|(d, (p, g))| {
            hardswish_backward(p, g, d);
        });
        Ok(())
    });
    out.put_tape(tape)
}

/// relu(a + b) in one parallel pass (the end of a residual block).
pub fn add_relu<Tp: Tape<f32, Cpu> + Merge<Tp>>(a: T4<Cpu, Tp>, b: T4<Cpu, Tp>) -> T4<Cpu, Tp> {
    let (a, atape) = a.contiguous().split_tape();
    let (b, btape) = b.contiguous().split_tape();
    let mut tape = atape.merge(btape);
    let dev = a.device().clone();
    let shape = *a.shape();
    assert_eq!(shape, *b.shape(), "add_relu needs equal shapes");
    let _t = timer(|| "add + relu".into(), Pass::Forward, 0.0);
    let (av, bv) = (host(&a), host(&b));
    let mut yv = vec![0.0f32; av.len()];
    const CHUNK: usize = 1 << 14;
    yv.par_chunks_mut(CHUNK).zip(av.par_chunks(CHUNK).zip(bv.par_chunks(CHUNK))).for_each(|(y, (p, q))| {
        for ((o, x), z) in y.iter_mut().zip(p).zip(q) {
            *o = (x + z).max(0.0);
        }
    });
    // The output is kept for the backward pass only when there is one (not at inference).
    let kept = if Tp::OWNS_TAPE { yv.clone() } else { Vec::new() };
    let out = dev.tensor_from_vec(yv, shape);
    let yv = kept;
    let (ag, bg, og) = (a.ghost(), b.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let _t = timer(|| "add + relu".into(), Pass::Backward, 0.0);
        let mut gy = grads.get_or_alloc_mut(&og)?.to_vec();
        gy.par_chunks_mut(CHUNK).zip(yv.par_chunks(CHUNK)).for_each(|(g, y)| {
            for (d, &v) in g.iter_mut().zip(y) {
                if v <= 0.0 {
                    *d = 0.0;
                }
            }
        });
        add_into(grads.get_or_alloc_mut(&ag)?, &gy);
        add_into(grads.get_or_alloc_mut(&bg)?, &gy);
        Ok(())
    });
    out.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::conv::{conv_transpose2d, grouped_conv2d, reference::values};
    use crate::model::dynamic::dynamic_conv2d;
    use crate::model::layers::{init_rng, random_values};

    fn f32s(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&x| x as f32).collect()
    }

    fn rel(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
    }

    /// The fast op and the generic op on the same data: outputs and all gradients.
    fn compare(spec: ConvSpec, b: usize, h: usize, w: usize, dynamic: bool) {
        let dev: Cpu = Default::default();
        let kk = 4;
        let wshape = if spec.transposed {
            (spec.cin, spec.cout, spec.kernel, spec.kernel)
        } else {
            (spec.cout, spec.cin / spec.groups, spec.kernel, spec.kernel)
        };
        let wn = wshape.0 * wshape.1 * wshape.2 * wshape.3;
        let x: T4<Cpu> = dev.tensor_from_vec(f32s(&values(b * spec.cin * h * w, 51)), (b, spec.cin, h, w));
        let wflat: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(
            f32s(&values(if dynamic { kk * wn } else { wn }, 52)),
            (if dynamic { kk * wn } else { wn },),
        );
        let pi: Tensor<(usize, usize), f32, Cpu> =
            dev.tensor_from_vec(f32s(&values(b * kk, 53)).iter().map(|v| v.abs() + 0.1).collect(), (b, kk));
        let crate::config::Size { width: ow, height: oh } = spec.out_size(crate::config::Size::new(w, h));
        let r: T4<Cpu> = dev.tensor_from_vec(f32s(&values(b * spec.cout * oh * ow, 54)), (b, spec.cout, oh, ow));
        let run = |fast: bool| {
            let xt = x.leaky_trace();
            let y = match (dynamic, fast) {
                (false, true) => conv(xt, wflat.leaky_trace(), &spec),
                (true, true) => dynamic_conv(xt, pi.leaky_trace(), wflat.leaky_trace(), &spec),
                (false, false) => {
                    let w4 = wflat.leaky_trace().reshape_like(&wshape);
                    if spec.transposed {
                        conv_transpose2d(xt, w4, spec.stride, spec.padding)
                    } else {
                        grouped_conv2d(xt, w4, spec.stride, spec.padding, spec.groups)
                    }
                }
                (true, false) => {
                    dynamic_conv2d(xt, pi.leaky_trace(), wflat.leaky_trace().reshape_like(&(kk, wn)), &spec)
                }
            };
            let yv = y.as_vec();
            let grads = (y * r.clone()).sum().backward();
            let gp = if dynamic { grads.get(&pi).as_vec() } else { vec![] };
            (yv, grads.get(&x).as_vec(), grads.get(&wflat).as_vec(), gp)
        };
        let (fast, generic) = (run(true), run(false));
        assert!(rel(&fast.0, &generic.0) < 1e-5, "output {spec:?}");
        assert!(rel(&fast.1, &generic.1) < 1e-5, "input gradient {spec:?}");
        assert!(rel(&fast.2, &generic.2) < 1e-5, "weight gradient {spec:?}");
        assert!(rel(&fast.3, &generic.3) < 1e-5, "attention gradient {spec:?}");
    }

    #[test]
    fn a_permuted_input_gets_its_gradient_in_its_own_layout() {
        let dev: Cpu = Default::default();
        let (b, c, h, w) = (2, 3, 5, 4);
        let spec = ConvSpec::new(c, 4, 3, 1);
        let nhwc: Tensor<(usize, usize, usize, usize), f32, Cpu> =
            dev.tensor_from_vec(f32s(&values(b * h * w * c, 61)), (b, h, w, c));
        let wflat: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(f32s(&values(4 * c * 9, 62)), (4 * c * 9,));
        let run = |fast: bool| {
            let x = nhwc.leaky_trace().permute::<_, Axes4<0, 3, 1, 2>>();
            let y = if fast {
                conv(x, wflat.leaky_trace(), &spec)
            } else {
                grouped_conv2d(x, wflat.leaky_trace().reshape_like(&(4, c, 3, 3)), 1, 1, 1)
            };
            y.square().sum().backward().get(&nhwc).as_vec()
        };
        assert!(rel(&run(true), &run(false)) < 1e-5);
    }

    #[test]
    fn kernels_aggregated_in_groups_give_the_per_sample_result() {
        let dev: Cpu = Default::default();
        let rng = &mut init_rng(21);
        let spec = ConvSpec { dynamic: true, ..ConvSpec::new(3, 5, 3, 2) };
        let (b, kk, n) = (7, 4, spec.kernel_params());
        let x: T4<Cpu> = dev.tensor_from_vec(random_values(rng, b * 3 * 9 * 7), (b, 3, 9, 7));
        let (pi, bank, bias) = (random_values(rng, b * kk), random_values(rng, kk * n), random_values(rng, 5));
        // Naive: each sample alone, its kernel summed by hand, through the static path.
        let mut expected = Vec::new();
        for i in 0..b {
            let wi: Vec<f32> = (0..n).map(|j| (0..kk).map(|k| pi[i * kk + k] * bank[k * n + j]).sum()).collect();
            let xi: T4<Cpu> = dev.tensor_from_vec(x.as_vec()[i * 189..(i + 1) * 189].to_vec(), (1, 3, 9, 7));
            expected
                .extend(conv_folded(xi, None, &wi, &bias, Some(6.0), &ConvSpec { dynamic: false, ..spec }).as_vec());
        }
        // Groups as small as allowed (one sample per thread: 7 = 2+2+2+1 on 2 threads) and all
        // samples at once.
        // The attention is handed each input plane's mean.
        let seen = std::cell::RefCell::new(Vec::new());
        let attention = |means: &[f32]| {
            *seen.borrow_mut() = means.to_vec();
            pi.clone()
        };
        for max_floats in [1, usize::MAX] {
            let y = conv_folded_in_groups(x.clone(), Some(&attention), &bank, &bias, Some(6.0), &spec, max_floats);
            assert!(rel(&y.as_vec(), &expected) < 1e-5, "groups of {max_floats} floats");
        }
        let means: Vec<f32> = x.as_vec().chunks(63).map(|p| p.iter().sum::<f32>() / 63.0).collect();
        assert_eq!(seen.borrow().len(), b * 3);
        assert!(rel(&seen.borrow(), &means) < 1e-6);
    }

    #[test]
    fn max_pool_and_add_relu_match_the_generic_ops() {
        use crate::model::conv::max_pool2d;
        let dev: Cpu = Default::default();
        let x: T4<Cpu> = dev.tensor_from_vec(f32s(&values(2 * 3 * 9 * 7, 91)), (2, 3, 9, 7));
        let z: T4<Cpu> = dev.tensor_from_vec(f32s(&values(2 * 3 * 9 * 7, 92)), (2, 3, 9, 7));
        let r: T4<Cpu> = dev.tensor_from_vec(f32s(&values(2 * 3 * 5 * 4, 93)), (2, 3, 5, 4));
        let pool = |fast: bool| {
            let y = if fast { max_pool(x.leaky_trace(), 3, 2, 1) } else { max_pool2d(x.leaky_trace(), 3, 2, 1) };
            let out = y.as_vec();
            (out, (y * r.clone()).sum().backward().get(&x).as_vec())
        };
        let (f, g) = (pool(true), pool(false));
        assert_eq!(f.0, g.0);
        assert!(rel(&f.1, &g.1) < 1e-6);
        let sum = |fast: bool| {
            let y = if fast {
                add_relu(x.leaky_trace(), z.leaky_trace())
            } else {
                (x.leaky_trace() + z.leaky_trace()).relu()
            };
            let out = y.as_vec();
            let grads = y.square().sum().backward();
            (out, grads.get(&x).as_vec(), grads.get(&z).as_vec())
        };
        let (f, g) = (sum(true), sum(false));
        assert_eq!(f.0, g.0);
        assert!(rel(&f.1, &g.1) < 1e-6 && rel(&f.2, &g.2) < 1e-6);
        let rp: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(f32s(&values(6, 94)), (2, 3));
        let gap = |fast: bool| {
            let y: Tensor<(usize, usize), f32, Cpu, _> =
                if fast { global_avg_pool(x.leaky_trace()) } else { x.leaky_trace().mean::<_, Axes2<2, 3>>() };
            let out = y.as_vec();
            (out, (y * rp.clone()).sum().backward().get(&x).as_vec())
        };
        let (f, g) = (gap(true), gap(false));
        assert!(rel(&f.0, &g.0) < 1e-6 && rel(&f.1, &g.1) < 1e-6);
    }

    #[test]
    fn upsampling_equals_the_generic_op_bit_for_bit_and_its_gradient_is_the_adjoint() {
        let dev: Cpu = Default::default();
        for (b, c, h, w) in [(2, 3, 5, 4), (1, 2, 1, 3), (1, 1, 4, 1)] {
            let x: T4<Cpu> = dev.tensor_from_vec(f32s(&values(b * c * h * w, 91)), (b, c, h, w));
            let r: T4<Cpu> = dev.tensor_from_vec(f32s(&values(b * c * 4 * h * w, 92)), (b, c, 2 * h, 2 * w));
            let run = |fast: bool| {
                let y =
                    if fast { upsample2x(x.leaky_trace()) } else { crate::model::conv::upsample2x(x.leaky_trace()) };
                let out = y.as_vec();
                (out, (y * r.clone()).sum().backward().get(&x).as_vec())
            };
            let (f, g) = (run(true), run(false));
            assert!(f.0.iter().zip(&g.0).all(|(p, q)| p.to_bits() == q.to_bits()), "{b}×{c}×{h}×{w}");
            assert!(rel(&f.1, &g.1) < 1e-6, "{b}×{c}×{h}×{w}: {}", rel(&f.1, &g.1));
        }
    }

    #[test]
    fn fused_batch_norm_matches_the_generic_ops() {
        use crate::model::norm::batch_norm_train as generic_bn;
        let dev: Cpu = Default::default();
        let (b, c, h, w) = (3, 5, 4, 6);
        let x: T4<Cpu> = dev.tensor_from_vec(
            f32s(&values(b * c * h * w, 81)).iter().enumerate().map(|(i, v)| v * 2.0 + (i % 3) as f32).collect(),
            (b, c, h, w),
        );
        let gamma: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(f32s(&values(c, 82)), (c,));
        let beta: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(f32s(&values(c, 83)), (c,));
        let r: T4<Cpu> = dev.tensor_from_vec(f32s(&values(b * c * h * w, 84)), (b, c, h, w));
        for cap in [None, Some(f32::INFINITY), Some(0.5)] {
            let run = |fast: bool| {
                let (y, mean, var) = if fast {
                    batch_norm_train(x.leaky_trace(), gamma.leaky_trace(), beta.leaky_trace(), 1e-5, cap)
                } else {
                    let (y, m, v) = generic_bn(x.leaky_trace(), gamma.leaky_trace(), beta.leaky_trace(), 1e-5);
                    (
                        match cap {
                            None => y,
                            Some(c) => y.clamp(0.0, c),
                        },
                        m,
                        v,
                    )
                };
                let out = y.as_vec();
                let grads = (y * r.clone()).sum().backward();
                (out, mean, var, grads.get(&x).as_vec(), grads.get(&gamma).as_vec(), grads.get(&beta).as_vec())
            };
            let (f, g) = (run(true), run(false));
            for (name, a, bb) in [
                ("output", &f.0, &g.0),
                ("mean", &f.1, &g.1),
                ("var", &f.2, &g.2),
                ("input gradient", &f.3, &g.3),
                ("γ gradient", &f.4, &g.4),
                ("β gradient", &f.5, &g.5),
            ] {
                assert!(rel(a, bb) < 1e-5, "{name} with cap {cap:?}: {}", rel(a, bb));
            }
        }
    }

    #[test]
    fn fast_and_generic_paths_agree() {
        let c = |cin, cout, k, s| ConvSpec::new(cin, cout, k, s);
        for dynamic in [false, true] {
            compare(c(3, 5, 3, 1), 3, 7, 9, dynamic);
            compare(c(4, 6, 3, 2), 2, 9, 8, dynamic);
            compare(ConvSpec { groups: 2, ..c(4, 6, 3, 1) }, 2, 7, 5, dynamic);
            compare(ConvSpec::depthwise(5, 3, 2), 3, 9, 7, dynamic);
            compare(ConvSpec { padding: 0, ..c(6, 4, 1, 1) }, 2, 5, 5, dynamic);
            compare(ConvSpec { transposed: true, padding: 1, ..c(6, 3, 4, 2) }, 2, 4, 3, dynamic);
        }
    }
}
