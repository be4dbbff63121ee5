//! Helpers of the command-line tests: run the built `dypose`, read what it wrote.
#![allow(dead_code)] // each test binary uses some of them

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the `dypose` binary of this build with `args`.
pub fn dypose(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dypose")).args(args).output().unwrap()
}

/// Runs `dypose` with `args`, which must succeed; returns its standard output.
pub fn ok(args: &[&str]) -> String {
    let o = dypose(args);
    assert!(o.status.success(), "dypose {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
