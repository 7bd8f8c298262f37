//! Bytes to text: the encoding is detected from the content. UTF-8 (with or without a BOM),
//! UTF-16 LE/BE (with a BOM, or ASCII-heavy text without one), and otherwise Windows-1252, the
//! superset of Latin-1 that Spanish and Portuguese files written by older Windows and Office
//! tools use. Binary content is refused.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, WINDOWS_1252};

use crate::read::IngestError;

/// How far into a file binary sniffing and UTF-16 detection look.
const SNIFF_BYTES: usize = 8 * 1024;

/// Decodes a text file's bytes.
pub(crate) fn decode_text(bytes: &[u8]) -> Result<String, IngestError> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        return decode_with(encoding, &bytes[bom_len..]);
    }
    if let Some(encoding) = utf16_without_bom(bytes) {
        return decode_with(encoding, bytes);
    }
    if let Some(kind) = binary_kind(bytes) {
        return Err(IngestError::Binary(kind));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(_) => Ok(decode_not_utf8(bytes)),
    }
}

fn decode_with(encoding: &'static Encoding, bytes: &[u8]) -> Result<String, IngestError> {
    if encoding == encoding_rs::UTF_8 {
        return match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_string()),
            Err(_) => Ok(decode_not_utf8(bytes)),
        };
    }
    let (text, malformed) = encoding.decode_without_bom_handling(bytes);
    if malformed {
        let bad = text.chars().filter(|c| *c == '\u{fffd}').count();
        // A stray unpaired surrogate is survivable; a file of them is not UTF-16 at all.
        if bad * 100 > text.chars().count().max(1) {
            return Err(IngestError::InvalidText(format!(
                "not valid {} ({bad} malformed code units)",
                encoding.name()
            )));
        }
    }
    if text.contains('\0') {
        return Err(IngestError::Binary(format!(
            "NUL characters in {} text",
            encoding.name()
        )));
    }
    Ok(text.into_owned())
}

/// UTF-16 without a BOM shows as NUL bytes at every other position (in text that is mostly
/// ASCII, as Western text is).
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    let sample = &bytes[..bytes.len().min(SNIFF_BYTES) & !1];
    if sample.len() < 8 {
        return None;
    }
    let pairs = sample.len() / 2;
    let even_zeros = sample.iter().step_by(2).filter(|b| **b == 0).count();
    let odd_zeros = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|b| **b == 0)
        .count();
    let mostly = |n: usize| n * 10 >= pairs * 7;
    let rarely = |n: usize| n * 20 <= pairs;
    if mostly(odd_zeros) && rarely(even_zeros) {
        Some(UTF_16LE)
    } else if mostly(even_zeros) && rarely(odd_zeros) {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Why bytes are not text, if they are not: a known binary signature, NUL bytes, or many
/// control characters.
pub(crate) fn binary_kind(bytes: &[u8]) -> Option<String> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"\x7fELF", "an executable (ELF)"),
        (b"MZ", "a Windows executable"),
        (b"\x1f\x8b", "a gzip archive"),
        (b"PK\x03\x04", "a zip archive"),
        (b"7z\xbc\xaf", "a 7-Zip archive"),
        (b"Rar!", "a RAR archive"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "a legacy Office file (.doc/.xls/.ppt)",
        ),
        (b"%PDF-", "a PDF"),
    ];
    if let Some((_, name)) = SIGNATURES
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
    {
        return Some(format!("{name}, not text"));
    }
    let sample = &bytes[..bytes.len().min(SNIFF_BYTES)];
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Some(format!("a NUL byte at offset {at}: binary data, not text"));
    }
    let controls = sample
        .iter()
        .filter(|b| matches!(**b, 0x01..=0x08 | 0x0e..=0x1a | 0x1c..=0x1f | 0x7f))
        .count();
    if controls * 100 > sample.len() * 2 {
        return Some(format!(
            "{controls} control bytes in the first {} bytes: binary data, not text",
            sample.len()
        ));
    }
    None
}

/// Text that is not valid UTF-8. If it is mostly UTF-8 (valid multi-byte sequences are not far
/// outnumbered by invalid bytes), it is UTF-8 with a few broken bytes, and each of those is read as
/// Windows-1252 (a stray Latin-1 `ó` in an otherwise UTF-8 file comes out right; a truncated
/// sequence becomes its Windows-1252 characters rather than vanishing). Otherwise the whole
/// file is Windows-1252.
fn decode_not_utf8(bytes: &[u8]) -> String {
    let mut valid_multibyte = 0usize;
    let mut invalid = 0usize;
    for chunk in bytes.utf8_chunks() {
        valid_multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        invalid += chunk.invalid().len();
    }
    // A valid multi-byte sequence almost never occurs by chance in Windows-1252 text (it takes
    // a letter such as `Ã` followed by a C1 punctuation byte), so a few of them say UTF-8.
    if valid_multibyte == 0 || valid_multibyte * 4 < invalid {
        return WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
            .into_owned();
    }
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            text.push_str(&WINDOWS_1252.decode_without_bom_handling(chunk.invalid()).0);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_read_as_is() {
        assert_eq!(decode_text("ação señal".as_bytes()).unwrap(), "ação señal");
    }

    #[test]
    fn latin1_is_read_as_windows_1252() {
        assert_eq!(
            decode_text(b"a\xe7\xe3o se\xf1al \x93quoted\x94").unwrap(),
            "ação señal \u{201c}quoted\u{201d}"
        );
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let le: Vec<u8> = "ação señal"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let be: Vec<u8> = "ação señal"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        assert_eq!(
            decode_text(&[&[0xff, 0xfe], &le[..]].concat()).unwrap(),
            "ação señal"
        );
        assert_eq!(
            decode_text(&[&[0xfe, 0xff], &be[..]].concat()).unwrap(),
            "ação señal"
        );
        assert_eq!(decode_text(&le).unwrap(), "ação señal");
        assert_eq!(decode_text(&be).unwrap(), "ação señal");
    }

    #[test]
    fn mostly_utf8_with_a_stray_latin1_byte() {
        assert_eq!(
            decode_text(b"Informaci\xc3\xb3n y acci\xf3n").unwrap(),
            "Información y acción"
        );
    }

    #[test]
    fn binary_is_refused() {
        assert!(matches!(
            decode_text(b"abc\0def"),
            Err(IngestError::Binary(_))
        ));
        assert!(matches!(
            decode_text(b"\x89PNG\r\n\x1a\n...."),
            Err(IngestError::Binary(k)) if k.contains("PNG")
        ));
        let noisy: Vec<u8> = (0..400u32).map(|i| (i % 9) as u8 + 1).collect();
        assert!(matches!(decode_text(&noisy), Err(IngestError::Binary(_))));
    }
}
