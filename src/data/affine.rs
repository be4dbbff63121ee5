//! Person box → crop region → 2×3 affine map, the geometry shared by training crops, target
//! encoding and mapping predictions back to the image (SimpleBaseline/mmpose conventions, sizes
//! in pixels).

use crate::config::Size;

/// A 2×3 affine map `[a, b, c, d, e, f]`: (x, y) ↦ (a·x + b·y + c, d·x + e·y + f).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub [f64; 6]);

impl Affine {
    pub const IDENTITY: Affine = Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        let m = &self.0;
        [m[0] * p[0] + m[1] * p[1] + m[2], m[3] * p[0] + m[4] * p[1] + m[5]]
    }

    /// The inverse map, computed in the same order as OpenCV's `warpAffine`/`invertAffineTransform`
    /// so that our crops sample exactly where OpenCV's do.
    pub fn inverse(&self) -> Affine {
        let m = &self.0;
        let det = m[0] * m[4] - m[1] * m[3];
        let d = if det != 0.0 { 1.0 / det } else { 0.0 };
        let (a11, a22) = (m[4] * d, m[0] * d);
        let (a12, a21) = (m[1] * -d, m[3] * -d);
        let b1 = -a11 * m[2] - a12 * m[5];
        let b2 = -a21 * m[2] - a22 * m[5];
        Affine([a11, a12, b1, a21, a22, b2])
    }

    /// `self ∘ first`: apply `first`, then `self`.
    pub fn after(&self, first: &Affine) -> Affine {
        let (a, b) = (&self.0, &first.0);
        Affine([
            a[0] * b[0] + a[1] * b[3],
            a[0] * b[1] + a[1] * b[4],
            a[0] * b[2] + a[1] * b[5] + a[2],
            a[3] * b[0] + a[4] * b[3],
            a[3] * b[1] + a[4] * b[4],
            a[3] * b[2] + a[4] * b[5] + a[5],
        ])
    }

    /// The horizontal mirror of an image `width` pixels wide: x ↦ width − 1 − x
    /// (the reference code flips the pixel array, so pixel centres swap exactly).
    pub fn mirror_x(width: u32) -> Affine {
        Affine([-1.0, 0.0, width as f64 - 1.0, 0.0, 1.0, 0.0])
    }

    /// The crop map of a region in an image `image_width` pixels wide, optionally flipped. The
    /// reference flips the pixel array and mirrors the centre, then crops; both are folded into
    /// one map here so the image is sampled once.
    pub fn crop_flipped(
        center: [f64; 2],
        size: [f64; 2],
        rotation_deg: f64,
        flip: bool,
        image_width: u32,
        out: Size,
    ) -> Affine {
        if flip {
            let mirrored = [image_width as f64 - 1.0 - center[0], center[1]];
            Affine::crop(mirrored, size, rotation_deg, out).after(&Affine::mirror_x(image_width))
        } else {
            Affine::crop(center, size, rotation_deg, out)
        }
    }

    /// Maps the region of `size` (w, h) pixels centred at `center`, rotated by `rotation_deg`,
    /// onto an `out` (w, h) crop: the centre goes to (w/2, h/2), the region's width to the crop's
    /// width. The closed form of SimpleBaseline's three-point `get_affine_transform`.
    pub fn crop(center: [f64; 2], size: [f64; 2], rotation_deg: f64, out: Size) -> Affine {
        let k = out.width as f64 / size[0];
        let (sn, cs) = rotation_deg.to_radians().sin_cos();
        let (a, b, d, e) = (k * cs, k * sn, -k * sn, k * cs);
        let (ox, oy) = (out.width as f64 * 0.5, out.height as f64 * 0.5);
        Affine([a, b, ox - a * center[0] - b * center[1], d, e, oy - d * center[0] - e * center[1]])
    }
}

/// A crop region: centre and size in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropRegion {
    pub center: [f64; 2],
    pub size: [f64; 2],
}

impl CropRegion {
    /// From a COCO `[x, y, w, h]` box: widen or heighten it to `aspect` (w/h), then pad
    /// by `padding` (1.25 in the reference recipe).
    pub fn from_bbox(bbox: [f64; 4], aspect: f64, padding: f64) -> CropRegion {
        let [x, y, w, h] = bbox;
        CropRegion { center: [x + w * 0.5, y + h * 0.5], size: fit_aspect(w, h, aspect, padding) }
    }
}

/// Grows (w, h) to the aspect ratio w/h = `aspect`, then scales both by `padding`.
pub fn fit_aspect(w: f64, h: f64, aspect: f64, padding: f64) -> [f64; 2] {
    let (w, h) = if w > aspect * h {
        (w, w / aspect)
    } else if w < aspect * h {
        (h * aspect, h)
    } else {
        (w, h)
    };
    [w * padding, h * padding]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 2], b: [f64; 2], tol: f64) -> bool {
        (a[0] - b[0]).abs() <= tol && (a[1] - b[1]).abs() <= tol
    }

    /// SimpleBaseline's construction, written out naively: three point pairs, solved as a
    /// linear system (the independent reference for `Affine::crop`).
    fn three_point_reference(center: [f64; 2], size: [f64; 2], rot: f64, out: Size) -> Affine {
        let rotate = |p: [f64; 2], t: f64| [p[0] * t.cos() - p[1] * t.sin(), p[0] * t.sin() + p[1] * t.cos()];
        let third = |a: [f64; 2], b: [f64; 2]| [b[0] - (a[1] - b[1]), b[1] + (a[0] - b[0])];
        let dir = rotate([0.0, -size[0] * 0.5], rot.to_radians());
        let (ow, oh) = (out.width as f64, out.height as f64);
        let src0 = center;
        let src1 = [center[0] + dir[0], center[1] + dir[1]];
        let dst0 = [ow * 0.5, oh * 0.5];
        let dst1 = [ow * 0.5, oh * 0.5 - ow * 0.5];
        let src = [src0, src1, third(src0, src1)];
        let dst = [dst0, dst1, third(dst0, dst1)];
        // Solve [x y 1] · [a b c]ᵀ = x' (and y') by Cramer's rule.
        let det3 = |m: [[f64; 3]; 3]| {
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        };
        let a = [[src[0][0], src[0][1], 1.0], [src[1][0], src[1][1], 1.0], [src[2][0], src[2][1], 1.0]];
        let d = det3(a);
        let mut m = [0.0; 6];
        for row in 0..2 {
            for col in 0..3 {
                let mut ac = a;
                for i in 0..3 {
                    ac[i][col] = dst[i][row];
                }
                m[row * 3 + col] = det3(ac) / d;
            }
        }
        Affine(m)
    }

    #[test]
    fn box_corners_land_on_the_crop_corners() {
        let region = CropRegion::from_bbox([100.0, 50.0, 60.0, 80.0], 0.75, 1.0);
        assert_eq!(region.size, [60.0, 80.0]);
        let m = Affine::crop(region.center, region.size, 0.0, Size::new(192, 256));
        assert!(close(m.apply([100.0, 50.0]), [0.0, 0.0], 1e-9));
        assert!(close(m.apply([160.0, 130.0]), [192.0, 256.0], 1e-9));
        assert!(close(m.apply([100.0, 130.0]), [0.0, 256.0], 1e-9));
        // 90°: the box's top-right corner (dx = +w/2, dy = −h/2) goes to the crop's top-left.
        let sq = Affine::crop([0.0, 0.0], [10.0, 10.0], 90.0, Size::new(10, 10));
        assert!(close(sq.apply([5.0, -5.0]), [0.0, 0.0], 1e-9), "{:?}", sq.apply([5.0, -5.0]));
    }

    #[test]
    fn closed_form_equals_the_three_point_construction() {
        for &(rot, cx, cy, w) in
            &[(0.0, 10.0, 20.0, 30.0), (37.0, 300.0, 200.0, 150.0), (-90.0, 5.5, 7.25, 12.0), (171.0, 0.0, 0.0, 400.0)]
        {
            let size = [w, w / 0.75];
            let a = Affine::crop([cx, cy], size, rot, Size::new(192, 256));
            let b = three_point_reference([cx, cy], size, rot, Size::new(192, 256));
            for i in 0..6 {
                assert!((a.0[i] - b.0[i]).abs() < 1e-9 * (1.0 + b.0[i].abs()), "rot {rot}: {a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn inverse_round_trips_points() {
        let m = Affine::crop([321.7, 123.4], [210.0, 280.0], 33.0, Size::new(192, 256)).after(&Affine::mirror_x(640));
        let inv = m.inverse();
        for &p in &[[0.0, 0.0], [639.0, 479.0], [-50.5, 1000.25], [321.7, 123.4]] {
            assert!(close(inv.apply(m.apply(p)), p, 1e-4));
            assert!(close(m.after(&inv).apply(p), p, 1e-9));
        }
    }

    #[test]
    fn a_flipped_crop_is_the_mirror_of_the_unflipped_one() {
        // Mirroring the image, the centre and the rotation mirrors the crop about its centre
        // line x = out_w / 2, where the region's centre lands in both.
        let (c, s) = ([250.0, 140.0], [120.0, 160.0]);
        let plain = Affine::crop(c, s, 20.0, Size::new(192, 256));
        let flipped = Affine::crop_flipped(c, s, -20.0, true, 640, Size::new(192, 256));
        for &p in &[[250.0, 140.0], [200.0, 100.0], [300.5, 210.25]] {
            let a = plain.apply(p);
            let b = flipped.apply(p);
            assert!(close([192.0 - a[0], a[1]], b, 1e-9), "{a:?} {b:?}");
        }
    }

    #[test]
    fn aspect_fix_and_padding() {
        assert_eq!(fit_aspect(30.0, 100.0, 0.75, 1.25), [75.0 * 1.25, 100.0 * 1.25]);
        assert_eq!(fit_aspect(90.0, 100.0, 0.75, 1.0), [90.0, 120.0]);
        assert_eq!(Affine::mirror_x(100).apply([0.0, 5.0]), [99.0, 5.0]);
    }
}
