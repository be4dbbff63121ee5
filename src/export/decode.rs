//! Post-processing inside the graph, computed as dypose computes it (the same float widths in
//! the same order, so that an exported model's outputs match `dypose predict`'s): the flip
//! test, heatmaps → joints (quarter-offset or DARK), the detector's maps → boxes.

use super::graph::{Attr, Graph, Value};
use crate::data::center::CenterCodec;
use crate::data::codec::{Decoding, HeatmapCodec};

/// ONNX's element types as `Cast` names them.
const FLOAT: i64 = 1;
const INT64: i64 = 7;
const DOUBLE: i64 = 11;

fn cast(g: &mut Graph, x: &str, to: i64, hint: &str) -> String {
    g.node("Cast", &[x], vec![("to", Attr::Int(to))], hint)
}

fn binary(g: &mut Graph, op: &str, a: &str, b: &str, hint: &str) -> String {
    g.node(op, &[a, b], vec![], hint)
}

/// `x` mirrored left to right (the last axis, `width` wide).
pub fn mirror(g: &mut Graph, x: &str, width: usize, hint: &str) -> String {
    let rev = g.ints("mirror_index", &(0..width as i64).rev().collect::<Vec<_>>());
    g.node("Gather", &[x, &rev], vec![("axis", Attr::Int(3))], hint)
}

/// The flip test's input: the images and their mirror images, one batch after the other.
pub fn with_mirrored(g: &mut Graph, input: &Value) -> Value {
    let m = mirror(g, &input.name, input.dims[2], "input_mirrored");
    let both = g.node("Concat", &[&input.name, &m], vec![("axis", Attr::Int(0))], "input_and_mirrored");
    Value { name: both, batch: input.batch.map(|b| 2 * b), dims: input.dims.clone() }
}

/// Splits maps of [`with_mirrored`] inputs into (plain, mirrored) halves.
fn halves(g: &mut Graph, maps: &Value) -> (String, String) {
    let mut h = g.node_n("Split", &[&maps.name], vec![("axis", Attr::Int(0))], &["maps_plain", "maps_mirrored"]);
    let b = h.pop().expect("two halves");
    (h.pop().expect("two halves"), b)
}

/// The pose flip test: the mirror's heatmaps flipped back, their left and right joints swapped
/// (`permutation`), shifted one heatmap pixel right, averaged with the plain ones.
pub fn merge_flipped_heatmaps(g: &mut Graph, maps: &Value, permutation: &[usize]) -> Value {
    let (plain, mirrored) = halves(g, maps);
    let w = maps.dims[2] as i64;
    let perm = g.ints("flip_permutation", &permutation.iter().map(|&p| p as i64).collect::<Vec<_>>());
    let swapped = g.node("Gather", &[&mirrored, &perm], vec![("axis", Attr::Int(1))], "maps_swapped");
    // back[x] = row[w − 1 − x], shifted right: out[0] = back[0] = row[w − 1], out[x] = row[w − x].
    let shift: Vec<i64> = (0..w).map(|x| if x == 0 { w - 1 } else { w - x }).collect();
    let shift = g.ints("flip_back_index", &shift);
    let back = g.node("Gather", &[&swapped, &shift], vec![("axis", Attr::Int(3))], "maps_flipped_back");
    let sum = binary(g, "Add", &plain, &back, "maps_sum");
    let half = g.scalar("half", 0.5);
    let merged = binary(g, "Mul", &sum, &half, "heatmaps_merged");
    Value { name: merged, batch: maps.batch.map(|b| b / 2), dims: maps.dims.clone() }
}

/// Joints (B, J, 2) in input pixels and their scores (B, J) from heatmaps (B, J, h, w), as
/// `HeatmapCodec::decode` reads them.
pub fn decode_heatmaps(g: &mut Graph, maps: &Value, codec: &HeatmapCodec, method: Decoding) -> (String, String) {
    let (j, h, w) = (maps.dims[0] as i64, maps.dims[1] as i64, maps.dims[2] as i64);
    let b = maps.batch_dim();
    let flat = g.reshape(&maps.name, &[b, j, h * w], "heatmaps_flat");
    let argmax = vec![("axis", Attr::Int(2)), ("keepdims", Attr::Int(1))];
    let idx = g.node("ArgMax", &[&flat], argmax, "peak_index");
    let score =
        g.node("ReduceMax", &[&flat], vec![("axes", Attr::Ints(vec![2])), ("keepdims", Attr::Int(1))], "peak_score");
    let wi = g.i64s("map_width", &[], vec![w]);
    let py = binary(g, "Div", &idx, &wi, "peak_y");
    let row = binary(g, "Mul", &py, &wi, "peak_row_start");
    let px = binary(g, "Sub", &idx, &row, "peak_x");
    let (pxf, pyf) = (cast(g, &px, FLOAT, "peak_x_f"), cast(g, &py, FLOAT, "peak_y_f"));
    let (ox, oy) = match method {
        Decoding::Quarter => quarter_offsets(g, &flat, &idx, [&px, &py], [w, h]),
        Decoding::Dark => dark_offsets(g, maps, &idx, [&px, &py], codec.sigma),
    };
    let x = binary(g, "Add", &pxf, &ox, "joint_x_cells");
    let y = binary(g, "Add", &pyf, &oy, "joint_y_cells");
    // No positive peak: (0, 0), as the codec says.
    let zero = g.scalar("zero", 0.0);
    let positive = binary(g, "Greater", &score, &zero, "peak_positive");
    let stride = codec.stride();
    let mut coords = Vec::new();
    for (v, s, axis) in [(x, stride[0], "x"), (y, stride[1], "y")] {
        let v = g.node("Where", &[&positive, &v, &zero], vec![], &format!("joint_{axis}_or_zero"));
        let s = g.scalar(&format!("stride_{axis}"), s);
        coords.push(binary(g, "Mul", &v, &s, &format!("joint_{axis}")));
    }
    let keypoints = g.node("Concat", &[&coords[0], &coords[1]], vec![("axis", Attr::Int(2))], "keypoints_decoded");
    let scores = g.reshape(&score, &[b, j], "joint_scores");
    (keypoints, scores)
}

/// Values of `flat` (B, J, n) at `idx` + each offset (clamped into the map), one output each.
fn neighbours(g: &mut Graph, flat: &str, idx: &str, offsets: &[i64], n: i64, hint: &str) -> Vec<String> {
    let off = g.i64s(&format!("{hint}_offsets"), &[1, 1, offsets.len()], offsets.to_vec());
    let at = binary(g, "Add", idx, &off, &format!("{hint}_index"));
    let (lo, hi) = (g.i64s("index_zero", &[], vec![0]), g.i64s(&format!("{hint}_last"), &[], vec![n - 1]));
    let at = binary(g, "Max", &at, &lo, &format!("{hint}_index_low"));
    let at = binary(g, "Min", &at, &hi, &format!("{hint}_index_clamped"));
    let values = g.node("GatherElements", &[flat, &at], vec![("axis", Attr::Int(2))], hint);
    let hints: Vec<String> = (0..offsets.len()).map(|i| format!("{hint}_{i}")).collect();
    let hints: Vec<&str> = hints.iter().map(String::as_str).collect();
    g.node_n("Split", &[&values], vec![("axis", Attr::Int(2))], &hints)
}

/// `a < x < b` for an int64 tensor and two constants.
fn between(g: &mut Graph, x: &str, a: i64, b: i64, hint: &str) -> String {
    let (ca, cb) = (g.i64s(&format!("{hint}_low"), &[], vec![a]), g.i64s(&format!("{hint}_high"), &[], vec![b]));
    let above = binary(g, "Greater", x, &ca, &format!("{hint}_above"));
    let below = binary(g, "Less", x, &cb, &format!("{hint}_below"));
    binary(g, "And", &above, &below, hint)
}

/// A quarter cell towards the higher neighbour, away from the border.
fn quarter_offsets(g: &mut Graph, flat: &str, idx: &str, [px, py]: [&str; 2], [w, h]: [i64; 2]) -> (String, String) {
    let n = neighbours(g, flat, idx, &[1, -1, w, -w], w * h, "quarter");
    let inside_x = between(g, px, 1, w - 1, "quarter_inside_x");
    let inside_y = between(g, py, 1, h - 1, "quarter_inside_y");
    let inside = binary(g, "And", &inside_x, &inside_y, "quarter_inside");
    let (quarter, zero) = (g.scalar("quarter", 0.25), g.scalar("zero", 0.0));
    let mut out = Vec::new();
    for (hi, lo, axis) in [(&n[0], &n[1], "x"), (&n[2], &n[3], "y")] {
        let d = binary(g, "Sub", hi, lo, &format!("quarter_d{axis}"));
        let s = g.node("Sign", &[&d], vec![], &format!("quarter_sign_{axis}"));
        let s = binary(g, "Mul", &quarter, &s, &format!("quarter_step_{axis}"));
        out.push(g.node("Where", &[&inside, &s, &zero], vec![], &format!("offset_{axis}")));
    }
    let y = out.pop().expect("two offsets");
    (out.pop().expect("two offsets"), y)
}

/// DARK's offsets, in f64 as the codec computes them: the map blurred by the separable Gaussian
/// (as two MatMuls with band matrices, zero border), rescaled to its maximum, logged; then
/// −H⁻¹·∇ at the peak from finite differences; zero near the border or for a flat Hessian.
fn dark_offsets(g: &mut Graph, maps: &Value, idx: &str, [px, py]: [&str; 2], sigma: f32) -> (String, String) {
    let (h, w) = (maps.dims[1] as i64, maps.dims[2] as i64);
    let flat = dark_log_maps(g, maps, sigma);
    // Neighbours: centre, x ± 1, x ± 2, y ± 1, y ± 2, and the four diagonals.
    let offsets = [0, 1, -1, 2, -2, w, -w, 2 * w, -2 * w, w + 1, w - 1, -w + 1, -w - 1];
    let l = neighbours(g, &flat, idx, &offsets, w * h, "dark");
    let (ox, oy, det) = dark_step(g, std::array::from_fn(|i| l[i].as_str()));
    // Used only 2 cells or more from the border, and where the Hessian is not flat.
    let inside_x = between(g, px, 1, w - 2, "dark_inside_x");
    let inside_y = between(g, py, 1, h - 2, "dark_inside_y");
    let inside = binary(g, "And", &inside_x, &inside_y, "dark_inside");
    let zero = g.f64s("zero_f64", &[], vec![0.0]);
    let flat_h = binary(g, "Equal", &det, &zero, "dark_flat");
    let curved = g.node("Not", &[&flat_h], vec![], "dark_curved");
    let ok = binary(g, "And", &inside, &curved, "dark_usable");
    let mut out = Vec::new();
    for (o, axis) in [(ox, "x"), (oy, "y")] {
        let o = g.node("Where", &[&ok, &o, &zero], vec![], &format!("dark_offset_{axis}_f64"));
        out.push(cast(g, &o, FLOAT, &format!("offset_{axis}")));
    }
    let y = out.pop().expect("two offsets");
    (out.pop().expect("two offsets"), y)
}

/// The log of each map blurred by DARK's Gaussian and rescaled to its maximum, in f64,
/// flattened to (B, J, h·w).
fn dark_log_maps(g: &mut Graph, maps: &Value, sigma: f32) -> String {
    let (j, h, w) = (maps.dims[0] as i64, maps.dims[1] as i64, maps.dims[2] as i64);
    let b = maps.batch_dim();
    let kernel = crate::data::codec::dark_blur_kernel(sigma);
    let r = (kernel.len() / 2) as i64;
    let band = |n: i64, transpose: bool| -> Vec<f64> {
        let mut m = vec![0.0; (n * n) as usize];
        for a in 0..n {
            for c in 0..n {
                // Row `a`, column `c`: tap a − c + r of a right factor, c − a + r of a left one.
                let t = if transpose { a - c + r } else { c - a + r };
                if (0..kernel.len() as i64).contains(&t) {
                    m[(a * n + c) as usize] = kernel[t as usize];
                }
            }
        }
        m
    };
    let d = cast(g, &maps.name, DOUBLE, "dark_maps");
    let right = g.f64s("dark_blur_x", &[w as usize, w as usize], band(w, true));
    let left = g.f64s("dark_blur_y", &[h as usize, h as usize], band(h, false));
    let blurred = binary(g, "MatMul", &d, &right, "dark_blur_rows");
    let blurred = binary(g, "MatMul", &left, &blurred, "dark_blurred");
    // Keep the maximum: × original max / blurred max, where the blurred max is positive.
    let max_of = |g: &mut Graph, x: &str, hint: &str| {
        g.node("ReduceMax", &[x], vec![("axes", Attr::Ints(vec![2, 3])), ("keepdims", Attr::Int(1))], hint)
    };
    let orig = max_of(g, &maps.name, "dark_original_max");
    let orig = cast(g, &orig, DOUBLE, "dark_original_max_f64");
    let new = max_of(g, &blurred, "dark_blurred_max");
    let (zero, one) = (g.f64s("zero_f64", &[], vec![0.0]), g.f64s("one_f64", &[], vec![1.0]));
    let ratio = binary(g, "Div", &orig, &new, "dark_ratio");
    let positive = binary(g, "Greater", &new, &zero, "dark_blurred_positive");
    let ratio = g.node("Where", &[&positive, &ratio, &one], vec![], "dark_scale");
    let scaled = binary(g, "Mul", &blurred, &ratio, "dark_rescaled");
    let floor = g.f64s("dark_floor", &[], vec![1e-10]);
    let floored = binary(g, "Max", &scaled, &floor, "dark_floored");
    let logs = g.node("Log", &[&floored], vec![], "dark_log");
    g.reshape(&logs, &[b, j, h * w], "dark_log_flat")
}

/// −H⁻¹·∇ of the log map from its values around the peak (centre, x ± 1, x ± 2, y ± 1, y ± 2,
/// then (x+1, y+1), (x−1, y+1), (x+1, y−1), (x−1, y−1)): the codec's expressions, operation by
/// operation. Returns (offset x, offset y, the Hessian's determinant).
fn dark_step(g: &mut Graph, l: [&str; 13]) -> (String, String, String) {
    let [c, xp, xm, xp2, xm2, yp, ym, yp2, ym2, pp, mp, pm, mm] = l;
    let (half, quarter, two) =
        (g.f64s("half_f64", &[], vec![0.5]), g.f64s("quarter_f64", &[], vec![0.25]), g.f64s("two_f64", &[], vec![2.0]));
    // The codec's expressions, operation by operation.
    let diff = |g: &mut Graph, a: &str, b: &str, hint: &str| {
        let d = binary(g, "Sub", a, b, &format!("{hint}_diff"));
        binary(g, "Mul", &half, &d, hint)
    };
    let second = |g: &mut Graph, a: &str, b: &str, hint: &str| {
        let c2 = binary(g, "Mul", &two, c, &format!("{hint}_centre"));
        let s = binary(g, "Sub", a, &c2, &format!("{hint}_partial"));
        let s = binary(g, "Add", &s, b, &format!("{hint}_sum"));
        binary(g, "Mul", &quarter, &s, hint)
    };
    let dx = diff(g, xp, xm, "dark_dx");
    let dy = diff(g, yp, ym, "dark_dy");
    let dxx = second(g, xp2, xm2, "dark_dxx");
    let dyy = second(g, yp2, ym2, "dark_dyy");
    let s = binary(g, "Sub", pp, mp, "dark_dxy_a");
    let s = binary(g, "Sub", &s, pm, "dark_dxy_b");
    let s = binary(g, "Add", &s, mm, "dark_dxy_c");
    let dxy = binary(g, "Mul", &quarter, &s, "dark_dxy");
    let (a, bb) = (binary(g, "Mul", &dxx, &dyy, "dark_det_a"), binary(g, "Mul", &dxy, &dxy, "dark_det_b"));
    let det = binary(g, "Sub", &a, &bb, "dark_det");
    // ox = −(dyy·dx − dxy·dy) / det, oy = −(−dxy·dx + dxx·dy) / det.
    let (a, bb) = (binary(g, "Mul", &dyy, &dx, "dark_ox_a"), binary(g, "Mul", &dxy, &dy, "dark_ox_b"));
    let ox = binary(g, "Sub", &a, &bb, "dark_ox_num");
    let ox = g.node("Neg", &[&ox], vec![], "dark_ox_neg");
    let ox = binary(g, "Div", &ox, &det, "dark_ox");
    let ndxy = g.node("Neg", &[&dxy], vec![], "dark_neg_dxy");
    let (a, bb) = (binary(g, "Mul", &ndxy, &dx, "dark_oy_a"), binary(g, "Mul", &dxx, &dy, "dark_oy_b"));
    let oy = binary(g, "Add", &a, &bb, "dark_oy_num");
    let oy = g.node("Neg", &[&oy], vec![], "dark_oy_neg");
    let oy = binary(g, "Div", &oy, &det, "dark_oy");
    (ox, oy, det)
}

/// The detector's maps (B, 5, h, w) → boxes (B, K, 4: x, y, w, h in input pixels), scores
/// (B, K) and the number of detections (B): as `CenterCodec::decode` after the detector's
/// sigmoid (and flip test). Rows past the count are zeros.
pub fn decode_boxes(
    g: &mut Graph,
    maps: &Value,
    codec: &CenterCodec,
    top_k: usize,
    min_score: f64,
    flip: bool,
) -> (String, String, String) {
    let (h, w) = (maps.dims[1] as i64, maps.dims[2] as i64);
    let (heat, regression, batch) = detector_maps(g, maps, flip);
    let b = batch.map_or(0, |b| b as i64);
    let k = top_k.min((h * w) as usize) as i64;
    let (scores, at, valid) = peaks(g, &heat, min_score, [b, h * w, k]);
    let boxes = boxes_at(g, &regression, &at, &valid, codec.stride(), [b, w, h * w, k]);
    let zero = g.scalar("zero", 0.0);
    let scores = g.node("Where", &[&valid, &scores, &zero], vec![], "box_scores");
    let count = cast(g, &valid, INT64, "detection_flags");
    let axis = g.ints("axis_1", &[1]);
    let count = g.node("ReduceSum", &[&count, &axis], vec![("keepdims", Attr::Int(0))], "detections_counted");
    (boxes, scores, count)
}

/// The centre probabilities (B, 1, h, w) and ln distances (B, 4, h, w) of the detector's maps,
/// with the flip test the mirror's averaged in (its left distance is the right one); and the
/// batch of the result.
fn detector_maps(g: &mut Graph, maps: &Value, flip: bool) -> (String, String, Option<usize>) {
    let w = maps.dims[2];
    let slice = |g: &mut Graph, x: &str, from: i64, to: i64, hint: &str| {
        let (s, e, a) = (g.ints("slice_start", &[from]), g.ints("slice_end", &[to]), g.ints("axis_1", &[1]));
        g.node("Slice", &[x, &s, &e, &a], vec![], hint)
    };
    let parts = |g: &mut Graph, x: &str, hint: &str| {
        let heat = slice(g, x, 0, 1, &format!("{hint}_heat_logits"));
        let heat = g.node("Sigmoid", &[&heat], vec![], &format!("{hint}_heat"));
        (heat, slice(g, x, 1, 5, &format!("{hint}_regression")))
    };
    if !flip {
        let (heat, reg) = parts(g, &maps.name, "maps");
        return (heat, reg, maps.batch);
    }
    let (plain, mirrored) = halves(g, maps);
    let (heat, reg) = parts(g, &plain, "plain");
    let (mheat, mreg) = parts(g, &mirrored, "mirrored");
    let perm = g.ints("box_flip_permutation", &[2, 1, 0, 3]);
    let mreg = g.node("Gather", &[&mreg, &perm], vec![("axis", Attr::Int(1))], "mirrored_regression_swapped");
    let half = g.scalar("half", 0.5);
    let avg = |g: &mut Graph, a: &str, m: &str, hint: &str| {
        let back = mirror(g, m, w, &format!("{hint}_back"));
        let s = binary(g, "Add", a, &back, &format!("{hint}_sum"));
        binary(g, "Mul", &s, &half, hint)
    };
    let heat = avg(g, &heat, &mheat, "heat");
    let reg = avg(g, &reg, &mreg, "regression");
    (heat, reg, maps.batch.map(|b| b / 2))
}

/// The `k` best cells that are the maximum of their 3×3 neighbourhood with a score of at least
/// `min_score` (compared in f64, as the codec does), best first (ties: the lower index, as the
/// codec's raster order): (scores, flat indices, valid) each (B, k); an invalid row is a cell
/// that is no such peak.
fn peaks(g: &mut Graph, heat: &str, min_score: f64, [b, hw, k]: [i64; 3]) -> (String, String, String) {
    let pool = vec![
        ("kernel_shape", Attr::Ints(vec![3, 3])),
        ("strides", Attr::Ints(vec![1, 1])),
        ("pads", Attr::Ints(vec![1, 1, 1, 1])),
    ];
    let pooled = g.node("MaxPool", &[heat], pool, "heat_neighbourhood_max");
    let peak = binary(g, "Equal", heat, &pooled, "heat_is_peak");
    let heat64 = cast(g, heat, DOUBLE, "heat_f64");
    let min = g.f64s("min_score", &[], vec![min_score]);
    let enough = binary(g, "GreaterOrEqual", &heat64, &min, "heat_enough");
    let keep = binary(g, "And", &peak, &enough, "heat_kept");
    let none = g.scalar("not_a_peak", -1.0);
    let scores = g.node("Where", &[&keep, heat, &none], vec![], "peak_scores");
    let scores = g.reshape(&scores, &[b, hw], "peak_scores_flat");
    let kc = g.ints("top_k", &[k]);
    let attrs = vec![("axis", Attr::Int(1)), ("largest", Attr::Int(1)), ("sorted", Attr::Int(1))];
    let mut top = g.node_n("TopK", &[&scores, &kc], attrs, &["top_scores", "top_index"]);
    let at = top.pop().expect("two outputs");
    let scores = top.pop().expect("two outputs");
    let floor = g.scalar("peak_floor", -0.5);
    let valid = binary(g, "Greater", &scores, &floor, "detection_valid");
    (scores, at, valid)
}

/// The boxes (B, k, 4) read at the cells `at` (B, k) of the ln-distance maps, as the codec
/// reads them in f64: cell centre ∓ exp(min(ln distance, 20)), times the stride; zeros where
/// not `valid`.
fn boxes_at(g: &mut Graph, regression: &str, at: &str, valid: &str, stride: f64, [b, w, hw, k]: [i64; 4]) -> String {
    let wi = g.i64s("map_width", &[], vec![w]);
    let row = binary(g, "Div", at, &wi, "box_cell_y");
    let start = binary(g, "Mul", &row, &wi, "box_row_start");
    let col = binary(g, "Sub", at, &start, "box_cell_x");
    let half = g.f64s("half_f64", &[], vec![0.5]);
    let cx = cast(g, &col, DOUBLE, "box_cell_x_f64");
    let cx = binary(g, "Add", &cx, &half, "box_centre_x");
    let cy = cast(g, &row, DOUBLE, "box_cell_y_f64");
    let cy = binary(g, "Add", &cy, &half, "box_centre_y");
    let reg = g.reshape(regression, &[b, 4, hw], "regression_flat");
    let at4 = g.reshape(at, &[b, 1, k], "top_index_row");
    let four = g.ints("four_rows", &[1, 4, 1]);
    let at4 = g.node("Expand", &[&at4, &four], vec![], "top_index_rows");
    let d = g.node("GatherElements", &[&reg, &at4], vec![("axis", Attr::Int(2))], "peak_log_distances");
    let d = cast(g, &d, DOUBLE, "peak_log_distances_f64");
    let cap = g.f64s("log_distance_cap", &[], vec![20.0]);
    let d = binary(g, "Min", &d, &cap, "peak_log_distances_capped");
    let d = g.node("Exp", &[&d], vec![], "peak_distances");
    let names = ["left", "top", "right", "bottom"].map(|s| format!("distance_{s}"));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let dist = g.node_n("Split", &[&d], vec![("axis", Attr::Int(1))], &names);
    let dist: Vec<String> = dist.iter().zip(&names).map(|(v, n)| g.reshape(v, &[b, k], &format!("{n}_flat"))).collect();
    let x0 = binary(g, "Sub", &cx, &dist[0], "box_x0");
    let y0 = binary(g, "Sub", &cy, &dist[1], "box_y0");
    let x1 = binary(g, "Add", &cx, &dist[2], "box_x1");
    let y1 = binary(g, "Add", &cy, &dist[3], "box_y1");
    let stride = g.f64s("box_stride", &[], vec![stride]);
    let bw = binary(g, "Sub", &x1, &x0, "box_w_cells");
    let bh = binary(g, "Sub", &y1, &y0, "box_h_cells");
    let zero64 = g.f64s("zero_f64", &[], vec![0.0]);
    let mut cols = Vec::new();
    for (v, n) in [(x0, "x"), (y0, "y"), (bw, "w"), (bh, "h")] {
        let v = binary(g, "Mul", &v, &stride, &format!("box_{n}_px"));
        let v = g.node("Where", &[valid, &v, &zero64], vec![], &format!("box_{n}_kept"));
        let v = cast(g, &v, FLOAT, &format!("box_{n}"));
        cols.push(g.reshape(&v, &[b, k, 1], &format!("box_{n}_column")));
    }
    let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    g.node("Concat", &refs, vec![("axis", Attr::Int(2))], "boxes_decoded")
}
