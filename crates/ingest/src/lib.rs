//! Ingestion: finding files, reading them into normalised text, and cutting that text into
//! chunks whose character spans point exactly back into it.
//!
//! Key decision: every format is first turned into one normalised text (HTML and DOCX into
//! Markdown-like text, PDFs page by page with the offset where each page starts, CSV rows into
//! `header: value` blocks), and chunks are spans of that text. A citation's span is then
//! checkable against the stored document, whatever the original format was.
//!
//! Files are untrusted: [`parse_document`] detects the format from the content and parses on
//! its own thread under [`ParseLimits`] (size, decompressed size, depth, pages, text, time), so
//! a hostile or broken file fails alone with a readable [`IngestError`].

mod chunk;
mod delimited;
mod docx;
mod encoding;
mod files;
pub mod fixtures;
mod hidden;
mod html;
mod limits;
mod markdown_hidden;
mod normalize;
mod pdf;
mod read;

pub use chunk::{
    Chunker, ChunkerConfig, DEFAULT_MAX_TOKENS, DEFAULT_TARGET_TOKENS, embedding_text,
};
pub use files::{SourceFile, collect_files, collect_files_under, read_file_under};
pub use limits::ParseLimits;
pub use normalize::normalize_text;
pub use read::{
    IngestError, SUPPORTED_EXTENSIONS, content_hash, detect_format, fallback_title, parse_bytes,
    parse_bytes_with_limits, parse_document, parse_file, parse_guarded, read_file,
};
