//! What a search is asked for: the retrieval mode, the caller's metadata filter, and the query
//! itself in the forms the index needs.

use serde::{Deserialize, Serialize};

use crate::Language;

/// How passages are found: by meaning (dense vectors), by words (BM25), or both fused
/// ([`Fusion`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RetrievalMode {
    Dense,
    Sparse,
    Hybrid,
}

impl RetrievalMode {
    pub const ALL: [RetrievalMode; 3] = [
        RetrievalMode::Dense,
        RetrievalMode::Sparse,
        RetrievalMode::Hybrid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetrievalMode::Dense => "dense",
            RetrievalMode::Sparse => "sparse",
            RetrievalMode::Hybrid => "hybrid",
        }
    }
}

impl std::fmt::Display for RetrievalMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RetrievalMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown retrieval mode {s:?}: use dense, sparse or hybrid"))
    }
}

/// How a hybrid search merges its dense and BM25 candidates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Distribution-based score fusion: each list's scores normalised by their own mean and
    /// spread, then added, so how far ahead a passage is counts, not only its rank.
    #[default]
    Dbsf,
    /// Reciprocal rank fusion (k = 60): only ranks count.
    Rrf,
}

/// A filter on document metadata, as a request sends it (`"filter": {…}`). Every condition
/// given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MetadataFilter {
    /// Only documents under this directory (an absolute path, as in citations' `source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_prefix: Option<String>,
    /// Only documents carrying at least one of these tags (`verity ingest --tags`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Only documents in this language (`en`, `es`, `pt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// Only documents whose file was modified on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_after: Option<String>,
    /// Only documents whose file was modified before this day (`YYYY-MM-DD`, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_before: Option<String>,
}

/// A question in the forms the index searches with.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub text: String,
    /// The question's dense embedding (always computed: the abstention gate compares it with
    /// the passages found, whatever the mode).
    pub vector: Vec<f32>,
    /// Selects the BM25 tokenisation (stop words, stemmer) for the question's words.
    pub language: Language,
    pub mode: RetrievalMode,
    /// How a hybrid search merges its two halves.
    pub fusion: Fusion,
}

/// The directories a source path lies under, outermost first: `/kb/hr/leave.md` →
/// `["/kb", "/kb/hr"]`. Indexed so that "under this directory" is an exact-match filter.
pub fn source_directories(source: &str) -> Vec<String> {
    if !source.starts_with('/') {
        return Vec::new();
    }
    let parts: Vec<&str> = source.split('/').filter(|p| !p.is_empty()).collect();
    (1..parts.len())
        .map(|n| format!("/{}", parts[..n].join("/")))
        .collect()
}

/// Parses `YYYY-MM-DD` into seconds since the Unix epoch at 00:00 UTC that day.
pub fn parse_day(day: &str) -> Option<i64> {
    let mut parts = day.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month[(m - 1) as usize] {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_directories_list_every_ancestor() {
        assert_eq!(source_directories("/kb/hr/leave.md"), ["/kb", "/kb/hr"]);
        assert!(source_directories("squad:dev.json#Normans").is_empty());
    }

    #[test]
    fn days_parse_to_utc_midnight() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2024-02-29"), Some(1_709_164_800));
        assert_eq!(parse_day("2023-02-29"), None);
        assert_eq!(parse_day("2024-13-01"), None);
        assert_eq!(parse_day("24-01-01"), None);
        assert_eq!(parse_day("2024-01-01T00:00"), None);
    }

    #[test]
    fn unknown_filter_fields_are_rejected() {
        let err = serde_json::from_str::<MetadataFilter>(r#"{"colour": "red"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"));
        let err = serde_json::from_str::<MetadataFilter>(r#"{"language": "fr"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `fr`"));
    }
}
