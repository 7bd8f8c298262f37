//! Builds without the `engine` feature: the type exists so that settings and wiring compile,
//! and loading a model says how to get a build that can run one.

use async_trait::async_trait;
use tokio::sync::mpsc;
use verity_generate::{ChatMessage, GenerationError, GenerationParams, GenerationStats, Generator};

use crate::{MistralRsConfig, Speed};

/// Never built: [`MistralRsGenerator::load`] always refuses in this build.
pub struct MistralRsGenerator {
    never: std::convert::Infallible,
}

impl MistralRsGenerator {
    pub async fn load(config: &MistralRsConfig) -> Result<Self, GenerationError> {
        Err(GenerationError::engine(format!(
            "this verity was built without the local language model, so {} cannot be loaded: \
             build it with the default features (cargo feature `mistralrs` of verity-cli), or \
             serve the model with an OpenAI-compatible engine and set generation.backend = \"openai\"",
            config.model_dir.display()
        )))
    }

    pub fn speed(&self) -> Option<Speed> {
        match self.never {}
    }
}

#[async_trait]
impl Generator for MistralRsGenerator {
    fn name(&self) -> String {
        match self.never {}
    }

    fn context_window(&self) -> usize {
        match self.never {}
    }

    async fn generate(
        &self,
        _: &[ChatMessage],
        _: GenerationParams,
        _: mpsc::Sender<String>,
    ) -> Result<GenerationStats, GenerationError> {
        match self.never {}
    }
}
