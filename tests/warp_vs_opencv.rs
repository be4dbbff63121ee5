//! Crops from `data::warp` against OpenCV's `cv2.warpAffine(..., INTER_LINEAR)` on the real COCO
//! sample (references made by tools/make_warp_reference.py with OpenCV 5.0).

use dypose::config::Size;
use dypose::data::affine::Affine;
use dypose::data::warp::warp_rgb;
use image::RgbImage;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/warp")
}

struct Crop {
    source_png: String,
    image: String,
    center: [f64; 2],
    size: [f64; 2],
    rotation: f64,
    flip: bool,
    reference: RgbImage,
}

fn crops() -> Vec<Crop> {
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(dir().join("crops.json")).unwrap()).unwrap();
    let pair = |v: &serde_json::Value| [v[0].as_f64().unwrap(), v[1].as_f64().unwrap()];
    meta["crops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Crop {
            source_png: c["source_png"].as_str().unwrap().into(),
            image: c["image"].as_str().unwrap().into(),
            center: pair(&c["center"]),
            size: pair(&c["size"]),
            rotation: c["rotation"].as_f64().unwrap(),
            flip: c["flip"].as_bool().unwrap(),
            reference: image::open(dir().join(c["crop"].as_str().unwrap())).unwrap().to_rgb8(),
        })
        .collect()
}

/// Our crop: the flip folded into the one warp (OpenCV's reference flips the pixels first).
fn our_crop(src: &RgbImage, c: &Crop) -> RgbImage {
    let m = Affine::crop_flipped(c.center, c.size, c.rotation, c.flip, src.width(), Size::new(192, 256));
    warp_rgb(src, &m, Size::new(192, 256))
}

/// (fraction of values equal, fraction within 1 grey level, largest difference).
fn compare(a: &RgbImage, b: &RgbImage) -> (f64, f64, i32) {
    assert_eq!(a.dimensions(), b.dimensions());
    let (mut equal, mut within1, mut worst) = (0usize, 0usize, 0i32);
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = (*x as i32 - *y as i32).abs();
        equal += (d == 0) as usize;
        within1 += (d <= 1) as usize;
        worst = worst.max(d);
    }
    let n = a.as_raw().len() as f64;
    (equal as f64 / n, within1 as f64 / n, worst)
}

#[test]
fn crops_equal_opencv_on_the_same_pixels() {
    let crops = crops();
    assert!(crops.len() >= 6);
    assert!(crops.iter().any(|c| c.flip) && crops.iter().any(|c| c.rotation != 0.0));
    for c in &crops {
        let src = image::open(dir().join(&c.source_png)).unwrap().to_rgb8();
        let (equal, within1, worst) = compare(&our_crop(&src, c), &c.reference);
        eprintln!(
            "{} rot {} flip {}: {:.4}% equal, {:.4}% within 1, worst {worst}",
            c.image,
            c.rotation,
            c.flip,
            100.0 * equal,
            100.0 * within1
        );
        assert!(within1 >= 0.999, "{}: only {:.4}% within 1 grey level", c.image, 100.0 * within1);
    }
}

#[test]
fn crops_from_our_jpeg_decoder_stay_within_one_grey_level() {
    // End to end: our JPEG decode (the `image` crate) against OpenCV's decode + warp.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/coco-sample/val2017");
    for c in &crops() {
        let src = image::open(sample.join(&c.image)).unwrap().to_rgb8();
        let (equal, within1, worst) = compare(&our_crop(&src, c), &c.reference);
        eprintln!(
            "{} (own decode): {:.4}% equal, {:.4}% within 1, worst {worst}",
            c.image,
            100.0 * equal,
            100.0 * within1
        );
        assert!(within1 >= 0.999, "{}: only {:.4}% within 1 grey level", c.image, 100.0 * within1);
    }
}
