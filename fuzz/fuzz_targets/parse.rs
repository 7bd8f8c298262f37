//! The parsing entry point on arbitrary bytes: the first byte picks the format hint (each
//! format's parser, or detection from the content under a file name), the rest is the file.
//! Parsers run in this thread (not under `parse_document`'s panic guard), so a panic is a
//! crash the fuzzer reports. Small limits keep each run short.

#![no_main]

use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use verity_core::DocumentFormat;
use verity_ingest::{ParseLimits, detect_format, parse_bytes_with_limits};

const FORMATS: [DocumentFormat; 6] = [
    DocumentFormat::Markdown,
    DocumentFormat::Text,
    DocumentFormat::Html,
    DocumentFormat::Pdf,
    DocumentFormat::Docx,
    DocumentFormat::Csv,
];
const NAMES: [&str; 7] = ["a.md", "a.txt", "a.html", "a.pdf", "a.docx", "a.csv", "noext"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let limits = ParseLimits {
        max_file_bytes: 1024 * 1024,
        max_decompressed_bytes: 8 * 1024 * 1024,
        max_pages: 200,
        max_text_chars: 1024 * 1024,
        timeout: Duration::from_secs(10),
        ..ParseLimits::default()
    };
    let selector = selector as usize;
    let format = if selector % 2 == 0 {
        FORMATS[(selector / 2) % FORMATS.len()]
    } else {
        match detect_format(Path::new(NAMES[(selector / 2) % NAMES.len()]), bytes) {
            Ok(format) => format,
            Err(_) => return,
        }
    };
    if let Ok(document) = parse_bytes_with_limits(bytes, format, "fuzz", &limits) {
        // What every caller relies on: a non-empty text, headings and pages inside it.
        let chars = document.text.chars().count();
        assert!(!document.text.trim().is_empty());
        for heading in &document.headings {
            assert!(heading.start < chars);
        }
        assert!(document.pages.windows(2).all(|w| w[0] <= w[1]));
    }
});
