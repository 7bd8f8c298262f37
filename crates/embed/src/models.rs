//! The embedding models Verity knows by name: where each is found, which ONNX file of its
//! directory to run, how its inputs are prefixed, how long they may be, and the similarity
//! under which the abstention gate declines to answer (a model's cosines live in its own
//! range, so that threshold belongs to the model).

/// The model used when `embed.model` is not set: multilingual (about 100 languages, including
/// Spanish and Portuguese), 384 dimensions, int8.
pub const DEFAULT_MODEL: &str = "multilingual-e5-small";

/// A known embedding model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The name settings use (`embed.model`).
    pub name: &'static str,
    /// The directory looked for under `<data dir>/models/` and `../shared/models/`.
    pub dir_name: &'static str,
    /// The ONNX graph inside that directory.
    pub file: &'static str,
    /// Prepended to every question before embedding.
    pub query_prefix: &'static str,
    /// Prepended to every passage before embedding.
    pub passage_prefix: &'static str,
    /// The input length the model was trained with, in its tokens.
    pub max_length: usize,
    /// Default `chunking.max_tokens`: the largest section kept whole, in the model's tokens
    /// (room is left for the title line, the prefix and the special tokens).
    pub chunk_max_tokens: usize,
    /// Whether a text's vector depends on the other texts of its batch. True for dynamically
    /// quantised (int8) graphs: activations are quantised with ranges taken over the whole
    /// batch, padding included (cosine 0.997 between a text alone and in a batch). Questions
    /// are then embedded one per call, so a question's vector never depends on who else asked.
    pub batch_dependent: bool,
    /// Default `query.abstain_below` for this model (see the README, "Retrieval and
    /// abstention", for how each was calibrated).
    pub abstain_below: f32,
    /// Default `query.abstain_below_across_languages`: the threshold when the closest passage
    /// is in another language than the question (a multilingual model's cosines across
    /// languages run lower than within one).
    pub abstain_below_across_languages: f32,
}

/// multilingual-e5-small's threshold for a passage in another language than the question,
/// chosen by the rule of the same-language one (abstain on at most 5 % of answerable
/// questions, and within that on as many unanswerable ones as possible) on Spanish questions
/// over English articles: 4.8 % of answerable and 7.8 % of unanswerable ones at 0.775, where
/// 0.80 abstained on 21 %. Checked on the other direction, English questions over Spanish
/// articles, which it was not chosen on: 5.3 % and 13.4 % (docs/benchmarks.md, "Across
/// languages").
const ACROSS_E5: f32 = 0.775;

/// Every model known by name.
pub const MODELS: &[ModelSpec] = &[
    // intfloat/multilingual-e5-small, built by scripts/models/multilingual-e5/: the int8 copy
    // (about twice as fast as float32 on CPU, within a point of its hit@5).
    ModelSpec {
        name: "multilingual-e5-small",
        dir_name: "multilingual-e5-small",
        file: "model_int8.onnx",
        query_prefix: "query: ",
        passage_prefix: "passage: ",
        max_length: 512,
        // Whole paragraphs: on the SQuAD-es dev slice, hybrid hit@5 0.953 at 450 tokens
        // against 0.938 at 250 and 0.903 at 128 (docs/benchmarks.md, "Multilingual").
        chunk_max_tokens: 450,
        batch_dependent: true,
        // Hybrid mode on the dev slices abstains on 4.9 % (en), 2.9 % (es) and 0.3 % (pt) of
        // answerable questions at 0.80; at 0.825 already on 14-16 % in English. One threshold
        // fits all three languages: no per-language value is needed.
        abstain_below: 0.80,
        abstain_below_across_languages: ACROSS_E5,
    },
    // The same model in float32.
    ModelSpec {
        name: "multilingual-e5-small-f32",
        dir_name: "multilingual-e5-small",
        file: "model.onnx",
        query_prefix: "query: ",
        passage_prefix: "passage: ",
        max_length: 512,
        // Whole paragraphs: on the SQuAD-es dev slice, hybrid hit@5 0.953 at 450 tokens
        // against 0.938 at 250 and 0.903 at 128 (docs/benchmarks.md, "Multilingual").
        chunk_max_tokens: 450,
        batch_dependent: false,
        abstain_below: 0.80,
        abstain_below_across_languages: ACROSS_E5,
    },
    // sentence-transformers/all-MiniLM-L6-v2: English only, 6 layers (the default before
    // multilingual-e5-small).
    ModelSpec {
        name: "all-MiniLM-L6-v2",
        dir_name: "all-MiniLM-L6-v2-onnx",
        file: "model.onnx",
        query_prefix: "",
        passage_prefix: "",
        max_length: 256,
        chunk_max_tokens: 250,
        batch_dependent: false,
        abstain_below: 0.35,
        // English only: a question in another language finds nothing meaningful, so the
        // threshold stays the same.
        abstain_below_across_languages: 0.35,
    },
];

/// The known model called `name`, or an error listing the known names.
pub fn model_spec(name: &str) -> Result<&'static ModelSpec, String> {
    MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
        format!(
            "unknown embedding model {name:?} in embed.model; known models: {}",
            MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_model_is_known_and_names_are_unique() {
        assert_eq!(model_spec(DEFAULT_MODEL).unwrap().name, DEFAULT_MODEL);
        for (i, model) in MODELS.iter().enumerate() {
            assert!(MODELS[i + 1..].iter().all(|m| m.name != model.name));
        }
    }

    #[test]
    fn an_unknown_model_is_refused_with_the_known_names() {
        let error = model_spec("bert").unwrap_err();
        assert!(error.contains("all-MiniLM-L6-v2") && error.contains("multilingual-e5-small"));
    }
}
