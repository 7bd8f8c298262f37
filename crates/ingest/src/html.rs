//! HTML to text: the page's main content, rendered as Markdown-like text so that headings keep
//! their structure for chunking, and navigation, banners, footers and scripts are left out.

use scraper::{ElementRef, Html, Node, Selector};

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
/// Nesting deeper than this is not followed: hostile pages cannot exhaust the stack.
const MAX_DEPTH: usize = 200;

pub struct ExtractedHtml {
    pub text: String,
    pub title: Option<String>,
}

pub fn html_to_text(raw: &str) -> ExtractedHtml {
    let html = Html::parse_document(raw);
    let title = select_text(&html, "title");
    let root = ["main", "[role=main]", "article", "body"]
        .iter()
        .find_map(|s| {
            html.select(&Selector::parse(s).expect("static selector"))
                .next()
        });
    let mut out = TextBuilder::default();
    match root {
        Some(root) => walk(root, &mut out, 0),
        None => walk(html.root_element(), &mut out, 0),
    }
    ExtractedHtml {
        text: out.finish(),
        title,
    }
}

fn select_text(html: &Html, selector: &str) -> Option<String> {
    let selector = Selector::parse(selector).expect("static selector");
    let element = html.select(&selector).next()?;
    let text = collapse_whitespace(&element.text().collect::<String>());
    (!text.is_empty()).then_some(text)
}

fn walk(element: ElementRef<'_>, out: &mut TextBuilder, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let name = element.value().name();
    if SKIPPED.contains(&name) {
        return;
    }
    if let Some(level) = heading_level(name) {
        let text = collapse_whitespace(&element.text().collect::<String>());
        if !text.is_empty() {
            out.block(&format!("{} {text}", "#".repeat(level)));
        }
        return;
    }
    match name {
        "br" => out.line_break(),
        "li" => out.start_line("- "),
        "td" | "th" => out.inline(" | "),
        _ if BLOCKS.contains(&name) => out.end_block(),
        _ => {}
    }
    for child in element.children() {
        match child.value() {
            Node::Text(text) => out.inline(text),
            Node::Element(_) => {
                if let Some(child) = ElementRef::wrap(child) {
                    walk(child, out, depth + 1);
                }
            }
            _ => {}
        }
    }
    if BLOCKS.contains(&name) || name == "li" {
        out.end_block();
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

    fn finish(mut self) -> String {
        self.end_block();
        self.blocks.join("\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let extracted = html_to_text(PAGE);
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
    fn deeply_nested_pages_do_not_exhaust_the_stack() {
        let page = format!(
            "<body>{}deep{}</body>",
            "<div>".repeat(5000),
            "</div>".repeat(5000)
        );
        let text = html_to_text(&page).text;
        assert!(!text.contains("deep"));
    }
}
