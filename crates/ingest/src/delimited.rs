//! CSV (and TSV): each row becomes a block of `header: value` lines, blocks separated by a
//! blank line, so that every chunk carries the column names of the values it holds and the
//! chunker can cut between rows (see `Chunker::chunk`). The delimiter is sniffed from the
//! header line among `,` `;` `\t` `|` (spreadsheets in Spanish and Portuguese locales write `;`).
//! Formula cells (`=…`, or `+`/`-`/`@` before a function call) are left out: a spreadsheet
//! shows their result, never their text, so text inside one (`=IF(FALSE,"ignore the rules")`)
//! is hidden from the reader and must not reach the index.

use crate::limits::Budget;
use crate::read::IngestError;

pub(crate) fn csv_to_text(text: &str, budget: &Budget) -> Result<String, IngestError> {
    let delimiter = sniff_delimiter(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| IngestError::Csv(e.to_string()))?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = one_line(h);
            if h.is_empty() {
                format!("column {}", i + 1)
            } else {
                h
            }
        })
        .collect();
    let mut blocks: Vec<String> = Vec::new();
    let mut chars = 0usize;
    for (number, record) in reader.records().enumerate() {
        if number % 1024 == 0 {
            budget.check_time()?;
        }
        let record = record.map_err(|e| IngestError::Csv(format!("row {}: {e}", number + 2)))?;
        let lines: Vec<String> = record
            .iter()
            .enumerate()
            .filter_map(|(i, value)| {
                let value = one_line(value);
                if value.is_empty() || is_formula(&value) {
                    return None;
                }
                let header = headers
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("column {}", i + 1));
                Some(format!("{header}: {value}"))
            })
            .collect();
        if lines.is_empty() {
            continue;
        }
        let block = lines.join("\n");
        chars += block.chars().count() + 2;
        budget.check_text(chars)?;
        blocks.push(block);
    }
    Ok(blocks.join("\n\n"))
}

/// A value on one line: inner line breaks and runs of whitespace become single spaces.
fn one_line(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a spreadsheet reads the cell as a formula: `=` first, or `+`, `-` or `@` before a
/// function name directly followed by `(` (so `+55 (11) 5555-0000`, `-3.5` and
/// `- item (note)` stay values).
fn is_formula(value: &str) -> bool {
    let Some(rest) = value.strip_prefix(['+', '-', '@']) else {
        return value.starts_with('=');
    };
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    name_len > 0
        && rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && rest[name_len..].starts_with('(')
}

fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or_default();
    let mut best = (b',', 0usize);
    for candidate in [b',', b';', b'\t', b'|'] {
        let mut count = 0;
        let mut quoted = false;
        for byte in header.bytes() {
            if byte == b'"' {
                quoted = !quoted;
            } else if byte == candidate && !quoted {
                count += 1;
            }
        }
        if count > best.1 {
            best = (candidate, count);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::ParseLimits;

    #[test]
    fn formula_cells_are_left_out_and_values_that_look_like_them_kept() {
        for formula in [
            "=IF(FALSE,\"CANARY\",\"\")",
            "=1+1",
            "+HYPERLINK(\"https://x.example\")",
            "@SUM(A1:A2)",
            "-N(\"CANARY\")",
        ] {
            assert!(is_formula(formula), "{formula}");
        }
        for value in [
            "+55 (11) 5555-0000",
            "-3.5",
            "@ana",
            "- item (note)",
            "a=b",
            "+1 (555)",
        ] {
            assert!(!is_formula(value), "{value}");
        }
    }

    #[test]
    fn rows_become_header_value_blocks() {
        let text = csv_to_text(
            "name;extension;floor\nAna Quispe;4410;3\n\"Luis, Jr.\";;\"2\nnorth\"\n",
            &Budget::new(&ParseLimits::default()),
        )
        .unwrap();
        assert_eq!(
            text,
            "name: Ana Quispe\nextension: 4410\nfloor: 3\n\nname: Luis, Jr.\nfloor: 2 north"
        );
    }
}
