//! Time and work of the fast CPU path's ops by kind and pass, for `dypose bench model
//! --profile`. Per thread: an op is recorded on the thread that calls it (its forward) or runs
//! the backward pass, however many threads the op itself uses; so one benchmark thread sees its
//! own ops only. Off unless switched on: an op then pays a thread-local read.

use crate::model::blueprint::ConvSpec;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Instant;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static TABLE: RefCell<BTreeMap<(String, Pass), Totals>> = const { RefCell::new(BTreeMap::new()) };
}

/// Which half of a training step (inference is all forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pass {
    Forward,
    Backward,
}

/// What one kind of op took, summed over its calls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub calls: u64,
    pub seconds: f64,
    /// Multiply-adds × 2.
    pub flops: f64,
}

/// Starts (or stops) recording on this thread, and forgets what was recorded.
pub fn record(on: bool) {
    TABLE.with(|t| t.borrow_mut().clear());
    ON.with(|o| o.set(on));
}

/// What this thread recorded since [`record`], by kind and pass.
pub fn recorded() -> Vec<(String, Pass, Totals)> {
    TABLE.with(|t| t.borrow().iter().map(|((k, p), t)| (k.clone(), *p, *t)).collect())
}

/// Times the rest of the scope as one call of `kind` (a closure, so that nothing is formatted
/// while recording is off).
pub fn timer(kind: impl FnOnce() -> String, pass: Pass, flops: f64) -> Timer {
    Timer { what: ON.with(Cell::get).then(|| (kind(), pass, flops, Instant::now())) }
}

pub struct Timer {
    what: Option<(String, Pass, f64, Instant)>,
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some((kind, pass, flops, start)) = self.what.take() {
            let seconds = start.elapsed().as_secs_f64();
            TABLE.with(|table| {
                let mut table = table.borrow_mut();
                let t = table.entry((kind, pass)).or_default();
                t.calls += 1;
                t.seconds += seconds;
                t.flops += flops;
            });
        }
    }
}

/// A conv's kind as the profile names it: `dy ` for dynamic, then depthwise / deconv / conv and
/// the kernel size (`conv 3×3 s2`).
pub fn conv_kind(spec: &ConvSpec) -> String {
    let what = if spec.transposed {
        "deconv"
    } else if spec.groups > 1 && spec.groups == spec.cin {
        "depthwise"
    } else {
        "conv"
    };
    let dy = if spec.dynamic { "dy " } else { "" };
    let stride = if spec.stride > 1 { format!(" s{}", spec.stride) } else { String::new() };
    format!("{dy}{what} {k}×{k}{stride}", k = spec.kernel)
}

/// Forward multiply-adds × 2 of a conv over `batch` samples whose regular-conv output (for a
/// transposed conv: its input) is `out_pixels` per channel.
pub fn conv_flops(spec: &ConvSpec, batch: usize, out_pixels: usize) -> f64 {
    2.0 * batch as f64 * spec.kernel_params() as f64 * out_pixels as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::ops;
    use dfdx::prelude::*;

    #[test]
    fn kinds_and_work_by_hand() {
        let dy = ConvSpec::new(64, 128, 3, 2).dynamic(true);
        assert_eq!(conv_kind(&dy), "dy conv 3×3 s2");
        assert_eq!(conv_kind(&ConvSpec::depthwise(32, 5, 1)), "depthwise 5×5");
        assert_eq!(conv_kind(&ConvSpec { transposed: true, ..ConvSpec::new(64, 32, 4, 2) }), "deconv 4×4 s2");
        // 2 × batch × (O·I·k²) × output pixels: 2 · 8 · (128·64·9) · (28·28).
        assert_eq!(conv_flops(&dy, 8, 28 * 28), 2.0 * 8.0 * (128 * 64 * 9) as f64 * 784.0);
    }

    #[test]
    fn a_training_step_records_each_op_once_per_pass_with_its_work() {
        let dev: Cpu = Default::default();
        let spec = ConvSpec::new(3, 4, 3, 1);
        let x: Tensor<(usize, usize, usize, usize), f32, Cpu> =
            dev.tensor_from_vec(vec![0.5; 2 * 3 * 5 * 5], (2, 3, 5, 5));
        let w: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(vec![0.1; 4 * 3 * 9], (4 * 3 * 9,));
        let _ = ops::conv(x.clone(), w.clone(), &spec);
        assert!(recorded().is_empty(), "nothing is recorded while off");
        record(true);
        let y = ops::conv(x.leaky_trace(), w.retaped(), &spec);
        let _ = ops::add_relu(y.with_empty_tape(), y).sum().backward();
        let r = recorded();
        record(false);
        let find = |kind: &str, pass| r.iter().find(|(k, p, _)| k == kind && *p == pass).map(|(_, _, t)| *t).unwrap();
        let fwd = find("conv 3×3", Pass::Forward);
        // 2 samples × (4·3·9) weights × 5·5 outputs × 2.
        assert_eq!((fwd.calls, fwd.flops), (1, 2.0 * 2.0 * 108.0 * 25.0));
        assert_eq!(find("conv 3×3", Pass::Backward).flops, 2.0 * fwd.flops, "input and weight gradients");
        assert_eq!(find("add + relu", Pass::Forward).calls, 1);
        assert_eq!(find("add + relu", Pass::Backward).calls, 1);
        assert!(r.iter().all(|(_, _, t)| t.seconds > 0.0));
    }
}
