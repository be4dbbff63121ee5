//! The network: architecture blueprints and their cost now; dfdx layers with the network issue.

pub mod blueprint;
pub mod cost;
