//! Batches for training: samples built in parallel (a rayon pool), collated into contiguous
//! buffers, and handed over through a bounded queue so the next batches are ready while the
//! current one trains. Every sample's randomness comes from (seed, epoch, index), so the batches
//! are the same with any number of threads.

use super::augment::sample_rng;
use super::instances::Instance;
use super::sample::SampleSpec;
use image::RgbImage;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub seed: u64,
    pub shuffle: bool,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
    /// Worker threads (0: all cores).
    pub workers: usize,
    pub drop_last: bool,
}

/// Contiguous batch buffers, ready to become tensors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// Instance indices of the samples, in batch order.
    pub indices: Vec<usize>,
    /// B × 3 × H × W.
    pub inputs: Vec<f32>,
    /// B × J × h × w.
    pub targets: Vec<f32>,
    /// B × J.
    pub weights: Vec<f32>,
    /// A classifier's class index of each sample (empty for other tasks).
    pub labels: Vec<usize>,
}

/// What a sample source makes of one sample: the network input and the task's targets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchItem {
    pub input: Vec<f32>,
    pub targets: Vec<f32>,
    pub weights: Vec<f32>,
    pub label: Option<usize>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.indices.len()
    }
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Images that could not be read, by path (first error message), over one epoch.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub failed: BTreeMap<PathBuf, String>,
    pub skipped_samples: usize,
}

/// What a loader makes batches of: the pose model's person crops, the detector's whole images,
/// or a classifier's images (`data::folder`).
pub trait SampleSource: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The image sample `index` is made from.
    fn image_path(&self, index: usize) -> &std::path::Path;
    /// Input and targets of sample `index` (augmented as `seed` and `epoch` draw).
    fn make(&self, image: &RgbImage, index: usize, seed: u64, epoch: u64) -> BatchItem;
}

/// Person crops with heatmap targets and one weight per joint.
pub struct PoseSamples {
    pub instances: Vec<Instance>,
    pub spec: SampleSpec,
}

impl SampleSource for PoseSamples {
    fn len(&self) -> usize {
        self.instances.len()
    }
    fn image_path(&self, index: usize) -> &std::path::Path {
        &self.instances[index].image_path
    }
    fn make(&self, image: &RgbImage, index: usize, seed: u64, epoch: u64) -> BatchItem {
        let inst = &self.instances[index];
        let aug = self.spec.augmentation(inst, seed, epoch, index as u64);
        let s = self.spec.build(image, inst, aug);
        BatchItem { input: s.input, targets: s.target.heatmaps, weights: s.target.weights, label: None }
    }
}

/// Letterboxed images with centre-net targets (no weights).
pub struct DetectSamples {
    pub images: Vec<super::detect::DetectImage>,
    pub spec: super::detect::DetectSpec,
}

impl SampleSource for DetectSamples {
    fn len(&self) -> usize {
        self.images.len()
    }
    fn image_path(&self, index: usize) -> &std::path::Path {
        &self.images[index].image_path
    }
    fn make(&self, image: &RgbImage, index: usize, seed: u64, epoch: u64) -> BatchItem {
        let aug = self.spec.augmentation(seed, epoch, index as u64);
        let s = self.spec.build(image, &self.images[index], aug);
        BatchItem { input: s.input, targets: s.target, ..Default::default() }
    }
}

/// Batches of a sample source, built ahead of use on their own thread pool.
pub struct Loader {
    source: Arc<dyn SampleSource>,
    cfg: LoaderConfig,
    pool: Arc<rayon::ThreadPool>,
}

impl Loader {
    /// Batches of person crops.
    pub fn new(instances: Vec<Instance>, spec: SampleSpec, cfg: LoaderConfig) -> anyhow::Result<Self> {
        Loader::of(Arc::new(PoseSamples { instances, spec }), cfg)
    }

    /// Batches of any source's samples.
    pub fn of(source: Arc<dyn SampleSource>, cfg: LoaderConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(cfg.batch_size > 0, "batch size must be at least 1");
        let pool =
            rayon::ThreadPoolBuilder::new().num_threads(cfg.workers).thread_name(|i| format!("loader-{i}")).build()?;
        Ok(Loader { source, cfg, pool: Arc::new(pool) })
    }

    pub fn len(&self) -> usize {
        self.source.len()
    }

    pub fn is_empty(&self) -> bool {
        self.source.len() == 0
    }

    /// Sample order of an epoch: shuffled by (seed, epoch) when configured.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        epoch_order(self.source.len(), self.cfg.seed, epoch, self.cfg.shuffle)
    }

    /// The batches of one epoch, produced in the background. Dropping the iterator stops the
    /// producer after the batch it is on.
    pub fn epoch(&self, epoch: u64) -> EpochBatches {
        self.epoch_from(epoch, 0)
    }

    /// Batches in one epoch (the last, short one dropped when configured).
    pub fn batches_per_epoch(&self) -> usize {
        self.steps_per_epoch(1)
    }

    /// Steps in one epoch when `parts` processes each take a batch of every step (a global batch
    /// of `parts × batch_size` samples).
    pub fn steps_per_epoch(&self, parts: usize) -> usize {
        let (n, b) = (self.source.len(), self.cfg.batch_size * parts.max(1));
        if self.cfg.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The batches of `epoch` from batch `first` on (a resumed run skips those it has done,
    /// without loading them).
    pub fn epoch_from(&self, epoch: u64, first: usize) -> EpochBatches {
        self.epoch_part(epoch, first, BatchPart::WHOLE)
    }

    /// `part`'s batches of `epoch` from step `first` on: the epoch's order cut into global
    /// batches of `part.count × batch_size`, of which this process takes the `part.index`-th
    /// `batch_size` samples. So the processes' batches of a step together are the global batch,
    /// and the union of their epochs is one process's epoch. A short last global batch leaves
    /// the last parts short or empty (an empty batch is still handed out: every process steps).
    pub fn epoch_part(&self, epoch: u64, first: usize, part: BatchPart) -> EpochBatches {
        let order = self.order(epoch);
        let b = self.cfg.batch_size;
        let mut chunks: Vec<Vec<usize>> = order
            .chunks(b * part.count)
            .map(|global| global[(part.index * b).min(global.len())..((part.index + 1) * b).min(global.len())].to_vec())
            .collect();
        chunks.truncate(self.steps_per_epoch(part.count));
        chunks.drain(..first.min(chunks.len()));
        let (tx, rx) = sync_channel(self.cfg.prefetch.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let built = Arc::new(AtomicUsize::new(0));
        let report = Arc::new(Mutex::new(LoadReport::default()));
        let (source, pool, seed) = (self.source.clone(), self.pool.clone(), self.cfg.seed);
        let (stop2, built2, report2) = (stop.clone(), built.clone(), report.clone());
        let handle = std::thread::spawn(move || {
            for chunk in chunks {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let batch = pool.install(|| make_batch(source.as_ref(), &chunk, seed, epoch, &report2));
                built2.fetch_add(1, Ordering::SeqCst);
                if tx.send(batch).is_err() {
                    break;
                }
            }
        });
        EpochBatches { rx, stop, built, handle: Some(handle), report }
    }
}

/// Which part of every global batch a process takes in data-parallel training: part `index` of
/// `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPart {
    pub index: usize,
    pub count: usize,
}

impl BatchPart {
    /// One process takes all.
    pub const WHOLE: BatchPart = BatchPart { index: 0, count: 1 };
}

/// The order of `n` samples in `epoch`: shuffled by (seed, epoch) when `shuffle`.
pub fn epoch_order(n: usize, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        order.shuffle(&mut sample_rng(seed, epoch, u64::MAX));
    }
    order
}

/// Builds the samples of one batch in parallel; unreadable images are skipped and recorded.
pub fn make_batch(
    source: &dyn SampleSource,
    chunk: &[usize],
    seed: u64,
    epoch: u64,
    report: &Mutex<LoadReport>,
) -> Batch {
    use rayon::prelude::*;
    let samples: Vec<Option<(usize, BatchItem)>> = chunk
        .par_iter()
        .map(|&i| {
            let path = source.image_path(i);
            match load_rgb(path) {
                Ok(img) => Some((i, source.make(&img, i, seed, epoch))),
                Err(e) => {
                    let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                    r.skipped_samples += 1;
                    r.failed.entry(path.to_path_buf()).or_insert(e);
                    None
                }
            }
        })
        .collect();
    let mut batch = Batch::default();
    for (i, item) in samples.into_iter().flatten() {
        batch.indices.push(i);
        batch.inputs.extend_from_slice(&item.input);
        batch.targets.extend_from_slice(&item.targets);
        batch.weights.extend_from_slice(&item.weights);
        batch.labels.extend(item.label);
    }
    batch
}

/// The largest image decoded: 16384 px a side, 1 GiB of decoder memory, so that a small file
/// declaring a huge image (a decompression bomb) is refused instead of allocated.
pub const MAX_IMAGE_SIDE: u32 = 16384;
pub const MAX_DECODE_BYTES: u64 = 1 << 30;

/// Decodes an image file (JPEG, PNG, BMP or WebP by content; grayscale, RGBA and 16-bit become
/// 8-bit RGB), within [`MAX_IMAGE_SIDE`] and [`MAX_DECODE_BYTES`].
pub fn load_rgb(path: &std::path::Path) -> Result<RgbImage, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let bytes = std::fs::read(path).map_err(|e| fail(&e))?;
    decode_rgb(&bytes).map_err(|e| fail(&e))
}

/// Decodes image bytes as [`load_rgb`] does.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, String> {
    let mut reader =
        image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    (limits.max_image_width, limits.max_image_height) = (Some(MAX_IMAGE_SIDE), Some(MAX_IMAGE_SIDE));
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode().map(|img| img.into_rgb8()).map_err(|e| match e {
        image::ImageError::Limits(_) => format!(
            "the image is larger than dypose decodes ({MAX_IMAGE_SIDE} px a side, {} MiB): {e}",
            MAX_DECODE_BYTES >> 20
        ),
        e => e.to_string(),
    })
}

pub struct EpochBatches {
    rx: Receiver<Batch>,
    stop: Arc<AtomicBool>,
    /// Batches the producer has finished building (handed over or not).
    built: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
    report: Arc<Mutex<LoadReport>>,
}

impl EpochBatches {
    /// What could not be loaded so far (complete once the iterator is exhausted).
    pub fn report(&self) -> LoadReport {
        self.report.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A live count of the batches the producer has built, which outlives the iterator: work
    /// done ahead of the consumer (at most the queue's `prefetch` and the batch in progress).
    pub fn built(&self) -> Arc<AtomicUsize> {
        self.built.clone()
    }
}

impl Iterator for EpochBatches {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        while self.rx.try_recv().is_ok() {}
        // Unblock a producer waiting on a full queue, then wait for it.
        let (_, dead) = sync_channel::<Batch>(0);
        self.rx = dead;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
