//! One look for every progress bar: what is done, the rate and the time left.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items named `unit`, labelled `msg`; hidden when stderr is not a terminal.
pub fn bar(len: u64, msg: &str, unit: &str) -> ProgressBar {
    let template = format!("{{msg:>8}} [{{bar:30}}] {{pos}}/{{len}} {unit}, {{per_sec}}, eta {{eta}}");
    let bar = ProgressBar::new(len)
        .with_style(ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "));
    bar.set_message(msg.to_string());
    // In a job of several ranks, rank 0 alone shows progress.
    if !crate::dist::world().is_root() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}
