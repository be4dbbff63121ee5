//! `dypose explain`: one person crop's heatmaps and skeleton beside the dynamic-conv attention.

use crate::config::Device;
use crate::infer::boxes::whole_image_box;
use crate::infer::explain::{explain_crop, Explanation};
use crate::infer::{PersonBox, Predictor};
use crate::viz::explain::{sheet, CropView};
use anyhow::{ensure, Result};
use std::path::PathBuf;

pub struct ExplainRequest {
    pub checkpoint: PathBuf,
    /// Another config than the checkpoint's own.
    pub config: Option<PathBuf>,
    pub device: Device,
    pub image: PathBuf,
    /// The person box x, y, w, h (the whole image when `None`).
    pub bbox: Option<[f64; 4]>,
    /// The picture to write (PNG or JPEG by extension).
    pub out: PathBuf,
    pub force: bool,
}

/// Explains one crop and writes its picture; the report lists every dynamic layer's π.
pub fn explain(req: &ExplainRequest) -> Result<String> {
    let inputs: Vec<PathBuf> =
        [req.image.clone(), req.checkpoint.clone()].into_iter().chain(req.config.clone()).collect();
    crate::fsutil::refuse_overwriting_inputs(std::slice::from_ref(&req.out), &inputs)?;
    crate::fsutil::refuse_existing(std::slice::from_ref(&req.out), req.force)?;
    let img = crate::data::loader::load_rgb(&req.image).map_err(anyhow::Error::msg)?;
    let pb = match req.bbox {
        Some(b) => {
            ensure!(b[2] > 0.0 && b[3] > 0.0, "--box {b:?}: width and height must be positive");
            PersonBox { image_id: 0, bbox: b, score: 1.0 }
        }
        None => whole_image_box(0, img.width(), img.height()),
    };
    let trained = super::open_checkpoint(req.device, &req.checkpoint, req.config.as_deref())?;
    let mut predictor = Predictor::for_config(trained.model, &trained.cfg, &trained.spec)?;
    let ex: Explanation = explain_crop(&mut predictor, &img, &pb)?;
    let view = CropView {
        crop: &ex.crop,
        heatmaps: &ex.heatmaps,
        heatmap: predictor.codec.heatmap,
        joints: &ex.joints_in_crop,
        attention: &ex.attention,
    };
    let picture = sheet(&view, &trained.spec, predictor.options.joint_threshold);
    crate::viz::save_image(&picture, &req.out, req.force)?;
    let mut report = format!("person score {:.3}; {} dynamic layers\n", ex.person.score, ex.attention.len());
    for (name, pi) in &ex.attention {
        let cells: Vec<String> = pi.iter().map(|v| format!("{v:.3}")).collect();
        report += &format!("  {name:<32} π = [{}]\n", cells.join(", "));
    }
    Ok(report + &format!("→ {}", req.out.display()))
}
