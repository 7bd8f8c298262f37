use std::io::Read;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};
use thiserror::Error;
use verity_core::{DocumentFormat, Heading, ParsedDocument};

use crate::delimited::csv_to_text;
use crate::docx::docx_to_text;
use crate::encoding::{binary_kind, decode_text};
use crate::html::html_to_text;
use crate::limits::{Budget, ParseLimits, run_guarded};
use crate::normalize::normalize_text;
use crate::pdf::pdf_to_text;

/// Extensions read, by format (the content decides first: see [`detect_format`]).
pub const SUPPORTED_EXTENSIONS: &str =
    ".md, .markdown, .txt, .text, .html, .htm, .xhtml, .pdf, .docx, .csv, .tsv";

/// Why a file could not be read. The message names the problem in words a user can act on.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("unsupported file type {0} (supported: {SUPPORTED_EXTENSIONS})")]
    Unsupported(String),
    #[error("binary content: {0}")]
    Binary(String),
    #[error("not readable as text: {0}")]
    InvalidText(String),
    #[error("cannot read file: {0}")]
    Io(String),
    #[error("no text content")]
    Empty,
    #[error("no text content: the file is empty (0 bytes)")]
    EmptyFile,
    #[error("cannot read PDF: {0}")]
    Pdf(String),
    #[error("cannot read DOCX: {0}")]
    Docx(String),
    #[error("cannot read CSV: {0}")]
    Csv(String),
    #[error("refused, over a parsing limit: {0}")]
    Limit(String),
    #[error("parsing took longer than {0:?}; gave up on this file")]
    Timeout(Duration),
    #[error("the parser crashed on this file: {0}")]
    Panic(String),
}

/// The format of a file, from its content first and its extension second: a PDF header
/// (`%PDF-`), a zip holding `word/document.xml`, or an HTML start (`<!doctype html`, `<html`)
/// decide whatever the name says; otherwise the extension does (`.md`, `.txt`, `.csv`, …), and
/// a file without one is plain text. Known binary formats (images, archives, legacy Office
/// files) are unsupported by name.
pub fn detect_format(path: &Path, bytes: &[u8]) -> Result<DocumentFormat, IngestError> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let head = &bytes[..bytes.len().min(1024)];
    // Readers accept junk before the header; a text that merely mentions `%PDF-` is not a PDF,
    // so a header further in counts only with a PDF's end marker or name.
    if let Some(at) = memmem(head, b"%PDF-") {
        let tail = &bytes[bytes.len().saturating_sub(2048)..];
        if at == 0 || extension == "pdf" || memmem(tail, b"%%EOF").is_some() {
            return Ok(DocumentFormat::Pdf);
        }
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        if memmem(bytes, b"word/document").is_some() || extension == "docx" {
            return Ok(DocumentFormat::Docx);
        }
        let kind = if memmem(bytes, b"xl/workbook").is_some() {
            "an Excel workbook (.xlsx)"
        } else if memmem(bytes, b"ppt/presentation").is_some() {
            "a PowerPoint presentation (.pptx)"
        } else {
            "a zip archive"
        };
        return Err(IngestError::Unsupported(kind.into()));
    }
    if bytes.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        return Err(IngestError::Unsupported(
            "a legacy Office file (.doc/.xls/.ppt); save it as .docx or PDF".into(),
        ));
    }
    if looks_like_html(head) {
        return Ok(DocumentFormat::Html);
    }
    match extension.as_str() {
        "md" | "markdown" | "mdown" | "mkd" => Ok(DocumentFormat::Markdown),
        "txt" | "text" | "" => Ok(DocumentFormat::Text),
        "html" | "htm" | "xhtml" => Ok(DocumentFormat::Html),
        "csv" | "tsv" => Ok(DocumentFormat::Csv),
        "pdf" => Ok(DocumentFormat::Pdf),
        "docx" => Ok(DocumentFormat::Docx),
        other => match binary_kind(bytes) {
            Some(kind) => Err(IngestError::Unsupported(format!(".{other}: {kind}"))),
            None => Err(IngestError::Unsupported(format!(".{other}"))),
        },
    }
}

/// HTML announces itself in its first bytes (after a BOM, whitespace and comments), in UTF-8
/// or in UTF-16.
fn looks_like_html(head: &[u8]) -> bool {
    let ascii: Vec<u8> = head
        .iter()
        .filter(|b| **b != 0)
        .map(u8::to_ascii_lowercase)
        .collect();
    let mut rest: &[u8] = &ascii;
    for bom in [&b"\xef\xbb\xbf"[..], b"\xff\xfe", b"\xfe\xff"] {
        rest = rest.strip_prefix(bom).unwrap_or(rest);
    }
    loop {
        rest = rest.trim_ascii_start();
        if let Some(after) = rest.strip_prefix(b"<!--") {
            match memmem(after, b"-->") {
                Some(end) => rest = &after[end + 3..],
                None => return false,
            }
        } else {
            break;
        }
    }
    rest.starts_with(b"<!doctype html")
        || rest.starts_with(b"<html")
        || (rest.starts_with(b"<?xml") && memmem(rest, b"<html").is_some())
}

fn memmem(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// SHA-256 of a file's bytes, hex-encoded: equal bytes mean nothing to re-embed.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads a file's bytes, refusing one larger than `limits.max_file_bytes` before reading it.
pub fn read_file(path: &Path, limits: &ParseLimits) -> Result<Vec<u8>, IngestError> {
    let file = std::fs::File::open(path).map_err(|e| IngestError::Io(e.to_string()))?;
    read_opened(file, limits)
}

/// Reads an opened file, within `limits.max_file_bytes`.
pub(crate) fn read_opened(
    file: std::fs::File,
    limits: &ParseLimits,
) -> Result<Vec<u8>, IngestError> {
    let too_large = || {
        IngestError::Limit(format!(
            "the file is larger than {} bytes",
            limits.max_file_bytes
        ))
    };
    if let Ok(metadata) = file.metadata()
        && metadata.len() > limits.max_file_bytes
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(limits.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| IngestError::Io(e.to_string()))?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The title a file's name gives when its content names none.
pub fn fallback_title(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The parsing entry point: detects the format of `bytes` (read from `path`, which only
/// supplies the extension) and parses them on a separate thread under `limits`. A parser
/// that panics or runs past `limits.timeout` fails this document only.
pub fn parse_document(
    bytes: Vec<u8>,
    path: &Path,
    fallback_title: &str,
    limits: &ParseLimits,
) -> Result<ParsedDocument, IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::EmptyFile);
    }
    let format = detect_format(path, &bytes)?;
    parse_guarded(bytes, format, fallback_title, limits)
}

/// Parses bytes of a known format on a separate thread under `limits` (see
/// [`parse_document`]).
pub fn parse_guarded(
    bytes: Vec<u8>,
    format: DocumentFormat,
    fallback_title: &str,
    limits: &ParseLimits,
) -> Result<ParsedDocument, IngestError> {
    let title = fallback_title.to_string();
    let limits = limits.clone();
    run_guarded(limits.timeout, move || {
        parse_bytes_with_limits(&bytes, format, &title, &limits)
    })
}

/// Reads and parses one file with the default limits, on a separate thread; returns the
/// document and the hash of the file's bytes.
pub fn parse_file(path: &Path) -> Result<(ParsedDocument, String), IngestError> {
    let limits = ParseLimits::default();
    let bytes = read_file(path, &limits)?;
    let hash = content_hash(&bytes);
    let document = parse_document(bytes, path, &fallback_title(path), &limits)?;
    Ok((document, hash))
}

/// Parses a document's bytes in the calling thread, with the default limits. `fallback_title`
/// is used when the content names no title.
pub fn parse_bytes(
    bytes: &[u8],
    format: DocumentFormat,
    fallback_title: &str,
) -> Result<ParsedDocument, IngestError> {
    parse_bytes_with_limits(bytes, format, fallback_title, &ParseLimits::default())
}

/// Parses a document's bytes in the calling thread. The limits on sizes, depth and pages
/// apply, and parsers stop at the deadline between steps, but a panic is not caught: use
/// [`parse_document`] or [`parse_guarded`] for untrusted files.
pub fn parse_bytes_with_limits(
    bytes: &[u8],
    format: DocumentFormat,
    fallback_title: &str,
    limits: &ParseLimits,
) -> Result<ParsedDocument, IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::EmptyFile);
    }
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(IngestError::Limit(format!(
            "the file is larger than {} bytes",
            limits.max_file_bytes
        )));
    }
    let budget = Budget::new(limits);
    let mut pages = Vec::new();
    let (text, content_title) = match format {
        DocumentFormat::Pdf => {
            let pdf = pdf_to_text(bytes, &budget)?;
            pages = pdf.pages;
            (pdf.text, pdf.title)
        }
        DocumentFormat::Docx => (normalize_text(&docx_to_text(bytes, &budget)?), None),
        DocumentFormat::Html => {
            let raw = decode_text(bytes)?;
            budget.check_text(raw.len() / 4)?;
            let extracted = html_to_text(&raw, &budget)?;
            (normalize_text(&extracted.text), extracted.title)
        }
        DocumentFormat::Csv => {
            let raw = decode_text(bytes)?;
            (normalize_text(&csv_to_text(&raw, &budget)?), None)
        }
        DocumentFormat::Markdown => {
            let raw = decode_text(bytes)?;
            budget.check_text(raw.chars().count())?;
            (
                normalize_text(&crate::markdown_hidden::visible_markdown(&raw)),
                None,
            )
        }
        DocumentFormat::Text => {
            let raw = decode_text(bytes)?;
            budget.check_text(raw.chars().count())?;
            (normalize_text(&raw), None)
        }
    };
    budget.check_time()?;
    if text.trim().is_empty() {
        return Err(IngestError::Empty);
    }
    let headings = match format {
        DocumentFormat::Markdown | DocumentFormat::Html | DocumentFormat::Docx => {
            markdown_headings(&text)
        }
        DocumentFormat::Text | DocumentFormat::Pdf | DocumentFormat::Csv => Vec::new(),
    };
    let title = headings
        .iter()
        .find(|h| h.level == 1)
        .map(|h| h.title.clone())
        .or(content_title)
        .or_else(|| first_line_title(&text, format))
        .unwrap_or_else(|| fallback_title.to_string());
    Ok(ParsedDocument {
        title,
        format,
        text,
        headings,
        pages,
    })
}

/// For plain text and PDFs: a short first line followed by more text reads as a title.
fn first_line_title(text: &str, format: DocumentFormat) -> Option<String> {
    if !matches!(format, DocumentFormat::Text | DocumentFormat::Pdf) {
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
        assert!(doc.pages.is_empty());
    }

    #[test]
    fn latin1_text_is_decoded_not_refused() {
        let doc = parse_bytes(b"Vacaci\xf3n de verano", DocumentFormat::Text, "x").unwrap();
        assert_eq!(doc.text, "Vacación de verano");
    }

    #[test]
    fn blank_and_empty_files_are_rejected() {
        let err = parse_bytes(b" \n\n\t\n", DocumentFormat::Markdown, "x").unwrap_err();
        assert_eq!(err, IngestError::Empty);
        let err = parse_bytes(b"", DocumentFormat::Pdf, "x").unwrap_err();
        assert_eq!(err, IngestError::EmptyFile);
        assert!(err.to_string().contains("no text content"));
    }

    #[test]
    fn format_comes_from_content_then_extension() {
        let detect = |name: &str, bytes: &[u8]| detect_format(Path::new(name), bytes);
        assert_eq!(detect("a.txt", b"%PDF-1.7\n"), Ok(DocumentFormat::Pdf));
        assert_eq!(
            detect("a", b"junk\n%PDF-1.7\n...%%EOF\n"),
            Ok(DocumentFormat::Pdf)
        );
        assert_eq!(
            detect("note.txt", b"Files start with %PDF-1.7, see above."),
            Ok(DocumentFormat::Text)
        );
        assert_eq!(
            detect("export", b"<!DOCTYPE html><p>x"),
            Ok(DocumentFormat::Html)
        );
        assert_eq!(
            detect("page.md", b"  <!-- saved -->\n<html><body>x"),
            Ok(DocumentFormat::Html)
        );
        assert_eq!(detect("A.MD", b"# x"), Ok(DocumentFormat::Markdown));
        assert_eq!(detect("rows.csv", b"a,b\n1,2"), Ok(DocumentFormat::Csv));
        assert_eq!(detect("README", b"plain"), Ok(DocumentFormat::Text));
        assert_eq!(
            detect("w.bin", b"PK\x03\x04....word/document.xml"),
            Ok(DocumentFormat::Docx)
        );
        assert!(matches!(
            detect("book.xlsx", b"PK\x03\x04....xl/workbook.xml"),
            Err(IngestError::Unsupported(k)) if k.contains("Excel")
        ));
        assert!(matches!(
            detect("a.png", b"\x89PNG\r\n"),
            Err(IngestError::Unsupported(e)) if e.contains(".png") && e.contains("PNG")
        ));
        assert!(matches!(
            detect("notes.rtf", b"{\\rtf1"),
            Err(IngestError::Unsupported(e)) if e == ".rtf"
        ));
    }

    #[test]
    fn plain_text_title_is_its_short_first_line() {
        let doc = parse_bytes(b"Emergency contacts\nCall 133.", DocumentFormat::Text, "f").unwrap();
        assert_eq!(doc.title, "Emergency contacts");
    }
}
