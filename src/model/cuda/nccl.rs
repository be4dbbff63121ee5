//! Gradients summed across the ranks of a job on the GPUs themselves (NCCL, feature `nccl`),
//! instead of through MPI in host memory: one communicator per process, made at the first sum
//! from NCCL's unique id, which rank 0 creates and MPI broadcasts (as Horovod does). Every
//! gradient tensor is reduced in place, all in one NCCL group, on dfdx's stream.

use super::ptr;
use cudarc::nccl::safe::{group_end, group_start, Comm, Id, ReduceOp};
use dfdx::prelude::*;
use std::cell::RefCell;

type Flat = Tensor<(usize,), f32, Cuda>;

thread_local! {
    /// The communicator, made once by the thread that trains (NCCL handles are not `Send`).
    static COMM: RefCell<Option<Comm>> = const { RefCell::new(None) };
}

/// Sums every tensor of `grads` element-wise across the job's ranks, in place.
pub fn sum_in_place(dev: &Cuda, grads: &mut [Flat]) -> anyhow::Result<()> {
    COMM.with(|cell| {
        let mut comm = cell.borrow_mut();
        if comm.is_none() {
            *comm = Some(communicator(dev)?);
            if crate::dist::world().is_root() {
                eprintln!("gradients are summed across ranks by NCCL {}", version());
            }
        }
        let comm = comm.as_ref().expect("made above");
        let cuda = ptr::device_of(dev);
        group_start().map_err(|e| anyhow::anyhow!("NCCL group start: {e:?}"))?;
        // Every reduction is queued, whatever fails, so that the group is always closed.
        let queued: Vec<_> = grads.iter_mut().map(|g| all_reduce_in_place(comm, &cuda, g)).collect();
        group_end().map_err(|e| anyhow::anyhow!("NCCL group end: {e:?}"))?;
        queued.into_iter().collect::<anyhow::Result<()>>()?;
        cuda.synchronize().map_err(|e| anyhow::anyhow!("after the NCCL all-reduce: {e:?}"))?;
        Ok(())
    })
}

/// Queues the in-place sum of `g` across the ranks on `comm`.
fn all_reduce_in_place(
    comm: &Comm,
    cuda: &std::sync::Arc<cudarc::driver::CudaDevice>,
    g: &mut Flat,
) -> anyhow::Result<()> {
    let raw = ptr::of(g);
    // SAFETY: `raw` is the live buffer of `g`, held mutably here for the call; the two views
    // of it are leaked right after the call (which does not unwind: NCCL is C), so they never
    // free it. NCCL reduces in place when the send and receive buffers are one.
    let (send, mut recv) =
        unsafe { (cuda.upgrade_device_ptr::<f32>(raw.ptr, raw.len), cuda.upgrade_device_ptr::<f32>(raw.ptr, raw.len)) };
    let done = comm.all_reduce(&send, &mut recv, &ReduceOp::Sum);
    send.leak();
    recv.leak();
    done.map(|_| ()).map_err(|e| anyhow::anyhow!("NCCL all-reduce of {} floats: {e:?}", raw.len))
}

/// This rank's NCCL communicator: rank 0's unique id, broadcast over MPI.
fn communicator(dev: &Cuda) -> anyhow::Result<Comm> {
    let world = crate::dist::world();
    let mine = match world.is_root() {
        true => Id::new()
            .map_err(|e| anyhow::anyhow!("NCCL unique id: {e:?}"))?
            .internal()
            .iter()
            .map(|&c| c as u8)
            .collect(),
        false => Vec::new(),
    };
    let shared = world.broadcast(mine);
    let mut internal = [0 as std::ffi::c_char; 128];
    anyhow::ensure!(shared.len() == internal.len(), "rank 0 sent an NCCL id of {} bytes", shared.len());
    for (to, from) in internal.iter_mut().zip(&shared) {
        *to = *from as std::ffi::c_char;
    }
    Comm::from_rank(ptr::device_of(dev), world.rank, world.size, Id::uninit(internal))
        .map_err(|e| anyhow::anyhow!("NCCL communicator for rank {} of {}: {e:?}", world.rank, world.size))
}

fn version() -> String {
    match cudarc::nccl::result::get_nccl_version() {
        Ok(v) => format!("{}.{}.{}", v / 10000, (v / 100) % 100, v % 100),
        Err(e) => format!("(version unknown: {e:?})"),
    }
}
