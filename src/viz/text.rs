//! Text on images with the bundled DejaVu Sans Mono (assets/fonts, Bitstream Vera licence).

use ab_glyph::{FontRef, PxScale};
use image::{Rgb, RgbImage};

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

pub fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT_BYTES).expect("the bundled font parses")
}

/// Draws `text` with its top-left corner at (x, y), `size` pixels high.
pub fn draw(img: &mut RgbImage, text: &str, x: i32, y: i32, size: f32, colour: Rgb<u8>) {
    imageproc::drawing::draw_text_mut(img, colour, x, y, PxScale::from(size), &font(), text);
}

/// Width and height of `text` in pixels.
pub fn size_of(text: &str, size: f32) -> (u32, u32) {
    imageproc::drawing::text_size(PxScale::from(size), &font(), text)
}

/// Text on a filled box (for labels over busy images).
pub fn label(img: &mut RgbImage, text: &str, x: i32, y: i32, size: f32, fg: Rgb<u8>, bg: Rgb<u8>) {
    let (w, h) = size_of(text, size);
    let rect = imageproc::rect::Rect::at(x, y).of_size(w + 4, h + 4);
    imageproc::drawing::draw_filled_rect_mut(img, rect, bg);
    draw(img, text, x + 2, y + 2, size, fg);
}
