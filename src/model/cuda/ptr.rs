//! Device addresses of dfdx CUDA tensors. dfdx 0.13 has no public accessor for a tensor's
//! buffer, but its derived `Debug` text begins with the `CudaSlice`'s `cu_device_ptr` and `len`
//! (`Tensor { id: …, data: CachableCudaSlice { data: CudaSlice { cu_device_ptr: P, len: L, …`).
//! They are read here, in one place, with formatting cut short once both are seen; gradient
//! buffers come through the public `Gradients::get_or_alloc_mut` instead. [`reading_works`]
//! checks the whole approach once per process before any fast op runs.

use super::sniff::sniff;
use cudarc::driver::{CudaDevice, DevicePtr, DevicePtrMut, DeviceSlice};
use dfdx::prelude::*;
use std::sync::{Arc, OnceLock};

/// A device buffer known by address and length, for cuDNN and kernel launches.
#[derive(Debug, Clone, Copy)]
pub struct Raw {
    pub ptr: u64,
    pub len: usize,
}

impl DeviceSlice<f32> for Raw {
    fn len(&self) -> usize {
        self.len
    }
}

impl DevicePtr<f32> for Raw {
    fn device_ptr(&self) -> &u64 {
        &self.ptr
    }
}

impl DevicePtrMut<f32> for Raw {
    fn device_ptr_mut(&mut self) -> &mut u64 {
        &mut self.ptr
    }
}

/// The buffer of a contiguous tensor (its length must be its element count: no broadcast view).
pub fn of<S: Shape>(t: &Tensor<S, f32, Cuda>) -> Raw {
    let (ptr, len) = sniff(t).expect("checked by reading_works before any fast op");
    let raw = Raw { ptr, len };
    assert_eq!(raw.len, t.shape().num_elements(), "the fast CUDA ops take contiguous tensors");
    raw
}

/// A device slice (a gradient buffer from `Gradients::get_or_alloc_mut`) by address and length.
pub fn raw(slice: &impl DevicePtr<f32>) -> Raw {
    Raw { ptr: *slice.device_ptr(), len: slice.len() }
}

/// dfdx's `CudaDevice` (for kernel launches, allocations and cuDNN's stream).
pub fn device_of(dev: &Cuda) -> Arc<CudaDevice> {
    let probe = <Cuda as Storage<f32>>::try_alloc_len(dev, 1).expect("a one-float allocation");
    probe.device()
}

/// Whether addresses read from tensors are where their values are: a tensor of known values is
/// read back through the address. Checked once per process; the fast path is off otherwise.
pub fn reading_works(dev: &Cuda) -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        let values: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5 - 7.0).collect();
        let t = dev.tensor_from_vec(values.clone(), (values.len(),));
        let works = sniff(&t).map(|(ptr, len)| Raw { ptr, len }).filter(|raw| raw.len == values.len()).is_some_and(|raw| {
            let cuda = device_of(dev);
            // SAFETY: `raw` is the live buffer of `t` (its length was read with it); the slice
            // is leaked below, so it never frees memory it does not own.
            let view = unsafe { cuda.upgrade_device_ptr::<f32>(raw.ptr, raw.len) };
            let back = cuda.dtoh_sync_copy(&view);
            view.leak();
            back.is_ok_and(|b| b == values)
        });
        if !works {
            eprintln!(
                "warning: this build cannot read dfdx's CUDA buffers (another dfdx or cudarc than 0.13 / 0.9.15?): the fast CUDA ops are off, the generic ones run"
            );
        }
        works
    })
}
