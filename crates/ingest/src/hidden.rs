//! The hidden-text defence for HTML: what a reader cannot see is not indexed, so instructions
//! planted in a page ("ignore previous instructions…") never reach the index or a language
//! model. Hidden are: elements with the `hidden` attribute or `aria-hidden="true"`; styles
//! (inline, or rules of the page's own `<style>` sheets whose selector matches) with
//! `display: none`, `visibility: hidden|collapse`, `opacity: 0`, a font size of about zero,
//! transparent text, text moved far off-screen (`text-indent`, `left`, `top` ≤ −999px), a
//! zero `clip`/`clip-path`, `transform: scale(0)`, or a zero width or height with `overflow:
//! hidden`; and text whose colour equals its background (white on the default white page,
//! black on black…), from CSS or `<font color>`/`bgcolor`. Comments, `<template>`, `<noscript>`
//! and scripts are skipped by the HTML walker itself. Stylesheets from other files are not
//! fetched, so their rules are not known.

use scraper::{ElementRef, Html, Selector};

/// Stylesheet rules read from a page, at most this many.
const MAX_RULES: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Rgba {
    r: u8,
    g: u8,
    b: u8,
    a: f32,
}

const WHITE: Rgba = Rgba {
    r: 255,
    g: 255,
    b: 255,
    a: 1.0,
};
const BLACK: Rgba = Rgba {
    r: 0,
    g: 0,
    b: 0,
    a: 1.0,
};

impl Rgba {
    /// Colours this close look the same to a reader.
    fn indistinguishable(self, other: Rgba) -> bool {
        let d = |x: u8, y: u8| x.abs_diff(y) as u32;
        d(self.r, other.r) + d(self.g, other.g) + d(self.b, other.b) <= 48
    }
}

/// The colours in effect at a point of the page (inherited from the ancestors).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Visibility {
    color: Option<Rgba>,
    background: Option<Rgba>,
}

impl Visibility {
    /// Whether text drawn here is invisible: transparent, or the colour of its background
    /// (black by default on a white page by default).
    pub fn text_hidden(&self) -> bool {
        let color = self.color.unwrap_or(BLACK);
        color.a < 0.05 || color.indistinguishable(self.background.unwrap_or(WHITE))
    }
}

/// What a set of declarations says.
#[derive(Debug, Clone, Default)]
struct Declarations {
    hides: bool,
    color: Option<Rgba>,
    background: Option<Rgba>,
    /// `-webkit-text-fill-color`, which paints the text instead of `color`.
    fill: Option<Rgba>,
}

impl Declarations {
    fn parse(text: &str) -> Self {
        let mut out = Declarations::default();
        let (mut zero_size, mut overflow_hidden) = (false, false);
        for declaration in text.split(';') {
            let Some((property, value)) = declaration.split_once(':') else {
                continue;
            };
            let property = property.trim().to_ascii_lowercase();
            let value = value
                .to_ascii_lowercase()
                .replace("!important", "")
                .trim()
                .to_string();
            let number = number(&value);
            let hides = match property.as_str() {
                "display" => value == "none",
                "visibility" => value == "hidden" || value == "collapse",
                "opacity" => {
                    number.is_some_and(|(n, unit)| if unit == "%" { n < 10.0 } else { n < 0.1 })
                }
                "content-visibility" => value == "hidden",
                // The text's own fill wins over `color`.
                "-webkit-text-fill-color" => {
                    if let Some(fill) = parse_color(&value) {
                        out.fill = Some(fill);
                    }
                    false
                }
                "font-size" => number.is_some_and(|(n, unit)| match unit {
                    "px" | "pt" => n <= 1.0,
                    "%" => n <= 10.0,
                    "em" | "rem" | "ex" | "ch" | "vw" | "vh" => n <= 0.1,
                    _ => n <= 0.0,
                }),
                // Moved far off-screen.
                "text-indent" | "left" | "top" | "right" | "margin-left" | "margin-top" => number
                    .is_some_and(|(n, unit)| match unit {
                        "px" | "pt" => n <= -999.0,
                        "em" | "rem" => n <= -99.0,
                        "%" | "vw" | "vh" => n <= -100.0,
                        _ => false,
                    }),
                "clip" => {
                    let digits: String = value
                        .chars()
                        .filter(|c| c.is_ascii_digit() || *c == '.')
                        .collect();
                    value.starts_with("rect(")
                        && digits.chars().all(|c| matches!(c, '0' | '1' | '.'))
                }
                "clip-path" => {
                    value.starts_with("inset(50%")
                        || value.starts_with("inset(100%")
                        || ["circle(0", "ellipse(0", "polygon(0 0)", "polygon(0px 0px)"]
                            .iter()
                            .any(|s| value.starts_with(s))
                }
                "transform" => {
                    ["scale(0)", "scale(0,", "scalex(0)", "scaley(0)"]
                        .iter()
                        .any(|s| value.contains(s))
                        || moved_off_screen(&value)
                }
                "width" | "height" | "max-width" | "max-height" => {
                    zero_size |= number.is_some_and(|(n, _)| n <= 1.0);
                    false
                }
                "overflow" | "overflow-x" | "overflow-y" => {
                    overflow_hidden |= value == "hidden" || value == "clip";
                    false
                }
                "color" => {
                    out.color = parse_color(&value);
                    false
                }
                "background-color" => {
                    out.background = parse_color(&value);
                    false
                }
                "background" => {
                    out.background = value.split_whitespace().find_map(parse_color);
                    false
                }
                _ => false,
            };
            out.hides |= hides;
        }
        if zero_size && overflow_hidden {
            out.hides = true;
        }
        if let Some(fill) = out.fill {
            out.color = Some(fill);
        }
        out
    }

    fn merge(&mut self, other: &Declarations) {
        self.hides |= other.hides;
        if other.color.is_some() {
            self.color = other.color;
        }
        if other.background.is_some() {
            self.background = other.background;
        }
    }
}

/// A CSS number with its unit: `0`, `-9999px`, `.5em`, `0%`.
/// Whether a transform moves its element far off-screen (`translateX(-10000px)`,
/// `translate(-200vw, 0)`, `translate3d(0, -9999px, 0)`).
fn moved_off_screen(value: &str) -> bool {
    let Some(start) = value.find("translate") else {
        return false;
    };
    let arguments = value[start..]
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map_or("", |(inside, _)| inside);
    arguments.split(',').any(|argument| {
        number(argument.trim()).is_some_and(|(n, unit)| match unit {
            "px" | "pt" => n.abs() >= 999.0,
            "em" | "rem" => n.abs() >= 99.0,
            "%" | "vw" | "vh" => n.abs() >= 100.0,
            _ => false,
        })
    })
}

fn number(value: &str) -> Option<(f32, &str)> {
    let value = value.split_whitespace().next()?;
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(value.len());
    let n: f32 = value[..end].parse().ok()?;
    Some((n, &value[end..]))
}

fn parse_color(value: &str) -> Option<Rgba> {
    let value = value.trim();
    let rgba = |r, g, b| Some(Rgba { r, g, b, a: 1.0 });
    if let Some(hex) = value.strip_prefix('#') {
        let digit = |i: usize, len: usize| u8::from_str_radix(hex.get(i..i + len)?, 16).ok();
        return match hex.len() {
            3 | 4 => {
                let one = |i| digit(i, 1).map(|d| d * 17);
                let a = if hex.len() == 4 {
                    one(3)? as f32 / 255.0
                } else {
                    1.0
                };
                Some(Rgba {
                    r: one(0)?,
                    g: one(1)?,
                    b: one(2)?,
                    a,
                })
            }
            6 | 8 => {
                let a = if hex.len() == 8 {
                    digit(6, 2)? as f32 / 255.0
                } else {
                    1.0
                };
                Some(Rgba {
                    r: digit(0, 2)?,
                    g: digit(2, 2)?,
                    b: digit(4, 2)?,
                    a,
                })
            }
            _ => None,
        };
    }
    if let Some(args) = value
        .strip_prefix("rgba(")
        .or_else(|| value.strip_prefix("rgb("))
        .and_then(|v| v.strip_suffix(')'))
    {
        let parts: Vec<&str> = args
            .split([',', ' ', '/'])
            .filter(|p| !p.is_empty())
            .collect();
        let channel = |p: &str| -> Option<u8> {
            match p.strip_suffix('%') {
                Some(pct) => {
                    Some((pct.parse::<f32>().ok()?.clamp(0.0, 100.0) * 2.55).round() as u8)
                }
                None => Some(p.parse::<f32>().ok()?.clamp(0.0, 255.0).round() as u8),
            }
        };
        let alpha = match parts.get(3) {
            Some(p) => match p.strip_suffix('%') {
                Some(pct) => pct.parse::<f32>().ok()? / 100.0,
                None => p.parse::<f32>().ok()?,
            },
            None => 1.0,
        };
        return Some(Rgba {
            r: channel(parts.first()?)?,
            g: channel(parts.get(1)?)?,
            b: channel(parts.get(2)?)?,
            a: alpha,
        });
    }
    match value {
        "white" | "snow" | "ivory" | "ghostwhite" | "whitesmoke" | "floralwhite" => {
            rgba(255, 255, 255)
        }
        "black" => rgba(0, 0, 0),
        "transparent" => Some(Rgba {
            r: 0,
            g: 0,
            b: 0,
            a: 0.0,
        }),
        "red" => rgba(255, 0, 0),
        "green" => rgba(0, 128, 0),
        "blue" => rgba(0, 0, 255),
        "yellow" => rgba(255, 255, 0),
        "gray" | "grey" => rgba(128, 128, 128),
        "silver" => rgba(192, 192, 192),
        "navy" => rgba(0, 0, 128),
        _ => None,
    }
}

/// The page's own stylesheet rules that matter for visibility, and how an element's
/// visibility follows from them, its inline style and its attributes.
pub(crate) struct StyleRules {
    rules: Vec<(Selector, Declarations)>,
}

impl StyleRules {
    pub fn from_document(html: &Html) -> Self {
        let style = Selector::parse("style").expect("static selector");
        let mut rules = Vec::new();
        for sheet in html.select(&style) {
            let css: String = sheet.text().collect();
            parse_stylesheet(&css, &mut rules);
            if rules.len() >= MAX_RULES {
                break;
            }
        }
        rules.truncate(MAX_RULES);
        Self { rules }
    }

    /// The visibility inside `element`, or `None` when the element is hidden entirely.
    pub fn apply(&self, element: ElementRef<'_>, parent: &Visibility) -> Option<Visibility> {
        let value = element.value();
        if value.attr("hidden").is_some()
            || value
                .attr("aria-hidden")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return None;
        }
        let mut declarations = Declarations::default();
        for (selector, rule) in &self.rules {
            if selector.matches(&element) {
                declarations.merge(rule);
            }
        }
        if let Some(color) = value
            .attr("color")
            .and_then(|c| parse_color(&c.to_ascii_lowercase()))
        {
            declarations.color = Some(color);
        }
        if let Some(bg) = value
            .attr("bgcolor")
            .and_then(|c| parse_color(&c.to_ascii_lowercase()))
        {
            declarations.background = Some(bg);
        }
        if let Some(style) = value.attr("style") {
            declarations.merge(&Declarations::parse(style));
        }
        if declarations.hides {
            return None;
        }
        let mut inner = *parent;
        if declarations.color.is_some() {
            inner.color = declarations.color;
        }
        // A transparent background shows the one behind it.
        if let Some(bg) = declarations.background.filter(|bg| bg.a >= 0.5) {
            inner.background = Some(bg);
        }
        Some(inner)
    }
}

/// Reads `selector { declarations }` rules, skipping comments and at-rules (`@media` …), and
/// keeps those whose declarations hide or colour.
fn parse_stylesheet(css: &str, rules: &mut Vec<(Selector, Declarations)>) {
    let mut css = css.to_string();
    while let Some(start) = css.find("/*") {
        let end = css[start + 2..]
            .find("*/")
            .map_or(css.len(), |e| start + 2 + e + 2);
        css.replace_range(start..end, " ");
    }
    let mut rest = css.as_str();
    while let Some(open) = rest.find('{') {
        let selector = rest[..open].trim();
        let body_start = open + 1;
        // Find the matching close, allowing nested blocks (at-rules).
        let mut depth = 1;
        let mut close = None;
        for (i, c) in rest[body_start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(body_start + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { break };
        let body = &rest[body_start..close];
        rest = &rest[close + 1..];
        // Rules inside conditional groups count as if their condition held: text hidden "only
        // on screens" is hidden from the readers that matter.
        let group = selector.to_ascii_lowercase();
        if ["@media", "@supports", "@layer", "@container", "@document"]
            .iter()
            .any(|at| group.starts_with(at))
        {
            parse_stylesheet(body, rules);
            continue;
        }
        if selector.starts_with('@') || body.contains('{') {
            continue;
        }
        let declarations = Declarations::parse(body);
        if !(declarations.hides
            || declarations.color.is_some()
            || declarations.background.is_some())
        {
            continue;
        }
        if let Ok(selector) = Selector::parse(selector) {
            rules.push((selector, declarations));
            if rules.len() >= MAX_RULES {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse() {
        assert_eq!(parse_color("#fff"), Some(WHITE));
        assert_eq!(
            parse_color("#FFFFFF".to_ascii_lowercase().as_str()),
            Some(WHITE)
        );
        assert_eq!(parse_color("rgb(255, 255, 255)"), Some(WHITE));
        assert_eq!(parse_color("rgb(255 255 255)"), Some(WHITE));
        assert_eq!(parse_color("white"), Some(WHITE));
        assert!(parse_color("rgba(0,0,0,0)").unwrap().a < 0.05);
        assert_eq!(parse_color("papayawhip"), None);
    }

    #[test]
    fn declarations_that_hide() {
        for style in [
            "display:none",
            "DISPLAY: None !important",
            "visibility:hidden",
            "opacity:0",
            "opacity: 0.0",
            "font-size:0",
            "font-size: 0px",
            "font-size:1px",
            "text-indent:-9999px",
            "position:absolute; left:-10000px",
            "width:0;height:0;overflow:hidden",
            "clip: rect(0 0 0 0)",
            "transform: scale(0)",
            "opacity: 0.02",
            "transform: translateX(-10000px)",
            "transform: translate3d(0, -9999px, 0)",
            "content-visibility: hidden",
            "clip-path: circle(0)",
        ] {
            assert!(Declarations::parse(style).hides, "{style}");
        }
        for style in [
            "display:block",
            "opacity:0.9",
            "font-size:12px",
            "left:10px",
            "width:0",
            "transform: translateX(10px)",
            "opacity: 0.5",
        ] {
            assert!(!Declarations::parse(style).hides, "{style}");
        }
    }
}
