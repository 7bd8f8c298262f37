use unicode_normalization::UnicodeNormalization;

/// Normalises text so that equal content gives equal text: Unicode NFC (accents composed, which
/// matters for Spanish and Portuguese), `\n` line ends, no control characters other than `\n`
/// and `\t`, no trailing spaces, no leading or trailing blank lines, at most one blank line in a
/// row.
pub fn normalize_text(raw: &str) -> String {
    let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
    let unified = raw.replace("\r\n", "\n").replace('\r', "\n");
    let composed: String = unified
        .nfc()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();

    let mut out = String::with_capacity(composed.len());
    let mut blank_run = 0;
    for line in composed.split('\n') {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_composes_accents_and_unifies_line_ends() {
        let decomposed = "Vacacio\u{301}n\r\n\r\n\r\n\r\nDi\u{301}as  \n";
        assert_eq!(normalize_text(decomposed), "Vacación\n\nDías");
    }

    #[test]
    fn normalisation_drops_control_characters_and_bom() {
        assert_eq!(normalize_text("\u{feff}a\u{0}b\u{7}c\td"), "abc\td");
    }
}
