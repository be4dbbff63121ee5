//! The book's config reference (`docs/src/reference/config.md`) is what the code generates
//! (`dypose::config::reference::markdown`), so it cannot drift from the keys, their defaults and
//! their bounds. `DYPOSE_BLESS=1` rewrites the page.

use std::path::Path;

#[test]
fn the_books_config_reference_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/reference/config.md");
    let generated = dypose::config::reference::markdown();
    if std::env::var_os("DYPOSE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == generated,
        "{} is not the generated reference; run DYPOSE_BLESS=1 cargo test --release --test config_reference",
        path.display()
    );
}
