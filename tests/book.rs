//! The book (`docs/src`, built by mdbook) and the README hold together: every page is in
//! `SUMMARY.md` and every entry there exists; every relative link and picture resolves, every
//! `#anchor` names a heading of its page (slugged as mdbook slugs it); the book's links stay
//! inside the book; the README stays short. (`.ci/run` also builds the book with mdbook.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn book() -> PathBuf {
    Path::new(ROOT).join("docs/src")
}

fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            pages(&p, out);
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
}

/// The text outside fenced code blocks and inline code spans, line by line.
fn prose(md: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut kept = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                kept.push_str(part);
            }
        }
        out.push(kept);
    }
    out
}

/// (is a picture, target) of every `[text](target)` and `![alt](target)`.
fn links(md: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for line in prose(md) {
        for (i, _) in line.match_indices("](") {
            let rest = &line[i + 2..];
            let target: String = rest.chars().take_while(|c| *c != ')' && !c.is_whitespace()).collect();
            let before = &line[..i];
            let open = before.rfind('[').unwrap_or(0);
            out.push((before[..open].ends_with('!'), target));
        }
    }
    out
}

/// mdbook's heading ids: letters, digits, `_` and `-` kept (lowercased), whitespace as `-`,
/// the rest dropped; a repeated id gets `-1`, `-2`, …
fn anchors(md: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for line in md.lines().scan(false, |fenced, l| {
        if l.trim_start().starts_with("```") {
            *fenced = !*fenced;
        }
        Some((*fenced, l))
    }) {
        let (fenced, line) = line;
        let Some(text) = line.strip_prefix('#').filter(|_| !fenced) else { continue };
        let text = text.trim_start_matches('#').trim();
        // A link in a heading shows its text.
        let mut shown = String::new();
        let mut rest = text;
        while let Some(k) = rest.find("](") {
            shown.push_str(&rest[..k]);
            rest = &rest[k + 2..];
            rest = &rest[rest.find(')').map_or(rest.len(), |e| e + 1)..];
        }
        shown.push_str(rest);
        let id: String = shown
            .trim()
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    Some(c.to_lowercase().next().unwrap())
                } else if c.is_whitespace() {
                    Some('-')
                } else {
                    None
                }
            })
            .collect();
        let n = seen.entry(id.clone()).or_insert(0);
        ids.insert(if *n == 0 { id.clone() } else { format!("{id}-{n}") });
        *n += 1;
    }
    ids
}

/// Problems with the links of the page `file` (targets relative to `base`).
fn check_links(file: &Path, base: &Path, inside_book: bool) -> Vec<String> {
    let md = std::fs::read_to_string(file).unwrap();
    let name = file.strip_prefix(ROOT).unwrap().display().to_string();
    let mut problems = Vec::new();
    for (picture, target) in links(&md) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
        let full = if path.is_empty() { file.to_path_buf() } else { base.join(path) };
        let Ok(full) = full.canonicalize() else {
            problems.push(format!("{name}: {target} does not exist"));
            continue;
        };
        if inside_book && !full.starts_with(book().canonicalize().unwrap()) {
            problems.push(format!("{name}: {target} is outside the book (mdbook cannot follow it)"));
        }
        if inside_book && !picture && full.extension().is_none_or(|x| x != "md") {
            problems.push(format!("{name}: {target} is a link to a file that is not a page"));
        }
        if !anchor.is_empty() && !anchors(&std::fs::read_to_string(&full).unwrap_or_default()).contains(anchor) {
            problems.push(format!("{name}: {target}: no heading #{anchor}"));
        }
    }
    problems
}

#[test]
fn every_page_is_in_the_summary_and_every_link_resolves() {
    let mut files = Vec::new();
    pages(&book(), &mut files);
    let summary = book().join("SUMMARY.md");
    let listed: BTreeSet<PathBuf> = links(&std::fs::read_to_string(&summary).unwrap())
        .into_iter()
        .map(|(_, t)| {
            book().join(&t).canonicalize().unwrap_or_else(|_| panic!("SUMMARY.md lists {t}, which is missing"))
        })
        .collect();
    let mut problems = Vec::new();
    for f in &files {
        if *f != summary && !listed.contains(&f.canonicalize().unwrap()) {
            problems.push(format!("{} is not in SUMMARY.md", f.strip_prefix(ROOT).unwrap().display()));
        }
        problems.extend(check_links(f, f.parent().unwrap(), true));
    }
    problems.extend(check_links(&Path::new(ROOT).join("README.md"), Path::new(ROOT), false));
    assert!(files.len() > 20, "only {} pages found", files.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_readme_is_short() {
    let lines = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap().lines().count();
    assert!(lines <= 200, "README.md has {lines} lines; the book holds the rest");
}

#[test]
fn the_checker_finds_links_and_slugs_headings_as_mdbook() {
    let md = "# Hello, World: `x`\n## Hello, World: `x`\n```\n# not a heading [a](b.md)\n```\nsee [a](a.md#b) and ![p](p.png) but not `[c](d.md)`\n";
    assert_eq!(links(md), vec![(false, "a.md#b".to_string()), (true, "p.png".to_string())]);
    let ids = anchors(md);
    assert!(ids.contains("hello-world-x") && ids.contains("hello-world-x-1"), "{ids:?}");
    assert_eq!(ids.len(), 2);
    assert!(anchors("### [`dypose eval`](x.md) options\n").contains("dypose-eval-options"));
}
