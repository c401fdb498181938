//! The layers point one way (ARCHITECTURE.md, "Layers"): the leaves, the pure engine and the
//! store use nothing of the modules above them, so they can be read and changed without the
//! domain modules. A `crate::…` path to a higher module in their code fails here.

use crate::helpers::repo;

fn rust_files(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn the_leaves_the_engine_and_the_store_use_nothing_above_them() {
    let layers: [(&str, &[&str]); 6] = [
        ("src/domain", &["domain"]),
        ("src/clock.rs", &[]),
        ("src/templating.rs", &[]),
        ("src/health.rs", &[]),
        ("src/workflow", &["domain", "workflow"]),
        ("src/store", &["domain", "workflow", "store"]),
    ];
    let mut wrong = Vec::new();
    for (place, allowed) in layers {
        let mut files = Vec::new();
        rust_files(&repo().join(place), &mut files);
        assert!(!files.is_empty(), "{place}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim_start().starts_with("//")) {
                for (at, _) in line.match_indices("crate::") {
                    let module: String = line[at + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !allowed.contains(&module.as_str()) {
                        wrong.push(format!("{}:{}: crate::{module}", file.strip_prefix(repo()).unwrap().display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "lower layers reaching up:\n{}", wrong.join("\n"));
}
