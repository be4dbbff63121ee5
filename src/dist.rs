//! Several processes as one job: the ranks an MPI launcher started (`mpirun -np N`, Slurm's
//! `srun --mpi=pmix`), and the few collectives dypose needs (sums for gradients, a broadcast, a
//! gather to rank 0, a barrier). Built with the `mpi` feature over the system's MPI library;
//! without it, or when no MPI launcher started the process, there is one rank and every
//! collective is the identity, so the rest of the code is written once for both.
//!
//! MPI is called from the main thread only (`MPI_THREAD_FUNNELED`). A rank that fails takes
//! the job down ([`abort`]: `MPI_Abort`) instead of leaving the others waiting in a collective:
//! `main` calls it on an error and on a panic that reaches it (a panic caught on purpose, as the
//! fast ops' first-use check does, is not one).

use anyhow::{bail, Result};
use std::sync::OnceLock;

/// This process's place in the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct World {
    pub rank: usize,
    pub size: usize,
    /// The rank among those on this machine (which GPU it takes).
    pub local_rank: usize,
    /// Whether a launcher started this process (also one alone, `mpirun -np 1`): training then
    /// sums its gradients across the ranks even when there is one, as the same code path.
    pub launched: bool,
}

static WORLD: OnceLock<World> = OnceLock::new();

/// The job this process is part of: one rank of one unless [`start`] found an MPI launch.
pub fn world() -> World {
    *WORLD.get_or_init(|| World { rank: 0, size: 1, local_rank: 0, launched: false })
}

/// Keeps MPI initialised while alive; finalises it when dropped (at the end of `main`).
pub struct Session {
    #[cfg(feature = "mpi")]
    _universe: mpi::environment::Universe,
}

/// The number of processes a launcher says it started, from the variables Open MPI, MPICH
/// (and Slurm's PMI2) and PMIx set; `None` outside a launch.
fn launched_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .or_else(|| std::env::var_os("PMIX_RANK").map(|_| 0))
}

/// Joins the MPI job when an MPI launcher started this process; otherwise stays one rank.
/// A launch of several processes by a build without the `mpi` feature is refused: each would
/// train alone and write the same files.
pub fn start() -> Result<Option<Session>> {
    let Some(size) = launched_size() else { return Ok(None) };
    #[cfg(feature = "mpi")]
    {
        let _ = size;
        use mpi::traits::Communicator;
        let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled) else {
            bail!("MPI was initialised twice")
        };
        let comm = universe.world();
        let local_rank =
            ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "MV2_COMM_WORLD_LOCAL_RANK"]
                .iter()
                .find_map(|v| std::env::var(v).ok()?.parse().ok())
                .unwrap_or(0);
        let me = World { rank: comm.rank() as usize, size: comm.size() as usize, local_rank, launched: true };
        WORLD.set(me).map_err(|_| anyhow::anyhow!("the world was read before MPI started"))?;
        Ok(Some(Session { _universe: universe }))
    }
    #[cfg(not(feature = "mpi"))]
    {
        if size > 1 {
            bail!(
                "an MPI launcher started {size} processes, but this dypose is built without MPI: each would run alone; \
                 build it with `cargo build --release --features mpi`, or start one process"
            );
        }
        let alone = World { rank: 0, size: 1, local_rank: 0, launched: true };
        WORLD.set(alone).map_err(|_| anyhow::anyhow!("the world was read before it was set"))?;
        Ok(None)
    }
}

/// Ends every rank of the job with `code` (after this rank printed why).
pub fn abort(code: i32) -> ! {
    #[cfg(feature = "mpi")]
    if world().size > 1 {
        use mpi::traits::Communicator;
        mpi::topology::SimpleCommunicator::world().abort(code);
    }
    std::process::exit(code)
}

impl World {
    pub fn is_root(self) -> bool {
        self.rank == 0
    }

    /// Element-wise sums over the ranks, in every rank.
    pub fn sum_f32(self, values: &mut [f32]) {
        self.sum(values)
    }

    /// Element-wise sums over the ranks, in every rank.
    pub fn sum_f64(self, values: &mut [f64]) {
        self.sum(values)
    }

    #[cfg(feature = "mpi")]
    fn sum<T: mpi::traits::Equivalence + Copy>(self, values: &mut [T]) {
        if self.size > 1 {
            use mpi::traits::CommunicatorCollectives;
            let mine = values.to_vec();
            let comm = mpi::topology::SimpleCommunicator::world();
            comm.all_reduce_into(&mine[..], values, mpi::collective::SystemOperation::sum());
        }
    }

    #[cfg(not(feature = "mpi"))]
    fn sum<T>(self, values: &mut [T]) {
        let _ = values;
    }

    /// Rank 0's `bytes`, in every rank.
    pub fn broadcast(self, bytes: Vec<u8>) -> Vec<u8> {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            use mpi::traits::{Communicator, Root};
            let comm = mpi::topology::SimpleCommunicator::world();
            let root = comm.process_at_rank(0);
            let mut len = bytes.len() as u64;
            root.broadcast_into(&mut len);
            let mut out = if self.is_root() { bytes } else { vec![0u8; len as usize] };
            root.broadcast_into(&mut out[..]);
            return out;
        }
        bytes
    }

    /// Every rank's `bytes`, in rank order, at rank 0; nothing elsewhere.
    pub fn gather(self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            use mpi::datatype::PartitionMut;
            use mpi::traits::{Communicator, Root};
            let comm = mpi::topology::SimpleCommunicator::world();
            let root = comm.process_at_rank(0);
            let len = mpi::Count::try_from(bytes.len()).map_err(|_| {
                anyhow::anyhow!(
                    "rank {}: {} bytes to gather, more than MPI counts in one message",
                    self.rank,
                    bytes.len()
                )
            })?;
            if !self.is_root() {
                root.gather_into(&len);
                root.gather_varcount_into(bytes);
                return Ok(Vec::new());
            }
            let mut counts = vec![0 as mpi::Count; self.size];
            root.gather_into_root(&len, &mut counts[..]);
            let starts: Vec<mpi::Count> =
                counts.iter().scan(0, |at, &c| Some(std::mem::replace(at, *at + c))).collect();
            let mut all = vec![0u8; counts.iter().map(|&c| c as usize).sum()];
            root.gather_varcount_into_root(bytes, &mut PartitionMut::new(&mut all[..], &counts[..], &starts[..]));
            return Ok(starts.iter().zip(&counts).map(|(&s, &c)| all[s as usize..(s + c) as usize].to_vec()).collect());
        }
        Ok(vec![bytes.to_vec()])
    }

    /// Waits until every rank got here.
    pub fn barrier(self) {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            use mpi::traits::CommunicatorCollectives;
            mpi::topology::SimpleCommunicator::world().barrier();
        }
    }

    /// This rank's contiguous part of `n` items (see [`part`]).
    pub fn part(self, n: usize) -> std::ops::Range<usize> {
        part(n, self.rank, self.size)
    }
}

/// Part `index` of `count` contiguous parts of `n` items, their sizes differing by one at most:
/// `n·index/count .. n·(index+1)/count`.
pub fn part(n: usize, index: usize, count: usize) -> std::ops::Range<usize> {
    n * index / count..n * (index + 1) / count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One rank: every collective hands back what it was given.
    #[test]
    fn one_rank_collectives_are_the_identity() {
        let w = World { rank: 0, size: 1, local_rank: 0, launched: false };
        let mut v = [1.5f32, -2.0];
        w.sum_f32(&mut v);
        assert_eq!(v, [1.5, -2.0]);
        assert_eq!(w.broadcast(vec![1, 2, 3]), vec![1, 2, 3]);
        assert_eq!(w.gather(&[4, 5]).unwrap(), vec![vec![4, 5]]);
        assert_eq!(w.part(7), 0..7);
        let parts: Vec<_> =
            (0..3).map(|rank| World { rank, size: 3, local_rank: 0, launched: true }.part(10)).collect();
        assert_eq!(parts, vec![0..3, 3..6, 6..10]);
    }
}
