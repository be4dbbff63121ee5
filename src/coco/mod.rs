//! COCO annotation and results files: schema, loading with record-level errors, the dataset
//! index and the keypoint spec. Plain Rust: no tensors here.

pub mod boxes;
pub mod dataset;
pub mod json;
pub mod keypoint_set;
pub mod keypoints;
pub mod results;
pub mod schema;

pub use dataset::CocoDataset;
pub use keypoint_set::{find_keypoint_set, training_set, FoundSet};
pub use keypoints::{KeypointSpec, Side};
pub use results::{box_results_json, load_box_results, load_results, results_json, BoxResult, KeypointResult};
pub use schema::Id;
