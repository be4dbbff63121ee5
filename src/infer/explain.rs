//! What the network sees and does for one person crop: one forward pass without the flip test,
//! so the attention weights π of every dynamic conv are the ones that produced the heatmaps.
//! `viz::explain` draws the result.

use super::predictor::{crop_of, person_from_heatmaps, HeatmapModel, Person, Predictor};
use super::PersonBox;
use crate::data::warp::{normalize_chw, warp_rgb};
use anyhow::Result;
use image::RgbImage;

pub struct Explanation {
    /// The person decoded from the crop, in image coordinates.
    pub person: Person,
    /// (layer, K weights) of every dynamic conv; empty for a static model.
    pub attention: Vec<(String, Vec<f32>)>,
    /// The crop the network saw.
    pub crop: RgbImage,
    /// Its `J × h × w` heatmaps.
    pub heatmaps: Vec<f32>,
    /// The decoded joints `[x, y, score]` in crop pixels.
    pub joints_in_crop: Vec<[f64; 3]>,
}

/// Runs `predictor`'s network once on the crop of `pb` in `image` (no flip test).
pub fn explain_crop<M: HeatmapModel>(
    predictor: &mut Predictor<M>,
    image: &RgbImage,
    pb: &PersonBox,
) -> Result<Explanation> {
    let (codec, options) = (&predictor.codec, &predictor.options);
    let (_, m) = crop_of(pb.bbox, codec, options.padding);
    let crop = warp_rgb(image, &m, codec.input);
    let mut input = vec![0.0f32; 3 * codec.input.area()];
    normalize_chw(&crop, &mut input);
    let heatmaps = predictor.model.heatmaps(&input, 1, codec.input)?;
    let attention = predictor.model.last_attention();
    let person = person_from_heatmaps(&heatmaps, pb, codec, options);
    let joints_in_crop = person
        .keypoints
        .iter()
        .map(|k| {
            let q = m.apply([k[0], k[1]]);
            [q[0], q[1], k[2]]
        })
        .collect();
    Ok(Explanation { person, attention, crop, heatmaps, joints_in_crop })
}
