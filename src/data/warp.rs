//! Crops by affine warp, bilinear with a zero border, equal to OpenCV's
//! `cv2.warpAffine(img, M, (w, h), flags=INTER_LINEAR)` (the reference pipelines' crop).
//!
//! OpenCV ≥ 4.11 (5.0 here) samples in f32: the inverse map is formed in f64 and rounded to f32,
//! each row's offset is `y·m1 + m2` in f32, the column term is added with a fused multiply-add,
//! and the interpolation is two FMA lerps along x and one along y, rounded half to even. We do
//! the same operations in the same order, so crops match OpenCV bit for bit (checked against
//! cv2 5.0 on the real COCO sample in `tests/warp_vs_opencv.rs`). imageproc's `warp` samples
//! in f32 too, but with its own rounding and border rule, so it cannot give that match.

use super::affine::Affine;
use crate::config::Size;
use image::RgbImage;

/// Warps `src` by `m` (source → crop coordinates) into an RGB crop of `size`.
pub fn warp_rgb(src: &RgbImage, m: &Affine, size: Size) -> RgbImage {
    let (ow, oh) = (size.width, size.height);
    let mut out = vec![0u8; ow * oh * 3];
    let inv = m.inverse();
    let mf: [f32; 6] = inv.0.map(|v| v as f32);
    let (w, h) = (src.width() as i64, src.height() as i64);
    let data = src.as_raw();
    let stride = w as usize * 3;
    let tap = |x: i64, y: i64, c: usize| -> f32 {
        if x >= 0 && x < w && y >= 0 && y < h {
            data[y as usize * stride + x as usize * 3 + c] as f32
        } else {
            0.0
        }
    };
    for y in 0..oh {
        let yf = y as f32;
        let (row_x, row_y) = (yf * mf[1] + mf[2], yf * mf[4] + mf[5]);
        for x in 0..ow {
            let xf = x as f32;
            let sx = fma(mf[0], xf, row_x);
            let sy = fma(mf[3], xf, row_y);
            let (ix, iy) = (floor(sx), floor(sy));
            if ix < -1 || ix >= w || iy < -1 || iy >= h {
                continue; // all four taps outside: border value 0
            }
            let (ax, ay) = (sx - ix as f32, sy - iy as f32);
            let o = (y * ow + x) * 3;
            if ix >= 0 && ix < w - 1 && iy >= 0 && iy < h - 1 {
                let i = iy as usize * stride + ix as usize * 3;
                for c in 0..3 {
                    let (p00, p01) = (data[i + c] as f32, data[i + 3 + c] as f32);
                    let (p10, p11) = (data[i + stride + c] as f32, data[i + stride + 3 + c] as f32);
                    out[o + c] = lerp2(p00, p01, p10, p11, ax, ay);
                }
            } else {
                for c in 0..3 {
                    let (p00, p01) = (tap(ix, iy, c), tap(ix + 1, iy, c));
                    let (p10, p11) = (tap(ix, iy + 1, c), tap(ix + 1, iy + 1, c));
                    out[o + c] = lerp2(p00, p01, p10, p11, ax, ay);
                }
            }
        }
    }
    RgbImage::from_raw(ow as u32, oh as u32, out).expect("buffer sized to the crop")
}

/// OpenCV's bilinear step: lerp along x on both rows, then along y, rounded half to even.
#[inline(always)]
fn lerp2(p00: f32, p01: f32, p10: f32, p11: f32, ax: f32, ay: f32) -> u8 {
    let top = fma(ax, p01 - p00, p00);
    let bottom = fma(ax, p11 - p10, p10);
    round_u8(fma(ay, bottom - top, top))
}

/// a·b + c with one rounding to f32 as a fused multiply-add gives it: the f32 product is exact
/// in f64, so only the (rare) double rounding of the sum can differ. Inline, unlike `mul_add`,
/// which is a libm call on targets without the FMA instruction. Measured on the COCO sample with
/// `dypose bench data --workers 2`: with `mul_add`/`floor`/`round_ties_even` the warp and those
/// calls took 39% of the time and the pipeline ran 346 samples/s; with these, 29% and 460/s.
#[inline(always)]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    (a as f64 * b as f64 + c as f64) as f32
}

#[inline(always)]
fn floor(v: f32) -> i64 {
    let t = v as i64;
    if (t as f32) > v {
        t - 1
    } else {
        t
    }
}

/// Round half to even and saturate to 0..=255 (OpenCV's `saturate_cast<uchar>(float)`):
/// adding and removing 2²³ rounds an f32 in [0, 2²³) to an integer, ties to even.
#[inline(always)]
fn round_u8(v: f32) -> u8 {
    let v = v.clamp(0.0, 255.0);
    ((v + 8_388_608.0) - 8_388_608.0) as u8
}

/// ImageNet normalisation of the reference recipe (RGB in [0, 1]).
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The picture of a normalised `3 × H × W` input: the inverse of [`normalize_chw`], rounded to
/// the nearest byte, for drawing what the network sees.
pub fn denormalize_chw(input: &[f32], size: crate::config::Size) -> RgbImage {
    let n = size.area();
    assert_eq!(input.len(), 3 * n, "input must hold 3 × H × W values");
    RgbImage::from_fn(size.width as u32, size.height as u32, |x, y| {
        let i = y as usize * size.width + x as usize;
        image::Rgb(std::array::from_fn(|c| {
            ((input[c * n + i] * STD[c] + MEAN[c]) * 255.0).round().clamp(0.0, 255.0) as u8
        }))
    })
}

/// Writes `crop` into `out` as normalised CHW f32: (v/255 − mean[c]) / std[c].
pub fn normalize_chw(crop: &RgbImage, out: &mut [f32]) {
    let n = (crop.width() * crop.height()) as usize;
    assert_eq!(out.len(), 3 * n, "output must hold 3 × H × W values");
    let lut: Vec<[f32; 256]> = (0..3).map(|c| std::array::from_fn(|v| (v as f32 / 255.0 - MEAN[c]) / STD[c])).collect();
    let (r, rest) = out.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    for (i, px) in crop.as_raw().chunks_exact(3).enumerate() {
        r[i] = lut[0][px[0] as usize];
        g[i] = lut[1][px[1] as usize];
        b[i] = lut[2][px[2] as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 10) as u8, (y * 10) as u8, ((x + y) * 5) as u8]))
    }

    #[test]
    fn denormalising_gives_back_every_byte() {
        let img =
            RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 16 + y) as u8, 255 - (y * 16 + x) as u8, (x * y) as u8]));
        let mut chw = vec![0.0; 3 * 256];
        normalize_chw(&img, &mut chw);
        assert_eq!(denormalize_chw(&chw, Size::new(16, 16)), img, "all 256 values of each channel");
    }

    #[test]
    fn identity_and_integer_shift_copy_pixels() {
        let src = gradient(20, 15);
        assert_eq!(warp_rgb(&src, &Affine::IDENTITY, Size::new(20, 15)), src);
        // Shift by (−3, −2): crop pixel (x, y) reads source (x + 3, y + 2), zero past the edge.
        let out = warp_rgb(&src, &Affine([1.0, 0.0, -3.0, 0.0, 1.0, -2.0]), Size::new(20, 15));
        assert_eq!(out.get_pixel(0, 0), src.get_pixel(3, 2));
        assert_eq!(out.get_pixel(16, 12), src.get_pixel(19, 14));
        assert_eq!(out.get_pixel(17, 12).0, [0, 0, 0]);
    }

    #[test]
    fn half_pixel_shift_averages_neighbours() {
        let src = RgbImage::from_fn(4, 1, |x, _| image::Rgb([[0u8, 100, 200, 250][x as usize]; 3]));
        let out = warp_rgb(&src, &Affine([1.0, 0.0, -0.5, 0.0, 1.0, 0.0]), Size::new(3, 1));
        let got: Vec<u8> = (0..3).map(|x| out.get_pixel(x, 0).0[0]).collect();
        // Halfway values 50, 150 and 225 (225 is exact; round-half-even keeps it).
        assert_eq!(got, vec![50, 150, 225]);
    }

    #[test]
    fn mirror_reverses_rows() {
        let src = gradient(9, 4);
        let out = warp_rgb(&src, &Affine::mirror_x(9), Size::new(9, 4));
        for y in 0..4 {
            for x in 0..9 {
                assert_eq!(out.get_pixel(x, y), src.get_pixel(8 - x, y));
            }
        }
    }

    #[test]
    fn inline_helpers_match_the_std_operations() {
        for &v in &[0.0f32, 0.5, 1.5, 2.5, 254.5, 255.4, 300.0, -0.3, 127.49999, 3.5000002] {
            assert_eq!(round_u8(v), v.round_ties_even().clamp(0.0, 255.0) as u8, "{v}");
        }
        for &v in &[-1.5f32, -1.0, -0.25, 0.0, 0.75, 5.0, 1e6, -3.0e6] {
            assert_eq!(floor(v), v.floor() as i64, "{v}");
        }
        let mut state = 12345u32;
        let mut next = || {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            (state >> 8) as f32 / 65536.0 - 128.0
        };
        for _ in 0..100_000 {
            let (a, b, c) = (next(), next(), next());
            assert_eq!(fma(a, b, c), a.mul_add(b, c));
        }
    }

    #[test]
    fn normalisation_by_hand() {
        let crop = RgbImage::from_raw(2, 1, vec![0, 255, 128, 10, 20, 30]).unwrap();
        let mut out = vec![0.0; 6];
        normalize_chw(&crop, &mut out);
        let want = |v: f32, c: usize| (v / 255.0 - MEAN[c]) / STD[c];
        assert_eq!(
            out,
            vec![want(0.0, 0), want(10.0, 0), want(255.0, 1), want(20.0, 1), want(128.0, 2), want(30.0, 2)]
        );
    }
}
