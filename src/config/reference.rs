//! The config reference of the book (`docs/src/reference/config.md`), generated from the code:
//! every key with its defaults (read from [`Config::defaults`], per task), what it accepts (the
//! bounds `validate` enforces, from [`LIMITS`]) and what it does. A test fails when a key of
//! [`Config`] has no entry here, when an entry names no key, and when the book's page differs
//! from [`markdown`].

use super::{Config, Task, LIMITS};
use serde_json::Value;

/// One key: its dotted name, what it accepts, and what it does.
pub struct Entry {
    pub key: &'static str,
    pub accepts: String,
    pub meaning: &'static str,
}

fn e(key: &'static str, accepts: impl Into<String>, meaning: &'static str) -> Entry {
    Entry { key, accepts: accepts.into(), meaning }
}

/// Every key of a config, in the page's order.
pub fn entries() -> Vec<Entry> {
    let l = &LIMITS;
    let side = format!("[w, h], 1–{} a side", l.image_side);
    let prob = "0–1";
    vec![
        e("seed", "an integer", "Derives every random stream: initial weights, shuffling, augmentation."),
        e("input_size", side.clone(), "The network input (a person crop, the detector's letterboxed image, a classifier's image; at least 32 a side for a classifier)."),
        e("heatmap_size", side, "The heatmaps; `input_size` must be the same integer multiple of it in x and y (unused by classifiers)."),
        e("sigma", "(0, 64]", "σ of the Gaussian heatmap targets, in heatmap cells."),
        e("unbiased_targets", "true / false", "DarkPose targets centred on the exact joint location instead of its rounded cell."),
        e("box_padding", "1–10", "Person boxes are enlarged by this factor before cropping."),
        e("data.train_annotations", "a path", "COCO keypoint annotations of the training set (pose and detect)."),
        e("data.train_images", "a path", "The training images; for `classify`, a folder of class folders (`<class>/<image>`, as torchvision's ImageFolder)."),
        e("data.val_annotations", "a path", "COCO keypoint annotations of the validation set."),
        e("data.val_images", "a path", "The validation images (for `classify`, class folders as in `data.train_images`)."),
        e("data.val_boxes", "a path or null", "Detector boxes for validation (COCO detection results); GT boxes when absent."),
        e("data.category_id", "an integer", "The annotations' category of persons."),
        e("data.keypoints", "a path or null", "A keypoint spec file (names, flip pairs, OKS sigmas, limbs); when absent the annotations' arrays and category decide."),
        e("data.keypoint_field", "a field name", "The annotation array that holds the joints (`keypoints`, or e.g. Human-Art's `keypoints_21`)."),
        e("augment.flip_prob", prob, "Probability of a horizontal flip (joints swapped by the flip pairs)."),
        e("augment.scale_factor", "[0, 1)", "Random scale s = clip(N(0,1)·f + 1, 1 − f, 1 + f)."),
        e("augment.rotation_factor", "0–180 degrees", "Random rotation r = clip(N(0,1)·f, −2f, 2f), applied with `augment.rotation_prob`."),
        e("augment.rotation_prob", prob, "Probability of a rotation."),
        e("augment.half_body_prob", prob, "Probability of cropping to the upper or lower body."),
        e("augment.half_body_min_joints", "an integer", "Half-body needs more than this many labelled joints."),
        e("augment.half_body_padding", "1–10", "Padding of the half-body box."),
        e("augment.upper_body", "joint indices or absent", "Joints of the upper body (0-based); default: the keypoint set's `upper_body`."),
        e("augment.color_jitter", "[0, 1)", "Brightness, contrast and saturation factors drawn from [1 − j, 1 + j]; 0 turns it off."),
        e("loader.batch_size", format!("1–{}", l.batch), "Samples per training batch."),
        e("loader.workers", format!("0–{}", l.workers), "Threads building batches (0: all cores)."),
        e("loader.prefetch", format!("0–{}", l.prefetch), "Batches prepared ahead of the training step."),
        e("model.task", "`pose`, `detect`, `classify`", "What the network is trained for; unset keys take this task's defaults."),
        e("model.arch", "`resnet10`, `resnet18`, `mobilenetv2`, `mobilenetv3-small`, each also with `dy-`", "The backbone; `dy-` makes its convolutions (but the stem) dynamic."),
        e("model.width", "(0, 4]", "Channel width multiplier."),
        e("model.head", "`deconv`, `light`", "The keypoint head: SimpleBaseline's transposed convolutions, or bilinear ×2 + depthwise-separable convolutions."),
        e("model.head_channels", format!("1–{}", l.head_channels), "Channels of the head's layers."),
        e("model.head_layers", format!("1–{}", l.head_layers), "Head layers, each doubling the map size."),
        e("model.dynamic_head", "true / false / null", "Dynamic head convolutions (null: as the backbone)."),
        e("model.dynamic_shortcut", "true / false", "Dynamic 1×1 shortcut convolutions in DY-ResNets."),
        e("model.kernels", format!("1–{}", l.kernels), "Kernels K per dynamic convolution."),
        e("model.joints", format!("1–{} or absent", l.joints), "Earlier releases' joint count; when present it must equal the keypoint set's."),
        e("model.backbone_checkpoint", "a path or absent", "Start the backbone from this checkpoint (pretraining, torchvision, another pose model); the head starts fresh."),
        e("train.epochs", "an integer", "Epochs to train; the only key a resumed run may change."),
        e("train.optimizer", "`adam`, `sgd`", "PyTorch's Adam (β 0.9, 0.999, ε 1e-8) or SGD."),
        e("train.lr", "> 0", "Peak learning rate."),
        e("train.momentum", "[0, 1)", "SGD's momentum."),
        e("train.nesterov", "true / false", "Nesterov momentum (SGD)."),
        e("train.weight_decay", "≥ 0", "L2 penalty added to the gradients."),
        e("train.lr_schedule", "`step`, `cosine`", "Step decay by epoch, or half a cosine from the rate after the warm-up to 0 at the end of the last epoch."),
        e("train.lr_steps", "epochs", "Epochs at whose start a step schedule multiplies the rate by `train.lr_factor`."),
        e("train.lr_factor", "> 0", "The step schedule's factor."),
        e("train.warmup_iters", "an integer", "mmpose's linear warm-up from `warmup_ratio`·lr over this many iterations."),
        e("train.warmup_ratio", prob, "Where mmpose's warm-up starts, as a share of the rate."),
        e("train.warmup_epochs", "≥ 0", "The classifiers' warm-up: lr·(i + 1)/W at iteration i over W = this × batches per epoch; set this or `train.warmup_iters`, not both."),
        e("train.label_smoothing", "[0, 1); `classify` only", "Cross-entropy against (1 − ε)·one-hot + ε/classes."),
        e("train.temperature.start", "≥ 1", "Softmax temperature τ of the dynamic-conv attention at the first iteration."),
        e("train.temperature.end", "≥ 1", "τ after `train.temperature.epochs`."),
        e("train.temperature.epochs", "≥ 0", "Epochs over which τ falls linearly (per iteration) from start to end."),
        e("train.val_every", "an integer", "Validate every this many epochs and after the last; 0: never."),
        e("train.log_every", "an integer", "A `metrics.csv` row every this many iterations besides each epoch's; 0: at epoch ends only."),
        e("train.checkpoint_every", "an integer", "Also write `last.safetensors` every this many iterations (0: at epoch ends only)."),
        e("val.flip_test", "true / false", "Average the heatmaps of the crop and its mirror image."),
        e("val.decoding", "`quarter`, `dark`", "Argmax and a quarter pixel towards the higher neighbour, or DARK's refinement."),
        e("val.batch_size", format!("1–{}", l.batch), "Crops per inference batch."),
        e("val.box_score_threshold", "a number", "Detector boxes scoring below this are dropped."),
        e("val.joint_score_threshold", "a number", "Joints above this score count toward a person's score."),
        e("val.nms_oks_threshold", "a number", "OKS above which a lower-scoring person is suppressed."),
        e("detect.gaussian_alpha", "(0, 4]", "The centre Gaussian's σ is α·w/6 across and α·h/6 down; the central α·w × α·h of a box regresses it (TTFNet's α)."),
        e("detect.box_weight", "≥ 0", "Loss weight of the GIoU box regression (the heatmap's is 1)."),
        e("detect.scale_range", "[0, 1)", "Random scaling of the letterboxed image in [1 − s, 1 + s] while training."),
        e("detect.shift", "0–0.5", "Random shift of the image centre, a share of the input size, while training."),
        e("detect.max_detections", "1–1000", "Peaks kept per image (top-K)."),
        e("detect.min_score", prob, "Peaks scoring below this are dropped when evaluating."),
        e("detect.person_score", prob, "Boxes handed to the pose model score at least this."),
        e("detect.nms_iou", prob, "Box NMS threshold for the boxes handed to the pose model."),
    ]
}

/// The dotted keys of every leaf of `value` (objects are walked; arrays and scalars are leaves).
pub fn leaf_keys(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                leaf_keys(v, &key, out);
            }
        }
        _ => out.push(at.to_string()),
    }
}

/// A config with every optional key present (`serde` skips some when unset or default).
pub fn with_every_key() -> Config {
    let mut cfg = Config::defaults(Task::Detect);
    cfg.detect.max_detections += 1;
    cfg.model.joints = Some(17);
    cfg.model.backbone_checkpoint = Some("backbone.safetensors".into());
    cfg.augment.upper_body = Some(vec![0]);
    cfg
}

fn lookup<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(value, |v, k| v.get(k))
}

fn shown(value: Option<&Value>) -> String {
    match value {
        None => "absent".into(),
        Some(v) => format!("`{v}`"),
    }
}

/// The book's config reference page.
pub fn markdown() -> String {
    // Every key shown, also those serde leaves out when at their default.
    let json = |task| {
        let cfg = Config::defaults(task);
        let mut v = serde_json::to_value(&cfg).expect("a config serialises");
        v["model"]["task"] = serde_json::to_value(task).expect("a task serialises");
        v["detect"] = serde_json::to_value(&cfg.detect).expect("a config serialises");
        v
    };
    let (pose, classify) = (json(Task::Pose), json(Task::Classify));
    let mut page = String::from(
        "<!-- generated by dypose's config reference (src/config/reference.rs); do not edit: \
         DYPOSE_BLESS=1 cargo test --release --test config_reference rewrites it -->\n\
         # Config reference\n\n\
         Every key of a config file, with its default and what it accepts. A config is JSON; an unset \
         key takes the default of the config's `model.task` (pose and detector share theirs; a \
         classifier's differ where the table says so), relative paths are resolved from the file's \
         folder, unknown keys are refused, and `--set key=value` overrides any key before the values \
         are checked. Sizes are `[w, h]`.\n",
    );
    let mut section = "";
    for entry in entries() {
        let top = entry.key.split_once('.').map_or("top level", |(s, _)| s);
        if top != section {
            section = top;
            let title = if top == "top level" { "Top level".to_string() } else { format!("`{top}`") };
            page += &format!("\n## {title}\n\n| key | default | accepts | what it does |\n|---|---|---|---|\n");
        }
        let (p, c) = (lookup(&pose, entry.key), lookup(&classify, entry.key));
        let mut default = shown(p);
        if c != p {
            default += &format!("; classify: {}", shown(c));
        }
        page += &format!("| `{}` | {default} | {} | {} |\n", entry.key, entry.accepts, entry.meaning);
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_entry_and_every_entry_is_a_key() {
        let mut keys = Vec::new();
        leaf_keys(&serde_json::to_value(with_every_key()).unwrap(), "", &mut keys);
        keys.sort();
        let mut documented: Vec<String> = entries().iter().map(|e| e.key.to_string()).collect();
        documented.sort();
        let missing: Vec<&String> = keys.iter().filter(|k| !documented.contains(k)).collect();
        let unknown: Vec<&String> = documented.iter().filter(|k| !keys.contains(k)).collect();
        assert!(missing.is_empty(), "config keys without an entry in config::reference: {missing:?}");
        assert!(unknown.is_empty(), "entries that name no config key: {unknown:?}");
        let mut unique = documented.clone();
        unique.dedup();
        assert_eq!(unique.len(), documented.len(), "a key with two entries");
    }

    #[test]
    fn the_page_shows_each_tasks_defaults() {
        let page = markdown();
        assert!(page.contains("| `train.lr` | `0.001`; classify: `0.1` |"), "{page}");
        assert!(page.contains("| `train.optimizer` | `\"adam\"`; classify: `\"sgd\"` |"));
        assert!(page.contains("| `seed` | `0` |"));
        assert!(page.contains("| `model.task` | `\"pose\"`; classify: `\"classify\"` |"), "{page}");
        assert!(page.contains("| `detect.nms_iou` | `0.6` |"), "{page}");
        assert!(page.contains("| `model.joints` | absent |"), "{page}");
        assert!(page.contains(&format!("1–{}", LIMITS.batch)));
    }
}
