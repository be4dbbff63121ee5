//! The small value types every layer shares: a size, and the enums for choices that used to be
//! strings (decoding, head, architecture, device, image format). Each enum reads the same names
//! from a config file (serde) and from the command line (clap), so the two cannot drift apart.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A width and a height, in pixels or heatmap cells. Written `[w, h]` in configs, as the
/// reference recipes write `image_size`; the command line's `HxW` is parsed by [`Size::parse_hxw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Size {
    pub width: usize,
    pub height: usize,
}

impl Size {
    pub const fn new(width: usize, height: usize) -> Self {
        Size { width, height }
    }

    /// Cells in the area: width × height.
    pub const fn area(self) -> usize {
        self.width * self.height
    }

    /// `"256x192"` → height 256, width 192: the pose papers' H×W notation.
    pub fn parse_hxw(s: &str) -> Result<Size, String> {
        let parse = |v: &str| v.trim().parse::<usize>().ok();
        match s.split_once(['x', 'X', '×']).map(|(h, w)| (parse(h), parse(w))) {
            Some((Some(h), Some(w))) => Ok(Size::new(w, h)),
            _ => Err(format!("{s}: expected HxW, e.g. 256x192")),
        }
    }
}

/// Height × width, as the papers write input sizes.
impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}×{}", self.height, self.width)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.width, self.height].serialize(s)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        let [width, height] = <[usize; 2]>::deserialize(d)?;
        Ok(Size { width, height })
    }
}

/// What COCO evaluation compares a detection with a ground truth by: pycocotools' `iouType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IouType {
    /// Object keypoint similarity; a GT without labelled joints is ignored.
    Keypoints,
    /// Box intersection over union (over the detection's own area for a crowd GT).
    Bbox,
}

/// Which summary `dypose eval` prints for keypoint results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KeypointMetric {
    /// COCO's ten numbers (pycocotools; xtcocotools' `use_area=False` for files without `area`).
    Coco,
    /// CrowdPose's nine: AP, AP50, AP75, AR, AR50, AR75 without area ranges and the AP of the
    /// easy / medium / hard images by `crowdIndex` (xtcocotools' `keypoints_crowd`).
    Crowdpose,
}

/// How joints are read off a heatmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Decoding {
    /// Argmax, then a quarter pixel towards the higher neighbour (SimpleBaseline).
    Quarter,
    /// Distribution-aware refinement (DARK, Zhang et al. 2020).
    Dark,
}

impl fmt::Display for Decoding {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Decoding::Quarter => "quarter",
            Decoding::Dark => "dark",
        })
    }
}

/// What a network is trained for: keypoints of boxed persons (top-down pose), the person
/// boxes themselves (a CenterNet-style detector), or the class of an image (a classifier, as
/// backbone pretraining).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    #[default]
    Pose,
    Detect,
    Classify,
}

impl Task {
    pub fn is_pose(&self) -> bool {
        *self == Task::Pose
    }
}

/// How the learning rate decays after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// Multiplied by `train.lr_factor` at the start of each epoch of `train.lr_steps`.
    Step,
    /// Half a cosine from the rate after the warm-up to 0 at the end of the last epoch.
    Cosine,
}

/// The optimiser of a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// PyTorch's Adam (β 0.9, 0.999, ε 1e-8; weight decay added to the gradient).
    Adam,
    /// PyTorch's SGD with `train.momentum` (Nesterov with `train.nesterov`).
    Sgd,
}

/// The keypoint head on top of a backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// SimpleBaseline's transposed convolutions.
    Deconv,
    /// Bilinear ×2 + depthwise-separable convolutions (for MobileNets).
    Light,
}

/// A backbone: ResNet-10/18, MobileNetV2 or MobileNetV3-Small, static or with dynamic
/// convolutions (`dy-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Arch {
    #[serde(rename = "resnet10")]
    #[value(name = "resnet10")]
    Resnet10,
    #[serde(rename = "resnet18")]
    #[value(name = "resnet18")]
    Resnet18,
    #[serde(rename = "dy-resnet10")]
    #[value(name = "dy-resnet10")]
    DyResnet10,
    #[serde(rename = "dy-resnet18")]
    #[value(name = "dy-resnet18")]
    DyResnet18,
    #[serde(rename = "mobilenetv2")]
    #[value(name = "mobilenetv2")]
    Mobilenetv2,
    #[serde(rename = "dy-mobilenetv2")]
    #[value(name = "dy-mobilenetv2")]
    DyMobilenetv2,
    #[serde(rename = "mobilenetv3-small")]
    #[value(name = "mobilenetv3-small")]
    Mobilenetv3Small,
    #[serde(rename = "dy-mobilenetv3-small")]
    #[value(name = "dy-mobilenetv3-small")]
    DyMobilenetv3Small,
}

impl Arch {
    /// Whether the backbone's convolutions (but the stem) are dynamic.
    pub fn is_dynamic(self) -> bool {
        matches!(self, Arch::DyResnet10 | Arch::DyResnet18 | Arch::DyMobilenetv2 | Arch::DyMobilenetv3Small)
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet10 => "resnet10",
            Arch::Resnet18 => "resnet18",
            Arch::DyResnet10 => "dy-resnet10",
            Arch::DyResnet18 => "dy-resnet18",
            Arch::Mobilenetv2 => "mobilenetv2",
            Arch::DyMobilenetv2 => "dy-mobilenetv2",
            Arch::Mobilenetv3Small => "mobilenetv3-small",
            Arch::DyMobilenetv3Small => "dy-mobilenetv3-small",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the network runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    /// An NVIDIA GPU (a build with `--features cuda`).
    Cuda,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

/// The file format of a drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    #[value(alias = "jpeg")]
    #[serde(alias = "jpeg")]
    Jpg,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpg => "jpg",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_w_h_in_configs_and_h_x_w_on_the_command_line() {
        let s: Size = serde_json::from_str("[192, 256]").unwrap();
        assert_eq!((s.width, s.height), (192, 256));
        assert_eq!(serde_json::to_string(&s).unwrap(), "[192,256]");
        assert_eq!(Size::parse_hxw("256x192"), Ok(s));
        assert_eq!(s.to_string(), "256×192");
        assert!(Size::parse_hxw("256").is_err() && Size::parse_hxw("ax3").is_err());
    }

    #[test]
    fn enums_use_the_same_names_in_files_and_on_the_command_line() {
        use clap::ValueEnum;
        for a in Arch::value_variants() {
            let json = serde_json::to_string(a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.to_possible_value().unwrap().get_name()));
            assert_eq!(json, format!("\"{a}\""));
        }
        assert_eq!(serde_json::from_str::<ImageFormat>("\"jpeg\"").unwrap(), ImageFormat::Jpg);
        assert_eq!(serde_json::from_str::<Decoding>("\"dark\"").unwrap(), Decoding::Dark);
        let e = serde_json::from_str::<HeadKind>("\"fpn\"").unwrap_err().to_string();
        assert!(e.contains("unknown variant `fpn`"), "{e}");
    }
}
