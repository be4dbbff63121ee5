//! The dynamic-conv attention of one crop as a chart: one row per dynamic layer, a bar split
//! into K segments whose widths are the softmax weights π_k (they sum to 1), so a layer that
//! mixes its kernels evenly shows K equal segments and one that picks a kernel shows one.

use super::text;
use image::{Rgb, RgbImage};
use imageproc::drawing::draw_filled_rect_mut;
use imageproc::rect::Rect;

/// Kernel colours (repeated beyond eight kernels).
pub const KERNEL_COLOURS: [Rgb<u8>; 8] = [
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([44, 160, 44]),
    Rgb([214, 39, 40]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
    Rgb([227, 119, 194]),
    Rgb([127, 127, 127]),
];
const INK: Rgb<u8> = Rgb([40, 40, 40]);
/// Geometry: label column, bar width, row pitch, bar height, top margin (title and legend).
pub const LABEL_W: u32 = 190;
pub const BAR_W: u32 = 300;
pub const ROW: u32 = 18;
pub const BAR_H: u32 = 12;
pub const TOP: u32 = 48;

/// Top-left corner of the bar of row `i`.
pub fn bar_origin(i: usize) -> (u32, u32) {
    (LABEL_W, TOP + i as u32 * ROW)
}

/// `layers`: (layer name, its K attention weights for the crop).
pub fn attention_chart(title: &str, layers: &[(String, Vec<f32>)]) -> RgbImage {
    let k = layers.iter().map(|(_, a)| a.len()).max().unwrap_or(0);
    let height = TOP + layers.len() as u32 * ROW + 8;
    let mut img = RgbImage::from_pixel(LABEL_W + BAR_W + 12, height, Rgb([255, 255, 255]));
    text::draw(&mut img, title, 6, 4, 14.0, INK);
    for j in 0..k {
        let x = 6 + j as i32 * 70;
        draw_filled_rect_mut(&mut img, Rect::at(x, 26).of_size(10, 10), KERNEL_COLOURS[j % 8]);
        text::draw(&mut img, &format!("π{j}"), x + 14, 24, 12.0, INK);
    }
    for (i, (name, weights)) in layers.iter().enumerate() {
        let (x0, y0) = bar_origin(i);
        let short = name.strip_prefix("backbone.").unwrap_or(name);
        text::draw(&mut img, short, 6, y0 as i32, 12.0, INK);
        let total: f32 = weights.iter().sum();
        let mut x = x0 as f32;
        for (j, &w) in weights.iter().enumerate() {
            let width = BAR_W as f32 * w / total.max(f32::MIN_POSITIVE);
            let (a, b) = (x.round() as i32, (x + width).round() as i32);
            if b > a {
                draw_filled_rect_mut(
                    &mut img,
                    Rect::at(a, y0 as i32).of_size((b - a) as u32, BAR_H),
                    KERNEL_COLOURS[j % 8],
                );
            }
            x += width;
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels of each kernel colour along the middle of a row's bar.
    fn segment_widths(img: &RgbImage, row: usize, k: usize) -> Vec<u32> {
        let (x0, y0) = bar_origin(row);
        let y = y0 + BAR_H / 2;
        (0..k).map(|j| (x0..x0 + BAR_W).filter(|&x| *img.get_pixel(x, y) == KERNEL_COLOURS[j]).count() as u32).collect()
    }

    #[test]
    fn segment_widths_are_the_attention_weights() {
        let layers = vec![
            ("backbone.layer1.0.conv1".to_string(), vec![0.5, 0.25, 0.25, 0.0]),
            ("head.deconv.0".to_string(), vec![0.1, 0.2, 0.3, 0.4]),
            ("one_kernel".to_string(), vec![0.0, 0.0, 1.0, 0.0]),
        ];
        let img = attention_chart("attention", &layers);
        for (row, (_, w)) in layers.iter().enumerate() {
            let got = segment_widths(&img, row, 4);
            for (g, &e) in got.iter().zip(w) {
                let expected = e * BAR_W as f32;
                assert!((*g as f32 - expected).abs() <= 1.0, "row {row}: {got:?} vs {w:?} × {BAR_W}");
            }
        }
        // Nothing is drawn past the bar, and rows do not overlap.
        let (x0, y0) = bar_origin(0);
        assert_eq!(*img.get_pixel(x0 + BAR_W + 2, y0 + 2), Rgb([255, 255, 255]));
        assert_eq!(*img.get_pixel(x0 + 2, y0 + BAR_H + 2), Rgb([255, 255, 255]));
    }
}
