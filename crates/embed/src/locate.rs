//! Finding the model directory and the ONNX Runtime library without the user exporting
//! anything: explicit settings win; otherwise well-known places are searched and the error
//! lists every place that was tried.

use std::path::{Path, PathBuf};

use verity_core::{VerityError, VerityResult};

/// The default embedding model, looked for under `<data dir>/models/` and `../shared/models/`.
pub const DEFAULT_MODEL_NAME: &str = "all-MiniLM-L6-v2-onnx";

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

/// The model directory: `explicit` if given (it must hold `model.onnx`), else
/// `<data_dir>/models/all-MiniLM-L6-v2-onnx`, else `../shared/models/all-MiniLM-L6-v2-onnx`
/// next to the repository.
pub fn find_model_dir(explicit: Option<&Path>, data_dir: &Path) -> VerityResult<PathBuf> {
    let is_model =
        |dir: &Path| dir.join("model.onnx").is_file() && dir.join("tokenizer.json").is_file();
    if let Some(dir) = explicit {
        return if is_model(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(VerityError::Config(format!(
                "embed.model_dir {} does not hold model.onnx and tokenizer.json",
                dir.display()
            )))
        };
    }
    let mut tried = vec![data_dir.join("models").join(DEFAULT_MODEL_NAME)];
    for root in repo_root_candidates() {
        tried.push(root.join("data/models").join(DEFAULT_MODEL_NAME));
        tried.push(root.join("../shared/models").join(DEFAULT_MODEL_NAME));
    }
    tried
        .iter()
        .find(|dir| is_model(dir))
        .map(|dir| dir.canonicalize().unwrap_or_else(|_| dir.clone()))
        .ok_or_else(|| {
            VerityError::Config(format!(
                "embedding model not found; run scripts/setup.sh or set embed.model_dir \
                 (VERITY_EMBED__MODEL_DIR). Looked in: {}",
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
