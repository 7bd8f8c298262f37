//! The Qdrant Edge index: filters inside the query, replacement of a document's chunks,
//! persistence across reopening.

use verity_core::{
    Chunk, IndexedChunk, Language, RetrievalMode, SearchFilter, SearchQuery, VectorIndex, chunk_id,
};
use verity_retrieve::EdgeIndex;

fn dense(vector: &[f32]) -> SearchQuery {
    SearchQuery {
        text: String::new(),
        vector: vector.to_vec(),
        language: Language::English,
        mode: RetrievalMode::Dense,
    }
}

fn indexed(collection: &str, document: &str, ordinal: u32, vector: [f32; 4]) -> IndexedChunk {
    let text = format!("{document} chunk {ordinal}");
    IndexedChunk {
        collection: collection.into(),
        title: format!("{document} title"),
        source: format!("/kb/{document}.md"),
        language: Language::English,
        tags: vec![],
        modified: None,
        chunk: Chunk {
            id: chunk_id(document, ordinal, 0, &text),
            document_id: document.into(),
            ordinal,
            start: 10 * ordinal as usize,
            end: 10 * ordinal as usize + text.len(),
            text,
            heading_path: vec!["A".into(), "B".into()],
            token_count: 3,
        },
        vector: vector.to_vec(),
    }
}

async fn publish(index: &EdgeIndex) {
    for document in ["d1", "d2"] {
        index.publish_document(document).await.unwrap();
    }
}

#[tokio::test]
async fn written_chunks_stay_hidden_until_their_document_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let index = EdgeIndex::open(dir.path(), 4).unwrap();
    index
        .upsert(&[
            indexed("a", "d1", 0, [1.0, 0.0, 0.0, 0.0]),
            indexed("a", "d2", 0, [0.9, 0.1, 0.0, 0.0]),
        ])
        .await
        .unwrap();
    let query = dense(&[1.0, 0.0, 0.0, 0.0]);
    assert!(
        index
            .search(&query, &SearchFilter::collection("a"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let points = index.list_points("a").await.unwrap();
    assert_eq!(points.len(), 2);
    assert!(points.iter().all(|p| !p.visible));

    index.publish_document("d1").await.unwrap();
    let found = index
        .search(&query, &SearchFilter::collection("a"), 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].document_id, "d1");

    index
        .delete_chunks(&[found[0].chunk_id.clone()])
        .await
        .unwrap();
    let left = index.list_points("a").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].document_id, "d2");
}

#[tokio::test]
async fn search_sees_only_the_collections_in_its_filter() {
    let dir = tempfile::tempdir().unwrap();
    let index = EdgeIndex::open(dir.path(), 4).unwrap();
    index
        .upsert(&[
            indexed("a", "d1", 0, [1.0, 0.0, 0.0, 0.0]),
            indexed("b", "d2", 0, [1.0, 0.0, 0.0, 0.0]),
        ])
        .await
        .unwrap();
    publish(&index).await;

    let found = index
        .search(
            &dense(&[1.0, 0.0, 0.0, 0.0]),
            &SearchFilter::collection("a"),
            10,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let hit = &found[0];
    assert_eq!(
        (hit.collection.as_str(), hit.document_id.as_str()),
        ("a", "d1")
    );
    assert_eq!(hit.heading_path, ["A", "B"]);
    assert_eq!((hit.start, hit.end), (0, "d1 chunk 0".len()));
    assert!((hit.score - 1.0).abs() < 1e-5);

    assert!(
        index
            .search(&dense(&[1.0, 0.0, 0.0, 0.0]), &SearchFilter::default(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        index.count(&SearchFilter::collection("b")).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn deleting_a_document_keeps_only_the_chunks_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let index = EdgeIndex::open(dir.path(), 4).unwrap();
    let keep = indexed("a", "d1", 1, [0.0, 1.0, 0.0, 0.0]);
    index
        .upsert(&[
            indexed("a", "d1", 0, [1.0, 0.0, 0.0, 0.0]),
            keep.clone(),
            indexed("a", "d2", 0, [0.0, 0.0, 1.0, 0.0]),
        ])
        .await
        .unwrap();
    publish(&index).await;

    index
        .delete_document_chunks("d1", std::slice::from_ref(&keep.chunk.id))
        .await
        .unwrap();
    let found = index
        .search(
            &dense(&[1.0, 1.0, 1.0, 0.0]),
            &SearchFilter::collection("a"),
            10,
        )
        .await
        .unwrap();
    let mut ids: Vec<String> = found.iter().map(|c| c.chunk_id.clone()).collect();
    ids.sort();
    let mut expected = vec![
        keep.chunk.id.clone(),
        indexed("a", "d2", 0, [0.0; 4]).chunk.id,
    ];
    expected.sort();
    assert_eq!(ids, expected);

    index.delete_document_chunks("d1", &[]).await.unwrap();
    assert_eq!(
        index.count(&SearchFilter::collection("a")).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn the_index_persists_and_refuses_another_dimension() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = EdgeIndex::open(dir.path(), 4).unwrap();
        index
            .upsert(&[indexed("a", "d1", 0, [1.0, 0.0, 0.0, 0.0])])
            .await
            .unwrap();
        publish(&index).await;
        index.optimize().await.unwrap();
    }
    let reopened = EdgeIndex::open(dir.path(), 4).unwrap();
    assert_eq!(
        reopened
            .count(&SearchFilter::collection("a"))
            .await
            .unwrap(),
        1
    );
    drop(reopened);
    let err = EdgeIndex::open(dir.path(), 8).unwrap_err();
    assert!(err.to_string().contains("dimension"), "{err}");
}

#[tokio::test]
async fn a_vector_of_the_wrong_dimension_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let index = EdgeIndex::open(dir.path(), 4).unwrap();
    assert!(
        index
            .search(&dense(&[1.0, 0.0]), &SearchFilter::collection("a"), 3)
            .await
            .is_err()
    );
}
