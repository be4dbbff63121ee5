//! `eval --analyze` on hand-built scenes with known answers, on CrowdPose's 14 joints (any set the
//! spec describes works the same). Each scene is a pair of results files: a base one and the same
//! with one kind of error injected on chosen joints. The analysis must count exactly the injected
//! joints as that error, and fixing that error must give back the base file's AP (the metric is
//! deterministic, so equal files give bit-equal stats; the base itself has false positives, a
//! jittered joint per few persons and unordered scores, so its AP is not a trivial 1).

use dypose::coco::dataset::parse_annotation_file;
use dypose::coco::{CocoDataset, KeypointResult, KeypointSpec};
use dypose::eval::analyze::joints::JointError;
use dypose::eval::analyze::{analyze, Analysis};
use dypose::eval::{CocoEval, EvalParams, Stats};
use serde_json::json;
use std::path::PathBuf;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/keypoints/crowdpose14.json");
const IMAGES: usize = 24;
/// CrowdPose order: l/r shoulder, elbow, wrist, hip, knee, ankle, then head and neck. Mirrored
/// joints are 60–180 px apart, so a jitter of ks 0.7 (at most 18 px here) stays nearest its own.
const TEMPLATE: [[f64; 2]; 14] = [
    [110.0, 60.0],
    [10.0, 60.0],
    [140.0, 120.0],
    [-20.0, 120.0],
    [150.0, 180.0],
    [-30.0, 180.0],
    [90.0, 180.0],
    [30.0, 180.0],
    [95.0, 260.0],
    [25.0, 260.0],
    [100.0, 340.0],
    [20.0, 340.0],
    [60.0, 0.0],
    [60.0, 50.0],
];
const LEFT_WRIST: usize = 4;
const RIGHT_WRIST: usize = 5;
const LEFT_HIP: usize = 6;
const LEFT_KNEE: usize = 8;
const RIGHT_ANKLE: usize = 11;
const HEAD: usize = 12;

fn spec() -> KeypointSpec {
    KeypointSpec::from_json_file(&PathBuf::from(SPEC)).unwrap()
}

/// Person `p` of image `i` (two per image, 300 px apart); areas alternate medium and large.
fn person(i: usize, p: usize) -> (Vec<[f64; 2]>, f64) {
    let (x0, y0) = (100.0 + 300.0 * p as f64, 50.0);
    let area = if (i + p) % 2 == 0 { 5000.0 } else { 10000.0 };
    (TEMPLATE.iter().map(|[x, y]| [x0 + x, y0 + y]).collect(), area)
}

fn flat(joints: &[[f64; 2]], v: f64) -> Vec<f64> {
    joints.iter().flat_map(|[x, y]| [*x, *y, v]).collect()
}

fn ground_truth() -> CocoDataset {
    let images: Vec<_> = (0..IMAGES).map(|i| json!({"id": i + 1, "width": 1000, "height": 450})).collect();
    let mut annotations = Vec::new();
    for i in 0..IMAGES {
        for p in 0..2 {
            let (joints, area) = person(i, p);
            let x0 = 70.0 + 300.0 * p as f64;
            annotations.push(json!({
                "id": 2 * i + p + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "area": area,
                "bbox": [x0, 50.0, 180.0, 340.0], "num_keypoints": 14, "keypoints": flat(&joints, 2.0),
            }));
        }
    }
    let spec = spec();
    let file = json!({"images": images, "annotations": annotations, "categories": [{
        "id": 1, "name": "person", "keypoints": spec.keypoints, "skeleton": [[13, 14]],
    }]});
    let parsed = parse_annotation_file(&serde_json::to_vec(&file).unwrap()).unwrap();
    CocoDataset::from_file(parsed, PathBuf::from("scene.json")).unwrap()
}

/// A detection of person `p` of image `i` with the given joints; area as pycocotools gives a
/// results file without boxes (the box of the keypoints).
fn detection(i: usize, joints: &[[f64; 2]], score: f64) -> KeypointResult {
    let (xs, ys): (Vec<f64>, Vec<f64>) = joints.iter().map(|[x, y]| (*x, *y)).unzip();
    let span = |v: &[f64]| v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min);
    KeypointResult {
        image_id: i as i64 + 1,
        category_id: 1,
        keypoints: flat(joints, 1.0),
        score,
        area: span(&xs) * span(&ys),
    }
}

/// The point at keypoint similarity `ks` from `at`, straight up, for joint `j` of a person of `area`.
fn at_ks(at: [f64; 2], j: usize, area: f64, ks: f64) -> [f64; 2] {
    let variance = (2.0 * spec().sigmas().unwrap()[j]).powi(2);
    [at[0], at[1] - (-2.0 * variance * area * ks.ln()).sqrt()]
}

/// Which base detections carry a jittered head (ks 0.7): every third.
fn base_jitter(k: usize) -> bool {
    k % 3 == 0
}

/// The base file with `change(image, person k, joints, area)` applied to every true detection:
/// one detection per person (k = 2i + p) with exact joints but a jittered head on every third,
/// scores in a scrambled order, and a false positive far from everyone in every fourth image,
/// scored above most true detections.
fn results(change: impl Fn(usize, usize, &mut [[f64; 2]], f64)) -> Vec<KeypointResult> {
    let mut out = Vec::new();
    for i in 0..IMAGES {
        for p in 0..2 {
            let k = 2 * i + p;
            let (mut joints, area) = person(i, p);
            if base_jitter(k) {
                joints[HEAD] = at_ks(joints[HEAD], HEAD, area, 0.7);
            }
            change(i, k, &mut joints, area);
            out.push(detection(i, &joints, 0.3 + 0.6 * ((k * 37 % 48) as f64 / 48.0)));
        }
        if i % 4 == 0 {
            let far: Vec<[f64; 2]> = TEMPLATE.iter().map(|[x, y]| [700.0 + x, 60.0 + y]).collect();
            out.push(detection(i, &far, 0.8 + 0.01 * i as f64));
        }
    }
    out
}

fn base() -> Vec<KeypointResult> {
    results(|_, _, _, _| {})
}

/// The other person of person k's image.
fn neighbour(i: usize, k: usize) -> Vec<[f64; 2]> {
    person(i, 1 - k % 2).0
}

fn stats(gt: &CocoDataset, results: &[KeypointResult]) -> Stats {
    CocoEval::new(gt, results, EvalParams::keypoints(spec().sigmas().unwrap().to_vec())).unwrap().run()
}

fn fix<'a>(a: &'a Analysis, name: &str) -> &'a Stats {
    &a.fixes.iter().find(|f| f.name == name).unwrap().stats
}

fn count(a: &Analysis, e: JointError) -> usize {
    a.total.errors.get(e)
}

const PERSONS: usize = 2 * IMAGES;

fn persons_where(which: impl Fn(usize) -> bool) -> usize {
    (0..PERSONS).filter(|&k| which(k)).count()
}

#[test]
fn inversions_are_counted_and_fixing_them_restores_the_base_ap() {
    let gt = ground_truth();
    let inverted = |k: usize| k % 2 == 0;
    let a = analyze(
        &gt,
        &results(|_, k, j, _| {
            if inverted(k) {
                j.swap(LEFT_WRIST, RIGHT_WRIST)
            }
        }),
        &spec(),
    )
    .unwrap();
    let injected = persons_where(inverted);
    assert_eq!(count(&a, JointError::Inversion), 2 * injected);
    assert_eq!(count(&a, JointError::Jitter), persons_where(base_jitter));
    assert_eq!(count(&a, JointError::Swap) + count(&a, JointError::Miss), 0);
    assert_eq!(count(&a, JointError::Good), 14 * PERSONS - 2 * injected - persons_where(base_jitter));
    assert_eq!(a.matched_detections, PERSONS);
    let left = &a.keypoints[LEFT_WRIST];
    assert_eq!((left.errors.inversion, left.errors.good), (injected, PERSONS - injected));
    let base = stats(&gt, &base());
    assert!(a.original.ap < base.ap, "the inversions cost AP: {} vs {}", a.original.ap, base.ap);
    assert_eq!(*fix(&a, "inversion"), base);
    assert_eq!(*fix(&a, "swap"), a.original, "no swap to fix");
}

#[test]
fn joints_copied_from_the_neighbour_are_swaps_and_fixing_them_restores_the_base_ap() {
    let gt = ground_truth();
    let swapped = |k: usize| k % 3 == 1;
    let a = analyze(
        &gt,
        &results(|i, k, j, _| {
            if swapped(k) {
                for joint in [LEFT_KNEE, RIGHT_ANKLE] {
                    j[joint] = neighbour(i, k)[joint];
                }
            }
        }),
        &spec(),
    )
    .unwrap();
    let injected = persons_where(swapped);
    assert_eq!(count(&a, JointError::Swap), 2 * injected);
    assert_eq!(count(&a, JointError::Inversion) + count(&a, JointError::Miss), 0);
    assert_eq!(a.keypoints[LEFT_KNEE].errors.swap, injected);
    let base = stats(&gt, &base());
    assert!(a.original.ap < base.ap);
    assert_eq!(*fix(&a, "swap"), base);
    assert_eq!(*fix(&a, "inversion"), a.original, "no inversion to fix");
}

#[test]
fn small_noise_is_jitter_and_fixing_it_fixes_the_base_jitter_too() {
    let gt = ground_truth();
    let jittered = |k: usize| k % 4 == 1;
    let a = analyze(
        &gt,
        &results(|_, k, j, area| {
            if jittered(k) {
                for joint in [LEFT_HIP, LEFT_KNEE] {
                    j[joint] = at_ks(j[joint], joint, area, 0.62);
                }
            }
        }),
        &spec(),
    )
    .unwrap();
    let injected = persons_where(jittered);
    assert_eq!(count(&a, JointError::Jitter), 2 * injected + persons_where(base_jitter));
    let hip = &a.keypoints[LEFT_HIP];
    assert_eq!(hip.errors.jitter, injected);
    // Hand-computed: ks is 1 for the exact hips and 0.62 (not at a bin edge) for the jittered ones.
    let n = PERSONS as f64;
    let mean = ((n - injected as f64) + 0.62 * injected as f64) / n;
    assert!((hip.mean_ks.unwrap() - mean).abs() < 1e-9);
    assert_eq!(hip.ks_histogram[6], injected);
    assert_eq!(hip.ks_histogram[9], PERSONS - injected);
    let pck = |t: f64| hip.pck.iter().find(|p| (p.0 - t).abs() < 1e-9).unwrap().1;
    assert_eq!((pck(0.55), pck(0.65)), (1.0, 1.0 - injected as f64 / n));
    // The distance in units of scale: at ks 0.62, d² = −2·(2σ)²·area·ln 0.62, so d/√area is fixed.
    let per_scale = (-2.0 * (2.0 * 0.107f64).powi(2) * 0.62f64.ln()).sqrt();
    assert!((hip.mean_error_per_scale.unwrap() - per_scale * injected as f64 / n).abs() < 1e-9);
    // Every jitter joint lands on its GT joint: the file with no error at all.
    let exact = results_exact();
    assert_eq!(*fix(&a, "jitter"), stats(&gt, &exact));
    assert!(a.original.ap < stats(&gt, &exact).ap);
}

#[test]
fn all_errors_together_then_scores_background_and_missed_persons() {
    let gt = ground_truth();
    // Inversions, swaps and far misses on different persons, and persons 5 and 11 undetected.
    let results = results(|i, k, j, _| match k % 4 {
        0 => j.swap(LEFT_WRIST, RIGHT_WRIST),
        1 => j[LEFT_KNEE] = neighbour(i, k)[LEFT_KNEE],
        2 => j[HEAD][1] += 200.0,
        _ => {}
    });
    let undetected = [5usize, 11];
    let mut results = results;
    let dropped: Vec<KeypointResult> = results
        .iter()
        .filter(|r| {
            undetected.iter().any(|&k| {
                r.image_id as usize == k / 2 + 1 && (r.keypoints[3 * 13] - person(k / 2, k % 2).0[13][0]).abs() < 1.0
            })
        })
        .cloned()
        .collect();
    results.retain(|r| !dropped.contains(r));
    assert_eq!(dropped.len(), 2);
    let a = analyze(&gt, &results, &spec()).unwrap();
    assert_eq!(count(&a, JointError::Miss), (0..PERSONS).filter(|k| k % 4 == 2 && !undetected.contains(k)).count());
    assert_eq!(a.missed_gts, 2);
    let false_positives = IMAGES.div_ceil(4);
    assert_eq!(a.background_false_positives, false_positives);

    // All keypoint errors fixed: the exact file, less the two undetected persons.
    let mut exact = results_exact();
    exact.retain(|r| {
        !dropped.iter().any(|d| d.image_id == r.image_id && (d.keypoints[39] - r.keypoints[39]).abs() < 1.0)
    });
    assert_eq!(*fix(&a, "all keypoint errors"), stats(&gt, &exact));

    // Rescoring puts the false positives (score 0) below every true detection: the AP of the
    // file without them. Removing them instead gives that too.
    let mut without_fp = results.clone();
    without_fp.retain(|r| r.keypoints[39] < 700.0);
    assert_eq!(fix(&a, "background").ap, stats(&gt, &without_fp).ap);
    assert_eq!(fix(&a, "scores").ap50, stats(&gt, &without_fp).ap50);

    // Missed persons ignored: the AP of a GT file without them.
    let mut smaller = ground_truth();
    smaller.annotations.retain(|g| !undetected.contains(&(g.id as usize - 1)));
    let smaller = CocoDataset::from_file(
        parse_annotation_file(
            &serde_json::to_vec(&json!({
                "images": (0..IMAGES).map(|i| json!({"id": i + 1})).collect::<Vec<_>>(),
                "annotations": smaller.annotations, "categories": smaller.categories,
            }))
            .unwrap(),
        )
        .unwrap(),
        PathBuf::from("smaller.json"),
    )
    .unwrap();
    assert_eq!(*fix(&a, "missed persons"), stats(&smaller, &results));

    // Everything: exact joints, perfect scores, no background, no misses: every AP is 1.
    let everything = fix(&a, "everything");
    assert_eq!((everything.ap, everything.apm, everything.apl, everything.ar), (1.0, 1.0, 1.0, 1.0));
}

/// Every person exactly, no jitter, with the base file's scores and false positives.
fn results_exact() -> Vec<KeypointResult> {
    results(|i, k, j, _| j.copy_from_slice(&person(i, k % 2).0))
}

mod command_line {
    //! `dypose eval --analyze` through the binary, on the real sample's GT fed back as results
    //! with one left/right pair exchanged.

    use serde_json::Value;
    use std::path::Path;
    use std::process::{Command, Output};

    const SAMPLE_GT: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/coco-sample/annotations/person_keypoints_sample.json");

    fn dypose(args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dypose")).args(args).output().unwrap()
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    /// The GT persons as results (persons without labelled joints too, as false positives at
    /// the origin), with the first labelled left/right pair of one person exchanged when
    /// `invert`; also how many joints are labelled in all.
    fn sample_results(path: &Path, invert: bool) -> usize {
        let gt: Value = serde_json::from_slice(&std::fs::read(SAMPLE_GT).unwrap()).unwrap();
        let pairs = [(5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)];
        let mut done = !invert;
        let mut labelled = 0;
        let mut results = Vec::new();
        for a in gt["annotations"].as_array().unwrap().iter().filter(|a| a["iscrowd"] != 1) {
            let mut k: Vec<f64> = a["keypoints"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            labelled += k.chunks(3).filter(|j| j[2] > 0.0).count();
            for &(l, r) in &pairs {
                let apart = (k[3 * l] - k[3 * r]).abs() + (k[3 * l + 1] - k[3 * r + 1]).abs() > 10.0;
                if !done && k[3 * l + 2] > 0.0 && k[3 * r + 2] > 0.0 && apart {
                    for c in 0..2 {
                        k.swap(3 * l + c, 3 * r + c);
                    }
                    done = true;
                }
            }
            results
                .push(serde_json::json!({"image_id": a["image_id"], "category_id": 1, "keypoints": k, "score": 0.9}));
        }
        assert!(done, "the sample has a labelled pair");
        std::fs::write(path, serde_json::to_vec(&results).unwrap()).unwrap();
        labelled
    }

    #[test]
    fn writes_the_report_and_prints_the_stats_eval_prints() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results.json");
        let labelled = sample_results(&results, true);
        let out = dir.path().join("analysis");
        let plain = dypose(&["eval", "--gt", SAMPLE_GT, "--results", s(&results)]);
        let analysed = dypose(&["eval", "--gt", SAMPLE_GT, "--results", s(&results), "--analyze", s(&out)]);
        assert!(analysed.status.success(), "{}", String::from_utf8_lossy(&analysed.stderr));
        assert_eq!(plain.stdout, analysed.stdout, "the stats are printed as plain eval prints them");

        let a: Value = serde_json::from_slice(&std::fs::read(out.join("analysis.json")).unwrap()).unwrap();
        let total = &a["total"]["errors"];
        assert_eq!(total["inversion"], 2);
        assert_eq!(total["good"].as_u64().unwrap() as usize, labelled - 2);
        let fixed = a["fixes"].as_array().unwrap().iter().find(|f| f["name"] == "inversion").unwrap();
        // Fixing the inversion gives the file with the pair put back.
        let (intact, intact_stats) = (dir.path().join("intact.json"), dir.path().join("intact_stats.json"));
        sample_results(&intact, false);
        let o = dypose(&["eval", "--gt", SAMPLE_GT, "--results", s(&intact), "--json", s(&intact_stats)]);
        assert!(o.status.success());
        let intact: Value = serde_json::from_slice(&std::fs::read(&intact_stats).unwrap()).unwrap();
        assert_eq!(fixed["stats"], intact);
        assert_ne!(a["original"], intact, "the inversion costs AP");
        assert!(std::fs::read_to_string(out.join("summary.txt")).unwrap().contains("left_shoulder"));
        for chart in ["keypoint_errors.png", "ap_gains.png", "pr_curves.png"] {
            let img = image::open(out.join(chart)).unwrap();
            assert!(img.width() >= 800 && img.height() >= 400, "{chart}");
        }

        // A second run does not replace the report unless told to.
        let before = std::fs::read(out.join("analysis.json")).unwrap();
        let again = dypose(&["eval", "--gt", SAMPLE_GT, "--results", s(&results), "--analyze", s(&out)]);
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
        assert_eq!(std::fs::read(out.join("analysis.json")).unwrap(), before);
        let forced = dypose(&["eval", "--gt", SAMPLE_GT, "--results", s(&results), "--analyze", s(&out), "--force"]);
        assert!(forced.status.success());
    }

    #[test]
    fn never_replaces_an_input_named_like_a_report_file() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("analysis.json");
        sample_results(&results, true);
        let before = std::fs::read(&results).unwrap();
        let o = dypose(&["eval", "--gt", SAMPLE_GT, "--results", s(&results), "--analyze", s(dir.path()), "--force"]);
        assert!(!o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("would replace an input"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(std::fs::read(&results).unwrap(), before);
    }
}
