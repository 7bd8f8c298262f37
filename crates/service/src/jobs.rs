//! Ingest jobs through the API: [`IngestJobs`] for [`Verity`]. A job's files are queued in the
//! store and ingested by the workers (`verity serve` runs one), one file at a time, so its
//! documents become answerable file by file.
//!
//! Rules, in one place:
//! - a job belongs to the caller that created it; for anyone else it does not exist (the same
//!   `NotFound` as an unknown id), except for an admin of its collection that may read the
//!   documents it writes ([`policy::may_read_job`]; cancelling: [`policy::may_cancel_job`]);
//! - a path job may not replace a document stored with groups its caller may not write
//!   ([`policy::may_overwrite`]): refused here at once, and again by the worker;
//! - uploaded files are saved under `<data_dir>/uploads/job-<id>/` and ingested under
//!   `upload:/<groups>/<name>` with the same group rules as `POST /v1/documents`; each file is
//!   removed once it is done, failed or cancelled;
//! - server-side paths are accepted only under `ingest.allowed_root` and outside the data
//!   directory, checked lexically first (so nothing outside is even looked at) and again after
//!   resolving symbolic links; the worker checks each file once more when it opens it
//!   ([`verity_ingest::read_file_under`]), since the file may have changed meanwhile;
//! - an `Idempotency-Key` names one job per caller: the same request again gets that job, a
//!   different request under the same key is refused.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use serde_json::json;
use sha2::{Digest, Sha256};
use verity_core::{
    Caller, FileState, IngestJob, IngestJobs, JobCounts, JobCreation, JobFile, JobInput, JobState,
    Language, NewIngestJob, Scope, UploadLimits, UploadReceiver, VerityError, VerityResult, policy,
};
use verity_ingest::collect_files;
use verity_store::{JobCreated, JobFileRecord, JobRecord, NewJob, NewJobFile};

use crate::Verity;
use crate::library::{upload_file_name, upload_source};
use crate::pipeline::IngestOptions;
use crate::uploads::StagedUploads;
use crate::worker::{JobOptions, remove_upload, wake_worker};

fn job_not_found(id: i64) -> VerityError {
    VerityError::NotFound {
        what: "ingest job",
        name: id.to_string(),
    }
}

fn uploads_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads")
}

/// Removes staging directories no job took (a process killed while receiving an upload).
pub(crate) fn remove_stale_staging(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(uploads_dir(data_dir)) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("staging-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A job's input, with its uploads taken back from the front end.
enum Input {
    Uploads(Box<StagedUploads>),
    Paths(Vec<String>),
}

/// What a job request asks for, hashed: the same fields and the same files (by their bytes)
/// give the same hash, so a retry under one idempotency key gets its job and a different
/// request under it is refused.
fn request_hash(
    collection: &Option<String>,
    groups: &Option<Vec<String>>,
    tags: &[String],
    language: Option<Language>,
    input: &Input,
) -> String {
    let request = match input {
        Input::Paths(paths) => json!(["paths", collection, groups, tags, language, paths]),
        Input::Uploads(uploads) => {
            let files: Vec<_> = uploads
                .files()
                .iter()
                .map(|file| (&file.name, &file.sha256))
                .collect();
            json!(["uploads", collection, groups, tags, language, files])
        }
    };
    hex::encode(Sha256::digest(request.to_string()))
}

fn job_view(job: JobRecord, files: Vec<JobFileRecord>) -> IngestJob {
    let mut counts = JobCounts::default();
    let files: Vec<JobFile> = files
        .into_iter()
        .map(|file| {
            let state = file.file_state();
            counts.add(state);
            JobFile {
                name: file.name.unwrap_or_else(|| file.path.clone()),
                source: file.source.unwrap_or(file.path),
                state,
                reason: (state == FileState::Failed).then(|| file.outcome.unwrap_or_default()),
                attempts: file.attempts.max(0) as u32,
            }
        })
        .collect();
    let started = files.iter().any(|f| f.state != FileState::Queued);
    let state = if counts.pending() == 0 {
        if job.cancelled_at.is_some() {
            JobState::Cancelled
        } else {
            JobState::Done
        }
    } else if started {
        JobState::Running
    } else {
        JobState::Queued
    };
    IngestJob {
        id: job.id,
        collection: job.collection,
        state,
        created_at: job.created_at,
        counts,
        files,
    }
}

/// The groups a job's documents get, as kept with the job; `None` when its options cannot be
/// read (then only its creator sees it: [`policy::may_read_job`]).
fn job_groups(job: &JobRecord) -> Option<Vec<String>> {
    serde_json::from_str::<JobOptions>(&job.options)
        .map(|options| options.groups)
        .ok()
}

/// `path` with `.` and `..` resolved by the letters alone (no file system access).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn outside_root(path: &str) -> VerityError {
    VerityError::Forbidden(format!(
        "{path:?} is outside ingest.allowed_root: only files under it can be ingested from the server"
    ))
}

/// Server-side paths one job request may name (directories expand to any number of files).
const MAX_JOB_PATHS: usize = 1_000;

/// The files a list of server-side paths names, each checked to be under `root` and outside
/// `data_dir` (where other callers' uploads wait for their workers).
fn files_under_root(
    root: &Path,
    data_dir: &Path,
    paths: &[String],
) -> VerityResult<Vec<NewJobFile>> {
    let data_dir = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    let root = root.canonicalize().map_err(|e| {
        VerityError::Config(format!(
            "ingest.allowed_root {} cannot be read: {e}",
            root.display()
        ))
    })?;
    if paths.is_empty() {
        return Err(VerityError::invalid(
            "paths",
            "paths is empty: name at least one file or directory under ingest.allowed_root",
        ));
    }
    if paths.len() > MAX_JOB_PATHS {
        return Err(VerityError::invalid(
            "paths",
            format!(
                "paths names {} entries; at most {MAX_JOB_PATHS}: name their directories instead",
                paths.len()
            ),
        ));
    }
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    for given in paths {
        if given.trim().is_empty() || given.contains('\0') {
            return Err(VerityError::invalid(
                "paths",
                format!("{given:?} is not a path"),
            ));
        }
        // Relative paths are relative to the root; nothing outside it is looked at.
        let joined = lexical(&root.join(given));
        if !joined.starts_with(&root) {
            return Err(outside_root(given));
        }
        let canonical = joined.canonicalize().map_err(|_| {
            VerityError::invalid(
                "paths",
                format!("{given:?} does not exist under ingest.allowed_root"),
            )
        })?;
        if !canonical.starts_with(&root) {
            return Err(outside_root(given));
        }
        let (found, errors) = collect_files(&[canonical]);
        if let Some((entry, reason)) = errors.first() {
            return Err(VerityError::invalid(
                "paths",
                format!("{entry} cannot be read: {reason}"),
            ));
        }
        for file in found {
            // A link inside a directory may point outside the root.
            if !Path::new(&file.source).starts_with(&root) {
                return Err(outside_root(&file.path.display().to_string()));
            }
            if Path::new(&file.source).starts_with(&data_dir) {
                return Err(VerityError::Forbidden(format!(
                    "{} is in Verity's data directory, which is never ingested from the server",
                    file.path.display()
                )));
            }
            if seen.insert(file.source.clone()) {
                let name = Path::new(&file.source)
                    .strip_prefix(&root)
                    .map_or_else(|_| file.source.clone(), |p| p.display().to_string());
                files.push(NewJobFile {
                    path: file.source,
                    source: None,
                    name: Some(name),
                });
            }
        }
    }
    if files.is_empty() {
        return Err(VerityError::invalid(
            "paths",
            "the paths hold no files to ingest (hidden files are skipped)",
        ));
    }
    Ok(files)
}

impl Verity {
    /// A job the caller may read ([`policy::may_read_job`]), else the 404 of an unknown id.
    async fn readable_job(&self, caller: &Caller, id: i64) -> VerityResult<JobRecord> {
        match self.store.job(id).await? {
            Some(job)
                if policy::may_read_job(
                    caller,
                    &job.caller,
                    &job.collection,
                    job_groups(&job).as_deref(),
                ) =>
            {
                Ok(job)
            }
            _ => Err(job_not_found(id)),
        }
    }

    /// `ingest.allowed_root`, canonical (`None` if unset or unreadable: paths are refused then).
    fn allowed_root(&self) -> Option<PathBuf> {
        self.config
            .allowed_root
            .as_ref()
            .and_then(|root| root.canonicalize().ok())
    }

    /// Refuses a path job that would replace a stored document its caller may not write (the
    /// worker checks again when it ingests each file; this makes the refusal a 403 at once).
    async fn check_overwrites(
        &self,
        caller: &Caller,
        collection: &str,
        rows: &[NewJobFile],
    ) -> VerityResult<()> {
        for row in rows {
            let id = verity_core::document_id(collection, &row.path);
            if let Some(stored) = self.store.document_state(&id).await?
                && !policy::may_overwrite(caller.groups.as_deref(), &stored.groups)
            {
                let name = row.name.as_deref().unwrap_or(&row.path);
                return Err(VerityError::Forbidden(policy::overwrite_refused(name)));
            }
        }
        Ok(())
    }

    async fn job_view(&self, job: JobRecord) -> VerityResult<IngestJob> {
        let files = self.store.job_file_records(job.id).await?;
        Ok(job_view(job, files))
    }

    /// The job's files, for [`Self::create_job`].
    async fn job_files(&self, input: &Input, groups: &[String]) -> VerityResult<Vec<NewJobFile>> {
        match input {
            Input::Paths(paths) => {
                let Some(root) = &self.config.allowed_root else {
                    return Err(VerityError::Forbidden(
                        "server-side paths are refused: this server has no ingest.allowed_root \
                         (set it, e.g. VERITY_INGEST__ALLOWED_ROOT=/srv/documents, to allow \
                         files under that directory), or upload the files as multipart/form-data"
                            .to_string(),
                    ));
                };
                // Walking directories is blocking I/O: off the HTTP workers.
                let (root, data_dir, paths) =
                    (root.clone(), self.config.data_dir.clone(), paths.clone());
                tokio::task::spawn_blocking(move || files_under_root(&root, &data_dir, &paths))
                    .await
                    .map_err(|e| VerityError::internal("jobs", e))?
            }
            Input::Uploads(uploads) => {
                let files = uploads.files();
                if files.is_empty() {
                    return Err(VerityError::invalid(
                        "file",
                        "the form has no \"file\" part: send each document as a file field named file",
                    ));
                }
                let mut names = HashSet::new();
                let mut rows = Vec::with_capacity(files.len());
                for file in files {
                    let name = upload_file_name(&file.name)?;
                    if !names.insert(name.clone()) {
                        return Err(VerityError::invalid(
                            "file",
                            format!("two files are named {name:?}: one job takes each name once"),
                        ));
                    }
                    rows.push(NewJobFile {
                        // Where it is now; moved with its directory once the job has an id.
                        path: file.path.display().to_string(),
                        source: Some(upload_source(groups, &name)),
                        name: Some(name),
                    });
                }
                Ok(rows)
            }
        }
    }

    async fn create_job_inner(
        &self,
        caller: &Caller,
        job: NewIngestJob,
    ) -> VerityResult<JobCreation> {
        let input = match job.input {
            JobInput::Paths(paths) => Input::Paths(paths),
            JobInput::Uploads(receiver) => Input::Uploads(StagedUploads::take_back(receiver)?),
        };
        let request_hash = request_hash(
            &job.collection,
            &job.groups,
            &job.tags,
            job.language,
            &input,
        );
        let collection = self
            .usable_collection(caller, job.collection.as_deref())
            .await?;
        let groups = self.upload_groups(caller, &collection, job.groups).await?;
        IngestOptions::new(&collection)
            .with_tags(job.tags.clone())
            .validate()?;
        let rows = self.job_files(&input, &groups).await?;
        let root = match &input {
            Input::Paths(_) => {
                self.check_overwrites(caller, &collection, &rows).await?;
                self.allowed_root()
            }
            Input::Uploads(_) => None,
        };
        let options = serde_json::to_string(&JobOptions {
            tags: job.tags,
            language: job.language,
            groups,
            writer: caller.groups.clone(),
            root,
            collection_must_exist: true,
            api_key: caller.subject.strip_prefix("key:").map(str::to_string),
        })
        .map_err(|e| VerityError::internal("jobs", e))?;
        let staging = match &input {
            Input::Uploads(uploads) => Some(uploads.dir()),
            Input::Paths(_) => None,
        };
        let uploads = uploads_dir(&self.config.data_dir);
        let created = self
            .store
            .create_job_with(
                &NewJob {
                    collection: &collection,
                    options: &options,
                    caller: &caller.subject,
                    idempotency_key: job.idempotency_key.as_deref(),
                    request_hash: Some(&request_hash),
                    claimed_by: None,
                },
                |id| {
                    let Some(staging) = &staging else {
                        return Ok(rows);
                    };
                    // Inside the job's transaction: were it not to commit, the directory is
                    // an orphan the next start removes, never a job without its files.
                    let dir = uploads.join(format!("job-{id}"));
                    std::fs::rename(staging, &dir).map_err(|e| {
                        VerityError::internal(
                            "jobs",
                            format!("cannot keep the uploaded files: {e}"),
                        )
                    })?;
                    Ok(rows
                        .into_iter()
                        .map(|mut row| {
                            let file = Path::new(&row.path)
                                .file_name()
                                .map(|n| dir.join(n))
                                .unwrap_or_else(|| dir.clone());
                            row.path = file.display().to_string();
                            row
                        })
                        .collect())
                },
            )
            .await?;
        Ok(match created {
            JobCreated::New(id) => {
                wake_worker();
                let record = self.store.job(id).await?.ok_or_else(|| job_not_found(id))?;
                JobCreation::Created(self.job_view(record).await?)
            }
            JobCreated::Existing {
                id,
                request_hash: earlier_hash,
            } => {
                if earlier_hash.as_deref() != Some(request_hash.as_str()) {
                    JobCreation::KeyConflict { job_id: id }
                } else {
                    let record = self.readable_job(caller, id).await?;
                    JobCreation::Existing(self.job_view(record).await?)
                }
            }
        })
    }
}

#[async_trait]
impl IngestJobs for Verity {
    fn receive_uploads(
        &self,
        caller: &Caller,
        limits: UploadLimits,
    ) -> VerityResult<Box<dyn UploadReceiver>> {
        caller.require(Scope::Ingest)?;
        Ok(Box::new(StagedUploads::new(
            &uploads_dir(&self.config.data_dir),
            limits,
        )))
    }

    /// Whatever happens, uploaded files that no job took are removed (when their receiver is
    /// dropped).
    async fn create_job(&self, caller: &Caller, job: NewIngestJob) -> VerityResult<JobCreation> {
        caller.require(Scope::Ingest)?;
        self.create_job_inner(caller, job).await
    }

    async fn ingest_job(&self, caller: &Caller, id: i64) -> VerityResult<IngestJob> {
        caller.require(Scope::Ingest)?;
        let job = self.readable_job(caller, id).await?;
        self.job_view(job).await
    }

    async fn cancel_job(&self, caller: &Caller, id: i64) -> VerityResult<IngestJob> {
        caller.require(Scope::Ingest)?;
        let job = self.readable_job(caller, id).await?;
        if !policy::may_cancel_job(
            caller,
            &job.caller,
            &job.collection,
            job_groups(&job).as_deref(),
        ) {
            return Err(VerityError::Forbidden(
                "this key may read the job but not cancel it: its documents have groups the key \
                 may not write"
                    .to_string(),
            ));
        }
        for file in self.store.cancel_job(id).await? {
            if file.source.is_some() {
                remove_upload(Path::new(&file.path));
            }
        }
        let job = self
            .store
            .job(job.id)
            .await?
            .ok_or_else(|| job_not_found(id))?;
        self.job_view(job).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_resolved_by_their_letters_before_anything_is_looked_at() {
        assert_eq!(
            lexical(Path::new("/srv/docs/../etc/passwd")),
            Path::new("/srv/etc/passwd")
        );
        assert_eq!(
            lexical(Path::new("/srv/docs/./a/../b.md")),
            Path::new("/srv/docs/b.md")
        );
        assert_eq!(lexical(Path::new("/srv/../../..")), Path::new("/"));
    }

    #[test]
    fn server_side_paths_stay_under_the_root_even_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.md"), "# A\n\nText.").unwrap();
        std::fs::write(dir.path().join("secret.md"), "# Secret\n\nText.").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.md"), root.join("link.md")).unwrap();
        let data = dir.path().join("data");

        let files = files_under_root(&root, &data, &["sub".to_string()]).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name.as_deref(), Some("sub/a.md"));
        for escape in [
            "../secret.md",
            "sub/../../secret.md",
            "link.md",
            "/etc/passwd",
        ] {
            let error = files_under_root(&root, &data, &[escape.to_string()]).unwrap_err();
            assert!(
                matches!(error, VerityError::Forbidden(_)),
                "{escape}: {error}"
            );
        }
        // A directory holding a link out is refused as a whole.
        assert!(matches!(
            files_under_root(&root, &data, &[".".to_string()]).unwrap_err(),
            VerityError::Forbidden(_)
        ));
        assert!(matches!(
            files_under_root(&root, &data, &["missing.md".to_string()]).unwrap_err(),
            VerityError::InvalidRequest { .. }
        ));
        assert!(files_under_root(&root, &data, &[]).is_err());
        let many = vec!["sub/a.md".to_string(); MAX_JOB_PATHS + 1];
        assert!(matches!(
            files_under_root(&root, &data, &many).unwrap_err(),
            VerityError::InvalidRequest { .. }
        ));
        // The data directory, even under the root, is never ingested from the server.
        std::fs::write(root.join("sub/b.md"), "# B\n\nText.").unwrap();
        assert!(matches!(
            files_under_root(&root, &root.join("sub"), &["sub/b.md".to_string()]).unwrap_err(),
            VerityError::Forbidden(_)
        ));
    }
}
