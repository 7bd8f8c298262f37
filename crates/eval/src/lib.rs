//! Verity's measurements, apart from the production code: the evaluations over SQuAD-format
//! sets (retrieval quality and the abstention gate in [`squad`], answers end to end in
//! [`answers`]) and the benchmarks of docs/benchmarks.md (ingest and query in [`bench`], a
//! test corpus in [`corpus`], generation in [`generate`], overload in [`load`]). They work on a
//! [`verity_service::Verity`] or a server's URL that the caller (`verity eval`, `verity bench`)
//! wires from its settings.

pub mod answers;
pub mod bench;
pub mod corpus;
pub mod generate;
pub mod load;
pub mod squad;
