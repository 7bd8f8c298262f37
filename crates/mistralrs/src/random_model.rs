//! Writes a randomly initialised Llama model — `config.json`, `tokenizer.json`,
//! `tokenizer_config.json` with a chat template, `model.safetensors` — to a directory.
//!
//! Tests use a tiny one so the real mistral.rs code path (loading, chat template, tokenising,
//! decoding, streaming, cancellation) runs on CPU without downloading weights;
//! `verity bench generate --random-model` uses a larger one to measure an engine where no
//! weights can be fetched. The model writes random bytes: its text is noise, and verification
//! treats it as such.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use serde_json::{Value, json};

/// The shape of a random Llama.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlamaShape {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub context: usize,
}

impl LlamaShape {
    /// 2 layers, 64 wide: loads and generates in well under a second on CPU.
    pub const TINY: LlamaShape = LlamaShape {
        hidden: 64,
        intermediate: 128,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        context: 4096,
    };

    /// About 0.5 B parameters (24 layers, 1024 wide), for throughput figures on a GPU.
    pub const SMALL: LlamaShape = LlamaShape {
        hidden: 1024,
        intermediate: 4096,
        layers: 24,
        heads: 16,
        kv_heads: 4,
        context: 8192,
    };

    pub fn parameters(&self) -> usize {
        let head_dim = self.hidden / self.heads;
        let kv = self.kv_heads * head_dim;
        let attention = 2 * self.hidden * self.hidden + 2 * kv * self.hidden;
        let mlp = 3 * self.hidden * self.intermediate;
        let per_layer = attention + mlp + 2 * self.hidden;
        2 * VOCAB * self.hidden + self.layers * per_layer + self.hidden
    }
}

/// 256 byte tokens, then `<s>`, `</s>`, `<unk>` and a padding token.
const VOCAB: usize = 260;
const BOS: usize = 256;
const EOS: usize = 257;

/// Writes the model to `dir` (created if needed).
pub fn write_random_llama(dir: &Path, shape: LlamaShape, seed: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_json(&dir.join("config.json"), &config(shape))?;
    write_json(&dir.join("tokenizer.json"), &tokenizer())?;
    write_json(&dir.join("tokenizer_config.json"), &tokenizer_config())?;
    write_json(
        &dir.join("generation_config.json"),
        &json!({"bos_token_id": BOS, "eos_token_id": EOS}),
    )?;
    write_weights(&dir.join("model.safetensors"), shape, seed)
}

fn write_json(path: &Path, value: &Value) -> std::io::Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(value)?)
}

fn config(shape: LlamaShape) -> Value {
    json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": shape.hidden,
        "intermediate_size": shape.intermediate,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "vocab_size": VOCAB,
        "max_position_embeddings": shape.context,
        "rms_norm_eps": 1e-5,
        // mistral.rs 0.8.1 needs rope_theta at the top level.
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": false,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "torch_dtype": "float32"
    })
}

/// GPT-2's byte-to-character table, which byte-level BPE vocabularies are written in.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut table = vec!['\0'; 256];
    for &b in &printable {
        table[b as usize] = char::from_u32(b).expect("valid code point");
    }
    let mut next = 256;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            table[b as usize] = char::from_u32(next).expect("valid code point");
            printable.push(b);
            next += 1;
        }
    }
    table
}

/// A byte-level BPE without merges: every byte is a token, so any text round-trips.
fn tokenizer() -> Value {
    let mut vocab = BTreeMap::new();
    for (id, c) in byte_chars().into_iter().enumerate() {
        vocab.insert(c.to_string(), id);
    }
    let specials = ["<s>", "</s>", "<unk>", "<pad>"];
    for (i, token) in specials.iter().enumerate() {
        vocab.insert(token.to_string(), 256 + i);
    }
    let added: Vec<Value> = specials
        .iter()
        .enumerate()
        .map(|(i, token)| {
            json!({"id": 256 + i, "content": token, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false, "vocab": vocab, "merges": []
        }
    })
}

fn tokenizer_config() -> Value {
    json!({
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "add_bos_token": true,
        "model_max_length": 4096,
        "chat_template": "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    })
}

/// Deterministic pseudo-random numbers (xorshift64*), so a seed always gives the same model.
struct Noise(u64);

impl Noise {
    /// Roughly uniform in [-scale, scale].
    fn next(&mut self, scale: f32) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        (bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
}

fn write_weights(path: &Path, shape: LlamaShape, seed: u64) -> std::io::Result<()> {
    let head_dim = shape.hidden / shape.heads;
    let kv = shape.kv_heads * head_dim;
    let (h, i) = (shape.hidden, shape.intermediate);
    let mut tensors: Vec<(String, Vec<usize>, bool)> = vec![
        ("model.embed_tokens.weight".into(), vec![VOCAB, h], false),
        ("model.norm.weight".into(), vec![h], true),
        ("lm_head.weight".into(), vec![VOCAB, h], false),
    ];
    for l in 0..shape.layers {
        let p = format!("model.layers.{l}");
        tensors.extend([
            (format!("{p}.self_attn.q_proj.weight"), vec![h, h], false),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, h], false),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, h], false),
            (format!("{p}.self_attn.o_proj.weight"), vec![h, h], false),
            (format!("{p}.mlp.gate_proj.weight"), vec![i, h], false),
            (format!("{p}.mlp.up_proj.weight"), vec![i, h], false),
            (format!("{p}.mlp.down_proj.weight"), vec![h, i], false),
            (format!("{p}.input_layernorm.weight"), vec![h], true),
            (
                format!("{p}.post_attention_layernorm.weight"),
                vec![h],
                true,
            ),
        ]);
    }
    let mut noise = Noise(seed.max(1));
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, dims, is_norm)| {
            let n: usize = dims.iter().product();
            // The output rows of the special tokens are zero: their logit is then 0 while the
            // best of the 256 random byte logits is almost surely above it, so greedy decoding
            // does not stop at once (and the tests get text to stream).
            let silent = if name == "lm_head.weight" { BOS * h } else { n };
            let bytes: Vec<u8> = (0..n)
                .flat_map(|k| {
                    let v = if is_norm {
                        1.0
                    } else if k >= silent {
                        0.0
                    } else {
                        noise.next(0.05)
                    };
                    v.to_le_bytes()
                })
                .collect();
            (name, dims, bytes)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, dims, bytes)| {
            let view = TensorView::new(Dtype::F32, dims.clone(), bytes)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok((name.clone(), view))
        })
        .collect::<std::io::Result<_>>()?;
    safetensors::serialize_to_file(views, None, path)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_table_is_a_bijection() {
        let table = byte_chars();
        let unique: std::collections::HashSet<char> = table.iter().copied().collect();
        assert_eq!(unique.len(), 256);
        assert_eq!(table[b'A' as usize], 'A');
        assert_eq!(table[b' ' as usize], 'Ġ');
    }

    #[test]
    fn the_small_shape_is_about_half_a_billion_parameters() {
        let n = LlamaShape::SMALL.parameters();
        assert!((300_000_000..700_000_000).contains(&n), "{n}");
    }
}
