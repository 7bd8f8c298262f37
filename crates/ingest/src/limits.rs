//! Limits on what parsing one file may cost, and the guard that runs a parser under them: a
//! file that is too large, too deep, too long to parse, or that makes its parser panic fails
//! on its own, with a reason, and the batch goes on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::read::IngestError;

const MIB: u64 = 1024 * 1024;

/// What parsing one file may cost. Memory is bounded indirectly: by the input size, by the
/// decompressed size of what is inside it (DOCX parts, PDF streams), by the nesting depth, the
/// number of pages and the length of the extracted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLimits {
    /// Files larger than this are refused before they are read.
    pub max_file_bytes: u64,
    /// The most that decompression may produce: all parts of a DOCX read together, or any one
    /// PDF stream (object streams, page contents).
    pub max_decompressed_bytes: u64,
    /// A DOCX part that declares (or reaches) more than this many times its compressed size,
    /// and more than 1 MiB, is a decompression bomb.
    pub max_compression_ratio: u64,
    /// Elements nested deeper than this (HTML, the XML of a DOCX) fail the file.
    pub max_nesting_depth: usize,
    /// PDFs with more pages than this fail.
    pub max_pages: usize,
    /// Documents whose extracted text is longer than this many characters fail.
    pub max_text_chars: usize,
    /// A parse that takes longer than this fails the file.
    pub timeout: Duration,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 256 * MIB,
            max_decompressed_bytes: 64 * MIB,
            max_compression_ratio: 200,
            max_nesting_depth: 256,
            max_pages: 5_000,
            max_text_chars: 16 * 1024 * 1024,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The limits of one parse, with its deadline, handed to every format's parser so that its
/// loops stop on their own when the time is up.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pub limits: ParseLimits,
    deadline: Instant,
}

impl Budget {
    pub fn new(limits: &ParseLimits) -> Self {
        Self {
            limits: limits.clone(),
            deadline: Instant::now()
                .checked_add(limits.timeout)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365)),
        }
    }

    /// Fails once the deadline has passed.
    pub fn check_time(&self) -> Result<(), IngestError> {
        if Instant::now() > self.deadline {
            Err(IngestError::Timeout(self.limits.timeout))
        } else {
            Ok(())
        }
    }

    /// Fails when `chars` characters of text exceed the text limit.
    pub fn check_text(&self, chars: usize) -> Result<(), IngestError> {
        if chars > self.limits.max_text_chars {
            Err(IngestError::Limit(format!(
                "more than {} characters of text",
                self.limits.max_text_chars
            )))
        } else {
            Ok(())
        }
    }

    pub fn check_depth(&self, depth: usize, what: &str) -> Result<(), IngestError> {
        if depth > self.limits.max_nesting_depth {
            Err(IngestError::Limit(format!(
                "{what} nested deeper than {} levels",
                self.limits.max_nesting_depth
            )))
        } else {
            Ok(())
        }
    }
}

/// Parser threads that passed their deadline and are still running.
static OVERDUE: AtomicUsize = AtomicUsize::new(0);
/// While this many overdue parsers still run, new parses are refused: a batch of hostile files
/// cannot pile up threads that spin forever.
const MAX_OVERDUE: usize = 4;
/// Parsers recurse (HTML walking, the PDF object graph); their thread gets a generous stack.
const PARSER_STACK: usize = 16 * 1024 * 1024;

/// Runs `parse` on its own thread and waits at most `timeout` for it. A panic in the parser
/// becomes [`IngestError::Panic`], a parser still running at the deadline
/// [`IngestError::Timeout`].
///
/// A thread cannot be killed safely, so a timed-out parser is abandoned: it runs on until it
/// finishes (our own parsers check the deadline in their loops and stop soon after; a
/// dependency stuck inside one call cannot be stopped), and its result is dropped. The other
/// limits bound what it can consume meanwhile, and while [`MAX_OVERDUE`] of them are still
/// running, new parses fail fast instead of adding more.
pub(crate) fn run_guarded<T, F>(timeout: Duration, parse: F) -> Result<T, IngestError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, IngestError> + Send + 'static,
{
    if OVERDUE.load(Ordering::SeqCst) >= MAX_OVERDUE {
        return Err(IngestError::Limit(format!(
            "{MAX_OVERDUE} earlier parses are still running past their time limit; try again later"
        )));
    }
    let (sender, receiver) = mpsc::sync_channel(1);
    let (finished_sender, finished) = mpsc::sync_channel::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("verity-parse".into())
        .stack_size(PARSER_STACK)
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(parse));
            // The receiver is gone when the parse was abandoned; nothing to tell then.
            let _ = sender.send(result);
            let _ = finished_sender.send(());
        });
    if let Err(e) = spawned {
        return Err(IngestError::Io(format!(
            "cannot start a parser thread: {e}"
        )));
    }
    match receiver.recv_timeout(timeout) {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(IngestError::Panic(panic_message(panic.as_ref()))),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            OVERDUE.fetch_add(1, Ordering::SeqCst);
            // A watcher counts the abandoned parser out when it finally ends.
            let watcher = std::thread::Builder::new()
                .name("verity-parse-overdue".into())
                .spawn(move || {
                    let _ = finished.recv();
                    OVERDUE.fetch_sub(1, Ordering::SeqCst);
                });
            if watcher.is_err() {
                OVERDUE.fetch_sub(1, Ordering::SeqCst);
            }
            Err(IngestError::Timeout(timeout))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(IngestError::Panic(
            "the parser thread ended without a result".into(),
        )),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_parser_fails_with_its_message() {
        let err =
            run_guarded::<(), _>(Duration::from_secs(5), || panic!("boom at byte 7")).unwrap_err();
        assert_eq!(err, IngestError::Panic("boom at byte 7".into()));
        assert!(err.to_string().contains("boom at byte 7"));
    }

    #[test]
    fn a_slow_parser_times_out_and_is_abandoned() {
        let started = Instant::now();
        let err = run_guarded::<(), _>(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_millis(400));
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err, IngestError::Timeout(Duration::from_millis(50)));
        assert!(started.elapsed() < Duration::from_millis(350));
    }

    #[test]
    fn a_good_parser_returns_its_result() {
        assert_eq!(run_guarded(Duration::from_secs(5), || Ok(42)), Ok(42));
    }
}
