//! Per-sample convolution kernels on plain slices (NCHW, one sample at a time): im2col + GEMM
//! for dense and grouped convs, direct loops for depthwise ones, col2im for transposed convs.

use super::gemm::{gemm, View};
use super::simd::with_avx2;
use crate::model::blueprint::ConvSpec;
use rayon::prelude::*;

/// Spatial sizes of a conv: input (h, w) → output (oh, ow).
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub k: usize,
    pub s: usize,
    pub p: usize,
}

impl Geometry {
    /// For a regular conv `spec` on an (h, w) input; for a transposed conv, the geometry of the
    /// regular conv it is the adjoint of (its output is our "input").
    pub fn of(spec: &ConvSpec, h: usize, w: usize) -> Geometry {
        let crate::config::Size { width: ow, height: oh } = spec.out_size(crate::config::Size::new(w, h));
        if spec.transposed {
            Geometry { h: oh, w: ow, oh: h, ow: w, k: spec.kernel, s: spec.stride, p: spec.padding }
        } else {
            Geometry { h, w, oh, ow, k: spec.kernel, s: spec.stride, p: spec.padding }
        }
    }
    fn src(&self, o: usize, t: usize, n: usize) -> Option<usize> {
        let v = (o * self.s + t) as isize - self.p as isize;
        (v >= 0 && (v as usize) < n).then_some(v as usize)
    }
    /// The outputs `lo..hi` (of `outs`) whose tap `t` lands inside an input of length `n`: the
    /// branch-free middle of im2col's rows (the per-element `src` check cost a quarter of a
    /// training step in the profile).
    fn inside(&self, t: usize, n: usize, outs: usize) -> (usize, usize) {
        let lo = self.p.saturating_sub(t).div_ceil(self.s);
        let hi = if n + self.p > t { ((n + self.p - t - 1) / self.s + 1).min(outs) } else { 0 };
        (lo.min(hi), hi)
    }
}

/// The rows of a channel plane regrouped by column modulo the stride `s`: row y holds x[y][0],
/// x[y][s], x[y][2s], …, then x[y][1], x[y][1 + s], …, so that a strided tap reads or writes one
/// contiguous run. A strided gather or scatter element by element cost over 1 ns an element
/// (a seventh of a detector training step, in its 7×7 stem and stride-2 deconvs); copies run at
/// memory speed.
struct Phases {
    s: usize,
    w: usize,
    /// Where each phase starts within a row.
    starts: Vec<usize>,
}

impl Phases {
    fn new(s: usize, w: usize) -> Phases {
        let starts =
            (0..s).scan(0, |at, r| Some(std::mem::replace(at, *at + w.saturating_sub(r).div_ceil(s)))).collect();
        Phases { s, w, starts }
    }
    /// Where input column `x` lies within a regrouped row.
    fn at(&self, x: usize) -> usize {
        self.starts[x % self.s] + x / self.s
    }
    fn split(&self, plane: &[f32], out: &mut [f32]) {
        for (row, dst) in plane.chunks_exact(self.w).zip(out.chunks_exact_mut(self.w)) {
            for (r, &start) in self.starts.iter().enumerate().take(self.w) {
                for (d, &v) in dst[start..].iter_mut().zip(row[r..].iter().step_by(self.s)) {
                    *d = v;
                }
            }
        }
    }
    fn join(&self, phased: &[f32], plane: &mut [f32]) {
        for (row, dst) in phased.chunks_exact(self.w).zip(plane.chunks_exact_mut(self.w)) {
            for (r, &start) in self.starts.iter().enumerate().take(self.w) {
                for (d, &v) in dst[r..].iter_mut().step_by(self.s).zip(&row[start..]) {
                    *d = v;
                }
            }
        }
    }
}

/// cols (C·k·k × oh·ow), row (c, ky, kx), from x (C × h × w).
pub fn im2col(x: &[f32], c: usize, g: &Geometry, cols: &mut [f32]) {
    let (p, plane) = (g.oh * g.ow, g.h * g.w);
    let phases = Phases::new(g.s, g.w);
    let mut regrouped = vec![0.0f32; if g.s > 1 { plane } else { 0 }];
    for ch in 0..c {
        let mut src = &x[ch * plane..][..plane];
        if g.s > 1 {
            phases.split(src, &mut regrouped);
            src = &regrouped;
        }
        for ky in 0..g.k {
            for kx in 0..g.k {
                let row = &mut cols[((ch * g.k + ky) * g.k + kx) * p..][..p];
                let (lo, hi) = g.inside(kx, g.w, g.ow);
                for oy in 0..g.oh {
                    let out = &mut row[oy * g.ow..(oy + 1) * g.ow];
                    match g.src(oy, ky, g.h) {
                        None => out.fill(0.0),
                        Some(y) => {
                            out[..lo].fill(0.0);
                            out[hi..].fill(0.0);
                            if lo < hi {
                                let at = y * g.w + phases.at(lo * g.s + kx - g.p);
                                out[lo..hi].copy_from_slice(&src[at..at + hi - lo]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds cols (C·k·k × oh·ow) back into x (C × h × w), each element's
/// terms in the same order whatever the stride.
pub fn col2im(cols: &[f32], c: usize, g: &Geometry, x: &mut [f32]) {
    let (p, plane) = (g.oh * g.ow, g.h * g.w);
    let phases = Phases::new(g.s, g.w);
    let mut regrouped = vec![0.0f32; if g.s > 1 { plane } else { 0 }];
    for ch in 0..c {
        let dst = &mut x[ch * plane..][..plane];
        if g.s > 1 {
            phases.split(dst, &mut regrouped);
        }
        let sums: &mut [f32] = if g.s > 1 { &mut regrouped } else { dst };
        for ky in 0..g.k {
            for kx in 0..g.k {
                let row = &cols[((ch * g.k + ky) * g.k + kx) * p..][..p];
                let (lo, hi) = g.inside(kx, g.w, g.ow);
                if lo == hi {
                    continue;
                }
                let at = phases.at(lo * g.s + kx - g.p);
                for oy in 0..g.oh {
                    if let Some(y) = g.src(oy, ky, g.h) {
                        let run = &mut sums[y * g.w + at..][..hi - lo];
                        for (d, &v) in run.iter_mut().zip(&row[oy * g.ow + lo..oy * g.ow + hi]) {
                            *d += v;
                        }
                    }
                }
            }
        }
        if g.s > 1 {
            phases.join(&regrouped, &mut x[ch * plane..][..plane]);
        }
    }
}

fn is_depthwise(spec: &ConvSpec) -> bool {
    !spec.transposed && spec.groups == spec.cin && spec.cin == spec.cout
}

/// Scratch size (floats) that `forward`/`backward` need for one sample.
pub fn scratch_len(spec: &ConvSpec, g: &Geometry) -> usize {
    if is_depthwise(spec) {
        0
    } else if spec.transposed {
        spec.cout * g.k * g.k * g.oh * g.ow
    } else {
        spec.cin / spec.groups * g.k * g.k * g.oh * g.ow
    }
}

/// y (one sample) = conv(x, w); w in PyTorch layout (OIHW, or IOHW for transposed).
pub fn forward(spec: &ConvSpec, g: &Geometry, x: &[f32], w: &[f32], y: &mut [f32], scratch: &mut [f32]) {
    let (k2, p) = (g.k * g.k, g.oh * g.ow);
    if spec.transposed {
        // cols (Cout·k² × h_in·w_in) = Wᵀ · x, then col2im onto the output.
        let (ci, co) = (spec.cin, spec.cout);
        gemm(View::new(w, ci, co * k2).t(), View::new(x, ci, p), scratch, 0.0);
        y.fill(0.0);
        col2im(scratch, co, g, y);
    } else if is_depthwise(spec) {
        // Channels in parallel (at batch 1 the batch alone leaves cores idle).
        y.par_chunks_mut(p)
            .enumerate()
            .for_each(|(ch, yc)| depthwise_plane(g, &x[ch * g.h * g.w..][..g.h * g.w], &w[ch * k2..][..k2], yc));
    } else {
        let (cg, og) = (spec.cin / spec.groups, spec.cout / spec.groups);
        for grp in 0..spec.groups {
            let cols = columns(spec, g, &x[grp * cg * g.h * g.w..], cg, scratch);
            let wg = &w[grp * og * cg * k2..][..og * cg * k2];
            gemm(View::new(wg, og, cg * k2), View::new(cols, cg * k2, p), &mut y[grp * og * p..][..og * p], 0.0);
        }
    }
}

/// `forward` of one sample with its output channels split in `parts` blocks computed in
/// parallel (im2col once; a transposed conv's columns by row blocks, then col2im by channels),
/// for a dense conv; grouped and depthwise convs run `forward`. At batch 1 the batch
/// alone gives one core work; each output element is still one GEMM row's product, the same
/// arithmetic as the unsplit GEMM's.
pub fn forward_split(
    spec: &ConvSpec,
    g: &Geometry,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    scratch: &mut [f32],
    parts: usize,
) {
    if parts < 2 || spec.groups != 1 || is_depthwise(spec) {
        return forward(spec, g, x, w, y, scratch);
    }
    let (k2, p) = (g.k * g.k, g.oh * g.ow);
    if spec.transposed {
        // cols = Wᵀ·x by row blocks (Wᵀ's rows are columns of w), then col2im channel by channel.
        let (ci, co) = (spec.cin, spec.cout);
        let rows = (co * k2).div_ceil(parts).max(1);
        scratch[..co * k2 * p].par_chunks_mut(rows * p).enumerate().for_each(|(i, block)| {
            let a = View { data: &w[i * rows..], rows: block.len() / p, cols: ci, rs: 1, cs: co * k2 };
            gemm(a, View::new(x, ci, p), block, 0.0);
        });
        let plane = g.h * g.w;
        y.par_chunks_mut(plane).zip(scratch[..co * k2 * p].par_chunks(k2 * p)).for_each(|(yc, cols)| {
            yc.fill(0.0);
            col2im(cols, 1, g, yc);
        });
        return;
    }
    let ck = spec.cin * k2;
    let cols = columns(spec, g, x, spec.cin, scratch);
    let rows = spec.cout.div_ceil(parts).max(1);
    y.par_chunks_mut(rows * p).zip(w.par_chunks(rows * ck)).for_each(|(yb, wb)| {
        gemm(View::new(wb, wb.len() / ck, ck), View::new(cols, ck, p), yb, 0.0);
    });
}

/// Whether im2col of a conv is the input itself (1×1, stride 1, no padding).
fn is_pointwise(spec: &ConvSpec) -> bool {
    spec.kernel == 1 && spec.stride == 1 && spec.padding == 0 && !spec.transposed
}

/// The im2col columns of `c` channels of `x`: the input itself for a pointwise conv (no copy:
/// a third of MobileNets' 1×1 time went into it), else written into `scratch`.
fn columns<'a>(spec: &ConvSpec, g: &Geometry, x: &'a [f32], c: usize, scratch: &'a mut [f32]) -> &'a [f32] {
    if is_pointwise(spec) {
        &x[..c * g.h * g.w]
    } else {
        im2col(x, c, g, scratch);
        &scratch[..c * g.k * g.k * g.oh * g.ow]
    }
}

/// A channel plane in the layout its strided taps read contiguously: the plane itself at
/// stride 1, else its rows regrouped by phase (`Phases`) into `buf`.
fn phased<'a>(g: &Geometry, plane: &'a [f32], buf: &'a mut Vec<f32>) -> (&'a [f32], Option<Phases>) {
    if g.s == 1 {
        return (plane, None);
    }
    let ph = Phases::new(g.s, g.w);
    buf.resize(plane.len(), 0.0);
    ph.split(plane, buf);
    (buf, Some(ph))
}

/// For each kx: the outputs `lo..hi` of a row that the tap reaches inside the input, and where
/// their inputs start in a (phased) row; found once per plane (the divisions in `inside`, per
/// tap and row, cost more than the row's arithmetic).
fn tap_runs(g: &Geometry, ph: &Option<Phases>) -> Vec<(usize, usize, usize)> {
    (0..g.k)
        .map(|kx| {
            let (lo, hi) = g.inside(kx, g.w, g.ow);
            (lo, hi, if lo < hi { run_start(ph, lo * g.s + kx - g.p) } else { 0 })
        })
        .collect()
}

/// Where the run of a tap starts in a (phased) input row: consecutive outputs read input
/// columns `first`, `first + s`, … which are consecutive within their phase.
fn run_start(ph: &Option<Phases>, first: usize) -> usize {
    ph.as_ref().map_or(first, |p| p.at(first))
}

/// One channel of a depthwise conv, tap by tap: each tap adds w·x over the run of outputs whose
/// input it reaches (found once per plane, not tested per element), a loop the compiler
/// vectorises (at strides above 1 over the phased plane). Each output still sums its taps in (ky, kx)
/// order from zero, so the result is bit for bit the per-output loop's (which ran at under
/// 1 GFLOP/s).
fn depthwise_plane(g: &Geometry, xc: &[f32], wc: &[f32], yc: &mut [f32]) {
    let mut buf = Vec::new();
    let (xs, ph) = phased(g, xc, &mut buf);
    yc.fill(0.0);
    depthwise_taps(g, xs, &ph, wc, yc);
}

with_avx2! {
    /// y += each tap's w·x over its run of outputs (x phased as `ph` says).
    fn depthwise_taps(g: &Geometry, xs: &[f32], ph: &Option<Phases>, wc: &[f32], yc: &mut [f32]) {
        let runs = tap_runs(g, ph);
        for oy in 0..g.oh {
            let row = &mut yc[oy * g.ow..][..g.ow];
            for ky in 0..g.k {
                let Some(yy) = g.src(oy, ky, g.h) else { continue };
                let xrow = &xs[yy * g.w..][..g.w];
                for (kx, &(lo, hi, start)) in runs.iter().enumerate() {
                    let wv = wc[ky * g.k + kx];
                    for (o, &v) in row[lo..hi].iter_mut().zip(&xrow[start..]) {
                        *o += wv * v;
                    }
                }
            }
        }
    }
}

/// The gradients of one channel of a depthwise conv, tap by tap: gw[tap] += Σ gy·x over the
/// outputs in raster order, gx += gy·w over each tap's run. The taps of a row run with kx
/// descending, so that each input's gradient receives its terms in the per-output loop's order
/// (outputs in raster order reach an input through ky and kx descending): bit for bit that
/// loop's result, which ran at under 2 GFLOP/s.
fn depthwise_plane_backward(
    g: &Geometry,
    xc: &[f32],
    wc: &[f32],
    gyc: &[f32],
    gxc: Option<&mut [f32]>,
    gwc: &mut [f32],
) {
    let mut xbuf = Vec::new();
    let (xs, ph) = phased(g, xc, &mut xbuf);
    match (gxc, &ph) {
        // At stride > 1 the input gradient accumulates in the phased layout (starting from its
        // values, so that the join back is gx += the terms).
        (Some(gxc), Some(p)) => {
            let mut gbuf = vec![0.0; gxc.len()];
            p.split(gxc, &mut gbuf);
            depthwise_gradient_taps(g, xs, &ph, wc, gyc, Some(&mut gbuf), gwc);
            p.join(&gbuf, gxc);
        }
        (gxc, _) => depthwise_gradient_taps(g, xs, &ph, wc, gyc, gxc, gwc),
    }
}

with_avx2! {
    /// gw[tap] += Σ gy·x and gx += gy·w over each tap's run (x and gx phased as `ph` says).
    fn depthwise_gradient_taps(
        g: &Geometry,
        xs: &[f32],
        ph: &Option<Phases>,
        wc: &[f32],
        gyc: &[f32],
        gx: Option<&mut [f32]>,
        gwc: &mut [f32],
    ) {
        let mut gx = gx;
        let runs = tap_runs(g, ph);
        for oy in 0..g.oh {
            let drow = &gyc[oy * g.ow..][..g.ow];
            for ky in 0..g.k {
                let Some(yy) = g.src(oy, ky, g.h) else { continue };
                for (kx, &(lo, hi, first)) in runs.iter().enumerate().rev() {
                    let (t, start) = (ky * g.k + kx, yy * g.w + first);
                    let ds = &drow[lo..hi];
                    let mut acc = gwc[t];
                    for (&d, &v) in ds.iter().zip(&xs[start..]) {
                        acc += d * v;
                    }
                    gwc[t] = acc;
                    if let Some(gx) = gx.as_deref_mut() {
                        let wv = wc[t];
                        for (o, &d) in gx[start..].iter_mut().zip(ds) {
                            *o += d * wv;
                        }
                    }
                }
            }
        }
    }
}

/// Gradients of one sample: gx += ∂L/∂x (unless `spec.input_grad` is off) and gw += ∂L/∂w given
/// gy = ∂L/∂y.
pub fn backward(
    spec: &ConvSpec,
    g: &Geometry,
    (x, w): (&[f32], &[f32]),
    gy: &[f32],
    (gx, gw): (&mut [f32], &mut [f32]),
    scratch: &mut [f32],
) {
    let (k2, p) = (g.k * g.k, g.oh * g.ow);
    if spec.transposed {
        // Forward was y = col2im(Wᵀx): so gcols = im2col(gy), gx = W·gcols, gW = x·gcolsᵀ.
        let (ci, co) = (spec.cin, spec.cout);
        im2col(gy, co, g, scratch);
        if spec.input_grad {
            gemm(View::new(w, ci, co * k2), View::new(scratch, co * k2, p), gx, 1.0);
        }
        gemm(View::new(x, ci, p), View::new(scratch, co * k2, p).t(), gw, 1.0);
    } else if is_depthwise(spec) {
        let plane = g.h * g.w;
        for ch in 0..spec.cin {
            let gxc = spec.input_grad.then(|| &mut gx[ch * plane..][..plane]);
            let (xc, wc, gyc) = (&x[ch * plane..][..plane], &w[ch * k2..][..k2], &gy[ch * p..][..p]);
            depthwise_plane_backward(g, xc, wc, gyc, gxc, &mut gw[ch * k2..][..k2]);
        }
    } else {
        let (cg, og) = (spec.cin / spec.groups, spec.cout / spec.groups);
        for grp in 0..spec.groups {
            let xg = &x[grp * cg * g.h * g.w..];
            let wg = &w[grp * og * cg * k2..][..og * cg * k2];
            let gyg = &gy[grp * og * p..][..og * p];
            let cols = columns(spec, g, xg, cg, scratch);
            gemm(
                View::new(gyg, og, p),
                View::new(cols, cg * k2, p).t(),
                &mut gw[grp * og * cg * k2..][..og * cg * k2],
                1.0,
            );
            if spec.input_grad {
                gemm(View::new(wg, og, cg * k2).t(), View::new(gyg, og, p), scratch, 0.0);
                col2im(scratch, cg, g, &mut gx[grp * cg * g.h * g.w..]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::conv::reference::{values, Conv};

    fn f32s(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&x| x as f32).collect()
    }

    fn close(a: &[f32], b: &[f64]) -> bool {
        let scale = b.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (*x as f64 - y).abs() / scale < 1e-5)
    }

    /// (kernel, stride, padding, h, w) of the im2col/col2im tests: strides 1–3, paddings wider
    /// than the kernel, inputs narrower than the stride (every input the kernel fits in).
    fn geometries() -> impl Iterator<Item = (usize, usize, usize, usize, usize)> {
        let convs = [(1, 1, 0), (1, 2, 0), (3, 1, 1), (3, 2, 1), (3, 1, 3), (7, 2, 3), (4, 2, 1), (3, 3, 0), (5, 3, 4)];
        convs.into_iter().flat_map(|(k, st, pad)| {
            [(1, 1), (2, 5), (7, 6), (9, 13)]
                .into_iter()
                .filter(move |&(h, w)| h + 2 * pad >= k && w + 2 * pad >= k)
                .map(move |(h, w)| (k, st, pad, h, w))
        })
    }

    #[test]
    fn im2col_equals_the_element_by_element_definition() {
        for (k, st, pad, h, w) in geometries() {
            let spec = ConvSpec { padding: pad, ..ConvSpec::new(2, 3, k, st) };
            let g = Geometry::of(&spec, h, w);
            let x: Vec<f32> = (0..2 * h * w).map(|i| i as f32 + 1.0).collect();
            let p = g.oh * g.ow;
            let mut cols = vec![f32::NAN; 2 * k * k * p];
            im2col(&x, 2, &g, &mut cols);
            for c in 0..2 {
                for (ky, kx, oy, ox) in taps_and_outputs(k, g.oh, g.ow) {
                    let (yy, xx) = ((oy * st + ky) as isize - pad as isize, (ox * st + kx) as isize - pad as isize);
                    let inside = yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w;
                    let expected = if inside { x[(c * h + yy as usize) * w + xx as usize] } else { 0.0 };
                    let got = cols[((c * k + ky) * k + kx) * p + oy * g.ow + ox];
                    assert_eq!(got, expected, "k{k} s{st} p{pad} {h}×{w}: c{c} tap ({ky},{kx}) out ({oy},{ox})");
                }
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ in f64, over strides, paddings wider than the kernel
        // and inputs narrower than it.
        for (k, st, pad, h, w) in geometries() {
            let spec = ConvSpec { padding: pad, ..ConvSpec::new(2, 3, k, st) };
            let g = Geometry::of(&spec, h, w);
            let x: Vec<f32> = (0..2 * h * w).map(|i| (i % 7) as f32 - 3.0).collect();
            let c: Vec<f32> = (0..2 * k * k * g.oh * g.ow).map(|i| (i % 5) as f32 - 2.0).collect();
            let mut cols = vec![f32::NAN; c.len()];
            im2col(&x, 2, &g, &mut cols);
            let mut back = vec![0.0; x.len()];
            col2im(&c, 2, &g, &mut back);
            let lhs: f64 = cols.iter().zip(&c).map(|(a, b)| (a * b) as f64).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| (a * b) as f64).sum();
            assert_eq!(lhs, rhs, "k{k} s{st} p{pad} {h}×{w}");
        }
    }

    #[test]
    fn depthwise_planes_equal_the_per_output_loop_bit_for_bit() {
        // The loop it replaced, as the reference: each output sums its taps in (ky, kx) order.
        let naive = |g: &Geometry, x: &[f32], w: &[f32]| -> Vec<f32> {
            let mut y = vec![0.0f32; g.oh * g.ow];
            for (oy, ox) in (0..g.oh).flat_map(|oy| (0..g.ow).map(move |ox| (oy, ox))) {
                let mut acc = 0.0;
                for ky in 0..g.k {
                    let Some(yy) = g.src(oy, ky, g.h) else { continue };
                    for kx in 0..g.k {
                        if let Some(xx) = g.src(ox, kx, g.w) {
                            acc += w[ky * g.k + kx] * x[yy * g.w + xx];
                        }
                    }
                }
                y[oy * g.ow + ox] = acc;
            }
            y
        };
        for (k, st, pad, h, w) in geometries() {
            let spec = ConvSpec { padding: pad, ..ConvSpec::depthwise(1, k, st) };
            let g = Geometry::of(&spec, h, w);
            let x = f32s(&values(h * w, 3));
            let wt = f32s(&values(k * k, 4));
            let mut y = vec![f32::NAN; g.oh * g.ow];
            depthwise_plane(&g, &x, &wt, &mut y);
            let want = naive(&g, &x, &wt);
            assert!(y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "k{k} s{st} p{pad} {h}×{w}");
        }
    }

    #[test]
    fn depthwise_gradients_equal_the_per_output_loop_bit_for_bit() {
        // The loop they replaced, as the reference: outputs in raster order, each adding its
        // taps' terms in (ky, kx) order to gw and gx (which already hold earlier sums).
        let naive = |g: &Geometry, x: &[f32], w: &[f32], gy: &[f32], gx: &mut [f32], gw: &mut [f32]| {
            for (oy, ox) in (0..g.oh).flat_map(|oy| (0..g.ow).map(move |ox| (oy, ox))) {
                let d = gy[oy * g.ow + ox];
                for ky in 0..g.k {
                    let Some(yy) = g.src(oy, ky, g.h) else { continue };
                    for kx in 0..g.k {
                        if let Some(xx) = g.src(ox, kx, g.w) {
                            gw[ky * g.k + kx] += d * x[yy * g.w + xx];
                            gx[yy * g.w + xx] += d * w[ky * g.k + kx];
                        }
                    }
                }
            }
        };
        for (k, st, pad, h, w) in geometries() {
            let spec = ConvSpec { padding: pad, ..ConvSpec::depthwise(1, k, st) };
            let g = Geometry::of(&spec, h, w);
            let (x, wt, gy) = (f32s(&values(h * w, 5)), f32s(&values(k * k, 6)), f32s(&values(g.oh * g.ow, 7)));
            let (gx0, gw0) = (f32s(&values(h * w, 8)), f32s(&values(k * k, 9)));
            let (mut gx, mut gw) = (gx0.clone(), gw0.clone());
            depthwise_plane_backward(&g, &x, &wt, &gy, Some(&mut gx), &mut gw);
            let (mut rx, mut rw) = (gx0.clone(), gw0.clone());
            naive(&g, &x, &wt, &gy, &mut rx, &mut rw);
            let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(same(&gx, &rx) && same(&gw, &rw), "k{k} s{st} p{pad} {h}×{w}");
            // Without the input gradient: the same weight gradient.
            let mut gw2 = gw0.clone();
            depthwise_plane_backward(&g, &x, &wt, &gy, None, &mut gw2);
            assert!(same(&gw2, &rw), "k{k} s{st} p{pad} {h}×{w} (weights only)");
        }
    }

    #[test]
    fn a_sample_split_by_output_channels_gives_the_same_bits() {
        for (spec, h, w) in [
            (ConvSpec::new(5, 7, 3, 1), 9, 8),
            (ConvSpec::new(4, 9, 3, 2), 7, 6),
            (ConvSpec { padding: 0, ..ConvSpec::new(6, 5, 1, 1) }, 5, 5),
            (ConvSpec { transposed: true, padding: 1, ..ConvSpec::new(6, 5, 4, 2) }, 4, 3),
            (ConvSpec::new(1, 1, 3, 1), 6, 5),
        ] {
            let g = Geometry::of(&spec, h, w);
            let out = spec.out_size(crate::config::Size::new(w, h));
            let (x, wt) = (
                f32s(&values(spec.cin * h * w, 11)),
                f32s(&values(spec.cout * spec.cin * spec.kernel * spec.kernel, 12)),
            );
            let mut scratch = vec![0.0; scratch_len(&spec, &g)];
            let mut whole = vec![0.0; spec.cout * out.width * out.height];
            forward(&spec, &g, &x, &wt, &mut whole, &mut scratch);
            for parts in [2, 3, 16] {
                let mut split = vec![f32::NAN; whole.len()];
                forward_split(&spec, &g, &x, &wt, &mut split, &mut scratch, parts);
                assert!(split.iter().zip(&whole).all(|(a, b)| a.to_bits() == b.to_bits()), "{spec:?} in {parts}");
            }
        }
    }

    /// Every (ky, kx, oy, ox).
    fn taps_and_outputs(k: usize, oh: usize, ow: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        (0..k).flat_map(move |ky| {
            (0..k).flat_map(move |kx| (0..oh).flat_map(move |oy| (0..ow).map(move |ox| (ky, kx, oy, ox))))
        })
    }

    #[test]
    fn regular_grouped_and_depthwise_match_the_f64_reference() {
        for r in [
            Conv { b: 1, c: 3, h: 7, w: 5, o: 4, k: 3, stride: 1, pad: 1, groups: 1 },
            Conv { b: 1, c: 4, h: 9, w: 7, o: 6, k: 3, stride: 2, pad: 1, groups: 2 },
            Conv { b: 1, c: 5, h: 8, w: 9, o: 5, k: 3, stride: 2, pad: 1, groups: 5 },
            Conv { b: 1, c: 2, h: 11, w: 6, o: 3, k: 7, stride: 2, pad: 3, groups: 1 },
            // Pointwise: the GEMMs read the input as the columns.
            Conv { b: 1, c: 6, h: 5, w: 7, o: 4, k: 1, stride: 1, pad: 0, groups: 1 },
            Conv { b: 1, c: 6, h: 5, w: 7, o: 4, k: 1, stride: 1, pad: 0, groups: 2 },
            Conv { b: 1, c: 6, h: 5, w: 7, o: 4, k: 1, stride: 2, pad: 0, groups: 1 },
        ] {
            let spec = ConvSpec { padding: r.pad, groups: r.groups, ..ConvSpec::new(r.c, r.o, r.k, r.stride) };
            let g = Geometry::of(&spec, r.h, r.w);
            let (xv, wv) = (values(r.c * r.h * r.w, 41), values(r.o * r.c / r.groups * r.k * r.k, 42));
            let (oh, ow) = r.out();
            let gyv = values(r.o * oh * ow, 43);
            let mut scratch = vec![0.0; scratch_len(&spec, &g)];
            let mut y = vec![0.0; r.o * oh * ow];
            forward(&spec, &g, &f32s(&xv), &f32s(&wv), &mut y, &mut scratch);
            assert!(close(&y, &r.forward(&xv, &wv)), "forward {:?}", (r.c, r.o, r.groups));
            let (mut gx, mut gw) = (vec![0.0; xv.len()], vec![0.0; wv.len()]);
            backward(&spec, &g, (&f32s(&xv), &f32s(&wv)), &f32s(&gyv), (&mut gx, &mut gw), &mut scratch);
            let (rx, rw) = r.backward(&xv, &wv, &gyv);
            assert!(close(&gx, &rx) && close(&gw, &rw), "backward {:?}", (r.c, r.o, r.groups));
        }
    }

    #[test]
    fn without_input_gradient_the_weight_gradient_is_the_same_and_gx_untouched() {
        for spec in [
            ConvSpec::new(3, 4, 7, 2),
            ConvSpec::depthwise(3, 3, 1),
            ConvSpec { transposed: true, padding: 1, ..ConvSpec::new(3, 4, 4, 2) },
        ] {
            // A 9 × 8 input of either kind (for a transposed conv, g's "output" is its input).
            let g = Geometry::of(&spec, 9, 8);
            let out = if spec.transposed { g.h * g.w } else { g.oh * g.ow };
            let x: Vec<f32> = (0..3 * 9 * 8).map(|i| (i % 11) as f32 - 5.0).collect();
            let w: Vec<f32> = (0..spec.kernel_params()).map(|i| (i % 7) as f32 * 0.25 - 0.5).collect();
            let gy: Vec<f32> = (0..spec.cout * out).map(|i| (i % 5) as f32 - 2.0).collect();
            let run = |spec: &ConvSpec| {
                let (mut gx, mut gw) = (vec![0.5f32; x.len()], vec![0.0; w.len()]);
                backward(spec, &g, (&x, &w), &gy, (&mut gx, &mut gw), &mut vec![0.0; scratch_len(spec, &g)]);
                (gx, gw)
            };
            let (gx, gw) = run(&spec);
            let (gx_off, gw_off) = run(&spec.on_image());
            assert_eq!(gw_off, gw, "{spec:?}");
            assert!(gx.iter().any(|&v| v != 0.5) && gx_off.iter().all(|&v| v == 0.5), "{spec:?}");
        }
    }

    #[test]
    fn transposed_is_the_adjoint_of_the_regular_conv() {
        // ⟨conv(x), y⟩ = ⟨x, convᵀ(y)⟩ for the same weights (OIHW for conv = IOHW for its
        // transpose, with I and O swapped).
        let (c, o, h, w) = (3usize, 4usize, 8usize, 6usize);
        let conv = ConvSpec { padding: 1, ..ConvSpec::new(c, o, 4, 2) };
        let tconv = ConvSpec { transposed: true, padding: 1, ..ConvSpec::new(o, c, 4, 2) };
        let g = Geometry::of(&conv, h, w);
        let gt = Geometry::of(&tconv, g.oh, g.ow);
        assert_eq!((gt.h, gt.w), (h, w));
        let x = f32s(&values(c * h * w, 1));
        let wt = f32s(&values(o * c * 16, 2));
        let yv = f32s(&values(o * g.oh * g.ow, 3));
        let mut cx = vec![0.0; o * g.oh * g.ow];
        forward(&conv, &g, &x, &wt, &mut cx, &mut vec![0.0; scratch_len(&conv, &g)]);
        let mut ty = vec![0.0; c * h * w];
        forward(&tconv, &gt, &yv, &wt, &mut ty, &mut vec![0.0; scratch_len(&tconv, &gt)]);
        let lhs: f64 = cx.iter().zip(&yv).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
        let rhs: f64 = x.iter().zip(&ty).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
        assert!((lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
    }
}
