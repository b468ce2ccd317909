//! The documentation a newcomer reads stands on its own: every relative link in the README and
//! `docs/` leads to a file of the repository, and nothing points outside it.

use std::path::{Path, PathBuf};

fn markdown_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

/// The targets of `[text](target)` links.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_owned());
        }
    }
    out
}

#[test]
fn documentation_links_stay_inside_the_repository_and_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).canonicalize().unwrap();
    let files = markdown_files();
    for name in ["domain.md", "rules.md", "api.md", "operations.md", "limits.md"] {
        assert!(files.iter().any(|f| f.ends_with(name)), "docs/{name} missing");
    }
    assert!(root.join("LICENSE").exists(), "LICENSE missing");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for word in ["shared/", "SPEC.md"] {
            assert!(!text.contains(word), "{} refers to {word}, outside the repository", file.display());
        }
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") || link.starts_with('#') {
                continue;
            }
            let path = link.split('#').next().unwrap();
            let target = file.parent().unwrap().join(path);
            let target = target.canonicalize().unwrap_or_else(|_| panic!("{}: broken link {link}", file.display()));
            assert!(target.starts_with(&root), "{}: {link} leaves the repository", file.display());
        }
    }
}

#[test]
fn every_rule_and_every_error_code_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = std::fs::read_to_string(root.join("docs/rules.md")).unwrap();
    for n in 1..=17 {
        assert!(rules.contains(&format!("### R{n} ")), "docs/rules.md has no section for R{n}");
    }
    // Every code `src/error.rs` can send has a row in the table of docs/api.md.
    let api = std::fs::read_to_string(root.join("docs/api.md")).unwrap();
    let source = std::fs::read_to_string(root.join("src/error.rs")).unwrap();
    let codes: Vec<&str> = source.split("=> \"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    assert!(codes.len() >= 20, "codes not found in src/error.rs: {codes:?}");
    for code in codes {
        assert!(api.contains(&format!("| `{code}` |")), "docs/api.md does not explain {code}");
    }
}
