//! Every supported format is read into the text a reader would see, with the structure the
//! chunker and citations need: headings, pages, rows with their headers.

use std::path::{Path, PathBuf};

use verity_core::{DocumentFormat, ParsedDocument};
use verity_ingest::{Chunker, ChunkerConfig, ParseLimits, fixtures, parse_document};

fn parse(name: &str, bytes: &[u8]) -> ParsedDocument {
    parse_document(
        bytes.to_vec(),
        Path::new(name),
        "fallback",
        &ParseLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn model_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("VERITY_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [
        // The default model's tokenizer (scripts/setup.sh installs it), else all-MiniLM-L6-v2's.
        manifest.join("../../data/models/multilingual-e5-small"),
        manifest.join("../../../shared/models/multilingual-e5-small"),
        manifest.join("../../data/models/all-MiniLM-L6-v2-onnx"),
        manifest.join("../../../shared/models/all-MiniLM-L6-v2-onnx"),
    ]
    .into_iter()
    .find(|p| p.join("tokenizer.json").exists())
    .expect("the embedding model is missing: run scripts/setup.sh or set VERITY_MODEL_DIR")
}

fn chunker(target_tokens: usize, max_tokens: usize) -> Chunker {
    Chunker::from_model_dir(
        &model_dir(),
        ChunkerConfig {
            target_tokens,
            max_tokens,
        },
    )
    .unwrap()
}

#[test]
fn a_multi_page_pdf_keeps_its_page_numbers_in_every_chunk() {
    let pages = [
        "Travel policy\nTrains are booked in second class.\nFlights need approval.",
        "",
        "Mileage is refunded at 0.30 per kilometre.\nParking receipts are required.",
        "Ação e señal: Latin-1 text in a PDF page.",
    ];
    let bytes = fixtures::pdf(&pages, Some("Travel Policy 2026"));
    let doc = parse("travel.pdf", &bytes);
    assert_eq!(doc.format, DocumentFormat::Pdf);
    assert_eq!(doc.title, "Travel Policy 2026");
    assert_eq!(doc.pages.len(), 4, "{:?}", doc.pages);
    assert!(
        doc.text.starts_with("Travel policy\nTrains are booked"),
        "{}",
        doc.text
    );
    assert!(doc.text.contains("Flights need approval."));
    assert!(doc.text.contains("Ação e señal"), "{}", doc.text);
    let offset = |needle: &str| doc.text[..doc.text.find(needle).unwrap()].chars().count();
    assert_eq!(doc.page_at(offset("Trains")), Some(1));
    assert_eq!(doc.page_at(offset("Mileage")), Some(3));
    assert_eq!(doc.page_at(offset("Parking")), Some(3));
    assert_eq!(doc.page_at(offset("Ação")), Some(4));

    // Small chunks: each knows the page it starts on, and its span is exact.
    let chunks = chunker(8, 16).chunk("travel", &doc);
    assert!(chunks.len() >= 3, "{chunks:#?}");
    for chunk in &chunks {
        let span: String = doc
            .text
            .chars()
            .skip(chunk.start)
            .take(chunk.end - chunk.start)
            .collect();
        assert_eq!(span, chunk.text);
        assert_eq!(chunk.page, doc.page_at(chunk.start));
        // No chunk spans a page break: its last character is on its first one's page.
        assert_eq!(doc.page_at(chunk.end - 1), chunk.page, "{chunk:#?}");
    }
    // With the default sizes, the short pages are still cut apart.
    let whole = chunker(48, 250).chunk("travel", &doc);
    let pages: Vec<_> = whole.iter().map(|c| c.page).collect();
    assert_eq!(pages, [Some(1), Some(3), Some(4)]);
    let page_of = |needle: &str| {
        chunks
            .iter()
            .find(|c| c.text.contains(needle))
            .unwrap()
            .page
    };
    assert_eq!(page_of("Trains"), Some(1));
    assert_eq!(page_of("Mileage"), Some(3));
    assert_eq!(page_of("Latin-1"), Some(4));
}

#[test]
fn a_pdf_is_recognised_by_its_content_whatever_its_name() {
    let bytes = fixtures::pdf(&["Scanned expense form, text layer."], None);
    let doc = parse("upload.bin.txt", &bytes);
    assert_eq!(doc.format, DocumentFormat::Pdf);
    assert_eq!(doc.pages, vec![0]);
    assert_eq!(doc.title, "fallback");
}

#[test]
fn a_docx_keeps_headings_paragraphs_lists_and_tables() {
    let body = r#"
      <w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>Onboarding guide</w:t></w:r></w:p>
      <w:p><w:r><w:t xml:space="preserve">Welcome to </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>Quillacollo</w:t></w:r><w:r><w:t> &amp; partners.</w:t></w:r></w:p>
      <w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>First day</w:t></w:r></w:p>
      <w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>Collect your badge</w:t></w:r></w:p>
      <w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>Meet your buddy</w:t></w:r></w:p>
      <w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Contacts</w:t></w:r></w:p>
      <w:tbl>
        <w:tr><w:tc><w:p><w:r><w:t>Team</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Extension</w:t></w:r></w:p></w:tc></w:tr>
        <w:tr><w:tc><w:p><w:r><w:t>IT desk</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>4410</w:t></w:r></w:p></w:tc></w:tr>
        <w:tr><w:tc><w:p><w:r><w:t>Facilities</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>4420</w:t></w:r></w:p></w:tc></w:tr>
      </w:tbl>
      <w:p><w:r><w:t>Deleted: </w:t></w:r><w:del><w:r><w:delText>old text</w:delText></w:r></w:del><w:r><w:t>kept.</w:t></w:r></w:p>
    "#;
    let doc = parse("onboarding.docx", &fixtures::docx(body));
    assert_eq!(doc.format, DocumentFormat::Docx);
    assert_eq!(doc.title, "Onboarding guide");
    assert_eq!(
        doc.text,
        "# Onboarding guide\n\nWelcome to Quillacollo & partners.\n\n## First day\n\n- Collect your badge\n\n- Meet your buddy\n\n## Contacts\n\nTeam | Extension\nIT desk | 4410\nFacilities | 4420\n\nDeleted: kept."
    );
    let headings: Vec<_> = doc
        .headings
        .iter()
        .map(|h| (h.level, h.title.as_str()))
        .collect();
    assert_eq!(
        headings,
        [(1, "Onboarding guide"), (2, "First day"), (2, "Contacts")]
    );
    let chunks = chunker(4, 40).chunk("onboarding", &doc);
    let table = chunks.iter().find(|c| c.text.contains("IT desk")).unwrap();
    assert_eq!(table.heading_path, ["Onboarding guide", "Contacts"]);
    assert!(chunks.iter().all(|c| c.page.is_none()));
}

#[test]
fn docx_headings_come_from_style_ids_without_a_styles_part() {
    let body = r#"<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Leave</w:t></w:r></w:p>
        <w:p><w:pPr><w:outlineLvl w:val="1"/></w:pPr><w:r><w:t>Carry-over</w:t></w:r></w:p>
        <w:p><w:r><w:t>Five days.</w:t></w:r></w:p>"#;
    let doc = parse("leave.docx", &fixtures::docx_with_parts(body, false));
    assert_eq!(doc.text, "# Leave\n\n## Carry-over\n\nFive days.");
}

#[test]
fn latin1_and_utf16_spanish_and_portuguese_come_out_right() {
    let text = "Señal de evacuación: la acción y la atenção são obrigatórias.";
    let (latin1, _, _) = encoding_rs::WINDOWS_1252.encode(text);
    assert_eq!(parse("aviso.txt", &latin1).text, text);
    let utf16le: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(parse("aviso.txt", &utf16le).text, text);
    let utf16be: Vec<u8> = [0xfe, 0xff]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    assert_eq!(parse("aviso.md", &utf16be).text, text);
    let markdown = format!("# Atenção\n\n{text}");
    let (latin1_md, _, _) = encoding_rs::WINDOWS_1252.encode(&markdown);
    let doc = parse("aviso.md", &latin1_md);
    assert_eq!(doc.title, "Atenção");
    // An HTML page saved as UTF-16 is still recognised as HTML.
    let html =
        format!("<!DOCTYPE html><html><body><main><h1>Ação</h1><p>{text}</p></main></body></html>");
    let utf16_html: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(html.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let doc = parse("page", &utf16_html);
    assert_eq!(doc.format, DocumentFormat::Html);
    assert_eq!(doc.text, format!("# Ação\n\n{text}"));
}

#[test]
fn csv_rows_keep_their_headers_and_chunks_keep_rows_whole() {
    let mut csv = String::from("Nombre;Departamento;Extensión;Notas\n");
    for i in 0..40 {
        csv.push_str(&format!(
            "Persona {i};Finanzas;{};\"Atiende de 9 a 17, piso {}\"\n",
            4400 + i,
            i % 5
        ));
    }
    let (latin1, _, _) = encoding_rs::WINDOWS_1252.encode(&csv);
    let doc = parse("directorio.csv", &latin1);
    assert_eq!(doc.format, DocumentFormat::Csv);
    assert!(
        doc.text.starts_with(
            "Nombre: Persona 0\nDepartamento: Finanzas\nExtensión: 4400\nNotas: Atiende de 9 a 17, piso 0\n\nNombre: Persona 1"
        ),
        "{}",
        doc.text
    );
    let chunks = chunker(48, 120).chunk("directorio", &doc);
    assert!(
        chunks.len() > 5 && chunks.len() < 40,
        "{} chunks",
        chunks.len()
    );
    for chunk in &chunks {
        let span: String = doc
            .text
            .chars()
            .skip(chunk.start)
            .take(chunk.end - chunk.start)
            .collect();
        assert_eq!(span, chunk.text);
        // Whole rows: every chunk starts with a row's first field and ends with its last.
        assert!(chunk.text.starts_with("Nombre: "), "{:?}", chunk.text);
        assert!(
            chunk
                .text
                .rsplit('\n')
                .next()
                .unwrap()
                .starts_with("Notas: "),
            "{:?}",
            chunk.text
        );
        assert!(chunk.token_count <= 120);
    }
}

#[test]
fn markdown_with_broken_bytes_is_read_with_the_stray_bytes_as_latin1() {
    let bytes = b"# Pol\xc3\xadtica de viajes\n\nLa acci\xf3n requiere aprobaci\xc3\xb3n.\n";
    let doc = parse("viajes.md", bytes);
    assert_eq!(doc.title, "Política de viajes");
    assert_eq!(
        doc.text,
        "# Política de viajes\n\nLa acción requiere aprobación."
    );
}
