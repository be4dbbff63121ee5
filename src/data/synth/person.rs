//! COCO's stick persons: a standing pose with 17 joints, limbs drawn by side (left warm, right
//! cool), a head and the face's joints as dots.

use super::{pt, segment, BODY, HEAD, LEFT, NOSE, RIGHT};
use imageproc::drawing::{draw_filled_circle_mut, draw_polygon_mut};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A standing pose in body units (height 1, origin at the hip centre, y down), then limb angles.
pub fn random_pose(rng: &mut ChaCha8Rng, center: [f32; 2], height: f32, roll: f32) -> [[f32; 2]; 17] {
    let h = height;
    let mut p = [[0.0f32; 2]; 17];
    let lean: f32 = rng.random_range(-0.25..0.25);
    let up = [lean.sin(), -lean.cos()];
    let side = [-up[1], up[0]]; // the figure's left is the image's right (facing the camera)
    let add = |a: [f32; 2], d: [f32; 2], k: f32| [a[0] + d[0] * k, a[1] + d[1] * k];
    let hip_c = [0.0, 0.0];
    let sho_c = add(hip_c, up, 0.30 * h);
    let head = add(sho_c, up, 0.13 * h);
    let (sw, hw) = (rng.random_range(0.09..0.12) * h, rng.random_range(0.06..0.08) * h);
    p[5] = add(sho_c, side, sw);
    p[6] = add(sho_c, side, -sw);
    p[11] = add(hip_c, side, hw);
    p[12] = add(hip_c, side, -hw);
    let dir = |a: f32| [a.sin(), a.cos()]; // angle 0 points down
    for (s, e, w, sign) in [(5, 7, 9, 1.0f32), (6, 8, 10, -1.0)] {
        let a1 = lean + sign * rng.random_range(-0.4f32..2.6);
        let a2 = a1 + sign * rng.random_range(-0.3f32..2.2);
        p[e] = add(p[s], dir(a1), 0.16 * h);
        p[w] = add(p[e], dir(a2), 0.15 * h);
    }
    for (s, k, a, sign) in [(11, 13, 15, 1.0f32), (12, 14, 16, -1.0)] {
        let a1 = lean + sign * rng.random_range(-0.35f32..0.9);
        let a2 = a1 - sign * rng.random_range(0.0f32..1.2);
        p[k] = add(p[s], dir(a1), 0.23 * h);
        p[a] = add(p[k], dir(a2), 0.22 * h);
    }
    let yaw: f32 = rng.random_range(-0.4..0.4);
    p[0] = add(add(head, up, -0.02 * h), side, yaw * 0.03 * h);
    p[1] = add(add(head, up, 0.015 * h), side, (0.025 + yaw * 0.02) * h);
    p[2] = add(add(head, up, 0.015 * h), side, (-0.025 + yaw * 0.02) * h);
    p[3] = add(head, side, (0.055 - yaw * 0.01) * h);
    p[4] = add(head, side, (-0.055 - yaw * 0.01) * h);
    let (sr, cr) = roll.sin_cos();
    p.map(|q| [center[0] + q[0] * cr - q[1] * sr, center[1] + q[0] * sr + q[1] * cr])
}

/// The part mask of a figure (0 = not the figure).
pub fn figure_mask(w: u32, h: u32, p: &[[f32; 2]; 17], height: f32) -> image::GrayImage {
    let mut m = image::GrayImage::new(w, h);
    let t = (0.045 * height).max(2.0);
    let mid = |a: [f32; 2], b: [f32; 2]| [(a[0] + b[0]) * 0.5, (a[1] + b[1]) * 0.5];
    let torso = [pt(p[5]), pt(p[6]), pt(p[12]), pt(p[11])];
    if torso.windows(2).all(|w| w[0] != w[1]) && torso[0] != torso[3] {
        draw_polygon_mut(&mut m, &torso, image::Luma([BODY]));
    }
    let neck = mid(p[5], p[6]);
    let head = mid(p[3], p[4]);
    segment(&mut m, neck, head, t, BODY);
    for (a, b, code) in [
        (11, 13, LEFT),
        (13, 15, LEFT),
        (12, 14, RIGHT),
        (14, 16, RIGHT),
        (5, 7, LEFT),
        (7, 9, LEFT),
        (6, 8, RIGHT),
        (8, 10, RIGHT),
    ] {
        segment(&mut m, p[a], p[b], t, code);
    }
    let hr = (0.075 * height).max(2.0) as i32;
    draw_filled_circle_mut(&mut m, (pt(head).x, pt(head).y), hr, image::Luma([HEAD]));
    let dot = (0.014 * height).round().max(1.0) as i32;
    for (j, code) in [(0, NOSE), (1, LEFT), (2, RIGHT), (3, LEFT), (4, RIGHT)] {
        draw_filled_circle_mut(&mut m, (pt(p[j]).x, pt(p[j]).y), dot, image::Luma([code]));
    }
    m
}
