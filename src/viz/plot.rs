//! A small line chart: one series on a left axis, several on a right axis, tick labels.

use super::text;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_hollow_rect_mut, draw_line_segment_mut};

/// A named line: (name, points).
pub type Series<'a> = (&'a str, &'a [(f64, f64)]);

const W: u32 = 900;
const H: u32 = 450;
const L: f32 = 80.0;
const R: f32 = 820.0;
const T: f32 = 40.0;
const B: f32 = 390.0;
const INK: Rgb<u8> = Rgb([40, 40, 40]);
const LEFT_COLOUR: Rgb<u8> = Rgb([31, 119, 180]);
const RIGHT_COLOURS: [Rgb<u8>; 3] = [Rgb([255, 127, 14]), Rgb([44, 160, 44]), Rgb([214, 39, 40])];

fn range(points: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = points.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return None;
    }
    Some(if hi - lo < 1e-12 { (lo - 0.5, hi + 0.5) } else { (lo, hi) })
}

fn polyline(img: &mut RgbImage, pts: &[(f32, f32)], colour: Rgb<u8>) {
    for w in pts.windows(2) {
        draw_line_segment_mut(img, w[0], w[1], colour);
        draw_line_segment_mut(img, (w[0].0, w[0].1 + 1.0), (w[1].0, w[1].1 + 1.0), colour);
    }
    if pts.len() == 1 {
        imageproc::drawing::draw_filled_circle_mut(img, (pts[0].0 as i32, pts[0].1 as i32), 3, colour);
    }
}

/// `left`: (name, points); `right`: (axis name, named series). Points are (x, y).
pub fn two_axis_chart(title: &str, x_name: &str, left: (&str, &[(f64, f64)]), right: (&str, &[Series])) -> RgbImage {
    let mut img = RgbImage::from_pixel(W, H, Rgb([255, 255, 255]));
    let all_x = left.1.iter().chain(right.1.iter().flat_map(|s| s.1.iter())).map(|p| p.0);
    let (x0, x1) = range(all_x).unwrap_or((0.0, 1.0));
    let sx = |x: f64| L + (R - L) * ((x - x0) / (x1 - x0)) as f32;
    draw_hollow_rect_mut(
        &mut img,
        imageproc::rect::Rect::at(L as i32, T as i32).of_size((R - L) as u32, (B - T) as u32),
        INK,
    );
    text::draw(&mut img, title, L as i32, 10, 18.0, INK);
    text::draw(&mut img, x_name, ((L + R) / 2.0) as i32 - 30, (B + 30.0) as i32, 14.0, INK);
    for k in 0..=4 {
        let x = x0 + (x1 - x0) * k as f64 / 4.0;
        text::draw(&mut img, &format!("{x:.0}"), sx(x) as i32 - 12, (B + 6.0) as i32, 13.0, INK);
    }
    if let Some((y0, y1)) = range(left.1.iter().map(|p| p.1)) {
        let sy = |y: f64| B - (B - T) * ((y - y0) / (y1 - y0)) as f32;
        for k in 0..=4 {
            let y = y0 + (y1 - y0) * k as f64 / 4.0;
            text::draw(&mut img, &format!("{y:.2}"), 8, sy(y) as i32 - 7, 13.0, LEFT_COLOUR);
        }
        let pts: Vec<(f32, f32)> = left.1.iter().map(|&(x, y)| (sx(x), sy(y))).collect();
        polyline(&mut img, &pts, LEFT_COLOUR);
        text::draw(&mut img, left.0, L as i32 + 200, 12, 14.0, LEFT_COLOUR);
    }
    if let Some((y0, y1)) = range(right.1.iter().flat_map(|s| s.1.iter()).map(|p| p.1)) {
        // AP axis from 0 to at least 1.
        let (y0, y1) = (y0.min(0.0), y1.max(1.0));
        let sy = |y: f64| B - (B - T) * ((y - y0) / (y1 - y0)) as f32;
        for k in 0..=4 {
            let y = y0 + (y1 - y0) * k as f64 / 4.0;
            text::draw(&mut img, &format!("{y:.2}"), R as i32 + 6, sy(y) as i32 - 7, 13.0, INK);
        }
        let mut legend_x = L as i32 + 360;
        for ((name, series), colour) in right.1.iter().zip(RIGHT_COLOURS) {
            if series.is_empty() {
                continue;
            }
            let pts: Vec<(f32, f32)> = series.iter().map(|&(x, y)| (sx(x), sy(y))).collect();
            polyline(&mut img, &pts, colour);
            let label = format!("{} ({name})", right.0);
            text::draw(&mut img, &label, legend_x, 12, 14.0, colour);
            legend_x += text::size_of(&label, 14.0).0 as i32 + 20;
        }
    }
    img
}
