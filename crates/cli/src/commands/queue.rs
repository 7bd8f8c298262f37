//! `verity worker`, `verity job` and `verity reconcile`: the ingest queue and the index repair.

use verity_cli::settings::Settings;
use verity_core::Caller;

/// `verity worker`: ingests queued files until the queue is empty (or for ever with `--follow`).
pub(crate) async fn worker(
    settings: Settings,
    follow: bool,
    name: Option<String>,
    lease_seconds: i64,
    json: bool,
) -> anyhow::Result<()> {
    let verity = verity_cli::open(&settings).await?;
    let mut options = verity_service::worker::WorkerOptions {
        follow,
        lease_seconds,
        ..Default::default()
    };
    if let Some(name) = name {
        options.name = name;
    }
    let report = verity.run_worker(&Caller::local(), &options).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} files ingested, {} failed",
            report.worker, report.files_done, report.files_failed
        );
    }
    Ok(())
}

/// `verity job ID`: a job's progress.
pub(crate) async fn job(settings: Settings, id: i64, json: bool) -> anyhow::Result<()> {
    let verity = verity_cli::open(&settings).await?;
    let progress = verity.store().job_progress(id).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&progress)?);
    } else {
        println!(
            "job {id}: {} queued, {} running, {} done, {} failed, {} cancelled",
            progress.queued, progress.running, progress.done, progress.failed, progress.cancelled
        );
    }
    Ok(())
}

/// `verity reconcile`: the index repaired from the store.
pub(crate) async fn reconcile(
    settings: Settings,
    collection: Option<String>,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<()> {
    let verity = verity_cli::open(&settings).await?;
    let report = verity
        .reconcile(&Caller::local(), collection.as_deref(), !dry_run)
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} chunks missing from the index, {} orphans in it; {} repaired; {} documents left half-written (run `verity ingest` on their files)",
            report.missing_in_index,
            report.orphans_in_index,
            report.repaired,
            report.documents_incomplete
        );
    }
    Ok(())
}
