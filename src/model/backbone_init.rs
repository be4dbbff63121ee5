//! Starting a pose network's backbone from another checkpoint (`model.backbone_checkpoint`: a
//! pretraining run's, imported torchvision weights, another pose model's). Tensors are matched
//! by name under `backbone.`; the head stays as initialised.
//!
//! A dynamic conv started from a static checkpoint gets the static kernel in each of its K
//! kernels, each with Gaussian noise of 1% of the kernel's RMS so that they can drift apart;
//! its attention starts from its own initialisation. This is dypose's choice: the DY-Conv paper
//! trains its dynamic networks from scratch.

use super::backend::ConvBackend;
use super::network::Network;
use anyhow::{bail, ensure, Context, Result};
use rand_distr::{Distribution, Normal};
use safetensors::tensor::{Dtype, SafeTensors};
use std::path::Path;

const PREFIX: &str = "backbone.";

/// What [`load_backbone`] did, for the run's log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackboneReport {
    /// Tensors copied as they were.
    pub copied: usize,
    /// Static kernels copied into the K kernels of a dynamic conv.
    pub expanded: usize,
    /// Backbone tensors of the network that the checkpoint lacks (left as initialised), e.g.
    /// the attention branches of dynamic convs started from a static checkpoint.
    pub left: Vec<String>,
    /// Tensors of the network outside the backbone (the head), left as initialised.
    pub head: usize,
    /// Backbone tensors of the checkpoint the network has no place for.
    pub unused: Vec<String>,
}

impl BackboneReport {
    pub fn summary(&self, source: &str) -> String {
        let mut s = format!("backbone from {source}: {} tensors copied", self.copied);
        if self.expanded > 0 {
            s += &format!(
                ", {} static kernels copied into each kernel of a dynamic conv (with 1% noise)",
                self.expanded
            );
        }
        if !self.left.is_empty() {
            s += &format!(
                ", {} backbone tensors not in the checkpoint left as initialised (e.g. {})",
                self.left.len(),
                self.left[0]
            );
        }
        s += &format!("; the head's {} tensors start fresh", self.head);
        if !self.unused.is_empty() {
            s += &format!("; {} checkpoint tensors unused (e.g. {})", self.unused.len(), self.unused[0]);
        }
        s
    }
}

/// Copies the backbone tensors of the checkpoint at `path` into `net` (noise from `seed`).
/// A tensor whose shape fits neither as is nor as a static kernel for a dynamic conv stops
/// with both shapes named.
pub fn load_backbone<D: ConvBackend>(net: &mut Network<D>, path: &Path, seed: u64) -> Result<BackboneReport> {
    let source = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("{source}: cannot read checkpoint"))?;
    let st = SafeTensors::deserialize(&bytes).with_context(|| format!("{source}: not a safetensors file"))?;
    let mut rng = crate::seed::stream(seed, crate::seed::INIT - 1, 0);
    let mut report = BackboneReport::default();
    let mut used = std::collections::BTreeSet::new();
    let dev = net.device();
    for p in net.params_mut() {
        if !p.name.starts_with(PREFIX) {
            report.head += 1;
            continue;
        }
        let Ok(view) = st.tensor(&p.name) else {
            report.left.push(p.name.clone());
            continue;
        };
        ensure!(view.dtype() == Dtype::F32, "{source}: tensor '{}' has dtype {:?}, expected F32", p.name, view.dtype());
        let values = super::checkpoint::finite_f32(&view, &source, &p.name)?;
        let data = if view.shape() == p.shape.as_slice() {
            report.copied += 1;
            values
        } else if p.shape.len() == view.shape().len() + 1 && &p.shape[1..] == view.shape() {
            // A static kernel for a dynamic conv's K kernels.
            let rms = (values.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / values.len().max(1) as f64).sqrt();
            let noise = Normal::new(0.0, 0.01 * rms.max(1e-12)).expect("a positive deviation");
            report.expanded += 1;
            (0..p.shape[0])
                .flat_map(|_| values.iter().map(|&v| v + noise.sample(&mut rng) as f32).collect::<Vec<_>>())
                .collect()
        } else {
            bail!(
                "{source}: tensor '{}' has shape {:?}, but the network's is {:?} (another architecture or width?)",
                p.name,
                view.shape(),
                p.shape
            );
        };
        p.value = dev.tensor_from_vec(data, (p.numel(),));
        used.insert(p.name.clone());
    }
    report.unused =
        st.names().into_iter().filter(|n| n.starts_with(PREFIX) && !used.contains(*n)).map(str::to_string).collect();
    report.unused.sort();
    ensure!(report.copied + report.expanded > 0, "{source}: no tensor under '{PREFIX}' fits this network's backbone");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::super::blueprint::{backbone, light_head, Blueprint};
    use super::*;
    use crate::config::Arch;
    use dfdx::prelude::*;

    fn pose(arch: Arch) -> Blueprint {
        let b = backbone(arch, 0.25, false).unwrap();
        let head = light_head(b.out_channels, 8, 2, 5, arch.is_dynamic());
        Blueprint { backbone: b, head: Some(head), classifier: None, kernels: 3 }
    }

    fn classifier(arch: Arch) -> Blueprint {
        Blueprint { backbone: backbone(arch, 0.25, false).unwrap(), head: None, classifier: Some(10), kernels: 3 }
    }

    fn values(net: &Network<Cpu>, name: &str) -> Vec<f32> {
        net.params().into_iter().find(|p| p.name == name).unwrap().value.as_vec()
    }

    #[test]
    fn a_static_classifier_starts_a_dynamic_pose_backbone() {
        let dev: Cpu = Default::default();
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("cls.safetensors");
        let cls = Network::new(&dev, &classifier(Arch::Resnet10), 1);
        crate::model::checkpoint::save(&cls, &ck, &Default::default(), false).unwrap();
        let mut pose_net = Network::new(&dev, &pose(Arch::DyResnet10), 2);
        let head_before = values(&pose_net, "head.final_layer.weight");
        let report = load_backbone(&mut pose_net, &ck, 0).unwrap();
        // The stem is static in both: copied exactly.
        assert_eq!(values(&pose_net, "backbone.conv1.weight"), values(&cls, "backbone.conv1.weight"));
        assert_eq!(values(&pose_net, "backbone.bn1.running_var"), values(&cls, "backbone.bn1.running_var"));
        // A dynamic conv: K = 3 copies of the static kernel, each within a few % of its RMS.
        let stat = values(&cls, "backbone.layer1.0.conv1.weight");
        let dynamic = values(&pose_net, "backbone.layer1.0.conv1.weight");
        assert_eq!(dynamic.len(), 3 * stat.len());
        let rms = (stat.iter().map(|v| v * v).sum::<f32>() / stat.len() as f32).sqrt();
        for k in 0..3 {
            let copy = &dynamic[k * stat.len()..(k + 1) * stat.len()];
            let worst = copy.iter().zip(&stat).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(worst > 0.0 && worst < 0.06 * rms, "kernel {k}: off by {worst} (rms {rms})");
        }
        assert_ne!(&dynamic[..stat.len()], &dynamic[stat.len()..2 * stat.len()], "the copies differ by their noise");
        assert_eq!(values(&pose_net, "head.final_layer.weight"), head_before, "the head is untouched");
        assert_eq!(report.expanded, 8, "the eight 3×3 convs of ResNet-10's blocks");
        assert!(report.left.iter().all(|n| n.contains(".attention.")), "{:?}", report.left);
        assert!(report.unused.is_empty());
    }

    #[test]
    fn another_architecture_is_named() {
        let dev: Cpu = Default::default();
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("v2.safetensors");
        let other = Network::new(&dev, &classifier(Arch::Mobilenetv2), 1);
        crate::model::checkpoint::save(&other, &ck, &Default::default(), false).unwrap();
        let mut net = Network::new(&dev, &pose(Arch::Mobilenetv3Small), 2);
        let e = load_backbone(&mut net, &ck, 0).unwrap_err().to_string();
        // The stems agree at this width (8 channels); the first block that differs is named.
        assert!(e.contains("backbone.features.2.expand.weight") && e.contains("another architecture"), "{e}");
    }
}
