//! The use cases on the in-memory fakes (feature `testing`): access rules and the write order,
//! in milliseconds, without the embedding model or Qdrant. The end-to-end tests
//! (`tests/e2e`) cover the same paths with the real components.

use verity_core::RetrievalMode;
use verity_core::{
    AnswerService, Caller, Collections, DocumentQuery, DocumentStatus, Documents, IngestJobs,
    JobCreation, JobInput, NewIngestJob, QueryRequest, Scope, SearchFilter, Upload, UploadLimits,
    VectorIndex, VerityError,
};
use verity_service::pipeline::{FileFailure, IngestInput, IngestOptions, Quiet};
use verity_service::testing::{self, IndexCall, MemoryIndex};
use verity_service::worker::WorkerOptions;

fn key(scopes: &[Scope], groups: &[&str]) -> Caller {
    Caller {
        subject: "key:test".into(),
        scopes: scopes.to_vec(),
        collections: None,
        groups: Some(groups.iter().map(|g| g.to_string()).collect()),
    }
}

fn upload(name: &str, text: &str, groups: &[&str]) -> Upload {
    Upload {
        collection: Some("kb".into()),
        file_name: name.into(),
        bytes: text.as_bytes().to_vec(),
        groups: Some(groups.iter().map(|g| g.to_string()).collect()),
        tags: Vec::new(),
    }
}

fn question(text: &str) -> QueryRequest {
    QueryRequest {
        question: text.into(),
        collection: Some("kb".into()),
        top_k: Some(5),
        mode: None,
        filter: None,
        stream: false,
    }
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, VerityError>) -> bool {
    matches!(result, Err(VerityError::Forbidden(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_use_case_checks_its_callers_scope_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (verity, _) = testing::verity(dir.path()).await;
    verity.store().ensure_collection("kb").await.unwrap();
    let asker = key(&[Scope::Query], &[]);
    let uploader = key(&[Scope::Ingest], &[]);

    // Writing needs `ingest`…
    assert!(forbidden(
        verity
            .upload_document(&asker, upload("a.md", "# A\n\nText.", &[]))
            .await
    ));
    let job = NewIngestJob {
        collection: Some("kb".into()),
        groups: None,
        tags: Vec::new(),
        language: None,
        input: JobInput::Paths(vec!["a.md".into()]),
        idempotency_key: None,
    };
    assert!(forbidden(verity.create_job(&asker, job).await));
    let limits = UploadLimits {
        per_file: 1_000,
        total: 1_000,
    };
    assert!(matches!(
        verity.receive_uploads(&asker, limits),
        Err(VerityError::Forbidden(_))
    ));
    assert!(forbidden(verity.ingest_job(&asker, 1).await));
    // …managing collections needs `admin`…
    assert!(forbidden(
        verity.create_collection(&uploader, "new", &[]).await
    ));
    assert!(forbidden(verity.delete_collection(&uploader, "kb").await));
    // …and reading needs `query`.
    assert!(forbidden(
        verity.query(&uploader, question("What is A?")).await
    ));
    let listing = DocumentQuery {
        collection: Some("kb".into()),
        limit: 10,
        cursor: None,
    };
    assert!(forbidden(verity.list_documents(&uploader, listing).await));
    assert!(forbidden(verity.list_collections(&uploader).await));
    let filter = SearchFilter::collection("kb");
    assert!(forbidden(
        verity
            .retrieve(&uploader, "What is A?", &filter, 5, RetrievalMode::Hybrid)
            .await
    ));
    // The ingest entry points and the operator's tasks check too.
    let bytes = IngestInput::Bytes {
        file_name: "a.md".into(),
        source: "a.md".into(),
        bytes: b"# A\n\nText.".to_vec(),
    };
    let options = IngestOptions::new("kb");
    assert!(forbidden(
        verity.ingest(&asker, bytes, &options, &Quiet).await
    ));
    let paths = [dir.path().to_path_buf()];
    assert!(forbidden(verity.enqueue(&asker, &paths, &options).await));
    assert!(forbidden(
        verity.ingest_as_job(&asker, &paths, &options, &Quiet).await
    ));
    assert!(forbidden(verity.reconcile(&uploader, None, false).await));
    assert!(forbidden(
        verity
            .run_worker(&uploader, &WorkerOptions::default())
            .await
    ));

    // With the scope, the same calls go through.
    verity
        .upload_document(&uploader, upload("a.md", "# A\n\nThe answer is A.", &[]))
        .await
        .unwrap();
    let (answer, _) = verity
        .query(&asker, question("What is the answer?"))
        .await
        .unwrap();
    assert!(!answer.citations.is_empty(), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_finds_only_the_passages_its_caller_may_read() {
    let dir = tempfile::tempdir().unwrap();
    let (verity, _) = testing::verity(dir.path()).await;
    verity.store().ensure_collection("kb").await.unwrap();
    let admin = Caller::local();
    verity
        .upload_document(
            &admin,
            upload(
                "vault.md",
                "# Vault\n\nThe vault code is ZEBRA-5521.",
                &["hr"],
            ),
        )
        .await
        .unwrap();
    verity
        .upload_document(
            &admin,
            upload(
                "budget.md",
                "# Budget\n\nThe vault budget is 300 euros.",
                &["finance"],
            ),
        )
        .await
        .unwrap();

    let finance = key(&[Scope::Query], &["finance"]);
    let (answer, _) = verity
        .query(&finance, question("What is the vault code?"))
        .await
        .unwrap();
    assert!(!answer.answer.contains("ZEBRA"), "{}", answer.answer);
    assert!(
        answer.citations.iter().all(|c| c.source.contains("budget")),
        "{:?}",
        answer.citations
    );
    let listing = DocumentQuery {
        collection: Some("kb".into()),
        limit: 10,
        cursor: None,
    };
    let page = verity.list_documents(&finance, listing).await.unwrap();
    let titles: Vec<&str> = page.documents.iter().map(|d| d.title.as_str()).collect();
    assert_eq!(titles, ["Budget"]);

    // The same question from the group that may read it finds it.
    let hr = key(&[Scope::Query], &["hr"]);
    let (answer, _) = verity
        .query(&hr, question("What is the vault code?"))
        .await
        .unwrap();
    assert!(answer.answer.contains("ZEBRA-5521"), "{}", answer.answer);
}

/// The position of the first call matching `wanted`.
fn position(calls: &[IndexCall], wanted: impl Fn(&IndexCall) -> bool) -> usize {
    calls
        .iter()
        .position(wanted)
        .unwrap_or_else(|| panic!("no such call in {calls:?}"))
}

/// Verity on the fakes with one uploaded policy ("20 days"); returns its document id and the
/// temporary directory that must outlive it.
async fn with_leave_policy() -> (
    verity_service::Verity,
    std::sync::Arc<MemoryIndex>,
    String,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let (verity, index) = testing::verity(dir.path()).await;
    verity.store().ensure_collection("kb").await.unwrap();
    let first = verity
        .upload_document(
            &Caller::local(),
            upload("leave.md", "# Leave\n\nYou get 20 days.", &[]),
        )
        .await
        .unwrap();
    (verity, index, first.document.id, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_is_written_in_the_order_that_survives_a_crash() {
    let (verity, index, id, _dir) = with_leave_policy().await;
    let admin = Caller::local();
    let old_chunks: Vec<String> = index.points_of(&id).into_iter().map(|(c, _)| c).collect();
    assert!(!old_chunks.is_empty());
    assert!(index.points_of(&id).iter().all(|(_, visible)| *visible));
    let before = index.calls().len();

    verity
        .upload_document(
            &admin,
            upload("leave.md", "# Leave\n\nYou get 25 days.", &[]),
        )
        .await
        .unwrap();
    // Old points go first (a lost delete would bring back points the store no longer holds),
    // then the new ones are written hidden, then published once the store holds them active.
    let calls = index.calls()[before..].to_vec();
    let removed = position(&calls, |c| {
        *c == IndexCall::DeleteDocumentChunks {
            document_id: id.clone(),
            kept: 0,
        }
    });
    let written = position(
        &calls,
        |c| matches!(c, IndexCall::Upsert(d) if d.contains(&id)),
    );
    let published = position(&calls, |c| *c == IndexCall::Publish(id.clone()));
    assert!(removed < written && written < published, "{calls:?}");
    let now: Vec<String> = index.points_of(&id).into_iter().map(|(c, _)| c).collect();
    assert!(
        now.iter().all(|c| !old_chunks.contains(c)),
        "{now:?} {old_chunks:?}"
    );
    let stored = verity.store().document(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, DocumentStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_index_write_leaves_nothing_searchable_and_the_next_ingest_redoes_it() {
    let (verity, index, id, _dir) = with_leave_policy().await;
    let admin = Caller::local();

    index.fail_upserts(true);
    let new_version = upload("leave.md", "# Leave\n\nYou get 25 days.", &[]);
    let failed = verity.upload_document(&admin, new_version.clone()).await;
    assert!(failed.is_err(), "{failed:?}");
    // The store holds the new version as being written, and the index shows nothing of it:
    // no passage of a document the store does not hold as active can be cited.
    let stored = verity.store().document(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, DocumentStatus::Indexing);
    assert!(index.points_of(&id).iter().all(|(_, visible)| !visible));
    let (answer, _) = verity
        .query(&admin, question("How many days do I get?"))
        .await
        .unwrap();
    assert!(answer.citations.is_empty(), "{answer:?}");

    // The same bytes again, once the index works, are written (not skipped as unchanged).
    index.fail_upserts(false);
    verity.upload_document(&admin, new_version).await.unwrap();
    let (answer, _) = verity
        .query(&admin, question("How many days do I get?"))
        .await
        .unwrap();
    assert!(answer.answer.contains("25 days"), "{}", answer.answer);
    let index: &MemoryIndex = &index;
    assert_eq!(
        index.count(&SearchFilter::collection("kb")).await.unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_writes_only_what_its_caller_may_write_and_retrieval_reads_only_what_it_may_read()
{
    let dir = tempfile::tempdir().unwrap();
    let (verity, _) = testing::verity(dir.path()).await;
    let document = |text: &str| IngestInput::Bytes {
        file_name: "vault.md".into(),
        source: "vault.md".into(),
        bytes: text.as_bytes().to_vec(),
    };
    let hr = IngestOptions::new("kb").with_groups(vec!["hr".into()]);
    let report = verity
        .ingest(
            &Caller::local(),
            document("# Vault\n\nThe vault code is ZEBRA-5521."),
            &hr,
            &Quiet,
        )
        .await
        .unwrap();
    assert!(report.outcome().is_ok(), "{report:?}");

    // A finance key may not give a document HR's group…
    let finance = key(&[Scope::Ingest, Scope::Query], &["finance"]);
    assert!(forbidden(
        verity
            .ingest(
                &finance,
                document("# Vault\n\nThe code is 0000."),
                &hr,
                &Quiet
            )
            .await
    ));
    // …nor replace HR's document under the same name with one of its own groups.
    let own = IngestOptions::new("kb").with_groups(vec!["finance".into()]);
    let report = verity
        .ingest(
            &finance,
            document("# Vault\n\nThe code is 0000."),
            &own,
            &Quiet,
        )
        .await
        .unwrap();
    assert!(
        matches!(report.outcome(), Err(FileFailure::OverwriteRefused { .. })),
        "{report:?}"
    );

    // Retrieval applies the caller's groups whatever filter it is handed.
    let filter = SearchFilter::collection("kb");
    let (passages, _) = verity
        .retrieve(&finance, "vault code", &filter, 5, RetrievalMode::Hybrid)
        .await
        .unwrap();
    assert!(passages.is_empty(), "{passages:?}");
    let (passages, _) = verity
        .retrieve(
            &Caller::local(),
            "vault code",
            &filter,
            5,
            RetrievalMode::Hybrid,
        )
        .await
        .unwrap();
    assert!(
        passages.iter().any(|p| p.text.contains("ZEBRA")),
        "{passages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_file_its_creator_may_not_write_fails_alone_and_the_worker_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (verity, _) = testing::verity(dir.path()).await;
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let (refused, fine) = (docs.join("refused.md"), docs.join("fine.md"));
    std::fs::write(&refused, "# Refused\n\nText.").unwrap();
    std::fs::write(&fine, "# Fine\n\nText.").unwrap();
    // A job whose creator (groups `hr`) would write documents of `finance`: never accepted by
    // the API, but the worker must not trust what the queue holds.
    let store = verity.store();
    store
        .create_job(
            "kb",
            r#"{"groups":["finance"],"writer":["hr"]}"#,
            &[refused.display().to_string()],
        )
        .await
        .unwrap();
    // Options that cannot be read would lose the creator's limits: that file fails too.
    let unreadable = docs.join("unreadable.md");
    std::fs::write(&unreadable, "# Unreadable\n\nText.").unwrap();
    store
        .create_job(
            "kb",
            r#"{"groups": "not a list"}"#,
            &[unreadable.display().to_string()],
        )
        .await
        .unwrap();
    store
        .create_job("kb", "{}", &[fine.display().to_string()])
        .await
        .unwrap();
    let report = verity
        .run_worker(&Caller::local(), &WorkerOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (report.files_done, report.files_failed),
        (1, 2),
        "{report:?}"
    );
}

/// Uploads one job's files through the service's receiver, as the gateway does.
async fn upload_job(
    verity: &verity_service::Verity,
    caller: &Caller,
    files: &[(&str, &[u8])],
    key: &str,
) -> Result<JobCreation, VerityError> {
    let limits = UploadLimits {
        per_file: 1_000,
        total: 10_000,
    };
    let mut uploads = verity.receive_uploads(caller, limits)?;
    for (name, bytes) in files {
        uploads.begin_file(name).await?;
        // In two pieces, as bytes arrive from a network.
        let (head, tail) = bytes.split_at(bytes.len() / 2);
        uploads.write(head).await?;
        uploads.write(tail).await?;
        uploads.end_file().await?;
    }
    let job = NewIngestJob {
        collection: Some("kb".into()),
        groups: None,
        tags: Vec::new(),
        language: None,
        input: JobInput::Uploads(uploads),
        idempotency_key: Some(key.into()),
    };
    verity.create_job(caller, job).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_files_become_a_job_a_retry_gets_it_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (verity, _) = testing::verity(dir.path()).await;
    verity.store().ensure_collection("kb").await.unwrap();
    let uploader = key(&[Scope::Ingest], &[]);
    let files: &[(&str, &[u8])] = &[("a.md", b"# A\n\nAlpha."), ("b.md", b"# B\n\nBeta.")];

    let JobCreation::Created(job) = upload_job(&verity, &uploader, files, "k1").await.unwrap()
    else {
        panic!("a new job was expected");
    };
    assert_eq!(job.files.len(), 2);
    assert_eq!(job.files[0].source, "upload:/*/a.md");
    // The files now belong to the job; the staging directory is gone.
    let job_dir = dir.path().join("uploads").join(format!("job-{}", job.id));
    assert_eq!(std::fs::read(job_dir.join("00000")).unwrap(), files[0].1);
    let staging: Vec<_> = std::fs::read_dir(dir.path().join("uploads"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("staging-"))
        .collect();
    assert!(staging.is_empty(), "{staging:?}");

    // The same files again under the same key: the same job.
    match upload_job(&verity, &uploader, files, "k1").await.unwrap() {
        JobCreation::Existing(again) => assert_eq!(again.id, job.id),
        other => panic!("the earlier job was expected, got {other:?}"),
    }
    // Other bytes under the same key: a different request.
    let changed: &[(&str, &[u8])] = &[("a.md", b"# A\n\nAlpha, changed."), files[1]];
    match upload_job(&verity, &uploader, changed, "k1").await.unwrap() {
        JobCreation::KeyConflict { job_id } => assert_eq!(job_id, job.id),
        other => panic!("a conflict was expected, got {other:?}"),
    }
    // A refused job (two files of one name) keeps none of its files.
    let twice: &[(&str, &[u8])] = &[files[0], files[0]];
    let err = upload_job(&verity, &uploader, twice, "k2")
        .await
        .unwrap_err();
    assert!(matches!(err, VerityError::InvalidRequest { .. }), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path().join("uploads"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec![format!("job-{}", job.id)]);
}
