//! torchvision's parameter names for dypose's static ResNet, MobileNetV2 and MobileNetV3-Small,
//! and loading a torchvision state dict (saved as safetensors) into a network. The layouts are
//! the same (OIHW convs, [out, in] linears); squeeze-excitation FCs are 1×1 convs there.

use super::backend::ConvBackend;
use super::blueprint::{Block, Blueprint};
use super::network::Network;
use anyhow::{bail, ensure, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::BTreeMap;

/// (dypose prefix, torchvision prefix) of every layer of a static classifier `bp`; a layer's
/// tensors are its prefix plus `.weight`, `.bias`, `.running_mean`, `.running_var`.
pub fn layer_names(bp: &Blueprint) -> Result<Vec<(String, String)>> {
    let b = &bp.backbone;
    ensure!(bp.head.is_none() && bp.classifier.is_some(), "torchvision weights are for classifiers");
    ensure!(
        !b.name.starts_with("dy-"),
        "{}: torchvision has no dynamic convolutions; import into the static architecture",
        b.name
    );
    let mut out: Vec<(String, String)> = Vec::new();
    let mut pair = |ours: String, theirs: String| out.push((format!("backbone.{ours}"), theirs));
    if b.stem_pool {
        // ResNet: the same names, under `backbone.`.
        for n in ["conv1", "bn1"] {
            pair(n.into(), n.into());
        }
        for (s, stage) in b.stages.iter().enumerate() {
            for (i, block) in stage.iter().enumerate() {
                let p = format!("layer{}.{i}", s + 1);
                let shortcut = matches!(block, Block::Basic { shortcut: Some(_), .. });
                let names: &[&str] = if shortcut {
                    &["conv1", "bn1", "conv2", "bn2", "downsample.0", "downsample.1"]
                } else {
                    &["conv1", "bn1", "conv2", "bn2"]
                };
                for n in names {
                    pair(format!("{p}.{n}"), format!("{p}.{n}"));
                }
            }
        }
        out.push(("classifier".into(), "fc".into()));
        return Ok(out);
    }
    let v3 = b.classifier_hidden.is_some();
    let conv_bn = |pair: &mut dyn FnMut(String, String), ours: String, theirs: String| {
        pair(ours.clone(), format!("{theirs}.0"));
        pair(format!("{ours}_bn"), format!("{theirs}.1"));
    };
    pair("features.0.conv".into(), "features.0.0".into());
    pair("features.0.bn".into(), "features.0.1".into());
    let mut n = 1;
    for block in b.stages.iter().flatten() {
        let Block::Inverted { expand, se, .. } = block else { bail!("{}: not a MobileNet block", b.name) };
        let (ours, theirs) = (format!("features.{n}"), format!("features.{n}"));
        if v3 {
            // features.n.block.j: [expand], depthwise, [SE with fc1/fc2], project.
            let mut j = 0;
            let mut next = || {
                j += 1;
                format!("{theirs}.block.{}", j - 1)
            };
            if expand.is_some() {
                conv_bn(&mut pair, format!("{ours}.expand"), next());
            }
            conv_bn(&mut pair, format!("{ours}.depthwise"), next());
            if se.is_some() {
                let t = next();
                pair(format!("{ours}.se.fc1"), format!("{t}.fc1"));
                pair(format!("{ours}.se.fc2"), format!("{t}.fc2"));
            }
            conv_bn(&mut pair, format!("{ours}.project"), next());
        } else {
            // features.n.conv: [expand as conv.0 (0, 1)], depthwise, then project conv and BN.
            let k = usize::from(expand.is_some());
            if expand.is_some() {
                conv_bn(&mut pair, format!("{ours}.expand"), format!("{theirs}.conv.0"));
            }
            conv_bn(&mut pair, format!("{ours}.depthwise"), format!("{theirs}.conv.{k}"));
            pair(format!("{ours}.project"), format!("{theirs}.conv.{}", k + 1));
            pair(format!("{ours}.project_bn"), format!("{theirs}.conv.{}", k + 2));
        }
        n += 1;
    }
    pair(format!("features.{n}.conv"), format!("features.{n}.0"));
    pair(format!("features.{n}.bn"), format!("features.{n}.1"));
    if v3 {
        out.push(("classifier.0".into(), "classifier.0".into()));
        out.push(("classifier.3".into(), "classifier.3".into()));
    } else {
        out.push(("classifier".into(), "classifier.1".into()));
    }
    Ok(out)
}

/// What [`load_state_dict`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    pub tensors: usize,
    /// torchvision tensors with no counterpart (BN's `num_batches_tracked`).
    pub ignored: Vec<String>,
}

/// Loads torchvision's tensors (f32, as `tools/import_torchvision.py` saves them) into `net`,
/// every tensor of `net` from its torchvision name with the same number of values (and the
/// same shape up to trailing 1s). Errors name the file and the tensor.
pub fn load_state_dict<D: ConvBackend>(net: &mut Network<D>, bytes: &[u8], source: &str) -> Result<ImportReport> {
    let st = SafeTensors::deserialize(bytes).with_context(|| format!("{source}: not a safetensors file"))?;
    let layers = layer_names(&net.blueprint)?;
    let mut theirs_of: BTreeMap<String, String> = BTreeMap::new();
    for (ours, theirs) in &layers {
        for suffix in ["weight", "bias", "running_mean", "running_var"] {
            theirs_of.insert(format!("{ours}.{suffix}"), format!("{theirs}.{suffix}"));
        }
    }
    let mut used = std::collections::BTreeSet::new();
    let dev = net.device();
    for p in net.params_mut() {
        let theirs = theirs_of.get(&p.name).with_context(|| format!("{}: no torchvision name for it", p.name))?;
        let view = st.tensor(theirs).map_err(|_| {
            anyhow::anyhow!("{source}: tensor '{theirs}' is missing (for {}, shape {:?})", p.name, p.shape)
        })?;
        ensure!(view.dtype() == Dtype::F32, "{source}: tensor '{theirs}' has dtype {:?}, expected F32", view.dtype());
        let squeezed: Vec<usize> = {
            let mut s = view.shape().to_vec();
            while s.len() > p.shape.len() && s.last() == Some(&1) {
                s.pop();
            }
            s
        };
        ensure!(
            squeezed == p.shape,
            "{source}: tensor '{theirs}' has shape {:?}, expected {:?} (for {})",
            view.shape(),
            p.shape,
            p.name
        );
        let values = super::checkpoint::finite_f32(&view, source, theirs)?;
        p.value = dev.tensor_from_vec(values, (p.numel(),));
        used.insert(theirs.clone());
    }
    let ignored: Vec<String> = st.names().into_iter().filter(|n| !used.contains(*n)).map(str::to_string).collect();
    if let Some(n) = ignored.iter().find(|n| !n.ends_with("num_batches_tracked")) {
        bail!(
            "{source}: tensor '{n}' belongs to no layer of {} (another architecture or width?)",
            net.blueprint.backbone.name
        );
    }
    Ok(ImportReport { tensors: used.len(), ignored })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Arch;
    use crate::model::blueprint::backbone;

    fn names(arch: Arch) -> BTreeMap<String, String> {
        let bp =
            Blueprint { backbone: backbone(arch, 1.0, false).unwrap(), head: None, classifier: Some(1000), kernels: 4 };
        layer_names(&bp).unwrap().into_iter().collect()
    }

    /// Spot checks against `torchvision.models.*().state_dict().keys()` (torchvision 0.29).
    #[test]
    fn torchvision_names_by_hand() {
        let r = names(Arch::Resnet18);
        assert_eq!(r["backbone.layer2.0.downsample.1"], "layer2.0.downsample.1");
        assert_eq!(r["classifier"], "fc");
        let v2 = names(Arch::Mobilenetv2);
        assert_eq!(v2["backbone.features.1.depthwise"], "features.1.conv.0.0");
        assert_eq!(v2["backbone.features.1.project_bn"], "features.1.conv.2");
        assert_eq!(v2["backbone.features.2.expand_bn"], "features.2.conv.0.1");
        assert_eq!(v2["backbone.features.2.project"], "features.2.conv.2");
        assert_eq!(v2["backbone.features.18.bn"], "features.18.1");
        assert_eq!(v2["classifier"], "classifier.1");
        let v3 = names(Arch::Mobilenetv3Small);
        assert_eq!(v3["backbone.features.1.depthwise"], "features.1.block.0.0");
        assert_eq!(v3["backbone.features.1.se.fc2"], "features.1.block.1.fc2");
        assert_eq!(v3["backbone.features.1.project_bn"], "features.1.block.2.1");
        assert_eq!(v3["backbone.features.2.project"], "features.2.block.2.0", "no SE in block 2");
        assert_eq!(v3["backbone.features.4.se.fc1"], "features.4.block.2.fc1");
        assert_eq!(v3["backbone.features.4.project"], "features.4.block.3.0");
        assert_eq!(v3["backbone.features.12.conv"], "features.12.0");
        assert_eq!(v3["classifier.3"], "classifier.3");
        let bp = Blueprint {
            backbone: backbone(Arch::DyResnet18, 1.0, false).unwrap(),
            head: None,
            classifier: Some(10),
            kernels: 4,
        };
        assert!(layer_names(&bp).unwrap_err().to_string().contains("no dynamic convolutions"));
    }
}
