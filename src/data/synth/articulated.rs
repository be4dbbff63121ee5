//! Random articulated figures for any keypoint set: the spec's limbs, taken as a tree from a
//! root joint, give every joint a parent; a rest pose (one per data set, mirror-symmetric across
//! the flip pairs) gives every joint its offset from its parent; each figure bends every joint
//! by a random angle, so figures share one anatomy and differ in pose, like persons do.
//! Limbs are drawn by side (left warm, right cool, centre neutral), each joint as a dark dot.

use super::{segment, BODY, LEFT, NOSE, RIGHT};
use crate::coco::{KeypointSpec, Side};
use imageproc::drawing::draw_filled_circle_mut;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

/// The anatomy of a keypoint set's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Anatomy {
    /// Each joint's parent (`None` for the root); joints that no limb reaches hang off the root.
    parent: Vec<Option<usize>>,
    /// Joints in breadth-first order from the root: parents before children.
    order: Vec<usize>,
    /// Offset from the parent in the rest pose (rest pose height 1, y down).
    offset: Vec<[f32; 2]>,
    /// The rest position of the root relative to the rest pose's bounding-box centre.
    root: [f32; 2],
    limbs: Vec<[usize; 2]>,
    sides: Vec<Side>,
}

impl Anatomy {
    /// The anatomy of `spec`, its rest pose drawn from `rng`.
    pub fn new(spec: &KeypointSpec, rng: &mut ChaCha8Rng) -> Anatomy {
        let n = spec.len();
        let sides: Vec<Side> = (0..n).map(|j| spec.side(j)).collect();
        let mirror = spec.flip_permutation();
        let mut neighbours = vec![Vec::new(); n];
        for &[a, b] in &spec.limbs {
            if a != b {
                neighbours[a].push(b);
                neighbours[b].push(a);
            }
        }
        // The root: the best-connected centre joint (any joint when every joint is paired).
        let centre = |j: &usize| sides[*j] == Side::Centre;
        let root = (0..n).filter(centre).max_by_key(|&j| (neighbours[j].len(), usize::MAX - j)).unwrap_or(0);
        let (parent, order) = spanning_tree(root, &neighbours);
        let mut rest = vec![[0.0f32; 2]; n];
        let mut placed = vec![false; n];
        placed[root] = true;
        for &c in order.iter().skip(1) {
            let p = parent[c].expect("every joint but the root has a parent");
            let m = mirror[c];
            rest[c] = if m != c && placed[m] {
                [-rest[m][0], rest[m][1]]
            } else {
                let len: f32 = rng.random_range(0.15..0.35);
                match sides[c] {
                    Side::Centre => [0.0, rest[p][1] + if rng.random_bool(0.5) { len } else { -len }],
                    side => {
                        // The figure's left is the image's right, as for a person facing the camera.
                        let out = if side == Side::Left { 1.0 } else { -1.0 };
                        let a: f32 = rng.random_range(-1.2..1.2);
                        [rest[p][0] + out * len * a.cos(), rest[p][1] + len * a.sin()]
                    }
                }
            };
            placed[c] = true;
        }
        let (lo, hi) = rest.iter().fold(([f32::MAX; 2], [f32::MIN; 2]), |(lo, hi), p| {
            ([lo[0].min(p[0]), lo[1].min(p[1])], [hi[0].max(p[0]), hi[1].max(p[1])])
        });
        let scale = 1.0 / (hi[1] - lo[1]).max(hi[0] - lo[0]).max(1e-3);
        let centre_of_box = [(lo[0] + hi[0]) * 0.5, (lo[1] + hi[1]) * 0.5];
        let offset = (0..n)
            .map(|c| match parent[c] {
                Some(p) => [(rest[c][0] - rest[p][0]) * scale, (rest[c][1] - rest[p][1]) * scale],
                None => [0.0, 0.0],
            })
            .collect();
        let root_at = [(rest[root][0] - centre_of_box[0]) * scale, (rest[root][1] - centre_of_box[1]) * scale];
        Anatomy { parent, order, offset, root: root_at, limbs: spec.limbs.clone(), sides }
    }

    pub fn joints(&self) -> usize {
        self.parent.len()
    }

    /// One figure `height` pixels tall centred near `center`, rolled by `roll` radians, every
    /// joint bent by up to ±0.6 rad and every bone stretched by up to ±10%.
    pub fn pose(&self, rng: &mut ChaCha8Rng, center: [f32; 2], height: f32, roll: f32) -> Vec<[f32; 2]> {
        let n = self.joints();
        let mut angle = vec![roll; n];
        let mut pos = vec![[0.0f32; 2]; n];
        let (sr, cr) = roll.sin_cos();
        let r = self.root;
        pos[self.order[0]] =
            [center[0] + height * (r[0] * cr - r[1] * sr), center[1] + height * (r[0] * sr + r[1] * cr)];
        for &c in self.order.iter().skip(1) {
            let p = self.parent[c].expect("every joint but the root has a parent");
            angle[c] = angle[p] + rng.random_range(-0.6f32..0.6);
            let stretch = height * rng.random_range(0.9f32..1.1);
            let (s, k) = angle[c].sin_cos();
            let o = self.offset[c];
            pos[c] = [pos[p][0] + stretch * (o[0] * k - o[1] * s), pos[p][1] + stretch * (o[0] * s + o[1] * k)];
        }
        pos
    }

    /// The part mask of a figure (0 = not the figure): limbs coloured by side, a dark dot per
    /// joint, and a larger side-coloured dot for a joint no limb reaches.
    pub fn mask(&self, w: u32, h: u32, joints: &[[f32; 2]], height: f32) -> image::GrayImage {
        let mut m = image::GrayImage::new(w, h);
        let t = (0.045 * height).max(2.0);
        let code = |side: Side| match side {
            Side::Left => LEFT,
            Side::Right => RIGHT,
            Side::Centre => BODY,
        };
        let mut reached = vec![false; joints.len()];
        for &[a, b] in &self.limbs {
            let side = if self.sides[a] == self.sides[b] { self.sides[a] } else { Side::Centre };
            segment(&mut m, joints[a], joints[b], t, code(side));
            (reached[a], reached[b]) = (true, true);
        }
        let dot = (0.014 * height).round().max(1.0) as i32;
        for (j, p) in joints.iter().enumerate() {
            let at = (p[0].round() as i32, p[1].round() as i32);
            if !reached[j] {
                draw_filled_circle_mut(&mut m, at, 3 * dot, image::Luma([code(self.sides[j])]));
            }
            draw_filled_circle_mut(&mut m, at, dot, image::Luma([NOSE]));
        }
        m
    }
}

/// Breadth-first spanning tree from `root`: each joint's parent and the visiting order; joints
/// in other components (or on no limb) become children of the root.
fn spanning_tree(root: usize, neighbours: &[Vec<usize>]) -> (Vec<Option<usize>>, Vec<usize>) {
    let n = neighbours.len();
    let mut parent = vec![None; n];
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut queue = VecDeque::from([root]);
    seen[root] = true;
    loop {
        while let Some(j) = queue.pop_front() {
            order.push(j);
            for &k in &neighbours[j] {
                if !seen[k] {
                    (seen[k], parent[k]) = (true, Some(j));
                    queue.push_back(k);
                }
            }
        }
        let Some(next) = (0..n).find(|&j| !seen[j]) else { break };
        (seen[next], parent[next]) = (true, Some(root));
        queue.push_back(next);
    }
    (parent, order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn spec() -> KeypointSpec {
        // A five-joint "tool": a centre handle with two mirrored arms, and a loose marker.
        let names = ["grip", "left_arm", "right_arm", "left_tip", "right_tip", "marker"];
        KeypointSpec {
            name: "tool".into(),
            keypoints: names.iter().map(|s| s.to_string()).collect(),
            flip_pairs: vec![[1, 2], [3, 4]],
            sigmas: Some(vec![0.05; 6]),
            limbs: vec![[0, 1], [0, 2], [1, 3], [2, 4]],
            upper_body: Vec::new(),
        }
    }

    #[test]
    fn the_tree_reaches_every_joint_parents_first() {
        let a = Anatomy::new(&spec(), &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(a.order[0], 0, "the best-connected centre joint is the root");
        assert_eq!(a.parent, vec![None, Some(0), Some(0), Some(1), Some(2), Some(0)]);
        let mut sorted = a.order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn the_rest_pose_mirrors_flip_pairs_and_figures_keep_their_bone_lengths() {
        let a = Anatomy::new(&spec(), &mut ChaCha8Rng::seed_from_u64(2));
        // Mirrored partners: offsets equal up to the sign of x.
        for [l, r] in [[1, 2], [3, 4]] {
            assert_eq!(a.offset[l][1], a.offset[r][1]);
            assert_eq!(a.offset[l][0], -a.offset[r][0]);
            assert!(a.offset[l][0] > 0.0, "left joints lie on the image's right of their parent: {:?}", a.offset[l]);
        }
        let rng = &mut ChaCha8Rng::seed_from_u64(3);
        let p = a.pose(rng, [100.0, 80.0], 50.0, 0.3);
        for c in 1..6 {
            let q = a.parent[c].unwrap();
            let bone = ((p[c][0] - p[q][0]).powi(2) + (p[c][1] - p[q][1]).powi(2)).sqrt();
            let rest = 50.0 * (a.offset[c][0].powi(2) + a.offset[c][1].powi(2)).sqrt();
            assert!(bone >= 0.9 * rest - 1e-3 && bone <= 1.1 * rest + 1e-3, "joint {c}: {bone} vs {rest}");
        }
    }

    #[test]
    fn masks_colour_limbs_by_side_and_mark_every_joint() {
        let a = Anatomy::new(&spec(), &mut ChaCha8Rng::seed_from_u64(2));
        let joints = vec![[50.0, 50.0], [80.0, 50.0], [20.0, 50.0], [80.0, 90.0], [20.0, 90.0], [50.0, 10.0]];
        let m = a.mask(100, 100, &joints, 100.0);
        let at = |x: u32, y: u32| m.get_pixel(x, y).0[0];
        assert_eq!(at(80, 70), LEFT, "left arm → left tip: a left limb");
        assert_eq!(at(20, 70), RIGHT);
        assert_eq!(at(65, 50), BODY, "grip → left arm joins the centre and a side: centre colour");
        assert!(joints.iter().all(|p| at(p[0] as u32, p[1] as u32) == NOSE), "a dark dot on every joint");
        assert_eq!(at(50, 12), BODY, "the loose marker gets its own (centre) disc");
        assert_eq!(at(5, 5), 0);
    }
}
