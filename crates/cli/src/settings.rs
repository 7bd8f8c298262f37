//! Layered settings: the defaults built into the binary (`config/default.toml`), then an
//! optional file, then `VERITY_…` environment variables, then command-line flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;
use verity_core::RetrievalMode;

const DEFAULTS: &str = include_str!("../../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    pub index: IndexSettings,
    pub server: ServerSettings,
    pub embed: EmbedSettings,
    pub chunking: ChunkingSettings,
    pub query: QuerySettings,
    pub generation: GenerationSettings,
    pub auth: AuthSettings,
    pub traces: TraceSettings,
    pub ingest: IngestSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    /// `POST /v1/ingest/jobs` may name server-side paths only under this directory; unset:
    /// server-side paths are refused.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub allowed_root: Option<PathBuf>,
    /// `verity serve` runs an ingest worker for the job queue in its own process.
    pub serve_worker: bool,
    /// Limits on each file parsed (see [`Settings::parse_limits`]).
    pub max_file_mib: u64,
    pub max_decompressed_mib: u64,
    pub max_pdf_pages: usize,
    pub parse_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TraceSettings {
    pub enabled: bool,
    pub retention_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub mode: verity_auth::AuthMode,
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    pub oidc: OidcSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OidcSettings {
    #[serde(default, deserialize_with = "empty_string_as_none")]
    pub issuer: Option<String>,
    #[serde(default, deserialize_with = "empty_string_as_none")]
    pub audience: Option<String>,
    #[serde(default, deserialize_with = "empty_string_as_none")]
    pub jwks_url: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub jwks_file: Option<PathBuf>,
    pub groups_claim: String,
    pub algorithms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenerationBackend {
    Extractive,
    Mistralrs,
    Openai,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GenerationSettings {
    pub backend: GenerationBackend,
    pub max_tokens: usize,
    pub temperature: f32,
    pub min_support: f32,
    /// 0: derived from the model (see [`crate::wiring::generation_timeout`]).
    pub timeout_seconds: u64,
    pub max_concurrent: usize,
    pub max_queued: usize,
    pub openai: OpenAiSettings,
    pub mistralrs: MistralRsSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OpenAiSettings {
    #[serde(default, deserialize_with = "empty_string_as_none")]
    pub base_url: Option<String>,
    #[serde(default, deserialize_with = "empty_string_as_none")]
    pub model: Option<String>,
    pub context_window: usize,
    pub stream: bool,
    pub connect_timeout_seconds: u64,
    pub read_timeout_seconds: u64,
    pub max_retries: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MistralRsSettings {
    #[serde(default, deserialize_with = "empty_as_none")]
    pub model_dir: Option<PathBuf>,
    pub quantization: verity_mistralrs::Quantization,
    pub paged_attention: bool,
    pub max_batch: usize,
    pub force_cpu: bool,
    pub dtype: verity_mistralrs::ActivationDtype,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; unset: the SQLite file in the data directory.
    #[serde(default, deserialize_with = "empty_string_as_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IndexSettings {
    #[serde(default, deserialize_with = "empty_string_as_none")]
    pub qdrant_url: Option<String>,
    pub qdrant_collection: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind: String,
    pub workers: usize,
    pub max_body_bytes: usize,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub tls_key: Option<PathBuf>,
    pub tls_allow_tls12: bool,
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// With authentication off, host names besides loopback and `bind`'s that requests may be
    /// addressed to (a name in /etc/hosts, say); every other `Host` is refused.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    pub max_upload_bytes: usize,
    pub max_job_upload_bytes: usize,
    pub max_concurrent_queries: usize,
    pub request_head_timeout_ms: u64,
    pub request_body_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmbedSettings {
    /// A model known by name ([`verity_embed::MODELS`]): its file, prefixes, input length and
    /// abstention threshold.
    pub model: String,
    /// Where the model is; unset: `<data dir>/models/<its directory>`, then `../shared/models/`.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub model_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub onnxruntime: Option<PathBuf>,
    /// Input length in the model's tokens; 0: the model's own.
    pub max_length: usize,
    pub batch_size: usize,
    pub threads: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChunkingSettings {
    pub target_tokens: usize,
    pub max_tokens: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QuerySettings {
    pub default_collection: String,
    pub mode: RetrievalMode,
    /// How hybrid searches merge their dense and BM25 candidates.
    #[serde(default)]
    pub fusion: verity_core::Fusion,
    pub top_k: u32,
    pub max_top_k: u32,
    pub max_question_chars: usize,
    /// Unset: the embedding model's own threshold (see [`Settings::abstain_below`]).
    #[serde(default)]
    pub abstain_below: Option<f32>,
    /// Unset: the embedding model's own threshold for passages in another language than the
    /// question (see [`Settings::abstain_below_across_languages`]).
    #[serde(default)]
    pub abstain_below_across_languages: Option<f32>,
    pub min_term_coverage: f32,
    pub max_sentences: usize,
}

/// Values given on the command line, which win over every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub bind: Option<String>,
}

fn empty_string_as_none<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    let value: Option<String> = Option::deserialize(d)?;
    Ok(value.filter(|s| !s.trim().is_empty()))
}

fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let value: Option<String> = Option::deserialize(d)?;
    Ok(value.filter(|s| !s.trim().is_empty()).map(PathBuf::from))
}

impl Settings {
    /// The limits every file is parsed under: the settings' sizes, page count and time, the
    /// parser's own defaults for the rest (compression ratio, nesting depth, text length).
    pub fn parse_limits(&self) -> verity_ingest::ParseLimits {
        const MIB: u64 = 1024 * 1024;
        let ingest = &self.ingest;
        verity_ingest::ParseLimits {
            max_file_bytes: ingest.max_file_mib * MIB,
            max_decompressed_bytes: ingest.max_decompressed_mib * MIB,
            max_pages: ingest.max_pdf_pages,
            timeout: std::time::Duration::from_secs(ingest.parse_timeout_seconds),
            ..verity_ingest::ParseLimits::default()
        }
    }

    /// The embedding model `embed.model` names (checked when the settings are loaded).
    pub fn embed_model(&self) -> &'static verity_embed::ModelSpec {
        verity_embed::model_spec(&self.embed.model).expect("embed.model is checked by validate")
    }

    /// The embedding model's input length: `embed.max_length`, or the model's own.
    pub fn embed_max_length(&self) -> usize {
        match self.embed.max_length {
            0 => self.embed_model().max_length,
            n => n,
        }
    }

    /// The largest section kept whole in one chunk: `chunking.max_tokens`, or the model's own.
    pub fn chunk_max_tokens(&self) -> usize {
        match self.chunking.max_tokens {
            0 => self.embed_model().chunk_max_tokens,
            n => n,
        }
    }

    /// How documents are cut into chunks.
    pub fn chunker_config(&self) -> verity_ingest::ChunkerConfig {
        verity_ingest::ChunkerConfig {
            target_tokens: self.chunking.target_tokens,
            max_tokens: self.chunk_max_tokens(),
        }
    }

    /// The similarity under which answers abstain: `query.abstain_below`, or the threshold
    /// calibrated for the embedding model (cosines of different models are not comparable).
    pub fn abstain_below(&self) -> f32 {
        self.query
            .abstain_below
            .unwrap_or(self.embed_model().abstain_below)
    }

    /// The same threshold when the closest passage is in another language than the question:
    /// `query.abstain_below_across_languages`, or the embedding model's own.
    pub fn abstain_below_across_languages(&self) -> f32 {
        self.query
            .abstain_below_across_languages
            .unwrap_or(self.embed_model().abstain_below_across_languages)
    }

    /// How to run the embedding model found in `model_dir`.
    pub fn embedder_config(
        &self,
        model_dir: PathBuf,
        onnxruntime: PathBuf,
    ) -> verity_embed::EmbedderConfig {
        let model = self.embed_model();
        verity_embed::EmbedderConfig {
            model_dir,
            model_file: model.file.to_string(),
            onnxruntime,
            query_prefix: model.query_prefix.to_string(),
            passage_prefix: model.passage_prefix.to_string(),
            max_length: self.embed_max_length(),
            batch_size: self.embed.batch_size,
            batch_queries: !model.batch_dependent,
            threads: self.embed.threads,
        }
    }

    /// The embedding model's directory (see [`verity_embed::find_model_dir`]).
    pub fn find_model_dir(&self) -> verity_core::VerityResult<PathBuf> {
        verity_embed::find_model_dir(
            self.embed.model_dir.as_deref(),
            &self.data_dir,
            self.embed_model(),
        )
    }

    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(file) = file {
            anyhow::ensure!(
                file.is_file(),
                "settings file {} does not exist",
                file.display()
            );
            builder = builder.add_source(File::from(file).required(true));
        }
        builder = builder
            .add_source(
                Environment::with_prefix("VERITY")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    // VERITY_SERVER__CORS_ORIGINS=https://a.example,https://b.example
                    .list_separator(",")
                    .with_list_parse_key("server.cors_origins")
                    .with_list_parse_key("server.allowed_hosts"),
            )
            .set_override_option(
                "data_dir",
                overrides.data_dir.as_ref().map(|p| p.display().to_string()),
            )?
            .set_override_option("server.bind", overrides.bind.clone())?
            // The documented name of the database URL variable has no section separator.
            .set_override_option(
                "database.url",
                std::env::var("VERITY_DATABASE_URL")
                    .ok()
                    .filter(|v| !v.is_empty()),
            )?
            .set_override_option(
                "index.qdrant_url",
                std::env::var("VERITY_QDRANT_URL")
                    .ok()
                    .filter(|v| !v.is_empty()),
            )?;
        // The generation contract's variables, documented without section separators.
        for (key, variable) in [
            ("generation.backend", "VERITY_GENERATION_BACKEND"),
            ("auth.mode", "VERITY_AUTH_MODE"),
            ("generation.openai.base_url", "VERITY_OPENAI_BASE_URL"),
            ("generation.openai.model", "VERITY_OPENAI_MODEL"),
            (
                "generation.mistralrs.model_dir",
                "VERITY_MISTRALRS_MODEL_DIR",
            ),
        ] {
            builder = builder.set_override_option(
                key,
                std::env::var(variable)
                    .ok()
                    .filter(|v| !v.trim().is_empty()),
            )?;
        }
        let settings: Settings = builder
            .build()
            .context("cannot read settings")?
            .try_deserialize()
            .context("invalid settings (see config/default.toml for every key)")?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        verity_embed::model_spec(&self.embed.model).map_err(anyhow::Error::msg)?;
        for (name, below) in [
            ("abstain_below", self.query.abstain_below),
            (
                "abstain_below_across_languages",
                self.query.abstain_below_across_languages,
            ),
        ] {
            if let Some(below) = below {
                anyhow::ensure!(
                    (-1.0..=1.0).contains(&below),
                    "query.{name} is a cosine similarity: between -1 and 1"
                );
            }
        }
        verity_core::validate_collection_name(&self.query.default_collection)
            .context("query.default_collection")?;
        anyhow::ensure!(
            (1..=self.query.max_top_k).contains(&self.query.top_k),
            "query.top_k must be between 1 and query.max_top_k ({})",
            self.query.max_top_k
        );
        let max_tokens = self.chunk_max_tokens();
        anyhow::ensure!(max_tokens >= 16, "chunking.max_tokens must be at least 16");
        anyhow::ensure!(
            (1..=max_tokens).contains(&self.chunking.target_tokens),
            "chunking.target_tokens must be between 1 and chunking.max_tokens ({max_tokens})"
        );
        anyhow::ensure!(
            max_tokens < self.embed_max_length(),
            "chunking.max_tokens ({max_tokens}) must be below embed.max_length ({})",
            self.embed_max_length()
        );
        anyhow::ensure!(
            self.query.max_question_chars > 0,
            "query.max_question_chars must be positive"
        );
        anyhow::ensure!(
            self.server.tls_cert.is_some() == self.server.tls_key.is_some(),
            "server.tls_cert and server.tls_key go together: set both (HTTPS) or neither"
        );
        let generation = &self.generation;
        anyhow::ensure!(
            (0.0..=1.0).contains(&generation.min_support),
            "generation.min_support must be between 0 and 1"
        );
        anyhow::ensure!(
            generation.max_tokens > 0 && generation.max_concurrent > 0,
            "generation.max_tokens and generation.max_concurrent must be positive"
        );
        match generation.backend {
            GenerationBackend::Openai => anyhow::ensure!(
                generation.openai.base_url.is_some() && generation.openai.model.is_some(),
                "generation.backend is \"openai\" but the engine is not named: set \
                 VERITY_OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1) and VERITY_OPENAI_MODEL"
            ),
            GenerationBackend::Mistralrs => anyhow::ensure!(
                generation.mistralrs.model_dir.is_some(),
                "generation.backend is \"mistralrs\" but no model is named: set \
                 VERITY_MISTRALRS_MODEL_DIR to a local model directory"
            ),
            GenerationBackend::Extractive => {}
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("verity.sqlite3")
    }

    pub fn index_path(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}
