//! The loader on the real COCO sample: determinism across thread counts, bad images, clean stop.

use dypose::coco::{CocoDataset, KeypointSpec};
use dypose::config::{AugmentConfig, Size};
use dypose::data::augment::Augmenter;
use dypose::data::codec::HeatmapCodec;
use dypose::data::instances::{train_instances, Instance};
use dypose::data::loader::{Batch, BatchPart, Loader, LoaderConfig};
use dypose::data::sample::SampleSpec;
use std::path::Path;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/coco-sample");

fn instances(images: &Path) -> Vec<Instance> {
    let ds = CocoDataset::load(&Path::new(SAMPLE).join("annotations/person_keypoints_sample.json")).unwrap();
    train_instances(&ds, images, 1, 17).0
}

fn spec() -> SampleSpec {
    SampleSpec {
        codec: HeatmapCodec::new(Size::new(192, 256), Size::new(48, 64), 2.0),
        augment: Some(Augmenter { recipe: AugmentConfig::default(), aspect: 0.75, upper_body: (0..=10).collect() }),
        padding: 1.25,
        flip_permutation: KeypointSpec::coco17().flip_permutation(),
    }
}

fn config(workers: usize) -> LoaderConfig {
    LoaderConfig { batch_size: 4, seed: 42, shuffle: true, prefetch: 2, workers, drop_last: false }
}

#[test]
fn same_seed_same_batches_with_one_or_two_threads() {
    let inst = instances(&Path::new(SAMPLE).join("val2017"));
    assert!(inst.len() >= 8);
    let one: Vec<Batch> = Loader::new(inst.clone(), spec(), config(1)).unwrap().epoch(3).collect();
    let two: Vec<Batch> = Loader::new(inst.clone(), spec(), config(2)).unwrap().epoch(3).collect();
    assert_eq!(one, two);
    assert_eq!(one.iter().map(Batch::len).sum::<usize>(), inst.len());
    let b = &one[0];
    assert_eq!(b.inputs.len(), b.len() * 3 * 256 * 192);
    assert_eq!(b.targets.len(), b.len() * 17 * 64 * 48);
    assert_eq!(b.weights.len(), b.len() * 17);
    // Another epoch reshuffles and redraws augmentations.
    let other: Vec<Batch> = Loader::new(inst, spec(), config(2)).unwrap().epoch(4).collect();
    assert_ne!(one[0].indices, other[0].indices);
}

/// Data-parallel parts: at every step the ranks' batches, in rank order, are the global batch
/// of one process with `ranks ×` the batch size (the same samples, the same augmentation), a
/// short last step leaves the last ranks short or empty, and a resumed part skips whole steps.
#[test]
fn the_parts_of_a_step_are_the_global_batch_of_one_process() {
    let inst = instances(&Path::new(SAMPLE).join("val2017"));
    let n = inst.len();
    assert!(n > 8 && n % 8 != 0, "a short last step ({n} samples)");
    let per_rank = Loader::new(inst.clone(), spec(), config(1)).unwrap();
    let global = Loader::new(inst.clone(), spec(), LoaderConfig { batch_size: 8, ..config(1) }).unwrap();
    let parts: Vec<Vec<Batch>> =
        (0..2).map(|index| per_rank.epoch_part(5, 0, BatchPart { index, count: 2 }).collect()).collect();
    let whole: Vec<Batch> = global.epoch(5).collect();
    assert_eq!(per_rank.steps_per_epoch(2), whole.len());
    for (step, want) in whole.iter().enumerate() {
        let (a, b) = (&parts[0][step], &parts[1][step]);
        assert_eq!([a.indices.clone(), b.indices.clone()].concat(), want.indices, "step {step}");
        assert_eq!([a.inputs.clone(), b.inputs.clone()].concat(), want.inputs, "step {step}");
        assert_eq!([a.targets.clone(), b.targets.clone()].concat(), want.targets, "step {step}");
    }
    let last = whole.len() - 1;
    assert_eq!((parts[0][last].len(), parts[1][last].len()), ((n % 8).min(4), (n % 8).saturating_sub(4)));
    let resumed: Vec<Batch> = per_rank.epoch_part(5, 1, BatchPart { index: 1, count: 2 }).collect();
    assert_eq!(resumed, parts[1][1..].to_vec());
}

#[test]
fn unreadable_images_are_skipped_counted_and_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(SAMPLE).join("val2017");
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("000000040083.jpg"), b"\xff\xd8\xff not really a jpeg").unwrap();
    std::fs::remove_file(dir.path().join("000000196141.jpg")).unwrap();
    let inst = instances(dir.path());
    let bad = inst.iter().filter(|i| i.image_id == 40083 || i.image_id == 196141).count();
    let loader = Loader::new(inst.clone(), spec(), config(2)).unwrap();
    let mut epoch = loader.epoch(0);
    let n: usize = epoch.by_ref().map(|b| b.len()).sum();
    let report = epoch.report();
    assert_eq!(n, inst.len() - bad);
    assert_eq!(report.skipped_samples, bad);
    let names: Vec<String> =
        report.failed.keys().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["000000040083.jpg", "000000196141.jpg"]);
}

#[test]
fn dropping_the_iterator_stops_the_producer_before_returning() {
    use std::sync::atomic::Ordering;
    let inst = instances(&Path::new(SAMPLE).join("val2017"));
    let many: Vec<Instance> = inst.iter().cycle().take(200).cloned().collect();
    let loader = Loader::new(many, spec(), LoaderConfig { batch_size: 2, prefetch: 1, ..config(2) }).unwrap();
    let mut epoch = loader.epoch(0);
    let built = epoch.built();
    // Taking batches as fast as they come leaves the producer building the next one at the drop.
    for _ in 0..3 {
        assert!(epoch.next().is_some());
    }
    drop(epoch);
    let at_drop = built.load(Ordering::SeqCst);
    // Consumed 3; ahead of the consumer at most the queue (prefetch 1) and the batch in progress.
    assert!((3..=5).contains(&at_drop), "{at_drop} of 100 batches built");
    // The producer finished before drop returned: nothing is built afterwards.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(built.load(Ordering::SeqCst), at_drop, "the producer outlived the iterator");
}
