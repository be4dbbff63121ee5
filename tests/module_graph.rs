//! The library's modules import one another only as the book's module graph allows: this test
//! reads the table between the `module graph` markers of `docs/src/contributing/architecture.md`
//! and every `crate::…`, `$crate::…` and root-reaching `super::…` path in `src/`, and fails on
//! an import the table does not list (naming the file and line), on a module the table does not
//! place, and on a table with a cycle. Inside each module, the files (and sub-folders) must not
//! import one another in a circle, and the plain-Rust modules (`coco`, `data`, `eval`, `viz`)
//! must not use dfdx.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const GRAPH_PAGE: &str = "docs/src/contributing/architecture.md";

/// module → the modules it may import, from the book's architecture page (a row says "a leaf"
/// for the modules that import nothing and that every other module may import).
fn documented_graph() -> BTreeMap<String, BTreeSet<String>> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join(GRAPH_PAGE)).unwrap();
    let start = readme.find("<!-- module graph: begin -->").expect("the architecture page marks its module graph");
    let end = readme.find("<!-- module graph: end -->").expect("the architecture page marks the end of its graph");
    let mut graph = BTreeMap::new();
    for line in readme[start..end].lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let names = |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(str::to_string).collect() };
        let module = names(cells[1]).pop().unwrap();
        let leaf = cells[2].contains("a leaf");
        graph.insert(module, (leaf, names(cells[2]).into_iter().collect::<BTreeSet<String>>()));
    }
    // Every module may import the leaves, which import nothing.
    let leaves: BTreeSet<String> = graph.iter().filter(|(_, (leaf, _))| *leaf).map(|(m, _)| m.clone()).collect();
    graph
        .into_iter()
        .map(|(m, (leaf, mut deps))| {
            if !leaf {
                deps.extend(leaves.iter().cloned());
            }
            (m, deps)
        })
        .collect()
}

/// The crate's top-level modules, from lib.rs.
fn modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    lib.lines().filter_map(|l| l.strip_prefix("pub mod ")).map(|m| m.trim_end_matches(';').to_string()).collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// (top-level module, file depth below `src/`) of a source file: `src/model/cost.rs` is in
/// `model` at depth 2, `src/model/mod.rs` and `src/seed.rs` at depth 1.
fn owner(file: &Path) -> (String, usize) {
    let rel = file.strip_prefix(Path::new(ROOT).join("src")).unwrap();
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod"));
    (parts[0].clone(), depth)
}

/// Top-level modules a line refers to; `depth` is how many `super::` reach the crate root.
fn references(line: &str, depth: usize, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code = line.split("//").next().unwrap_or("");
    let ident = |s: &str| -> String { s.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut out = BTreeSet::new();
    // `crate::x`, `$crate::x`, `crate::{x, y::z}`: the first segment of each path.
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let paths: Vec<&str> = match rest.strip_prefix('{') {
            Some(inner) => inner[..inner.find('}').unwrap_or(inner.len())].split(',').collect(),
            None => vec![rest],
        };
        out.extend(paths.into_iter().map(ident).filter(|n| modules.contains(n) || n == "with_device"));
    }
    // `super::super::x` from deep enough reaches the crate root and names a module.
    for (i, _) in code.match_indices("super::") {
        if code[..i].ends_with("super::") {
            continue; // counted from the first `super` of a chain
        }
        let segments: Vec<&str> = code[i..].split("::").collect();
        let ups = segments.iter().take_while(|s| **s == "super").count();
        if ups >= depth {
            out.extend(segments.get(ups).map(|s| ident(s)).filter(|n| modules.contains(n)));
        }
    }
    out
}

#[test]
fn no_module_imports_one_the_readme_graph_does_not_allow() {
    let graph = documented_graph();
    let modules = modules();
    let placed: BTreeSet<String> = graph.keys().cloned().collect();
    assert_eq!(placed, modules, "the module graph must place exactly the modules of lib.rs");
    assert!(graph["config"].is_empty(), "config is a leaf");
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    files.retain(|f| !f.ends_with("main.rs") && !f.ends_with("lib.rs"));
    let mut violations = Vec::new();
    let mut edges = 0;
    for file in &files {
        let (module, depth) = owner(file);
        let text = std::fs::read_to_string(file).unwrap();
        let mut inline = 0;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("mod tests {") {
                inline = 1; // `super` inside `mod tests` first climbs out of it
            }
            for target in references(line, depth + inline, &modules) {
                // `with_device!` is exported at the crate root by model::device.
                let target = if target == "with_device" { "model".to_string() } else { target };
                if target == module {
                    continue;
                }
                edges += 1;
                if !graph[&module].contains(&target) {
                    let at = file.strip_prefix(ROOT).unwrap().display();
                    violations.push(format!("{at}:{}: {module} imports {target}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(edges > 50, "the scan found only {edges} imports: is it reading the sources?");
    assert!(violations.is_empty(), "imports against the book's module graph:\n{}", violations.join("\n"));
}

#[test]
fn the_documented_graph_has_no_cycle() {
    let graph = documented_graph();
    // Repeatedly remove modules whose allowed imports are all removed already.
    let mut left: BTreeSet<String> = graph.keys().cloned().collect();
    while !left.is_empty() {
        let ready: Vec<String> = left.iter().filter(|m| graph[*m].iter().all(|d| !left.contains(d))).cloned().collect();
        assert!(!ready.is_empty(), "the book's module graph has a cycle among {left:?}");
        for m in ready {
            left.remove(&m);
        }
    }
}

#[test]
fn the_scanner_sees_every_form_of_import() {
    let m: BTreeSet<String> = ["app", "coco", "config", "data", "model"].iter().map(|s| s.to_string()).collect();
    let refs = |line: &str, depth: usize| references(line, depth, &m).into_iter().collect::<Vec<_>>();
    assert_eq!(refs("use crate::coco::KeypointSpec;", 1), ["coco"]);
    assert_eq!(refs("use crate::{coco, config::Size};", 1), ["coco", "config"]);
    assert_eq!(refs("    $crate::model::device::cuda()?", 1), ["model"]);
    assert_eq!(refs("let x = crate::data::loader::load_rgb(p); // crate::app in a comment", 2), ["data"]);
    assert_eq!(refs("use super::super::coco::Id;", 2), ["coco"], "two levels up from depth 2 is the root");
    assert!(refs("use super::super::blueprint::Blueprint;", 3).is_empty(), "still inside the module");
    assert!(refs("use super::keypoints::KeypointSpec;", 2).is_empty());
}

/// The parts of a top-level module: its files (but `mod.rs`) and its sub-folders.
fn parts(module: &str) -> BTreeSet<String> {
    let dir = Path::new(ROOT).join("src").join(module);
    let Ok(entries) = std::fs::read_dir(&dir) else { return BTreeSet::new() };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_stem()?.to_string_lossy().to_string();
            (p.is_dir() || (p.extension().is_some_and(|x| x == "rs") && name != "mod")).then_some(name)
        })
        .collect()
}

/// Parts of `module` a line of a file in part `part` (at module path `path`, below `src/`)
/// refers to: `crate::module::x` and `super::…::x` that climbs back to the module.
fn part_references(line: &str, path: &[String], parts: &BTreeSet<String>) -> BTreeSet<String> {
    let code = line.split("//").next().unwrap_or("");
    let ident = |s: &str| -> String { s.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut out = BTreeSet::new();
    let module = &path[0];
    let prefix = format!("crate::{module}::");
    for (i, _) in code.match_indices(&prefix) {
        let rest = &code[i + prefix.len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(inner) => inner[..inner.find('}').unwrap_or(inner.len())].split(',').collect(),
            None => vec![rest],
        };
        out.extend(names.into_iter().map(ident).filter(|n| parts.contains(n)));
    }
    for (i, _) in code.match_indices("super::") {
        if code[..i].ends_with("super::") {
            continue;
        }
        let segments: Vec<&str> = code[i..].split("::").collect();
        let ups = segments.iter().take_while(|s| **s == "super").count();
        // From module path [m, a, b], `super` is [m, a]; the module itself is reached when
        // the path is climbed to length 1.
        if path.len() > ups && path.len() - ups == 1 {
            // `super::x::…`, or `super::{x, y::z}` (the rest of the line after the `{`).
            let rest = segments[ups..].join("::");
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(inner) => inner[..inner.find('}').unwrap_or(inner.len())].split(',').collect(),
                None => vec![rest.as_str()],
            };
            out.extend(names.into_iter().map(ident).filter(|n| parts.contains(n)));
        }
    }
    out
}

#[test]
fn no_module_imports_its_own_parts_in_a_circle() {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    // module → part → the parts it imports
    let mut graphs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(Path::new(ROOT).join("src")).unwrap();
        let mut path: Vec<String> =
            rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
        if path.last().is_some_and(|p| p == "mod") {
            path.pop();
        }
        if path.len() < 2 {
            continue; // a module's root file re-exports its parts; it is no part itself
        }
        let parts = parts(&path[0]);
        let text = std::fs::read_to_string(file).unwrap();
        // A file's tests may use any part (a test of the fast path builds a whole network).
        let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or("");
        for line in code.lines() {
            for target in part_references(line, &path, &parts) {
                if target != path[1] {
                    graphs.entry(path[0].clone()).or_default().entry(path[1].clone()).or_default().insert(target);
                }
            }
        }
    }
    assert!(graphs.values().map(|g| g.len()).sum::<usize>() > 20, "the scan found few parts: {graphs:?}");
    for (module, graph) in &graphs {
        let mut left: BTreeSet<&String> = graph.keys().chain(graph.values().flatten()).collect();
        loop {
            let ready: Vec<&String> = left
                .iter()
                .filter(|p| graph.get(**p).is_none_or(|d| d.iter().all(|q| !left.contains(q))))
                .copied()
                .collect();
            if ready.is_empty() {
                break;
            }
            for p in ready {
                left.remove(p);
            }
        }
        let circle: Vec<String> = left
            .iter()
            .map(|p| {
                format!("{p} → {:?}", graph.get(*p).map(|d| d.iter().filter(|q| left.contains(q)).collect::<Vec<_>>()))
            })
            .collect();
        assert!(left.is_empty(), "{module}: its parts import one another in a circle: {}", circle.join("; "));
    }
}

#[test]
fn the_plain_rust_modules_do_not_use_dfdx() {
    let mut violations = Vec::new();
    for module in ["coco", "data", "eval", "viz", "export"] {
        let mut files = Vec::new();
        rust_files(&Path::new(ROOT).join("src").join(module), &mut files);
        assert!(!files.is_empty(), "src/{module} has no files");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.split("//").next().unwrap_or("").contains("dfdx") {
                    violations.push(format!(
                        "{}:{}: {}",
                        file.strip_prefix(ROOT).unwrap().display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(violations.is_empty(), "dfdx in the plain-Rust modules:\n{}", violations.join("\n"));
}

#[test]
fn the_part_scanner_follows_super_and_crate_paths() {
    let parts: BTreeSet<String> = ["blueprint", "cost", "cpu"].iter().map(|s| s.to_string()).collect();
    let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let refs = |line: &str, at: &[&str]| part_references(line, &path(at), &parts).into_iter().collect::<Vec<_>>();
    assert_eq!(refs("use super::blueprint::Blueprint;", &["model", "cost"]), ["blueprint"]);
    assert_eq!(refs("use super::super::cost::Cost;", &["model", "cpu", "ops"]), ["cost"]);
    assert!(refs("use super::kernels::gemm;", &["model", "cpu", "ops"]).is_empty(), "inside the sub-folder");
    assert_eq!(
        refs("use crate::model::{cost::Cost, blueprint::Head};", &["model", "cpu", "ops"]),
        ["blueprint", "cost"]
    );
}
