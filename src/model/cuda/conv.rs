//! Convolutions by cuDNN, as a custom op on dfdx's tape: the layer's [`ConvPlan`] gives the
//! descriptors and which of cuDNN's three calls computes the output, the input gradient and the
//! filter gradient. Algorithms are chosen once per plan (cuDNN's heuristics) and kept with their
//! workspace sizes; one workspace buffer per thread grows to the largest. Gradients are added
//! into dfdx's buffers (beta = 1), as every dfdx op adds its gradients.

use super::ptr::{self, Raw};
use crate::model::blueprint::ConvSpec;
use crate::model::conv::T4;
use crate::model::cudnn_plan::{ConvPlan, Dims, ForwardCall};
use cudarc::cudnn::sys::{
    cudnnConvolutionBwdDataAlgo_t, cudnnConvolutionBwdFilterAlgo_t, cudnnConvolutionFwdAlgo_t, cudnnConvolutionMode_t,
    cudnnMathType_t, cudnnTensorFormat_t,
};
use cudarc::cudnn::{
    Conv2dBackwardData, Conv2dBackwardFilter, Conv2dDescriptor, Conv2dForward, Cudnn, FilterDescriptor,
    TensorDescriptor,
};
use cudarc::driver::{CudaDevice, CudaSlice, DeviceSlice};
use dfdx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

type Flat<Tp> = Tensor<(usize,), f32, Cuda, Tp>;

/// Whether convolutions may use TF32 tensor cores (`DYPOSE_CUDNN_TF32=1`): faster on Ampere and
/// later, at about 1e-3 relative error; off by default, so that results are FP32's.
fn tf32() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("DYPOSE_CUDNN_TF32").is_ok_and(|v| v == "1"))
}

/// One plan's descriptors and the algorithms cuDNN's heuristics chose for its three calls.
struct Prepared {
    conv: Conv2dDescriptor<f32>,
    input: TensorDescriptor<f32>,
    output: TensorDescriptor<f32>,
    filter: FilterDescriptor<f32>,
    forward: (cudnnConvolutionFwdAlgo_t, usize),
    backward_data: (cudnnConvolutionBwdDataAlgo_t, usize),
    backward_filter: (cudnnConvolutionBwdFilterAlgo_t, usize),
}

/// This thread's cuDNN handle (cuDNN handles are not shared between threads), its prepared
/// plans and its workspace.
struct State {
    cudnn: Arc<Cudnn>,
    device: Arc<CudaDevice>,
    plans: HashMap<ConvPlan, Prepared>,
    workspace: Option<CudaSlice<u8>>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn failed(what: &str, e: impl std::fmt::Debug) -> ! {
    panic!("cuDNN {what} failed: {e:?}")
}

impl State {
    fn new(dev: &Cuda) -> State {
        let device = ptr::device_of(dev);
        let cudnn = Cudnn::new(device.clone()).unwrap_or_else(|e| failed("handle creation", e));
        State { cudnn, device, plans: HashMap::new(), workspace: None }
    }

    fn prepare(&mut self, plan: &ConvPlan) -> &Prepared {
        let cudnn = self.cudnn.clone();
        self.plans.entry(*plan).or_insert_with(|| {
            let nchw = cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;
            let tensor =
                |d: Dims| cudnn.create_4d_tensor::<f32>(nchw, d).unwrap_or_else(|e| failed("tensor descriptor", e));
            let mut conv = cudnn
                .create_conv2d::<f32>(
                    plan.pad,
                    plan.stride,
                    plan.dilation,
                    cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                )
                .unwrap_or_else(|e| failed("convolution descriptor", e));
            conv.set_group_count(plan.groups).unwrap_or_else(|e| failed("group count", e));
            let math = if tf32() { cudnnMathType_t::CUDNN_DEFAULT_MATH } else { cudnnMathType_t::CUDNN_FMA_MATH };
            conv.set_math_type(math).unwrap_or_else(|e| failed("math type", e));
            let filter =
                cudnn.create_4d_filter::<f32>(nchw, plan.filter).unwrap_or_else(|e| failed("filter descriptor", e));
            let (input, output) = (tensor(plan.conv_input), tensor(plan.conv_output));
            let fwd = Conv2dForward { conv: &conv, x: &input, w: &filter, y: &output };
            let algo = fwd.pick_algorithm().unwrap_or_else(|e| failed("forward algorithm", e));
            let forward = (algo, fwd.get_workspace_size(algo).unwrap_or_else(|e| failed("forward workspace", e)));
            let bwd = Conv2dBackwardData { conv: &conv, dx: &input, w: &filter, dy: &output };
            let algo = bwd.pick_algorithm().unwrap_or_else(|e| failed("backward-data algorithm", e));
            let backward_data =
                (algo, bwd.get_workspace_size(algo).unwrap_or_else(|e| failed("backward-data workspace", e)));
            let bwf = Conv2dBackwardFilter { conv: &conv, x: &input, dw: &filter, dy: &output };
            let algo = bwf.pick_algorithm().unwrap_or_else(|e| failed("backward-filter algorithm", e));
            let backward_filter =
                (algo, bwf.get_workspace_size(algo).unwrap_or_else(|e| failed("backward-filter workspace", e)));
            Prepared { conv, input, output, filter, forward, backward_data, backward_filter }
        })
    }

    /// A workspace of at least `bytes` (none for 0).
    fn workspace(&mut self, bytes: usize) -> Option<&mut CudaSlice<u8>> {
        if bytes == 0 {
            return None;
        }
        if self.workspace.as_ref().is_none_or(|w| w.len() < bytes) {
            self.workspace =
                Some(self.device.alloc_zeros::<u8>(bytes).unwrap_or_else(|e| failed("workspace allocation", e)));
        }
        self.workspace.as_mut()
    }
}

/// One of cuDNN's three convolution calls of a plan, on raw buffers; `accumulate` adds into the
/// destination (beta = 1) instead of overwriting it.
#[derive(Clone, Copy)]
enum Call {
    /// conv_output = conv(conv_input, filter)
    Forward { input: Raw, filter: Raw, output: Raw },
    /// conv_input = convᵀ(conv_output, filter)
    BackwardData { output: Raw, filter: Raw, input: Raw },
    /// filter = Σ conv_input ⊗ conv_output
    BackwardFilter { input: Raw, output: Raw, filter: Raw },
}

fn run(dev: &Cuda, plan: &ConvPlan, call: Call, accumulate: bool) {
    STATE.with(|cell| {
        let mut cell = cell.borrow_mut();
        let state = cell.get_or_insert_with(|| State::new(dev));
        let bytes = {
            let p = state.prepare(plan);
            match call {
                Call::Forward { .. } => p.forward.1,
                Call::BackwardData { .. } => p.backward_data.1,
                Call::BackwardFilter { .. } => p.backward_filter.1,
            }
        };
        state.workspace(bytes);
        let State { plans, workspace, .. } = state;
        let p = &plans[plan];
        let workspace = workspace.as_mut().filter(|_| bytes > 0);
        let scale = (1.0f32, if accumulate { 1.0 } else { 0.0 });
        // SAFETY: every buffer is a live dfdx buffer of the plan's dims (the plan was built from
        // these tensors' shapes), and cuDNN runs on dfdx's stream, so in order with dfdx's ops.
        let status = unsafe {
            match call {
                Call::Forward { input, filter, mut output } => {
                    let op = Conv2dForward { conv: &p.conv, x: &p.input, w: &p.filter, y: &p.output };
                    op.launch(p.forward.0, workspace, scale, &input, &filter, &mut output)
                }
                Call::BackwardData { output, filter, mut input } => {
                    let op = Conv2dBackwardData { conv: &p.conv, dx: &p.input, w: &p.filter, dy: &p.output };
                    op.launch(p.backward_data.0, workspace, scale, &mut input, &filter, &output)
                }
                Call::BackwardFilter { input, output, mut filter } => {
                    let op = Conv2dBackwardFilter { conv: &p.conv, x: &p.input, dw: &p.filter, dy: &p.output };
                    op.launch(p.backward_filter.0, workspace, scale, &input, &mut filter, &output)
                }
            }
        };
        status.unwrap_or_else(|e| failed("convolution", e));
    })
}

/// The convolution of `spec` with the flat filter `w` (a dynamic conv's: every sample's
/// aggregated kernel, sample after sample) as a dfdx op with its backward pass.
pub fn conv<Tp: Tape<f32, Cuda> + Merge<Tp>>(x: T4<Cuda, Tp>, w: Flat<Tp>, spec: &ConvSpec) -> T4<Cuda, Tp> {
    let (x, xtape) = x.split_tape();
    let (w, wtape) = w.split_tape();
    let mut tape = xtape.merge(wtape);
    let dev = x.device().clone();
    let (b, _, h, wd) = *x.shape();
    let (spec, plan) = (*spec, ConvPlan::new(spec, b, h, wd));
    let out = spec.out_size(crate::config::Size::new(wd, h));
    let y: T4<Cuda> = dev.zeros_like(&(b, spec.cout, out.height, out.width));
    let (xr, wr, yr) = (ptr::of(&x), ptr::of(&w), ptr::of(&y));
    match plan.call {
        ForwardCall::Convolution => run(&dev, &plan, Call::Forward { input: xr, filter: wr, output: yr }, false),
        ForwardCall::BackwardData => run(&dev, &plan, Call::BackwardData { output: xr, filter: wr, input: yr }, false),
    }
    let (xg, wg, yg) = (x.ghost(), w.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        // `x` and `w` stay alive in this closure until the backward pass has read them.
        let (xr, wr) = (ptr::of(&x), ptr::of(&w));
        let gy = ptr::raw(grads.get_or_alloc_mut(&yg)?);
        if spec.input_grad {
            let gx = ptr::raw(grads.get_or_alloc_mut(&xg)?);
            let call = match plan.call {
                ForwardCall::Convolution => Call::BackwardData { output: gy, filter: wr, input: gx },
                ForwardCall::BackwardData => Call::Forward { input: gy, filter: wr, output: gx },
            };
            run(x.device(), &plan, call, true);
        }
        let gw = ptr::raw(grads.get_or_alloc_mut(&wg)?);
        let call = match plan.call {
            ForwardCall::Convolution => Call::BackwardFilter { input: xr, output: gy, filter: gw },
            ForwardCall::BackwardData => Call::BackwardFilter { input: gy, output: xr, filter: gw },
        };
        run(x.device(), &plan, call, true);
        Ok(())
    });
    y.put_tape(tape)
}
