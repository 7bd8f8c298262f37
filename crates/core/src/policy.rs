//! Authorization, in one place: every rule that says who may read, write, overwrite, delete,
//! publish to which groups, read which answer trace or ingest job, and rate which answer. Pure
//! functions over the [`Caller`] and the groups of what it touches, so the rules are tested
//! without a store or a server, and every front end (HTTP, CLI) gets the same answer.
//!
//! The rules:
//! - **read**: a caller reads a document if it may use its collection and shares one of its
//!   groups, or the document has none (public). A caller without group conditions (`None`:
//!   authentication off, the CLI, a token without a groups claim is *not* this) reads all.
//! - **write** (upload, overwrite, delete, cancel): a caller writes only where it belongs. A
//!   caller limited to groups writes documents whose groups are all among its own — never a
//!   public document, and never one shared with a group it lacks; a key with no groups at all
//!   writes only public documents (the only ones it reads); an unrestricted caller writes any.
//!   The same rule covers what a document gets and what is already stored under its id, so
//!   re-ingesting a path, or uploading a name, can never take over another group's document.
//! - **admin** (collections): manages only the collections it may use; a group-limited admin
//!   may delete a collection only if it may write every document in it, and give new
//!   collections only default groups of its own. The admin scope gives no document access:
//!   a group-limited admin reads and writes documents like any key of its groups.
//! - **answer traces**: the asker reads its trace; an admin of the collection reads it if it
//!   has no group conditions, or, limited to groups, if every document the trace names is one
//!   it may read now (a trace naming no document, or one since deleted, stays hidden: its
//!   question may be another group's). Only the asker rates an answer.
//! - **ingest jobs**: the creator reads and cancels its job; an admin of the collection reads
//!   it if it may read the documents the job writes, and cancels it if it may write them.
//!
//! Anything refused answers like something that does not exist (404) when the caller may not
//! even read it, and 403 only when it may read it but not change it, so the refusals leak
//! nothing the caller could not already see.

use crate::{Caller, Scope, VerityError, VerityResult, validate_group_name};

/// Whether a caller with these groups reads a document with those (`None`: no condition).
pub fn groups_readable(caller_groups: Option<&[String]>, document_groups: &[String]) -> bool {
    match caller_groups {
        None => true,
        Some(mine) => {
            document_groups.is_empty() || document_groups.iter().any(|g| mine.contains(g))
        }
    }
}

/// Whether a caller with these groups may write a document with those: all of them its own,
/// and public only for a caller whose reads are public only (see the module's rules).
pub fn groups_writable(caller_groups: Option<&[String]>, document_groups: &[String]) -> bool {
    match caller_groups {
        None => true,
        Some(mine) if document_groups.is_empty() => mine.is_empty(),
        Some(mine) => document_groups.iter().all(|g| mine.contains(g)),
    }
}

/// Whether the caller reads a document of `collection` with `groups`.
pub fn may_read_document(caller: &Caller, collection: &str, groups: &[String]) -> bool {
    caller.may_use_collection(collection) && groups_readable(caller.groups.as_deref(), groups)
}

/// Whether the caller may write (create, overwrite, delete) a document of `collection` with
/// `groups`: the ingest scope, the collection, and groups it may write.
pub fn may_write_document(caller: &Caller, collection: &str, groups: &[String]) -> bool {
    caller.may(Scope::Ingest)
        && caller.may_use_collection(collection)
        && groups_writable(caller.groups.as_deref(), groups)
}

/// What a refused write says: which groups the caller may give instead.
fn not_writable(caller_groups: &[String], groups: &[String]) -> VerityError {
    let own = if caller_groups.is_empty() {
        "this key has no groups, so it writes public documents only".to_string()
    } else {
        format!(
            "this key writes only documents of its own groups ({}), never public ones",
            caller_groups.join(", ")
        )
    };
    let target = if groups.is_empty() {
        "a public document (no groups)".to_string()
    } else {
        format!("groups {}", groups.join(", "))
    };
    VerityError::Forbidden(format!("{target} refused: {own}"))
}

/// The groups a new document gets: those `asked`, else the collection's `default` groups,
/// else (for a caller limited to groups) the caller's own; refused unless the caller may write
/// documents with them.
pub fn new_document_groups(
    caller: &Caller,
    asked: Option<Vec<String>>,
    default: Vec<String>,
) -> VerityResult<Vec<String>> {
    let explicit = asked.is_some();
    let mut groups = asked.unwrap_or(default);
    for group in &groups {
        validate_group_name(group)?;
    }
    let Some(mine) = &caller.groups else {
        return Ok(groups);
    };
    if groups.is_empty() && !explicit {
        groups.clone_from(mine);
    }
    require_writable(caller, &groups)?;
    Ok(groups)
}

/// Refuses a caller who may not write documents with `groups` (see the module's rules).
pub fn require_writable(caller: &Caller, groups: &[String]) -> VerityResult<()> {
    match &caller.groups {
        Some(mine) if !groups_writable(Some(mine), groups) => Err(not_writable(mine, groups)),
        _ => Ok(()),
    }
}

/// Whether a writer with these groups may replace what is stored with `existing` groups (the
/// ingest pipeline knows only the writer's groups, kept with its job).
pub fn may_overwrite(writer_groups: Option<&[String]>, existing: &[String]) -> bool {
    groups_writable(writer_groups, existing)
}

/// Why a write over a stored document is refused.
pub fn overwrite_refused(source: &str) -> String {
    format!(
        "{source} is already stored with groups this caller may not write: \
         it is left as it was (ask its owner or the operator)"
    )
}

/// Whether the caller may delete the collection `name`, holding documents with these groups.
pub fn may_delete_collection<'a>(
    caller: &Caller,
    name: &str,
    mut document_groups: impl Iterator<Item = &'a [String]>,
) -> bool {
    caller.may(Scope::Admin)
        && caller.may_use_collection(name)
        && document_groups.all(|groups| groups_writable(caller.groups.as_deref(), groups))
}

/// Whether the caller may create the collection `name` with these default groups.
pub fn may_create_collection(caller: &Caller, name: &str, default_groups: &[String]) -> bool {
    caller.may(Scope::Admin)
        && caller.may_use_collection(name)
        && caller
            .groups
            .as_ref()
            .is_none_or(|mine| default_groups.iter().all(|g| mine.contains(g)))
}

/// Whether the caller reads an answer trace asked by `asker` in `collection`, whose candidates
/// come from documents with these groups (`None`: a document no longer stored).
pub fn may_read_trace(
    caller: &Caller,
    asker: &str,
    collection: &str,
    candidate_groups: &[Option<Vec<String>>],
) -> bool {
    if caller.subject == asker {
        return true;
    }
    if !caller.may(Scope::Admin) || !collections_usable(caller, collection) {
        return false;
    }
    match &caller.groups {
        None => true,
        Some(mine) => {
            !candidate_groups.is_empty()
                && candidate_groups.iter().all(|groups| {
                    groups
                        .as_deref()
                        .is_some_and(|g| groups_readable(Some(mine), g))
                })
        }
    }
}

/// Whether the caller may rate an answer asked by `asker`: only the asker.
pub fn may_rate_answer(caller: &Caller, asker: &str) -> bool {
    caller.subject == asker
}

/// Whether the caller reads an ingest job created by `creator` in `collection`, writing
/// documents with `groups` (`None` where the job's groups cannot be read: then only its
/// creator sees it, since its documents may be anyone's).
pub fn may_read_job(
    caller: &Caller,
    creator: &str,
    collection: &str,
    groups: Option<&[String]>,
) -> bool {
    caller.subject == creator
        || groups.is_some_and(|groups| {
            caller.may(Scope::Admin)
                && caller.may_use_collection(collection)
                && groups_readable(caller.groups.as_deref(), groups)
        })
}

/// Whether the caller may cancel an ingest job created by `creator` in `collection`, writing
/// documents with `groups` (`None`: unknown, as for [`may_read_job`]).
pub fn may_cancel_job(
    caller: &Caller,
    creator: &str,
    collection: &str,
    groups: Option<&[String]>,
) -> bool {
    caller.subject == creator
        || groups.is_some_and(|groups| {
            caller.may(Scope::Admin)
                && caller.may_use_collection(collection)
                && groups_writable(caller.groups.as_deref(), groups)
        })
}

/// A trace's collection is one name, or several joined by commas.
fn collections_usable(caller: &Caller, collection: &str) -> bool {
    collection
        .split(',')
        .all(|name| caller.may_use_collection(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(scopes: &[Scope], groups: Option<&[&str]>) -> Caller {
        Caller {
            subject: "key:me".to_string(),
            scopes: scopes.to_vec(),
            collections: Some(vec!["handbook".to_string()]),
            groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_group_limited_key_writes_only_into_its_own_groups_never_public() {
        let hr = caller(&[Scope::Ingest], Some(&["hr"]));
        assert!(may_write_document(&hr, "handbook", &groups(&["hr"])));
        assert!(!may_write_document(&hr, "handbook", &groups(&["finance"])));
        assert!(!may_write_document(
            &hr,
            "handbook",
            &groups(&["hr", "finance"])
        ));
        assert!(!may_write_document(&hr, "handbook", &[]));
        assert!(!may_write_document(&hr, "other", &groups(&["hr"])));
        // It still reads public and shared documents.
        assert!(may_read_document(&hr, "handbook", &[]));
        assert!(may_read_document(
            &hr,
            "handbook",
            &groups(&["hr", "finance"])
        ));
        // Without groups: public documents only, as it reads.
        let public = caller(&[Scope::Ingest], Some(&[]));
        assert!(may_write_document(&public, "handbook", &[]));
        assert!(!may_write_document(&public, "handbook", &groups(&["hr"])));
        // No ingest scope: no write at all; an admin scope gives no document rights.
        let admin = caller(&[Scope::Admin, Scope::Query], Some(&["hr"]));
        assert!(!may_write_document(&admin, "handbook", &groups(&["hr"])));
        let operator = Caller::local();
        assert!(may_write_document(&operator, "handbook", &[]));
    }

    #[test]
    fn new_documents_get_asked_default_or_own_groups_and_never_others() {
        let hr = caller(&[Scope::Ingest], Some(&["hr"]));
        assert_eq!(
            new_document_groups(&hr, None, vec![]).unwrap(),
            groups(&["hr"])
        );
        assert_eq!(
            new_document_groups(&hr, None, groups(&["hr"])).unwrap(),
            groups(&["hr"])
        );
        for (asked, default) in [
            (Some(vec![]), vec![]),
            (Some(groups(&["finance"])), vec![]),
            (None, groups(&["finance"])),
        ] {
            assert!(matches!(
                new_document_groups(&hr, asked.clone(), default.clone()),
                Err(VerityError::Forbidden(_))
            ));
        }
        assert!(new_document_groups(&hr, Some(groups(&["bad group"])), vec![]).is_err());
        // A group-limited admin is bound the same way.
        let admin = caller(&Scope::ALL, Some(&["hr"]));
        assert!(new_document_groups(&admin, Some(groups(&["finance"])), vec![]).is_err());
        assert_eq!(
            new_document_groups(&Caller::local(), Some(vec![]), groups(&["hr"])).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn stored_documents_are_overwritten_only_by_writers_of_all_their_groups() {
        let hr = groups(&["hr"]);
        assert!(may_overwrite(Some(&hr), &groups(&["hr"])));
        assert!(!may_overwrite(Some(&hr), &groups(&["finance"])));
        assert!(!may_overwrite(Some(&hr), &[]));
        assert!(may_overwrite(None, &groups(&["finance"])));
    }

    #[test]
    fn a_group_limited_admin_reads_traces_only_of_documents_it_reads() {
        let admin = caller(&[Scope::Admin, Scope::Query], Some(&["hr"]));
        let full = Caller {
            subject: "key:root".to_string(),
            ..caller(&[Scope::Admin], None)
        };
        let finance = Some(groups(&["finance"]));
        let hr = Some(groups(&["hr"]));
        let public = Some(vec![]);
        assert!(!may_read_trace(
            &admin,
            "key:b",
            "handbook",
            std::slice::from_ref(&finance)
        ));
        assert!(!may_read_trace(
            &admin,
            "key:b",
            "handbook",
            &[hr.clone(), finance.clone()]
        ));
        assert!(may_read_trace(
            &admin,
            "key:b",
            "handbook",
            &[hr.clone(), public.clone()]
        ));
        // Deleted documents and empty traces stay hidden.
        assert!(!may_read_trace(
            &admin,
            "key:b",
            "handbook",
            &[hr.clone(), None]
        ));
        assert!(!may_read_trace(&admin, "key:b", "handbook", &[]));
        assert!(may_read_trace(
            &full,
            "key:b",
            "handbook",
            &[finance.clone(), None]
        ));
        assert!(!may_read_trace(&full, "key:b", "payroll", &[]));
        // The asker always; nobody else rates.
        let asker = caller(&[Scope::Query], Some(&["finance"]));
        assert!(may_read_trace(&asker, "key:me", "handbook", &[finance]));
        assert!(may_rate_answer(&asker, "key:me"));
        assert!(!may_rate_answer(&full, "key:me"));
        assert!(!may_read_trace(
            &caller(&[Scope::Query], None),
            "key:b",
            "handbook",
            &[hr]
        ));
    }

    #[test]
    fn a_group_limited_admin_reads_and_cancels_only_jobs_of_its_groups() {
        let admin = caller(&[Scope::Admin], Some(&["hr"]));
        assert!(may_read_job(
            &admin,
            "key:b",
            "handbook",
            Some(&groups(&["hr"]))
        ));
        assert!(!may_read_job(
            &admin,
            "key:b",
            "handbook",
            Some(&groups(&["finance"]))
        ));
        assert!(may_read_job(&admin, "key:b", "handbook", Some(&[])));
        assert!(!may_cancel_job(&admin, "key:b", "handbook", Some(&[])));
        assert!(may_cancel_job(
            &admin,
            "key:b",
            "handbook",
            Some(&groups(&["hr"]))
        ));
        assert!(may_read_job(
            &caller(&[Scope::Ingest], Some(&["x"])),
            "key:me",
            "handbook",
            Some(&groups(&["finance"]))
        ));
        assert!(!may_read_job(
            &caller(&[Scope::Ingest], None),
            "key:b",
            "handbook",
            Some(&[])
        ));
        // A job whose groups cannot be read is its creator's alone: not even a full admin
        // reads or cancels it.
        let full_admin = caller(&[Scope::Admin], None);
        assert!(!may_read_job(&full_admin, "key:b", "handbook", None));
        assert!(!may_cancel_job(&full_admin, "key:b", "handbook", None));
        assert!(may_read_job(&full_admin, "key:me", "handbook", None));
    }

    #[test]
    fn a_group_limited_admin_deletes_only_collections_it_may_write_whole() {
        let admin = caller(&[Scope::Admin], Some(&["hr"]));
        let hr = groups(&["hr"]);
        let finance = groups(&["finance"]);
        assert!(may_delete_collection(
            &admin,
            "handbook",
            [hr.as_slice()].into_iter()
        ));
        assert!(!may_delete_collection(
            &admin,
            "handbook",
            [hr.as_slice(), finance.as_slice()].into_iter()
        ));
        assert!(!may_delete_collection(&admin, "other", std::iter::empty()));
        assert!(may_create_collection(&admin, "handbook", &hr));
        assert!(!may_create_collection(&admin, "handbook", &finance));
        assert!(may_create_collection(&admin, "handbook", &[]));
    }
}
