//! Keeps ARCHITECTURE.md's arrows true: every `crate::…` path in a module's files
//! must point to a module that module may depend on. Reads the sources, so it
//! also covers tests and code behind `cfg`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Which top-level modules each top-level module may use (besides itself).
/// `app` is the facade and may use everything.
const ALLOWED: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("failpoint", &[]),
    ("model", &[]),
    ("progress", &[]),
    ("http", &["error", "model"]),
    ("status", &["model"]),
    ("lti", &["model"]),
    ("lti11", &["error", "http", "model", "lti"]),
    ("ltiaas", &["error", "http", "model", "lti"]),
    ("secrets", &["error"]),
    ("store", &["error", "model"]),
    ("intake", &["error", "model", "status", "store"]),
    (
        "import",
        &[
            "error", "http", "intake", "lti", "lti11", "ltiaas", "model", "progress", "secrets", "status",
            "store",
        ],
    ),
    (
        "sync",
        &[
            "error",
            "failpoint",
            "http",
            "intake",
            "lti11",
            "ltiaas",
            "model",
            "progress",
            "status",
            "store",
        ],
    ),
];

/// Modules nobody below the facade may use.
const FACADE: &str = "app";

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/lti11/pox/tests.rs` → `lti11`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// The leading identifier of `s`.
fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every top-level module named by a `crate::` path in `code` (comments left
/// out), including each item of `use crate::{a::{…}, b}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        // `passback_crate::` or `my_crate::` are not `crate::`.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(group) = rest.strip_prefix('{') else {
            found.insert(ident(rest));
            continue;
        };
        // The items of this group, split at its own commas (not those of nested groups).
        let mut depth = 0;
        let mut item = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    found.insert(ident(group[item..i].trim()));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    found.insert(ident(group[item..i].trim()));
                    item = i + 1;
                }
                _ => {}
            }
        }
    }
    found.remove("");
    found
}

#[test]
fn module_dependencies_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "the scan found the sources");
    let mut problems = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == FACADE || module == "lib" || module == "architecture" {
            continue;
        }
        let allowed = ALLOWED
            .iter()
            .find(|(m, _)| *m == module)
            .unwrap_or_else(|| {
                panic!("module {module} has no entry in ALLOWED: add it (and to ARCHITECTURE.md)")
            })
            .1;
        let code = std::fs::read_to_string(file).expect("read source");
        for used in crate_paths(&code) {
            // Items re-exported at the crate root.
            let used = match used.as_str() {
                "Error" | "ErrorKind" | "Result" => "error".to_string(),
                "Passback" => FACADE.to_string(),
                _ => used,
            };
            if used != module && !allowed.contains(&used.as_str()) {
                problems.push(format!(
                    "{} ({module}) uses crate::{used}",
                    file.strip_prefix(&src).unwrap().display()
                ));
            }
        }
        for banned in [
            "clap::",
            "axum::",
            "tower_http::",
            "passback_sandbox",
            "passback_cli",
        ] {
            if code.contains(banned) {
                problems.push(format!(
                    "{} ({module}) mentions {banned}: the core has no CLI parsing, server or sandbox",
                    file.strip_prefix(&src).unwrap().display()
                ));
            }
        }
        // Only the store speaks SQL.
        if module != "store" {
            for sql in ["sqlx::query", "QueryBuilder", "AssertSqlSafe"] {
                if code.contains(sql) {
                    problems.push(format!(
                        "{} ({module}) uses {sql}: only the store speaks SQL",
                        file.strip_prefix(&src).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "arrows pointing the wrong way:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_scanner_reads_grouped_and_nested_paths() {
    let code = "use crate::{http::{a, b}, model::X};\nlet y = crate::store::Store::open();\nmy_crate::x; \
                crate::Error::new";
    let got: Vec<_> = crate_paths(code).into_iter().collect();
    assert_eq!(got, vec!["Error", "http", "model", "store"]);
}

#[test]
fn the_core_manifest_has_no_server_cli_or_sandbox_dependency() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table")
        .split("\n[")
        .next()
        .unwrap();
    for banned in ["axum", "clap", "tower-http", "passback-sandbox", "indicatif"] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(banned)),
            "the core library depends on {banned}"
        );
    }
}
