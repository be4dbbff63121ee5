//! Skeletons on images: limbs in their side colours, joints as dots, the person's box and score.
//! Every line, dot, box and label is clipped to the canvas in floating point before it is
//! rasterised, and non-finite points are skipped, so a joint at 1e9 or 3e38 costs no more than
//! one on the canvas (a rasteriser walks a line pixel by pixel, off the canvas too).

use super::text;
use crate::coco::{KeypointSpec, Side};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_line_segment_mut};
use imageproc::point::Point;

pub const LEFT: Rgb<u8> = Rgb([255, 140, 0]);
pub const RIGHT: Rgb<u8> = Rgb([30, 144, 255]);
pub const CENTRE: Rgb<u8> = Rgb([50, 205, 50]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

/// Colour of a joint: its side in the keypoint set's flip pairs.
pub fn joint_colour(spec: &KeypointSpec, j: usize) -> Rgb<u8> {
    match spec.side(j) {
        Side::Left => LEFT,
        Side::Right => RIGHT,
        Side::Centre => CENTRE,
    }
}

/// Colour of a limb: left if both ends are left joints, right if both are right, else centre.
pub fn limb_colour(spec: &KeypointSpec, a: usize, b: usize) -> Rgb<u8> {
    match (spec.side(a), spec.side(b)) {
        (Side::Left, Side::Left) => LEFT,
        (Side::Right, Side::Right) => RIGHT,
        _ => CENTRE,
    }
}

/// The part of segment p–q inside the box `[x0, y0, x1, y1]` (Liang–Barsky), or `None` when
/// it misses the box or a coordinate is not finite. The ends are clamped into the box: far
/// outside it (3e38) rounding moves the computed crossing, never the cost of drawing it.
pub fn clip_segment(p: [f64; 2], q: [f64; 2], [x0, y0, x1, y1]: [f64; 4]) -> Option<([f64; 2], [f64; 2])> {
    if !(p.iter().chain(&q).all(|v| v.is_finite())) {
        return None;
    }
    let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (step, room) in [(-dx, p[0] - x0), (dx, x1 - p[0]), (-dy, p[1] - y0), (dy, y1 - p[1])] {
        if step == 0.0 {
            if room < 0.0 {
                return None;
            }
        } else {
            let t = room / step;
            if step < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    let at = |t: f64| [(p[0] + t * dx).clamp(x0, x1), (p[1] + t * dy).clamp(y0, y1)];
    (t0 <= t1).then(|| (at(t0), at(t1)))
}

/// The canvas grown by `margin` pixels on every side.
fn canvas(img: &RgbImage, margin: f64) -> [f64; 4] {
    [-margin, -margin, img.width() as f64 + margin, img.height() as f64 + margin]
}

/// A limb `thickness` pixels wide: a filled quad (parallel 1-px lines would leave holes along
/// diagonal limbs) around the 1-px line, both clipped to the canvas.
fn draw_limb(img: &mut RgbImage, p: [f64; 2], q: [f64; 2], thickness: f64, colour: Rgb<u8>) {
    let half = (thickness / 2.0).max(0.5);
    let Some((p, q)) = clip_segment(p, q, canvas(img, half + 2.0)) else { return };
    let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
    let len = (dx * dx + dy * dy).sqrt().max(1e-3);
    let (nx, ny) = (-dy / len * half, dx / len * half);
    let corners = [[p[0] + nx, p[1] + ny], [q[0] + nx, q[1] + ny], [q[0] - nx, q[1] - ny], [p[0] - nx, p[1] - ny]];
    let poly: Vec<Point<i32>> = corners.iter().map(|c| Point::new(c[0].round() as i32, c[1].round() as i32)).collect();
    if thickness >= 2.0 && poly[0] != poly[3] && poly[1] != poly[2] && poly[0] != poly[1] {
        imageproc::drawing::draw_polygon_mut(img, &poly, colour);
    }
    draw_line_segment_mut(img, (p[0] as f32, p[1] as f32), (q[0] as f32, q[1] as f32), colour);
}

/// A dot of radius `r` with a white ring, when it touches the canvas.
fn draw_dot(img: &mut RgbImage, at: [f64; 2], r: i32, colour: Rgb<u8>) {
    let [x0, y0, x1, y1] = canvas(img, r as f64 + 2.0);
    if !(at[0] >= x0 && at[0] <= x1 && at[1] >= y0 && at[1] <= y1) {
        return; // off the canvas, or not a number
    }
    let c = (at[0].round() as i32, at[1].round() as i32);
    draw_filled_circle_mut(img, c, r + 1, WHITE);
    draw_filled_circle_mut(img, c, r, colour);
}

/// Draws limbs between shown joints and a dot per shown joint; `thickness` in pixels.
pub fn draw_skeleton(img: &mut RgbImage, keypoints: &[[f32; 2]], shown: &[bool], spec: &KeypointSpec, thickness: f32) {
    let at = |j: usize| [keypoints[j][0] as f64, keypoints[j][1] as f64];
    for &[a, b] in &spec.limbs {
        if shown[a] && shown[b] {
            draw_limb(img, at(a), at(b), thickness as f64, limb_colour(spec, a, b));
        }
    }
    let r = (thickness * 0.9).round().max(1.0) as i32;
    for j in (0..keypoints.len()).filter(|&j| shown[j]) {
        draw_dot(img, at(j), r, joint_colour(spec, j));
    }
}

/// One person to draw: `[x, y, score]` per joint (image pixels), optional box and score label.
pub struct Pose<'a> {
    pub keypoints: &'a [[f64; 3]],
    pub bbox: Option<[f64; 4]>,
    pub score: Option<f64>,
}

/// The outline of box `[x, y, w, h]`, clipped to the canvas; its score on a label above it.
pub fn draw_box(img: &mut RgbImage, b: [f64; 4], score: Option<f64>) {
    let [x, y, w, h] = b;
    let corners = [[x, y], [x + w, y], [x + w, y + h], [x, y + h]];
    for i in 0..4 {
        if let Some((p, q)) = clip_segment(corners[i], corners[(i + 1) % 4], canvas(img, 2.0)) {
            draw_line_segment_mut(img, (p[0] as f32, p[1] as f32), (q[0] as f32, q[1] as f32), WHITE);
        }
    }
    let [x0, y0, x1, y1] = canvas(img, 40.0);
    if let Some(s) = score.filter(|_| x >= x0 && x <= x1 && y >= y0 && y <= y1) {
        let (lx, ly) = (x.round() as i32, y.round() as i32 - 16);
        text::label(img, &format!("{s:.2}"), lx, ly, 13.0, Rgb([0, 0, 0]), WHITE);
    }
}

/// Draws a person: limbs and joints scoring at least `min_joint_score` (line width and dot size
/// follow the person's size), the box, and the score on a label.
pub fn draw_pose(img: &mut RgbImage, pose: &Pose, spec: &KeypointSpec, min_joint_score: f64) {
    let shown: Vec<bool> = pose.keypoints.iter().map(|k| k[2] >= min_joint_score).collect();
    let pts: Vec<[f32; 2]> = pose.keypoints.iter().map(|k| [k[0] as f32, k[1] as f32]).collect();
    let extent = pose.bbox.map(|b| b[2].max(b[3])).unwrap_or_else(|| {
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for k in pose.keypoints.iter().zip(&shown).filter(|(_, s)| **s).map(|(k, _)| k) {
            lo = [lo[0].min(k[0]), lo[1].min(k[1])];
            hi = [hi[0].max(k[0]), hi[1].max(k[1])];
        }
        (hi[0] - lo[0]).max(hi[1] - lo[1])
    });
    let extent = if extent.is_finite() { extent.max(0.0) } else { 0.0 };
    let thickness = (extent / 60.0).clamp(1.0, 6.0) as f32;
    if let Some(b) = pose.bbox {
        draw_box(img, b, pose.score);
    }
    draw_skeleton(img, &pts, &shown, spec, thickness);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limb_colours_follow_the_flip_pairs() {
        let spec = KeypointSpec::coco17();
        assert_eq!(limb_colour(&spec, 15, 13), LEFT);
        assert_eq!(limb_colour(&spec, 16, 14), RIGHT);
        assert_eq!(limb_colour(&spec, 5, 6), CENTRE);
        assert_eq!(limb_colour(&spec, 0, 1), CENTRE);
        // Names play no part: a set whose pair is (b, a) colours b left and a right.
        let tips = KeypointSpec {
            name: "tips".into(),
            keypoints: vec!["a".into(), "b".into(), "c".into()],
            flip_pairs: vec![[1, 0]],
            sigmas: None,
            limbs: vec![[0, 2], [1, 2]],
            upper_body: Vec::new(),
        };
        assert_eq!((joint_colour(&tips, 1), joint_colour(&tips, 0), joint_colour(&tips, 2)), (LEFT, RIGHT, CENTRE));
    }

    #[test]
    fn skeleton_pixels_take_the_limb_colour() {
        let spec = KeypointSpec::coco17();
        let mut img = RgbImage::new(100, 100);
        let mut kp = vec![[0.0f32, 0.0]; 17];
        kp[13] = [20.0, 20.0];
        kp[15] = [20.0, 80.0];
        let mut shown = vec![false; 17];
        shown[13] = true;
        shown[15] = true;
        draw_skeleton(&mut img, &kp, &shown, &spec, 3.0);
        assert_eq!(*img.get_pixel(20, 50), LEFT, "mid-limb");
        assert_eq!(*img.get_pixel(60, 50), Rgb([0, 0, 0]), "away from the limb");
        assert_eq!(*img.get_pixel(20, 20), LEFT, "joint dot");
    }

    #[test]
    fn segments_are_clipped_to_the_box_exactly() {
        let b = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(clip_segment([-10.0, 5.0], [20.0, 5.0], b), Some(([0.0, 5.0], [10.0, 5.0])));
        let (p, q) = clip_segment([-1e9, -1e9], [1e9, 1e9], b).unwrap();
        // From 1e9 away the crossing is computed to within the rounding of 1e9 (1.2e-7).
        assert!(p.iter().all(|v| v.abs() < 1e-6) && q.iter().all(|v| (v - 10.0).abs() < 1e-6), "{p:?} {q:?}");
        let (p, q) = clip_segment([-3e38, 5.0], [3e38, -5.0], b).unwrap();
        assert!(p.iter().chain(&q).all(|v| (0.0..=10.0).contains(v)), "always inside the box: {p:?} {q:?}");
        assert_eq!(clip_segment([2.0, 3.0], [4.0, 5.0], b), Some(([2.0, 3.0], [4.0, 5.0])), "inside: unchanged");
        assert_eq!(clip_segment([-5.0, -5.0], [-1.0, 20.0], b), None, "left of the box");
        assert_eq!(clip_segment([3.0, 3.0], [f64::NAN, 3.0], b), None);
        assert_eq!(clip_segment([3.0, 3.0], [f64::INFINITY, 3.0], b), None);
        assert_eq!(clip_segment([5.0, 5.0], [5.0, 5.0], b), Some(([5.0, 5.0], [5.0, 5.0])), "a point");
    }

    #[test]
    fn far_and_non_finite_joints_draw_only_what_is_on_the_canvas() {
        // Two limbs of a three-joint set: one from far off the canvas across it, one to NaN.
        let spec = KeypointSpec {
            name: "t".into(),
            keypoints: vec!["left_a".into(), "left_b".into(), "c".into(), "right_a".into(), "right_b".into()],
            flip_pairs: vec![[0, 3], [1, 4]],
            sigmas: None,
            limbs: vec![[0, 1], [0, 2]],
            upper_body: Vec::new(),
        };
        let mut img = RgbImage::new(100, 100);
        let kps = [[-1e9, -1e9, 1.0], [1e9, 1e9, 1.0], [f64::NAN, 5.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]];
        let pose = Pose { keypoints: &kps, bbox: Some([-1e9, -1e9, 3e38, f64::INFINITY]), score: Some(0.5) };
        draw_pose(&mut img, &pose, &spec, 0.3);
        // The left limb crosses the canvas along its diagonal; nothing else is drawn.
        for t in [10, 50, 90] {
            assert_eq!(*img.get_pixel(t, t), LEFT, "diagonal at {t}");
        }
        assert_eq!(*img.get_pixel(80, 20), Rgb([0, 0, 0]), "off the limb");
        // At 3e38 (f32's limit) only the cost is bounded: this returns at once.
        let kps = [[-3e38, -3e38, 1.0], [3e38, 2e38, 1.0], [3e38, f64::NEG_INFINITY, 1.0], [0.0; 3], [0.0; 3]];
        let pose = Pose { keypoints: &kps, bbox: Some([-3e38, 3e38, 3e38, 3e38]), score: Some(0.5) };
        draw_pose(&mut img, &pose, &spec, 0.3);
    }
}
