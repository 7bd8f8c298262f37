use std::path::{Path, PathBuf};

/// A file found under the paths given to `verity ingest`, with the source name documents keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The canonical absolute path, used as the document's source (and identity in a collection).
    pub source: String,
}

/// Expands files and directories into the files to ingest, sorted, without duplicates. Hidden
/// files and directories (starting with `.`) are skipped inside directories. A path that does
/// not exist is returned as an error entry so the batch can report it and go on.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<SourceFile>, Vec<(String, String)>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if !path.exists() {
            errors.push((
                path.display().to_string(),
                "no such file or directory".to_string(),
            ));
            continue;
        }
        if path.is_file() {
            push_file(path, &mut files, &mut errors);
            continue;
        }
        let walker = walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            match entry {
                Ok(entry) if entry.file_type().is_file() => {
                    push_file(entry.path(), &mut files, &mut errors)
                }
                Ok(_) => {}
                Err(err) => {
                    let name = err
                        .path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| path.display().to_string());
                    errors.push((name, format!("cannot read directory entry: {err}")));
                }
            }
        }
    }
    files.sort_by(|a, b| a.source.cmp(&b.source));
    files.dedup_by(|a, b| a.source == b.source);
    (files, errors)
}

fn push_file(path: &Path, files: &mut Vec<SourceFile>, errors: &mut Vec<(String, String)>) {
    match path.canonicalize() {
        Ok(canonical) => files.push(SourceFile {
            path: path.to_path_buf(),
            source: canonical.display().to_string(),
        }),
        Err(err) => errors.push((
            path.display().to_string(),
            format!("cannot resolve path: {err}"),
        )),
    }
}
