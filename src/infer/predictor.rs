//! The top-down predictor: crops every box of an image by the training code's affine, runs the
//! network in batches (and on the mirrored crops for the flip test), decodes, maps the joints
//! back to the image, rescores and suppresses duplicates per image.

use super::boxes::{whole_image_box, PersonBox};
use super::post::{merge_flipped, mirror_inputs, oks_nms, rescore};
use crate::coco::results::keypoint_box_area;
use crate::coco::{Id, KeypointResult, KeypointSpec};
use crate::config::{Config, Size, ValConfig};
use crate::data::affine::{Affine, CropRegion};
use crate::data::codec::{Decoding, HeatmapCodec};
use crate::data::warp::{normalize_chw, warp_rgb};
use anyhow::Result;
use image::RgbImage;
use rayon::prelude::*;
use std::path::PathBuf;

/// Anything that turns normalised `n × 3 × H × W` crops into `n × J × h × w` heatmaps.
pub trait HeatmapModel {
    fn heatmaps(&mut self, inputs: &[f32], n: usize, size: Size) -> Result<Vec<f32>>;
    /// (layer, B × K weights) of every dynamic conv in the last `heatmaps` call.
    fn last_attention(&self) -> Vec<(String, Vec<f32>)>;
}

impl<D: crate::model::backend::ConvBackend> HeatmapModel for crate::model::network::Network<D> {
    fn heatmaps(&mut self, inputs: &[f32], n: usize, size: Size) -> Result<Vec<f32>> {
        let x = self.device().tensor_from_vec(inputs.to_vec(), (n, 3, size.height, size.width));
        Ok(self.forward(x, crate::model::layers::Ctx::INFERENCE).as_vec())
    }
    fn last_attention(&self) -> Vec<(String, Vec<f32>)> {
        crate::model::network::Network::last_attention(self)
    }
}

impl<M: HeatmapModel + ?Sized> HeatmapModel for &mut M {
    fn heatmaps(&mut self, inputs: &[f32], n: usize, size: Size) -> Result<Vec<f32>> {
        (**self).heatmaps(inputs, n, size)
    }
    fn last_attention(&self) -> Vec<(String, Vec<f32>)> {
        (**self).last_attention()
    }
}

impl<M: HeatmapModel + ?Sized> HeatmapModel for Box<M> {
    fn heatmaps(&mut self, inputs: &[f32], n: usize, size: Size) -> Result<Vec<f32>> {
        (**self).heatmaps(inputs, n, size)
    }
    fn last_attention(&self) -> Vec<(String, Vec<f32>)> {
        (**self).last_attention()
    }
}

#[derive(Debug, Clone)]
pub struct PredictOptions {
    pub flip: bool,
    pub decoding: Decoding,
    pub batch_size: usize,
    /// Joints scoring above this count toward the instance score (0.2).
    pub joint_threshold: f64,
    /// OKS above which the weaker of two poses is dropped (0.9).
    pub nms_threshold: f64,
    /// Box padding (1.25), as in training.
    pub padding: f64,
}

impl PredictOptions {
    /// The test-time options of a config's `val` section, with the training crops' box padding.
    pub fn from_config(val: &ValConfig, padding: f64) -> Self {
        PredictOptions {
            flip: val.flip_test,
            decoding: val.decoding,
            batch_size: val.batch_size.max(1),
            joint_threshold: val.joint_score_threshold,
            nms_threshold: val.nms_oks_threshold,
            padding,
        }
    }
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            flip: true,
            decoding: Decoding::Quarter,
            batch_size: 32,
            joint_threshold: 0.2,
            nms_threshold: 0.9,
            padding: 1.25,
        }
    }
}

/// One image to run on, with its person boxes (`None`: the whole image is one box; an empty
/// list: nobody to predict, as when a detector finds no one).
#[derive(Debug, Clone)]
pub struct ImageJob {
    pub image_id: Id,
    pub path: PathBuf,
    pub boxes: Option<Vec<PersonBox>>,
}

/// One predicted person.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub image_id: Id,
    pub bbox: [f64; 4],
    pub box_score: f64,
    /// `[x, y, score]` per joint, image pixels.
    pub keypoints: Vec<[f64; 3]>,
    /// Box score × mean confident joint score.
    pub score: f64,
    /// Area of the padded crop region (mmpose's scale for OKS-NMS).
    pub area: f64,
}

impl Person {
    /// The COCO keypoint result of this person, with the area pycocotools gives a result
    /// without a `bbox`: the box around all its joints.
    pub fn to_result(&self, category_id: Id) -> KeypointResult {
        let keypoints: Vec<f64> = self.keypoints.iter().flatten().copied().collect();
        KeypointResult {
            image_id: self.image_id,
            category_id,
            area: keypoint_box_area(&keypoints),
            keypoints,
            score: self.score,
        }
    }
}

/// The COCO keypoint results of `persons`, in their order.
pub fn results_of(persons: &[Person], category_id: Id) -> Vec<KeypointResult> {
    persons.iter().map(|p| p.to_result(category_id)).collect()
}

/// The crop region and image→crop affine of a box.
pub fn crop_of(bbox: [f64; 4], codec: &HeatmapCodec, padding: f64) -> (CropRegion, Affine) {
    let input = codec.input;
    let region = CropRegion::from_bbox(bbox, input.width as f64 / input.height as f64, padding);
    (region, Affine::crop(region.center, region.size, 0.0, input))
}

/// Decodes one crop's `J × h × w` heatmaps into a person in image coordinates (not yet rescored
/// against others: `score` is already the instance score).
pub fn person_from_heatmaps(maps: &[f32], pb: &PersonBox, codec: &HeatmapCodec, opts: &PredictOptions) -> Person {
    let (region, m) = crop_of(pb.bbox, codec, opts.padding);
    let back = m.inverse();
    let keypoints: Vec<[f64; 3]> = codec
        .decode(maps, opts.decoding)
        .into_iter()
        .map(|(p, s)| {
            let q = back.apply([p[0] as f64, p[1] as f64]);
            [q[0], q[1], s as f64]
        })
        .collect();
    let score = rescore(pb.score, keypoints.iter().map(|k| k[2]), opts.joint_threshold);
    Person {
        image_id: pb.image_id,
        bbox: pb.bbox,
        box_score: pb.score,
        keypoints,
        score,
        area: region.size[0] * region.size[1],
    }
}

/// OKS-NMS over the persons of one image; survivors best first.
pub fn suppress(persons: Vec<Person>, sigmas: &[f64], threshold: f64) -> Vec<Person> {
    let poses: Vec<&[[f64; 3]]> = persons.iter().map(|p| p.keypoints.as_slice()).collect();
    let scores: Vec<f64> = persons.iter().map(|p| p.score).collect();
    let areas: Vec<f64> = persons.iter().map(|p| p.area).collect();
    let keep = oks_nms(&poses, &scores, &areas, sigmas, threshold);
    keep.into_iter().map(|i| persons[i].clone()).collect()
}

/// The network's heatmaps for `n` crops, averaged with those of the mirrored crops when
/// `flip_permutation` is given.
pub fn heatmaps_with_flip(
    model: &mut impl HeatmapModel,
    inputs: &[f32],
    n: usize,
    codec: &HeatmapCodec,
    flip_permutation: Option<&[usize]>,
) -> Result<Vec<f32>> {
    let mut maps = model.heatmaps(inputs, n, codec.input)?;
    if let Some(perm) = flip_permutation {
        let flipped = model.heatmaps(&mirror_inputs(inputs, codec.input), n, codec.input)?;
        let per = maps.len() / n.max(1);
        maps.par_chunks_mut(per)
            .zip(flipped.par_chunks(per))
            .for_each(|(a, b)| merge_flipped(a, b, perm, codec.heatmap));
    }
    Ok(maps)
}

/// Runs a model over images. `sigmas` and `flip_permutation` come from the keypoint spec.
pub struct Predictor<M> {
    pub model: M,
    pub codec: HeatmapCodec,
    pub options: PredictOptions,
    pub flip_permutation: Vec<usize>,
    pub sigmas: Vec<f64>,
}

/// What a run produced: persons (per image, best first) and the images that could not be read.
#[derive(Debug, Clone, Default)]
pub struct Predictions {
    pub persons: Vec<Person>,
    pub failed: Vec<(PathBuf, String)>,
    pub crops: usize,
}

impl<M: HeatmapModel> Predictor<M> {
    /// `model` with the config's codec and test-time options, and the keypoint set's flip pairs
    /// and sigmas (which it must have: OKS-NMS needs them).
    pub fn for_config(model: M, cfg: &Config, spec: &KeypointSpec) -> Result<Self> {
        anyhow::ensure!(
            cfg.model.task == crate::config::Task::Pose,
            "this checkpoint is a person detector (model.task \"detect\"), not a pose model: run it with `dypose detect`, or give it to the pose model as --detector"
        );
        Ok(Predictor {
            model,
            codec: HeatmapCodec::from_config(cfg),
            options: PredictOptions::from_config(&cfg.val, cfg.box_padding),
            flip_permutation: spec.flip_permutation(),
            sigmas: spec.sigmas()?.to_vec(),
        })
    }

    /// Predicts every job; `each` sees every readable image with its final persons (for drawing),
    /// in job order. Everything is kept: for collections too large to hold, see [`Self::stream`].
    pub fn run(
        &mut self,
        jobs: &[ImageJob],
        mut each: impl FnMut(&ImageJob, &RgbImage, &[Person]) -> Result<()> + Send,
    ) -> Result<Predictions> {
        let mut out = Predictions::default();
        out.crops = self.stream(jobs, |job, image, persons| {
            match image {
                Ok(img) => each(job, img, &persons)?,
                Err(e) => out.failed.push((job.path.clone(), e.to_string())),
            }
            out.persons.extend(persons);
            Ok(())
        })?;
        Ok(out)
    }

    /// Predicts every job and hands each image, in job order, to `sink` with its final persons
    /// (an unreadable image comes as `Err(why)` with none); keeps nothing. Returns the number of
    /// crops run.
    ///
    /// Three stages overlap so that a GPU never waits for the CPUs: one thread reads the images
    /// of the next chunk and cuts their crops (and their mirror images for the flip test) into
    /// network inputs, over all cores; this thread runs the network only; a third decodes the
    /// heatmaps of the previous chunk, suppresses duplicates and calls `sink` (drawing, writing).
    /// Each stage hands on one chunk at a time, so at most a few chunks are in memory.
    pub fn stream(
        &mut self,
        jobs: &[ImageJob],
        sink: impl FnMut(&ImageJob, ImageRead, Vec<Person>) -> Result<()> + Send,
    ) -> Result<usize> {
        let bar = crate::progress::bar(jobs.len() as u64, "predict", "images");
        // Chunks of images small enough to keep a few in memory, big enough to fill a few batches.
        let per_chunk = (self.options.batch_size * 2).max(rayon::current_num_threads());
        let Predictor { model, codec, options, flip_permutation, sigmas } = self;
        let (codec, options, sigmas) = (&*codec, &*options, &sigmas[..]);
        let flip = options.flip.then_some(flip_permutation.as_slice());
        let crops = std::thread::scope(|scope| -> Result<usize> {
            let (to_network, prepared) = std::sync::mpsc::sync_channel::<PreparedChunk>(1);
            let (to_decoding, computed) = std::sync::mpsc::sync_channel::<ComputedChunk>(1);
            scope.spawn(move || {
                for chunk in jobs.chunks(per_chunk) {
                    // A closed channel means a later stage stopped on an error.
                    if to_network.send(PreparedChunk::new(chunk, codec, options, flip.is_some())).is_err() {
                        break;
                    }
                }
            });
            let bar = &bar;
            let decoding = scope.spawn(move || -> Result<usize> {
                let mut finish = Finish { codec, options, flip, sigmas, sink, crops: 0 };
                let mut start = 0;
                for chunk in computed {
                    let end = start + chunk.images.len();
                    finish.chunk(&jobs[start..end], chunk, bar)?;
                    start = end;
                }
                Ok(finish.crops)
            });
            let network = prepared.into_iter().try_for_each(|chunk| {
                let computed = chunk.run_network(model, codec, options)?;
                // Stop quietly when decoding stopped: its error is the one to report.
                let _ = to_decoding.send(computed);
                Ok::<(), anyhow::Error>(())
            });
            drop(to_decoding);
            let crops = decoding.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            network.map(|()| crops)
        })?;
        bar.finish_and_clear();
        Ok(crops)
    }
}

/// An image as the predictor read it: its pixels, or why it could not be read.
pub type ImageRead<'a> = std::result::Result<&'a RgbImage, &'a str>;

/// A chunk of jobs read and cut into network inputs: its images (or why one could not be
/// read), its crops as (image index, box), their normalised inputs in order and, for the flip
/// test, the inputs' mirror images.
struct PreparedChunk {
    images: Vec<std::result::Result<RgbImage, String>>,
    crops: Vec<(usize, PersonBox)>,
    inputs: Vec<f32>,
    mirrored: Option<Vec<f32>>,
}

impl PreparedChunk {
    /// Reads the chunk's images and warps every box's crop (parallel over images and crops).
    fn new(chunk: &[ImageJob], codec: &HeatmapCodec, options: &PredictOptions, flip: bool) -> Self {
        let images: Vec<std::result::Result<RgbImage, String>> =
            chunk.par_iter().map(|j| crate::data::loader::load_rgb(&j.path)).collect();
        let mut crops: Vec<(usize, PersonBox)> = Vec::new();
        for (i, (job, img)) in chunk.iter().zip(&images).enumerate() {
            if let Ok(img) = img {
                match &job.boxes {
                    None => crops.push((i, whole_image_box(job.image_id, img.width(), img.height()))),
                    Some(boxes) => crops.extend(boxes.iter().map(|b| (i, b.clone()))),
                }
            }
        }
        let per_crop = 3 * codec.input.area();
        let mut inputs = vec![0.0f32; crops.len() * per_crop];
        inputs.par_chunks_mut(per_crop).zip(&crops).for_each(|(dst, (i, pb))| {
            let img = images[*i].as_ref().expect("only readable images get crops");
            let (_, m) = crop_of(pb.bbox, codec, options.padding);
            normalize_chw(&warp_rgb(img, &m, codec.input), dst);
        });
        let mirrored = flip.then(|| mirror_inputs(&inputs, codec.input));
        PreparedChunk { images, crops, inputs, mirrored }
    }

    /// The network's heatmaps for every crop (and its mirror image), in batches.
    fn run_network(
        self,
        model: &mut impl HeatmapModel,
        codec: &HeatmapCodec,
        options: &PredictOptions,
    ) -> Result<ComputedChunk> {
        let per_batch = options.batch_size.max(1) * 3 * codec.input.area();
        let mut run = |inputs: &[f32]| -> Result<Vec<f32>> {
            let mut maps = Vec::new();
            for batch in inputs.chunks(per_batch) {
                maps.extend(model.heatmaps(batch, batch.len() / (3 * codec.input.area()), codec.input)?);
            }
            Ok(maps)
        };
        let maps = run(&self.inputs)?;
        let mirrored_maps = self.mirrored.as_deref().map(&mut run).transpose()?;
        Ok(ComputedChunk { images: self.images, crops: self.crops, maps, mirrored_maps })
    }
}

/// A chunk after the network: its images, crops and their heatmaps (`J × h × w` each), and the
/// heatmaps of the mirrored crops for the flip test.
struct ComputedChunk {
    images: Vec<std::result::Result<RgbImage, String>>,
    crops: Vec<(usize, PersonBox)>,
    maps: Vec<f32>,
    mirrored_maps: Option<Vec<f32>>,
}

/// The last stage: decoding, suppression and `sink`, chunk after chunk.
struct Finish<'a, F> {
    codec: &'a HeatmapCodec,
    options: &'a PredictOptions,
    flip: Option<&'a [usize]>,
    sigmas: &'a [f64],
    sink: F,
    crops: usize,
}

impl<F: FnMut(&ImageJob, ImageRead, Vec<Person>) -> Result<()>> Finish<'_, F> {
    fn chunk(&mut self, jobs: &[ImageJob], c: ComputedChunk, bar: &indicatif::ProgressBar) -> Result<()> {
        let (codec, options) = (self.codec, self.options);
        // J × h × w numbers per crop.
        let per = c.maps.len().checked_div(c.crops.len()).unwrap_or(0);
        let mut maps = c.maps;
        if let (Some(perm), Some(mirrored)) = (self.flip, &c.mirrored_maps) {
            maps.par_chunks_mut(per)
                .zip(mirrored.par_chunks(per))
                .for_each(|(a, b)| merge_flipped(a, b, perm, codec.heatmap));
        }
        let mut per_image: Vec<Vec<Person>> = vec![Vec::new(); jobs.len()];
        if per > 0 {
            let persons: Vec<Person> = maps
                .par_chunks(per)
                .zip(&c.crops)
                .map(|(m, (_, pb))| person_from_heatmaps(m, pb, codec, options))
                .collect();
            for ((i, _), p) in c.crops.iter().zip(persons) {
                per_image[*i].push(p);
            }
        }
        self.crops += c.crops.len();
        for ((job, img), persons) in jobs.iter().zip(&c.images).zip(per_image) {
            let kept = suppress(persons, self.sigmas, options.nms_threshold);
            (self.sink)(job, img.as_ref().map_err(|e| e.as_str()), kept)?;
            bar.inc(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::blueprint::Blueprint;
    use crate::model::network::Network;

    /// Heatmaps that depend on each crop's pixels: one peak per joint, placed by the crop's mean,
    /// so that a crop paired with another crop's maps would show.
    struct PixelMeans;

    impl HeatmapModel for PixelMeans {
        fn heatmaps(&mut self, inputs: &[f32], n: usize, size: Size) -> Result<Vec<f32>> {
            let (j, w, h) = (3, size.width / 4, size.height / 4);
            let mut out = vec![0.0; n * j * w * h];
            for (crop, maps) in inputs.chunks(inputs.len() / n).zip(out.chunks_mut(j * w * h)) {
                let mean = crop.iter().map(|v| v.abs()).sum::<f32>() / crop.len() as f32;
                for (k, map) in maps.chunks_mut(w * h).enumerate() {
                    let at = ((mean * 997.0) as usize + 13 * k) % (w * h);
                    map[at] = 1.0;
                }
            }
            Ok(out)
        }
        fn last_attention(&self) -> Vec<(String, Vec<f32>)> {
            Vec::new()
        }
    }

    /// The overlapping stages give what one image after another would: the same persons, in job
    /// order, whatever the chunk size, with unreadable images reported in order and `each`
    /// called once per readable image, in order.
    #[test]
    fn the_pipeline_keeps_job_order_and_pairs_each_crop_with_its_maps() {
        let dir = tempfile::tempdir().unwrap();
        let mut jobs = Vec::new();
        for i in 0..11u32 {
            let path = dir.path().join(format!("{i}.png"));
            match i % 5 {
                3 => std::fs::write(&path, b"not an image").unwrap(),
                _ => image::RgbImage::from_fn(40 + i, 30, |x, y| image::Rgb([(x * i) as u8, (y * 7) as u8, i as u8]))
                    .save(&path)
                    .unwrap(),
            }
            let boxes = (i % 4 != 1).then(|| {
                (0..(i % 3 + 1))
                    .map(|b| PersonBox { image_id: i as i64, bbox: [b as f64 * 3.0, 2.0, 20.0, 15.0], score: 0.9 })
                    .collect()
            });
            jobs.push(ImageJob { image_id: i as i64, path, boxes });
        }
        let spec = KeypointSpec {
            name: "three".into(),
            keypoints: vec!["l".into(), "r".into(), "c".into()],
            flip_pairs: vec![[0, 1]],
            sigmas: Some(vec![0.1; 3]),
            limbs: vec![],
            upper_body: vec![],
        };
        let run = |batch_size: usize, flip: bool| {
            let mut p = Predictor {
                model: PixelMeans,
                codec: HeatmapCodec::new(Size::new(32, 32), Size::new(8, 8), 2.0),
                options: PredictOptions { batch_size, flip, ..Default::default() },
                flip_permutation: spec.flip_permutation(),
                sigmas: spec.sigmas().unwrap().to_vec(),
            };
            let mut seen = Vec::new();
            let out = p
                .run(&jobs, |job, _, persons| {
                    seen.push((job.image_id, persons.len()));
                    Ok(())
                })
                .unwrap();
            (out.persons, out.failed, out.crops, seen)
        };
        // One crop at a time, without the stages: the reference.
        let one_by_one = |flip: bool| {
            let codec = HeatmapCodec::new(Size::new(32, 32), Size::new(8, 8), 2.0);
            let opts = PredictOptions { flip, ..Default::default() };
            let mut persons = Vec::new();
            for job in &jobs {
                let Ok(img) = crate::data::loader::load_rgb(&job.path) else { continue };
                let boxes =
                    job.boxes.clone().unwrap_or_else(|| vec![whole_image_box(job.image_id, img.width(), img.height())]);
                let mut found = Vec::new();
                for pb in &boxes {
                    let mut input = vec![0.0; 3 * 32 * 32];
                    normalize_chw(&warp_rgb(&img, &crop_of(pb.bbox, &codec, opts.padding).1, codec.input), &mut input);
                    let perm = spec.flip_permutation();
                    let maps =
                        heatmaps_with_flip(&mut PixelMeans, &input, 1, &codec, flip.then_some(&perm[..])).unwrap();
                    found.push(person_from_heatmaps(&maps, pb, &codec, &opts));
                }
                persons.extend(suppress(found, spec.sigmas().unwrap(), opts.nms_threshold));
            }
            persons
        };
        for flip in [false, true] {
            let (persons, failed, crops, seen) = run(64, flip);
            assert_eq!(persons, one_by_one(flip), "flip {flip}");
            assert_eq!(
                failed.iter().map(|f| f.0.clone()).collect::<Vec<_>>(),
                vec![jobs[3].path.clone(), jobs[8].path.clone()]
            );
            assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![0, 1, 2, 4, 5, 6, 7, 9, 10]);
            assert!(crops > 11 && persons.windows(2).all(|w| w[0].image_id <= w[1].image_id));
            // Batches of one make a chunk of two images (the thread count at least): many chunks.
            assert_eq!(run(1, flip), (persons, failed, crops, seen), "flip {flip}");
        }
    }

    /// With a mirror-symmetric crop, the flip-test maps of a left joint are the mirror of its
    /// right partner's (about W/2, the one-pixel shift included), for any network: so decoded
    /// pairs sit at x and W − x with equal y and score.
    #[test]
    fn flip_test_on_a_symmetric_input_gives_symmetric_pairs() {
        let cfg = crate::config::ModelConfig {
            arch: crate::config::Arch::DyResnet10,
            width: 0.125,
            head_channels: 16,
            ..Default::default()
        };
        let mut net = Network::new(&dfdx::prelude::Cpu::default(), &Blueprint::pose(&cfg, 17).unwrap(), 3);
        let codec = HeatmapCodec::new(Size::new(64, 64), Size::new(16, 16), 2.0);
        let mut rng = crate::model::layers::init_rng(9);
        let half = crate::model::layers::random_values(&mut rng, 3 * 64 * 32);
        let input: Vec<f32> =
            half.chunks(32).flat_map(|r| r.iter().chain(r.iter().rev()).copied().collect::<Vec<_>>()).collect();
        assert_eq!(mirror_inputs(&input, Size::new(64, 64)), input);
        let spec = KeypointSpec::coco17();
        let perm = spec.flip_permutation();
        let maps = heatmaps_with_flip(&mut net, &input, 1, &codec, Some(&perm)).unwrap();
        let joints = codec.decode(&maps, Decoding::Quarter);
        for [l, r] in &spec.flip_pairs {
            let ((pl, sl), (pr, sr)) = (joints[*l], joints[*r]);
            assert!((pl[0] + pr[0] - 64.0).abs() < 1e-4, "pair {l},{r}: x {} and {}", pl[0], pr[0]);
            assert_eq!((pl[1], sl), (pr[1], sr), "pair {l},{r}");
        }
        // Without the flip test the network's own (untrained) maps are not symmetric.
        let plain = codec.decode(&net.heatmaps(&input, 1, codec.input).unwrap(), Decoding::Quarter);
        assert!(spec.flip_pairs.iter().any(|[l, r]| (plain[*l].0[0] + plain[*r].0[0] - 64.0).abs() > 1e-4));
    }
}
