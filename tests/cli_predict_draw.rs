//! `dypose predict` on a folder of mixed inputs and `dypose draw` on the real sample.

mod common;

use common::dypose;
use std::path::Path;

const GT: &str = "data/coco-sample/annotations/person_keypoints_sample.json";
const IMAGES: &str = "data/coco-sample/val2017";

fn sample_images() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(IMAGES).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// A tiny model config and random weights for it.
fn tiny_model(dir: &Path) -> (String, String) {
    let cfg = dir.join("tiny.json");
    std::fs::write(
        &cfg,
        r#"{"input_size": [64, 64], "heatmap_size": [16, 16],
            "model": {"arch": "dy-resnet10", "width": 0.125, "head_channels": 16}}"#,
    )
    .unwrap();
    let ck = dir.join("tiny.safetensors");
    let out = dypose(&["init", "--config", cfg.to_str().unwrap(), "--out", ck.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cfg.to_str().unwrap().into(), ck.to_str().unwrap().into())
}

#[test]
fn predict_on_mixed_folder_reports_bad_files_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = tiny_model(dir.path());
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    let src = sample_images();
    std::fs::copy(&src[0], imgs.join("a.jpg")).unwrap();
    let rgb = image::open(&src[1]).unwrap();
    rgb.save(imgs.join("b.png")).unwrap();
    rgb.to_luma8().save(imgs.join("c_gray.png")).unwrap();
    image::DynamicImage::ImageRgba16(rgb.to_rgba16()).save(imgs.join("d_rgba16.png")).unwrap();
    let bytes = std::fs::read(&src[2]).unwrap();
    std::fs::write(imgs.join("e_corrupt.jpg"), &bytes[..200]).unwrap();
    std::fs::write(imgs.join("f_notes.txt"), "not an image").unwrap();
    let out_dir = dir.path().join("out");
    let args = [
        "predict",
        "--config",
        &cfg,
        "--checkpoint",
        &ck,
        "--image-dir",
        imgs.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let out = dypose(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an image file that does not decode makes the exit status fail");
    assert!(err.contains("e_corrupt.jpg") && err.contains("1 of 5 images could not be read"), "{err}");
    // A file that is not an image by its extension is skipped, counted, and no failure.
    assert!(err.contains("skipped 1 files that are not images") && err.contains("f_notes.txt"), "{err}");
    // Results for the 4 good images (one whole-image person each), drawings of their size.
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results.as_array().unwrap().len(), 4);
    for (name, drawn) in
        [("a.jpg", "a.jpg"), ("b.png", "b.png"), ("c_gray.png", "c_gray.png"), ("d_rgba16.png", "d_rgba16.png")]
    {
        let (w, h) = image::image_dimensions(imgs.join(name)).unwrap();
        assert_eq!(image::image_dimensions(out_dir.join(drawn)).unwrap(), (w, h), "{drawn}");
    }
    // Nothing already written is lost: a second run refuses to replace results.json.
    let before = std::fs::read(out_dir.join("results.json")).unwrap();
    let again = dypose(&args);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read(out_dir.join("results.json")).unwrap(), before);
}

#[test]
fn draw_colours_gt_limbs_and_keeps_size_and_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("png");
    let o = dypose(&["draw", "--ann", GT, "--images", IMAGES, "--out", out.to_str().unwrap(), "--format", "png"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let gt: serde_json::Value = serde_json::from_slice(&std::fs::read(GT).unwrap()).unwrap();
    let spec = dypose::coco::KeypointSpec::coco17();
    let mut checked = 0;
    for img in gt["images"].as_array().unwrap() {
        let name = img["file_name"].as_str().unwrap();
        let drawn = image::open(out.join(name.replace(".jpg", ".png"))).unwrap().to_rgb8();
        assert_eq!(
            (drawn.width() as u64, drawn.height() as u64),
            (img["width"].as_u64().unwrap(), img["height"].as_u64().unwrap())
        );
        for a in gt["annotations"].as_array().unwrap().iter().filter(|a| a["image_id"] == img["id"]) {
            let k: Vec<f64> = a["keypoints"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let bb: Vec<f64> = a["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            if bb[3] < 150.0 {
                continue; // thin lines on small persons may be crossed by others
            }
            // Shins and forearms at least 30 px long: points along the middle of the limb are
            // painted its colour (2 of 3, as another person's limb or box may cross one).
            for [p, q] in [[13, 15], [14, 16], [7, 9], [8, 10]] {
                let (dx, dy) = (k[3 * q] - k[3 * p], k[3 * q + 1] - k[3 * p + 1]);
                if k[3 * p + 2] > 0.0 && k[3 * q + 2] > 0.0 && dx.hypot(dy) >= 30.0 {
                    let want = dypose::viz::limb_colour(&spec, p, q);
                    let hits = [0.35, 0.5, 0.65]
                        .iter()
                        .filter(|&&t| {
                            let (x, y) = (k[3 * p] + t * dx, k[3 * p + 1] + t * dy);
                            let px = drawn.get_pixel(x.round() as u32, y.round() as u32);
                            px.0.iter().zip(want.0).all(|(a, b)| (*a as i32 - b as i32).abs() <= 2)
                        })
                        .count();
                    assert!(hits >= 2, "{name} limb {p}-{q}: {hits} of 3 points have {want:?}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 4, "only {checked} limbs checked");
    // Default format is the input's (JPEG here), same size.
    let jpg = dir.path().join("jpg");
    assert!(dypose(&["draw", "--ann", GT, "--images", IMAGES, "--out", jpg.to_str().unwrap()]).status.success());
    let first = std::fs::read_dir(&jpg).unwrap().next().unwrap().unwrap().path();
    assert_eq!(image::ImageFormat::from_path(&first).unwrap(), image::ImageFormat::Jpeg);
    assert_eq!(image::guess_format(&std::fs::read(&first).unwrap()).unwrap(), image::ImageFormat::Jpeg);
}

#[test]
fn explain_shows_each_dynamic_layers_attention_for_one_crop() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = tiny_model(dir.path());
    let out_png = dir.path().join("explain.png");
    let image = sample_images()[0].clone();
    let args = [
        "explain",
        "--config",
        &cfg,
        "--checkpoint",
        &ck,
        "--image",
        image.to_str().unwrap(),
        "--box",
        "100,50,120,200",
        "--out",
        out_png.to_str().unwrap(),
    ];
    let out = dypose(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // DY-ResNet-10: two dynamic 3×3 convs in each of 4 blocks (shortcuts static), and the three
    // dynamic deconvs of the head.
    let rows: Vec<&str> = stdout.lines().filter(|l| l.contains("π = [")).collect();
    assert_eq!(rows.len(), 4 * 2 + 3, "{stdout}");
    assert!(stdout.contains("11 dynamic layers"), "{stdout}");
    for row in rows {
        let inner = row.split('[').nth(1).unwrap().trim_end_matches(']');
        let pi: Vec<f64> = inner.split(", ").map(|v| v.parse().unwrap()).collect();
        assert_eq!(pi.len(), 4, "K = 4 kernels: {row}");
        assert!(pi.iter().all(|&p| p > 0.0) && (pi.iter().sum::<f64>() - 1.0).abs() < 3e-3, "softmax: {row}");
    }
    // Picture: the 64×64 crop zoomed ×2, a gap of 8, and the chart (502 wide, 48 + 11 rows × 18 + 8 high).
    let pic = image::open(&out_png).unwrap();
    assert_eq!((pic.width(), pic.height()), (128 + 8 + 502, 48 + 11 * 18 + 8));
    // An existing picture is kept unless --force.
    let again = dypose(&args);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"), "{}", String::from_utf8_lossy(&again.stderr));
}
