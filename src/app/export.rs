//! `dypose export`: a checkpoint (pose model, person detector or classifier) as one ONNX file.

use super::classify::classifier_of;
use crate::config::{Config, Size, Task};
use crate::export::{DynamicForm, ExportOptions, Purpose};
use crate::model::blueprint::Blueprint;
use crate::model::checkpoint::CheckpointMeta;
use crate::model::network::Network;
use anyhow::Result;
use std::path::PathBuf;

/// What `dypose export` was asked for.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub checkpoint: PathBuf,
    /// A config that replaces the checkpoint's own (as for `predict`).
    pub config: Option<PathBuf>,
    pub out: PathBuf,
    pub options: ExportOptions,
    pub force: bool,
}

/// Writes the ONNX file (atomically, after the checkpoint has loaded and the graph is built)
/// and says what it holds.
pub fn export(req: &ExportRequest) -> Result<String> {
    let mut inputs = vec![req.checkpoint.clone()];
    inputs.extend(req.config.iter().cloned());
    crate::fsutil::refuse_overwriting_inputs(std::slice::from_ref(&req.out), &inputs)?;
    crate::fsutil::refuse_existing(std::slice::from_ref(&req.out), req.force)?;
    let meta = CheckpointMeta::read(&req.checkpoint)?;
    let (bp, input, purpose, metadata) = match &meta.classifier {
        Some(_) => {
            let model = classifier_of(&req.checkpoint)?;
            let metadata = vec![
                ("task".to_string(), "classify".to_string()),
                ("classifier".to_string(), serde_json::to_string(&model)?),
                ("class_names".to_string(), serde_json::to_string(&model.class_names)?),
            ];
            (Blueprint::classifier(&model)?, model.input_size, Purpose::Classify, metadata)
        }
        None => {
            let (cfg, spec) = super::described_by(&req.checkpoint, req.config.as_deref())?;
            let (purpose, metadata) = purpose_of(&cfg, &spec)?;
            (Blueprint::for_config(&cfg, spec.len())?, cfg.input_size, purpose, metadata)
        }
    };
    let bytes = crate::with_device!(crate::config::Device::Cpu, |dev: D| {
        let mut net = Network::<D>::new(&dev, &bp, 0);
        crate::model::checkpoint::load(&mut net, &req.checkpoint)?;
        crate::export::export(&net, input, &purpose, &req.options, metadata)
    })?;
    crate::fsutil::write_new(&req.out, &bytes, req.force)?;
    Ok(summary(req, input, &purpose, bytes.len()))
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

fn summary(req: &ExportRequest, input: Size, purpose: &Purpose, bytes: usize) -> String {
    let o = &req.options;
    let batch = match (o.form, o.batch) {
        (DynamicForm::Grouped, b) => b.unwrap_or(1).to_string(),
        (_, Some(b)) => b.to_string(),
        (_, None) => "batch".to_string(),
    };
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
