//! The engine: mistral.rs loading and running a local model (feature `engine`).

use std::path::Path;

use async_trait::async_trait;
use mistralrs::core::{
    AutoDeviceMapParams, DefaultSchedulerMethod, DeviceMapSetting, GGUFLoaderBuilder,
    GGUFSpecificConfig, MistralRsBuilder, ModelDType, SchedulerConfig,
};
use mistralrs::{
    ChatCompletionChunkResponse, Device, GgufModelBuilder, IsqBits, Model,
    PagedAttentionMetaBuilder, RequestBuilder, Response, TextMessageRole, TextModelBuilder,
    TokenSource,
};
use tokio::sync::mpsc;
use verity_generate::{
    ChatMessage, GenerationError, GenerationParams, GenerationStats, Generator, Role, TextSink,
};

use crate::{ActivationDtype, MistralRsConfig, Quantization, Speed};

/// What mistral.rs is asked for: `Auto` resolves to F32 on CPU (see [`ActivationDtype::Auto`]).
fn model_dtype(dtype: ActivationDtype, device: &Device) -> ModelDType {
    match dtype {
        ActivationDtype::Auto if device.is_cpu() => ModelDType::F32,
        ActivationDtype::Auto => ModelDType::Auto,
        ActivationDtype::F32 => ModelDType::F32,
        ActivationDtype::Bf16 => ModelDType::BF16,
        ActivationDtype::F16 => ModelDType::F16,
    }
}

pub struct MistralRsGenerator {
    model: Model,
    name: String,
    context_window: usize,
    tokenizer: Option<tokenizers::Tokenizer>,
    speed: Option<Speed>,
}

/// About 200 tokens of prose for the speed measurement: long enough that prefill dominates
/// the first token, short enough to take seconds (it runs at every load).
fn measurement_messages() -> Vec<ChatMessage> {
    let passage = "Every full-time employee receives twenty working days of paid vacation per \
                   calendar year, and up to five unused days may be carried over into the next year. ";
    vec![
        ChatMessage {
            role: Role::System,
            content: "Answer from the text in one short sentence.".into(),
        },
        ChatMessage {
            role: Role::User,
            content: format!(
                "{}\nHow many days of paid vacation does an employee get?",
                passage.repeat(6)
            ),
        },
    ]
}

impl MistralRsGenerator {
    /// Loads the model. Slow (seconds to minutes, with the weights' size): call once at start.
    pub async fn load(config: &MistralRsConfig) -> Result<Self, GenerationError> {
        let dir = &config.model_dir;
        if !dir.is_dir() {
            return Err(GenerationError::engine(format!(
                "model directory {} does not exist; set generation.mistralrs.model_dir \
                 (VERITY_MISTRALRS_MODEL_DIR) to a local model directory",
                dir.display()
            )));
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let gguf = gguf_files(dir)?;
        let model = if gguf.is_empty() {
            load_safetensors(config).await
        } else {
            load_gguf(config, gguf).await
        }
        .map_err(|e| {
            GenerationError::engine(format!("cannot load the model in {}: {e:#}", dir.display()))
        })?;
        let context_window = model
            .max_sequence_length()
            .ok()
            .flatten()
            .or_else(|| config_context(dir))
            .unwrap_or(4096);
        let tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).ok();
        let mut generator = Self {
            model,
            name: format!("mistralrs:{name}"),
            context_window,
            tokenizer,
            speed: None,
        };
        if config.measure_speed {
            generator.speed = Some(generator.measure_speed().await?);
        }
        Ok(generator)
    }

    /// What the speed measurement at load found (with `measure_speed`).
    pub fn speed(&self) -> Option<Speed> {
        self.speed
    }

    /// Prefills about 200 tokens and writes up to 8: the machine's speed with this model.
    async fn measure_speed(&self) -> Result<Speed, GenerationError> {
        let (tx, mut rx) = mpsc::channel(64);
        let params = GenerationParams {
            max_tokens: 8,
            temperature: 0.0,
        };
        let messages = measurement_messages();
        let (stats, ()) = tokio::join!(self.generate(&messages, params, tx), async {
            while rx.recv().await.is_some() {}
        });
        let stats = stats?;
        // A model that ends at once (its first token the end of text) writes nothing: the whole
        // time was then the prompt's.
        let first = stats.first_token.unwrap_or(stats.total);
        let prefill = stats.prompt_tokens.max(1) as f64 / first.as_secs_f64().max(1e-3);
        // Without two tokens to time, assume decoding a token costs ten prefilled ones: on CPUs
        // the ratio is 3-10 (docs/benchmarks.md), and a deadline had better be too long.
        let decode = stats.decode_tokens_per_second().unwrap_or(prefill / 10.0);
        let speed = Speed {
            prefill_tokens_per_s: prefill,
            decode_tokens_per_s: decode,
        };
        tracing::info!(
            model = %self.name,
            prefill_tokens_per_s = format!("{prefill:.1}"),
            decode_tokens_per_s = format!("{decode:.1}"),
            "measured the language model's speed"
        );
        Ok(speed)
    }
}

fn gguf_files(dir: &Path) -> Result<Vec<String>, GenerationError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        GenerationError::engine(format!(
            "cannot read model directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut files: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".gguf"))
        .collect();
    files.sort();
    Ok(files)
}

/// `max_position_embeddings` from `config.json`.
fn config_context(dir: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value
        .get("max_position_embeddings")?
        .as_u64()
        .map(|n| n as usize)
}

fn isq_bits(quantization: Quantization) -> Option<IsqBits> {
    match quantization {
        Quantization::None => None,
        Quantization::Q8 => Some(IsqBits::Eight),
        Quantization::Q4 => Some(IsqBits::Four),
    }
}

fn use_paged_attention(config: &MistralRsConfig) -> bool {
    config.paged_attention && cfg!(feature = "cuda") && !config.force_cpu
}

async fn load_safetensors(config: &MistralRsConfig) -> anyhow::Result<Model> {
    let device = mistralrs::best_device(config.force_cpu)?;
    let mut builder = TextModelBuilder::new(config.model_dir.display().to_string())
        .with_token_source(TokenSource::None)
        .with_dtype(model_dtype(config.dtype, &device))
        .with_max_num_seqs(config.max_batch.max(1));
    if let Some(bits) = isq_bits(config.quantization) {
        builder = builder.with_auto_isq(bits);
    }
    if config.force_cpu {
        builder = builder.with_force_cpu();
    }
    if use_paged_attention(config) {
        builder = builder.with_paged_attn(PagedAttentionMetaBuilder::default().build()?);
    }
    builder.build().await
}

/// Loads a GGUF model. mistral.rs's `GgufModelBuilder` always lets the engine choose the
/// activation type (a half type, slow on CPU), so without paged attention the pipeline is built
/// here the way that builder builds it, with the type asked for. Paged attention (CUDA) keeps
/// the builder and its choice, which suits a GPU.
async fn load_gguf(config: &MistralRsConfig, files: Vec<String>) -> anyhow::Result<Model> {
    let template = config.model_dir.join("tokenizer_config.json");
    let chat_template = template.is_file().then(|| template.display().to_string());
    if use_paged_attention(config) {
        if config.dtype != ActivationDtype::Auto {
            tracing::warn!(
                dtype = ?config.dtype,
                "generation.mistralrs.dtype is not applied to GGUF models with paged attention"
            );
        }
        let mut builder = GgufModelBuilder::new(config.model_dir.display().to_string(), files)
            .with_token_source(TokenSource::None)
            .with_max_num_seqs(config.max_batch.max(1))
            .with_paged_attn(PagedAttentionMetaBuilder::default().build()?);
        if let Some(template) = chat_template {
            builder = builder.with_chat_template(template);
        }
        if config.force_cpu {
            builder = builder.with_force_cpu();
        }
        return builder.build().await;
    }
    let device = mistralrs::best_device(config.force_cpu)?;
    let loader = GGUFLoaderBuilder::new(
        chat_template,
        None,
        config.model_dir.display().to_string(),
        files,
        GGUFSpecificConfig { topology: None },
        false,
        None,
    )
    .build();
    let pipeline = loader.load_model_from_hf(
        None,
        TokenSource::None,
        &model_dtype(config.dtype, &device),
        &device,
        true,
        DeviceMapSetting::Auto(AutoDeviceMapParams::default_text()),
        None,
        None,
    )?;
    let scheduler = SchedulerConfig::DefaultScheduler {
        method: DefaultSchedulerMethod::Fixed(config.max_batch.max(1).try_into()?),
    };
    // The builder's defaults: KV cache and a prefix cache of 16 sequences.
    let runner = MistralRsBuilder::new(pipeline, scheduler, false, None)
        .with_no_kv_cache(false)
        .with_no_prefix_cache(false)
        .with_prefix_cache_n(16)
        .build()
        .await;
    Ok(Model::new(runner))
}

#[async_trait]
impl Generator for MistralRsGenerator {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn context_window(&self) -> usize {
        self.context_window
    }

    fn expected_duration(
        &self,
        prompt_tokens: usize,
        answer_tokens: usize,
    ) -> Option<std::time::Duration> {
        let speed = self.speed?;
        Some(std::time::Duration::from_secs_f64(
            prompt_tokens as f64 / speed.prefill_tokens_per_s
                + answer_tokens as f64 / speed.decode_tokens_per_s,
        ))
    }

    fn count_tokens(&self, text: &str) -> usize {
        match &self.tokenizer {
            Some(t) => t
                .encode_fast(text, false)
                .map(|e| e.len())
                .unwrap_or_else(|_| text.chars().count().div_ceil(3)),
            None => text.chars().count().div_ceil(3),
        }
    }

    async fn generate(
        &self,
        messages: &[ChatMessage],
        params: GenerationParams,
        output: mpsc::Sender<String>,
    ) -> Result<GenerationStats, GenerationError> {
        let mut sink = TextSink::new(output);
        let mut request = RequestBuilder::new().set_sampler_max_len(params.max_tokens);
        if params.temperature > 0.0 {
            request = request.set_sampler_temperature(f64::from(params.temperature));
        }
        for message in messages {
            let role = match message.role {
                Role::System => TextMessageRole::System,
                Role::User => TextMessageRole::User,
            };
            request = request.add_message(role, &message.content);
        }
        let mut stream =
            self.model.stream_chat_request(request).await.map_err(|e| {
                GenerationError::engine(format!("mistral.rs refused the request: {e}"))
            })?;
        while let Some(response) = stream.next().await {
            match response {
                Response::Chunk(ChatCompletionChunkResponse { choices, usage, .. }) => {
                    if let Some(usage) = usage {
                        sink.stats.prompt_tokens = usage.prompt_tokens;
                        sink.stats.completion_tokens = usage.completion_tokens;
                    }
                    let Some(choice) = choices.first() else {
                        continue;
                    };
                    if let Some(text) = choice.delta.content.as_deref() {
                        // A failed send means the reader is gone; returning drops `stream`,
                        // which makes mistral.rs cancel the sequence.
                        sink.send(text).await?;
                    }
                    if choice.finish_reason.is_some() {
                        break;
                    }
                }
                Response::Done(done) => {
                    sink.stats.prompt_tokens = done.usage.prompt_tokens;
                    sink.stats.completion_tokens = done.usage.completion_tokens;
                    break;
                }
                Response::ModelError(message, _) => {
                    return Err(GenerationError::engine(format!(
                        "mistral.rs failed while generating: {message}"
                    )));
                }
                Response::InternalError(e) | Response::ValidationError(e) => {
                    return Err(GenerationError::engine(format!("mistral.rs: {e}")));
                }
                _ => {}
            }
        }
        Ok(sink.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_activations_are_f32_on_cpu_and_the_engines_choice_elsewhere() {
        assert_eq!(
            model_dtype(ActivationDtype::Auto, &Device::Cpu),
            ModelDType::F32
        );
        assert_eq!(
            model_dtype(ActivationDtype::F16, &Device::Cpu),
            ModelDType::F16
        );
        assert_eq!(
            model_dtype(ActivationDtype::Bf16, &Device::Cpu),
            ModelDType::BF16
        );
    }
}
