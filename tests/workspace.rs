//! The workspace's own hygiene: every dependency a manifest declares is used by that package's
//! code (an unused one costs compile time on every machine and misleads a reader).

use std::path::{Path, PathBuf};

/// Package directories: the root package and every crate under `crates/`.
fn packages() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![root.to_path_buf()];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    out.extend(crates);
    out
}

/// (section, dependency) of `[dependencies]` and `[dev-dependencies]` in a manifest.
fn declared(manifest: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_string();
        } else if (section == "dependencies" || section == "dev-dependencies")
            && let Some(name) = line.split(['.', '=', ' ']).next().filter(|n| !n.is_empty())
            && !line.starts_with('#')
        {
            out.push((section.clone(), name.to_string()));
        }
    }
    out
}

/// All Rust source of a package (its `src/`, `tests/`, `benches/` and `examples/`), without
/// other packages nested inside it.
fn sources(dir: &Path, text: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !["target", "crates", ".git"].contains(&name) {
                sources(&path, text);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

#[test]
fn every_declared_dependency_is_used() {
    let mut unused = Vec::new();
    for package in packages() {
        let manifest = std::fs::read_to_string(package.join("Cargo.toml")).expect("manifest");
        let mut code = String::new();
        for dir in ["src", "tests", "benches", "examples"] {
            sources(&package.join(dir), &mut code);
        }
        for (section, name) in declared(&manifest) {
            let ident = name.replace('-', "_");
            let used = [
                format!("{ident}::"),
                format!("use {ident}"),
                format!("{ident}!"),
            ]
            .iter()
            .any(|p| code.contains(p.as_str()));
            if !used {
                unused.push(format!("{}: [{section}] {name}", package.display()));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "declared but not used:\n{}",
        unused.join("\n")
    );
}
