//! Whether a passage supports a sentence, read for meaning as far as rules can: the sentence's
//! words must be the passage's, and what word overlap cannot see is checked on its own —
//!
//! - **numbers with their units**: every quantity in the sentence is in the passage with the
//!   same unit ("20 days" is not "20 weeks", "20 working days" not "20 calendar days"), numbers
//!   written as words included ("five" = 5, "cinco", "dez");
//! - **dates**: every month and weekday the sentence names is in the passage (years are numbers);
//! - **names**: every capitalised word or acronym inside the sentence is in the passage;
//! - **negation**: a word the sentence negates is not asserted by the passage span that supports
//!   the sentence, and the other way round (not, never, no, without, prohibited; no, nunca, sin,
//!   ningún; não, nunca, sem, nenhum…), where "no more than 5" is a limit, not a negation;
//! - **roles**: when two roles (employee, manager, a name) sit on either side of the same verb
//!   in the sentence and in the passage, the one acting is the same (a passive "by" turns them
//!   round).
//!
//! Everything is computed from words, in microseconds: texts are analysed once per answer.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use verity_core::Language;

use crate::lexicon::{
    AGENT_MARKERS, DISCOURSE_WORDS, LIMIT_WORDS, NEGATORS, PROHIBITIONS, ROLE_NOUNS, SYNONYMS,
    currency_symbol, day_kind, is_one, month, number_word, same_unit, unit, weekday,
};
use crate::terms::{STOP_WORDS, fold};

/// A token of a text.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A word, folded; `capital` if written with a capital, `initial` if it opens a sentence.
    Word {
        text: String,
        capital: bool,
        upper: bool,
        initial: bool,
    },
    Number(String),
    /// A currency symbol or `%`, by its unit name.
    Symbol(&'static str),
    /// Punctuation that ends a clause.
    Break,
    /// A possessive `'s`: the next word is owned, not done ("the employee's request").
    Possessive,
}

fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut initial = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let mut raw = String::new();
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (matches!(chars[i], ',' | '.' | ':')
                        && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                raw.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Number(normalise_number(&raw)));
            initial = false;
            continue;
        }
        if c.is_alphabetic() {
            let mut raw = String::new();
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || (matches!(chars[i], '\'' | '’')
                        && chars.get(i + 1).is_some_and(|c| c.is_alphabetic())))
            {
                raw.push(chars[i]);
                i += 1;
            }
            if raw == "R" && chars.get(i) == Some(&'$') {
                out.push(Tok::Symbol("brl"));
                i += 1;
                initial = false;
                continue;
            }
            let capital = raw.chars().next().is_some_and(char::is_uppercase);
            let upper = raw.chars().count() > 1 && raw.chars().all(|c| !c.is_lowercase());
            let folded: String = raw
                .chars()
                .flat_map(char::to_lowercase)
                .map(fold)
                .map(|c| if c == '’' { '\'' } else { c })
                .collect();
            for (n, part) in split_apostrophes(&folded).into_iter().enumerate() {
                out.push(Tok::Word {
                    text: part,
                    capital: capital && n == 0,
                    upper: upper && n == 0,
                    initial: initial && n == 0,
                });
            }
            if folded.ends_with("'s") || folded.ends_with("s'") {
                out.push(Tok::Possessive);
            }
            initial = false;
            continue;
        }
        match c {
            '%' => out.push(Tok::Symbol("percent")),
            '.' | '!' | '?' | '\n' => {
                out.push(Tok::Break);
                initial = true;
            }
            ',' | ';' | ':' | '(' | ')' | '"' | '“' | '”' | '«' | '»' | '—' | '–' | '[' | ']' => {
                out.push(Tok::Break)
            }
            other => {
                if let Some(symbol) = currency_symbol(&other.to_string()) {
                    out.push(Tok::Symbol(symbol));
                }
            }
        }
        i += 1;
    }
    out
}

/// `don't` → `do not`, `can't` → `can not`, `employee's` → `employee`, `l'eau` → `l eau`.
fn split_apostrophes(word: &str) -> Vec<String> {
    if let Some(base) = word.strip_suffix("n't") {
        let base = match base {
            "ca" => "can",
            "wo" => "will",
            "sha" => "shall",
            other => other,
        };
        return vec![base.to_string(), "not".to_string()];
    }
    word.split('\'')
        .filter(|p| !p.is_empty() && *p != "s")
        .map(str::to_string)
        .collect()
}

/// `1,500` and `1.500` (thousands) and `1500` all become `1500`; a decimal comma becomes a
/// point.
pub(crate) fn normalise_number(raw: &str) -> String {
    if raw.contains(':') {
        return raw.to_string();
    }
    let groups: Vec<&str> = raw.split([',', '.']).collect();
    let thousands = groups.len() > 1 && groups[1..].iter().all(|g| g.len() == 3);
    if thousands {
        groups.concat()
    } else {
        raw.replace(',', ".")
    }
}

/// A crude stem: plural and verb endings off, then the first six letters, so that
/// "expires"/"expired"/"expire", "vacaciones"/"vacación" and "contar"/"contando" meet.
fn stem(word: &str, language: Language) -> String {
    let w = match language {
        Language::English => english_stem(word),
        Language::Spanish | Language::Portuguese => romance_stem(word),
    };
    w.chars().take(6).collect()
}

fn english_stem(word: &str) -> String {
    let n = word.chars().count();
    let mut w = word.to_string();
    if n > 5 && w.ends_with("ies") {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if n > 5 && w.ends_with("ing") {
        w.truncate(w.len() - 3);
    } else if n > 4 && (w.ends_with("ed") || w.ends_with("es")) {
        w.truncate(w.len() - 2);
    } else if n > 3
        && w.ends_with('s')
        && !w.ends_with("ss")
        && !w.ends_with("us")
        && !w.ends_with("is")
    {
        w.truncate(w.len() - 1);
    }
    if w.chars().count() > 4 && w.ends_with('e') {
        w.truncate(w.len() - 1);
    }
    w
}

/// Spanish and Portuguese: one inflection off (gerund, participle, infinitive, verb person,
/// plural, gender), keeping at least four letters (five for participles, so that "feriado" and
/// "férias" stay apart).
fn romance_stem(word: &str) -> String {
    const PARTICIPLES: &[&str] = &["ados", "adas", "idos", "idas", "ado", "ada", "ido", "ida"];
    const OTHERS: &[&str] = &[
        "ando", "endo", "indo", "ar", "er", "ir", "an", "en", "am", "em", "as", "es", "os",
    ];
    let n = word.chars().count();
    for suffix in PARTICIPLES {
        if word.ends_with(suffix) && n - suffix.len() >= 5 {
            return word[..word.len() - suffix.len()].to_string();
        }
    }
    for suffix in OTHERS {
        if word.ends_with(suffix) && n - suffix.len() >= 4 {
            return word[..word.len() - suffix.len()].to_string();
        }
    }
    for suffix in ["a", "e", "o", "s"] {
        if word.ends_with(suffix) && n > 3 {
            return word[..word.len() - 1].to_string();
        }
    }
    word.to_string()
}

/// Synonyms by the stem they have in each language, to one canonical (English) stem.
static SYNONYM_STEMS: LazyLock<HashMap<(Language, String), String>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for language in Language::ALL {
        for (word, target) in SYNONYMS {
            let canonical = stem(&fold_word(target), Language::English);
            map.insert((language, stem(&fold_word(word), language)), canonical);
        }
    }
    map
});

static IGNORED: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    STOP_WORDS
        .iter()
        .chain(DISCOURSE_WORDS)
        .chain(NEGATORS)
        .copied()
        .collect()
});

fn fold_word(word: &str) -> String {
    word.chars()
        .flat_map(char::to_lowercase)
        .map(fold)
        .collect()
}

/// The term a folded word counts as, or `None` for a function word or a number word (numbers
/// count by their value).
fn term(word: &str, language: Language) -> Option<String> {
    if IGNORED.contains(word) || word.chars().count() < 2 || number_word(word, language).is_some() {
        return None;
    }
    let key = (language, stem(word, language));
    Some(match SYNONYM_STEMS.get(&key) {
        Some(canonical) => canonical.clone(),
        None => key.1,
    })
}

/// The forms of "to be" that make the next verb passive ("is approved", "fue aprobado", "foi
/// aprovado").
const BE_FORMS: &[&str] = &[
    "is", "are", "was", "were", "be", "been", "being", "es", "son", "fue", "fueron", "sera",
    "seran", "sido", "e", "sao", "foi", "foram", "serao", "se",
];

/// Words that may stand between who acts and the verb: "the manager **must** approve",
/// "Finance **then** pays", "la jefatura **debe** registrar".
const AUXILIARIES: &[&str] = &[
    "must", "can", "may", "should", "will", "would", "shall", "could", "might", "then", "also",
    "always", "usually", "do", "does", "did", "have", "has", "had", "to", "debe", "deben", "puede",
    "pueden", "tiene", "tienen", "que", "siempre", "tambien", "luego", "deve", "devem", "pode",
    "podem", "tem", "sempre", "tambem", "depois", "se", "lo", "la", "le", "les", "the", "a", "o",
    "el", "os", "as", "los", "las", "su", "sus", "seu", "sua", "your", "their", "its",
];

/// Words that make the unit after them a rate ("45 euros **per** day", "por semana").
const PER_WORDS: &[&str] = &["per", "a", "an", "each", "every", "por", "al", "cada", "ao"];

/// What the word lists say about a word, looked up once (one hash lookup per word instead of a
/// scan of each list).
mod kind {
    pub const NEGATOR: u16 = 1;
    pub const PROHIBITION: u16 = 2;
    pub const AGENT: u16 = 4;
    pub const BE: u16 = 8;
    pub const ROLE: u16 = 16;
    pub const AUXILIARY: u16 = 32;
    pub const LIMIT: u16 = 64;
    pub const PER: u16 = 128;
}

static KINDS: LazyLock<HashMap<&'static str, u16>> = LazyLock::new(|| {
    let mut map: HashMap<&'static str, u16> = HashMap::new();
    for (list, flag) in [
        (NEGATORS, kind::NEGATOR),
        (PROHIBITIONS, kind::PROHIBITION),
        (AGENT_MARKERS, kind::AGENT),
        (BE_FORMS, kind::BE),
        (ROLE_NOUNS, kind::ROLE),
        (AUXILIARIES, kind::AUXILIARY),
        (LIMIT_WORDS, kind::LIMIT),
        (PER_WORDS, kind::PER),
    ] {
        for word in list {
            *map.entry(word).or_default() |= flag;
        }
    }
    map
});

fn is(word: &str, flag: u16) -> bool {
    KINDS.get(word).is_some_and(|k| k & flag != 0)
}

fn is_negator(word: &str, language: Language) -> bool {
    is(word, kind::NEGATOR) && !(language == Language::Portuguese && word == "no")
}

/// A quantity: a number, and the unit and kind of day after it when there are.
#[derive(Debug, Clone, PartialEq)]
struct Quantity {
    value: String,
    unit: Option<&'static str>,
    day_kind: Option<&'static str>,
    /// The unit of a rate: `day` in "45 euros per day".
    per: Option<&'static str>,
}

/// One content word of a sentence, in order.
#[derive(Debug, Clone)]
struct Item {
    term: String,
    /// Names a role: a role noun or a name.
    role: bool,
    /// An agent marker ("by", "por", "pelo") stands right before it.
    after_agent: bool,
    /// A form of "to be" stands right before it: a passive verb ("is approved").
    after_be: bool,
    /// It follows a possessive ("the employee's request"): owned, not done.
    possessed: bool,
    /// Which clause of the sentence it is in (commas and semicolons separate clauses).
    clause: usize,
    /// Only auxiliary words ("must", "then", "debe") stand between it and the word before, so
    /// that word can be who does it.
    joined: bool,
}

/// One sentence, analysed.
#[derive(Debug, Clone, Default)]
struct Sentence {
    items: Vec<Item>,
    terms: HashSet<String>,
    /// The first content word after each negator, or `allow` after "prohibited".
    negated: Vec<String>,
}

/// A text analysed once: its sentences, terms, quantities, dates and names.
#[derive(Debug, Clone)]
pub(crate) struct Analysis {
    language: Language,
    sentences: Vec<Sentence>,
    /// Content terms, and the values of its numbers.
    terms: HashSet<String>,
    /// Every folded word, for looking names up.
    words: HashSet<String>,
    quantities: Vec<Quantity>,
    months: HashSet<u8>,
    weekdays: HashSet<u8>,
    /// Capitalised words inside a sentence and acronyms, folded.
    names: Vec<String>,
}

impl Analysis {
    pub(crate) fn new(text: &str, language: Language) -> Self {
        let tokens = tokenize(text);
        let mut analysis = Analysis {
            language,
            sentences: Vec::new(),
            terms: HashSet::new(),
            words: HashSet::new(),
            quantities: Vec::new(),
            months: HashSet::new(),
            weekdays: HashSet::new(),
            names: Vec::new(),
        };
        // A capitalised word opening a sentence is a name if the text never writes it in
        // lowercase ("Finance then pays…"), or if a name follows it ("Pierre Curie won…").
        let lowercase: HashSet<&str> = tokens
            .iter()
            .filter_map(|t| match t {
                Tok::Word {
                    text,
                    capital: false,
                    ..
                } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let mut sentence = Sentence::default();
        let (mut agent, mut be, mut possessed, mut clause) = (false, false, false, 0);
        let mut joined = true;
        for (i, token) in tokens.iter().enumerate() {
            match token {
                Tok::Break => {
                    (agent, be, possessed, joined) = (false, false, false, false);
                    clause += 1;
                    if matches!(text_at(&tokens, i), Some(true)) && !sentence.items.is_empty() {
                        analysis.sentences.push(std::mem::take(&mut sentence));
                        clause = 0;
                    }
                }
                Tok::Possessive => possessed = true,
                Tok::Number(_) | Tok::Symbol(_) => joined = false,
                Tok::Word {
                    text: word,
                    capital,
                    upper,
                    initial,
                } => {
                    analysis.words.insert(word.clone());
                    if let Some(m) =
                        month(word).filter(|_| word != "may" || (*capital && !*initial))
                    {
                        analysis.months.insert(m);
                    }
                    if let Some(d) = weekday_at(&tokens, i) {
                        analysis.weekdays.insert(d);
                    }
                    if is_negator(word, language) {
                        if let Some(negated) = negated_term(&tokens, i + 1, language) {
                            sentence.negated.push(negated);
                        }
                    } else if is(word, kind::PROHIBITION) {
                        sentence
                            .negated
                            .push(term("allow", Language::English).unwrap_or_default());
                    }
                    if is(word, kind::AGENT) {
                        agent = true;
                    }
                    if is(word, kind::BE) {
                        be = true;
                    }
                    let next_capital =
                        matches!(tokens.get(i + 1), Some(Tok::Word { capital: true, .. }));
                    let initial_name = next_capital || !lowercase.contains(word.as_str());
                    let name = word.chars().count() > 1
                        && ((*capital && (!*initial || initial_name)) || *upper)
                        && month(word).is_none()
                        && weekday(word).is_none()
                        && !IGNORED.contains(word.as_str());
                    if name && !*initial {
                        analysis.names.push(word.clone());
                    }
                    if let Some(t) = term(word, language) {
                        sentence.terms.insert(t.clone());
                        analysis.terms.insert(t.clone());
                        sentence.items.push(Item {
                            term: t,
                            role: name || is(word, kind::ROLE),
                            after_agent: agent,
                            after_be: be,
                            possessed,
                            clause,
                            joined,
                        });
                        (agent, be, possessed, joined) = (false, false, false, true);
                    } else if !is(word, kind::AUXILIARY) {
                        joined = false;
                    }
                }
            }
        }
        if !sentence.items.is_empty() || !sentence.negated.is_empty() {
            analysis.sentences.push(sentence);
        }
        analysis.quantities = quantities(&tokens, language);
        let values: Vec<String> = analysis
            .quantities
            .iter()
            .map(|q| q.value.clone())
            .collect();
        analysis.terms.extend(values);
        analysis
    }

    /// Adds the words of a title or heading (they count for coverage and names).
    pub(crate) fn add_words(&mut self, text: &str) {
        for token in tokenize(text) {
            if let Tok::Word { text: word, .. } = token {
                if let Some(t) = term(&word, self.language) {
                    self.terms.insert(t);
                }
                self.words.insert(word);
            }
        }
    }

    /// Content terms of the whole text.
    pub(crate) fn term_count(&self) -> usize {
        self.terms.len()
    }

    /// Whether the text has a number (a sentence with one states something to check).
    pub(crate) fn has_quantity(&self) -> bool {
        !self.quantities.is_empty()
    }

    /// How many of this claim's terms `sources` contain.
    fn covered(&self, sources: &[&Analysis]) -> usize {
        // A number is covered by the same number spelled out ("6" by "six awards").
        self.terms
            .iter()
            .filter(|t| {
                sources
                    .iter()
                    .any(|s| s.terms.contains(*t) || s.quantities.iter().any(|q| q.value == **t))
            })
            .count()
    }
}

/// Whether the `Break` at `i` ends a sentence (`.`, `!`, `?`, a line end) rather than a clause.
/// Sentence breaks are followed by a token marked `initial`, or by the end.
fn text_at(tokens: &[Tok], i: usize) -> Option<bool> {
    match tokens.get(i + 1) {
        None => Some(true),
        Some(Tok::Word { initial, .. }) => Some(*initial),
        Some(Tok::Break) => Some(false),
        _ => Some(false),
    }
}

/// Portuguese weekdays other than Saturday and Sunday are ordinals ("segunda") followed by
/// "feira"; alone they are not days.
fn weekday_at(tokens: &[Tok], i: usize) -> Option<u8> {
    let Tok::Word { text, .. } = &tokens[i] else {
        return None;
    };
    let day = weekday(text)?;
    let needs_feira = matches!(
        text.as_str(),
        "segunda" | "terca" | "quarta" | "quinta" | "sexta"
    );
    let feira = matches!(tokens.get(i + 1), Some(Tok::Word { text, .. }) if text == "feira");
    (!needs_feira || feira).then_some(day)
}

/// The first content word after a negator at `from`, unless the negation is a limit ("no more
/// than") or reaches the end of its clause first.
fn negated_term(tokens: &[Tok], from: usize, language: Language) -> Option<String> {
    for token in &tokens[from..] {
        match token {
            Tok::Word { text, .. } => {
                if is(text, kind::LIMIT) {
                    return None;
                }
                if let Some(t) = term(text, language) {
                    return Some(t);
                }
            }
            Tok::Break => return None,
            _ => {}
        }
    }
    None
}

/// The quantities of a token stream: digits and number words, with the unit written before
/// (`€45`, `R$ 30`) or up to three words after (`20 working days`, `30 días corridos`).
fn quantities(tokens: &[Tok], language: Language) -> Vec<Quantity> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (value, next) = match &tokens[i] {
            Tok::Number(n) => (n.clone(), i + 1),
            Tok::Word { text, .. } => match number_word(text, language) {
                Some(n) => spelled_number(tokens, i, n, language),
                None if is_one(text) && unit_follows(tokens, i + 1) => ("1".to_string(), i + 1),
                None => {
                    i += 1;
                    continue;
                }
            },
            _ => {
                i += 1;
                continue;
            }
        };
        let mut quantity = Quantity {
            value,
            unit: None,
            day_kind: None,
            per: None,
        };
        if let Some(Tok::Symbol(symbol)) = i.checked_sub(1).and_then(|p| tokens.get(p)) {
            quantity.unit = Some(*symbol);
        }
        // The unit within two words ("20 paid working days"), then a rate ("per day", "a la
        // semana"); articles and other function words are skipped.
        let (mut per_pending, mut other_words) = (false, 0);
        for token in tokens[next..].iter().take(7) {
            match token {
                Tok::Symbol(symbol) if quantity.unit.is_none() && !per_pending => {
                    quantity.unit = Some(*symbol)
                }
                Tok::Word { text, .. } => {
                    if let Some(kind) = day_kind(text) {
                        quantity.day_kind = Some(kind);
                    } else if is(text, kind::PER) {
                        per_pending = true;
                    } else if let Some(u) = unit(text) {
                        if per_pending {
                            quantity.per = Some(u);
                            break;
                        } else if quantity.unit.is_none() {
                            quantity.unit = Some(u);
                        } else {
                            break;
                        }
                    } else if IGNORED.contains(text.as_str()) {
                        continue;
                    } else {
                        other_words += 1;
                        if quantity.unit.is_some() || per_pending || other_words > 2 {
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
        out.push(quantity);
        i = next;
    }
    out
}

/// A number written in words, possibly compound: "twenty-five", "treinta y cinco", "dos mil".
/// Returns the value and the index after it.
fn spelled_number(tokens: &[Tok], start: usize, first: u32, language: Language) -> (String, usize) {
    let mut value = first;
    let mut i = start + 1;
    while let Some(Tok::Word { text, .. }) = tokens.get(i) {
        let (skip, word) = if matches!(text.as_str(), "y" | "e" | "and") {
            match tokens.get(i + 1) {
                Some(Tok::Word { text, .. }) => (2, text),
                _ => break,
            }
        } else {
            (1, text)
        };
        match number_word(word, language) {
            Some(n @ (100 | 1000)) => value = value.max(1) * n,
            Some(n) if n < 10 && value >= 20 && value.is_multiple_of(10) => value += n,
            _ => break,
        }
        i += skip;
    }
    (value.to_string(), i)
}

fn unit_follows(tokens: &[Tok], from: usize) -> bool {
    tokens[from..].iter().take(2).any(|t| match t {
        Tok::Word { text, .. } => unit(text).is_some(),
        _ => false,
    })
}

/// Why a passage does not support a sentence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    /// The share of the sentence's terms found in the passages, to rank failures.
    pub coverage: f32,
    pub reason: String,
}

/// Checks that the `sources` (named `cited` in reasons, e.g. `[2]`) together support
/// `claim`. Returns the share of the claim's words they contain.
pub(crate) fn check(
    claim: &Analysis,
    sources: &[&Analysis],
    cited: &str,
    min_support: f32,
) -> Result<f32, Failure> {
    let coverage = if claim.terms.is_empty() {
        1.0
    } else {
        claim.covered(sources) as f32 / claim.terms.len() as f32
    };
    let fail = |reason: String| Err(Failure { coverage, reason });
    if coverage < min_support {
        return fail(format!(
            "only {:.0}% of its words appear in {cited} (at least {:.0}% needed)",
            coverage * 100.0,
            min_support * 100.0
        ));
    }
    if let Some(reason) = quantity_mismatch(claim, sources, cited) {
        return fail(reason);
    }
    if let Some(m) = claim
        .months
        .iter()
        .find(|m| !sources.iter().any(|s| s.months.contains(m)))
    {
        return fail(format!("{cited} does not mention the month it names ({m})"));
    }
    if let Some(d) = claim
        .weekdays
        .iter()
        .find(|d| !sources.iter().any(|s| s.weekdays.contains(d)))
    {
        return fail(format!(
            "{cited} does not mention the weekday it names ({d})"
        ));
    }
    if let Some(name) = claim.names.iter().find(|name| {
        !sources.iter().any(|s| {
            s.words.contains(*name) || term(name, s.language).is_some_and(|t| s.terms.contains(&t))
        })
    }) {
        return fail(format!("{cited} does not mention \"{name}\""));
    }
    let span = span(claim, sources);
    if let Some(reason) = negation_mismatch(claim, &span, cited) {
        return fail(reason);
    }
    if let Some(reason) = role_swap(claim, sources, &span, cited) {
        return fail(reason);
    }

    Ok(coverage)
}

fn quantity_mismatch(claim: &Analysis, sources: &[&Analysis], cited: &str) -> Option<String> {
    for q in &claim.quantities {
        let same_value: Vec<&Quantity> = sources
            .iter()
            .flat_map(|s| &s.quantities)
            .filter(|s| s.value == q.value)
            .collect();
        if same_value.is_empty() {
            return Some(format!("the number {} does not appear in {cited}", q.value));
        }
        let unit_ok = |s: &&Quantity| match (q.unit, s.unit) {
            (Some(a), Some(b)) => same_unit(a, b),
            _ => true,
        };
        let kind_ok = |s: &&Quantity| match (q.day_kind, s.day_kind) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        let per_ok = |s: &&Quantity| match (q.per, s.per) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        if !same_value
            .iter()
            .any(|s| unit_ok(s) && kind_ok(s) && per_ok(s))
        {
            let theirs = same_value[0];
            return Some(format!(
                "{cited} gives {} {}, not {} {}",
                theirs.value,
                describe_unit(theirs),
                q.value,
                describe_unit(q)
            ));
        }
    }
    None
}

fn describe_unit(q: &Quantity) -> String {
    let unit = match (q.day_kind, q.unit) {
        (Some(kind), Some(unit)) => format!("{kind} {unit}"),
        (None, Some(unit)) => unit.to_string(),
        (Some(kind), None) => kind.to_string(),
        (None, None) => String::new(),
    };
    match q.per {
        Some(per) => format!("{unit} per {per}").trim_start().to_string(),
        None => unit,
    }
}

/// The passage sentences that support the claim: the one sharing most of its terms, and the
/// next best if it adds terms the first lacks.
fn span<'a>(claim: &Analysis, sources: &[&'a Analysis]) -> Vec<&'a Sentence> {
    let Some(claim_sentence) = claim.sentences.first() else {
        return Vec::new();
    };
    let mut ranked: Vec<(usize, &Sentence)> = sources
        .iter()
        .flat_map(|s| &s.sentences)
        .map(|s| (s.terms.intersection(&claim_sentence.terms).count(), s))
        .filter(|(shared, _)| *shared > 0)
        .collect();
    ranked.sort_by_key(|(shared, _)| std::cmp::Reverse(*shared));
    let mut span: Vec<&Sentence> = Vec::new();
    let mut covered: HashSet<&String> = HashSet::new();
    for (_, sentence) in ranked.into_iter().take(3) {
        let adds = sentence
            .terms
            .intersection(&claim_sentence.terms)
            .any(|t| !covered.contains(t));
        if span.is_empty() || adds {
            covered.extend(sentence.terms.intersection(&claim_sentence.terms));
            span.push(sentence);
        }
        if span.len() == 2 {
            break;
        }
    }
    span
}

/// A word negated on one side and asserted on the other, unless the other side negates a word
/// of its own that this side does not use (the same negation, said with another verb: "may not
/// carry over" and "carry-over is not allowed"), or both negate as often, each a word the other
/// has (the negation attached elsewhere: "no fixed schedule" and "do not expire on a fixed
/// schedule").
fn negation_mismatch(claim: &Analysis, span: &[&Sentence], cited: &str) -> Option<String> {
    let claim = claim.sentences.first()?;
    let span_terms: HashSet<&String> = span.iter().flat_map(|s| &s.terms).collect();
    let span_negated: HashSet<&String> = span.iter().flat_map(|s| &s.negated).collect();
    let claim_negated: HashSet<&String> = claim.negated.iter().collect();
    let span_negates_other = span_negated.iter().any(|t| !claim.terms.contains(*t));
    let claim_negates_other = claim_negated.iter().any(|t| !span_terms.contains(t));
    let same_negations = !claim_negated.is_empty()
        && claim_negated.len() == span_negated.len()
        && !span_negates_other
        && !claim_negates_other;
    if same_negations {
        return None;
    }
    if let Some(t) = claim_negated
        .iter()
        .find(|t| span_terms.contains(*t) && !span_negated.contains(*t))
        && !span_negates_other
    {
        return Some(format!(
            "it negates \"{t}…\", which {cited} states without negation"
        ));
    }
    if let Some(t) = span_negated
        .iter()
        .find(|t| claim.terms.contains(**t) && !claim_negated.contains(*t))
        && !claim_negates_other
    {
        return Some(format!(
            "{cited} negates \"{t}…\", which it states without negation"
        ));
    }
    None
}

/// Who does what the word at `at` says: the roles right before it (active: "the manager
/// approves"), or the ones after an agent marker right after it (passive: "approved by the
/// manager"). Empty when the sentence does not say (a passive without agent, no role next to
/// the verb).
fn agent(sentence: &Sentence, at: usize) -> Vec<&str> {
    let items = &sentence.items;
    let verb = &items[at];
    let clause = verb.clause;
    let after = items[at + 1..]
        .iter()
        .take_while(|i| i.clause == clause)
        .collect::<Vec<_>>();
    if after.first().is_some_and(|i| i.after_agent) {
        // "by the engineering company of Gustave Eiffel": roles after at most two other words.
        return after
            .iter()
            .skip_while(|i| !i.role)
            .take_while(|i| i.role)
            .map(|i| i.term.as_str())
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
    }
    if verb.after_be {
        return Vec::new();
    }
    if !verb.joined {
        return Vec::new();
    }
    items[..at]
        .iter()
        .rev()
        .take_while(|i| i.role && i.clause == clause)
        .map(|i| i.term.as_str())
        .collect()
}

/// A role doing what the passage says another role does: "the manager submits the report"
/// where the passage has the employee submit it. Only roles the passage names count (a role
/// it never names is a different check's business), and only words a role is next to.
fn role_swap(
    claim: &Analysis,
    sources: &[&Analysis],
    span: &[&Sentence],
    cited: &str,
) -> Option<String> {
    let sentence = claim.sentences.first()?;
    for (at, item) in sentence.items.iter().enumerate() {
        if item.role || item.possessed {
            continue;
        }
        let ours = agent(sentence, at);
        if ours.is_empty()
            || !ours
                .iter()
                .any(|t| sources.iter().any(|s| s.terms.contains(*t)))
        {
            continue;
        }
        for theirs_sentence in span {
            let mut positions = theirs_sentence
                .items
                .iter()
                .enumerate()
                .filter(|(_, i)| i.term == item.term);
            let (Some((position, _)), None) = (positions.next(), positions.next()) else {
                continue;
            };
            if theirs_sentence.items[position].possessed {
                continue;
            }
            let theirs = agent(theirs_sentence, position);
            if !theirs.is_empty() && !theirs.iter().any(|t| ours.contains(t)) {
                return Some(format!(
                    "it has \"{}\" do \"{}\", which {cited} says \"{}\" does",
                    ours.join(" "),
                    item.term,
                    theirs.join(" ")
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en(text: &str) -> Analysis {
        Analysis::new(text, Language::English)
    }

    fn ok(claim: &str, passage: &str, language: Language) -> Result<f32, Failure> {
        let c = Analysis::new(claim, language);
        let p = Analysis::new(passage, language);
        check(&c, &[&p], "[1]", 0.6)
    }

    #[test]
    fn stems_meet_across_inflections() {
        let (en, es) = (Language::English, Language::Spanish);
        assert_eq!(stem("expires", en), stem("expired", en));
        assert_eq!(stem("expire", en), stem("expired", en));
        assert_eq!(stem("days", en), stem("day", en));
        assert_eq!(stem("vacaciones", es), stem("vacacion", es));
        assert_eq!(stem("dias", es), stem("dia", es));
        assert_eq!(stem("policies", en), stem("policy", en));
        let en = Language::English;
        assert_eq!(term("staff", en), term("employees", en));
        let pt = Language::Portuguese;
        assert_eq!(term("contando", pt), term("contar", pt));
        assert_ne!(term("feriado", pt), term("ferias", pt));
    }

    #[test]
    fn quantities_read_units_and_spelled_numbers() {
        let q = en("You get twenty-five working days, €45 a day and 10% more.").quantities;
        assert_eq!(q[0].value, "25");
        assert_eq!(q[0].unit, Some("day"));
        assert_eq!(q[0].day_kind, Some("working"));
        assert_eq!(q[1].value, "45");
        assert_eq!(q[1].unit, Some("eur"));
        assert_eq!(q[2].unit, Some("percent"));
        let es = Analysis::new("Son treinta y cinco días corridos.", Language::Spanish);
        assert_eq!(es.quantities[0].value, "35");
        assert_eq!(es.quantities[0].day_kind, Some("calendar"));
    }

    #[test]
    fn a_changed_unit_or_kind_of_day_is_caught() {
        let passage = "Employees receive 20 working days of annual leave.";
        assert!(
            ok(
                "Employees receive 20 working days of leave.",
                passage,
                Language::English
            )
            .is_ok()
        );
        let weeks = ok(
            "Employees receive 20 weeks of annual leave.",
            passage,
            Language::English,
        );
        assert!(weeks.unwrap_err().reason.contains("not 20 week"));
        assert!(
            ok(
                "Employees receive 20 calendar days of annual leave.",
                passage,
                Language::English
            )
            .is_err()
        );
    }

    #[test]
    fn negation_is_compared_with_the_supporting_span() {
        let passage = "Employees may carry over up to five unused days. Days beyond that expire and cannot be paid out.";
        let l = Language::English;
        assert!(ok("Employees may not carry over unused days.", passage, l).is_err());
        assert!(ok("Unused days beyond five cannot be paid out.", passage, l).is_ok());
        assert!(ok("Days beyond five are paid out.", passage, l).is_err());
        assert!(
            ok(
                "Employees can carry over no more than 5 unused days.",
                passage,
                l
            )
            .is_ok()
        );
        assert!(
            ok(
                "Carrying over days is not allowed.",
                "Employees may not carry over days.",
                l
            )
            .is_ok()
        );
        let pt = "Os dias não utilizados não são pagos.";
        assert!(
            ok(
                "Os dias não utilizados são pagos.",
                pt,
                Language::Portuguese
            )
            .is_err()
        );
        // Portuguese "no" is "in the", not a negation.
        let end = "No fim do ano, os dias são pagos.";
        assert!(
            ok(
                "No fim do ano, os dias são pagos.",
                end,
                Language::Portuguese
            )
            .is_ok()
        );
    }

    #[test]
    fn a_swapped_role_is_caught_and_a_passive_is_not_a_swap() {
        let passage = "The manager approves the employee's request in the HR portal.";
        let l = Language::English;
        assert!(
            ok(
                "The employee approves the manager's request in the HR portal.",
                passage,
                l
            )
            .is_err()
        );
        assert!(
            ok(
                "The employee's request is approved by the manager in the HR portal.",
                passage,
                l
            )
            .is_ok()
        );
    }

    #[test]
    fn names_and_months_must_be_in_the_passage() {
        let passage = "Requests go through Kallpa. Unused days expire on 31 March.";
        let l = Language::English;
        assert!(ok("Requests go through Workday.", passage, l).is_err());
        assert!(ok("Unused days expire on 31 May.", passage, l).is_err());
        assert!(ok("Unused days expire on 31 March.", passage, l).is_ok());
    }
}
