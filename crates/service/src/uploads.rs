//! Receiving a job's uploaded files: the gateway hands each file's bytes over as they arrive,
//! and they are written here, with async file I/O, into a staging directory of the data
//! directory that no front end names. The limits (bytes per file, bytes per request, files per
//! request) are checked as the bytes arrive, so nothing over them is ever stored whole; each
//! file is hashed on the way, so that a retry under the same idempotency key can be told from
//! a different request. A staging directory that no job takes is removed when the receiver is
//! dropped (and, after a crash, at the next start: [`crate::jobs::remove_stale_staging`]).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use verity_core::{UploadLimits, UploadReceiver, VerityError, VerityResult};

/// Files one upload job may hold (as many as a path job may name): each is a file written and
/// synced, so a form of thousands of empty parts is refused at once.
pub const MAX_JOB_FILES: usize = 1_000;

/// One received file.
pub(crate) struct StagedFile {
    /// The client's file name (what the format is guessed from, after the content).
    pub(crate) name: String,
    /// Where it is stored, inside the staging directory.
    pub(crate) path: PathBuf,
    /// SHA-256 of its bytes, hex.
    pub(crate) sha256: String,
}

/// The file being received.
struct Receiving {
    name: String,
    path: PathBuf,
    out: tokio::fs::File,
    hasher: Sha256,
    size: usize,
}

/// The service's [`UploadReceiver`].
pub(crate) struct StagedUploads {
    dir: PathBuf,
    limits: UploadLimits,
    files: Vec<StagedFile>,
    current: Option<Receiving>,
    total: usize,
}

fn storage(e: std::io::Error) -> VerityError {
    VerityError::unavailable("upload storage", e)
}

impl StagedUploads {
    pub(crate) fn new(uploads_dir: &Path, limits: UploadLimits) -> Self {
        Self {
            dir: uploads_dir.join(format!("staging-{}", uuid::Uuid::new_v4().simple())),
            limits,
            files: Vec::new(),
            current: None,
            total: 0,
        }
    }

    /// The receiver handed back with a job, if this service made it and every file is complete.
    pub(crate) fn take_back(receiver: Box<dyn UploadReceiver>) -> VerityResult<Box<Self>> {
        let uploads = receiver
            .into_any()
            .downcast::<Self>()
            .map_err(|_| VerityError::internal("jobs", "uploads received by another service"))?;
        if let Some(file) = &uploads.current {
            return Err(VerityError::invalid(
                "file",
                format!("the upload of {} did not finish", file.name),
            ));
        }
        Ok(uploads)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn files(&self) -> &[StagedFile] {
        &self.files
    }
}

#[async_trait]
impl UploadReceiver for StagedUploads {
    async fn begin_file(&mut self, name: &str) -> VerityResult<()> {
        if self.current.is_some() {
            return Err(VerityError::internal(
                "jobs",
                "a file was begun before the previous one ended",
            ));
        }
        if self.files.len() == MAX_JOB_FILES {
            return Err(VerityError::TooLarge(format!(
                "a job holds at most {MAX_JOB_FILES} files; send the rest as another job"
            )));
        }
        if self.files.is_empty() {
            tokio::fs::create_dir_all(&self.dir).await.map_err(|e| {
                VerityError::unavailable(
                    "upload storage",
                    format!("cannot create {}: {e}", self.dir.display()),
                )
            })?;
        }
        let path = self.dir.join(format!("{:05}", self.files.len()));
        let out = tokio::fs::File::create(&path).await.map_err(storage)?;
        self.current = Some(Receiving {
            name: name.to_string(),
            path,
            out,
            hasher: Sha256::new(),
            size: 0,
        });
        Ok(())
    }

    async fn write(&mut self, chunk: &[u8]) -> VerityResult<()> {
        let Some(file) = &mut self.current else {
            return Err(VerityError::internal(
                "jobs",
                "bytes arrived outside a file",
            ));
        };
        file.size += chunk.len();
        self.total += chunk.len();
        if file.size > self.limits.per_file {
            return Err(VerityError::TooLarge(format!(
                "{} is over the upload limit of {} bytes per file (server.max_upload_bytes)",
                file.name, self.limits.per_file
            )));
        }
        if self.total > self.limits.total {
            return Err(VerityError::TooLarge(format!(
                "the files of this job are over the limit of {} bytes together (server.max_job_upload_bytes)",
                self.limits.total
            )));
        }
        file.hasher.update(chunk);
        file.out.write_all(chunk).await.map_err(storage)
    }

    async fn end_file(&mut self) -> VerityResult<()> {
        let Some(mut file) = self.current.take() else {
            return Err(VerityError::internal("jobs", "no file to end"));
        };
        // Durable before a job refers to it: the worker may run in another process, after a crash.
        file.out.flush().await.map_err(storage)?;
        file.out.sync_all().await.map_err(storage)?;
        self.files.push(StagedFile {
            name: file.name,
            path: file.path,
            sha256: hex::encode(file.hasher.finalize()),
        });
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

impl Drop for StagedUploads {
    /// A job moves the directory away when it takes the files; what is still here was not taken.
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_file: usize, total: usize) -> UploadLimits {
        UploadLimits { per_file, total }
    }

    #[tokio::test]
    async fn files_are_stored_hashed_and_removed_unless_taken() {
        let data = tempfile::tempdir().unwrap();
        let mut uploads = StagedUploads::new(data.path(), limits(100, 1_000));
        uploads.begin_file("a.md").await.unwrap();
        uploads.write(b"# A\n").await.unwrap();
        uploads.write(b"text").await.unwrap();
        uploads.end_file().await.unwrap();
        let file = &uploads.files()[0];
        assert_eq!(std::fs::read(&file.path).unwrap(), b"# A\ntext");
        assert_eq!(file.sha256, hex::encode(Sha256::digest(b"# A\ntext")));
        let dir = uploads.dir().to_path_buf();
        assert!(dir.starts_with(data.path()));
        drop(uploads);
        assert!(!dir.exists(), "an untaken staging directory is removed");
    }

    #[tokio::test]
    async fn the_limits_are_checked_as_the_bytes_arrive() {
        let data = tempfile::tempdir().unwrap();
        let mut uploads = StagedUploads::new(data.path(), limits(5, 8));
        uploads.begin_file("big.md").await.unwrap();
        uploads.write(b"12345").await.unwrap();
        let err = uploads.write(b"6").await.unwrap_err();
        assert!(
            matches!(&err, VerityError::TooLarge(m) if m.contains("big.md") && m.contains("per file")),
            "{err}"
        );

        let mut uploads = StagedUploads::new(data.path(), limits(5, 8));
        for name in ["a.md", "b.md"] {
            uploads.begin_file(name).await.unwrap();
            uploads.write(b"1234").await.unwrap();
            uploads.end_file().await.unwrap();
        }
        uploads.begin_file("c.md").await.unwrap();
        let err = uploads.write(b"1").await.unwrap_err();
        assert!(
            matches!(&err, VerityError::TooLarge(m) if m.contains("together")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_file_still_arriving_cannot_become_a_job() {
        let data = tempfile::tempdir().unwrap();
        let mut uploads = Box::new(StagedUploads::new(data.path(), limits(100, 100)));
        uploads.begin_file("a.md").await.unwrap();
        let err = StagedUploads::take_back(uploads).err().unwrap();
        assert!(matches!(err, VerityError::InvalidRequest { .. }), "{err}");
    }
}
