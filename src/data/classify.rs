//! Images for classifiers: the evaluation view (resize the shorter side, centre crop, as
//! torchvision's `Resize(⌈s/0.875⌉)` + `CenterCrop(s)`), normalised CHW. Plain Rust.

use super::affine::Affine;
use super::warp::{normalize_chw, warp_rgb};
use crate::config::Size;
use image::RgbImage;

/// The share of the resized image the centre crop keeps (224 of 256).
pub const CROP_FRACTION: f64 = 0.875;

/// The map from `image` to the network's `input`: the identity when the sizes already agree
/// (the image is used as is), else a scale making the shorter side input/0.875 and a centre crop.
pub fn eval_view(image: (u32, u32), input: Size) -> Affine {
    let (w, h) = (image.0 as f64, image.1 as f64);
    if (image.0 as usize, image.1 as usize) == (input.width, input.height) {
        return Affine::IDENTITY;
    }
    let shorter = input.width.min(input.height) as f64 / CROP_FRACTION;
    let s = shorter / w.min(h);
    // Pixel centres: output x samples the resized image at x + (resized − out)/2.
    let (ox, oy) = ((w * s - input.width as f64) / 2.0, (h * s - input.height as f64) / 2.0);
    Affine([s, 0.0, (s - 1.0) / 2.0 - ox, 0.0, s, (s - 1.0) / 2.0 - oy])
}

/// `image` as the network sees it: the evaluation view, normalised, CHW.
pub fn eval_input(image: &RgbImage, input: Size) -> Vec<f32> {
    let m = eval_view(image.dimensions(), input);
    let crop = if m == Affine::IDENTITY { image.clone() } else { warp_rgb(image, &m, input) };
    let mut out = vec![0.0; 3 * input.area()];
    normalize_chw(&crop, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_the_identity_and_others_are_centred() {
        assert_eq!(eval_view((224, 224), Size::new(224, 224)), Affine::IDENTITY);
        // 512×256 to 224×224: shorter side 256 → 256 (scale 1), crop x from 144 to 368, y 16..240.
        let m = eval_view((512, 256), Size::new(224, 224));
        assert_eq!(m.apply([144.0, 16.0]), [0.0, 0.0]);
        assert_eq!(m.apply([367.0, 239.0]), [223.0, 223.0]);
        // 128×128 → 256×256 (scale 2): the centre of the image stays at the centre of the crop,
        // in pixel-centre coordinates (63.5 ↦ 111.5).
        let m = eval_view((128, 128), Size::new(224, 224));
        let c = m.apply([63.5, 63.5]);
        assert!((c[0] - 111.5).abs() < 1e-9 && (c[1] - 111.5).abs() < 1e-9, "{c:?}");
    }
}
