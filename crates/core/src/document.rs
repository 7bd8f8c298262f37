use serde::{Deserialize, Serialize};

/// The formats Verity can read. Anything else is reported and skipped at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DocumentFormat {
    Markdown,
    Text,
    Html,
    /// A PDF's text layer, page by page.
    Pdf,
    /// A Word document (Office Open XML): paragraphs, headings from paragraph styles, tables.
    Docx,
    /// Comma- (or tab-) separated rows, each rendered as `header: value` lines.
    Csv,
}

impl DocumentFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentFormat::Markdown => "markdown",
            DocumentFormat::Text => "text",
            DocumentFormat::Html => "html",
            DocumentFormat::Pdf => "pdf",
            DocumentFormat::Docx => "docx",
            DocumentFormat::Csv => "csv",
        }
    }

    pub const ALL: [DocumentFormat; 6] = [
        DocumentFormat::Markdown,
        DocumentFormat::Text,
        DocumentFormat::Html,
        DocumentFormat::Pdf,
        DocumentFormat::Docx,
        DocumentFormat::Csv,
    ];

    /// The format [`DocumentFormat::as_str`] names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// Where a stored document stands: written and searchable, or being (re)written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    /// Its chunks are being written; the previous version (if any) still answers.
    Indexing,
    Active,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Indexing => "indexing",
            DocumentStatus::Active => "active",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [DocumentStatus::Indexing, DocumentStatus::Active]
            .into_iter()
            .find(|s| s.as_str() == name)
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
    /// For paged formats, the character offset in `text` where each page starts (page `n` at
    /// index `n - 1`; an empty page starts where the next one does). Empty for unpaged formats.
    pub pages: Vec<usize>,
}

impl ParsedDocument {
    /// The page (from 1) that the character offset `offset` of the text lies on; `None` for
    /// unpaged formats.
    pub fn page_at(&self, offset: usize) -> Option<u32> {
        if self.pages.is_empty() {
            return None;
        }
        let after = self.pages.partition_point(|start| *start <= offset);
        Some(after.max(1) as u32)
    }
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
    /// For paged formats (PDF), the page the chunk starts on, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
}
