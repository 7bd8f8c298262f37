//! One contract, every index: each test runs on a Qdrant Edge shard (always) and on a Qdrant
//! server when `QDRANT_URL` names one (gRPC, e.g. http://127.0.0.1:6334), in a Qdrant collection
//! of its own. Edge-only tests (files on disk) follow.

use std::future::Future;
use std::sync::Arc;

use verity_core::{
    Chunk, IndexedChunk, Language, RetrievalMode, SearchFilter, SearchQuery, VectorIndex, chunk_id,
};
use verity_retrieve::{EdgeIndex, QdrantServerIndex};

fn query(text: &str, vector: &[f32], mode: RetrievalMode) -> SearchQuery {
    SearchQuery {
        text: text.into(),
        vector: vector.to_vec(),
        language: Language::English,
        mode,
        fusion: verity_core::Fusion::default(),
    }
}

fn dense(vector: &[f32]) -> SearchQuery {
    query("", vector, RetrievalMode::Dense)
}

fn indexed(collection: &str, document: &str, ordinal: u32, vector: [f32; 4]) -> IndexedChunk {
    with_text(
        collection,
        document,
        ordinal,
        vector,
        &format!("{document} chunk {ordinal}"),
    )
}

fn with_text(
    collection: &str,
    document: &str,
    ordinal: u32,
    vector: [f32; 4],
    text: &str,
) -> IndexedChunk {
    IndexedChunk {
        collection: collection.into(),
        title: format!("{document} title"),
        source: format!("/kb/{document}.md"),
        language: Language::English,
        tags: vec![],
        groups: vec![],
        modified: None,
        chunk: Chunk {
            id: chunk_id(document, ordinal, 0, text),
            document_id: document.into(),
            ordinal,
            start: 10 * ordinal as usize,
            end: 10 * ordinal as usize + text.chars().count(),
            text: text.into(),
            heading_path: vec!["A".into(), "B".into()],
            token_count: 3,
            page: None,
        },
        vector: vector.to_vec(),
    }
}

async fn publish(index: &dyn VectorIndex, documents: &[&str]) {
    for document in documents {
        index.publish_document(document).await.unwrap();
    }
}

async fn on_edge<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn VectorIndex>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    test(Arc::new(EdgeIndex::open(dir.path(), 4).unwrap())).await;
}

async fn on_server<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn VectorIndex>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Ok(url) = std::env::var("QDRANT_URL") else {
        eprintln!("Qdrant server contract test not run: QDRANT_URL is not set");
        return;
    };
    let collection = format!("verity_test_{}", uuid::Uuid::new_v4().simple());
    let index = QdrantServerIndex::connect(&url, None, &collection, 4)
        .await
        .unwrap();
    test(Arc::new(index)).await;
}

/// Declares one contract test as a module with an `edge` and a `server` case.
macro_rules! contract {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn edge() {
                on_edge($body).await;
            }

            #[tokio::test]
            async fn server() {
                on_server($body).await;
            }
        }
    };
}

contract!(
    a_chunk_of_a_paged_document_comes_back_with_its_page,
    |index: Arc<dyn VectorIndex>| async move {
        let mut paged = indexed("a", "d1", 0, [1.0, 0.0, 0.0, 0.0]);
        paged.chunk.page = Some(12);
        index
            .upsert(&[paged, indexed("a", "d2", 0, [0.0, 1.0, 0.0, 0.0])])
            .await
            .unwrap();
        publish(index.as_ref(), &["d1", "d2"]).await;
        let found = index
            .search(
                &dense(&[1.0, 0.0, 0.0, 0.0]),
                &SearchFilter::collection("a"),
                10,
            )
            .await
            .unwrap();
        let page_of = |document: &str| {
            found
                .iter()
                .find(|c| c.document_id == document)
                .unwrap()
                .page
        };
        assert_eq!(page_of("d1"), Some(12));
        assert_eq!(page_of("d2"), None);
    }
);

contract!(
    written_chunks_stay_hidden_until_their_document_is_published,
    |index: Arc<dyn VectorIndex>| async move {
        index
            .upsert(&[
                indexed("a", "d1", 0, [1.0, 0.0, 0.0, 0.0]),
                indexed("a", "d2", 0, [0.9, 0.1, 0.0, 0.0]),
            ])
            .await
            .unwrap();
        let probe = dense(&[1.0, 0.0, 0.0, 0.0]);
        assert!(
            index
                .search(&probe, &SearchFilter::collection("a"), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let points = index.list_points("a").await.unwrap();
        assert_eq!(points.len(), 2);
        assert!(points.iter().all(|p| !p.visible));

        index.publish_document("d1").await.unwrap();
        let found = index
            .search(&probe, &SearchFilter::collection("a"), 10)
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
);

contract!(
    search_sees_only_documents_readable_by_the_callers_groups,
    |index: Arc<dyn VectorIndex>| async move {
        let mut hr = indexed("a", "hr", 0, [1.0, 0.0, 0.0, 0.0]);
        hr.groups = vec!["hr".into()];
        let mut finance = indexed("a", "finance", 0, [1.0, 0.0, 0.0, 0.0]);
        finance.groups = vec!["finance".into(), "board".into()];
        let public = indexed("a", "public", 0, [1.0, 0.0, 0.0, 0.0]);
        index.upsert(&[hr, finance, public]).await.unwrap();
        publish(index.as_ref(), &["hr", "finance", "public"]).await;

        for mode in RetrievalMode::ALL {
            let probe = query("finance hr public chunk", &[1.0, 0.0, 0.0, 0.0], mode);
            let found = |groups: Option<Vec<String>>| {
                let index = index.clone();
                let probe = probe.clone();
                async move {
                    let filter = SearchFilter {
                        groups,
                        ..SearchFilter::collection("a")
                    };
                    let mut ids: Vec<String> = index
                        .search(&probe, &filter, 10)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|c| c.document_id)
                        .collect();
                    ids.sort();
                    let count = index.count(&filter).await.unwrap();
                    assert_eq!(count, ids.len(), "count agrees with search ({mode})");
                    ids
                }
            };
            assert_eq!(found(None).await, ["finance", "hr", "public"], "{mode}");
            assert_eq!(found(Some(vec![])).await, ["public"], "{mode}");
            assert_eq!(
                found(Some(vec!["hr".into()])).await,
                ["hr", "public"],
                "{mode}"
            );
            assert_eq!(
                found(Some(vec!["board".into(), "sales".into()])).await,
                ["finance", "public"],
                "{mode}"
            );
        }
    }
);

contract!(
    search_sees_only_the_collections_in_its_filter,
    |index: Arc<dyn VectorIndex>| async move {
        index
            .upsert(&[
                indexed("a", "d1", 0, [1.0, 0.0, 0.0, 0.0]),
                indexed("b", "d2", 0, [1.0, 0.0, 0.0, 0.0]),
            ])
            .await
            .unwrap();
        publish(index.as_ref(), &["d1", "d2"]).await;

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
        assert!((hit.similarity - 1.0).abs() < 1e-5);

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
);

contract!(
    deleting_a_document_keeps_only_the_chunks_asked_for,
    |index: Arc<dyn VectorIndex>| async move {
        let keep = indexed("a", "d1", 1, [0.0, 1.0, 0.0, 0.0]);
        index
            .upsert(&[
                indexed("a", "d1", 0, [1.0, 0.0, 0.0, 0.0]),
                keep.clone(),
                indexed("a", "d2", 0, [0.0, 0.0, 1.0, 0.0]),
            ])
            .await
            .unwrap();
        publish(index.as_ref(), &["d1", "d2"]).await;

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
);

contract!(
    sparse_and_hybrid_search_find_words_the_dense_vector_does_not,
    |index: Arc<dyn VectorIndex>| async move {
        // d1 is nearest by vector; only d2 contains the code the question asks about.
        index
            .upsert(&[
                with_text(
                    "a",
                    "d1",
                    0,
                    [1.0, 0.0, 0.0, 0.0],
                    "Visitors park on level two.",
                ),
                with_text(
                    "a",
                    "d2",
                    0,
                    [0.0, 1.0, 0.0, 0.0],
                    "The gate code is ZEBRA-4471 on weekends.",
                ),
                with_text(
                    "a",
                    "d3",
                    0,
                    [0.0, 0.0, 1.0, 0.0],
                    "Bicycles park near the entrance.",
                ),
            ])
            .await
            .unwrap();
        publish(index.as_ref(), &["d1", "d2", "d3"]).await;
        let vector = [1.0, 0.0, 0.0, 0.0];
        let filter = SearchFilter::collection("a");

        let sparse = index
            .search(
                &query("gate code ZEBRA-4471", &vector, RetrievalMode::Sparse),
                &filter,
                3,
            )
            .await
            .unwrap();
        assert_eq!(sparse[0].document_id, "d2");
        assert_eq!(sparse.len(), 1, "only d2 contains the words");
        assert!(
            sparse[0].similarity.abs() < 1e-5,
            "similarity is the cosine to the question vector"
        );

        let hybrid = index
            .search(
                &query("gate code ZEBRA-4471", &vector, RetrievalMode::Hybrid),
                &filter,
                3,
            )
            .await
            .unwrap();
        let ids: Vec<&str> = hybrid.iter().map(|c| c.document_id.as_str()).collect();
        assert!(
            ids[..2].contains(&"d1") && ids[..2].contains(&"d2"),
            "{ids:?}: the best of each list comes first"
        );

        let nothing = index
            .search(
                &query("the of and", &vector, RetrievalMode::Sparse),
                &filter,
                3,
            )
            .await
            .unwrap();
        assert!(
            nothing.is_empty(),
            "a question of stop words matches no words"
        );
    }
);

contract!(metadata_filters_apply_inside_the_query, |index: Arc<
    dyn VectorIndex,
>| async move {
    let mut spanish = indexed("a", "d1", 0, [1.0, 0.0, 0.0, 0.0]);
    spanish.language = Language::Spanish;
    spanish.tags = vec!["hr".into()];
    spanish.modified = Some(1_700_000_000);
    spanish.source = "/kb/es/d1.md".into();
    let mut english = indexed("a", "d2", 0, [1.0, 0.0, 0.0, 0.0]);
    english.modified = Some(1_600_000_000);
    index.upsert(&[spanish, english]).await.unwrap();
    publish(index.as_ref(), &["d1", "d2"]).await;
    let probe = dense(&[1.0, 0.0, 0.0, 0.0]);
    let only = |filter: SearchFilter| {
        let (index, probe) = (Arc::clone(&index), probe.clone());
        async move {
            let found = index.search(&probe, &filter, 10).await.unwrap();
            found.into_iter().map(|c| c.document_id).collect::<Vec<_>>()
        }
    };
    let base = SearchFilter::collection("a");
    assert_eq!(
        only(SearchFilter {
            language: Some(Language::Spanish),
            ..base.clone()
        })
        .await,
        ["d1"]
    );
    assert_eq!(
        only(SearchFilter {
            tags: vec!["hr".into(), "it".into()],
            ..base.clone()
        })
        .await,
        ["d1"]
    );
    assert_eq!(
        only(SearchFilter {
            source_prefix: Some("/kb/es".into()),
            ..base.clone()
        })
        .await,
        ["d1"]
    );
    assert_eq!(
        only(SearchFilter {
            modified_until: Some(1_650_000_000),
            ..base.clone()
        })
        .await,
        ["d2"]
    );
    assert_eq!(
        only(SearchFilter {
            modified_from: Some(1_650_000_000),
            ..base.clone()
        })
        .await,
        ["d1"]
    );
});

#[tokio::test]
async fn an_edge_index_persists_and_refuses_another_dimension() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = EdgeIndex::open(dir.path(), 4).unwrap();
        index
            .upsert(&[indexed("a", "d1", 0, [1.0, 0.0, 0.0, 0.0])])
            .await
            .unwrap();
        index.publish_document("d1").await.unwrap();
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
