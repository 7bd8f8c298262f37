use serde::{Deserialize, Serialize};

/// The formats Verity can read. Anything else is reported and skipped at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentFormat {
    Markdown,
    Text,
    Html,
}

impl DocumentFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentFormat::Markdown => "markdown",
            DocumentFormat::Text => "text",
            DocumentFormat::Html => "html",
        }
    }
}

/// A heading of a document, located in its normalised text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heading {
    /// 1 for a top-level heading (`#`, `<h1>`), up to 6.
    pub level: u8,
    pub title: String,
    /// Character offset of the heading line in the normalised text.
    pub start: usize,
}

/// A document after parsing: its title and its normalised text, which every chunk span and
/// every citation span refers into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDocument {
    pub title: String,
    pub format: DocumentFormat,
    /// Normalised text: NFC, `\n` line ends, no control characters, for HTML only the main
    /// content rendered as Markdown-like text.
    pub text: String,
    pub headings: Vec<Heading>,
}

/// A passage of a document, the unit that is embedded, indexed and cited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub id: String,
    pub document_id: String,
    /// Position of the chunk in its document, from 0.
    pub ordinal: u32,
    /// Character span (Unicode scalar values, end exclusive) in the document's normalised text:
    /// `text.chars().skip(start).take(end - start)` is exactly [`Chunk::text`].
    pub start: usize,
    pub end: usize,
    pub text: String,
    /// Titles of the headings the chunk sits under, outermost first.
    pub heading_path: Vec<String>,
    pub token_count: u32,
}
