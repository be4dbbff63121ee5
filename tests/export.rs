//! Every network dypose trains, exported to ONNX and run in an independent runtime (tract):
//! its outputs equal dypose's own forward pass and decoding, on random inputs and a real crop.

use dfdx::prelude::*;
use dypose::config::{Arch, Size};
use dypose::data::center::CenterCodec;
use dypose::data::codec::{Decoding, HeatmapCodec};
use dypose::export::{export, DynamicForm, ExportOptions, Purpose};
use dypose::infer::predictor::{heatmaps_with_flip, HeatmapModel};
use dypose::model::blueprint::{backbone, deconv_head, light_head, Blueprint};
use dypose::model::layers::{init_rng, random_values, Ctx};
use dypose::model::network::Network;
use tract_onnx::prelude::{tract_ndarray, tvec, DatumExt, Framework, InferenceModelExt};

const INPUT: Size = Size { width: 64, height: 96 };

fn pose_blueprint(arch: Arch, width: f64, light: bool, joints: usize) -> Blueprint {
    let b = backbone(arch, width, false).unwrap();
    let dynamic = arch.is_dynamic();
    let head = if light {
        light_head(b.out_channels, 16, 3, joints, dynamic)
    } else {
        deconv_head(b.out_channels, 16, 3, joints, dynamic)
    };
    Blueprint { backbone: b, head: Some(head), classifier: None, kernels: 4 }
}

/// A network whose batch-norm statistics moved away from (0, 1), so that folding them matters.
fn network(bp: &Blueprint, seed: u64, head_scale: f32) -> Network<Cpu> {
    let dev: Cpu = Default::default();
    let mut net = Network::new(&dev, bp, seed);
    let x = dev.tensor_from_vec(random_values(&mut init_rng(seed + 1), 2 * 3 * INPUT.area()), (2, 3, 96, 64));
    for _ in 0..2 {
        let _ = net.forward(x.clone(), Ctx::train(1.0));
    }
    // The head's output layer starts at N(0, 0.001): nearly flat maps, whose peaks are ties.
    // Trained heads are not; larger weights give the maps peaks to decode (not so large that
    // a detector's sigmoid saturates to ties at 1).
    for p in net.params_mut().into_iter().filter(|p| p.name == "head.final_layer.weight") {
        p.value = p.value.clone() * head_scale;
    }
    net
}

fn inputs(n: usize, seed: u64) -> Vec<f32> {
    random_values(&mut init_rng(seed), n * 3 * INPUT.area()).iter().map(|v| 2.0 * v).collect()
}

/// Runs an ONNX model in tract on `x` (n × 3 × H × W); every output as f32 (int64 converted).
fn run_tract(bytes: &[u8], x: &[f32], n: usize) -> Vec<(Vec<usize>, Vec<f32>)> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the model")
        .with_input_fact(0, f32::fact([n, 3, INPUT.height, INPUT.width]).into())
        .unwrap()
        .into_optimized()
        .expect("tract optimises the model")
        .into_runnable()
        .unwrap();
    let input = tract_ndarray::Array4::from_shape_vec((n, 3, INPUT.height, INPUT.width), x.to_vec()).unwrap();
    let out = model.run(tvec!(tract_onnx::prelude::Tensor::from(input).into())).expect("tract runs the model");
    out.iter()
        .map(|t| {
            let t = t.cast_to::<f32>().unwrap();
            (t.shape().to_vec(), t.as_slice::<f32>().unwrap().to_vec())
        })
        .collect()
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

fn options(form: DynamicForm, batch: Option<usize>) -> ExportOptions {
    ExportOptions { form, batch, decode: false, flip: false }
}

fn pose_purpose(joints: usize, decoding: Decoding) -> Purpose {
    let codec = HeatmapCodec::new(INPUT, Size::new(16, 24), 2.0);
    let perm: Vec<usize> = (0..joints)
        .map(|j| {
            if j == 0 {
                0
            } else if j % 2 == 1 {
                j + 1
            } else {
                j - 1
            }
        })
        .collect();
    let perm = perm.into_iter().map(|p| p.min(joints - 1)).collect();
    Purpose::Pose { codec, decoding, flip_permutation: perm }
}

#[test]
fn every_backbone_and_head_gives_dypose_heatmaps_in_every_form() {
    let backbones = [
        (Arch::DyResnet10, 0.25),
        (Arch::Resnet10, 0.25),
        (Arch::DyResnet18, 0.25),
        (Arch::Resnet18, 0.25),
        (Arch::DyMobilenetv2, 0.35),
        (Arch::Mobilenetv2, 0.35),
        (Arch::DyMobilenetv3Small, 0.5),
        (Arch::Mobilenetv3Small, 0.5),
    ];
    let cases = backbones.iter().flat_map(|&(arch, width)| [(arch, width, false), (arch, width, true)]);
    for (arch, width, light) in cases {
        let mut net = network(&pose_blueprint(arch, width, light, 5), 3, 300.0);
        let forms: &[DynamicForm] = if arch.is_dynamic() {
            &[DynamicForm::Experts, DynamicForm::Grouped, DynamicForm::Matmul]
        } else {
            &[DynamicForm::Experts]
        };
        for &form in forms {
            let n = 2;
            let batch = (form == DynamicForm::Grouped).then_some(n);
            let x = inputs(n, 11);
            let want = net.heatmaps(&x, n, INPUT).unwrap();
            let bytes =
                export(&net, INPUT, &pose_purpose(5, Decoding::Quarter), &options(form, batch), vec![]).unwrap();
            let out = run_tract(&bytes, &x, n);
            assert_eq!(out[0].0, vec![n, 5, 24, 16], "{arch} {form}");
            let err = max_rel(&out[0].1, &want);
            assert!(
                err < 1e-4,
                "{arch} ({}) as {form}: heatmaps differ by {err:.2e}",
                if light { "light" } else { "deconv" }
            );
        }
    }
}

/// The joints of dypose's codec for `maps` (n × J × h × w), flattened as the graph gives them.
fn dypose_joints(maps: &[f32], n: usize, codec: &HeatmapCodec, method: Decoding) -> (Vec<f32>, Vec<f32>) {
    let (mut xy, mut scores) = (Vec::new(), Vec::new());
    for m in maps.chunks(maps.len() / n) {
        for (p, s) in codec.decode(m, method) {
            xy.extend(p);
            scores.push(s);
        }
    }
    (xy, scores)
}

/// Whether the largest and second-largest values of a map are so close that float rounding in
/// two runtimes may pick either (then the two decodings legitimately differ).
fn near_tie(map: &[f32]) -> bool {
    let mut v: Vec<f32> = map.to_vec();
    v.sort_by(|a, b| b.total_cmp(a));
    (v[0] - v[1]).abs() <= 1e-5 * v[0].abs()
}

fn check_decoding(
    net: &mut Network<Cpu>,
    x: &[f32],
    n: usize,
    method: Decoding,
    flip: bool,
    form: DynamicForm,
    what: &str,
) {
    let joints = 5;
    let purpose = pose_purpose(joints, method);
    let Purpose::Pose { codec, flip_permutation, .. } = &purpose else { unreachable!() };
    let maps = heatmaps_with_flip(net, x, n, codec, flip.then_some(&flip_permutation[..])).unwrap();
    let (want_xy, want_s) = dypose_joints(&maps, n, codec, method);
    let batch = (form == DynamicForm::Grouped).then_some(n);
    let opts = ExportOptions { form, batch, decode: true, flip };
    let out = run_tract(&export(net, INPUT, &purpose, &opts, vec![]).unwrap(), x, n);
    assert_eq!((out[1].0.clone(), out[2].0.clone()), (vec![n, joints, 2], vec![n, joints]));
    let what = &format!("{what} as {form}");
    assert!(max_rel(&out[0].1, &maps) < 1e-4, "{what}: heatmaps");
    // The graph's decoding is dypose's: on the same maps, the same joints.
    let (same_maps, _) = dypose_joints(&out[0].1, n, codec, method);
    let decoding_err = out[1].1.iter().zip(&same_maps).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(decoding_err < 1e-3, "{what} {method} flip {flip}: decoding the same maps differs by {decoding_err} px");
    // End to end, against dypose's own maps: every joint, but where the maps' last-digit
    // differences (bounded above) move the result by themselves: near ties of the argmax, and
    // DARK on a flat peak, whose Hessian amplifies them (dypose's decoding of the two sets of
    // maps then differs as much as the graph's does).
    let plane = 24 * 16;
    let mut compared = 0;
    for i in 0..n * joints {
        let moved_by_maps = (0..2).any(|c| (same_maps[2 * i + c] - want_xy[2 * i + c]).abs() >= 1e-3);
        if near_tie(&maps[i * plane..(i + 1) * plane]) || moved_by_maps {
            continue;
        }
        compared += 1;
        for c in 0..2 {
            let (got, want) = (out[1].1[2 * i + c], want_xy[2 * i + c]);
            assert!(
                (got - want).abs() < 1e-3,
                "{what} {method} flip {flip}: joint {i} coordinate {c}: {got} vs {want}"
            );
        }
        assert!((out[2].1[i] - want_s[i]).abs() <= 1e-4 * want_s[i].abs().max(1.0), "{what}: joint {i} score");
    }
    assert!(compared * 10 >= n * joints * 8, "{what}: {compared} of {} joints compared", n * joints);
}

#[test]
fn decoded_joints_equal_dypose_decoding_on_random_inputs() {
    let mut net = network(&pose_blueprint(Arch::DyResnet10, 0.25, false, 5), 5, 300.0);
    let x = inputs(3, 21);
    for method in [Decoding::Quarter, Decoding::Dark] {
        for flip in [false, true] {
            for form in [DynamicForm::Experts, DynamicForm::Grouped] {
                check_decoding(&mut net, &x, 3, method, flip, form, "random inputs");
            }
        }
    }
}

/// A real person crop of the COCO sample, cut as `dypose predict` cuts it.
fn real_crop() -> Vec<f32> {
    let text = std::fs::read_to_string("data/coco-sample/annotations/person_keypoints_sample.json").unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ann = &json["annotations"][0];
    let image = &json["images"].as_array().unwrap().iter().find(|i| i["id"] == ann["image_id"]).unwrap()["file_name"];
    let path = std::path::PathBuf::from(format!("data/coco-sample/val2017/{}", image.as_str().unwrap()));
    let img = dypose::data::loader::load_rgb(&path).unwrap();
    let bbox: Vec<f64> = ann["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let codec = HeatmapCodec::new(INPUT, Size::new(16, 24), 2.0);
    let (_, affine) = dypose::infer::predictor::crop_of([bbox[0], bbox[1], bbox[2], bbox[3]], &codec, 1.25);
    let mut out = vec![0.0; 3 * INPUT.area()];
    dypose::data::warp::normalize_chw(&dypose::data::warp::warp_rgb(&img, &affine, INPUT), &mut out);
    out
}

#[test]
fn decoded_joints_equal_dypose_decoding_on_a_real_crop() {
    let x = real_crop();
    for (arch, light) in [(Arch::DyMobilenetv3Small, true), (Arch::DyResnet10, false)] {
        let mut net = network(&pose_blueprint(arch, 0.5, light, 5), 9, 300.0);
        for method in [Decoding::Quarter, Decoding::Dark] {
            check_decoding(&mut net, &x, 1, method, true, DynamicForm::Grouped, &format!("real crop, {arch}"));
        }
    }
}

#[test]
fn the_detector_gives_dypose_boxes() {
    let b = backbone(Arch::DyResnet10, 0.25, false).unwrap();
    let head = deconv_head(b.out_channels, 16, 3, 5, true);
    let mut net = network(&Blueprint { backbone: b, head: Some(head), classifier: None, kernels: 4 }, 13, 10.0);
    let codec = CenterCodec { input: INPUT, output: Size::new(16, 24), gaussian_alpha: 0.54 };
    let n = 2;
    let x = inputs(n, 17);
    for (flip, form) in [(false, DynamicForm::Experts), (true, DynamicForm::Experts), (true, DynamicForm::Grouped)] {
        let (top_k, min_score) = (20, 0.3);
        let maps = net.heatmaps(&x, n, INPUT).unwrap();
        let mirrored = flip.then(|| net.heatmaps(&dypose::infer::post::mirror_inputs(&x, INPUT), n, INPUT).unwrap());
        let want = dypose::infer::detect::boxes_of_maps(&codec, maps, mirrored, top_k, min_score);
        let purpose = Purpose::Detect { codec: codec.clone(), top_k, min_score };
        let opts = ExportOptions { form, batch: (form == DynamicForm::Grouped).then_some(n), decode: true, flip };
        let out = run_tract(&export(&net, INPUT, &purpose, &opts, vec![]).unwrap(), &x, n);
        let (boxes, scores, count) = (&out[0].1, &out[1].1, &out[2].1);
        for (i, want) in want.iter().enumerate() {
            assert!(!want.is_empty(), "the test needs boxes to compare (flip {flip})");
            assert_eq!(count[i] as usize, want.len(), "image {i}, flip {flip}: boxes found");
            for (r, w) in want.iter().enumerate() {
                let got = &boxes[(i * top_k + r) * 4..][..4];
                for c in 0..4 {
                    assert!((got[c] as f64 - w.bbox[c]).abs() < 1e-3, "image {i} box {r}: {got:?} vs {:?}", w.bbox);
                }
                assert!((scores[i * top_k + r] as f64 - w.score).abs() < 1e-5, "image {i} box {r}: score");
            }
            assert!(scores[i * top_k + want.len()..(i + 1) * top_k].iter().all(|&s| s == 0.0), "padding rows");
        }
    }
}

#[test]
fn classifiers_give_dypose_logits() {
    let dev: Cpu = Default::default();
    for (arch, width) in [(Arch::DyMobilenetv3Small, 0.5), (Arch::Resnet10, 0.25), (Arch::DyMobilenetv2, 0.35)] {
        let model = dypose::config::ClassifierModel {
            arch,
            width,
            kernels: 4,
            dynamic_shortcut: false,
            classes: 7,
            input_size: INPUT,
            class_names: vec![],
            classifier_hidden: None,
        };
        let bp = Blueprint::classifier(&model).unwrap();
        let mut net = Network::new(&dev, &bp, 2);
        let n = 3;
        let x = inputs(n, 5);
        let want = net.logits(dev.tensor_from_vec(x.clone(), (n, 3, 96, 64)), Ctx::INFERENCE).as_vec();
        let opts = ExportOptions { form: DynamicForm::Experts, batch: None, decode: true, flip: false };
        let out = run_tract(&export(&net, INPUT, &Purpose::Classify, &opts, vec![]).unwrap(), &x, n);
        assert!(max_rel(&out[0].1, &want) < 1e-4, "{arch}: logits");
        for row in out[1].1.chunks(7) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{arch}: probabilities sum to 1");
        }
    }
}

#[test]
fn what_a_network_cannot_do_is_refused() {
    let dev: Cpu = Default::default();
    let model = dypose::config::ClassifierModel {
        arch: Arch::Resnet10,
        width: 0.25,
        kernels: 4,
        dynamic_shortcut: false,
        classes: 3,
        input_size: INPUT,
        class_names: vec![],
        classifier_hidden: None,
    };
    let net = Network::new(&dev, &Blueprint::classifier(&model).unwrap(), 0);
    let flip = ExportOptions { form: DynamicForm::Experts, batch: None, decode: true, flip: true };
    let e = export(&net, INPUT, &Purpose::Classify, &flip, vec![]).unwrap_err().to_string();
    assert!(e.contains("not classifiers"), "{e}");
    let codec = CenterCodec { input: INPUT, output: Size::new(16, 24), gaussian_alpha: 0.54 };
    let detector = network(&pose_blueprint(Arch::Resnet10, 0.25, false, 5), 1, 1.0);
    let purpose = Purpose::Detect { codec, top_k: 10, min_score: 0.1 };
    let raw_flip = ExportOptions { decode: false, ..flip };
    let e = export(&detector, INPUT, &purpose, &raw_flip, vec![]).unwrap_err().to_string();
    assert!(e.contains("--decode"), "{e}");
    let zero = ExportOptions { batch: Some(0), ..flip };
    assert!(export(&detector, INPUT, &purpose, &zero, vec![]).is_err(), "batch 0");
}
