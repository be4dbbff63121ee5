//! Seeded fuzzing of every loader on stable Rust: real files mutated (bit flips, overwritten,
//! inserted and deleted bytes, truncation, splices of two files, and, for JSON, a value replaced
//! by a huge or non-finite number, another type, deep nesting or a duplicated key), each fed to
//! its loader under `catch_unwind` and a clock. A loader may accept or refuse an input; it may
//! not panic, and no input may take over 5 s.
//!
//! `cargo test` runs a short fixed-seed pass (DYPOSE_FUZZ_INPUTS, 150 inputs per loader). The long
//! run is one command (the book's "Bad input" reference page):
//!
//!     DYPOSE_FUZZ_INPUTS=100000 cargo test --release --test fuzz_loaders -- --nocapture
//!
//! DYPOSE_FUZZ_ONLY=<loader> runs one loader; DYPOSE_FUZZ_SEED another seed. An input that
//! panics or is slow is written to `target/fuzz-failures/`; every such finding is
//! kept in `tests/data/fuzz_regressions/<loader>/` and replayed by the regression test below.

use dfdx::prelude::Cpu;
use dypose::coco::schema::ResultRecord;
use dypose::coco::{CocoDataset, KeypointSpec};
use dypose::config::{Arch, Config, Size};
use dypose::model::blueprint::Blueprint;
use dypose::model::network::Network;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SLOW: Duration = Duration::from_secs(5);

/// The real COCO sample's GT, which result and detection inputs are scored against.
fn sample_gt() -> &'static CocoDataset {
    static GT: OnceLock<CocoDataset> = OnceLock::new();
    GT.get_or_init(|| {
        CocoDataset::load(&Path::new(ROOT).join("data/coco-sample/annotations/person_keypoints_sample.json")).unwrap()
    })
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(ROOT).join(rel)).unwrap()
}

/// A loader under test: its seed files and what it does with an input (Ok: accepted).
struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    kind: Kind,
    load: fn(&[u8]) -> Result<(), String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Json,
    Safetensors,
    Image,
}

fn ok_or_string<T>(r: anyhow::Result<T>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| format!("{e:#}"))
}

fn load_gt(bytes: &[u8]) -> Result<(), String> {
    let file = dypose::coco::dataset::parse_annotation_file(bytes)?;
    let ds = CocoDataset::from_file(file, "gt.json".into()).map_err(|e| format!("{e:#}"))?;
    // What training and validation do with a GT file next.
    for c in &ds.categories {
        let _ = dypose::coco::find_keypoint_set(&ds, Some(c.id), None);
    }
    let (inst, _) = dypose::data::instances::train_instances(&ds, Path::new("images"), 1, 17);
    let _ = dypose::infer::boxes::gt_boxes(&ds, 1, 17);
    let _ = dypose::coco::find_keypoint_set(&ds, None, None);
    std::hint::black_box(inst);
    Ok(())
}

fn load_results(bytes: &[u8]) -> Result<(), String> {
    let records: Vec<ResultRecord> = dypose::coco::json::parse_array_par(dypose::coco::json::without_bom(bytes))?;
    let gt = sample_gt();
    let results =
        dypose::coco::results::results_from_records(records, "res.json", gt, 17).map_err(|e| e.to_string())?;
    let sigmas = KeypointSpec::coco17().sigmas.unwrap();
    ok_or_string(dypose::eval::evaluate_keypoints(gt, &results, &sigmas))
}

fn load_detections(bytes: &[u8]) -> Result<(), String> {
    ok_or_string(dypose::infer::boxes::detection_boxes_from_bytes(bytes, "dets.json", 1, 0.0, Some(sample_gt())))
}

fn load_config(bytes: &[u8]) -> Result<(), String> {
    let cfg = Config::from_slice(bytes, Path::new("configs/fuzz.json"), &[]).map_err(|e| format!("{e:#}"))?;
    // What every command builds from a config (no network is allocated).
    let _ = dypose::data::sample::SampleSpec::from_config(&cfg, &KeypointSpec::coco17(), true);
    let _ = dypose::infer::PredictOptions::from_config(&cfg.val, cfg.box_padding);
    ok_or_string(Blueprint::for_config(&cfg, 17))
}

fn load_spec(bytes: &[u8]) -> Result<(), String> {
    let spec = KeypointSpec::from_json_slice(bytes, "spec.json").map_err(|e| format!("{e:#}"))?;
    let sides: Vec<_> = (0..spec.len()).map(|j| spec.side(j)).collect();
    std::hint::black_box((spec.flip_permutation(), spec.coco_skeleton(), sides));
    ok_or_string(spec.sigmas().map(|_| ()))
}

/// The network every checkpoint input is loaded into (tiny: a DY-ResNet-10 ×0.125).
fn tiny_blueprint() -> Blueprint {
    let mut cfg = Config { input_size: Size::new(64, 64), heatmap_size: Size::new(16, 16), ..Default::default() };
    (cfg.model.arch, cfg.model.width, cfg.model.head_channels, cfg.model.head_layers) = (Arch::DyResnet10, 0.125, 8, 3);
    Blueprint::for_config(&cfg, 17).unwrap()
}

fn load_checkpoint(bytes: &[u8]) -> Result<(), String> {
    let meta = dypose::model::checkpoint::metadata_of(std::io::Cursor::new(bytes), bytes.len() as u64, "ck");
    let _ = meta;
    let mut net = Network::new(&Cpu::default(), &tiny_blueprint(), 0);
    ok_or_string(dypose::model::checkpoint::load_into(net.params_mut(), bytes, "ck"))
}

fn load_image(bytes: &[u8]) -> Result<(), String> {
    dypose::data::loader::decode_rgb(bytes).map(|_| ())
}

/// Small images of every format dypose reads, cut from a real photo, and a PNG that declares a
/// 60000 × 60000 image (a decompression bomb in 100 bytes).
fn image_seeds() -> Vec<Vec<u8>> {
    let photo = image::open(Path::new(ROOT).join("data/coco-sample/val2017/000000000785.jpg")).unwrap().to_rgb8();
    let crop = image::imageops::crop_imm(&photo, 200, 100, 48, 40).to_image();
    let mut out = Vec::new();
    for format in [image::ImageFormat::Jpeg, image::ImageFormat::Png, image::ImageFormat::Bmp, image::ImageFormat::WebP]
    {
        let mut bytes = std::io::Cursor::new(Vec::new());
        crop.write_to(&mut bytes, format).unwrap();
        out.push(bytes.into_inner());
    }
    out.push(bomb_png(60_000, 60_000));
    out
}

/// A PNG whose header declares `w × h` pixels and whose data is a few bytes of zeros.
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn checkpoint_seed() -> Vec<u8> {
    let net = Network::new(&Cpu::default(), &tiny_blueprint(), 1);
    let meta = [("config".to_string(), "{}".to_string())].into_iter().collect();
    dypose::model::checkpoint::to_bytes(&net.params(), meta).unwrap()
}

fn targets() -> Vec<Target> {
    let results: Vec<Value> = sample_gt()
        .annotations
        .iter()
        .map(|a| serde_json::json!({"image_id": a.image_id, "category_id": 1, "keypoints": a.keypoints, "score": 0.9}))
        .collect();
    vec![
        Target {
            name: "coco gt",
            seeds: vec![
                read("data/coco-sample/annotations/person_keypoints_sample.json"),
                read("tests/data/eval_cases/crowd_regions/gt.json"),
                read("tests/data/eval_cases/several_categories/gt.json"),
            ],
            kind: Kind::Json,
            load: load_gt,
        },
        Target {
            name: "results",
            seeds: vec![
                serde_json::to_vec(&results).unwrap(),
                read("tests/data/eval_cases/real_sample_noisy/results.json"),
            ],
            kind: Kind::Json,
            load: load_results,
        },
        Target {
            name: "detections",
            seeds: vec![read("data/coco-sample/annotations/person_detections_sample.json")],
            kind: Kind::Json,
            load: load_detections,
        },
        Target {
            name: "config",
            seeds: vec![
                read("configs/quickstart.json"),
                read("configs/dy_mobilenetv2_coco.json"),
                read("configs/crowdpose14_synthetic.json"),
            ],
            kind: Kind::Json,
            load: load_config,
        },
        Target {
            name: "keypoint spec",
            seeds: vec![
                read("configs/keypoints/coco17.json"),
                read("configs/keypoints/crowdpose14.json"),
                read("configs/keypoints/hand21.json"),
            ],
            kind: Kind::Json,
            load: load_spec,
        },
        Target { name: "checkpoint", seeds: vec![checkpoint_seed()], kind: Kind::Safetensors, load: load_checkpoint },
        Target { name: "image", seeds: image_seeds(), kind: Kind::Image, load: load_image },
    ]
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// Byte-level damage: flips, overwrites, inserts, deletions, truncation, a duplicated range, or
/// a splice of two seeds.
fn mutate_bytes(rng: &mut ChaCha8Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    let rounds = rng.random_range(1..=4);
    for _ in 0..rounds {
        let n = b.len().max(1);
        match rng.random_range(0..7) {
            0 => {
                for _ in 0..rng.random_range(1..8) {
                    let i = rng.random_range(0..n);
                    if let Some(v) = b.get_mut(i) {
                        *v ^= 1 << rng.random_range(0..8);
                    }
                }
            }
            1 => {
                let i = rng.random_range(0..n);
                if let Some(v) = b.get_mut(i) {
                    *v = rng.random();
                }
            }
            2 => {
                let i = rng.random_range(0..=b.len());
                let extra: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                b.splice(i..i, extra);
            }
            3 => {
                let i = rng.random_range(0..n);
                let j = (i + rng.random_range(1..64)).min(b.len());
                if i < j {
                    b.drain(i..j);
                }
            }
            4 => b.truncate(rng.random_range(0..=b.len())),
            5 => {
                let i = rng.random_range(0..n);
                let j = (i + rng.random_range(1..256)).min(b.len());
                let at = rng.random_range(0..=b.len());
                let copy: Vec<u8> = b.get(i..j).unwrap_or_default().to_vec();
                b.splice(at..at, copy);
            }
            _ => {
                let cut_a = rng.random_range(0..=b.len());
                let cut_b = rng.random_range(0..=other.len());
                b.truncate(cut_a);
                b.extend_from_slice(&other[cut_b..]);
            }
        }
    }
    b
}

/// Values that break assumptions: huge, tiny, negative, integral limits, other types.
fn odd_value(rng: &mut ChaCha8Rng) -> Value {
    let numbers = [1e308, -1e308, f64::MAX, f64::MIN_POSITIVE, 5e-324, -0.0, 1e9, -1e9, 3e38, 0.5, -1.0];
    match rng.random_range(0..9) {
        0 | 1 => serde_json::json!(numbers[rng.random_range(0..numbers.len())]),
        2 => [serde_json::json!(i64::MAX), serde_json::json!(i64::MIN), serde_json::json!(u64::MAX)]
            [rng.random_range(0..3)]
        .clone(),
        3 => Value::String(["", "x", "../../etc/passwd", "/abs.jpg", "ü\u{0}"][rng.random_range(0..5)].into()),
        4 => Value::Null,
        5 => Value::Bool(rng.random()),
        6 => Value::Array(Vec::new()),
        7 => Value::Object(Default::default()),
        _ => (0..rng.random_range(100..300)).fold(Value::Null, |v, _| Value::Array(vec![v])), // deep nesting
    }
}

/// A random node of `v` (pre-order index `k` modulo the node count) replaced by `f(node)`.
fn edit_node(v: &mut Value, k: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
    if *k == 0 {
        f(v);
        return true;
    }
    *k -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| edit_node(x, k, f)),
        Value::Object(o) => o.values_mut().any(|x| edit_node(x, k, f)),
        _ => false,
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Structure-aware damage of a JSON document: a node replaced by an odd value, an object's key
/// removed or duplicated (in the text), a number made NaN, Infinity or 1e999, an array grown.
fn mutate_json(rng: &mut ChaCha8Rng, input: &[u8]) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(input).ok()?;
    let n = count_nodes(&v);
    for _ in 0..rng.random_range(1..=3) {
        let mut k = rng.random_range(0..n);
        let choice = rng.random_range(0..4);
        let value = odd_value(rng);
        let extra_key = rng.random_range(0..8);
        edit_node(&mut v, &mut k, &mut |node| match (choice, &mut *node) {
            (0, Value::Object(o)) if !o.is_empty() => {
                let key = o.keys().nth(extra_key % o.len()).cloned().unwrap_or_default();
                o.remove(&key);
            }
            (1, Value::Array(a)) if !a.is_empty() => {
                let first = a[0].clone();
                a.extend(std::iter::repeat_n(first, 50));
            }
            _ => *node = value.clone(),
        });
    }
    let mut text = serde_json::to_string(&v).ok()?;
    match rng.random_range(0..4) {
        0 => {
            // A number token made non-finite or out of range.
            let positions: Vec<usize> = text.match_indices(|c: char| c.is_ascii_digit()).map(|(i, _)| i).collect();
            if let Some(&i) = positions.get(rng.random_range(0..positions.len().max(1))) {
                let token = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"][rng.random_range(0..5)];
                text.replace_range(i..i + 1, token);
            }
        }
        1 => {
            // A duplicated key: the first member of an object written twice.
            if let Some(i) = text.find("{\"") {
                if let Some(colon_end) = text[i..].find(',').map(|j| i + j) {
                    let member = text[i + 1..colon_end].to_string();
                    text.insert_str(i + 1, &format!("{member},"));
                }
            }
        }
        _ => {}
    }
    Some(text.into_bytes())
}

/// A safetensors file with its header changed: the JSON header mutated (dtype, shape, offsets)
/// and re-prefixed, or the declared header length made absurd.
fn mutate_safetensors(rng: &mut ChaCha8Rng, input: &[u8]) -> Option<Vec<u8>> {
    let n = u64::from_le_bytes(input.get(..8)?.try_into().ok()?) as usize;
    let (header, data) = (input.get(8..8 + n)?, &input[8 + n..]);
    let new_header = match rng.random_range(0..3) {
        0 => {
            let mut h: Value = serde_json::from_slice(header).ok()?;
            let names: Vec<String> = h.as_object()?.keys().filter(|k| *k != "__metadata__").cloned().collect();
            let name = names.get(rng.random_range(0..names.len().max(1)))?.clone();
            let t = &mut h[&name];
            match rng.random_range(0..4) {
                0 => {
                    t["dtype"] = Value::String(["F64", "F16", "I64", "U8", "BOOL", "XX"][rng.random_range(0..6)].into())
                }
                1 => t["shape"] = serde_json::json!([rng.random_range(0..100), u32::MAX, 7]),
                2 => t["data_offsets"] = serde_json::json!([0, u64::MAX]),
                _ => t["data_offsets"] = serde_json::json!([rng.random_range(0..1000), rng.random_range(0..1000)]),
            }
            serde_json::to_vec(&h).ok()?
        }
        1 => mutate_json(rng, header)?,
        _ => {
            let absurd = [u64::MAX, (input.len() as u64).wrapping_add(1), 0, 7][rng.random_range(0..4)];
            let mut out = absurd.to_le_bytes().to_vec();
            out.extend_from_slice(&input[8..]);
            return Some(out);
        }
    };
    let mut out = (new_header.len() as u64).to_le_bytes().to_vec();
    out.extend(new_header);
    out.extend_from_slice(data);
    Some(out)
}

/// The `i`-th input of a loader: a seed, mutated by the kind's structure-aware mutation or byte
/// damage (or both), from its own stream so that any input can be replayed alone.
fn input(target: &Target, seed: u64, i: u64) -> Vec<u8> {
    let rng = &mut ChaCha8Rng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let base = &target.seeds[rng.random_range(0..target.seeds.len())];
    let other = &target.seeds[rng.random_range(0..target.seeds.len())];
    let structured = match (target.kind, rng.random_range(0..3)) {
        (Kind::Json, 0 | 1) => mutate_json(rng, base),
        (Kind::Safetensors, 0 | 1) => mutate_safetensors(rng, base),
        _ => None,
    };
    match structured {
        Some(s) if rng.random_bool(0.7) => s,
        Some(s) => mutate_bytes(rng, &s, other),
        None => mutate_bytes(rng, base, other),
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

#[derive(Default)]
struct Tally {
    inputs: usize,
    accepted: usize,
    panics: Vec<u64>,
    slow: Vec<u64>,
    slowest: Duration,
}

fn run(target: &Target, seed: u64, n: u64) -> Tally {
    // (input, Ok(loader's answer) or Err(panicked), time taken)
    type Outcome = (u64, Result<Result<(), String>, ()>, Duration);
    let outcomes: Vec<Outcome> = (0..n)
        .into_par_iter()
        .map(|i| {
            let bytes = input(target, seed, i);
            let start = Instant::now();
            FUZZING.with(|f| f.set(true));
            let r = std::panic::catch_unwind(|| (target.load)(&bytes)).map_err(|_| ());
            FUZZING.with(|f| f.set(false));
            let took = start.elapsed();
            if r.is_err() || took > SLOW {
                let dir = Path::new(ROOT).join("target/fuzz-failures");
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(dir.join(format!("{}-{seed}-{i}.bin", target.name.replace(' ', "_"))), &bytes);
            }
            (i, r, took)
        })
        .collect();
    let mut t = Tally { inputs: outcomes.len(), ..Default::default() };
    for (i, r, took) in outcomes {
        match r {
            Ok(Ok(())) => t.accepted += 1,
            Ok(Err(_)) => {}
            Err(()) => t.panics.push(i),
        }
        if took > SLOW {
            t.slow.push(i);
        }
        t.slowest = t.slowest.max(took);
    }
    t
}

thread_local! {
    /// Set while a fuzz input runs: its panics are counted, not printed.
    static FUZZING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Silences the panics of fuzz inputs only; every other panic is reported as usual.
fn quiet_fuzz_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !FUZZING.with(|f| f.get()) {
                default(info);
            }
        }));
    });
}

fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok());
    kb.unwrap_or(f64::NAN) / 1024.0
}

#[test]
fn no_loader_panics_or_hangs_on_mutated_inputs() {
    let n: u64 = std::env::var("DYPOSE_FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let seed: u64 = std::env::var("DYPOSE_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(2026);
    quiet_fuzz_panics();
    let started = Instant::now();
    let mut report = vec![format!(
        "{:<18} {:>9} {:>9} {:>8} {:>10} {:>12}",
        "loader", "inputs", "accepted", "panics", "over 5 s", "slowest ms"
    )];
    let mut failures = Vec::new();
    let only = std::env::var("DYPOSE_FUZZ_ONLY").ok();
    for target in targets().into_iter().filter(|t| only.as_deref().is_none_or(|o| t.name == o)) {
        let t = run(&target, seed, n);
        report.push(format!(
            "{:<18} {:>9} {:>9} {:>8} {:>10} {:>12.1}",
            target.name,
            t.inputs,
            t.accepted,
            t.panics.len(),
            t.slow.len(),
            t.slowest.as_secs_f64() * 1e3
        ));
        if !t.panics.is_empty() || !t.slow.is_empty() {
            failures.push(format!("{}: panics at {:?}, slow at {:?}", target.name, t.panics, t.slow));
        }
        // The mutations reach both sides: some inputs are accepted, more are refused.
        assert!(t.accepted > 0 && t.accepted < t.inputs, "{}: {} of {} accepted", target.name, t.accepted, t.inputs);
    }
    report.push(format!("seed {seed}; {:.1} s; peak memory {:.0} MB", started.elapsed().as_secs_f64(), peak_rss_mb()));
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "inputs kept in target/fuzz-failures/:\n{}", failures.join("\n"));
}

/// A 100-byte PNG that declares 60000 × 60000 pixels (10.8 GB of RGB) is refused with a message
/// at once, not allocated; an ordinary image of the same format decodes.
#[test]
fn a_decompression_bomb_is_refused_with_a_message() {
    let start = Instant::now();
    let e = dypose::data::loader::decode_rgb(&bomb_png(60_000, 60_000)).unwrap_err();
    assert!(e.contains("larger than dypose decodes (16384 px a side"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(image_seeds().iter().take(4).all(|b| dypose::data::loader::decode_rgb(b).is_ok()));
}

/// Every input a fuzz run found (kept in tests/data/fuzz_regressions/<loader>/) is handled: no
/// panic, within 5 s.
#[test]
fn fuzz_findings_stay_fixed() {
    let dir = Path::new(ROOT).join("tests/data/fuzz_regressions");
    let mut replayed = 0;
    for target in targets() {
        let sub = dir.join(target.name.replace(' ', "_"));
        for e in std::fs::read_dir(&sub).into_iter().flatten() {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            let start = Instant::now();
            quiet_fuzz_panics();
            FUZZING.with(|f| f.set(true));
            let r = std::panic::catch_unwind(|| (target.load)(&bytes));
            FUZZING.with(|f| f.set(false));
            assert!(r.is_ok(), "{} panics again", p.display());
            assert!(start.elapsed() < SLOW, "{} is slow again", p.display());
            replayed += 1;
        }
    }
    eprintln!("{replayed} fuzz findings replayed");
}
