//! Every command-line argument lives here; each subcommand calls one library function.

use crate::coco::KeypointSpec;
use crate::{bench, eval, fsutil};
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Instant;

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
    /// Generate a synthetic COCO-format person-keypoint data set (stick figures).
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
    /// Draw skeletons (GT or results) on images.
    Draw(DrawArgs),
    /// Train a pose model from a config (progress, metrics.csv, curves.png, checkpoints).
    Train(TrainArgs),
    /// Generate the synthetic set, train the quickstart model on the CPU, evaluate and draw.
    Quickstart(QuickstartArgs),
    /// One person crop: predicted heatmaps and skeleton beside the dynamic-conv attention.
    Explain(ExplainArgs),
    /// Measurements printed as a table (last line JSON).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Experiment config (JSON).
    #[arg(long)]
    pub config: PathBuf,
    /// Run directory (default: runs/<config name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last.safetensors.
    #[arg(long)]
    pub resume: bool,
    /// A COCO download (annotations/, train2017/, val2017/): replaces the config's data paths.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// cpu, or cuda (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Config overrides, e.g. --set train.epochs=20 (the value is read as JSON, else a string).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Stop after this many steps, writing a checkpoint as Ctrl-C does (for tests and timing).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Image files.
    #[arg(long, num_args = 1.., required_unless_present = "image_dir", conflicts_with = "image_dir")]
    pub images: Vec<PathBuf>,
    /// A folder of images (every file in it).
    #[arg(long)]
    pub image_dir: Option<PathBuf>,
    /// GT annotations: their person boxes (and image ids by file name).
    #[arg(long, conflicts_with = "boxes")]
    pub ann: Option<PathBuf>,
    /// Detector boxes (COCO detection results); without --ann, image ids come from COCO-style file names.
    #[arg(long)]
    pub boxes: Option<PathBuf>,
    #[arg(long, default_value = "runs/predict")]
    pub out: PathBuf,
    /// No flip test.
    #[arg(long)]
    pub no_flip: bool,
    /// quarter or dark.
    #[arg(long)]
    pub decode: Option<String>,
    /// Skip the drawings.
    #[arg(long)]
    pub no_draw: bool,
    /// Replace an existing results.json in --out.
    #[arg(long)]
    pub force: bool,
    /// cpu, or cuda (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
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
    /// Hide results below this score (and joints below it).
    #[arg(long, default_value_t = 0.3)]
    pub min_score: f64,
    /// Output format: png or jpg (default: that of each input).
    #[arg(long)]
    pub format: Option<String>,
    /// Replace existing drawings.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long)]
    pub image: PathBuf,
    /// The person box x,y,w,h in image pixels (default: the whole image).
    #[arg(long = "box", value_name = "X,Y,W,H")]
    pub bbox: Option<String>,
    /// The picture to write (PNG or JPEG by extension).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
    /// cpu, or cuda (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args, Debug)]
pub struct QuickstartArgs {
    /// Replace an earlier runs/quickstart.
    #[arg(long)]
    pub force: bool,
    /// Config overrides for configs/quickstart.json.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Ground-truth COCO keypoint annotation file.
    #[arg(long, visible_alias = "ann")]
    pub gt: PathBuf,
    /// Results file: [{image_id, category_id, keypoints, score}].
    #[arg(long, required_unless_present = "checkpoint", conflicts_with = "checkpoint")]
    pub results: Option<PathBuf>,
    /// Evaluate a model instead: predict on --images with GT boxes (or --boxes) first.
    #[arg(long, requires_all = ["config", "images"])]
    pub checkpoint: Option<PathBuf>,
    /// The config the checkpoint was trained with.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Image folder of the GT file's images.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Detector boxes (COCO detection results) instead of GT boxes.
    #[arg(long)]
    pub boxes: Option<PathBuf>,
    /// Also write the 10 stats as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Replace the --json file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Keypoint spec JSON (names, flip_pairs, sigmas, limbs); default: COCO's 17 keypoints.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// With --checkpoint: cpu, or cuda (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// One of resnet10, resnet18, dy-resnet10, dy-resnet18, mobilenetv2, dy-mobilenetv2.
    #[arg(long, required_unless_present = "config", default_value = "")]
    pub arch: String,
    /// Describe the pose model of this config instead (its model section and input size).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Channel width multiplier (MobileNetV2 and ResNet).
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Classifier with this many classes (the ImageNet models of the paper: 1000).
    #[arg(long, conflicts_with = "head")]
    pub classifier: Option<usize>,
    /// Pose head instead of a classifier: deconv (SimpleBaseline) or light (MobileNets).
    #[arg(long)]
    pub head: Option<String>,
    /// Keypoints predicted by the pose head.
    #[arg(long, default_value_t = 17)]
    pub joints: usize,
    /// Input size HxW (default 224x224 for classifiers, 256x192 for pose models).
    #[arg(long)]
    pub input: Option<String>,
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
        /// Use the device-generic ops (the CUDA path) instead of the fast CPU path.
        #[arg(long)]
        generic: bool,
        /// cpu, or cuda (needs a build with --features cuda).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// End-to-end inference speed (crops/s with and without the flip test) of a config's model.
    Predict {
        #[arg(long)]
        config: PathBuf,
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
        /// cpu, or cuda (needs a build with --features cuda).
        #[arg(long, default_value = "cpu")]
        device: String,
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

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Eval(args) => run_eval(args),
        Command::Info(a) => run_info(a),
        Command::Init { arch, seed, out, force } => {
            let (bp, _) = blueprint_from_args(&arch)?;
            let net = crate::model::posenet::PoseNet::new(&dfdx::prelude::Cpu::default(), &bp, seed);
            let meta = std::collections::BTreeMap::from([
                ("arch".to_string(), arch.arch.clone()),
                ("seed".to_string(), seed.to_string()),
            ]);
            crate::model::checkpoint::save(&net, &out, meta, force)?;
            println!("{}: {} tensors, {} trainable parameters", out.display(), net.params().len(), net.num_trainable());
            Ok(())
        }
        Command::Data(DataCommand::Show { config, set, count, out, force }) => {
            let cfg = crate::config::Config::load(&config, &set)?;
            for path in crate::viz::show_training_samples(&cfg, count, &out, force)? {
                println!("{}", path.display());
            }
            Ok(())
        }
        Command::Train(a) => {
            let mut cfg = crate::config::Config::load(&a.config, &a.set)?;
            if let Some(root) = &a.data_root {
                cfg.use_coco_root(root);
            }
            let run_dir = a.out.unwrap_or_else(|| PathBuf::from("runs").join(a.config.file_stem().unwrap_or_default()));
            let opts =
                crate::train::TrainOptions { run_dir: run_dir.clone(), resume: a.resume, stop_after: a.stop_after };
            let out = crate::train::train_on(&a.device, &cfg, &opts)?;
            println!(
                "{} at epoch {}, iteration {}: {:.1} images/s{}; checkpoints in {}",
                if out.interrupted { "stopped" } else { "finished" },
                out.state.epoch,
                out.state.iteration,
                out.images_per_s,
                out.last_val.map(|v| format!(", val AP {:.4}", v.gt.0.ap)).unwrap_or_default(),
                run_dir.display()
            );
            Ok(())
        }
        Command::Predict(a) => run_predict(a),
        Command::Draw(a) => {
            let n = crate::viz::draw::draw_dataset(&crate::viz::draw::DrawRequest {
                ann: &a.ann,
                images: &a.images,
                out: &a.out,
                results: a.results.as_deref(),
                min_score: a.min_score,
                format: a.format.as_deref(),
                force: a.force,
            })?;
            println!("{n} drawings in {}", a.out.display());
            Ok(())
        }
        Command::Explain(a) => run_explain(a),
        Command::Quickstart(a) => {
            let summary = crate::quickstart::run(a.force, &a.set)?;
            println!("{summary}");
            Ok(())
        }
        Command::Synth(a) => {
            let cfg = crate::data::synth::SynthConfig {
                width: a.width,
                height: a.height,
                seed: a.seed,
                ..Default::default()
            };
            println!("{}", crate::data::synth::write_dataset(&a.out, &cfg, a.train, a.val, a.force)?);
            Ok(())
        }
        Command::Bench(BenchCommand::Coco { ann, repeat }) => {
            println!("{}", bench::bench_coco_load(&ann, repeat)?);
            Ok(())
        }
        Command::Bench(BenchCommand::Model { config, set, batch, iters, generic, device }) => {
            let cfg = crate::config::Config::load(&config, &set)?;
            println!("{}", bench::bench_model(&device, &cfg, batch, iters, generic)?);
            Ok(())
        }
        Command::Bench(BenchCommand::Predict { config, set, ann, images, crops, repeats, device }) => {
            let cfg = crate::config::Config::load(&config, &set)?;
            println!("{}", bench::bench_predict(&device, &cfg, &ann, &images, crops, repeats)?);
            Ok(())
        }
        Command::Bench(BenchCommand::Data { ann, images, samples, workers, batch }) => {
            println!("{}", bench::bench_data(&ann, &images, samples, workers, batch)?);
            Ok(())
        }
    }
}

fn run_info(a: InfoArgs) -> Result<()> {
    let (bp, input) = blueprint_from_args(&a)?;
    let text = crate::model::cost::describe(&bp, input);
    if a.json {
        println!("{}", text.lines().last().unwrap_or_default());
    } else {
        println!("{text}");
    }
    Ok(())
}

/// The blueprint and input size an `info`/`init` command line describes.
fn blueprint_from_args(a: &InfoArgs) -> Result<(crate::model::blueprint::Blueprint, [usize; 2])> {
    use crate::model::blueprint::{backbone, Blueprint};
    if let Some(path) = &a.config {
        let cfg = crate::config::Config::load(path, &a.set)?;
        let [w, h] = cfg.input_size;
        return Ok((cfg.model.blueprint()?, [h, w]));
    }
    anyhow::ensure!(a.kernels >= 1, "--kernels must be at least 1");
    let (bp, default_input) = match a.head.as_deref() {
        None => {
            let bb = backbone(&a.arch, a.width, a.dynamic_shortcut)?;
            (
                Blueprint {
                    backbone: bb,
                    head: None,
                    classifier: Some(a.classifier.unwrap_or(1000)),
                    kernels: a.kernels,
                },
                [224, 224],
            )
        }
        Some(head) => {
            // The pose model a config would build (the light head defaults to 128 channels here).
            let model = crate::config::ModelConfig {
                arch: a.arch.clone(),
                width: a.width,
                head: head.to_string(),
                head_channels: if head == "light" { 128 } else { 256 },
                dynamic_shortcut: a.dynamic_shortcut,
                kernels: a.kernels,
                joints: a.joints,
                ..Default::default()
            };
            (model.blueprint()?, [256, 192])
        }
    };
    let input = match &a.input {
        Some(s) => parse_hw(s)?,
        None => default_input,
    };
    Ok((bp, input))
}

/// "256x192" → [256, 192].
fn parse_hw(s: &str) -> Result<[usize; 2]> {
    let parse = |v: &str| v.trim().parse::<usize>().ok().filter(|&n| n >= 32);
    match s.split_once(['x', 'X']).map(|(h, w)| (parse(h), parse(w))) {
        Some((Some(h), Some(w))) => Ok([h, w]),
        _ => anyhow::bail!("--input {s}: expected HxW with both at least 32, e.g. 256x192"),
    }
}

fn run_predict(a: PredictArgs) -> Result<()> {
    use crate::infer::run::{files_in, predict, BoxSource, PredictRequest};
    let mut cfg = crate::config::Config::load(&a.config, &[])?;
    cfg.val.flip_test &= !a.no_flip;
    if let Some(d) = a.decode {
        cfg.val.decoding = d;
    }
    let images = match &a.image_dir {
        Some(d) => files_in(d)?,
        None => a.images.clone(),
    };
    let boxes = match (&a.ann, &a.boxes) {
        (Some(g), None) => BoxSource::Gt(g),
        (g, Some(d)) => BoxSource::Detections { gt: g.as_deref(), path: d },
        (None, None) => BoxSource::WholeImage,
    };
    let req = PredictRequest {
        config: &cfg,
        checkpoint: &a.checkpoint,
        device: &a.device,
        images,
        boxes,
        out: &a.out,
        draw: !a.no_draw,
        force: a.force,
    };
    let start = Instant::now();
    let (out, results) = predict(&req)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} persons in {} images ({} crops, {:.1} crops/s) → {}",
        out.persons.len(),
        req.images.len() - out.failed.len(),
        out.crops,
        out.crops as f64 / secs,
        results.display()
    );
    if !out.failed.is_empty() {
        for (p, e) in &out.failed {
            eprintln!("skipped {}: {e}", p.display());
        }
        anyhow::bail!(
            "{} of {} images could not be read (the others were written)",
            out.failed.len(),
            req.images.len()
        );
    }
    Ok(())
}

fn run_explain(a: ExplainArgs) -> Result<()> {
    let cfg = crate::config::Config::load(&a.config, &[])?;
    let bbox = a.bbox.as_deref().map(crate::infer::explain::parse_box).transpose()?;
    let ex = crate::infer::explain::explain(&a.device, &cfg, &a.checkpoint, &a.image, bbox)?;
    crate::viz::save_image(&ex.picture, &a.out, a.force)?;
    println!("person score {:.3}; {} dynamic layers", ex.person.score, ex.attention.len());
    for (name, pi) in &ex.attention {
        let cells: Vec<String> = pi.iter().map(|v| format!("{v:.3}")).collect();
        println!("  {name:<32} π = [{}]", cells.join(", "));
    }
    println!("→ {}", a.out.display());
    Ok(())
}

fn run_eval(args: EvalArgs) -> Result<()> {
    let start = Instant::now();
    if let Some(ck) = &args.checkpoint {
        let cfg = crate::config::Config::load(args.config.as_deref().expect("clap requires it"), &[])?;
        let images = args.images.as_deref().expect("clap requires it");
        let (stats, crops) =
            crate::infer::run::evaluate_checkpoint(&args.device, &cfg, ck, &args.gt, images, args.boxes.as_deref())?;
        eprintln!("predicted {crops} crops in {:.1}s", start.elapsed().as_secs_f64());
        print!("{stats}");
        if let Some(path) = &args.json {
            fsutil::write_new(path, (serde_json::to_string_pretty(&stats)? + "\n").as_bytes(), args.force)?;
        }
        return Ok(());
    }
    let results = args.results.as_deref().expect("clap requires --results without --checkpoint");
    let spec = match &args.spec {
        Some(p) => KeypointSpec::from_json_file(p)?,
        None => KeypointSpec::coco17(),
    };
    let report = eval::evaluate_files(&args.gt, results, &spec)?;
    eprintln!(
        "evaluated {} results on {} images ({} GT annotations) in {:.2}s",
        report.num_results,
        report.num_images,
        report.num_gt,
        start.elapsed().as_secs_f64()
    );
    if report.results_outside_categories > 0 {
        eprintln!(
            "warning: {} results have a category_id that the GT file does not list; they are not scored (as in pycocotools)",
            report.results_outside_categories
        );
    }
    print!("{}", report.stats);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.stats)? + "\n";
        fsutil::write_new(path, text.as_bytes(), args.force)?;
    }
    Ok(())
}
