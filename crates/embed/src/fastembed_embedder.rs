use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use verity_core::{Embedder, VerityError, VerityResult};

/// How to run the model.
#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    pub model_dir: PathBuf,
    pub onnxruntime: PathBuf,
    /// Input length in model tokens; longer texts are truncated (all-MiniLM-L6-v2: 256).
    pub max_length: usize,
    /// Texts per ONNX Runtime call when embedding passages.
    pub batch_size: usize,
    /// Intra-op threads; 0 uses every core.
    pub threads: usize,
}

/// A fastembed [`TextEmbedding`] behind a mutex: one ONNX Runtime session, already using every
/// core for each call, so calls are serialised rather than competing for the same cores.
pub struct FastEmbedder {
    model: Mutex<TextEmbedding>,
    name: String,
    dimension: usize,
    batch_size: usize,
}

impl std::fmt::Debug for FastEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastEmbedder")
            .field("name", &self.name)
            .field("dimension", &self.dimension)
            .finish()
    }
}

/// ONNX Runtime can be loaded once per process; later embedders reuse the environment.
static ORT_ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn ort_environment(library: &Path) -> VerityResult<ort::environment::Environment> {
    ORT_ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(library)
                .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", library.display()))?
                .with_name("verity")
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
        })
        .clone()
        .map_err(VerityError::Config)
}

impl FastEmbedder {
    pub fn new(config: &EmbedderConfig) -> VerityResult<Self> {
        let dir = &config.model_dir;
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| {
                VerityError::Config(format!("cannot read {}: {e}", dir.join(name).display()))
            })
        };
        let model = UserDefinedEmbeddingModel::new(
            read("model.onnx")?,
            TokenizerFiles {
                tokenizer_file: read("tokenizer.json")?,
                config_file: read("config.json")?,
                special_tokens_map_file: read("special_tokens_map.json")?,
                tokenizer_config_file: read("tokenizer_config.json")?,
            },
        )
        .with_pooling(Pooling::Mean);

        let mut options = InitOptionsUserDefined::new()
            .with_environment(ort_environment(&config.onnxruntime)?)
            .with_max_length(config.max_length);
        if config.threads > 0 {
            options = options.with_intra_threads(config.threads);
        }
        let mut embedding =
            TextEmbedding::try_new_from_user_defined(model, options).map_err(|e| {
                VerityError::Config(format!(
                    "cannot load embedding model {}: {e}",
                    dir.display()
                ))
            })?;
        let probe = embedding.embed(["dimension probe"], None).map_err(|e| {
            VerityError::Config(format!("embedding model {} fails: {e}", dir.display()))
        })?;
        let dimension = probe.first().map(Vec::len).unwrap_or_default();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        Ok(Self {
            model: Mutex::new(embedding),
            name,
            dimension,
            batch_size: config.batch_size.max(1),
        })
    }

    fn run(&self, texts: &[&str]) -> VerityResult<Vec<Vec<f32>>> {
        let mut model = self
            .model
            .lock()
            .map_err(|_| VerityError::internal("embed", "embedding model lock poisoned"))?;
        model
            .embed(texts, Some(self.batch_size))
            .map_err(|e| VerityError::internal("embed", e))
    }
}

impl Embedder for FastEmbedder {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed_passages(&self, texts: &[String]) -> VerityResult<Vec<Vec<f32>>> {
        // A batch is padded to its longest text: embedding texts of similar length together
        // wastes less work. Sort by length, embed, then put vectors back in the caller's order.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let sorted: Vec<&str> = order.iter().map(|&i| texts[i].as_str()).collect();
        let vectors = self.run(&sorted)?;
        let mut result = vec![Vec::new(); texts.len()];
        for (vector, &i) in vectors.into_iter().zip(&order) {
            result[i] = vector;
        }
        Ok(result)
    }

    fn embed_query(&self, text: &str) -> VerityResult<Vec<f32>> {
        self.run(&[text])?
            .pop()
            .ok_or_else(|| VerityError::internal("embed", "model returned no vector"))
    }
}
