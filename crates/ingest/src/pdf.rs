//! PDF: the text layer, page by page, with lopdf. Each page's text is normalised on its own and
//! the pages are joined with a blank line, so the offset where each page starts is known and
//! every chunk can name the page it starts on. Scanned pages without a text layer yield no
//! text (there is no OCR); a PDF with no text at all fails as empty. Text a reader cannot see
//! is left out ([`Ink`]): the invisible and clip-only rendering modes (unless an image was
//! painted first: OCR's text layer over a scanned page is invisible text), white text unless
//! something coloured was painted first (it may stand on it), text under a point once every
//! scaling is applied, and zero horizontal scaling.

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
    let mut ink = Ink::default();
    let mut saved: Vec<Ink> = Vec::new();
    // What was painted on the page before the text: something coloured (a filled shape or an
    // image), on which white text may stand; an image, which invisible text may transcribe
    // (the text layer OCR puts over a scanned page).
    let mut backdrop = Backdrop::default();
    for operation in &content.operations {
        let operands = &operation.operands;
        let numbers =
            || -> Vec<f32> { operands.iter().filter_map(|o| o.as_float().ok()).collect() };
        match operation.operator.as_str() {
            "q" => saved.push(ink),
            "Q" => ink = saved.pop().unwrap_or_default(),
            "cm" => {
                if let [a, b, c, d, ..] = numbers()[..] {
                    ink.ctm_scale *= (a * d - b * c).abs().sqrt();
                }
            }
            "BT" => ink.text_scale = 1.0,
            "Tr" => ink.render_mode = numbers().first().map_or(0, |m| *m as i64),
            "Tz" => ink.horizontal_scale = numbers().first().copied().unwrap_or(100.0),
            // Colours: white only in a device colour space (in a Separation space, tint 1 is
            // full ink); a named space set by `cs` is not followed, so its colours count as ink.
            "cs" => ink.fill_device = device_space(operands.first()),
            "CS" => ink.stroke_device = device_space(operands.first()),
            "g" | "rg" | "k" => {
                ink.fill_device = true;
                ink.fill_white = is_white(&numbers());
            }
            "G" | "RG" | "K" => {
                ink.stroke_device = true;
                ink.stroke_white = is_white(&numbers());
            }
            "sc" | "scn" => ink.fill_white = ink.fill_device && is_white(&numbers()),
            "SC" | "SCN" => ink.stroke_white = ink.stroke_device && is_white(&numbers()),
            "f" | "F" | "f*" | "B" | "B*" | "b" | "b*" | "sh" if !ink.fill_white => {
                backdrop.coloured = true;
            }
            "Do" | "BI" => {
                backdrop.coloured = true;
                backdrop.image = true;
            }
            "Tf" => {
                encoding = operands
                    .first()
                    .and_then(|o| o.as_name().ok())
                    .and_then(|name| encodings.get(name));
                ink.font_size = operands
                    .get(1)
                    .and_then(|o| o.as_float().ok())
                    .unwrap_or(ink.font_size);
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
                if let [a, b, c, d, ..] = numbers()[..] {
                    ink.text_scale = (a * d - b * c).abs().sqrt();
                }
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
            // Text a reader cannot see is left out: invisible, white on the page's white,
            // smaller than a point, or squeezed to nothing.
            "'" | "\"" if ink.hides_text(backdrop) => new_line(&mut out),
            "Tj" | "TJ" if ink.hides_text(backdrop) => {}
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

/// What the page painted before the text being shown.
#[derive(Debug, Clone, Copy, Default)]
struct Backdrop {
    coloured: bool,
    image: bool,
}

/// The part of the graphics state that decides whether shown text can be seen.
#[derive(Debug, Clone, Copy)]
struct Ink {
    /// `Tr`: 3 paints nothing, 7 only clips.
    render_mode: i64,
    fill_white: bool,
    stroke_white: bool,
    /// Whether the fill (stroke) colour space is a device one (gray, RGB, CMYK).
    fill_device: bool,
    stroke_device: bool,
    /// `Tf`'s size, scaled by the text matrix (`Tm`) and the transformation (`cm`).
    font_size: f32,
    text_scale: f32,
    ctm_scale: f32,
    /// `Tz`, in percent.
    horizontal_scale: f32,
}

impl Default for Ink {
    fn default() -> Self {
        Self {
            render_mode: 0,
            fill_white: false,
            stroke_white: false,
            fill_device: true,
            stroke_device: true,
            font_size: 12.0,
            text_scale: 1.0,
            ctm_scale: 1.0,
            horizontal_scale: 100.0,
        }
    }
}

/// Text drawn smaller than this (in points, after every scaling) cannot be read.
const SMALLEST_READABLE_POINTS: f32 = 1.0;

impl Ink {
    fn hides_text(&self, backdrop: Backdrop) -> bool {
        let size = (self.font_size * self.text_scale * self.ctm_scale).abs();
        let white = match self.render_mode {
            0 | 4 => self.fill_white,
            1 | 5 => self.stroke_white,
            // Fill and stroke: seen if either is.
            2 | 6 => self.fill_white && self.stroke_white,
            // Invisible (3) or clip only (7): hidden, unless it lies over an image, as the text
            // OCR writes over a scanned page does (the reader sees it in the image).
            _ => return !backdrop.image,
        };
        (white && !backdrop.coloured)
            || size < SMALLEST_READABLE_POINTS
            || self.horizontal_scale.abs() < 1.0
    }
}

/// Whether `cs`/`CS` names a device colour space.
fn device_space(operand: Option<&Object>) -> bool {
    operand
        .and_then(|o| o.as_name().ok())
        .is_some_and(|name| matches!(name, b"DeviceGray" | b"DeviceRGB" | b"DeviceCMYK"))
}

/// Whether colour operands are white: gray 1, RGB 1 1 1, or CMYK 0 0 0 0 (by their count, as
/// the colour space set by `cs` is not followed).
fn is_white(components: &[f32]) -> bool {
    match components {
        [gray] => *gray >= 0.99,
        [r, g, b] => [r, g, b].iter().all(|c| **c >= 0.99),
        [c, m, y, k] => [c, m, y, k].iter().all(|v| **v <= 0.01),
        _ => false,
    }
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
