//! Every command-line argument lives here, as clap types and nothing else; `main.rs` hands each
//! subcommand to its function in `app`.

use crate::app::shard::ShardSpec;
use crate::config::{Arch, Decoding, Device, HeadKind, ImageFormat, IouType, KeypointMetric, Size};
use crate::export::DynamicForm;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "dypose", version, about = "COCO person keypoints with Dynamic Convolution: train, evaluate, draw")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// COCO keypoint AP/AR of a results file against ground truth (equal to pycocotools).
    Eval(EvalArgs),
    /// Generate a synthetic COCO-format keypoint data set (stick persons, or figures of any keypoint spec), or with --classify an image-classification set.
    Synth(SynthArgs),
    /// Parameter and multiply-add counts of an architecture (classifier or pose model).
    Info(InfoArgs),
    /// Write freshly initialised weights of an architecture as safetensors.
    Init {
        #[command(flatten)]
        arch: InfoArgs,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Look at the data pipeline.
    #[command(subcommand)]
    Data(DataCommand),
    /// Run a trained model on images: results.json (COCO format) and one drawing per image.
    Predict(PredictArgs),
    /// Join the shards of a `predict --shard` run into one results.json (the file one predict over all the images writes).
    Merge(MergeArgs),
    /// Find persons with a detector checkpoint: detections.json (COCO detection results) and one drawing per image.
    Detect(DetectArgs),
    /// Draw skeletons (GT or results) on images.
    Draw(DrawArgs),
    /// Train a pose model, a person detector or a classifier from a config (progress, metrics.csv, curves.png, checkpoints).
    Train(TrainArgs),
    /// Pretrain a classifier (any backbone) on image folders (train/<class>/*, val/<class>/*): `train` with model.task set to classify.
    Pretrain(PretrainArgs),
    /// Generate the synthetic set, train the quickstart model on the CPU, evaluate and draw.
    Quickstart(QuickstartArgs),
    /// One person crop: predicted heatmaps and skeleton beside the dynamic-conv attention.
    Explain(ExplainArgs),
    /// The top classes of images under a classifier checkpoint (imported or pretrained).
    Classify(ClassifyArgs),
    /// Write a checkpoint (pose model, detector or classifier) as one ONNX file, optionally with the decoding inside.
    Export(ExportArgs),
    /// Convert torchvision weights (a state dict saved as safetensors by
    /// tools/import_torchvision.py) into a dypose classifier checkpoint.
    ImportTorchvision(ImportTorchvisionArgs),
    /// Measurements printed as a table (last line JSON).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Args, Debug)]
pub struct PretrainArgs {
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// A classifier checkpoint (its metadata names the network, input size and classes).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Images; one whose size equals the network's input is used as is, others are resized
    /// (shorter side to input/0.875) and centre-cropped.
    #[arg(long, num_args = 1.., required = true)]
    pub images: Vec<PathBuf>,
    /// Also write every image's top classes and logits as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Replace the --json file if it exists.
    #[arg(long)]
    pub force: bool,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A pose, detector or classifier checkpoint.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A config to use instead of the one the checkpoint holds.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The ONNX file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// How dynamic convolutions are written: `grouped` (fixed batch; the fastest in
    /// onnxruntime on the CPU), `experts` (dynamic batch, constant conv weights), `matmul`
    /// (dynamic batch; 1×1 convs as a batched MatMul, others as `experts`).
    #[arg(long, value_enum, default_value_t = DynamicForm::Grouped)]
    pub form: DynamicForm,
    /// A fixed batch size (default: 1 for the `grouped` form, dynamic for the others).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Add the post-processing to the graph: joints in input pixels and their scores, boxes
    /// and scores, or class probabilities.
    #[arg(long)]
    pub decode: bool,
    /// Add the flip test to the graph (pose models; detectors with --decode).
    #[arg(long)]
    pub flip: bool,
    /// Also write seeded inputs and dypose's own outputs for them into this folder as .npy
    /// files (input_b8.npy, heatmaps_b8.npy, …), to check a runtime against dypose.
    #[arg(long, value_name = "DIR")]
    pub reference: Option<PathBuf>,
    /// The batch sizes of the --reference sets.
    #[arg(long, value_delimiter = ',', default_value = "1", requires = "reference")]
    pub reference_batches: Vec<usize>,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ImportTorchvisionArgs {
    /// The torchvision architecture: resnet18, mobilenetv2 or mobilenetv3-small (static).
    #[arg(long, value_enum)]
    pub arch: Arch,
    /// Its width multiplier.
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// torchvision's state dict as safetensors.
    #[arg(long)]
    pub weights: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    /// The input size HxW the checkpoint records.
    #[arg(long, value_parser = parse_input, default_value = "224x224")]
    pub input: Size,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
}

/// What `train` and `pretrain` share: the config, the run directory, resuming, the device.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Experiment config (JSON; see configs/).
    #[arg(long)]
    pub config: PathBuf,
    /// Run directory (default: runs/<config name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last.safetensors.
    #[arg(long)]
    pub resume: bool,
    /// Where the network runs (cuda needs a build with --features cuda).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Config overrides, e.g. --set train.epochs=20 (the value is read as JSON, else a string).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Stop after this many steps, writing a checkpoint as Ctrl-C does (for tests and timing).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// A COCO download (annotations/, train2017/, val2017/): replaces the config's data paths.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A checkpoint of `dypose train` (it holds its config and keypoint set) or `dypose init --config`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Use this config instead of the one stored in the checkpoint.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub input: ImageInput,
    /// GT annotations: their person boxes, or with --boxes only the image ids (by file name).
    #[arg(long)]
    pub ann: Option<PathBuf>,
    /// Detector boxes (COCO detection results); without --ann, image ids come from COCO-style file names.
    #[arg(long, conflicts_with = "detector")]
    pub boxes: Option<PathBuf>,
    /// Find the persons with this person-detector checkpoint (`dypose train` of a
    /// `model.task: "detect"` config): its confident boxes after NMS (detect.person_score,
    /// detect.nms_iou) go to the pose model. With --ann, only the image ids come from it.
    #[arg(long)]
    pub detector: Option<PathBuf>,
    #[arg(long, default_value = "runs/predict")]
    pub out: PathBuf,
    /// No flip test.
    #[arg(long)]
    pub no_flip: bool,
    /// How joints are read off the heatmaps (default: the config's val.decoding).
    #[arg(long, value_enum)]
    pub decode: Option<Decoding>,
    /// Skip the drawings.
    #[arg(long)]
    pub no_draw: bool,
    /// Replace an existing results.json in --out.
    #[arg(long)]
    pub force: bool,
    /// Where the network runs (cuda needs a build with --features cuda).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Run shard K of N (K from 0) of the images: a contiguous part of the list, its results in
    /// --out/shards/shard-K-of-N/, written in chunks so that the same command run again
    /// continues where it stopped; `dypose merge` joins the shards. `auto` reads a Slurm job
    /// array (SLURM_ARRAY_TASK_ID, _MIN, _STEP, _COUNT); `auto/N` also a Kubernetes Indexed
    /// Job (JOB_COMPLETION_INDEX of N completions).
    #[arg(long, value_name = "K/N|auto|auto/N")]
    pub shard: Option<ShardSpec>,
    /// With --shard (or under mpirun): images per results chunk (a restarted shard redoes at most
    /// one chunk).
    #[arg(long, default_value_t = 256)]
    pub chunk: usize,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Predict --out folders of a sharded run (their shards/ are read), or shard folders
    /// (shards/shard-K-of-N); every shard of the run must be there once, and finished.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The results file to write (default: results.json in the one --out folder given).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
}

/// The images `predict` and `detect` read: files, or a folder.
#[derive(Args, Debug)]
pub struct ImageInput {
    /// Image files.
    #[arg(long, num_args = 1.., required_unless_present = "image_dir", conflicts_with = "image_dir")]
    pub images: Vec<PathBuf>,
    /// A folder of images: its jpg, jpeg, png, bmp and webp files (other files are skipped and counted).
    #[arg(long)]
    pub image_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// A person-detector checkpoint (`dypose train` of a `model.task: "detect"` config).
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[command(flatten)]
    pub input: ImageInput,
    /// GT annotations whose image ids the results take (by file name); otherwise COCO-style
    /// file names give the ids.
    #[arg(long)]
    pub ann: Option<PathBuf>,
    #[arg(long, default_value = "runs/detect")]
    pub out: PathBuf,
    /// Skip the drawings.
    #[arg(long)]
    pub no_draw: bool,
    /// Replace an existing detections.json and drawings in --out.
    #[arg(long)]
    pub force: bool,
    /// Where the network runs (cuda needs a build with --features cuda).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
}

#[derive(Args, Debug)]
pub struct DrawArgs {
    /// GT annotations (image list, and the skeletons drawn when no --results).
    #[arg(long)]
    pub ann: PathBuf,
    #[arg(long)]
    pub images: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    /// Draw these COCO keypoint results instead of the GT.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Keypoint spec JSON (names, flip_pairs, limbs); default: the GT file's own set (its
    /// category's names and skeleton when they fit its keypoint arrays).
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// The GT annotations' array that holds the joints (Human-Art: keypoints_21).
    #[arg(long, value_name = "FIELD", default_value = "keypoints")]
    pub keypoint_field: String,
    /// Hide results below this score (and joints below it).
    #[arg(long, default_value_t = 0.3)]
    pub min_score: f64,
    /// Output format (default: that of each input).
    #[arg(long, value_enum)]
    pub format: Option<ImageFormat>,
    /// Replace existing drawings.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Use this config instead of the one stored in the checkpoint.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub image: PathBuf,
    /// The person box x,y,w,h in image pixels (default: the whole image).
    #[arg(long = "box", value_name = "X,Y,W,H", value_parser = parse_box)]
    pub bbox: Option<[f64; 4]>,
    /// The picture to write (PNG or JPEG by extension).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
    /// Where the network runs (cuda needs a build with --features cuda).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
}

#[derive(Args, Debug)]
pub struct QuickstartArgs {
    /// Replace an earlier runs/quickstart.
    #[arg(long)]
    pub force: bool,
    /// Config overrides for configs/quickstart.json (with --detector: for configs/detect_quickstart.json).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Train the person detector instead (configs/detect_quickstart.json into runs/detect_quickstart),
    /// then score the pose quickstart's model on its boxes, next to GT and the provided boxes.
    #[arg(long)]
    pub detector: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Ground-truth COCO keypoint annotation file.
    #[arg(long, visible_alias = "ann")]
    pub gt: PathBuf,
    /// What results are compared by: keypoints (OKS, 10 stats) or bbox (box IoU, 12 stats, as
    /// pycocotools' iouType). A checkpoint's own task decides with --checkpoint.
    #[arg(long, value_enum, default_value_t = IouType::Keypoints, conflicts_with = "checkpoint")]
    pub iou_type: IouType,
    /// Results file: [{image_id, category_id, keypoints, score}] (or bbox instead of keypoints).
    #[arg(long, required_unless_present = "checkpoint", conflicts_with = "checkpoint")]
    pub results: Option<PathBuf>,
    /// Evaluate a model instead: predict on --images with GT boxes (or --boxes) first.
    #[arg(long, requires = "images")]
    pub checkpoint: Option<PathBuf>,
    /// With --checkpoint: use this config instead of the one stored in the checkpoint.
    #[arg(long, requires = "checkpoint")]
    pub config: Option<PathBuf>,
    /// Image folder of the GT file's images.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Detector boxes (COCO detection results) instead of GT boxes.
    #[arg(long, conflicts_with = "detector")]
    pub boxes: Option<PathBuf>,
    /// With a pose --checkpoint: the persons a person-detector checkpoint finds, instead of GT boxes.
    #[arg(long, requires = "checkpoint")]
    pub detector: Option<PathBuf>,
    /// Also write the 10 stats as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Replace the --json file (and the --analyze files) if they exist.
    #[arg(long)]
    pub force: bool,
    /// Also analyse the results into this folder: per-keypoint accuracy and error types
    /// (jitter, inversion, swap, miss), the AP after fixing each error, PR curves
    /// (analysis.json, summary.txt and three PNG charts).
    #[arg(long, value_name = "OUT_DIR", conflicts_with = "checkpoint")]
    pub analyze: Option<PathBuf>,
    /// Keypoint spec JSON (names, flip_pairs, sigmas, limbs); default: the GT file's own set
    /// (joints counted from its keypoint arrays; sigmas of the shipped spec its names are, or
    /// COCO's for 17 joints). With --checkpoint the checkpoint's own keypoint set is used.
    #[arg(long, conflicts_with = "checkpoint")]
    pub spec: Option<PathBuf>,
    /// The GT annotations' array that holds the joints, when a data set keeps another set beside
    /// `keypoints` (Human-Art: keypoints_21). With --checkpoint the checkpoint's data.keypoint_field.
    #[arg(long, value_name = "FIELD", default_value = "keypoints", conflicts_with = "checkpoint")]
    pub keypoint_field: String,
    /// The summary of keypoint results: COCO's ten numbers, or CrowdPose's nine (AP, AR without
    /// area ranges, and the AP of easy / medium / hard images by crowdIndex, as xtcocotools).
    #[arg(long, value_enum, default_value_t = KeypointMetric::Coco, conflicts_with = "checkpoint")]
    pub metric: KeypointMetric,
    /// With --checkpoint: where the network runs (cuda needs a build with --features cuda).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The backbone.
    #[arg(long, value_enum, required_unless_present = "config", conflicts_with = "config")]
    pub arch: Option<Arch>,
    /// Describe the pose model of this config instead (its model section and input size).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Channel width multiplier (MobileNets and ResNet).
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Classifier with this many classes (the ImageNet models of the paper: 1000).
    #[arg(long, conflicts_with = "head")]
    pub classifier: Option<usize>,
    /// MobileNetV3's hidden classifier layer at this width instead of torchvision's (1024 for
    /// Small); the DY-Conv paper's sizes take 1280.
    #[arg(long, conflicts_with = "head")]
    pub classifier_hidden: Option<usize>,
    /// Pose head instead of a classifier: deconv (SimpleBaseline) or light (MobileNets).
    #[arg(long, value_enum)]
    pub head: Option<HeadKind>,
    /// Keypoints predicted by the pose head.
    #[arg(long, default_value_t = 17)]
    pub joints: usize,
    /// Input size HxW (default 224x224 for classifiers, 256x192 for pose models).
    #[arg(long, value_parser = parse_input)]
    pub input: Option<Size>,
    /// Make the 1×1 shortcut convs of DY-ResNets dynamic too.
    #[arg(long)]
    pub dynamic_shortcut: bool,
    /// Kernels per dynamic conv.
    #[arg(long, default_value_t = 4)]
    pub kernels: usize,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
    /// Override config keys (with --config), as for train.
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "config")]
    pub set: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Draw augmented training crops with their target keypoints and heatmaps.
    Show {
        #[arg(long)]
        config: PathBuf,
        /// Config overrides, e.g. --set augment.flip_prob=1
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long, default_value_t = 8)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
        /// Replace existing drawings in --out.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Output directory (annotations/, train/, val/).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 2000)]
    pub train: usize,
    #[arg(long, default_value_t = 300)]
    pub val: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Image width and height.
    #[arg(long, default_value_t = 384)]
    pub width: u32,
    #[arg(long, default_value_t = 288)]
    pub height: u32,
    /// Articulated figures of this keypoint spec (e.g. configs/keypoints/crowdpose14.json)
    /// instead of COCO's stick persons.
    #[arg(long, value_name = "SPEC", conflicts_with = "classify")]
    pub keypoints: Option<PathBuf>,
    /// An image-classification set instead (ten classes of shapes and textures, for
    /// `pretrain`): train/<class>/*.png and val/<class>/*.png, --train and --val images in all.
    #[arg(long)]
    pub classify: bool,
    /// With --classify: the images' side in pixels.
    #[arg(long, default_value_t = 64, requires = "classify")]
    pub image_size: u32,
    /// Replace a data set already in --out.
    #[arg(long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Time loading a COCO annotation file (read, parse, validate, index).
    Coco {
        #[arg(long)]
        ann: PathBuf,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Inference and training speed of a config's model on the CPU.
    Model {
        #[arg(long)]
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long, default_value_t = 8)]
        batch: usize,
        #[arg(long, default_value_t = 3)]
        iters: usize,
        /// Use dfdx's device-generic ops instead of the fast path (the CPU's, or with a cudnn build CUDA's).
        #[arg(long)]
        generic: bool,
        /// Time inference only.
        #[arg(long)]
        inference_only: bool,
        /// Also print where the time goes: each kind of op of the fast CPU path (forward and
        /// backward: time, share, GFLOP/s) and the rest.
        #[arg(long)]
        profile: bool,
        /// Where the network runs (cuda needs a build with --features cuda).
        #[arg(long, value_enum, default_value_t = Device::Cpu)]
        device: Device,
    },
    /// End-to-end inference speed (crops/s with and without the flip test) of a config's model
    /// (fresh weights) or of a checkpoint.
    Predict {
        #[arg(long, required_unless_present = "checkpoint", conflicts_with = "checkpoint")]
        config: Option<PathBuf>,
        /// A trained checkpoint (its config and keypoint set) instead of --config.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Person boxes: the GT of this annotation file.
        #[arg(long, default_value = "data/coco-sample/annotations/person_keypoints_sample.json")]
        ann: PathBuf,
        #[arg(long, default_value = "data/coco-sample/val2017")]
        images: PathBuf,
        /// Crops per pass (the GT boxes repeated).
        #[arg(long, default_value_t = 128)]
        crops: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Where the network runs (cuda needs a build with --features cuda).
        #[arg(long, value_enum, default_value_t = Device::Cpu)]
        device: Device,
        /// Time the CPU side alone (decode, crop, flip, heatmap decoding, NMS): fixed heatmaps
        /// stand in for the network, as a GPU host's CPUs would see it.
        #[arg(long)]
        no_network: bool,
        /// With --no-network: milliseconds each network call waits without using the CPUs, as a
        /// GPU's time would (the CPU work of the next chunk overlaps it).
        #[arg(long, default_value_t = 0.0, requires = "no_network")]
        device_ms: f64,
    },
    /// Time `eval` against `eval --analyze` on one GT and results file, alternating, in one
    /// process (files read each time; nothing written).
    Eval {
        #[arg(long)]
        gt: PathBuf,
        #[arg(long)]
        results: PathBuf,
        /// Keypoint spec JSON; default: the GT file's own keypoint set.
        #[arg(long)]
        spec: Option<PathBuf>,
        #[arg(long, default_value_t = 5)]
        repeats: usize,
    },
    /// Time pretraining's data path (random-resized crops of an image folder's images).
    Folder {
        /// An image folder (<dir>/<class>/<image>).
        #[arg(long)]
        dir: PathBuf,
        /// Crop size HxW.
        #[arg(long, value_parser = parse_input, default_value = "224x224")]
        input: Size,
        #[arg(long, default_value_t = 512)]
        samples: usize,
        #[arg(long, default_value_t = 32)]
        batch: usize,
    },
    /// Time the data path from JPEG on disk to collated training batches.
    Data {
        /// COCO person-keypoint annotation file.
        #[arg(long)]
        ann: PathBuf,
        /// Directory of the annotation file's images.
        #[arg(long)]
        images: PathBuf,
        #[arg(long, default_value_t = 512)]
        samples: usize,
        /// Worker threads (0: all cores).
        #[arg(long, default_value_t = 0)]
        workers: usize,
        #[arg(long, default_value_t = 32)]
        batch: usize,
    },
}

/// `--input 256x192`: height × width, both at least 32.
fn parse_input(s: &str) -> Result<Size, String> {
    match Size::parse_hxw(s) {
        Ok(size) if size.width >= 32 && size.height >= 32 => Ok(size),
        _ => Err(format!("expected HxW with both at least 32, e.g. 256x192, not {s}")),
    }
}

/// `--box x,y,w,h`.
fn parse_box(s: &str) -> Result<[f64; 4], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("expected x,y,w,h numbers, not {s}"))?;
    <[f64; 4]>::try_from(v).map_err(|_| format!("expected four numbers x,y,w,h, not {s}"))
}
