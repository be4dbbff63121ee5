use anyhow::Result;
use clap::Parser;
use dypose::app;
use dypose::cli::{
    BenchCommand, ClassifyArgs, Cli, Command, DataCommand, DetectArgs, DrawArgs, EvalArgs, ExplainArgs, ExportArgs,
    ImageInput, ImportTorchvisionArgs, InfoArgs, PredictArgs, RunArgs, SynthArgs,
};
use dypose::config::{Config, IouType, KeypointMetric, Task};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc keeps freed memory for reuse: the network allocates and frees buffers of tens of
/// megabytes per layer, and glibc's malloc returned them to the OS each time, so every pass paid
/// page faults and zeroing (measured: about 27% of `dypose bench model` time was spent in the kernel; with mimalloc inference went from 6.2 to 8.7 img/s and training from 1.06 to 2.07).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: entry 15 of `mi_option_e` in the mimalloc.h (v3, the
/// default build) that libmimalloc-sys 0.1.49 bundles (pinned in Cargo.toml), whose Rust
/// constants skip it. A test below checks the number against the linked library's defaults.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Never hand freed pages back to the OS (mimalloc v3 purges them after 1 s by default): each
    // layer frees buffers the next one allocates again, and fresh pages cost faults and kernel
    // zeroing. Measured side by side: inference +8%, training +18%, peak memory +20–30%.
    // MIMALLOC_PURGE_DELAY in the environment still decides when set.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option; called before any other thread exists.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    // Rust ignores SIGPIPE, turning a closed pipe into a panic at the next print.
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Under mpirun or srun: join the job (a no-op for a plain start).
    // Kept to the end of main: dropping it finalises MPI.
    let _session = match dypose::dist::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let world = dypose::dist::world();
    let outcome = match std::panic::catch_unwind(|| run(Cli::parse())) {
        Ok(outcome) => outcome,
        // The panic was printed; the other ranks may be waiting in a collective: end them too.
        Err(_) if world.size > 1 => dypose::dist::abort(101),
        Err(panic) => std::panic::resume_unwind(panic),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if world.size > 1 => {
            // The other ranks may be waiting in a collective: end them too.
            eprintln!("error (rank {} of {}): {e:#}", world.rank, world.size);
            dypose::dist::abort(1)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The architecture an `info`/`init` command line names.
fn arch_source(a: InfoArgs) -> app::info::ArchSource {
    match (a.config, a.arch) {
        (Some(path), _) => app::info::ArchSource::Config { path, overrides: a.set },
        (None, arch) => app::info::ArchSource::Named(app::info::NamedArch {
            arch: arch.expect("clap requires --arch without --config"),
            width: a.width,
            classifier: a.classifier,
            head: a.head,
            joints: a.joints,
            input: a.input,
            dynamic_shortcut: a.dynamic_shortcut,
            kernels: a.kernels,
            classifier_hidden: a.classifier_hidden,
        }),
    }
}

/// The images of `--images` or `--image-dir`.
fn images(input: ImageInput) -> app::images::Images {
    match input.image_dir {
        Some(d) => app::images::Images::Folder(d),
        None => app::images::Images::Files(input.images),
    }
}

/// Hands each subcommand to its function in `app` and prints what it reports (rank 0 alone, in
/// a job of several ranks).
fn run(cli: Cli) -> Result<()> {
    let world = dypose::dist::world();
    if world.size > 1 {
        refuse_outside_mpi(&cli.command)?;
    }
    let report = match cli.command {
        Command::Eval(a) => eval(a)?,
        Command::Classify(a) => app::classify::classify(&classify_request(a))?,
        Command::Export(a) => app::export::export(&export_request(a))?,
        Command::ImportTorchvision(a) => app::classify::import_torchvision(&import_request(a))?,
        Command::Info(a) => {
            let json = a.json;
            app::info::info(&arch_source(a), json)?
        }
        Command::Init { arch, seed, out, force } => app::info::init(&arch_source(arch), seed, &out, force)?,
        Command::Data(DataCommand::Show { config, set, count, out, force }) => {
            let cfg = Config::load(&config, &set)?;
            let written = app::data::show_training_samples(&cfg, count, &out, force)?;
            written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n")
        }
        Command::Train(a) => app::train::train(&train_request(a.run, a.data_root, None))?,
        Command::Pretrain(a) => app::train::train(&train_request(a.run, None, Some(Task::Classify)))?,
        Command::Predict(a) => match (a.shard, a.chunk) {
            (Some(spec), chunk_images) => {
                let sharding = app::predict::Sharding { spec, chunk_images };
                app::predict::predict_shard(&predict_request(a), &sharding)?.to_string()
            }
            (None, chunk) if world.size > 1 => app::predict::predict_across_ranks(&predict_request(a), chunk)?,
            (None, _) => app::predict::predict(&predict_request(a))?.to_string(),
        },
        Command::Merge(a) => {
            app::merge::merge(&app::merge::MergeRequest { inputs: a.inputs, out: a.out, force: a.force })?.to_string()
        }
        Command::Detect(a) => app::detect::detect(&detect_request(a))?.to_string(),
        Command::Draw(a) => {
            let out = a.out.clone();
            let n = app::draw::draw(&draw_request(a))?;
            format!("{n} drawings in {}", out.display())
        }
        Command::Explain(a) => app::explain::explain(&explain_request(a))?,
        Command::Quickstart(a) if a.detector => app::quickstart::run_detector(a.force, &a.set)?,
        Command::Quickstart(a) => app::quickstart::run(a.force, &a.set)?,
        Command::Synth(a) if a.classify => {
            app::synth_classify::synth_classify(&a.out, a.train, a.val, a.image_size, a.seed, a.force)?
        }
        Command::Synth(a) => app::data::synth(&synth_request(a))?,
        Command::Bench(b) => bench(b)?,
    };
    if world.is_root() {
        println!("{report}");
    }
    Ok(())
}

/// The commands that work as one job of several ranks (the others would do the same work, and
/// write the same files, in every rank).
fn refuse_outside_mpi(command: &Command) -> Result<()> {
    match command {
        Command::Predict(a) if a.shard.is_some() => anyhow::bail!(
            "--shard runs one shard in one process; under mpirun or srun, predict gives each rank its own shard without it"
        ),
        Command::Train(_) | Command::Pretrain(_) | Command::Predict(_) => Ok(()),
        Command::Eval(a) if a.checkpoint.is_some() => Ok(()),
        _ => anyhow::bail!(
            "this command runs in one process: under mpirun or srun, dypose runs train, pretrain, predict and eval --checkpoint"
        ),
    }
}

/// `eval`: a checkpoint run on the GT's images, box results, or keypoint results (optionally
/// analysed).
fn eval(a: EvalArgs) -> Result<String> {
    let out = app::eval::StatsFile { path: a.json.as_deref(), force: a.force };
    let summary = match (a.checkpoint, a.results) {
        (Some(checkpoint), _) => {
            let images = a.images.expect("clap requires --images with --checkpoint");
            let req = app::eval::CheckpointEval {
                checkpoint,
                config: a.config,
                gt: a.gt,
                images,
                boxes: a.boxes,
                detector: a.detector,
                device: a.device,
            };
            app::eval::eval_checkpoint(&req, &out)?.to_string()
        }
        (None, Some(results)) if a.iou_type == IouType::Bbox => {
            let keypoint_flags = a.analyze.is_some()
                || a.spec.is_some()
                || a.metric != KeypointMetric::Coco
                || a.keypoint_field != dypose::coco::dataset::KEYPOINTS_FIELD;
            anyhow::ensure!(
                !keypoint_flags,
                "--analyze, --spec, --metric and --keypoint-field are for keypoint results, not --iou-type bbox"
            );
            app::eval::eval_box_results(&a.gt, &results, &out)?.to_string()
        }
        (None, Some(results)) => {
            let scored = app::eval::ResultsEval {
                gt: &a.gt,
                results: &results,
                spec: a.spec.as_deref(),
                keypoint_field: &a.keypoint_field,
                metric: a.metric,
            };
            match a.analyze.as_deref() {
                Some(dir) => {
                    let req = app::analyze::AnalyzeRequest { scored, out: dir, force: a.force };
                    app::analyze::analyze_results(&req, &out)?.0.to_string()
                }
                None => app::eval::eval_results(&scored, &out)?.to_string(),
            }
        }
        (None, None) => unreachable!("clap requires --results without --checkpoint"),
    };
    Ok(summary.trim_end().to_string())
}

fn classify_request(a: ClassifyArgs) -> app::classify::ClassifyRequest {
    app::classify::ClassifyRequest {
        checkpoint: a.checkpoint,
        images: a.images,
        json: a.json,
        force: a.force,
        top: a.top,
        device: a.device,
    }
}

fn export_request(a: ExportArgs) -> app::export::ExportRequest {
    app::export::ExportRequest {
        checkpoint: a.checkpoint,
        config: a.config,
        out: a.out,
        options: dypose::export::ExportOptions { form: a.form, batch: a.batch, decode: a.decode, flip: a.flip },
        reference: a.reference,
        reference_batches: a.reference_batches,
        force: a.force,
    }
}

fn import_request(a: ImportTorchvisionArgs) -> app::classify::ImportRequest {
    app::classify::ImportRequest {
        arch: a.arch,
        width: a.width,
        weights: a.weights,
        out: a.out,
        input: a.input,
        force: a.force,
    }
}

/// `train`, or `pretrain` (`task`: classify), as one request.
fn train_request(a: RunArgs, data_root: Option<PathBuf>, task: Option<Task>) -> app::train::TrainRequest {
    app::train::TrainRequest {
        config: a.config,
        overrides: a.set,
        out: a.out,
        resume: a.resume,
        data_root,
        device: a.device,
        stop_after: a.stop_after,
        task,
    }
}

fn predict_request(a: PredictArgs) -> app::predict::PredictRequest {
    let boxes = match (a.ann, a.boxes, a.detector) {
        (gt, _, Some(checkpoint)) => app::predict::BoxSource::Detector { gt, checkpoint },
        (gt, Some(path), None) => app::predict::BoxSource::Detections { gt, path },
        (Some(g), None, None) => app::predict::BoxSource::Gt(g),
        (None, None, None) => app::predict::BoxSource::WholeImage,
    };
    app::predict::PredictRequest {
        checkpoint: a.checkpoint,
        config: a.config,
        device: a.device,
        images: images(a.input),
        boxes,
        out: a.out,
        flip: !a.no_flip,
        decoding: a.decode,
        draw: !a.no_draw,
        force: a.force,
    }
}

fn detect_request(a: DetectArgs) -> app::detect::DetectRequest {
    app::detect::DetectRequest {
        checkpoint: a.checkpoint,
        device: a.device,
        images: images(a.input),
        ann: a.ann,
        out: a.out,
        draw: !a.no_draw,
        force: a.force,
    }
}

fn draw_request(a: DrawArgs) -> app::draw::DrawRequest {
    app::draw::DrawRequest {
        ann: a.ann,
        images: a.images,
        out: a.out,
        results: a.results,
        spec: a.spec,
        keypoint_field: a.keypoint_field,
        min_score: a.min_score,
        format: a.format,
        force: a.force,
    }
}

fn explain_request(a: ExplainArgs) -> app::explain::ExplainRequest {
    app::explain::ExplainRequest {
        checkpoint: a.checkpoint,
        config: a.config,
        device: a.device,
        image: a.image,
        bbox: a.bbox,
        out: a.out,
        force: a.force,
    }
}

fn synth_request(a: SynthArgs) -> app::data::SynthRequest {
    app::data::SynthRequest {
        out: a.out,
        train: a.train,
        val: a.val,
        seed: a.seed,
        width: a.width,
        height: a.height,
        keypoints: a.keypoints,
        force: a.force,
    }
}

/// The `bench` subcommands.
fn bench(b: BenchCommand) -> Result<String> {
    match b {
        BenchCommand::Coco { ann, repeat } => app::bench::bench_coco_load(&ann, repeat),
        BenchCommand::Folder { dir, input, samples, batch } => app::bench::bench_folder(&dir, input, samples, batch),
        BenchCommand::Eval { gt, results, spec, repeats } => {
            app::bench::bench_eval(&gt, &results, spec.as_deref(), repeats)
        }
        BenchCommand::Model { config, set, batch, iters, generic, inference_only, profile, device } => {
            let cfg = Config::load(&config, &set)?;
            let how = app::bench::ModelBench { batch, iters, generic, inference_only, profile };
            app::bench::bench_model(device, &cfg, &how)
        }
        BenchCommand::Predict {
            config,
            checkpoint,
            set,
            ann,
            images,
            crops,
            repeats,
            device,
            no_network,
            device_ms,
        } => {
            let model = match (checkpoint, config) {
                (Some(ck), _) => app::bench::ModelSource::Checkpoint(ck),
                (None, config) => {
                    let path = config.expect("clap requires --config without --checkpoint");
                    app::bench::ModelSource::Fresh(Box::new(Config::load(&path, &set)?))
                }
            };
            let req = app::bench::PredictBench { model, ann, images, crops, repeats, no_network, device_ms };
            app::bench::bench_predict(device, &req)
        }
        BenchCommand::Data { ann, images, samples, workers, batch } => {
            app::bench::bench_data(&ann, &images, samples, workers, batch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Option 15 is the purge delay of the linked mimalloc: the defaults of options 14, 15 and 16
    /// are those of v3's options table (deprecated eager-commit delay 1, purge delay 1000 ms,
    /// NUMA nodes 0), and 16 is the crate's `use_numa_nodes`. A renumbered enum would show here,
    /// not as a silently changed allocator setting.
    #[test]
    fn option_15_is_mimallocs_purge_delay() {
        if std::env::vars().any(|(k, _)| k.starts_with("MIMALLOC_")) {
            return; // the environment overrides the defaults checked here
        }
        // SAFETY: reads plain integer options.
        let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
        assert_eq!(get(MI_OPTION_PURGE_DELAY - 1), 1);
        assert_eq!(get(MI_OPTION_PURGE_DELAY), 1000);
        assert_eq!(get(libmimalloc_sys::mi_option_use_numa_nodes), 0);
        assert_eq!(MI_OPTION_PURGE_DELAY, libmimalloc_sys::mi_option_use_numa_nodes - 1);
    }
}
