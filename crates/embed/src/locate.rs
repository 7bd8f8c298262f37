//! Finding the model directory and the ONNX Runtime library without the user exporting
//! anything: explicit settings win; otherwise well-known places are searched and the error
//! lists every place that was tried.

use std::path::{Path, PathBuf};

use verity_core::{VerityError, VerityResult};

use crate::models::ModelSpec;

/// Directories that may be the repository root: the working directory and its parent chain
/// (two levels), and the workspace this binary was built from.
pub fn repo_root_candidates() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().take(3).map(Path::to_path_buf));
    }
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    roots
}

/// The directory of `model`: `explicit` if given (it must hold the model's ONNX file and
/// `tokenizer.json`), else `<data_dir>/models/<dir name>`, else `../shared/models/<dir name>`
/// next to the repository.
pub fn find_model_dir(
    explicit: Option<&Path>,
    data_dir: &Path,
    model: &ModelSpec,
) -> VerityResult<PathBuf> {
    let is_model =
        |dir: &Path| dir.join(model.file).is_file() && dir.join("tokenizer.json").is_file();
    if let Some(dir) = explicit {
        return if is_model(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(VerityError::Config(format!(
                "embed.model_dir {} does not hold {} and tokenizer.json",
                dir.display(),
                model.file
            )))
        };
    }
    let mut tried = vec![data_dir.join("models").join(model.dir_name)];
    for root in repo_root_candidates() {
        tried.push(root.join("data/models").join(model.dir_name));
        tried.push(root.join("../shared/models").join(model.dir_name));
    }
    tried
        .iter()
        .find(|dir| is_model(dir))
        .map(|dir| dir.canonicalize().unwrap_or_else(|_| dir.clone()))
        .ok_or_else(|| {
            VerityError::Config(format!(
                "embedding model {} not found; run scripts/setup.sh (it builds or links it), \
                 or set embed.model_dir (VERITY_EMBED__MODEL_DIR), or choose another model with \
                 embed.model. Looked in: {}",
                model.name,
                list(&tried)
            ))
        })
}

/// The ONNX Runtime shared library: `explicit` if given, else `ORT_DYLIB_PATH`, else the copy
/// `scripts/setup.sh` installs under `.ort/` in the repository.
pub fn find_onnxruntime(explicit: Option<&Path>) -> VerityResult<PathBuf> {
    if let Some(path) = explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("ORT_DYLIB_PATH")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(VerityError::Config(format!(
                "ONNX Runtime library {} does not exist",
                path.display()
            )))
        };
    }
    let mut tried = Vec::new();
    for root in repo_root_candidates() {
        let capi = root.join(".ort/onnxruntime/capi");
        if let Some(found) = newest_library_in(&capi) {
            return Ok(found);
        }
        tried.push(capi);
    }
    Err(VerityError::Config(format!(
        "ONNX Runtime (libonnxruntime.so) not found; run scripts/setup.sh or set \
         embed.onnxruntime (VERITY_EMBED__ONNXRUNTIME) or ORT_DYLIB_PATH. Looked in: {}",
        list(&tried)
    )))
}

fn newest_library_in(dir: &Path) -> Option<PathBuf> {
    let mut libraries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib")
        })
        .collect();
    // `libonnxruntime.so.1.24.4` sorts after `libonnxruntime.so`; prefer the versioned file.
    libraries.sort();
    libraries.pop()
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
