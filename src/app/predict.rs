//! `dypose predict`: a checkpoint and images in; COCO results and one drawing per image out.

use super::images::{fail_on_unreadable, image_ids, Images};
use super::shard::{
    file_digest, list_digest, ChunkFile, RunKey, Shard, ShardFolder, ShardRun, ShardSpec, Start, Unreadable,
};
use crate::coco::{CocoDataset, KeypointSpec};
use crate::config::{Config, Decoding, Device};
use crate::infer::boxes::{detection_boxes, group_by_image, gt_boxes, PersonBox};
use crate::infer::detect::DetectJob;
use crate::infer::predictor::{ImageRead, Predictions};
use crate::infer::{results_of, HeatmapModel, ImageJob, Person, Predictor};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the person boxes come from.
pub enum BoxSource {
    /// The persons of a GT file (its images are matched by file name).
    Gt(PathBuf),
    /// A detector's boxes; with a GT file, image ids come from it, else from COCO-style names.
    Detections { gt: Option<PathBuf>, path: PathBuf },
    /// The boxes a person-detector checkpoint finds (image ids as with `Detections`).
    Detector { gt: Option<PathBuf>, checkpoint: PathBuf },
    /// No boxes: the whole image is one person.
    WholeImage,
}

pub struct PredictRequest {
    pub checkpoint: PathBuf,
    /// Another config than the checkpoint's own.
    pub config: Option<PathBuf>,
    pub device: Device,
    pub images: Images,
    pub boxes: BoxSource,
    pub out: PathBuf,
    pub flip: bool,
    pub decoding: Option<Decoding>,
    pub draw: bool,
    pub force: bool,
}

/// What a prediction run did.
pub struct PredictReport {
    pub predictions: Predictions,
    pub images: usize,
    pub results: PathBuf,
    pub seconds: f64,
}

impl std::fmt::Display for PredictReport {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let p = &self.predictions;
        write!(
            f,
            "{} persons in {} images ({} crops, {:.1} crops/s) → {}",
            p.persons.len(),
            self.images - p.failed.len(),
            p.crops,
            p.crops as f64 / self.seconds,
            self.results.display()
        )
    }
}

/// One job per picked image (indexes into `all`), with the boxes `source` gives it (`cfg`: the
/// category, the GT's keypoint field and the detection score threshold). Image ids are found
/// over the whole list, so that a part of it gets the ids it would get in a run over all.
fn jobs(
    all: &[PathBuf],
    picked: &[usize],
    source: &BoxSource,
    device: Device,
    cfg: &Config,
    joints: usize,
) -> Result<Vec<ImageJob>> {
    let (category_id, score_threshold) = (cfg.data.category_id, cfg.val.box_score_threshold);
    let gt = match source {
        BoxSource::Gt(p) | BoxSource::Detections { gt: Some(p), .. } | BoxSource::Detector { gt: Some(p), .. } => {
            Some(CocoDataset::load_field(p, &cfg.data.keypoint_field)?)
        }
        _ => None,
    };
    let all_ids = image_ids(all, gt.as_ref())?;
    let images: Vec<&PathBuf> = picked.iter().map(|&i| &all[i]).collect();
    let ids: Vec<i64> = picked.iter().map(|&i| all_ids[i]).collect();
    let boxes: Vec<PersonBox> = match source {
        BoxSource::Gt(_) => {
            let gt = gt.as_ref().expect("loaded above");
            crate::coco::keypoint_set::ensure_model_joints(gt, category_id, joints)?;
            gt_boxes(gt, category_id, joints)
        }
        BoxSource::Detections { path, .. } => detection_boxes(path, category_id, score_threshold, gt.as_ref())?,
        BoxSource::Detector { checkpoint, .. } => {
            let jobs: Vec<DetectJob> =
                images.iter().zip(&ids).map(|(&p, &id)| DetectJob { image_id: id, path: p.clone() }).collect();
            let (boxes, seconds) = super::detect::detector_person_boxes(device, checkpoint, &jobs)?;
            if crate::dist::world().is_root() {
                eprintln!("the detector found {} persons in {} images in {seconds:.1}s", boxes.len(), images.len());
            }
            boxes
        }
        BoxSource::WholeImage => Vec::new(),
    };
    // A detector that finds nobody means nobody; an image that a GT or detection file does not
    // mention is one person box, as with no boxes at all.
    let whole_image_when_missing = !matches!(source, BoxSource::Detector { .. });
    let mut by_image = group_by_image(boxes);
    Ok(images
        .iter()
        .zip(ids)
        .map(|(&p, id)| {
            let boxes = match by_image.remove(&id) {
                None if whole_image_when_missing => None,
                found => Some(found.unwrap_or_default()),
            };
            ImageJob { image_id: id, path: p.clone(), boxes }
        })
        .collect())
}

/// Runs the checkpoint on the request's images; writes `results.json` (and drawings) into
/// `out`. Unreadable images are reported by name after everything else is written.
pub fn predict(req: &PredictRequest) -> Result<PredictReport> {
    let images = req.images.list()?;
    let results_path = req.out.join("results.json");
    let outputs = refuse_unsafe_outputs(req, &images, &results_path)?;
    crate::fsutil::refuse_existing(&outputs, req.force)?;
    let start = Instant::now();
    let (cfg, spec, mut predictor) = open_predictor(req)?;
    let all: Vec<usize> = (0..images.len()).collect();
    let jobs = jobs(&images, &all, &req.boxes, req.device, &cfg, spec.len())?;
    std::fs::create_dir_all(&req.out).with_context(|| format!("{}: cannot create", req.out.display()))?;
    let predictions = predictor.run(&jobs, |job, img, persons| match req.draw {
        true => draw_persons(img, persons, &spec, &crate::viz::drawing_path(&req.out, &job.path, None), req.force),
        false => Ok(()),
    })?;
    let text = crate::coco::results_json(&results_of(&predictions.persons, cfg.data.category_id));
    crate::fsutil::write_atomic(&results_path, text.as_bytes())?;
    let report = PredictReport {
        images: images.len(),
        results: results_path,
        seconds: start.elapsed().as_secs_f64(),
        predictions,
    };
    fail_on_unreadable(&report.predictions.failed, report.images, &report)?;
    Ok(report)
}

/// `predict --shard`: which part of the image list to run, and how many images each results
/// chunk holds (what a restarted shard redoes at most).
pub struct Sharding {
    pub spec: ShardSpec,
    pub chunk_images: usize,
}

/// What a shard run did.
pub struct ShardReport {
    pub shard: Shard,
    pub folder: PathBuf,
    /// Chunks written now, and those an earlier run had written.
    pub chunks_now: usize,
    pub chunks_before: usize,
    /// The shard's images, and those run now (in the chunks earlier runs had not written).
    pub images: usize,
    pub images_now: usize,
    /// Persons and crops of the images run now.
    pub persons: usize,
    pub crops: usize,
    /// Every image of the shard that could not be read (now or by an earlier run), and how many
    /// of them now.
    pub unreadable: Vec<(PathBuf, String)>,
    pub unreadable_now: usize,
    pub seconds: f64,
    pub out: PathBuf,
}

impl std::fmt::Display for ShardReport {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{}: {} persons in {} images ({} crops, {:.1} crops/s; {} chunks now, {} written before) → {}\n\
             when all {} shards are done: dypose merge {}",
            self.shard,
            self.persons,
            self.images_now - self.unreadable_now,
            self.crops,
            self.crops as f64 / self.seconds.max(1e-9),
            self.chunks_now,
            self.chunks_before,
            self.folder.display(),
            self.shard.count,
            self.out.display()
        )
    }
}

/// Runs one shard of the request's images, writing its results chunk by chunk into
/// `out/shards/shard-K-of-N/` and drawings into `out`; a shard started again with the same
/// request continues after its last whole chunk (see [`super::shard`]).
pub fn predict_shard(req: &PredictRequest, sharding: &Sharding) -> Result<ShardReport> {
    let report = run_shard(req, sharding)?;
    fail_on_unreadable(&report.unreadable, report.images, &report)?;
    Ok(report)
}

/// `predict` under an MPI launcher (`mpirun -np N`, `srun`): rank K runs shard K/N of the images
/// (into `out/shards/`, resumable as any shard), and once every rank is done rank 0 merges them
/// into `out/results.json`, the file one process writes.
pub fn predict_across_ranks(req: &PredictRequest, chunk_images: usize) -> Result<String> {
    let world = crate::dist::world();
    let results = req.out.join("results.json");
    refuse_unsafe_outputs(req, &req.images.list()?, &results)?;
    crate::fsutil::refuse_existing(std::slice::from_ref(&results), req.force)?;
    let shard = Shard::new(world.rank, world.size)?;
    let report = run_shard(req, &Sharding { spec: ShardSpec::Given(shard), chunk_images })?;
    world.barrier();
    if !world.is_root() {
        return Ok(report.to_string());
    }
    // This run's shards only: `out/shards` may hold those of another run with another count.
    let shards = req.out.join("shards");
    let inputs = (0..world.size).map(|k| shards.join(Shard { index: k, count: world.size }.folder_name())).collect();
    let merged = super::merge::merge(&super::merge::MergeRequest { inputs, out: Some(results), force: req.force })?;
    Ok(merged.to_string())
}

/// [`predict_shard`] without failing on unreadable images (they are in the report).
fn run_shard(req: &PredictRequest, sharding: &Sharding) -> Result<ShardReport> {
    let start = Instant::now();
    let images = req.images.list()?;
    let shard = sharding.spec.resolve(|name| std::env::var(name).ok())?;
    let run = ShardRun::new(shard, sharding.chunk_images, run_key(req, &images)?)?;
    let mine = &images[shard.range(images.len())];
    let folder_name = req.out.join("shards").join(shard.folder_name());
    let drawings = refuse_unsafe_outputs(req, mine, &folder_name.join("run.json"))?;
    let (folder, how) = ShardFolder::prepare(&req.out, run, req.force)?;
    if how == Start::Fresh {
        crate::fsutil::refuse_existing(&drawings[1..], req.force)?;
    }
    let done = folder.begin(how)?;
    let todo: Vec<usize> = (0..done.len()).filter(|&i| done[i].is_none()).collect();
    let picked: Vec<usize> = todo.iter().flat_map(|&i| folder.run.chunk(i)).collect();
    // The images earlier runs could not read stay reported, so a rerun ends as the first did.
    let earlier = done.into_iter().flatten().flatten().map(|u| (PathBuf::from(u.path), u.error));
    let mut writer = ChunkWriter {
        folder: &folder,
        todo: todo.iter().copied(),
        current: None,
        category: 0,
        persons: 0,
        unreadable: Vec::new(),
    };
    let mut crops = 0;
    if !picked.is_empty() {
        let (cfg, spec, mut predictor) = open_predictor(req)?;
        writer.category = cfg.data.category_id;
        let jobs = jobs(&images, &picked, &req.boxes, req.device, &cfg, spec.len())?;
        let overwrite = req.force || how == Start::Resume;
        crops = predictor.stream(&jobs, |job, image, persons| {
            if let (true, Ok(img)) = (req.draw, image) {
                let path = crate::viz::drawing_path(&req.out, &job.path, None);
                draw_persons(img, &persons, &spec, &path, overwrite)?;
            }
            writer.push(job, image, &persons)
        })?;
    }
    let report = ShardReport {
        shard,
        folder: folder.dir.clone(),
        chunks_now: todo.len(),
        chunks_before: folder.run.chunk_count() - todo.len(),
        images: mine.len(),
        images_now: picked.len(),
        persons: writer.persons,
        crops,
        unreadable_now: writer.unreadable.len(),
        unreadable: earlier.chain(writer.unreadable).collect(),
        seconds: start.elapsed().as_secs_f64(),
        out: req.out.clone(),
    };
    Ok(report)
}

/// The fingerprint of what a shard computes: the image list, and the checkpoint, config and box
/// files by content (see [`RunKey`]).
fn run_key(req: &PredictRequest, images: &[PathBuf]) -> Result<RunKey> {
    let with_gt = |what: String, gt: &Option<PathBuf>| -> Result<String> {
        Ok(match gt {
            Some(g) => format!("{what}, image ids from GT {}", file_digest(g)?),
            None => what,
        })
    };
    let boxes = match &req.boxes {
        BoxSource::Gt(p) => format!("GT {}", file_digest(p)?),
        BoxSource::Detections { gt, path } => with_gt(format!("detections {}", file_digest(path)?), gt)?,
        BoxSource::Detector { gt, checkpoint } => with_gt(format!("detector {}", file_digest(checkpoint)?), gt)?,
        BoxSource::WholeImage => "whole image".into(),
    };
    Ok(RunKey {
        images: images.len(),
        image_list: list_digest(images),
        checkpoint: file_digest(&req.checkpoint)?,
        config: req.config.as_deref().map(file_digest).transpose()?,
        boxes,
        flip: req.flip,
        decoding: req.decoding.map_or_else(|| "the config's".into(), |d| d.to_string()),
        device: req.device.to_string(),
    })
}

/// Collects a shard's images, in job order, into the chunks still to write, and writes each as
/// soon as its last image is in.
struct ChunkWriter<'a, I> {
    folder: &'a ShardFolder,
    todo: I,
    /// The chunk being filled: its number, its file so far, and the images it still waits for.
    current: Option<(usize, ChunkFile, usize)>,
    category: crate::coco::Id,
    persons: usize,
    unreadable: Vec<(PathBuf, String)>,
}

impl<I: Iterator<Item = usize>> ChunkWriter<'_, I> {
    fn push(&mut self, job: &ImageJob, image: ImageRead, persons: &[Person]) -> Result<()> {
        if self.current.is_none() {
            let i = self.todo.next().expect("jobs are the images of the chunks to do");
            let range = self.folder.run.chunk(i);
            let chunk =
                ChunkFile { first: range.start, images: range.len(), unreadable: Vec::new(), results: Vec::new() };
            self.current = Some((i, chunk, range.len()));
        }
        let (i, chunk, waiting) = self.current.as_mut().expect("set above");
        if let Err(why) = image {
            let path = job.path.to_string_lossy().into_owned();
            chunk.unreadable.push(Unreadable { path, error: why.to_string() });
            self.unreadable.push((job.path.clone(), why.to_string()));
        }
        chunk.results.extend(crate::coco::results::result_records(&results_of(persons, self.category)));
        self.persons += persons.len();
        *waiting -= 1;
        if *waiting == 0 {
            self.folder.write_chunk(*i, chunk)?;
            self.current = None;
        }
        Ok(())
    }
}

/// A predictor of whichever network a checkpoint holds.
type AnyPredictor = Predictor<Box<dyn HeatmapModel>>;

/// The request's checkpoint as a predictor, with its config (the request's flip and decoding
/// applied) and keypoint set.
fn open_predictor(req: &PredictRequest) -> Result<(Config, KeypointSpec, AnyPredictor)> {
    let trained = super::open_checkpoint(req.device, &req.checkpoint, req.config.as_deref())?;
    let (mut cfg, spec) = (trained.cfg, trained.spec);
    cfg.val.flip_test &= req.flip;
    cfg.val.decoding = req.decoding.unwrap_or(cfg.val.decoding);
    let predictor = Predictor::for_config(trained.model, &cfg, &spec)?;
    Ok((cfg, spec, predictor))
}

/// Before any work: no output (`results`, and the drawings) may replace an input (images,
/// checkpoint, config, box files), and the output folder may not be a folder of input images.
/// Returns the outputs, for the caller to refuse existing ones as it must.
fn refuse_unsafe_outputs(req: &PredictRequest, images: &[PathBuf], results: &Path) -> Result<Vec<PathBuf>> {
    let mut outputs = vec![results.to_path_buf()];
    if req.draw {
        let drawings: Vec<PathBuf> = images.iter().map(|p| crate::viz::drawing_path(&req.out, p, None)).collect();
        crate::fsutil::refuse_shared_outputs(&drawings, images)?;
        outputs.extend(drawings);
    }
    let mut inputs = images.to_vec();
    inputs.extend([req.checkpoint.clone()].into_iter().chain(req.config.clone()));
    match &req.boxes {
        BoxSource::Gt(p) => inputs.push(p.clone()),
        BoxSource::Detections { gt, path } => inputs.extend(gt.iter().cloned().chain([path.clone()])),
        BoxSource::Detector { gt, checkpoint } => inputs.extend(gt.iter().cloned().chain([checkpoint.clone()])),
        BoxSource::WholeImage => {}
    }
    crate::fsutil::refuse_output_in_input_folder(&req.out, images)?;
    crate::fsutil::refuse_overwriting_inputs(&outputs, &inputs)?;
    Ok(outputs)
}

/// Draws persons scoring at least 0.3 (joints at least 0.3) on a copy of `img` and saves it
/// (replacing an earlier drawing only with `overwrite`).
pub fn draw_persons(
    img: &image::RgbImage,
    persons: &[Person],
    spec: &KeypointSpec,
    path: &Path,
    overwrite: bool,
) -> Result<()> {
    let mut canvas = img.clone();
    for p in persons.iter().filter(|p| p.score >= 0.3) {
        let pose = crate::viz::Pose { keypoints: &p.keypoints, bbox: Some(p.bbox), score: Some(p.score) };
        crate::viz::draw_pose(&mut canvas, &pose, spec, 0.3);
    }
    crate::viz::save_image(&canvas, path, overwrite)
}
