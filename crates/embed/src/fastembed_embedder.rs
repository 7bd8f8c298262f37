use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use verity_core::{Embedder, VerityError, VerityResult};

/// Questions waiting at the same moment are embedded together, at most this many per call.
const MAX_QUERY_BATCH: usize = 32;

/// How to run the model.
#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    pub model_dir: PathBuf,
    /// The ONNX graph in `model_dir` to run (`model.onnx`, or e.g. `model_int8.onnx`).
    pub model_file: String,
    pub onnxruntime: PathBuf,
    /// Prepended to every question (multilingual-e5: `"query: "`; the model was trained so).
    pub query_prefix: String,
    /// Prepended to every passage (multilingual-e5: `"passage: "`).
    pub passage_prefix: String,
    /// Input length in model tokens, prefix included; longer texts are truncated
    /// (all-MiniLM-L6-v2: 256, multilingual-e5-small: 512).
    pub max_length: usize,
    /// Texts per ONNX Runtime call when embedding passages.
    pub batch_size: usize,
    /// Embed questions waiting together in one call (faster under load). Off for models whose
    /// vectors depend on the batch (int8 with dynamic quantisation): each question alone.
    pub batch_queries: bool,
    /// ONNX Runtime intra-op threads; 0 = one per CPU core.
    pub threads: usize,
}

type QueryReply = SyncSender<VerityResult<Vec<f32>>>;

/// One fastembed [`TextEmbedding`] session (ONNX Runtime, using every core for each call),
/// fed by two paths:
///
/// - passages (ingest) are sorted by length and embedded in batches, so little work is wasted on
///   padding;
/// - questions go through a queue served by one thread, which embeds every question waiting at
///   that moment in a single call. Under concurrent load this turns many tiny calls, each too
///   small to use the cores well, into a few efficient ones; a lone question waits for nothing.
pub struct FastEmbedder {
    session: Arc<Mutex<TextEmbedding>>,
    queries: Mutex<Sender<(String, QueryReply)>>,
    name: String,
    dimension: usize,
    batch_size: usize,
    query_prefix: String,
    passage_prefix: String,
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

fn embed_error(err: impl std::fmt::Display) -> VerityError {
    VerityError::internal("embed", err)
}

fn lock(session: &Mutex<TextEmbedding>) -> VerityResult<std::sync::MutexGuard<'_, TextEmbedding>> {
    session
        .lock()
        .map_err(|_| embed_error("embedding session lock poisoned"))
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
            read(&config.model_file)?,
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
        let mut session =
            TextEmbedding::try_new_from_user_defined(model, options).map_err(|e| {
                VerityError::Config(format!(
                    "cannot load embedding model {}: {e}",
                    dir.display()
                ))
            })?;
        let probe = session.embed(["dimension probe"], None).map_err(|e| {
            VerityError::Config(format!("embedding model {} fails: {e}", dir.display()))
        })?;
        let dimension = probe.first().map(Vec::len).unwrap_or_default();

        let session = Arc::new(Mutex::new(session));
        let (sender, receiver) = std::sync::mpsc::channel();
        let worker_session = Arc::clone(&session);
        let max_batch = if config.batch_queries {
            MAX_QUERY_BATCH
        } else {
            1
        };
        std::thread::Builder::new()
            .name("verity-embed-queries".into())
            .spawn(move || serve_queries(&worker_session, &receiver, max_batch))
            .map_err(|e| VerityError::Config(format!("cannot start the embedding thread: {e}")))?;

        Ok(Self {
            session,
            queries: Mutex::new(sender),
            name: model_name(dir, &config.model_file),
            dimension,
            batch_size: config.batch_size.max(1),
            query_prefix: config.query_prefix.clone(),
            passage_prefix: config.passage_prefix.clone(),
        })
    }
}

/// The model's name in fingerprints and traces: its directory's name, and the graph's file
/// when it is not the usual `model.onnx` (float32 and int8 copies give different vectors).
fn model_name(dir: &Path, file: &str) -> String {
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    if file == "model.onnx" {
        dir_name
    } else {
        format!("{dir_name}/{file}")
    }
}

/// `text` with `prefix` in front, borrowed when there is no prefix.
fn prefixed<'a>(prefix: &str, text: &'a str) -> std::borrow::Cow<'a, str> {
    if prefix.is_empty() {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(format!("{prefix}{text}"))
    }
}

/// The question queue: take one, then everything else already waiting (up to `max_batch`),
/// embed them in one call, answer each. Ends when the embedder (the only sender) is dropped.
fn serve_queries(
    session: &Mutex<TextEmbedding>,
    queue: &Receiver<(String, QueryReply)>,
    max_batch: usize,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let texts: Vec<&str> = batch.iter().map(|(text, _)| text.as_str()).collect();
        let result =
            lock(session).and_then(|mut s| s.embed(&texts, Some(texts.len())).map_err(embed_error));
        match result {
            Ok(vectors) => {
                for ((_, reply), vector) in batch.into_iter().zip(vectors) {
                    // The asker may have given up (request cancelled); nothing to do then.
                    let _ = reply.send(Ok(vector));
                }
            }
            Err(e) => {
                for (_, reply) in batch {
                    let _ = reply.send(Err(embed_error(&e)));
                }
            }
        }
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
        let sorted: Vec<std::borrow::Cow<'_, str>> = order
            .iter()
            .map(|&i| prefixed(&self.passage_prefix, &texts[i]))
            .collect();
        let vectors = lock(&self.session)?
            .embed(&sorted, Some(self.batch_size))
            .map_err(embed_error)?;
        let mut result = vec![Vec::new(); texts.len()];
        for (vector, &i) in vectors.into_iter().zip(&order) {
            result[i] = vector;
        }
        Ok(result)
    }

    fn embed_query(&self, text: &str) -> VerityResult<Vec<f32>> {
        let (reply, answer) = sync_channel(1);
        self.queries
            .lock()
            .map_err(|_| embed_error("query queue lock poisoned"))?
            .send((prefixed(&self.query_prefix, text).into_owned(), reply))
            .map_err(|_| embed_error("the embedding thread has stopped"))?;
        answer
            .recv()
            .map_err(|_| embed_error("the embedding thread has stopped"))?
    }
}
