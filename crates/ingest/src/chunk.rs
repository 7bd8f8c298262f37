use std::path::Path;

use text_splitter::{ChunkCapacity, ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;
use verity_core::{Chunk, DocumentFormat, ParsedDocument, chunk_id};

use crate::read::content_hash;

/// Chunks hold at most this many model tokens by default. all-MiniLM-L6-v2 reads 256 word
/// pieces; the rest is room for the special tokens and the title line added before embedding.
pub const DEFAULT_MAX_TOKENS: usize = 250;
/// Small sections are merged with their neighbours until a chunk reaches this many tokens.
pub const DEFAULT_TARGET_TOKENS: usize = 48;

/// How large chunks are, in the embedding model's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerConfig {
    /// Adjacent small sections are merged until a chunk reaches this size…
    pub target_tokens: usize,
    /// …and a section up to this size is kept whole rather than cut.
    pub max_tokens: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self {
            target_tokens: DEFAULT_TARGET_TOKENS,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// Cuts documents into chunks measured in the embedding model's own tokens, preferring to cut
/// at the largest structure that fits (section, paragraph, sentence, word).
pub struct Chunker {
    tokenizer: Tokenizer,
    markdown: MarkdownSplitter<Tokenizer>,
    text: TextSplitter<Tokenizer>,
    config: ChunkerConfig,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker")
            .field("config", &self.config)
            .finish()
    }
}

impl Chunker {
    /// Loads the tokenizer (`tokenizer.json`) of the embedding model in `model_dir`.
    pub fn from_model_dir(model_dir: &Path, config: ChunkerConfig) -> Result<Self, String> {
        let path = model_dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&path)
            .map_err(|e| format!("cannot load tokenizer {}: {e}", path.display()))?;
        Ok(Self::new(tokenizer, config))
    }

    /// A chunker that counts each whitespace-separated word as one token, for tests and fakes
    /// where no embedding model's tokenizer is at hand.
    pub fn whitespace(config: ChunkerConfig) -> Self {
        let unknown = "[UNK]".to_string();
        let words = tokenizers::models::wordlevel::WordLevel::builder()
            .vocab([(unknown.clone(), 0)].into_iter().collect())
            .unk_token(unknown)
            .build()
            .expect("a one-word vocabulary with its unknown token is valid");
        let mut tokenizer = Tokenizer::new(words);
        tokenizer.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::Whitespace {}));
        Self::new(tokenizer, config)
    }

    pub fn new(mut tokenizer: Tokenizer, config: ChunkerConfig) -> Self {
        // Sizes must reflect the whole text: a truncating tokenizer would call every long text
        // "256 tokens" and let it through.
        tokenizer
            .with_truncation(None)
            .expect("disabling truncation cannot fail");
        tokenizer.with_padding(None);
        let max = config.max_tokens.max(1);
        let capacity = ChunkCapacity::new(config.target_tokens.clamp(1, max))
            .with_max(max)
            .expect("target is clamped to at most max");
        Self {
            markdown: MarkdownSplitter::new(
                ChunkConfig::new(capacity).with_sizer(tokenizer.clone()),
            ),
            text: TextSplitter::new(ChunkConfig::new(capacity).with_sizer(tokenizer.clone())),
            tokenizer,
            config,
        }
    }

    pub fn config(&self) -> ChunkerConfig {
        self.config
    }

    /// The number of model tokens in `text` (without special tokens).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.size(text)
    }

    /// Chunks a parsed document. Chunk spans are character offsets into `document.text`.
    pub fn chunk(&self, document_id: &str, document: &ParsedDocument) -> Vec<Chunk> {
        let pieces: Vec<(usize, &str)> = match document.format {
            DocumentFormat::Markdown | DocumentFormat::Html | DocumentFormat::Docx => self
                .markdown
                .chunk_char_indices(&document.text)
                .map(|c| (c.char_offset, c.chunk))
                .collect(),
            DocumentFormat::Text => self
                .text
                .chunk_char_indices(&document.text)
                .map(|c| (c.char_offset, c.chunk))
                .collect(),
            DocumentFormat::Pdf => self.page_pieces(document),
            DocumentFormat::Csv => self.row_groups(&document.text),
        };
        pieces
            .into_iter()
            .filter(|(_, text)| !text.trim().is_empty())
            .enumerate()
            .map(|(ordinal, (start, text))| {
                let ordinal = ordinal as u32;
                let end = start + text.chars().count();
                Chunk {
                    id: chunk_id(document_id, ordinal, start, &content_hash(text.as_bytes())),
                    document_id: document_id.to_string(),
                    ordinal,
                    start,
                    end,
                    text: text.to_string(),
                    heading_path: heading_path(document, start, text),
                    token_count: self.count_tokens(text) as u32,
                    page: document.page_at(start),
                }
            })
            .collect()
    }
}

impl Chunker {
    /// Paged text (PDF): each page cut on its own, so that no chunk spans a page break and the
    /// page a citation names holds all of its text.
    fn page_pieces<'t>(&self, document: &'t ParsedDocument) -> Vec<(usize, &'t str)> {
        let text = document.text.as_str();
        let total = text.chars().count();
        let mut bounds: Vec<usize> = document.pages.iter().map(|p| (*p).min(total)).collect();
        bounds.push(total);
        bounds.dedup();
        if bounds.first() != Some(&0) {
            bounds.insert(0, 0);
        }
        // Byte offsets of the page bounds (character offsets), in one pass.
        let mut byte_bounds = Vec::with_capacity(bounds.len());
        let mut wanted = bounds.iter().peekable();
        for (chars, (bytes, _)) in text.char_indices().enumerate() {
            while wanted.next_if(|w| **w == chars).is_some() {
                byte_bounds.push(bytes);
            }
        }
        while wanted.next().is_some() {
            byte_bounds.push(text.len());
        }
        bounds
            .iter()
            .zip(byte_bounds.windows(2))
            .flat_map(|(char_start, bytes)| {
                self.text
                    .chunk_char_indices(&text[bytes[0]..bytes[1]])
                    .map(move |c| (char_start + c.char_offset, c.chunk))
            })
            .collect()
    }

    /// CSV text (rows as blocks separated by blank lines): whole rows, grouped until a chunk
    /// reaches the target size without passing the maximum. A single row larger than the
    /// maximum is cut by the text splitter.
    fn row_groups<'t>(&self, text: &'t str) -> Vec<(usize, &'t str)> {
        let mut rows: Vec<(usize, usize, &'t str)> = Vec::new(); // char offset, byte offset, row
        let (mut chars, mut bytes) = (0usize, 0usize);
        for row in text.split("\n\n") {
            rows.push((chars, bytes, row));
            chars += row.chars().count() + 2;
            bytes += row.len() + 2;
        }
        let max = self.config.max_tokens.max(1);
        let target = self.config.target_tokens.clamp(1, max);
        let mut pieces = Vec::new();
        // The group being built: first row's char and byte offsets, end byte, tokens.
        let mut group: Option<(usize, usize, usize, usize)> = None;
        for (char_start, byte_start, row) in rows {
            let tokens = self.count_tokens(row);
            let byte_end = byte_start + row.len();
            if let Some((g_char, g_byte, g_end, g_tokens)) = group {
                if g_tokens < target && g_tokens + tokens <= max {
                    group = Some((g_char, g_byte, byte_end, g_tokens + tokens));
                    continue;
                }
                pieces.push((g_char, &text[g_byte..g_end]));
                group = None;
            }
            if tokens > max {
                pieces.extend(
                    self.text
                        .chunk_char_indices(row)
                        .map(|c| (char_start + c.char_offset, c.chunk)),
                );
            } else {
                group = Some((char_start, byte_start, byte_end, tokens));
            }
        }
        if let Some((g_char, g_byte, g_end, _)) = group {
            pieces.push((g_char, &text[g_byte..g_end]));
        }
        pieces
    }
}

/// The headings in effect at a chunk: the nearest heading of each level at or before the
/// chunk's start, plus the headings the chunk itself opens with. A heading that appears later
/// inside the chunk is not part of its path.
fn heading_path(document: &ParsedDocument, chunk_start: usize, chunk_text: &str) -> Vec<String> {
    let opening_end = chunk_start + opening_headings_len(chunk_text);
    let mut stack: Vec<(u8, &str)> = Vec::new();
    for heading in document
        .headings
        .iter()
        .take_while(|h| h.start <= chunk_start || h.start < opening_end)
    {
        while stack
            .last()
            .is_some_and(|(level, _)| *level >= heading.level)
        {
            stack.pop();
        }
        stack.push((heading.level, &heading.title));
    }
    stack
        .into_iter()
        .map(|(_, title)| title.to_string())
        .collect()
}

/// Characters taken by the heading lines (and blank lines) a chunk starts with.
fn opening_headings_len(chunk_text: &str) -> usize {
    let mut len = 0;
    for line in chunk_text.split('\n') {
        if !(line.trim().is_empty() || line.starts_with('#')) {
            break;
        }
        len += line.chars().count() + 1;
    }
    len
}

/// The text that is embedded for a chunk: its document title and heading path give the
/// passage the context a reader would have ("Leave policy > Carry-over").
pub fn embedding_text(title: &str, chunk: &Chunk) -> String {
    let mut context = vec![title];
    context.extend(
        chunk
            .heading_path
            .iter()
            .map(String::as_str)
            .filter(|h| *h != title),
    );
    format!("{}\n{}", context.join(" > "), chunk.text)
}
