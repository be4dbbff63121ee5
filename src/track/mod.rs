//! Pose tracking across the frames of a video: each frame's predicted persons in, the same
//! persons with a track id out, so that one person keeps one id while visible and for a few
//! frames of occlusion. Plain Rust, frame after frame, so the ids do not depend on how frames
//! were batched for the network.
//!
//! Each frame, persons are matched to the tracks in two rounds, each the best one-to-one
//! matching ([`assign::best_matching`]): first by OKS between the person and the track's last
//! pose (joints confident in both), then what is left by box IoU (a pose with few confident
//! joints, a fast move). A track that finds no one survives `max_missed` frames; a person that
//! finds no track starts one when it scores well enough. Joints may be smoothed per track by a
//! one-euro filter.

pub mod assign;
pub mod one_euro;

use crate::coco::boxes::box_iou;
use crate::infer::post::oks_between;
use crate::infer::Person;
use one_euro::{Filtered, OneEuro};

/// How persons are matched to tracks.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// A person matches a track by pose when their OKS is at least this.
    pub oks_threshold: f64,
    /// What OKS left unmatched matches by box IoU when it is at least this.
    pub iou_threshold: f64,
    /// Joints scoring at least this (in both poses) count in the OKS.
    pub joint_threshold: f64,
    /// Frames a track survives without a match.
    pub max_missed: usize,
    /// An unmatched person starts a track when its score is at least this.
    pub start_score: f64,
    /// The joints of each track smoothed over time (`None`: as predicted).
    pub smoothing: Option<OneEuro>,
    /// Frames per second (the smoothing's time step).
    pub fps: f64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            oks_threshold: 0.3,
            iou_threshold: 0.3,
            joint_threshold: 0.3,
            max_missed: 10,
            start_score: 0.3,
            smoothing: None,
            fps: 30.0,
        }
    }
}

/// A person of a frame and the track it belongs to (`None`: it matched no track and scored too
/// low to start one).
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub track_id: Option<u64>,
    pub person: Person,
}

struct Track {
    id: u64,
    last: Person,
    /// Frames since the last match.
    missed: usize,
    /// Per joint, the filtered x and y (with smoothing).
    filters: Vec<[Filtered; 2]>,
}

/// The tracks of one video so far.
pub struct Tracker {
    cfg: TrackerConfig,
    sigmas: Vec<f64>,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    /// A tracker for poses of the keypoint set whose OKS sigmas are `sigmas`.
    pub fn new(cfg: TrackerConfig, sigmas: &[f64]) -> Self {
        Tracker { cfg, sigmas: sigmas.to_vec(), tracks: Vec::new(), next_id: 1 }
    }

    /// The next frame's persons, with their track ids, in the order given (their joints
    /// smoothed when configured). New ids go to persons in order of score, best first.
    pub fn update(&mut self, persons: Vec<Person>) -> Vec<Tracked> {
        let mut owner: Vec<Option<usize>> = vec![None; persons.len()];
        let by_pose: Vec<Vec<f64>> =
            persons.iter().map(|p| self.tracks.iter().map(|t| self.pose_similarity(p, &t.last)).collect()).collect();
        for (p, t) in assign::best_matching(&by_pose, self.cfg.oks_threshold) {
            owner[p] = Some(t);
        }
        let taken: Vec<bool> = (0..self.tracks.len()).map(|t| owner.contains(&Some(t))).collect();
        let (left, free): (Vec<usize>, Vec<usize>) = (
            (0..persons.len()).filter(|&p| owner[p].is_none()).collect(),
            (0..self.tracks.len()).filter(|&t| !taken[t]).collect(),
        );
        let by_box: Vec<Vec<f64>> = left
            .iter()
            .map(|&p| free.iter().map(|&t| box_iou(persons[p].bbox, self.tracks[t].last.bbox, false)).collect())
            .collect();
        for (i, j) in assign::best_matching(&by_box, self.cfg.iou_threshold) {
            owner[left[i]] = Some(free[j]);
        }
        let mut ids: Vec<Option<u64>> = vec![None; persons.len()];
        let mut out: Vec<Option<Person>> = vec![None; persons.len()];
        let mut matched = vec![false; self.tracks.len()];
        for (p, person) in persons.iter().enumerate() {
            if let Some(t) = owner[p] {
                matched[t] = true;
                out[p] = Some(self.continue_track(t, person.clone()));
                ids[p] = Some(self.tracks[t].id);
            }
        }
        for (t, track) in self.tracks.iter_mut().enumerate() {
            if !matched[t] {
                track.missed += 1;
            }
        }
        let max_missed = self.cfg.max_missed;
        self.tracks.retain(|t| t.missed <= max_missed);
        let mut starting: Vec<usize> =
            (0..persons.len()).filter(|&p| owner[p].is_none() && persons[p].score >= self.cfg.start_score).collect();
        starting.sort_by(|&a, &b| persons[b].score.total_cmp(&persons[a].score).then(a.cmp(&b)));
        for p in starting {
            ids[p] = Some(self.start_track(persons[p].clone()));
        }
        persons
            .into_iter()
            .zip(out)
            .zip(ids)
            .map(|((given, smoothed), track_id)| Tracked { track_id, person: smoothed.unwrap_or(given) })
            .collect()
    }

    /// OKS over the joints confident in both poses, with their mean crop area as the scale; 0
    /// when none is.
    fn pose_similarity(&self, a: &Person, b: &Person) -> f64 {
        let thr = self.cfg.joint_threshold;
        let both: Vec<usize> = (0..a.keypoints.len().min(b.keypoints.len()))
            .filter(|&j| a.keypoints[j][2] >= thr && b.keypoints[j][2] >= thr)
            .collect();
        if both.is_empty() {
            return 0.0;
        }
        let pick = |p: &Person| both.iter().map(|&j| p.keypoints[j]).collect::<Vec<_>>();
        let sigmas: Vec<f64> = both.iter().map(|&j| self.sigmas.get(j).copied().unwrap_or(0.1)).collect();
        oks_between(&pick(a), a.area, &pick(b), b.area, &sigmas)
    }

    /// Track `t` takes `person` (smoothed when configured), which it returns.
    fn continue_track(&mut self, t: usize, mut person: Person) -> Person {
        let track = &mut self.tracks[t];
        if let Some(f) = self.cfg.smoothing {
            // The time since the track's last pose: one frame, more after an occlusion.
            let dt = (track.missed + 1) as f64 / self.cfg.fps;
            if track.filters.len() != person.keypoints.len() {
                track.filters = person.keypoints.iter().map(|k| [f.start(k[0]), f.start(k[1])]).collect();
            } else {
                for (k, state) in person.keypoints.iter_mut().zip(&mut track.filters) {
                    state[0] = f.next(state[0], k[0], dt);
                    state[1] = f.next(state[1], k[1], dt);
                    (k[0], k[1]) = (state[0].value(), state[1].value());
                }
            }
        }
        track.last = person.clone();
        track.missed = 0;
        person
    }

    fn start_track(&mut self, person: Person) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let filters = match self.cfg.smoothing {
            Some(f) => person.keypoints.iter().map(|k| [f.start(k[0]), f.start(k[1])]).collect(),
            None => Vec::new(),
        };
        self.tracks.push(Track { id, last: person, missed: 0, filters });
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGMAS: [f64; 5] = [0.026, 0.025, 0.025, 0.035, 0.035];

    /// A five-joint figure standing at x (box 40 × 100 around it), its joints scoring `conf`.
    fn figure(x: f64, y: f64, conf: f64) -> Person {
        let offsets = [(0.0, 0.0), (-10.0, 30.0), (10.0, 30.0), (-8.0, 80.0), (8.0, 80.0)];
        Person {
            image_id: 1,
            bbox: [x - 20.0, y - 10.0, 40.0, 100.0],
            box_score: 1.0,
            keypoints: offsets.iter().map(|(dx, dy)| [x + dx, y + dy, conf]).collect(),
            score: conf,
            area: 40.0 * 100.0 * 1.25 * 1.25,
        }
    }

    fn ids(frame: &[Tracked]) -> Vec<Option<u64>> {
        frame.iter().map(|t| t.track_id).collect()
    }

    /// Two figures walk towards each other, cross (overlapping for a few frames) and walk on:
    /// each keeps its id, whatever order the frame lists them in.
    #[test]
    fn two_walkers_crossing_keep_their_ids() {
        let mut tracker = Tracker::new(TrackerConfig::default(), &SIGMAS);
        for frame in 0..60 {
            let (a, b) = (50.0 + 5.0 * frame as f64, 350.0 - 5.0 * frame as f64);
            // A walks at y 100, B a little lower, so crossing poses differ.
            let mut persons = vec![figure(a, 100.0, 0.9), figure(b, 112.0, 0.8)];
            let swapped = frame % 3 == 1;
            if swapped {
                persons.reverse();
            }
            let got = ids(&tracker.update(persons));
            let want = if swapped { vec![Some(2), Some(1)] } else { vec![Some(1), Some(2)] };
            assert_eq!(got, want, "frame {frame}");
        }
    }

    /// A track survives `max_missed` frames without a match, not one more; a low-scoring
    /// person starts no track; new ids go best score first.
    #[test]
    fn occlusions_new_persons_and_low_scores() {
        let cfg = TrackerConfig { max_missed: 3, ..TrackerConfig::default() };
        let mut tracker = Tracker::new(cfg, &SIGMAS);
        assert_eq!(
            ids(&tracker.update(vec![figure(100.0, 100.0, 0.5), figure(300.0, 100.0, 0.9)])),
            vec![Some(2), Some(1)]
        );
        for _ in 0..3 {
            assert_eq!(ids(&tracker.update(vec![figure(300.0, 100.0, 0.9)])), vec![Some(1)]);
        }
        // Figure 2 back after 3 missed frames: the same id.
        assert_eq!(
            ids(&tracker.update(vec![figure(101.0, 100.0, 0.5), figure(300.0, 100.0, 0.9)])),
            vec![Some(2), Some(1)]
        );
        for _ in 0..4 {
            tracker.update(vec![figure(300.0, 100.0, 0.9)]);
        }
        // After 4: a new id. A person scoring 0.2 starts nothing.
        let got = ids(&tracker.update(vec![figure(100.0, 100.0, 0.5), figure(500.0, 100.0, 0.2)]));
        assert_eq!(got, vec![Some(3), None]);
    }

    /// Joints too unsure for OKS: the box carries the match.
    #[test]
    fn boxes_match_what_poses_cannot() {
        let mut tracker = Tracker::new(TrackerConfig::default(), &SIGMAS);
        tracker.update(vec![figure(100.0, 100.0, 0.9)]);
        let mut unsure = figure(104.0, 100.0, 0.1);
        unsure.score = 0.9;
        assert_eq!(ids(&tracker.update(vec![unsure])), vec![Some(1)]);
    }

    /// With smoothing, a joint that jitters around a still point moves less than its input.
    #[test]
    fn smoothing_damps_jitter() {
        let cfg = TrackerConfig { smoothing: Some(OneEuro::default()), ..TrackerConfig::default() };
        let mut tracker = Tracker::new(cfg, &SIGMAS);
        let mut spread = (f64::MAX, f64::MIN);
        for frame in 0..30 {
            let jitter = if frame % 2 == 0 { 3.0 } else { -3.0 };
            let out = tracker.update(vec![figure(200.0 + jitter, 100.0, 0.9)]);
            if frame > 5 {
                let x = out[0].person.keypoints[0][0];
                spread = (spread.0.min(x), spread.1.max(x));
            }
        }
        assert!(spread.1 - spread.0 < 3.0, "input spread 6 px, output {:?}", spread);
    }
}
