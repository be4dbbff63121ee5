//! Image classification: the evaluation view of each image → logits → the top classes.
//! Only `ImageClassifier` for `Network` touches tensors.

use crate::config::Size;
use crate::data::classify::eval_input;
use anyhow::Result;
use image::RgbImage;

/// A network that maps (n, 3, H, W) inputs to (n, classes) logits.
pub trait ImageClassifier {
    fn logits(&mut self, inputs: &[f32], n: usize, size: Size) -> Result<Vec<f32>>;
}

impl<D: crate::model::backend::ConvBackend> ImageClassifier for crate::model::network::Network<D> {
    fn logits(&mut self, inputs: &[f32], n: usize, size: Size) -> Result<Vec<f32>> {
        let x = self.device().tensor_from_vec(inputs.to_vec(), (n, 3, size.height, size.width));
        Ok(crate::model::network::Network::logits(self, x, crate::model::layers::Ctx::INFERENCE).as_vec())
    }
}

impl<M: ImageClassifier + ?Sized> ImageClassifier for Box<M> {
    fn logits(&mut self, inputs: &[f32], n: usize, size: Size) -> Result<Vec<f32>> {
        (**self).logits(inputs, n, size)
    }
}

/// The logits of each image (its evaluation view at `input`), `batch` images per pass.
pub fn classify(
    model: &mut impl ImageClassifier,
    images: &[RgbImage],
    input: Size,
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch.max(1)) {
        let inputs: Vec<f32> = chunk.iter().flat_map(|img| eval_input(img, input)).collect();
        let logits = model.logits(&inputs, chunk.len(), input)?;
        let classes = logits.len() / chunk.len();
        out.extend(logits.chunks_exact(classes).map(<[f32]>::to_vec));
    }
    Ok(out)
}

/// The `k` most probable classes: (index, softmax probability), most probable first (ties by
/// index).
pub fn top_k(logits: &[f32], k: usize) -> Vec<(usize, f64)> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exp: Vec<f64> = logits.iter().map(|&v| (v as f64 - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    let mut ranked: Vec<(usize, f64)> = exp.iter().map(|e| e / sum).enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_by_hand() {
        // Softmax of [0, ln 3, 0, ln 2]: 1/7, 3/7, 1/7, 2/7.
        let t = top_k(&[0.0, 3f32.ln(), 0.0, 2f32.ln()], 3);
        assert_eq!(t.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 3, 0], "equal probabilities by index");
        assert!((t[0].1 - 3.0 / 7.0).abs() < 1e-6 && (t[2].1 - 1.0 / 7.0).abs() < 1e-6);
    }
}
