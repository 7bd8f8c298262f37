//! The words verification reads meaning from, in English, Spanish and Portuguese: negators,
//! spelled numbers, units, months, roles, and a few synonyms that company policies and models
//! use interchangeably. Every entry is folded (lowercase, accents removed, see
//! [`crate::terms::fold`]).

use verity_core::Language;

/// Words that negate what follows. Portuguese `no` ("in the") is not one: the caller drops it
/// for Portuguese text.
pub const NEGATORS: &[&str] = &[
    // English (`n't` is read as `not`)
    "not", "no", "never", "none", "cannot", "nobody", "nothing", "neither", "nor", "without",
    // Spanish
    "nunca", "jamas", "ningun", "ninguna", "ninguno", "ningunos", "ningunas", "sin", "tampoco",
    "nadie", "nada", "ni", // Portuguese
    "nao", "jamais", "nenhum", "nenhuma", "nenhuns", "nenhumas", "nem", "sem", "tampouco",
    "ninguem",
];

/// Words that say something is not allowed: a negator whose object is "allowed".
pub const PROHIBITIONS: &[&str] = &[
    "prohibited",
    "forbidden",
    "banned",
    "prohibits",
    "forbids",
    "prohibido",
    "prohibida",
    "prohibidos",
    "prohibidas",
    "prohibe",
    "proibido",
    "proibida",
    "proibidos",
    "proibidas",
    "proibe",
];

/// After a negator, these make a limit, not a negation: "no more than 5 days" says what "up to
/// 5 days" says, "not only" adds.
pub const LIMIT_WORDS: &[&str] = &[
    "more",
    "less",
    "fewer",
    "later",
    "earlier",
    "longer",
    "exceed",
    "exceeds",
    "only",
    "just",
    "mas",
    "menos",
    "superar",
    "supera",
    "exceder",
    "excede",
    "sobrepasar",
    "tarde",
    "solo",
    "ultrapassar",
    "ultrapassa",
    "apenas",
    "so",
    // "sin embargo", "no obstante": however
    "embargo",
    "obstante",
    // "no other river carries more water": a comparison
    "other",
    "otro",
    "otra",
    "otros",
    "otras",
    "outro",
    "outra",
    "outros",
    "outras",
];

/// Words that introduce the agent of a passive verb: "approved **by** the manager" has its
/// roles the other way round from "the manager approves".
pub const AGENT_MARKERS: &[&str] = &["by", "por", "pelo", "pela", "pelos", "pelas"];

/// Nouns that name who does what in a policy; swapping two of them changes the meaning.
pub const ROLE_NOUNS: &[&str] = &[
    "employee",
    "employees",
    "manager",
    "managers",
    "supervisor",
    "supervisors",
    "employer",
    "company",
    "worker",
    "workers",
    "team",
    "hr",
    "contractor",
    "contractors",
    "colleague",
    "client",
    "customer",
    "empleado",
    "empleados",
    "trabajador",
    "trabajadores",
    "empleador",
    "empresa",
    "jefe",
    "jefatura",
    "gerente",
    "cliente",
    "empregado",
    "empregados",
    "funcionario",
    "funcionarios",
    "colaborador",
    "colaboradores",
    "empregador",
    "gestor",
    "chefe",
];

/// Numbers written as words. `one`/`uno`/`um` and their forms count only before a unit ("one
/// day"), where they cannot be an article or a pronoun ([`is_one`]). Words that are numbers in
/// one language and something else in another count only in their own: `dos` (Portuguese "of
/// the"), `once` (English "one time"), `ten` (Spanish "have"), `doce` (Portuguese "sweet").
pub fn number_word(word: &str, language: Language) -> Option<u32> {
    let n = match word {
        "dos" if language != Language::Portuguese => 2,
        "once" if language == Language::Spanish => 11,
        "doce" if language == Language::Spanish => 12,
        "ten" if language == Language::English => 10,
        "dos" | "once" | "doce" | "ten" => return None,
        "two" | "dois" | "duas" => 2,
        "three" | "tres" => 3,
        "four" | "cuatro" | "quatro" => 4,
        "five" | "cinco" => 5,
        "six" | "seis" => 6,
        "seven" | "siete" | "sete" => 7,
        "eight" | "ocho" | "oito" => 8,
        "nine" | "nueve" | "nove" => 9,
        "diez" | "dez" => 10,
        "eleven" | "onze" => 11,
        "twelve" | "doze" => 12,
        "thirteen" | "trece" | "treze" => 13,
        "fourteen" | "catorce" | "catorze" | "quatorze" => 14,
        "fifteen" | "quince" | "quinze" => 15,
        "sixteen" | "dieciseis" | "dezesseis" => 16,
        "seventeen" | "diecisiete" | "dezessete" => 17,
        "eighteen" | "dieciocho" | "dezoito" => 18,
        "nineteen" | "diecinueve" | "dezenove" => 19,
        "twenty" | "veinte" | "vinte" => 20,
        "thirty" | "treinta" | "trinta" => 30,
        "forty" | "cuarenta" | "quarenta" => 40,
        "fifty" | "cincuenta" | "cinquenta" => 50,
        "sixty" | "sesenta" | "sessenta" => 60,
        "seventy" | "setenta" => 70,
        "eighty" | "ochenta" | "oitenta" => 80,
        "ninety" | "noventa" => 90,
        "hundred" | "cien" | "cem" => 100,
        "thousand" | "mil" => 1000,
        _ => return None,
    };
    Some(n)
}

/// `one` and its forms (not `a`: "45 euros a day" states no 1): a number only right before a
/// unit.
pub fn is_one(word: &str) -> bool {
    matches!(word, "one" | "un" | "uno" | "una" | "um" | "uma")
}

/// The unit a word names, as one canonical name per unit whatever the language.
pub fn unit(word: &str) -> Option<&'static str> {
    let unit = match word {
        "minute" | "minutes" | "min" | "minuto" | "minutos" => "minute",
        "hour" | "hours" | "h" | "hora" | "horas" => "hour",
        "day" | "days" | "dia" | "dias" => "day",
        "week" | "weeks" | "semana" | "semanas" => "week",
        "month" | "months" | "mes" | "meses" => "month",
        "year" | "years" | "ano" | "anos" => "year",
        "percent" | "percentage" | "ciento" | "cento" | "porcentaje" | "porcentagem" => "percent",
        "euro" | "euros" | "eur" => "eur",
        "dollar" | "dollars" | "dolar" | "dolares" | "usd" => "usd",
        "real" | "reais" | "brl" => "brl",
        "peso" | "pesos" | "clp" => "clp",
        "km" | "kilometre" | "kilometres" | "kilometer" | "kilometers" | "kilometro"
        | "kilometros" | "quilometro" | "quilometros" => "km",
        "mile" | "miles" => "mile",
        "foot" | "feet" | "ft" | "pie" | "pies" | "pes" => "foot",
        "kg" | "kilo" | "kilos" | "kilogram" | "kilograms" | "kilogramo" | "kilogramos"
        | "quilo" | "quilos" | "quilograma" | "quilogramas" => "kg",
        "metre" | "metres" | "meter" | "meters" | "metro" | "metros" | "m" => "metre",
        "employee" | "employees" | "empleado" | "empleados" | "trabajador" | "trabajadores"
        | "funcionario" | "funcionarios" | "empregado" | "empregados" | "people" | "persons"
        | "personas" | "pessoas" => "person",
        "session" | "sessions" | "sesion" | "sesiones" | "sessao" | "sessoes" => "session",
        "night" | "nights" | "noche" | "noches" | "noite" | "noites" => "night",
        _ => return None,
    };
    Some(unit)
}

/// Currency symbols. `$` names pesos in Chile and dollars elsewhere: it matches either.
pub fn currency_symbol(symbol: &str) -> Option<&'static str> {
    match symbol {
        "€" => Some("eur"),
        "$" => Some("$"),
        "R$" => Some("brl"),
        "£" => Some("gbp"),
        _ => None,
    }
}

/// Whether two units name the same thing (`$` is either dollars or pesos).
pub fn same_unit(a: &str, b: &str) -> bool {
    a == b || (a == "$" && matches!(b, "usd" | "clp")) || (b == "$" && matches!(a, "usd" | "clp"))
}

/// Kinds of day: "20 working days" and "20 calendar days" are different amounts of leave.
pub fn day_kind(word: &str) -> Option<&'static str> {
    match word {
        "working" | "business" | "workdays" | "habil" | "habiles" | "laborable" | "laborables"
        | "util" | "uteis" => Some("working"),
        "calendar" | "corrido" | "corridos" | "natural" | "naturales" | "calendario"
        | "consecutive" | "consecutivos" => Some("calendar"),
        _ => None,
    }
}

/// The month a word names, 1 to 12.
pub fn month(word: &str) -> Option<u8> {
    let m = match word {
        "january" | "enero" | "janeiro" => 1,
        "february" | "febrero" | "fevereiro" => 2,
        "march" | "marzo" | "marco" => 3,
        "april" | "abril" => 4,
        "may" | "mayo" | "maio" => 5,
        "june" | "junio" | "junho" => 6,
        "july" | "julio" | "julho" => 7,
        "august" | "agosto" => 8,
        "september" | "septiembre" | "setiembre" | "setembro" => 9,
        "october" | "octubre" | "outubro" => 10,
        "november" | "noviembre" | "novembro" => 11,
        "december" | "diciembre" | "dezembro" => 12,
        _ => return None,
    };
    Some(m)
}

/// Days of the week, 1 (Monday) to 7.
pub fn weekday(word: &str) -> Option<u8> {
    let d = match word {
        "monday" | "lunes" | "segunda" => 1,
        "tuesday" | "martes" | "terca" => 2,
        "wednesday" | "miercoles" | "quarta" => 3,
        "thursday" | "jueves" | "quinta" => 4,
        "friday" | "viernes" | "sexta" => 5,
        "saturday" | "sabado" => 6,
        "sunday" | "domingo" => 7,
        _ => return None,
    };
    Some(d)
}

/// Words that carry no claim of their own in an answer: how a model refers to its sources, and
/// discourse words. They are not counted when measuring how much of a sentence a source covers.
pub const DISCOURSE_WORDS: &[&str] = &[
    "according",
    "source",
    "sources",
    "document",
    "documents",
    "documentation",
    "text",
    "passage",
    "states",
    "stated",
    "says",
    "said",
    "mentions",
    "mentioned",
    "also",
    "however",
    "therefore",
    "thus",
    "so",
    "yes",
    "sure",
    "certainly",
    "only",
    "just",
    "each",
    "every",
    "all",
    "per",
    "both",
    "which",
    "while",
    "whereas",
    "there",
    "here",
    "also",
    "well",
    "note",
    "acuerdo",
    "segun",
    "fuente",
    "fuentes",
    "documento",
    "documentos",
    "menciona",
    "dice",
    "ademas",
    "tambien",
    "sin",
    "embargo",
    "todos",
    "todas",
    "todo",
    "toda",
    "solo",
    "solamente",
    "asi",
    "fonte",
    "fontes",
    "conforme",
    "diz",
    "alem",
    "disso",
    "tambem",
    "apenas",
    "somente",
    "todos",
    "todas",
    "assim",
    "entanto",
    "porem",
    "cual",
    "esto",
    "isso",
    "isto",
    "aqui",
    "will",
    "shall",
    "might",
    "also",
    "ser",
    "estar",
    "esta",
    "estan",
    "fue",
    "fueron",
    "sera",
    "seran",
    "foi",
    "foram",
    "sera",
    "serao",
    "esta",
    "estao",
    "pelo",
    "pela",
    "pelos",
    "pelas",
    "ante",
    "entre",
    "sobre",
    "hasta",
    "ate",
    "desde",
    "durante",
    "mediante",
    "under",
    "over",
    "after",
    "before",
    "within",
    "during",
    "up",
    "out",
    "off",
    "more",
    "than",
    "most",
    "least",
    "at",
    "mas",
    "menos",
    "mais",
    "muito",
    "mucho",
    "mucha",
    "muchos",
    "muchas",
    "muitos",
    "muitas",
    "otro",
    "otra",
    "otros",
    "otras",
    "outro",
    "outra",
    "outros",
    "outras",
    "other",
    "others",
    "such",
    "own",
    "same",
    "new",
];

/// Synonyms a faithful paraphrase uses for the words of a policy, each mapped to one word
/// (compared after stemming). Kept short and literal: a pair belongs here only if swapping the
/// words never changes what a policy sentence states.
pub const SYNONYMS: &[(&str, &str)] = &[
    // English
    ("get", "receive"),
    ("gets", "receive"),
    ("obtain", "receive"),
    ("entitled", "receive"),
    ("permitted", "allow"),
    ("permit", "allow"),
    ("allowed", "allow"),
    ("require", "need"),
    ("required", "need"),
    ("refund", "reimburse"),
    ("repaid", "reimburse"),
    ("staff", "employee"),
    ("worker", "employee"),
    ("supervisor", "manager"),
    ("purchase", "buy"),
    ("bought", "buy"),
    ("begin", "start"),
    ("began", "start"),
    ("finish", "end"),
    ("ask", "request"),
    ("send", "submit"),
    ("sent", "submit"),
    ("lapse", "expire"),
    ("forfeit", "expire"),
    ("lost", "expire"),
    ("annual", "year"),
    ("yearly", "year"),
    ("monthly", "month"),
    ("weekly", "week"),
    ("daily", "day"),
    // Spanish
    ("permitido", "allow"),
    ("permite", "allow"),
    ("permiten", "allow"),
    ("reembolso", "reimburse"),
    ("reembolsa", "reimburse"),
    ("reembolsan", "reimburse"),
    ("trabajador", "employee"),
    ("empleado", "employee"),
    ("colaborador", "employee"),
    ("jefatura", "manager"),
    ("seguido", "continuous"),
    ("seguida", "continuous"),
    ("continuo", "continuous"),
    ("continua", "continuous"),
    ("consecutive", "continuous"),
    ("jefe", "manager"),
    ("solicitud", "request"),
    ("solicita", "request"),
    ("solicitar", "request"),
    ("pedir", "request"),
    ("anual", "year"),
    ("año", "year"),
    ("mensual", "month"),
    ("mes", "month"),
    // Portuguese
    ("permitida", "allow"),
    ("funcionario", "employee"),
    ("empregado", "employee"),
    ("gestor", "manager"),
    ("chefe", "manager"),
    ("pedido", "request"),
    ("reembolsado", "reimburse"),
    ("ressarcido", "reimburse"),
    ("ano", "year"),
    ("mês", "month"),
];
