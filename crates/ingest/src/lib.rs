//! Ingestion: finding files, reading them into normalised text, and cutting that text into
//! chunks whose character spans point exactly back into it.
//!
//! Key decision: every format is first turned into one normalised text (HTML into Markdown-like
//! text of its main content), and chunks are spans of that text. A citation's span is then
//! checkable against the stored document, whatever the original format was.

mod chunk;
mod files;
mod html;
mod normalize;
mod read;

pub use chunk::{
    Chunker, ChunkerConfig, DEFAULT_MAX_TOKENS, DEFAULT_TARGET_TOKENS, embedding_text,
};
pub use files::{SourceFile, collect_files};
pub use normalize::normalize_text;
pub use read::{IngestError, content_hash, detect_format, parse_bytes, parse_file};
