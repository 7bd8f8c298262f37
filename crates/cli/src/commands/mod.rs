//! One module per command; `main.rs` parses the arguments and dispatches.

pub(crate) mod ask;
pub(crate) mod bench;
pub(crate) mod eval;
pub(crate) mod ingest;
pub(crate) mod keys;
pub(crate) mod queue;
pub(crate) mod serve;
