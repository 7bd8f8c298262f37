use std::path::{Path, PathBuf};

use crate::limits::ParseLimits;
use crate::read::{IngestError, read_opened};

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

/// [`collect_files`] confined to `root` (canonical): every file found must resolve to a path
/// under it; one that does not (a link out, a path outside) is an error entry naming it.
pub fn collect_files_under(
    paths: &[PathBuf],
    root: &Path,
) -> (Vec<SourceFile>, Vec<(String, String)>) {
    let (found, mut errors) = collect_files(paths);
    let mut files = Vec::with_capacity(found.len());
    for file in found {
        if Path::new(&file.source).starts_with(root) {
            files.push(file);
        } else {
            errors.push((file.path.display().to_string(), outside(root)));
        }
    }
    (files, errors)
}

fn outside(root: &Path) -> String {
    format!(
        "it resolves to a path outside {} (a symbolic link out of the allowed root?)",
        root.display()
    )
}

/// Reads `path`, which must be, at the moment it is opened, a regular file under `root` (both
/// canonical) reached through no symbolic link. What was checked when a job was accepted can
/// change before a worker reads it (a file swapped for a link to `/etc/passwd`, a directory for
/// a link elsewhere), so the check is made on the opened file itself: the last component is
/// opened without following a link, the opened file must be a regular file (not a FIFO or a
/// device) with a single name (not a hard link), the path must still be its own canonical form
/// under `root`, and the file found there must be the very one opened (same device and inode).
pub fn read_file_under(
    path: &Path,
    root: &Path,
    limits: &ParseLimits,
) -> Result<Vec<u8>, IngestError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

    let refused = |why: String| IngestError::Io(format!("refused: {why}"));
    if !path.starts_with(root) {
        return Err(refused(outside(root)));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        // Not following a final link; not blocking on a FIFO put in the file's place.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                refused("the file is now a symbolic link".to_string())
            } else {
                IngestError::Io(e.to_string())
            }
        })?;
    let opened = file
        .metadata()
        .map_err(|e| IngestError::Io(e.to_string()))?;
    if !opened.is_file() {
        return Err(refused("it is not a regular file".to_string()));
    }
    // A hard link is the same file under a second name: one under the root may be a file from
    // anywhere else on the file system (`ln /etc/shadow root/notes.md`), and no path check
    // can tell. Files with more than one name are refused; copy them into the root instead.
    if opened.nlink() > 1 {
        return Err(refused(format!(
            "it has {} hard links, so it may be a file from outside the root under a second name; copy it into the root instead",
            opened.nlink()
        )));
    }
    let canonical = path
        .canonicalize()
        .map_err(|e| IngestError::Io(e.to_string()))?;
    if canonical != path {
        return Err(refused(format!(
            "the path now leads through a symbolic link (to {})",
            canonical.display()
        )));
    }
    let there = std::fs::metadata(&canonical).map_err(|e| IngestError::Io(e.to_string()))?;
    if (there.dev(), there.ino()) != (opened.dev(), opened.ino()) {
        return Err(refused("the file changed while it was opened".to_string()));
    }
    read_opened(file, limits)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    struct Tree {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn tree() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.md"), "# A\n\nInside.").unwrap();
        let outside = base.join("secret.md");
        std::fs::write(&outside, "# Secret\n\nOutside.").unwrap();
        Tree {
            _dir: dir,
            root,
            outside,
        }
    }

    #[test]
    fn a_file_swapped_for_a_link_after_it_was_accepted_is_not_read() {
        let tree = tree();
        let limits = ParseLimits::default();
        let accepted = tree.root.join("sub/a.md");
        assert_eq!(
            read_file_under(&accepted, &tree.root, &limits).unwrap(),
            b"# A\n\nInside."
        );
        // The file becomes a link out.
        std::fs::remove_file(&accepted).unwrap();
        symlink(&tree.outside, &accepted).unwrap();
        let error = read_file_under(&accepted, &tree.root, &limits).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        // Its directory becomes a link to a directory holding the same name.
        std::fs::remove_file(&accepted).unwrap();
        let elsewhere = tree.outside.parent().unwrap().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("a.md"), "# Elsewhere\n\nOutside too.").unwrap();
        std::fs::remove_dir(tree.root.join("sub")).unwrap();
        symlink(&elsewhere, tree.root.join("sub")).unwrap();
        let error = read_file_under(&accepted, &tree.root, &limits).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        // A path outside the root is never opened.
        assert!(read_file_under(&tree.outside, &tree.root, &limits).is_err());
    }

    #[test]
    fn a_hard_link_to_a_file_outside_the_root_is_not_read() {
        let tree = tree();
        let linked = tree.root.join("notes.md");
        std::fs::hard_link(&tree.outside, &linked).unwrap();
        let error = read_file_under(&linked, &tree.root, &ParseLimits::default()).unwrap_err();
        assert!(error.to_string().contains("hard links"), "{error}");
        // A file of its own under the root is read.
        assert!(
            read_file_under(
                &tree.root.join("sub/a.md"),
                &tree.root,
                &ParseLimits::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn a_fifo_or_directory_in_a_files_place_is_refused_without_blocking() {
        let tree = tree();
        let fifo = tree.root.join("pipe.md");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let error = read_file_under(&fifo, &tree.root, &ParseLimits::default()).unwrap_err();
        assert!(error.to_string().contains("regular file"), "{error}");
        let error = read_file_under(&tree.root.join("sub"), &tree.root, &ParseLimits::default())
            .unwrap_err();
        assert!(error.to_string().contains("regular file"), "{error}");
    }

    #[test]
    fn collecting_under_a_root_reports_links_out_of_it() {
        let tree = tree();
        symlink(&tree.outside, tree.root.join("sub/link.md")).unwrap();
        let (files, errors) = collect_files_under(std::slice::from_ref(&tree.root), &tree.root);
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].source.ends_with("sub/a.md"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].0.ends_with("link.md"));
    }
}
