//! DOCX (Office Open XML): paragraphs, headings from paragraph styles (`Heading1`…`Heading6`,
//! `Title`, or an outline level) rendered as `#` lines so the Markdown heading and section
//! logic applies, lists as `- ` lines, and tables as rows of cells joined by ` | `. Hidden runs
//! (`w:vanish`), white or 1-point text outside tables (set on the run, through its paragraph or
//! character style, or as the theme's background colour), deleted revisions and field codes are
//! left out. The zip is read with limits on the decompressed size and the compression ratio of every
//! part, so a zip bomb fails instead of filling memory.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use crate::limits::Budget;
use crate::read::IngestError;

/// A part may decompress to this much whatever its ratio; beyond it the ratio limit applies.
const RATIO_FREE_BYTES: u64 = 1024 * 1024;
/// Zips with more entries than this are not Word documents one should read.
const MAX_ENTRIES: usize = 10_000;

pub(crate) fn docx_to_text(bytes: &[u8], budget: &Budget) -> Result<String, IngestError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| IngestError::Docx(format!("not a readable zip archive: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(IngestError::Limit(format!(
            "a zip archive of {} entries (at most {MAX_ENTRIES})",
            archive.len()
        )));
    }
    let mut reader = PartReader { budget, used: 0 };
    let main = main_part_name(&mut archive, &mut reader)?;
    let styles = match reader.read(&mut archive, "word/styles.xml")? {
        Some(xml) => read_styles(&xml, budget)?,
        None => Styles::default(),
    };
    let document = reader
        .read(&mut archive, &main)?
        .ok_or_else(|| IngestError::Docx(format!("no {main} inside: not a Word document")))?;
    render_document(&document, &styles, budget)
}

/// Reads parts of the archive, counting everything decompressed against the limits.
struct PartReader<'a> {
    budget: &'a Budget,
    used: u64,
}

impl PartReader<'_> {
    fn read(
        &mut self,
        archive: &mut ZipArchive<Cursor<&[u8]>>,
        name: &str,
    ) -> Result<Option<String>, IngestError> {
        let limits = &self.budget.limits;
        let mut file = match archive.by_name(name) {
            Ok(file) => file,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(IngestError::Docx(format!("cannot read {name}: {e}"))),
        };
        let compressed = file.compressed_size().max(1);
        let declared = file.size();
        let remaining = limits.max_decompressed_bytes.saturating_sub(self.used);
        let bomb = |what: String| {
            IngestError::Limit(format!(
                "{name} {what} from {compressed} compressed bytes (a zip bomb?); at most {} bytes in all and a ratio of {}:1 are read",
                limits.max_decompressed_bytes, limits.max_compression_ratio
            ))
        };
        let ratio_exceeded =
            |size: u64| size > RATIO_FREE_BYTES && size / compressed > limits.max_compression_ratio;
        if declared > remaining || ratio_exceeded(declared) {
            return Err(bomb(format!("declares {declared} bytes")));
        }
        // The declared size may lie: read in pieces and check what actually comes out.
        let mut out = Vec::with_capacity(declared.min(remaining) as usize);
        let mut piece = [0u8; 64 * 1024];
        loop {
            let n = file
                .read(&mut piece)
                .map_err(|e| IngestError::Docx(format!("cannot decompress {name}: {e}")))?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&piece[..n]);
            let size = out.len() as u64;
            if size > remaining || ratio_exceeded(size) {
                return Err(bomb(format!("inflates past {size} bytes")));
            }
            self.budget.check_time()?;
        }
        self.used += out.len() as u64;
        String::from_utf8(out)
            .map(Some)
            .map_err(|e| IngestError::Docx(format!("{name} is not UTF-8 XML: {e}")))
    }
}

/// The main document part, from the package relationships (`word/document.xml` normally).
fn main_part_name(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    reader: &mut PartReader<'_>,
) -> Result<String, IngestError> {
    let Some(rels) = reader.read(archive, "_rels/.rels")? else {
        return Ok("word/document.xml".into());
    };
    let mut xml = Reader::from_str(&rels);
    loop {
        match xml.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if local(&e) == "Relationship" => {
                let kind = attribute(&e, "Type").unwrap_or_default();
                if kind.ends_with("/officeDocument")
                    && let Some(target) = attribute(&e, "Target")
                {
                    return Ok(target.trim_start_matches('/').to_string());
                }
            }
            Ok(Event::Eof) | Err(_) => return Ok("word/document.xml".into()),
            _ => {}
        }
    }
}

/// What `word/styles.xml` says that matters here: which paragraph styles are headings (with
/// their level), and the visibility properties every style gives its runs.
#[derive(Default)]
struct Styles {
    headings: HashMap<String, u8>,
    /// Run properties of each paragraph or character style, inheritance (`basedOn`) and the
    /// document defaults applied.
    runs: HashMap<String, RunProperties>,
    defaults: RunProperties,
}

impl Styles {
    /// The run properties a style gives (the document defaults for an unknown style or none).
    fn run_properties(&self, style: Option<&str>) -> RunProperties {
        style
            .and_then(|id| self.runs.get(id))
            .copied()
            .unwrap_or(self.defaults)
    }
}

/// Reads the styles: built-in heading styles are named `heading 1`…`heading 6` and `Title`
/// whatever the document's language, or carry an outline level; styles based on a heading
/// style are headings too. Hidden or white text may be set through a style as well as on the
/// run itself.
fn read_styles(xml: &str, budget: &Budget) -> Result<Styles, IngestError> {
    #[derive(Default)]
    struct Style {
        name: String,
        paragraph: bool,
        outline: Option<u8>,
        based_on: Option<String>,
        run: RunProperties,
    }
    let mut styles: HashMap<String, Style> = HashMap::new();
    let mut defaults = RunProperties::default();
    let mut current: Option<(String, Style)> = None;
    let mut in_defaults = false;
    let mut in_run_properties = false;
    let mut reader = Reader::from_str(xml);
    let mut depth = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| IngestError::Docx(format!("word/styles.xml: {e}")))?;
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                    budget.check_depth(depth, "XML elements")?;
                }
                match local(e) {
                    "style" => {
                        let kind = attribute(e, "type");
                        let paragraph = kind.as_deref().is_none_or(|t| t == "paragraph");
                        let character = kind.as_deref() == Some("character");
                        current = attribute(e, "styleId")
                            .filter(|_| paragraph || character)
                            .map(|id| {
                                (
                                    id,
                                    Style {
                                        paragraph,
                                        ..Style::default()
                                    },
                                )
                            });
                    }
                    "rPrDefault" => in_defaults = true,
                    "rPr" if matches!(event, Event::Start(_)) => in_run_properties = true,
                    "name" => {
                        if let Some((_, style)) = current.as_mut() {
                            style.name = attribute(e, "val").unwrap_or_default();
                        }
                    }
                    "basedOn" => {
                        if let Some((_, style)) = current.as_mut() {
                            style.based_on = attribute(e, "val");
                        }
                    }
                    "outlineLvl" => {
                        if let Some((_, style)) = current.as_mut() {
                            style.outline = attribute(e, "val").and_then(|v| v.parse().ok());
                        }
                    }
                    _ if in_run_properties => {
                        if let Some((_, style)) = current.as_mut() {
                            style.run.read(e);
                        } else if in_defaults {
                            defaults.read(e);
                        }
                    }
                    _ => {}
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                match e.local_name().as_ref() {
                    "style" => {
                        if let Some((id, style)) = current.take() {
                            styles.insert(id, style);
                        }
                    }
                    "rPr" => in_run_properties = false,
                    "rPrDefault" => in_defaults = false,
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let own_level = |id: &str, style: &Style| -> Option<u8> {
        if !style.paragraph {
            return None;
        }
        let name = style.name.to_ascii_lowercase();
        if name == "title" || id == "Title" {
            return Some(1);
        }
        if let Some(n) = name
            .strip_prefix("heading ")
            .and_then(|n| n.parse::<u8>().ok())
        {
            return (1..=6).contains(&n).then_some(n);
        }
        style.outline.filter(|l| *l < 6).map(|l| l + 1)
    };
    let mut headings = HashMap::new();
    let mut runs = HashMap::new();
    for id in styles.keys() {
        // The chain of styles from this one up its `basedOn` links (at most 10: a loop or a
        // deep chain ends there).
        let mut chain = Vec::new();
        let mut cursor = Some(id.as_str());
        while let Some(style_id) = cursor
            && chain.len() < 10
        {
            let Some(style) = styles.get(style_id) else {
                break;
            };
            chain.push((style_id, style));
            cursor = style.based_on.as_deref();
        }
        if let Some(level) = chain.iter().find_map(|(id, style)| own_level(id, style)) {
            headings.insert(id.clone(), level);
        }
        let run = chain
            .iter()
            .rev()
            .fold(defaults, |inherited, (_, style)| inherited.then(style.run));
        runs.insert(id.clone(), run);
    }
    Ok(Styles {
        headings,
        runs,
        defaults,
    })
}

/// The heading level of a paragraph style id without styles.xml: `Heading1`…`Heading6`, `Title`.
fn level_from_style_id(id: &str) -> Option<u8> {
    if id.eq_ignore_ascii_case("title") {
        return Some(1);
    }
    let digits = id
        .strip_prefix("Heading")
        .or_else(|| id.strip_prefix("heading"))?;
    digits.parse::<u8>().ok().filter(|n| (1..=6).contains(n))
}

/// What run properties say about whether a reader can see the run, as a style or the run
/// itself sets them (`None`: not set there, inherited).
#[derive(Debug, Clone, Copy, Default)]
struct RunProperties {
    vanish: Option<bool>,
    white: Option<bool>,
    shaded: Option<bool>,
    tiny: Option<bool>,
}

impl RunProperties {
    /// Reads one child of a `w:rPr` element (others are ignored).
    fn read(&mut self, e: &BytesStart<'_>) {
        match local(e) {
            "vanish" | "specVanish" => self.vanish = Some(on_off(e)),
            // White: the value, or a theme's background colour (which Word shows instead of
            // the value) left as it is.
            "color" => {
                let theme_white = attribute(e, "themeColor").is_some_and(|c| {
                    matches!(c.as_str(), "background1" | "light1")
                        && attribute(e, "themeShade").is_none()
                });
                let value_white = attribute(e, "themeColor").is_none()
                    && attribute(e, "val").is_some_and(|v| v.eq_ignore_ascii_case("FFFFFF"));
                self.white = Some(theme_white || value_white);
            }
            // A background behind the run: white text on it is visible.
            "highlight" | "shd" => {
                self.shaded = Some(
                    attribute(e, "val")
                        .is_some_and(|v| !matches!(v.as_str(), "none" | "clear" | "nil"))
                        || attribute(e, "fill")
                            .is_some_and(|f| f != "auto" && !f.eq_ignore_ascii_case("FFFFFF")),
                );
            }
            "sz" => {
                self.tiny = Some(
                    attribute(e, "val")
                        .and_then(|v| v.parse::<u32>().ok())
                        .is_some_and(|half_points| half_points <= 2),
                );
            }
            _ => {}
        }
    }

    /// These properties with `over`'s set ones on top.
    fn then(self, over: RunProperties) -> RunProperties {
        RunProperties {
            vanish: over.vanish.or(self.vanish),
            white: over.white.or(self.white),
            shaded: over.shaded.or(self.shaded),
            tiny: over.tiny.or(self.tiny),
        }
    }

    /// Whether a reader cannot see the run. White text is hidden on the page's white; inside
    /// tables, cells are often shaded by the table style, which is not read here, so it is kept
    /// there.
    fn hidden(&self, in_table: bool) -> bool {
        let on = |v: Option<bool>| v.unwrap_or(false);
        on(self.vanish) || on(self.tiny) || (on(self.white) && !on(self.shaded) && !in_table)
    }
}

#[derive(Default)]
struct Table {
    rows: Vec<String>,
    cells: Vec<String>,
    cell: String,
}

#[derive(Default)]
struct Paragraph {
    text: String,
    style: Option<String>,
    outline: Option<u8>,
    list: bool,
}

/// Renders `word/document.xml` as Markdown-like text.
fn render_document(xml: &str, styles: &Styles, budget: &Budget) -> Result<String, IngestError> {
    let mut reader = Reader::from_str(xml);
    let mut blocks: Vec<String> = Vec::new();
    let mut chars = 0usize;
    let mut tables: Vec<Table> = Vec::new();
    let mut paragraph = Paragraph::default();
    let mut paragraph_depth = 0usize;
    // Element depth, and the depth at which a skipped subtree (deleted text, field codes,
    // alternate content fallbacks) began.
    let mut depth = 0usize;
    let mut skip_from: Option<usize> = None;
    let mut in_run_properties = false;
    let mut in_paragraph_properties = false;
    let mut run = RunProperties::default();
    let mut in_text = false;
    let mut events = 0usize;
    loop {
        events += 1;
        if events.is_multiple_of(4096) {
            budget.check_time()?;
        }
        let event = reader
            .read_event()
            .map_err(|e| IngestError::Docx(format!("malformed document XML: {e}")))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                if !empty {
                    depth += 1;
                    budget.check_depth(depth, "XML elements")?;
                }
                if skip_from.is_some() {
                    continue;
                }
                let name = local(e);
                match name {
                    "delText" | "instrText" | "Fallback" | "del" | "moveFrom" if !empty => {
                        skip_from = Some(depth);
                    }
                    "p" if !empty => {
                        if paragraph_depth == 0 {
                            paragraph = Paragraph::default();
                        } else {
                            // A text box inside a paragraph: its text continues the paragraph.
                            paragraph.text.push(' ');
                        }
                        paragraph_depth += 1;
                    }
                    "pPr" if !empty => in_paragraph_properties = true,
                    "pStyle" if in_paragraph_properties && paragraph_depth == 1 => {
                        paragraph.style = attribute(e, "val");
                    }
                    "outlineLvl" if in_paragraph_properties && paragraph_depth == 1 => {
                        paragraph.outline = attribute(e, "val").and_then(|v| v.parse().ok());
                    }
                    "numPr" if in_paragraph_properties && paragraph_depth == 1 => {
                        paragraph.list = true;
                    }
                    // A run starts with what its paragraph's style gives runs; its character
                    // style (`rStyle`, first in `rPr`) and its own properties go on top.
                    "r" if !empty => run = styles.run_properties(paragraph.style.as_deref()),
                    "rPr" if !empty => in_run_properties = true,
                    "rStyle" if in_run_properties => {
                        if let Some(style) = attribute(e, "val").and_then(|id| styles.runs.get(&id))
                        {
                            run = run.then(*style);
                        }
                    }
                    _ if in_run_properties => run.read(e),
                    "t" if !empty => in_text = true,
                    "tab" if !in_paragraph_properties && !run.hidden(!tables.is_empty()) => {
                        paragraph.text.push('\t')
                    }
                    "br" | "cr" if !run.hidden(!tables.is_empty()) => paragraph.text.push('\n'),
                    "noBreakHyphen" if !run.hidden(!tables.is_empty()) => paragraph.text.push('-'),
                    "tbl" if !empty => tables.push(Table::default()),
                    _ => {}
                }
            }
            Event::End(ref e) => {
                let closing = depth;
                depth = depth.saturating_sub(1);
                if let Some(from) = skip_from {
                    if closing == from {
                        skip_from = None;
                    }
                    continue;
                }
                match e.local_name().as_ref() {
                    "t" => in_text = false,
                    "rPr" => in_run_properties = false,
                    "pPr" => in_paragraph_properties = false,
                    "r" => run = RunProperties::default(),
                    "p" => {
                        paragraph_depth = paragraph_depth.saturating_sub(1);
                        if paragraph_depth == 0 {
                            let done = std::mem::take(&mut paragraph);
                            if let Some(table) = tables.last_mut() {
                                let text = collapse(&done.text);
                                if !text.is_empty() {
                                    if !table.cell.is_empty() {
                                        table.cell.push(' ');
                                    }
                                    table.cell.push_str(&text);
                                }
                            } else if let Some(block) = paragraph_block(done, styles) {
                                chars += block.len() + 2;
                                budget.check_text(chars)?;
                                blocks.push(block);
                            }
                        }
                    }
                    "tc" => {
                        if let Some(table) = tables.last_mut() {
                            let cell = std::mem::take(&mut table.cell);
                            table.cells.push(cell);
                        }
                    }
                    "tr" => {
                        if let Some(table) = tables.last_mut() {
                            let cells = std::mem::take(&mut table.cells);
                            if cells.iter().any(|c| !c.is_empty()) {
                                table.rows.push(cells.join(" | "));
                            }
                        }
                    }
                    "tbl" => {
                        if let Some(table) = tables.pop() {
                            match tables.last_mut() {
                                // A nested table becomes text of the cell it sits in.
                                Some(outer) => {
                                    if !outer.cell.is_empty() {
                                        outer.cell.push(' ');
                                    }
                                    outer.cell.push_str(&table.rows.join("; "));
                                }
                                None if !table.rows.is_empty() => {
                                    let block = table.rows.join("\n");
                                    chars += block.len() + 2;
                                    budget.check_text(chars)?;
                                    blocks.push(block);
                                }
                                None => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(ref t)
                if in_text && !run.hidden(!tables.is_empty()) && skip_from.is_none() =>
            {
                paragraph.text.push_str(&t.xml10_content());
                budget.check_text(chars + paragraph.text.len())?;
            }
            Event::GeneralRef(ref r)
                if in_text && !run.hidden(!tables.is_empty()) && skip_from.is_none() =>
            {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    paragraph.text.push(c);
                } else if let Some(c) = predefined_entity(r) {
                    paragraph.text.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(blocks.join("\n\n"))
}

fn paragraph_block(paragraph: Paragraph, styles: &Styles) -> Option<String> {
    let level = paragraph
        .style
        .as_deref()
        .and_then(|s| {
            styles
                .headings
                .get(s)
                .copied()
                .or_else(|| level_from_style_id(s))
        })
        .or_else(|| paragraph.outline.filter(|l| *l < 6).map(|l| l + 1));
    if let Some(level) = level {
        let title = collapse(&paragraph.text);
        return (!title.is_empty()).then(|| format!("{} {title}", "#".repeat(level as usize)));
    }
    let text: Vec<String> = paragraph
        .text
        .split('\n')
        .map(|line| {
            line.split([' ', '\u{a0}'])
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let text = text.join("\n").trim().to_string();
    if text.is_empty() {
        return None;
    }
    // A paragraph whose text starts like a Markdown heading is not one.
    let text = if text.starts_with('#') {
        format!("\u{200b}{text}")
    } else {
        text
    };
    Some(if paragraph.list {
        format!("- {text}")
    } else {
        text
    })
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn local<'a>(e: &'a BytesStart<'_>) -> &'a str {
    let name = e.name().into_inner();
    name.rsplit(':').next().unwrap_or(name)
}

/// An attribute's value by its local name (`w:val` → `val`).
fn attribute(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        (a.key.local_name().as_ref() == name)
            .then(|| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|v| v.into_owned())
            })
            .flatten()
    })
}

/// A toggle property (`<w:vanish/>`, `<w:vanish w:val="false"/>`).
fn on_off(e: &BytesStart<'_>) -> bool {
    attribute(e, "val").is_none_or(|v| !matches!(v.as_str(), "false" | "0" | "off"))
}

fn predefined_entity(r: &quick_xml::events::BytesRef<'_>) -> Option<char> {
    match &**r {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    }
}
