//! `dypose info`: the paper's ImageNet sizes through the CLI, and clear errors.

use std::process::Command;

fn info(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_dypose")).arg("info").args(args).output().unwrap();
    (o.status.success(), String::from_utf8(o.stdout).unwrap(), String::from_utf8(o.stderr).unwrap())
}

fn json(args: &[&str]) -> (f64, f64) {
    let (ok, out, err) = info(args);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    (v["params"].as_f64().unwrap(), v["madds"].as_f64().unwrap())
}

#[test]
fn imagenet_sizes_match_the_paper() {
    let rel = |a: f64, b: f64| (a - b).abs() / b;
    let (p, m) = json(&["--arch", "dy-mobilenetv2", "--width", "1.0", "--json"]);
    assert!(rel(p, 11.1e6) < 0.03 && rel(m, 312.9e6) < 0.03, "{p} {m}");
    let (p, m) = json(&["--arch", "mobilenetv2", "--width", "0.75", "--json"]);
    assert!(rel(p, 2.6e6) < 0.03 && rel(m, 209e6) < 0.03, "{p} {m}");
    let (_, m) = json(&["--arch", "resnet18", "--json"]);
    assert!(rel(m, 1.81e9) < 0.03);
    let (_, m) = json(&["--arch", "dy-resnet18", "--json"]);
    assert!(rel(m, 1.85e9) < 0.03);
    // A pose model at 256×192 outputs 64×48 heatmaps.
    let (ok, out, _) = info(&["--arch", "dy-resnet18", "--head", "deconv"]);
    assert!(ok && out.contains("output map 64×48"), "{out}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    for (args, needle) in [
        (vec!["--arch", "vgg16"], "invalid value 'vgg16' for '--arch <ARCH>'"),
        (vec!["--arch", "mobilenetv2", "--width=0"], "width 0 is out of range"),
        (vec!["--arch", "resnet18", "--input", "10x10"], "expected HxW"),
        (vec!["--arch", "resnet18", "--head", "fpn"], "invalid value 'fpn' for '--head <HEAD>'"),
    ] {
        let (ok, _, err) = info(&args);
        assert!(!ok && err.contains(needle) && !err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn init_writes_a_checkpoint_and_never_overwrites_silently() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.safetensors");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dypose"))
            .args([
                "init",
                "--arch",
                "mobilenetv2",
                "--width",
                "0.35",
                "--head",
                "light",
                "--out",
                out.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("backbone.features.0.conv.weight").unwrap().shape(), &[16, 3, 3, 3]);
    assert_eq!(st.tensor("head.final_layer.bias").unwrap().shape(), &[17]);
    let again = run(&["--seed", "3"]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
}
