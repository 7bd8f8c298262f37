//! HTML to text: the page's main content, rendered as Markdown-like text so that headings keep
//! their structure for chunking, and navigation, banners, footers and scripts are left out.

use scraper::{ElementRef, Html, Node, Selector};

use crate::hidden::{StyleRules, Visibility};
use crate::limits::Budget;
use crate::read::IngestError;

/// Elements whose content is never part of the document's text.
const SKIPPED: &[&str] = &[
    "nav", "header", "footer", "aside", "script", "style", "noscript", "template", "form",
    "button", "svg", "iframe", "object", "select", "head",
];
/// Elements that start a new block of text.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "blockquote",
    "pre",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "table",
    "thead",
    "tbody",
    "tr",
    "figure",
    "figcaption",
    "address",
    "details",
    "summary",
    "hr",
    "body",
];
#[derive(Debug)]
pub struct ExtractedHtml {
    pub text: String,
    pub title: Option<String>,
}

/// The visible main content of a page as Markdown-like text. Text a reader cannot see is left
/// out (see [`crate::hidden`]), so instructions planted in hidden text never reach the index.
/// Elements nested deeper than `budget.limits.max_nesting_depth` fail the page.
pub fn html_to_text(raw: &str, budget: &Budget) -> Result<ExtractedHtml, IngestError> {
    let html = Html::parse_document(raw);
    budget.check_time()?;
    let title = select_text(&html, "title");
    let rules = StyleRules::from_document(&html);
    let root = ["main", "[role=main]", "article", "body"]
        .iter()
        .find_map(|s| {
            html.select(&Selector::parse(s).expect("static selector"))
                .next()
        })
        .unwrap_or_else(|| html.root_element());
    let mut walker = Walker {
        out: TextBuilder::default(),
        rules,
        budget,
        steps: 0,
    };
    // The root's ancestors may hide it, or give it its colours.
    let mut context = Visibility::default();
    let mut ancestors: Vec<ElementRef<'_>> =
        root.ancestors().filter_map(ElementRef::wrap).collect();
    ancestors.reverse();
    let mut hidden = false;
    for ancestor in ancestors {
        match walker.rules.apply(ancestor, &context) {
            Some(inner) => context = inner,
            None => hidden = true,
        }
    }
    if !hidden {
        walker.walk(root, 0, &context)?;
    }
    Ok(ExtractedHtml {
        text: walker.out.finish(),
        title,
    })
}

fn select_text(html: &Html, selector: &str) -> Option<String> {
    let selector = Selector::parse(selector).expect("static selector");
    let element = html.select(&selector).next()?;
    let text = collapse_whitespace(&element.text().collect::<String>());
    (!text.is_empty()).then_some(text)
}

struct Walker<'b> {
    out: TextBuilder,
    rules: StyleRules,
    budget: &'b Budget,
    steps: usize,
}

impl Walker<'_> {
    fn step(&mut self, depth: usize) -> Result<(), IngestError> {
        self.budget.check_depth(depth, "HTML elements")?;
        self.steps += 1;
        if self.steps.is_multiple_of(4096) {
            self.budget.check_time()?;
            self.budget.check_text(self.out.len())?;
        }
        Ok(())
    }

    fn walk(
        &mut self,
        element: ElementRef<'_>,
        depth: usize,
        parent: &Visibility,
    ) -> Result<(), IngestError> {
        self.step(depth)?;
        let name = element.value().name();
        if SKIPPED.contains(&name) {
            return Ok(());
        }
        let Some(context) = self.rules.apply(element, parent) else {
            return Ok(());
        };
        if let Some(level) = heading_level(name) {
            let mut text = String::new();
            self.visible_text(element, depth, &context, &mut text)?;
            let text = collapse_whitespace(&text);
            if !text.is_empty() {
                self.out.block(&format!("{} {text}", "#".repeat(level)));
            }
            return Ok(());
        }
        match name {
            "br" => self.out.line_break(),
            "li" => self.out.start_line("- "),
            "td" | "th" => self.out.inline(" | "),
            _ if BLOCKS.contains(&name) => self.out.end_block(),
            _ => {}
        }
        for child in element.children() {
            match child.value() {
                Node::Text(text) if !context.text_hidden() => self.out.inline(text),
                Node::Element(_) => {
                    if let Some(child) = ElementRef::wrap(child) {
                        self.walk(child, depth + 1, &context)?;
                    }
                }
                _ => {}
            }
        }
        if BLOCKS.contains(&name) || name == "li" {
            self.out.end_block();
        }
        Ok(())
    }

    /// The text of an element that a reader sees (for headings, which become one line).
    fn visible_text(
        &mut self,
        element: ElementRef<'_>,
        depth: usize,
        context: &Visibility,
        out: &mut String,
    ) -> Result<(), IngestError> {
        for child in element.children() {
            match child.value() {
                Node::Text(text) if !context.text_hidden() => out.push_str(text),
                Node::Element(_) => {
                    if let Some(child) = ElementRef::wrap(child) {
                        self.step(depth + 1)?;
                        if SKIPPED.contains(&child.value().name()) {
                            continue;
                        }
                        if let Some(inner) = self.rules.apply(child, context) {
                            out.push(' ');
                            self.visible_text(child, depth + 1, &inner, out)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn heading_level(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Accumulates blocks of text; inline text has its whitespace collapsed as a browser would.
#[derive(Default)]
struct TextBuilder {
    blocks: Vec<String>,
    current: String,
}

impl TextBuilder {
    fn inline(&mut self, text: &str) {
        let starts_with_space = text.starts_with(char::is_whitespace);
        let collapsed = collapse_whitespace(text);
        if collapsed.is_empty() {
            if !text.is_empty() && !self.current.is_empty() && !self.current.ends_with([' ', '\n'])
            {
                self.current.push(' ');
            }
            return;
        }
        if starts_with_space && !self.current.is_empty() && !self.current.ends_with([' ', '\n']) {
            self.current.push(' ');
        }
        self.current.push_str(&collapsed);
        if text.ends_with(char::is_whitespace) {
            self.current.push(' ');
        }
    }

    fn line_break(&mut self) {
        let trimmed = self.current.trim_end().len();
        self.current.truncate(trimmed);
        self.current.push('\n');
    }

    fn start_line(&mut self, prefix: &str) {
        self.end_block();
        self.current.push_str(prefix);
    }

    fn end_block(&mut self) {
        let text = self.current.trim();
        if !text.is_empty() && text != "-" {
            self.blocks.push(text.to_string());
        }
        self.current.clear();
    }

    fn block(&mut self, text: &str) {
        self.end_block();
        self.blocks.push(text.to_string());
    }

    /// Bytes of text gathered so far.
    fn len(&self) -> usize {
        self.blocks.iter().map(|b| b.len() + 2).sum::<usize>() + self.current.len()
    }

    fn finish(mut self) -> String {
        self.end_block();
        self.blocks.join("\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::ParseLimits;

    fn extract(page: &str) -> Result<ExtractedHtml, IngestError> {
        html_to_text(page, &Budget::new(&ParseLimits::default()))
    }

    const PAGE: &str = r#"<html><head><title>Parking | Intranet</title>
        <script>var tracking = "secret";</script></head>
        <body><header><div class="banner">Quillacollo Intranet</div></header>
        <nav><a href="/">Home</a> <a href="/hr">HR</a></nav>
        <main><h1>Parking</h1><p>Visitors park on <b>level -2</b>.
        Bays are free.</p><ul><li>Bikes: level -1</li><li>Cars: level -2</li></ul>
        <table><tr><th>Zone</th><th>Hours</th></tr><tr><td>A</td><td>7-19</td></tr></table></main>
        <footer>© 2026 Quillacollo</footer></body></html>"#;

    #[test]
    fn main_content_is_kept_and_navigation_dropped() {
        let extracted = extract(PAGE).unwrap();
        assert_eq!(extracted.title.as_deref(), Some("Parking | Intranet"));
        let text = extracted.text;
        assert!(
            text.starts_with("# Parking\n\nVisitors park on level -2. Bays are free."),
            "{text}"
        );
        assert!(
            text.contains("- Bikes: level -1\n\n- Cars: level -2"),
            "{text}"
        );
        assert!(text.contains("Zone | Hours"), "{text}");
        for absent in ["Home", "Intranet\n", "©", "tracking", "banner"] {
            assert!(!text.contains(absent), "{absent:?} leaked into {text}");
        }
    }

    #[test]
    fn deeply_nested_pages_fail_with_a_reason() {
        let page = format!(
            "<body>{}deep{}</body>",
            "<div>".repeat(5000),
            "</div>".repeat(5000)
        );
        let err = extract(&page).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 256"), "{err}");
        let page = format!(
            "<body>{}fine{}</body>",
            "<div>".repeat(100),
            "</div>".repeat(100)
        );
        assert_eq!(extract(&page).unwrap().text, "fine");
    }
}
