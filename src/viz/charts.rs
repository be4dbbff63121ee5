//! Charts of plain numbers (the pictures of `eval --analyze`): rows of stacked shares, groups
//! of signed bars, and curves on the unit square. Each places its marks through a small
//! public geometry so tests can find them.

use super::attention::KERNEL_COLOURS;
use super::text;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_line_segment_mut};
use imageproc::rect::Rect;

const INK: Rgb<u8> = Rgb([40, 40, 40]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

/// The colour of series `i` (the palette of the attention charts, repeated).
pub fn colour(i: usize) -> Rgb<u8> {
    KERNEL_COLOURS[i % KERNEL_COLOURS.len()]
}

fn filled(img: &mut RgbImage, x0: f32, y0: f32, x1: f32, y1: f32, c: Rgb<u8>) {
    let (x0, x1) = (x0.min(x1).round(), x0.max(x1).round());
    let (y0, y1) = (y0.min(y1).round(), y0.max(y1).round());
    if x1 > x0 && y1 > y0 {
        draw_filled_rect_mut(img, Rect::at(x0 as i32, y0 as i32).of_size((x1 - x0) as u32, (y1 - y0) as u32), c);
    }
}

fn legend(img: &mut RgbImage, names: &[&str], x: i32, y: i32) {
    let mut x = x;
    for (i, name) in names.iter().enumerate() {
        filled(img, x as f32, y as f32 + 3.0, x as f32 + 12.0, y as f32 + 15.0, colour(i));
        text::draw(img, name, x + 16, y + 1, 14.0, INK);
        x += 16 + text::size_of(name, 14.0).0 as i32 + 18;
    }
}

/// Geometry of [`stacked_shares`]: a label column, then bars of `BAR_W` pixels for a share of 1.
pub mod shares {
    pub const LABEL_W: u32 = 210;
    pub const BAR_W: u32 = 600;
    pub const ROW: u32 = 22;
    pub const BAR_H: u32 = 16;
    pub const TOP: u32 = 60;

    /// Top-left corner of the bar of row `i`.
    pub fn bar_origin(i: usize) -> (u32, u32) {
        (LABEL_W, TOP + i as u32 * ROW)
    }
}

/// One horizontal bar per row, split into the row's shares (each row sums to 1, or less: the
/// rest stays white) in the colours of `parts`; a row's label on its left and, on its right,
/// the first share as a percentage.
pub fn stacked_shares(title: &str, parts: &[&str], rows: &[(String, Vec<f64>)]) -> RgbImage {
    use shares::*;
    let height = TOP + rows.len() as u32 * ROW + 10;
    let mut img = RgbImage::from_pixel(LABEL_W + BAR_W + 70, height, WHITE);
    text::draw(&mut img, title, 8, 6, 17.0, INK);
    legend(&mut img, parts, LABEL_W as i32, 32);
    for (i, (name, values)) in rows.iter().enumerate() {
        let (x, y) = bar_origin(i);
        let label: String = name.chars().take(26).collect();
        text::draw(&mut img, &label, 8, y as i32, 14.0, INK);
        let mut at = x as f32;
        for (k, v) in values.iter().enumerate() {
            let w = (v.clamp(0.0, 1.0) * BAR_W as f64) as f32;
            filled(&mut img, at, y as f32, at + w, (y + BAR_H) as f32, colour(k));
            at += w;
        }
        draw_hollow_rect_mut(&mut img, Rect::at(x as i32, y as i32).of_size(BAR_W, BAR_H), INK);
        if let Some(first) = values.first() {
            text::draw(&mut img, &format!("{:.0}%", 100.0 * first), (x + BAR_W + 6) as i32, y as i32, 13.0, INK);
        }
    }
    img
}

/// Geometry of [`grouped_bars`] and [`unit_curves`]: the plot area and how values map into it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub left: f32,
    pub right: f32,
    pub top: f32,
    pub bottom: f32,
    /// The value range of the vertical axis.
    pub y_range: (f64, f64),
    /// The distance between its ticks.
    pub y_step: f64,
}

impl Frame {
    const H: u32 = 480;

    fn new(width: u32, y_range: (f64, f64), y_step: f64) -> Frame {
        Frame { left: 70.0, right: width as f32 - 20.0, top: 70.0, bottom: 420.0, y_range, y_step }
    }

    fn width(&self) -> u32 {
        self.right as u32 + 20
    }

    /// The row of value `v` on the vertical axis.
    pub fn y(&self, v: f64) -> f32 {
        let (lo, hi) = self.y_range;
        self.bottom - (self.bottom - self.top) * ((v - lo) / (hi - lo)) as f32
    }

    /// The column of `u` in [0, 1] along the horizontal axis.
    pub fn x(&self, u: f64) -> f32 {
        self.left + (self.right - self.left) * u as f32
    }

    fn axes(&self, img: &mut RgbImage, format: impl Fn(f64) -> String) {
        let (lo, hi) = self.y_range;
        let ticks = ((hi - lo) / self.y_step).round() as usize;
        for k in 0..=ticks {
            let v = lo + self.y_step * k as f64;
            let y = self.y(v);
            draw_line_segment_mut(img, (self.left, y), (self.right, y), GRID);
            text::draw(img, &format(v), 6, y as i32 - 8, 13.0, INK);
        }
        let (w, h) = ((self.right - self.left) as u32, (self.bottom - self.top) as u32);
        draw_hollow_rect_mut(img, Rect::at(self.left as i32, self.top as i32).of_size(w, h), INK);
    }

    /// A vertical range that holds `values` and 0, with a tick step of 1, 2 or 5 × 10ⁿ giving
    /// about six ticks, and a step to spare beyond the extreme values for their labels.
    fn fitting(values: impl Iterator<Item = f64>) -> ((f64, f64), f64) {
        let (lo, hi) = values.filter(|v| v.is_finite()).fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        let raw = if hi > lo { (hi - lo) / 6.0 } else { 0.1 };
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|&s| s >= raw * (1.0 - 1e-9)).unwrap();
        // Tolerances: 0.2 / 0.05 is 4.000000000000001 in floating point.
        let lo = if lo < 0.0 { ((lo / step + 1e-9).floor() - 1.0) * step } else { 0.0 };
        let hi = ((hi / step - 1e-9).ceil() + 1.0) * step;
        ((lo, hi), step)
    }
}

/// The frame [`grouped_bars`] uses for these groups.
pub fn bars_frame(groups: &[(String, Vec<f64>)]) -> Frame {
    let (range, step) = Frame::fitting(groups.iter().flat_map(|(_, v)| v.iter().copied()));
    Frame::new(1200, range, step)
}

/// The horizontal extent of bar `s` of group `g` among `groups` groups of `series` bars.
pub fn bar_span(frame: &Frame, groups: usize, series: usize, g: usize, s: usize) -> (f32, f32) {
    let pitch = (frame.right - frame.left) / groups.max(1) as f32;
    let width = pitch * 0.8 / series.max(1) as f32;
    let x0 = frame.left + pitch * (g as f32 + 0.1) + width * s as f32;
    (x0, x0 + width - 2.0)
}

/// Vertical bars grouped along the horizontal axis (one group per label, one bar per series),
/// rising from 0 for positive values and falling for negative ones, with the value printed on
/// each bar (one decimal). Used for AP gains, which can be negative.
pub fn grouped_bars(title: &str, y_name: &str, series: &[&str], groups: &[(String, Vec<f64>)]) -> RgbImage {
    let frame = bars_frame(groups);
    let mut img = RgbImage::from_pixel(frame.width(), Frame::H, WHITE);
    text::draw(&mut img, title, 8, 6, 17.0, INK);
    text::draw(&mut img, y_name, 6, 46, 13.0, INK);
    legend(&mut img, series, frame.left as i32 + 250, 44);
    let decimals = if frame.y_step < 1.0 { 2 } else { 0 };
    frame.axes(&mut img, |v| format!("{v:+.decimals$}"));
    let zero = frame.y(0.0);
    draw_line_segment_mut(&mut img, (frame.left, zero), (frame.right, zero), INK);
    for (g, (label, values)) in groups.iter().enumerate() {
        for (s, &v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            let (x0, x1) = bar_span(&frame, groups.len(), series.len(), g, s);
            filled(&mut img, x0, zero, x1, frame.y(v), colour(s));
            let ty = if v >= 0.0 { frame.y(v) - 14.0 } else { frame.y(v) + 2.0 };
            text::draw(&mut img, &format!("{v:+.1}"), x0 as i32, ty as i32, 10.0, INK);
        }
        let (x0, _) = bar_span(&frame, groups.len(), series.len(), g, 0);
        let (_, x1) = bar_span(&frame, groups.len(), series.len(), g, series.len().saturating_sub(1));
        let width = ((x1 - x0) / 7.0).max(3.0) as usize;
        for (n, line) in wrapped(label, width).iter().take(3).enumerate() {
            text::draw(&mut img, line, x0 as i32, frame.bottom as i32 + 4 + 14 * n as i32, 12.0, INK);
        }
    }
    img
}

/// `label` in lines of at most `width` characters, broken at spaces (a longer word is cut).
pub fn wrapped(label: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in label.split_whitespace() {
        let word: String = word.chars().take(width).collect();
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(&word);
            }
            _ => lines.push(word),
        }
    }
    lines
}

/// The frame [`unit_curves`] uses: values 0 to 1.
pub fn unit_frame() -> Frame {
    Frame::new(900, (0.0, 1.0), 0.25)
}

/// Curves of (x, y) points on [0, 1]², one colour per series; points with y < 0 (undefined)
/// break the line.
pub fn unit_curves(title: &str, x_name: &str, y_name: &str, series: &[(&str, &[(f64, f64)])]) -> RgbImage {
    let frame = unit_frame();
    let mut img = RgbImage::from_pixel(frame.width(), Frame::H, WHITE);
    text::draw(&mut img, title, 8, 6, 17.0, INK);
    text::draw(&mut img, y_name, 6, 46, 13.0, INK);
    let names: Vec<&str> = series.iter().map(|s| s.0).collect();
    legend(&mut img, &names, frame.left as i32 + 150, 44);
    frame.axes(&mut img, |v| format!("{v:.2}"));
    for k in 0..=4 {
        let u = k as f64 / 4.0;
        text::draw(&mut img, &format!("{u:.2}"), frame.x(u) as i32 - 14, frame.bottom as i32 + 6, 13.0, INK);
    }
    text::draw(&mut img, x_name, ((frame.left + frame.right) / 2.0) as i32 - 20, frame.bottom as i32 + 28, 14.0, INK);
    for (i, (_, points)) in series.iter().enumerate() {
        for w in points.windows(2).filter(|w| w[0].1 >= 0.0 && w[1].1 >= 0.0) {
            let (a, b) = ((frame.x(w[0].0), frame.y(w[0].1)), (frame.x(w[1].0), frame.y(w[1].1)));
            for d in [0.0, 1.0] {
                draw_line_segment_mut(&mut img, (a.0, a.1 + d), (b.0, b.1 + d), colour(i));
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_split_at_its_shares() {
        let rows = vec![("a".to_string(), vec![0.25, 0.5, 0.0, 0.25]), ("b".to_string(), vec![1.0])];
        let img = stacked_shares("t", &["p", "q", "r", "s"], &rows);
        let (x, y) = shares::bar_origin(0);
        let at =
            |frac: f64, row_y: u32| *img.get_pixel(x + (frac * shares::BAR_W as f64) as u32, row_y + shares::BAR_H / 2);
        // 0–25 % first part, 25–75 % second, the empty third takes no room, 75–100 % fourth.
        assert_eq!(at(0.10, y), colour(0));
        assert_eq!(at(0.40, y), colour(1));
        assert_eq!(at(0.70, y), colour(1));
        assert_eq!(at(0.85, y), colour(3));
        let (_, y1) = shares::bar_origin(1);
        assert_eq!(at(0.95, y1), colour(0));
        assert_eq!(img.height(), shares::TOP + 2 * shares::ROW + 10);
    }

    #[test]
    fn signed_bars_rise_and_fall_from_zero() {
        let groups = vec![("AP".to_string(), vec![0.10, -0.05]), ("APm".to_string(), vec![0.0, 0.20])];
        let frame = bars_frame(&groups);
        let (lo, hi) = frame.y_range;
        assert_eq!(frame.y_step, 0.05, "a span of 0.25 in about six ticks");
        assert!((lo + 0.10).abs() < 1e-12 && (hi - 0.25).abs() < 1e-12, "a step to spare each way: {lo}, {hi}");
        let gains = vec![("x".to_string(), vec![23.8, 64.2, 0.0])];
        assert_eq!(bars_frame(&gains).y_step, 20.0);
        assert_eq!(bars_frame(&gains).y_range, (0.0, 100.0));
        let img = grouped_bars("t", "ΔAP", &["fix 1", "fix 2"], &groups);
        let mid = |g, s| {
            let (x0, x1) = bar_span(&frame, 2, 2, g, s);
            ((x0 + x1) / 2.0) as u32
        };
        let zero = frame.y(0.0);
        // +0.10 fills from zero up to y(0.10), not above; −0.05 fills downwards.
        assert_eq!(*img.get_pixel(mid(0, 0), (frame.y(0.09)) as u32), colour(0));
        assert_eq!(*img.get_pixel(mid(0, 0), (frame.y(0.12)) as u32), WHITE);
        assert_eq!(*img.get_pixel(mid(0, 1), (frame.y(-0.04)) as u32), colour(1));
        assert_eq!(*img.get_pixel(mid(0, 1), (zero - 10.0) as u32), WHITE);
        assert_eq!(*img.get_pixel(mid(1, 1), (frame.y(0.19)) as u32), colour(1));
    }

    #[test]
    fn labels_wrap_at_spaces() {
        assert_eq!(wrapped("all keypoint errors", 9), ["all", "keypoint", "errors"]);
        assert_eq!(wrapped("missed persons", 14), ["missed persons"]);
        assert_eq!(wrapped("a b c", 3), ["a b", "c"]);
        assert_eq!(wrapped("inversion", 4), ["inve"]);
    }

    #[test]
    fn curves_pass_through_their_points_and_break_at_undefined_ones() {
        let flat: Vec<(f64, f64)> = (0..=10).map(|r| (r as f64 / 10.0, 0.5)).collect();
        let broken = [(0.0, 0.3), (0.5, -1.0), (1.0, 0.3)];
        let img = unit_curves("t", "recall", "precision", &[("half", &flat), ("broken", &broken)]);
        let f = unit_frame();
        assert_eq!(*img.get_pixel(f.x(0.33) as u32, f.y(0.5).round() as u32), colour(0));
        assert_eq!(*img.get_pixel(f.x(0.33) as u32, f.y(0.3).round() as u32), WHITE, "no line across −1");
    }
}
