//! The safe path is the only path: the GraphQL layer has no way to the database except the scoped
//! reader (`src/access`). A resolver that tried `Entity::find()` or held a connection fails here.

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn graphql_layer_reads_only_through_the_scoped_reader() {
    let mut files = Vec::new();
    rust_files(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/graphql"), &mut files);
    assert!(!files.is_empty());
    let forbidden = [
        "::find(",
        "find_by_id",
        "DatabaseConnection",
        "RequestConnection",
        "ConnectionTrait",
        "execute_unprepared",
        "from_raw_sql",
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for word in forbidden {
            // `context.rs` receives the request's connection once, to build the scoped reader and
            // the writer.
            if file.ends_with("context.rs") && word == "RequestConnection" {
                continue;
            }
            assert!(
                !text.contains(word),
                "{} uses `{word}`: read through `crate::access::Reader` instead",
                file.display()
            );
        }
    }
}
