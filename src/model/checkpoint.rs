//! Model checkpoints as safetensors with PyTorch-style names and layouts:
//! written atomically, loaded with every tensor's presence and shape checked.

use super::layers::Param;
use super::network::Network;
use crate::config::{ClassifierModel, Config, PretrainConfig};
use anyhow::{bail, Context, Result};
use dfdx::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Names under this prefix are trainer state, not model weights.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";

/// The validation score a best checkpoint was kept for.
#[derive(Debug, Clone, PartialEq)]
pub struct BestScore {
    /// Epochs done when it was written.
    pub epoch: usize,
    /// The score's `metrics.csv` column (`val_ap`, `val_top1`), also its metadata key.
    pub column: String,
    pub value: f64,
}

/// What a checkpoint says about itself: every metadata key dypose writes and reads, in one
/// place. Checkpoints of earlier releases read as well (`pretrain_config`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckpointMeta {
    /// The config it was trained with (`config`): predicting, evaluating and resuming need no
    /// other file.
    pub config: Option<Config>,
    /// Its keypoint set (`keypoints`), as the JSON of a `coco::KeypointSpec` (a type above this
    /// layer; `app` reads it).
    pub keypoints: Option<String>,
    /// A classifier's network and class names (`classifier`).
    pub classifier: Option<ClassifierModel>,
    /// A best checkpoint's epoch and score (`epoch`, and the score under its column's name).
    pub best: Option<BestScore>,
    /// A training checkpoint's own keys (the trainer's position, the optimiser's step), and
    /// notes such as `seed`, `arch` or `source`.
    pub other: BTreeMap<String, String>,
}

/// The score columns a best checkpoint may name.
const SCORE_KEYS: [&str; 2] = ["val_ap", "val_top1"];

impl CheckpointMeta {
    /// The metadata as the file stores it.
    pub fn to_map(&self) -> Result<BTreeMap<String, String>> {
        let mut map = self.other.clone();
        if let Some(c) = &self.config {
            map.insert("config".into(), serde_json::to_string(c)?);
        }
        if let Some(k) = &self.keypoints {
            map.insert("keypoints".into(), k.clone());
        }
        if let Some(c) = &self.classifier {
            map.insert(crate::config::CLASSIFIER_KEY.into(), serde_json::to_string(c)?);
        }
        if let Some(b) = &self.best {
            map.insert("epoch".into(), b.epoch.to_string());
            map.insert(b.column.clone(), b.value.to_string());
        }
        Ok(map)
    }

    /// Reads the metadata of a file; errors name `source` and the key.
    pub fn from_map(mut map: BTreeMap<String, String>, source: &str) -> Result<CheckpointMeta> {
        let mut meta = CheckpointMeta::default();
        if let Some(text) = map.remove("config") {
            meta.config = Some(Config::from_json(&text).with_context(|| format!("{source}: the 'config' metadata"))?);
        } else if let Some(text) = map.remove("pretrain_config") {
            let old: PretrainConfig =
                serde_json::from_str(&text).with_context(|| format!("{source}: the 'pretrain_config' metadata"))?;
            meta.config = Some(old.into_config());
        }
        meta.keypoints = map.remove("keypoints");
        if let Some(text) = map.remove(crate::config::CLASSIFIER_KEY) {
            let c = serde_json::from_str(&text).with_context(|| format!("{source}: the 'classifier' metadata"))?;
            meta.classifier = Some(c);
        }
        let score = SCORE_KEYS.iter().find_map(|k| map.get(*k).map(|v| (k.to_string(), v.clone())));
        if let (Some(epoch), Some((column, value))) = (map.get("epoch"), score) {
            let parse = |what: &str, v: &str| format!("{source}: the '{what}' metadata is not a number ({v})");
            let epoch = epoch.parse().with_context(|| parse("epoch", epoch))?;
            let value = value.parse().with_context(|| parse(&column, &value))?;
            map.remove("epoch");
            map.remove(&column);
            meta.best = Some(BestScore { epoch, column, value });
        }
        meta.other = map;
        Ok(meta)
    }

    /// The metadata of a checkpoint file, from its header alone.
    pub fn read(path: &Path) -> Result<CheckpointMeta> {
        CheckpointMeta::from_map(read_metadata(path)?, &path.display().to_string())
    }
}

/// Serialises every parameter and buffer (f32, little-endian) with `metadata`.
pub fn to_bytes<D: Device<f32>>(params: &[&Param<D>], metadata: BTreeMap<String, String>) -> Result<Vec<u8>> {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = params
        .iter()
        .map(|p| (p.name.clone(), p.shape.clone(), p.value.as_vec().iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(n, s, b)| Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), b)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    let meta: HashMap<String, String> = metadata.into_iter().collect();
    Ok(safetensors::serialize(views, Some(meta))?)
}

/// Writes the network's weights to `path` atomically (temporary file + rename); an existing
/// file is replaced only with `overwrite`.
pub fn save<D: super::backend::ConvBackend>(
    net: &Network<D>,
    path: &Path,
    meta: &CheckpointMeta,
    overwrite: bool,
) -> Result<()> {
    let bytes = to_bytes(&net.params(), meta.to_map()?)?;
    crate::fsutil::write_new(path, &bytes, overwrite)
}

/// Loads weights into `params`; every parameter must be present with its exact shape, and the
/// file must hold nothing else. Errors name the file and the tensor.
pub fn load_into<D: Device<f32>>(
    params: Vec<&mut Param<D>>,
    bytes: &[u8],
    source: &str,
) -> Result<BTreeMap<String, String>> {
    let st = SafeTensors::deserialize(bytes).with_context(|| format!("{source}: not a safetensors file"))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).with_context(|| format!("{source}: unreadable header"))?;
    let mut expected = std::collections::BTreeSet::new();
    for p in params {
        expected.insert(p.name.clone());
        let view = st
            .tensor(&p.name)
            .map_err(|_| anyhow::anyhow!("{source}: tensor '{}' is missing (expected shape {:?})", p.name, p.shape))?;
        if view.dtype() != Dtype::F32 {
            bail!("{source}: tensor '{}' has dtype {:?}, expected F32", p.name, view.dtype());
        }
        if view.shape() != p.shape.as_slice() {
            bail!("{source}: tensor '{}' has shape {:?}, expected {:?}", p.name, view.shape(), p.shape);
        }
        let values = finite_f32(&view, source, &p.name)?;
        let n = values.len();
        p.value = p.value.device().tensor_from_vec(values, (n,));
    }
    // Training checkpoints also hold the optimizer's moments; a model load skips them.
    let extra: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| !expected.contains(*n) && !n.starts_with(OPTIMIZER_PREFIX))
        .map(str::to_string)
        .collect();
    if !extra.is_empty() {
        bail!(
            "{source}: {} tensors do not belong to this model, e.g. '{}' (is it another architecture?)",
            extra.len(),
            extra[0]
        );
    }
    Ok(meta.metadata().clone().unwrap_or_default().into_iter().collect())
}

/// The values of an F32 tensor, refused (naming the file and the tensor) when one is not finite.
pub fn finite_f32(view: &TensorView, source: &str, name: &str) -> Result<Vec<f32>> {
    let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!("{source}: tensor '{name}' has a non-finite value ({}) at index {i}", values[i]);
    }
    Ok(values)
}

/// The metadata of a checkpoint file (its config, keypoint set, …), read from the header alone.
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let source = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("{source}: cannot read checkpoint"))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    metadata_of(file, len, &source)
}

/// The metadata in the header of a safetensors stream of `len` bytes: a declared header length
/// beyond the stream (or beyond 100 MB) is refused before anything is allocated for it.
pub fn metadata_of(mut stream: impl std::io::Read, len: u64, source: &str) -> Result<BTreeMap<String, String>> {
    let mut n = [0u8; 8];
    stream.read_exact(&mut n).with_context(|| format!("{source}: not a safetensors file (too short)"))?;
    let n = u64::from_le_bytes(n);
    if n > len.saturating_sub(8) || n > 100_000_000 {
        bail!("{source}: not a safetensors file (header of {n} bytes)");
    }
    let mut header = vec![0u8; n as usize];
    stream.read_exact(&mut header).with_context(|| format!("{source}: unreadable header"))?;
    #[derive(serde::Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__", default)]
        metadata: BTreeMap<String, String>,
    }
    let h: Header = serde_json::from_slice(&header).with_context(|| format!("{source}: unreadable header"))?;
    Ok(h.metadata)
}

/// Loads a checkpoint file into `net`; returns its metadata.
pub fn load<D: super::backend::ConvBackend>(net: &mut Network<D>, path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read checkpoint", path.display()))?;
    load_into(net.params_mut(), &bytes, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::super::blueprint::{backbone, deconv_head, Blueprint};

    #[test]
    fn metadata_round_trips_and_reads_earlier_releases_keys() {
        let meta = CheckpointMeta {
            config: Some(Config::default()),
            keypoints: Some("{}".into()),
            classifier: None,
            best: Some(BestScore { epoch: 3, column: "val_ap".into(), value: 0.25 }),
            other: BTreeMap::from([("seed".to_string(), "7".to_string())]),
        };
        let map = meta.to_map().unwrap();
        assert_eq!((map["epoch"].as_str(), map["val_ap"].as_str(), map["seed"].as_str()), ("3", "0.25", "7"));
        assert_eq!(CheckpointMeta::from_map(map, "ck").unwrap(), meta);
        // A pretraining checkpoint of an earlier release: its flat config reads as a classifier's.
        let old = BTreeMap::from([
            ("pretrain_config".to_string(), r#"{"arch": "resnet10", "epochs": 4, "val_every": 0}"#.to_string()),
            ("epoch".to_string(), "2".to_string()),
            ("val_top1".to_string(), "0.5".to_string()),
        ]);
        let read = CheckpointMeta::from_map(old, "old").unwrap();
        let cfg = read.config.unwrap();
        assert_eq!(
            (cfg.model.task, cfg.model.arch, cfg.train.val_every),
            (crate::config::Task::Classify, Arch::Resnet10, usize::MAX)
        );
        assert_eq!(read.best, Some(BestScore { epoch: 2, column: "val_top1".into(), value: 0.5 }));
        let bad = BTreeMap::from([("config".to_string(), r#"{"sigma": -1}"#.to_string())]);
        let e = format!("{:#}", CheckpointMeta::from_map(bad, "ck.safetensors").unwrap_err());
        assert!(e.contains("ck.safetensors: the 'config' metadata") && e.contains("sigma"), "{e}");
    }
    use super::super::conv::T4;
    use super::super::layers::{init_rng, random_values, Ctx};
    use super::*;
    use crate::config::Arch;

    fn blueprint(arch: Arch) -> Blueprint {
        let b = backbone(arch, 1.0, false).unwrap();
        let head = deconv_head(b.out_channels, 16, 2, 17, arch.is_dynamic());
        Blueprint { backbone: b, head: Some(head), classifier: None, kernels: 4 }
    }

    #[test]
    fn round_trip_gives_bit_identical_outputs() {
        let dev: Cpu = Default::default();
        let bp = blueprint(Arch::DyResnet10);
        let mut trained = Network::new(&dev, &bp, 1);
        let x: T4<Cpu> = dev.tensor_from_vec(random_values(&mut init_rng(5), 2 * 3 * 64 * 32), (2, 3, 64, 32));
        // One training-mode pass moves the BN running statistics away from their initial values.
        let _ = trained.forward(x.clone(), Ctx::train(1.0));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let other = BTreeMap::from([("arch".to_string(), "dy-resnet10".to_string())]);
        save(&trained, &path, &CheckpointMeta { other, ..Default::default() }, false).unwrap();
        let mut fresh = Network::new(&dev, &bp, 2);
        let meta = load(&mut fresh, &path).unwrap();
        assert_eq!(meta["arch"], "dy-resnet10");
        assert_eq!(read_metadata(&path).unwrap(), meta, "the header alone gives the same metadata");
        let a = trained.forward(x.clone(), Ctx::INFERENCE).as_vec();
        let b = fresh.forward(x, Ctx::INFERENCE).as_vec();
        assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
    }

    #[test]
    fn missing_misshaped_and_foreign_tensors_are_named() {
        let dev: Cpu = Default::default();
        let net = Network::new(&dev, &blueprint(Arch::Resnet10), 1);
        let params = net.params();
        let mut fresh = Network::new(&dev, &blueprint(Arch::Resnet10), 1);
        // Missing: drop one tensor.
        let bytes = to_bytes(&params[1..], BTreeMap::new()).unwrap();
        let err = load_into(fresh.params_mut(), &bytes, "ck.safetensors").unwrap_err().to_string();
        assert!(err.contains("ck.safetensors: tensor 'backbone.conv1.weight' is missing"), "{err}");
        // Mis-shaped: a checkpoint of another head width.
        let other = Network::new(
            &dev,
            &{
                let mut bp = blueprint(Arch::Resnet10);
                bp.head = Some(deconv_head(512, 8, 2, 17, false));
                bp
            },
            1,
        );
        let bytes = to_bytes(&other.params(), BTreeMap::new()).unwrap();
        let err = load_into(fresh.params_mut(), &bytes, "ck.safetensors").unwrap_err().to_string();
        assert!(
            err.contains("tensor 'head.deconv_layers.0.weight' has shape [512, 8, 4, 4], expected [512, 16, 4, 4]"),
            "{err}"
        );
        // Foreign: a dynamic model's checkpoint has tensors a static one lacks.
        let dy = Network::new(&dev, &blueprint(Arch::DyResnet10), 1);
        let bytes = to_bytes(&dy.params(), BTreeMap::new()).unwrap();
        let err = load_into(fresh.params_mut(), &bytes, "ck.safetensors").unwrap_err().to_string();
        assert!(err.contains("has shape") || err.contains("do not belong"), "{err}");
        let err = load_into(fresh.params_mut(), b"not safetensors", "x.bin").unwrap_err().to_string();
        assert!(err.contains("x.bin: not a safetensors file"), "{err}");
    }
}
