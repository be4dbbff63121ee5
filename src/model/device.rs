//! The compute device named on the command line (`--device cpu|cuda`). Generic code is
//! monomorphised once per device; `with_device!` picks the instance at run time, so every
//! subcommand accepts the same names and fails the same way.

/// The CUDA device 0, or an error that says why there is none.
#[cfg(feature = "cuda")]
pub fn cuda() -> anyhow::Result<dfdx::prelude::Cuda> {
    dfdx::prelude::Cuda::try_build(0, 0).map_err(|e| {
        anyhow::anyhow!("--device cuda: no usable NVIDIA GPU ({e:?}); check nvidia-smi and LD_LIBRARY_PATH")
    })
}

/// Why `name` is not a device this binary can run on (`cpu`, or `cuda` in a `cuda` build).
pub fn unavailable(name: &str) -> anyhow::Error {
    if name == "cuda" {
        anyhow::anyhow!("--device cuda: this binary was built without CUDA (build with --features cuda)")
    } else {
        anyhow::anyhow!("--device {name}: unknown device (use cpu or cuda)")
    }
}

/// `with_device!(name, |dev: D| body)` evaluates `body` (a `Result`) with the type `D` and the
/// value `dev` of the device called `name`.
#[macro_export]
macro_rules! with_device {
    ($name:expr, |$dev:ident : $D:ident| $body:expr) => {{
        match $name {
            "cpu" => {
                type $D = dfdx::prelude::Cpu;
                let $dev: $D = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            "cuda" => {
                type $D = dfdx::prelude::Cuda;
                let $dev: $D = $crate::model::device::cuda()?;
                $body
            }
            other => Err($crate::model::device::unavailable(other)),
        }
    }};
}
