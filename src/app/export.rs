//! `dypose export`: a checkpoint (pose model, person detector or classifier) as one ONNX file.

use super::classify::classifier_of;
use crate::config::{Config, Size, Task};
use crate::export::npy::{npy_bytes, Values};
use crate::export::{ExportOptions, Purpose};
use crate::infer::HeatmapModel;
use crate::model::backend::ConvBackend;
use crate::model::blueprint::Blueprint;
use crate::model::checkpoint::CheckpointMeta;
use crate::model::network::Network;
use anyhow::{Context, Result};
use rand_distr::{Distribution, StandardNormal};
use std::path::PathBuf;

/// What `dypose export` was asked for.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub checkpoint: PathBuf,
    /// A config that replaces the checkpoint's own (as for `predict`).
    pub config: Option<PathBuf>,
    pub out: PathBuf,
    pub options: ExportOptions,
    /// Also write seeded inputs and dypose's own outputs for them here, as `.npy` files, one
    /// set per batch size in `reference_batches`: what a runtime's outputs are checked against.
    pub reference: Option<PathBuf>,
    pub reference_batches: Vec<usize>,
    pub force: bool,
}

/// Writes the ONNX file (atomically, after the checkpoint has loaded and the graph is built)
/// and says what it holds. Nothing is written until everything is computed and every output
/// path is known to be free.
pub fn export(req: &ExportRequest) -> Result<String> {
    let mut inputs = vec![req.checkpoint.clone()];
    inputs.extend(req.config.iter().cloned());
    crate::fsutil::refuse_overwriting_inputs(std::slice::from_ref(&req.out), &inputs)?;
    crate::fsutil::refuse_existing(std::slice::from_ref(&req.out), req.force)?;
    let Exportable { blueprint: bp, input, purpose, metadata } = describe(req)?;
    let batch = crate::export::graph_batch(&req.options, bp.is_dynamic());
    if let Some(dir) = &req.reference {
        check_reference_batches(dir, &req.reference_batches, batch)?;
    }
    let (bytes, reference) = crate::with_device!(crate::config::Device::Cpu, |dev: D| {
        let mut net = Network::<D>::new(&dev, &bp, 0);
        crate::model::checkpoint::load(&mut net, &req.checkpoint)?;
        let bytes = crate::export::export(&net, input, &purpose, &req.options, metadata)?;
        let reference = match &req.reference {
            Some(_) => req
                .reference_batches
                .iter()
                .map(|&n| reference_arrays(&mut net, input, &purpose, &req.options, n))
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        anyhow::Ok((bytes, reference))
    })?;
    let files: Vec<(PathBuf, Vec<u8>)> = match &req.reference {
        Some(dir) => reference
            .into_iter()
            .flatten()
            .map(|(name, shape, values)| (dir.join(format!("{name}.npy")), npy_bytes(&shape, &values)))
            .collect(),
        None => Vec::new(),
    };
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    crate::fsutil::refuse_overwriting_inputs(&paths, &inputs)?;
    crate::fsutil::refuse_existing(&paths, req.force)?;
    if let Some(dir) = &req.reference {
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the folder", dir.display()))?;
    }
    crate::fsutil::write_new(&req.out, &bytes, req.force)?;
    for (path, data) in &files {
        crate::fsutil::write_new(path, data, req.force)?;
    }
    let mut text = summary(req, batch, input, &purpose, bytes.len());
    if let Some(dir) = &req.reference {
        let batches = &req.reference_batches;
        text += &format!("\nreference inputs and dypose's outputs (batches {batches:?}) in {}", dir.display());
    }
    Ok(text)
}

/// What a checkpoint describes: its network, input size, what it computes, and the metadata a
/// deployment needs.
struct Exportable {
    blueprint: Blueprint,
    input: Size,
    purpose: Purpose,
    metadata: Vec<(String, String)>,
}

fn describe(req: &ExportRequest) -> Result<Exportable> {
    let meta = CheckpointMeta::read(&req.checkpoint)?;
    if meta.classifier.is_some() {
        anyhow::ensure!(
            req.config.is_none(),
            "{}: a classifier checkpoint describes its own network; --config is for pose models and detectors",
            req.checkpoint.display()
        );
        let model = classifier_of(&req.checkpoint)?;
        let metadata = vec![
            ("task".to_string(), "classify".to_string()),
            ("classifier".to_string(), serde_json::to_string(&model)?),
            ("class_names".to_string(), serde_json::to_string(&model.class_names)?),
        ];
        let blueprint = Blueprint::classifier(&model)?;
        return Ok(Exportable { blueprint, input: model.input_size, purpose: Purpose::Classify, metadata });
    }
    let (cfg, spec) = super::described_by(&req.checkpoint, req.config.as_deref())?;
    let (purpose, metadata) = purpose_of(&cfg, &spec)?;
    Ok(Exportable { blueprint: Blueprint::for_config(&cfg, spec.len())?, input: cfg.input_size, purpose, metadata })
}

/// Reference batches are at least 1, and equal to the graph's batch where that is fixed.
fn check_reference_batches(dir: &std::path::Path, batches: &[usize], graph: Option<usize>) -> Result<()> {
    anyhow::ensure!(!batches.is_empty(), "{}: no reference batch sizes given", dir.display());
    anyhow::ensure!(!batches.contains(&0), "{}: a reference batch size must be at least 1", dir.display());
    if let (Some(fixed), Some(other)) = (graph, batches.iter().find(|&&n| Some(n) != graph)) {
        anyhow::bail!("{}: a reference for batch {other} cannot run a graph of fixed batch {fixed}", dir.display());
    }
    Ok(())
}

/// One named array of a reference set: name (with the batch), shape, values.
type Array = (String, Vec<usize>, Values);

/// Seeded inputs of batch `n` and what dypose computes from them, named as the graph's outputs.
fn reference_arrays<D: ConvBackend>(
    net: &mut Network<D>,
    input: Size,
    purpose: &Purpose,
    opts: &ExportOptions,
    n: usize,
) -> Result<Vec<Array>> {
    let (h, w) = (input.height, input.width);
    let mut rng = crate::seed::stream(n as u64, crate::seed::INIT, 1);
    let x: Vec<f32> = (0..n * 3 * h * w).map(|_| StandardNormal.sample(&mut rng)).collect();
    let mut out: Vec<Array> = vec![(format!("input_b{n}"), vec![n, 3, h, w], Values::F32(x.clone()))];
    let mut push = |name: &str, shape: Vec<usize>, values: Values| out.push((format!("{name}_b{n}"), shape, values));
    match purpose {
        Purpose::Pose { codec, decoding, flip_permutation } => {
            let perm = opts.flip.then_some(&flip_permutation[..]);
            let maps = crate::infer::predictor::heatmaps_with_flip(net, &x, n, codec, perm)?;
            let plane = codec.heatmap.area();
            let j = maps.len() / n / plane;
            if opts.decode {
                let joints: Vec<([f32; 2], f32)> =
                    maps.chunks(j * plane).flat_map(|m| codec.decode(m, *decoding)).collect();
                push("keypoints", vec![n, j, 2], Values::F32(joints.iter().flat_map(|(p, _)| *p).collect()));
                push("scores", vec![n, j], Values::F32(joints.iter().map(|(_, s)| *s).collect()));
            }
            push("heatmaps", vec![n, j, codec.heatmap.height, codec.heatmap.width], Values::F32(maps));
        }
        Purpose::Detect { codec, top_k, min_score } => {
            let maps = net.heatmaps(&x, n, input)?;
            let (mh, mw) = (codec.output.height, codec.output.width);
            if !opts.decode {
                push("maps", vec![n, 5, mh, mw], Values::F32(maps));
                return Ok(out);
            }
            let mirrored = match opts.flip {
                true => Some(net.heatmaps(&crate::infer::post::mirror_inputs(&x, input), n, input)?),
                false => None,
            };
            let found = crate::infer::detect::boxes_of_maps(codec, maps, mirrored, *top_k, *min_score);
            let k = (*top_k).min(mh * mw);
            let (mut boxes, mut scores) = (vec![0.0f32; n * k * 4], vec![0.0f32; n * k]);
            for (i, image) in found.iter().enumerate() {
                for (r, b) in image.iter().enumerate() {
                    (0..4).for_each(|c| boxes[(i * k + r) * 4 + c] = b.bbox[c] as f32);
                    scores[i * k + r] = b.score as f32;
                }
            }
            push("boxes", vec![n, k, 4], Values::F32(boxes));
            push("scores", vec![n, k], Values::F32(scores));
            push("num_detections", vec![n], Values::I64(found.iter().map(|b| b.len() as i64).collect()));
        }
        Purpose::Classify => {
            let logits = crate::infer::classify::ImageClassifier::logits(net, &x, n, input)?;
            let classes = logits.len() / n;
            if opts.decode {
                let p: Vec<f32> = logits.chunks(classes).flat_map(softmax).collect();
                push("probabilities", vec![n, classes], Values::F32(p));
            }
            push("logits", vec![n, classes], Values::F32(logits));
        }
    }
    Ok(out)
}

/// Probabilities of one row of logits, in f64.
fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = logits.iter().map(|&v| (v as f64 - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| (v / sum) as f32).collect()
}

/// The decoding a config asks for, and the metadata a deployment needs to use the outputs.
fn purpose_of(cfg: &Config, spec: &crate::coco::KeypointSpec) -> Result<(Purpose, Vec<(String, String)>)> {
    let mut metadata = vec![
        ("task".to_string(), serde_json::to_value(cfg.model.task)?.as_str().unwrap_or_default().to_string()),
        ("config".to_string(), serde_json::to_string(cfg)?),
        ("heatmap_width".to_string(), cfg.heatmap_size.width.to_string()),
        ("heatmap_height".to_string(), cfg.heatmap_size.height.to_string()),
    ];
    let purpose = match cfg.model.task {
        Task::Pose => {
            metadata.extend([
                ("keypoint_names".to_string(), serde_json::to_string(&spec.keypoints)?),
                ("flip_pairs".to_string(), serde_json::to_string(&spec.flip_pairs)?),
                ("sigmas".to_string(), serde_json::to_string(&spec.sigmas)?),
                ("skeleton".to_string(), serde_json::to_string(&spec.limbs)?),
                ("keypoints".to_string(), serde_json::to_string(spec)?),
                ("decoding".to_string(), cfg.val.decoding.to_string()),
            ]);
            Purpose::Pose {
                codec: crate::data::codec::HeatmapCodec::from_config(cfg),
                decoding: cfg.val.decoding,
                flip_permutation: spec.flip_permutation(),
            }
        }
        Task::Detect => {
            metadata.extend([
                ("min_score".to_string(), cfg.detect.min_score.to_string()),
                ("max_detections".to_string(), cfg.detect.max_detections.to_string()),
            ]);
            Purpose::Detect {
                codec: crate::data::detect::DetectSpec::from_config(cfg, false).codec,
                top_k: cfg.detect.max_detections,
                min_score: cfg.detect.min_score,
            }
        }
        Task::Classify => unreachable!("classifier checkpoints are told apart by their metadata"),
    };
    Ok((purpose, metadata))
}

fn summary(req: &ExportRequest, batch: Option<usize>, input: Size, purpose: &Purpose, bytes: usize) -> String {
    let o = &req.options;
    let batch = batch.map_or_else(|| "batch".to_string(), |b| b.to_string());
    let outputs = match (purpose, o.decode) {
        (Purpose::Pose { .. }, false) => "heatmaps",
        (Purpose::Pose { .. }, true) => "heatmaps, keypoints, scores",
        (Purpose::Detect { .. }, false) => "maps",
        (Purpose::Detect { .. }, true) => "boxes, scores, num_detections",
        (Purpose::Classify, false) => "logits",
        (Purpose::Classify, true) => "logits, probabilities",
    };
    format!(
        "wrote {} ({:.1} MB, ONNX opset {}): input [{batch}, 3, {}, {}] (normalised RGB), outputs {outputs}; dynamic convolution as `{}`{}",
        req.out.display(),
        bytes as f64 / 1e6,
        crate::export::OPSET,
        input.height,
        input.width,
        o.form,
        if o.flip { ", flip test inside" } else { "" }
    )
}
