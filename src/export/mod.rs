//! A trained network as one ONNX file that a deployment can use with nothing else: batch norm
//! folded into the convolutions, dynamic convolution in standard operators, optionally the
//! decoding (and the flip test) inside the graph, and what the input and outputs mean in the
//! model's metadata. Plain Rust over the message types of the official `onnx.proto`.

pub mod decode;
pub mod graph;
pub mod network;
pub mod npy;
pub mod proto;

pub use network::DynamicForm;

use crate::config::Size;
use crate::data::center::CenterCodec;
use crate::data::codec::{Decoding, HeatmapCodec};
use crate::model::backend::ConvBackend;
use crate::model::network::Network;
use anyhow::{ensure, Result};
use graph::{value_info, Graph, Value};
use network::OnnxTrace;
use prost::Message;
use proto::tensor_proto::DataType;

/// The operator set the graphs use: 17, which current onnxruntime, TensorRT, OpenVINO and tract
/// releases take (onnxruntime since 1.12).
pub const OPSET: i64 = 17;
/// The ONNX IR version of opset 17.
const IR_VERSION: i64 = 8;

/// How to write the graph.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExportOptions {
    pub form: DynamicForm,
    /// A fixed batch size; `None` leaves the batch dynamic (the `grouped` form needs one: 1 when
    /// none is given).
    pub batch: Option<usize>,
    /// Post-processing in the graph: joints and scores, boxes, or class probabilities.
    pub decode: bool,
    /// The flip test in the graph: each input also runs mirrored, and the two are merged as
    /// `dypose predict` merges them.
    pub flip: bool,
}

/// What the network computes, with what its decoding needs.
#[derive(Debug, Clone)]
pub enum Purpose {
    /// Keypoint heatmaps of person crops.
    Pose { codec: HeatmapCodec, decoding: Decoding, flip_permutation: Vec<usize> },
    /// The person detector's five maps.
    Detect { codec: CenterCodec, top_k: usize, min_score: f64 },
    /// Class scores.
    Classify,
}

/// One graph output: its name, element type, dimensions after the batch, and meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub name: &'static str,
    pub dims: Vec<usize>,
    pub int64: bool,
    pub meaning: String,
}

/// The ONNX model of `net` for inputs of `input` size, as bytes, with `metadata` added to what
/// the exporter states itself (input, normalisation, outputs, form).
pub fn export<D: ConvBackend>(
    net: &Network<D>,
    input: Size,
    purpose: &Purpose,
    opts: &ExportOptions,
    metadata: Vec<(String, String)>,
) -> Result<Vec<u8>> {
    let batch = graph_batch(opts, net.blueprint.is_dynamic());
    ensure!(batch != Some(0), "the batch size must be at least 1");
    ensure!(
        !(opts.flip && matches!(purpose, Purpose::Classify)),
        "the flip test is for pose models and detectors, not classifiers"
    );
    ensure!(
        !(opts.flip && !opts.decode && matches!(purpose, Purpose::Detect { .. })),
        "a detector's flip test averages probabilities: export it with --decode"
    );
    let mut g = Graph::default();
    let x = Value { name: g.fresh("input"), batch, dims: vec![3, input.height, input.width] };
    let net_input = if opts.flip { decode::with_mirrored(&mut g, &x) } else { x.clone() };
    let mut trace = OnnxTrace { graph: &mut g, form: opts.form };
    let outputs = match purpose {
        Purpose::Classify => {
            let logits = net.trace_logits(net_input, &mut trace);
            classifier_outputs(&mut g, &logits, opts.decode)
        }
        Purpose::Pose { codec, decoding, flip_permutation } => {
            let mut maps = net.trace_maps(net_input, &mut trace);
            if opts.flip {
                maps = decode::merge_flipped_heatmaps(&mut g, &maps, flip_permutation);
            }
            pose_outputs(&mut g, &maps, codec, *decoding, opts.decode)
        }
        Purpose::Detect { codec, top_k, min_score } => {
            let maps = net.trace_maps(net_input, &mut trace);
            detector_outputs(&mut g, &maps, codec, *top_k, *min_score, opts)
        }
    };
    let outputs_info = outputs
        .iter()
        .map(|o| {
            let dims: Vec<Option<usize>> = std::iter::once(batch).chain(o.dims.iter().map(|&d| Some(d))).collect();
            value_info(o.name, if o.int64 { DataType::Int64 } else { DataType::Float }, &dims)
        })
        .collect();
    let input_dims: Vec<Option<usize>> = std::iter::once(batch).chain(x.dims.iter().map(|&d| Some(d))).collect();
    let graph = g.finish("dypose", vec![value_info(&x.name, DataType::Float, &input_dims)], outputs_info);
    let mut props = own_metadata(input, &outputs, opts, batch);
    props.extend(metadata);
    let model = proto::ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![proto::OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
        producer_name: Some("dypose".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        metadata_props: props
            .into_iter()
            .map(|(key, value)| proto::StringStringEntryProto { key: Some(key), value: Some(value) })
            .collect(),
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

/// The batch a graph is fixed to (`None`: dynamic). The `grouped` form fixes it (1 unless
/// `opts.batch` says otherwise) where the network has dynamic convolutions; a static network is
/// the same graph in every form, and keeps its batch dynamic unless asked.
pub fn graph_batch(opts: &ExportOptions, dynamic: bool) -> Option<usize> {
    match opts.form {
        DynamicForm::Grouped if dynamic => Some(opts.batch.unwrap_or(1)),
        _ => opts.batch,
    }
}

/// Renames `value` to the output name `name` (which nothing else in the graph uses).
fn output(g: &mut Graph, value: &str, name: &'static str) {
    let out = g.node("Identity", &[value], vec![], name);
    assert_eq!(out, name, "output names are used by nothing else");
}

fn classifier_outputs(g: &mut Graph, logits: &Value, decode: bool) -> Vec<Output> {
    let n = logits.dims[0];
    let mut outs = vec![Output { name: "logits", dims: vec![n], int64: false, meaning: "class scores".into() }];
    output(g, &logits.name, "logits");
    if decode {
        let p = g.node("Softmax", &[&logits.name], vec![("axis", graph::Attr::Int(1))], "softmax");
        output(g, &p, "probabilities");
        outs.push(Output {
            name: "probabilities",
            dims: vec![n],
            int64: false,
            meaning: "softmax of the logits".into(),
        });
    }
    outs
}

fn pose_outputs(g: &mut Graph, maps: &Value, codec: &HeatmapCodec, decoding: Decoding, decode: bool) -> Vec<Output> {
    let j = maps.dims[0];
    let mut outs = vec![Output {
        name: "heatmaps",
        dims: maps.dims.clone(),
        int64: false,
        meaning: "one heatmap per joint, at a quarter of the input size".into(),
    }];
    output(g, &maps.name, "heatmaps");
    if decode {
        let (k, s) = decode::decode_heatmaps(g, maps, codec, decoding);
        output(g, &k, "keypoints");
        output(g, &s, "scores");
        outs.push(Output {
            name: "keypoints",
            dims: vec![j, 2],
            int64: false,
            meaning: format!("x, y of each joint in input pixels ({decoding} decoding)"),
        });
        outs.push(Output {
            name: "scores",
            dims: vec![j],
            int64: false,
            meaning: "each joint's heatmap maximum".into(),
        });
    }
    outs
}

fn detector_outputs(
    g: &mut Graph,
    maps: &Value,
    codec: &CenterCodec,
    top_k: usize,
    min_score: f64,
    opts: &ExportOptions,
) -> Vec<Output> {
    if !opts.decode {
        let meaning = "centre-heatmap logits, then ln distances (cells) to the box's left, top, right, bottom";
        let outs = vec![Output { name: "maps", dims: maps.dims.clone(), int64: false, meaning: meaning.into() }];
        output(g, &maps.name, "maps");
        return outs;
    }
    let k = top_k.min(maps.dims[1] * maps.dims[2]);
    let (boxes, scores, count) = decode::decode_boxes(g, maps, codec, top_k, min_score, opts.flip);
    output(g, &boxes, "boxes");
    output(g, &scores, "scores");
    output(g, &count, "num_detections");
    let outs = vec![
        Output {
            name: "boxes",
            dims: vec![k, 4],
            int64: false,
            meaning: "x, y, width, height in input pixels, best first; rows past num_detections are zeros".into(),
        },
        Output { name: "scores", dims: vec![k], int64: false, meaning: "each box's centre score".into() },
        Output { name: "num_detections", dims: vec![], int64: true, meaning: "boxes found in each image".into() },
    ];
    outs
}

/// A JSON list of f32 values in their shortest exact form (0.485, not 0.48500001430511475).
fn shortest(v: &[f32]) -> String {
    format!("[{}]", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "))
}

/// What the exporter itself states about the input and the outputs.
fn own_metadata(input: Size, outputs: &[Output], opts: &ExportOptions, batch: Option<usize>) -> Vec<(String, String)> {
    let [m, s] = [crate::data::warp::MEAN, crate::data::warp::STD];
    let outs: Vec<serde_json::Value> =
        outputs.iter().map(|o| serde_json::json!({"name": o.name, "shape": o.dims, "meaning": o.meaning})).collect();
    vec![
        ("dypose_version".into(), env!("CARGO_PKG_VERSION").into()),
        ("input".into(), "input".into()),
        ("input_layout".into(), "NCHW, RGB".into()),
        ("input_width".into(), input.width.to_string()),
        ("input_height".into(), input.height.to_string()),
        ("batch".into(), batch.map_or_else(|| "dynamic".into(), |b| b.to_string())),
        ("normalization".into(), "(pixel / 255 - mean) / std per channel".into()),
        ("mean".into(), shortest(&m)),
        ("std".into(), shortest(&s)),
        ("outputs".into(), serde_json::Value::Array(outs).to_string()),
        ("dynamic_form".into(), opts.form.to_string()),
        ("flip_test".into(), opts.flip.to_string()),
    ]
}
