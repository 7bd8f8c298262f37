//! From settings to a running service: the one place that chooses the backends (SQLite or
//! Postgres, Qdrant Edge or a Qdrant server, the ONNX embedder, the language model) and builds
//! [`Verity`] from them.

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use verity_core::{Embedder, VectorIndex, VerityError};
use verity_embed::{FastEmbedder, find_onnxruntime};
use verity_generate::{
    AnswerConfig, Answerer, ExtractiveAnswerer, ExtractiveConfig, GenerationParams, Generator,
    OpenAiConfig, OpenAiGenerator,
};
use verity_ingest::Chunker;
use verity_mistralrs::{MistralRsConfig, MistralRsGenerator};
use verity_retrieve::{EdgeIndex, INDEX_FORMAT, QdrantServerIndex};
use verity_service::{Components, QueryConfig, ServiceConfig, Verity};
use verity_store::Store;

use crate::settings::{GenerationBackend, Settings};

/// Opens Verity on the settings' data directory, holding an exclusive lock on it while open
/// (the embedded vector index must not be opened by two processes at once). Answers are
/// extractive until [`enable_generation`].
pub async fn open(settings: &Settings) -> anyhow::Result<Verity> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            settings.data_dir.display()
        )
    })?;
    let lock = lock_data_dir(settings)?;

    let model_dir = settings.find_model_dir()?;
    let onnxruntime = find_onnxruntime(settings.embed.onnxruntime.as_deref())?;
    let embedder = FastEmbedder::new(&settings.embedder_config(model_dir.clone(), onnxruntime))?;
    let chunker = Chunker::from_model_dir(&model_dir, settings.chunker_config())
        .map_err(VerityError::Config)?;
    let index: Arc<dyn VectorIndex> = match &settings.index.qdrant_url {
        Some(url) => Arc::new(
            QdrantServerIndex::connect(
                url,
                std::env::var("VERITY_QDRANT_API_KEY")
                    .ok()
                    .filter(|k| !k.is_empty()),
                &settings.index.qdrant_collection,
                embedder.dimension(),
            )
            .await?,
        ),
        None => Arc::new(EdgeIndex::open(
            &settings.index_path(),
            embedder.dimension(),
        )?),
    };
    let store = match &settings.database.url {
        Some(url) => Store::connect(url).await?,
        None => Store::open_sqlite(&settings.database_path()).await?,
    };
    let components = Components {
        store,
        index,
        embedder: Arc::new(embedder),
        chunker: Arc::new(chunker),
        answerer: Arc::new(answerer(settings, None)),
        data_dir_lock: Some(lock),
    };
    Ok(Verity::new(components, service_config(settings)))
}

/// What the use cases take from the settings.
pub fn service_config(settings: &Settings) -> ServiceConfig {
    let query = &settings.query;
    ServiceConfig {
        query: QueryConfig {
            default_collection: query.default_collection.clone(),
            mode: query.mode,
            fusion: query.fusion,
            top_k: query.top_k,
            max_top_k: query.max_top_k,
            max_question_chars: query.max_question_chars,
        },
        traces_enabled: settings.traces.enabled,
        trace_retention_days: settings.traces.retention_days,
        parse_limits: settings.parse_limits(),
        allowed_root: settings.ingest.allowed_root.clone(),
        data_dir: settings.data_dir.clone(),
        embed_max_length: settings.embed_max_length(),
        passage_prefix: settings.embed_model().passage_prefix.to_string(),
        index_format: INDEX_FORMAT.to_string(),
    }
}

/// Connects the language model the settings name (loading a local one can take a while);
/// until then, and with the `extractive` backend, answers are extractive.
pub async fn enable_generation(verity: &mut Verity, settings: &Settings) -> anyhow::Result<()> {
    let generator = connect_generator(settings).await?;
    if let Some(generator) = &generator {
        tracing::info!(generator = %generator.name(), "answers are generated and verified");
    }
    verity.set_answerer(Arc::new(answerer(settings, generator)));
    Ok(())
}

fn lock_data_dir(settings: &Settings) -> anyhow::Result<File> {
    let path = settings.data_dir.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "the data directory {} is in use by another verity process (a running `verity serve`?); \
             stop it first, ask it over HTTP (POST /v1/query), or use another --data-dir",
            settings.data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Without a measured speed (a remote engine, or no model), a derived deadline is this.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a request may wait for a slot and generate: `generation.timeout_seconds`, or when
/// that is 0, derived from the model's speed measured at load — one and a half times what the
/// longest answer (`max_tokens`) after a full prompt (`top_k` sources of the largest chunk size,
/// plus the rules) takes, plus 10 s — so that a slow machine's first answer is not cut off.
pub fn generation_timeout(settings: &Settings, generator: Option<&dyn Generator>) -> Duration {
    let generation = &settings.generation;
    if generation.timeout_seconds > 0 {
        return Duration::from_secs(generation.timeout_seconds);
    }
    let Some(generator) = generator else {
        return DEFAULT_TIMEOUT;
    };
    // The rules and the question take about 400 tokens.
    let prompt_tokens = (400 + settings.query.top_k as usize * settings.chunking.max_tokens).min(
        generator
            .context_window()
            .saturating_sub(generation.max_tokens),
    );
    match generator.expected_duration(prompt_tokens, generation.max_tokens) {
        Some(expected) => {
            let timeout = Duration::from_secs((expected.as_secs_f64() * 1.5 + 10.0).ceil() as u64);
            tracing::info!(
                timeout_seconds = timeout.as_secs(),
                prompt_tokens,
                max_tokens = generation.max_tokens,
                "generation.timeout_seconds = 0: deadline derived from the model's measured speed"
            );
            timeout
        }
        None => DEFAULT_TIMEOUT,
    }
}

fn answerer(settings: &Settings, generator: Option<Arc<dyn Generator>>) -> Answerer {
    let generation = &settings.generation;
    let timeout = generation_timeout(settings, generator.as_deref());
    Answerer::new(
        ExtractiveAnswerer::new(ExtractiveConfig {
            abstain_below: settings.abstain_below(),
            abstain_below_across_languages: settings.abstain_below_across_languages(),
            min_term_coverage: settings.query.min_term_coverage,
            max_sentences: settings.query.max_sentences,
        }),
        generator,
        AnswerConfig {
            params: GenerationParams {
                max_tokens: generation.max_tokens,
                temperature: generation.temperature,
            },
            min_support: generation.min_support,
            timeout,
            max_concurrent: generation.max_concurrent,
            max_queued: generation.max_queued,
        },
    )
}

/// The language model `generation.backend` names, ready to use; `None` for `extractive`.
pub async fn connect_generator(settings: &Settings) -> anyhow::Result<Option<Arc<dyn Generator>>> {
    let generation = &settings.generation;
    Ok(match generation.backend {
        GenerationBackend::Extractive => None,
        GenerationBackend::Openai => {
            let openai = &generation.openai;
            let mut config = OpenAiConfig::new(
                openai.base_url.clone().unwrap_or_default(),
                openai.model.clone().unwrap_or_default(),
            );
            config.api_key = std::env::var("VERITY_OPENAI_API_KEY")
                .ok()
                .filter(|k| !k.is_empty());
            config.context_window = openai.context_window;
            config.stream = openai.stream;
            config.connect_timeout = Duration::from_secs(openai.connect_timeout_seconds);
            config.read_timeout = Duration::from_secs(openai.read_timeout_seconds);
            config.max_retries = openai.max_retries;
            Some(Arc::new(OpenAiGenerator::new(config)?))
        }
        GenerationBackend::Mistralrs => {
            let m = &generation.mistralrs;
            let mut config = MistralRsConfig::new(m.model_dir.clone().unwrap_or_default());
            config.quantization = m.quantization;
            config.paged_attention = m.paged_attention;
            config.max_batch = m.max_batch;
            config.force_cpu = m.force_cpu;
            config.dtype = m.dtype;
            // A deadline derived from the model needs its speed on this machine.
            config.measure_speed = generation.timeout_seconds == 0;
            Some(Arc::new(MistralRsGenerator::load(&config).await?))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Overrides;
    use async_trait::async_trait;
    use verity_generate::{ChatMessage, GenerationError, GenerationStats};

    /// A model that says it prefills 100 tokens/s and decodes 10 tokens/s.
    struct Measured;

    #[async_trait]
    impl Generator for Measured {
        fn name(&self) -> String {
            "measured".into()
        }
        fn context_window(&self) -> usize {
            32_768
        }
        fn expected_duration(
            &self,
            prompt_tokens: usize,
            answer_tokens: usize,
        ) -> Option<Duration> {
            Some(Duration::from_secs_f64(
                prompt_tokens as f64 / 100.0 + answer_tokens as f64 / 10.0,
            ))
        }
        async fn generate(
            &self,
            _: &[ChatMessage],
            _: GenerationParams,
            _: tokio::sync::mpsc::Sender<String>,
        ) -> Result<GenerationStats, GenerationError> {
            unreachable!("only its speed is asked")
        }
    }

    fn settings() -> Settings {
        let mut settings = Settings::load(None, &Overrides::default()).unwrap();
        settings.query.top_k = 5;
        settings.chunking.max_tokens = 250;
        settings.generation.max_tokens = 512;
        settings
    }

    #[test]
    fn a_zero_timeout_is_derived_from_the_models_measured_speed() {
        let mut settings = settings();
        settings.generation.timeout_seconds = 0;
        // A full prompt: 400 + 5 × 250 = 1,650 tokens → 16.5 s; 512 tokens → 51.2 s.
        // 1.5 × 67.7 s + 10 s = 111.55 s, rounded up.
        assert_eq!(
            generation_timeout(&settings, Some(&Measured)),
            Duration::from_secs(112)
        );
        // Unknown speed (a remote engine) or no model: the default.
        assert_eq!(generation_timeout(&settings, None), DEFAULT_TIMEOUT);
    }

    #[test]
    fn a_set_timeout_is_kept() {
        let mut settings = settings();
        settings.generation.timeout_seconds = 45;
        assert_eq!(
            generation_timeout(&settings, Some(&Measured)),
            Duration::from_secs(45)
        );
    }
}
