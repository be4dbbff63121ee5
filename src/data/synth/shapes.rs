//! A generated image-classification set for pretraining without a download: ten classes of
//! shapes and textures (`dypose synth --classify`), each image with its own colours, size,
//! position, rotation and noise, written as an image folder (`train/<class>/*.png`,
//! `val/<class>/*.png`).

use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_polygon_mut};
use imageproc::point::Point;
use rand::Rng;

/// The classes, in label order.
pub const CLASSES: [&str; 10] =
    ["circle", "square", "triangle", "cross", "ring", "stripes_h", "stripes_v", "stripes_diag", "checker", "dots"];

/// Image `index` of `class` in the split seeded `split_seed`: `size`×`size` pixels.
pub fn shape_image(seed: u64, split_seed: u64, class: usize, index: u64, size: u32) -> RgbImage {
    let mut rng = crate::seed::stream(seed, split_seed * 1000 + class as u64, index);
    let s = size as f32;
    // Background and foreground colours at least 120 grey levels apart.
    let bg: [u8; 3] = std::array::from_fn(|_| rng.random_range(0..=255));
    let grey = |c: [u8; 3]| (c[0] as f32 + c[1] as f32 + c[2] as f32) / 3.0;
    let fg: [u8; 3] = loop {
        let c: [u8; 3] = std::array::from_fn(|_| rng.random_range(0..=255));
        if (grey(c) - grey(bg)).abs() >= 60.0 {
            break c;
        }
    };
    let mut img = RgbImage::from_pixel(size, size, Rgb(bg));
    let centre = [s / 2.0 + rng.random_range(-0.15..0.15) * s, s / 2.0 + rng.random_range(-0.15..0.15) * s];
    let radius = rng.random_range(0.2..0.35) * s;
    let angle = rng.random_range(0.0..std::f32::consts::TAU);
    let period = rng.random_range(0.12..0.2) * s;
    let poly = |img: &mut RgbImage, corners: &[[f32; 2]]| {
        let (sn, cs) = angle.sin_cos();
        let pts: Vec<Point<i32>> = corners
            .iter()
            .map(|[x, y]| {
                Point::new((centre[0] + x * cs - y * sn).round() as i32, (centre[1] + x * sn + y * cs).round() as i32)
            })
            .collect();
        draw_polygon_mut(img, &pts, Rgb(fg));
    };
    let r = radius;
    match CLASSES[class] {
        "circle" => draw_filled_circle_mut(&mut img, (centre[0] as i32, centre[1] as i32), r as i32, Rgb(fg)),
        "square" => poly(&mut img, &[[-r, -r], [r, -r], [r, r], [-r, r]]),
        "triangle" => poly(&mut img, &[[0.0, -r], [0.87 * r, 0.5 * r], [-0.87 * r, 0.5 * r]]),
        "cross" => {
            let t = 0.3 * r;
            poly(&mut img, &[[-r, -t], [r, -t], [r, t], [-r, t]]);
            poly(&mut img, &[[-t, -r], [t, -r], [t, r], [-t, r]]);
        }
        "ring" => {
            draw_filled_circle_mut(&mut img, (centre[0] as i32, centre[1] as i32), r as i32, Rgb(fg));
            draw_filled_circle_mut(&mut img, (centre[0] as i32, centre[1] as i32), (0.55 * r) as i32, Rgb(bg));
        }
        texture => {
            for y in 0..size {
                for x in 0..size {
                    let (u, v) = (x as f32, y as f32);
                    let band = |t: f32| (t / period).floor() as i64 % 2 == 0;
                    let on = match texture {
                        "stripes_h" => band(v),
                        "stripes_v" => band(u),
                        "stripes_diag" => band((u + v) / std::f32::consts::SQRT_2),
                        "checker" => band(u) ^ band(v),
                        _ => (u % period - period / 2.0).hypot(v % period - period / 2.0) < period / 4.0,
                    };
                    if on {
                        img.put_pixel(x, y, Rgb(fg));
                    }
                }
            }
        }
    }
    for p in img.pixels_mut() {
        let n: i16 = rng.random_range(-12..=12);
        p.0 = p.0.map(|c| (c as i16 + n).clamp(0, 255) as u8);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_reproducible_and_classes_differ() {
        let a = shape_image(1, 1, 0, 5, 48);
        assert_eq!(a, shape_image(1, 1, 0, 5, 48), "the same seed, the same image");
        assert_ne!(a, shape_image(1, 2, 0, 5, 48), "train and val differ");
        // A circle (centre within ±15% of the middle, radius ≥ 20%) covers the middle pixel and
        // never the corner; its colours differ by ≥ 60 grey levels, noise by at most ±12.
        let dist =
            |a: &Rgb<u8>, b: &Rgb<u8>| a.0.iter().zip(b.0).map(|(x, y)| (*x as i32 - y as i32).abs()).sum::<i32>();
        for i in 0..20 {
            let circle = shape_image(3, 1, 0, i, 64);
            assert!(dist(circle.get_pixel(32, 32), circle.get_pixel(0, 0)) >= 180 - 72, "image {i}");
        }
    }
}
