//! Small, valid documents built in code, for tests and benchmark corpora: a PDF with one text
//! page per string, and a DOCX around given body XML.

use std::io::Write;

use encoding_rs::WINDOWS_1252;

/// A PDF with one page per entry of `pages`, each line of an entry a line of text (Helvetica,
/// WinAnsi encoding, so Latin-1 text such as "ação" shows as written); `title` goes into the
/// document information dictionary.
pub fn pdf(pages: &[&str], title: Option<&str>) -> Vec<u8> {
    let contents: Vec<Vec<u8>> = pages
        .iter()
        .map(|page| {
            let mut content = b"BT /F1 12 Tf 72 720 Td 14 TL".to_vec();
            for (j, line) in page.lines().enumerate() {
                content.extend_from_slice(if j == 0 { b" " } else { b" T* " });
                content.extend_from_slice(&pdf_string(line));
                content.extend_from_slice(b" Tj");
            }
            content.extend_from_slice(b" ET");
            content
        })
        .collect();
    pdf_of_contents(&contents, title)
}

/// A PDF with one page per content stream (operators as written; font `/F1` is Helvetica,
/// WinAnsi), for tests of what the content operators do to the text.
pub fn pdf_of_contents(contents: &[Vec<u8>], title: Option<&str>) -> Vec<u8> {
    let n = contents.len();
    // Objects: 1 catalog, 2 page tree, 3 font, 4 info, then a page and its content per page.
    let mut objects: Vec<Vec<u8>> = Vec::new();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 5 + 2 * i)).collect();
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes());
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    let mut info = b"<< /Producer (verity fixtures)".to_vec();
    if let Some(title) = title {
        info.extend_from_slice(b" /Title ");
        info.extend_from_slice(&pdf_string(title));
    }
    info.extend_from_slice(b" >>");
    objects.push(info);
    for (i, content) in contents.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                6 + 2 * i
            )
            .into_bytes(),
        );
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(content);
        stream.extend_from_slice(b"\nendstream");
        objects.push(stream);
    }
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(object);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 4 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A PDF literal string in WinAnsi bytes, with `(`, `)` and `\` escaped.
fn pdf_string(text: &str) -> Vec<u8> {
    let (bytes, _, _) = WINDOWS_1252.encode(text);
    let mut out = vec![b'('];
    for &b in bytes.iter() {
        if matches!(b, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b')');
    out
}

/// The `w:` namespace body of a Word document (`<w:p>…</w:p>` elements) packaged as a DOCX,
/// with the built-in heading styles in `word/styles.xml`.
pub fn docx(body_xml: &str) -> Vec<u8> {
    docx_with_parts(body_xml, true)
}

/// [`docx`], with or without `word/styles.xml`.
pub fn docx_with_parts(body_xml: &str, with_styles: bool) -> Vec<u8> {
    docx_package(body_xml, with_styles.then_some(""))
}

/// [`docx`] whose `word/styles.xml` also holds `extra_styles` (`<w:style>` elements).
pub fn docx_with_styles(body_xml: &str, extra_styles: &str) -> Vec<u8> {
    docx_package(body_xml, Some(extra_styles))
}

/// A DOCX around `body_xml`; `styles`: `None` for no `word/styles.xml`, else the styles added
/// to the built-in headings.
fn docx_package(body_xml: &str, styles_extra: Option<&str>) -> Vec<u8> {
    const W: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="{W}"><w:body>{body_xml}<w:sectPr/></w:body></w:document>"#
    );
    let mut styles = format!(r#"<?xml version="1.0" encoding="UTF-8"?><w:styles xmlns:w="{W}">"#);
    styles.push_str(
        r#"<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/></w:style>"#,
    );
    for level in 1..=6 {
        styles.push_str(&format!(
            r#"<w:style w:type="paragraph" w:styleId="Heading{level}"><w:name w:val="heading {level}"/><w:basedOn w:val="Normal"/></w:style>"#
        ));
    }
    styles.push_str(styles_extra.unwrap_or_default());
    styles.push_str("</w:styles>");
    let mut parts: Vec<(&str, String)> = vec![
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.to_string(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#.to_string(),
        ),
        ("word/document.xml", document),
    ];
    if styles_extra.is_some() {
        parts.push(("word/styles.xml", styles));
    }
    zip_parts(
        &parts
            .iter()
            .map(|(n, c)| (*n, c.as_bytes()))
            .collect::<Vec<_>>(),
    )
}

/// A zip archive (deflated) of the given parts.
pub fn zip_parts(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in parts {
        writer.start_file(*name, options).expect("zip entry");
        writer.write_all(content).expect("zip write");
    }
    writer.finish().expect("zip finish").into_inner()
}
