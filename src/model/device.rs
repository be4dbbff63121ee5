//! The compute device named on the command line (`--device cpu|cuda`). Generic code is
//! monomorphised once per device; `with_device!` picks the instance at run time, so every
//! subcommand accepts the same devices and fails the same way.

/// The CUDA device of this process: device 0, or in a job of several ranks the device of the
/// rank's place on its machine (its local rank: one process per GPU), unless the launcher left
/// the process one GPU (`CUDA_VISIBLE_DEVICES` naming one); an error says why there is none.
#[cfg(feature = "cuda")]
pub fn cuda() -> anyhow::Result<dfdx::prelude::Cuda> {
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").map(|v| v.split(',').filter(|d| !d.trim().is_empty()).count());
    let ordinal = if visible.is_ok_and(|n| n == 1) { 0 } else { crate::dist::world().local_rank };
    dfdx::prelude::Cuda::try_build(ordinal, 0).map_err(|e| {
        anyhow::anyhow!(
            "--device cuda: no usable NVIDIA GPU {ordinal} ({e:?}); check nvidia-smi and LD_LIBRARY_PATH{}",
            if ordinal > 0 { " (one rank per GPU: more ranks on this machine than GPUs?)" } else { "" }
        )
    })
}

/// Why this binary cannot run on `device` (a CPU-only build asked for CUDA).
pub fn unavailable(device: crate::config::Device) -> anyhow::Error {
    anyhow::anyhow!("--device {device}: this binary was built without CUDA (build with --features cuda)")
}

/// `with_device!(device, |dev: D| body)` evaluates `body` (a `Result`) with the type `D` and the
/// value `dev` of `device` (a [`crate::config::Device`]).
#[macro_export]
macro_rules! with_device {
    ($device:expr, |$dev:ident : $D:ident| $body:expr) => {{
        match $device {
            $crate::config::Device::Cpu => {
                type $D = dfdx::prelude::Cpu;
                let $dev: $D = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::config::Device::Cuda => {
                type $D = dfdx::prelude::Cuda;
                let $dev: $D = $crate::model::device::cuda()?;
                $body
            }
            #[cfg(not(feature = "cuda"))]
            other => Err($crate::model::device::unavailable(other)),
        }
    }};
}
