//! The SQLite store: document lifecycle, chunk replacement, cascading deletes.

use verity_core::Chunk;
use verity_store::{DocumentRecord, Store};

fn record(id: &str, collection: &str, hash: &str) -> DocumentRecord {
    DocumentRecord {
        id: id.into(),
        collection: collection.into(),
        source: format!("/kb/{id}.md"),
        title: "Title".into(),
        format: "markdown".into(),
        content_hash: hash.into(),
        pipeline: "p1".into(),
        text: "Hello world. Bye.".into(),
        language: "en".into(),
        tags: vec!["hr".into()],
        modified: Some(1_700_000_000),
    }
}

fn chunk(document_id: &str, ordinal: u32, text: &str) -> Chunk {
    Chunk {
        id: format!("{document_id}-{ordinal}-{text}"),
        document_id: document_id.into(),
        ordinal,
        start: 0,
        end: text.chars().count(),
        text: text.into(),
        heading_path: vec!["Title".into(), "Section".into()],
        token_count: 3,
    }
}

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("db").join("verity.sqlite3"))
        .await
        .unwrap();
    (store, dir)
}

#[tokio::test]
async fn a_written_document_is_indexing_until_marked_active() {
    let (store, _dir) = store().await;
    store.ensure_collection("kb").await.unwrap();
    store.ensure_collection("kb").await.unwrap();
    assert!(store.collection_exists("kb").await.unwrap());
    assert!(!store.collection_exists("other").await.unwrap());

    let previous = store
        .write_document(&record("d1", "kb", "h1"), &[chunk("d1", 0, "Hello world.")])
        .await
        .unwrap();
    assert!(previous.is_empty());
    let state = store.document_state("d1").await.unwrap().unwrap();
    assert!(!state.active);
    assert_eq!((state.content_hash.as_str(), state.version), ("h1", 1));

    store.mark_active("d1").await.unwrap();
    assert!(store.document_state("d1").await.unwrap().unwrap().active);
}

#[tokio::test]
async fn rewriting_a_document_replaces_its_chunks_and_bumps_its_version() {
    let (store, _dir) = store().await;
    store.ensure_collection("kb").await.unwrap();
    store
        .write_document(
            &record("d1", "kb", "h1"),
            &[chunk("d1", 0, "old a"), chunk("d1", 1, "old b")],
        )
        .await
        .unwrap();
    store.mark_active("d1").await.unwrap();

    let previous = store
        .write_document(&record("d1", "kb", "h2"), &[chunk("d1", 0, "new")])
        .await
        .unwrap();
    assert_eq!(previous, ["d1-0-old a", "d1-1-old b"]);
    let chunks = store.chunks_of("d1").await.unwrap();
    assert_eq!(chunks, [chunk("d1", 0, "new")]);
    let state = store.document_state("d1").await.unwrap().unwrap();
    assert_eq!((state.version, state.active), (2, false));
}

#[tokio::test]
async fn deleting_a_collection_deletes_its_documents_and_chunks() {
    let (store, _dir) = store().await;
    for collection in ["a", "b"] {
        store.ensure_collection(collection).await.unwrap();
    }
    store
        .write_document(&record("d1", "a", "h"), &[chunk("d1", 0, "x")])
        .await
        .unwrap();
    store
        .write_document(&record("d2", "b", "h"), &[chunk("d2", 0, "y")])
        .await
        .unwrap();

    store.delete_collection("a").await.unwrap();
    assert!(store.document_state("d1").await.unwrap().is_none());
    assert!(store.chunks_of("d1").await.unwrap().is_empty());
    assert_eq!(store.documents_in_collection("b").await.unwrap().len(), 1);
    assert_eq!(store.list_collections().await.unwrap(), ["b"]);
}

#[tokio::test]
async fn a_document_in_an_unknown_collection_is_refused() {
    let (store, _dir) = store().await;
    assert!(
        store
            .write_document(&record("d1", "missing", "h"), &[])
            .await
            .is_err()
    );
}
