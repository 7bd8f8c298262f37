use std::path::Path;

use sha2::{Digest, Sha256};
use thiserror::Error;
use verity_core::{DocumentFormat, Heading, ParsedDocument};

use crate::html::html_to_text;
use crate::normalize::normalize_text;

/// Why a file could not be read. The message names the problem in words a user can act on.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("unsupported file type {0:?} (supported: .md, .markdown, .txt, .text, .html, .htm)")]
    Unsupported(String),
    #[error("not valid UTF-8 (first invalid byte at offset {0})")]
    InvalidUtf8(usize),
    #[error("cannot read file: {0}")]
    Io(String),
    #[error("no text content")]
    Empty,
}

/// The format of a file, from its extension.
pub fn detect_format(path: &Path) -> Result<DocumentFormat, IngestError> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "md" | "markdown" => Ok(DocumentFormat::Markdown),
        "txt" | "text" => Ok(DocumentFormat::Text),
        "html" | "htm" => Ok(DocumentFormat::Html),
        "" => Err(IngestError::Unsupported("(no extension)".into())),
        other => Err(IngestError::Unsupported(format!(".{other}"))),
    }
}

/// SHA-256 of a file's bytes, hex-encoded: equal bytes mean nothing to re-embed.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads and parses one file.
pub fn parse_file(path: &Path) -> Result<(ParsedDocument, String), IngestError> {
    let format = detect_format(path)?;
    let bytes = std::fs::read(path).map_err(|e| IngestError::Io(e.to_string()))?;
    let fallback_title = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let document = parse_bytes(&bytes, format, &fallback_title)?;
    Ok((document, content_hash(&bytes)))
}

/// Parses a document's bytes. `fallback_title` is used when the content names no title.
pub fn parse_bytes(
    bytes: &[u8],
    format: DocumentFormat,
    fallback_title: &str,
) -> Result<ParsedDocument, IngestError> {
    let raw = std::str::from_utf8(bytes).map_err(|e| IngestError::InvalidUtf8(e.valid_up_to()))?;
    let (text, html_title) = match format {
        DocumentFormat::Html => {
            let extracted = html_to_text(raw);
            (normalize_text(&extracted.text), extracted.title)
        }
        DocumentFormat::Markdown | DocumentFormat::Text => (normalize_text(raw), None),
    };
    if text.trim().is_empty() {
        return Err(IngestError::Empty);
    }
    let headings = match format {
        DocumentFormat::Markdown | DocumentFormat::Html => markdown_headings(&text),
        DocumentFormat::Text => Vec::new(),
    };
    let title = headings
        .iter()
        .find(|h| h.level == 1)
        .map(|h| h.title.clone())
        .or(html_title)
        .or_else(|| first_line_title(&text, format))
        .unwrap_or_else(|| fallback_title.to_string());
    Ok(ParsedDocument {
        title,
        format,
        text,
        headings,
    })
}

/// For plain text: a short first line followed by more text reads as a title.
fn first_line_title(text: &str, format: DocumentFormat) -> Option<String> {
    if format != DocumentFormat::Text {
        return None;
    }
    let (first, rest) = text.split_once('\n')?;
    let first = first.trim();
    (!first.is_empty() && first.chars().count() <= 100 && !rest.trim().is_empty())
        .then(|| first.to_string())
}

/// ATX headings (`# Title` … `###### Title`) outside fenced code blocks, with their character
/// offsets.
fn markdown_headings(text: &str) -> Vec<Heading> {
    let mut headings = Vec::new();
    let mut offset = 0;
    let mut in_fence = false;
    for line in text.split('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        } else if !in_fence && line.starts_with('#') {
            let level = line.chars().take_while(|c| *c == '#').count();
            let rest = &line[level..];
            if level <= 6 && (rest.is_empty() || rest.starts_with(' ')) {
                let title = rest.trim().trim_end_matches('#').trim().to_string();
                if !title.is_empty() {
                    headings.push(Heading {
                        level: level as u8,
                        title,
                        start: offset,
                    });
                }
            }
        }
        offset += line.chars().count() + 1;
    }
    headings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_title_and_headings_are_found_outside_code_fences() {
        let doc = parse_bytes(
            "# Leave policy\n\nIntro.\n\n```\n# not a heading\n```\n\n## Annual leave\n\nText."
                .as_bytes(),
            DocumentFormat::Markdown,
            "fallback",
        )
        .unwrap();
        assert_eq!(doc.title, "Leave policy");
        let titles: Vec<_> = doc.headings.iter().map(|h| h.title.as_str()).collect();
        assert_eq!(titles, ["Leave policy", "Annual leave"]);
        let annual = &doc.headings[1];
        let at: String = doc.text.chars().skip(annual.start).take(16).collect();
        assert_eq!(at, "## Annual leave\n");
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_the_offset() {
        let err = parse_bytes(b"ok \xff\xfe", DocumentFormat::Text, "x").unwrap_err();
        assert_eq!(err, IngestError::InvalidUtf8(3));
    }

    #[test]
    fn blank_files_are_rejected() {
        let err = parse_bytes(b" \n\n\t\n", DocumentFormat::Markdown, "x").unwrap_err();
        assert_eq!(err, IngestError::Empty);
    }

    #[test]
    fn unknown_extensions_are_unsupported() {
        assert!(matches!(
            detect_format(Path::new("a.pdf")),
            Err(IngestError::Unsupported(e)) if e == ".pdf"
        ));
        assert_eq!(
            detect_format(Path::new("A.MD")),
            Ok(DocumentFormat::Markdown)
        );
    }

    #[test]
    fn plain_text_title_is_its_short_first_line() {
        let doc = parse_bytes(b"Emergency contacts\nCall 133.", DocumentFormat::Text, "f").unwrap();
        assert_eq!(doc.title, "Emergency contacts");
    }
}
