//! PDF: the text layer, page by page, with lopdf. Each page's text is normalised on its own and
//! the pages are joined with a blank line, so the offset where each page starts is known and
//! every chunk can name the page it starts on. Scanned pages without a text layer yield no
//! text (there is no OCR); a PDF with no text at all fails as empty.

use std::collections::BTreeMap;

use lopdf::content::Content;
use lopdf::{Document, Encoding, LoadOptions, Object};

use crate::limits::Budget;
use crate::normalize::normalize_text;
use crate::read::IngestError;

pub(crate) struct ExtractedPdf {
    /// Normalised text of every page, joined by blank lines.
    pub text: String,
    /// Character offset where each page starts.
    pub pages: Vec<usize>,
    /// The document information dictionary's title, if any.
    pub title: Option<String>,
}

pub(crate) fn pdf_to_text(bytes: &[u8], budget: &Budget) -> Result<ExtractedPdf, IngestError> {
    let limit = usize::try_from(budget.limits.max_decompressed_bytes).unwrap_or(usize::MAX);
    let options = LoadOptions {
        max_decompressed_size: Some(limit),
        ..LoadOptions::default()
    };
    let document = Document::load_mem_with_options(bytes, options).map_err(pdf_error)?;
    if document.is_encrypted() {
        return Err(IngestError::Pdf(
            "the PDF is encrypted with a password".into(),
        ));
    }
    let pages = document.get_pages();
    if pages.is_empty() {
        return Err(IngestError::Pdf("the PDF has no pages".into()));
    }
    if pages.len() > budget.limits.max_pages {
        return Err(IngestError::Limit(format!(
            "{} pages (at most {} are read)",
            pages.len(),
            budget.limits.max_pages
        )));
    }
    let mut text = String::new();
    let mut chars = 0usize;
    let mut starts = Vec::with_capacity(pages.len());
    let mut failed_pages = Vec::new();
    for (&number, &page_id) in &pages {
        budget.check_time()?;
        let page_text = match page_text(&document, page_id, limit) {
            Ok(t) => normalize_text(&t),
            Err(PageError::Limit(e)) => return Err(e),
            Err(PageError::Pdf(e)) => {
                failed_pages.push((number, e));
                String::new()
            }
        };
        if !page_text.is_empty() {
            if !text.is_empty() {
                text.push_str("\n\n");
                chars += 2;
            }
            starts.push(chars);
            chars += page_text.chars().count();
            budget.check_text(chars)?;
            text.push_str(&page_text);
        } else {
            // An empty page starts where the next page's text will: a chunk never lands on it.
            starts.push(if text.is_empty() { 0 } else { chars + 2 });
        }
    }
    if text.is_empty()
        && let Some((first, error)) = failed_pages.first()
    {
        return Err(IngestError::Pdf(format!(
            "no page's content could be read ({} of {} failed; page {first}: {error})",
            failed_pages.len(),
            pages.len()
        )));
    }
    // A file cut short (no `%%EOF` near its end) whose cross-reference table had to be rebuilt
    // has lost what came after the cut: refuse it rather than index part of it as the whole.
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    let truncated = !tail.windows(5).any(|w| w == b"%%EOF");
    if truncated && document.xref_recovery.is_some() {
        let readable = pages.len() - failed_pages.len();
        return Err(IngestError::Pdf(format!(
            "the file is truncated (it ends before its %%EOF marker); {readable} of {} pages had readable content",
            pages.len()
        )));
    }
    Ok(ExtractedPdf {
        text,
        pages: starts,
        title: info_title(&document),
    })
}

enum PageError {
    Limit(IngestError),
    Pdf(lopdf::Error),
}

impl From<lopdf::Error> for PageError {
    fn from(e: lopdf::Error) -> Self {
        match e {
            lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }) => {
                PageError::Limit(IngestError::Limit(format!("a PDF stream: {e}")))
            }
            other => PageError::Pdf(other),
        }
    }
}

/// The text a page shows, in content-stream order. Like lopdf's own `extract_text`, with line
/// breaks where the text moves to a new line (`Td`, `TD`, `Tm`, `T*`) and spaces for wide gaps
/// inside `TJ` arrays, so words on consecutive lines are not glued together.
fn page_text(
    document: &Document,
    page_id: lopdf::ObjectId,
    limit: usize,
) -> Result<String, PageError> {
    let fonts = document.get_page_fonts(page_id)?;
    let mut encodings: BTreeMap<Vec<u8>, Encoding<'_>> = BTreeMap::new();
    for (name, font) in fonts {
        match font.get_font_encoding_with_limit(document, limit) {
            Ok(encoding) => {
                encodings.insert(name, encoding);
            }
            Err(e @ lopdf::Error::Decompress(_)) => return Err(e.into()),
            Err(_) => {}
        }
    }
    let content = Content::decode(&document.get_page_content_with_limit(page_id, limit)?)?;
    let mut out = String::new();
    let mut encoding: Option<&Encoding<'_>> = None;
    let mut line_y: Option<f32> = None;
    for operation in &content.operations {
        let operands = &operation.operands;
        match operation.operator.as_str() {
            "Tf" => {
                encoding = operands
                    .first()
                    .and_then(|o| o.as_name().ok())
                    .and_then(|name| encodings.get(name));
            }
            "Td" | "TD" => {
                let dy = operands
                    .get(1)
                    .and_then(|o| o.as_float().ok())
                    .unwrap_or(0.0);
                if dy.abs() > 0.01 {
                    new_line(&mut out);
                } else {
                    space(&mut out);
                }
            }
            "Tm" => {
                let y = operands.get(5).and_then(|o| o.as_float().ok());
                if y.is_some() && line_y.is_some() && y != line_y {
                    new_line(&mut out);
                } else {
                    space(&mut out);
                }
                line_y = y;
            }
            "T*" => new_line(&mut out),
            "ET" => new_line(&mut out),
            "Tj" => show(&mut out, encoding, operands.first()),
            "'" => {
                new_line(&mut out);
                show(&mut out, encoding, operands.first());
            }
            "\"" => {
                new_line(&mut out);
                show(&mut out, encoding, operands.get(2));
            }
            "TJ" => {
                if let Some(Object::Array(items)) = operands.first() {
                    for item in items {
                        match item {
                            Object::String(..) => show(&mut out, encoding, Some(item)),
                            // Thousandths of an em: a gap wider than about a space.
                            other => {
                                if other.as_float().is_ok_and(|gap| gap < -200.0) {
                                    space(&mut out);
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn show(out: &mut String, encoding: Option<&Encoding<'_>>, operand: Option<&Object>) {
    let (Some(encoding), Some(Object::String(bytes, _))) = (encoding, operand) else {
        return;
    };
    if let Ok(text) = Document::decode_text(encoding, bytes) {
        out.push_str(&text);
    }
}

fn new_line(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    }
}

fn space(out: &mut String) {
    if !out.is_empty() && !out.ends_with([' ', '\n']) {
        out.push(' ');
    }
}

fn info_title(document: &Document) -> Option<String> {
    let info = document
        .trailer
        .get_deref(b"Info", document)
        .ok()?
        .as_dict()
        .ok()?;
    let title = info.get_deref(b"Title", document).ok()?;
    let title = lopdf::decode_text_string(title).ok()?;
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty() && title.chars().count() <= 200).then_some(title)
}

fn pdf_error(e: lopdf::Error) -> IngestError {
    match e {
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }) => {
            IngestError::Limit(format!("a PDF stream: {e}"))
        }
        other => IngestError::Pdf(other.to_string()),
    }
}
