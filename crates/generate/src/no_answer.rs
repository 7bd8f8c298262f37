//! Recognises a model saying that the sources do not answer the question, in English, Spanish
//! and Portuguese: the sentence the prompt asks for, and the natural phrasings models write
//! instead ("The sources do not say", "No se menciona", "Não há informação").
//!
//! Such a sentence is not a claim to verify: it is the model abstaining. An answer made only of
//! such sentences (and sentences no source supports) is `abstained`, not `partial`.

use std::sync::LazyLock;

use regex::RegexSet;
use verity_core::Language;

use crate::terms::fold;

/// The sentence the prompt tells the model to write when the sources do not answer.
pub fn no_answer_sentence(language: Language) -> &'static str {
    match language {
        Language::English => "The sources do not answer this question.",
        Language::Spanish => "Las fuentes no responden a esta pregunta.",
        Language::Portuguese => "As fontes não respondem a esta pergunta.",
    }
}

/// The answer when the model said the sources do not answer: in the question's language, and
/// distinct from the abstention before any model was asked.
pub(crate) fn model_abstention_message(language: Language) -> &'static str {
    match language {
        Language::English => {
            "The sources found do not answer this question. The nearest passages are listed, but none of them answers it."
        }
        Language::Spanish => {
            "Las fuentes encontradas no responden a esta pregunta. Se listan los pasajes más cercanos, pero ninguno la responde."
        }
        Language::Portuguese => {
            "As fontes encontradas não respondem a esta pergunta. Os trechos mais próximos estão listados, mas nenhum a responde."
        }
    }
}

/// Patterns over the folded sentence (lowercase, accents removed, spaces collapsed).
static PATTERNS: LazyLock<RegexSet> = LazyLock::new(|| {
    const SOURCES_EN: &str = r"(sources?|documents?|documentation|passages?|context|texts?|excerpts?|information|materials?)";
    const SOURCES_ES: &str =
        r"(fuentes?|documentos?|documentacion|pasajes?|textos?|contexto|fragmentos?|informacion)";
    const SOURCES_PT: &str =
        r"(fontes?|documentos?|documentacao|trechos?|textos?|contexto|passagens?|informac(ao|oes))";
    let patterns = [
        // English
        format!(
            r"\b{SOURCES_EN}( provided| given| available| above)? (do|does|did) not (say|state|mention|contain|answer|specify|provide|include|cover|address|indicate|give|describe|explain|discuss|offer|list)\b"
        ),
        format!(
            r"\b(is|are|was|were) not (mentioned|specified|stated|provided|covered|addressed|included|answered|indicated|given|found|described|available)( anywhere)? (in|by|within) (the |these |any of the )?(provided |given )?{SOURCES_EN}"
        ),
        r"\b(there is|there's|i have|i found|i could find|i can find|contains?) (no|not enough|insufficient) (relevant |specific )?(information|mention|details?|data|answer)\b".to_string(),
        r"\b(i )?(could not|cannot|can not|am unable to|was unable to|was not able to) (find|answer|determine|say|tell)\b".to_string(),
        r"^(i do not know|i don't know|unknown|no answer|not (mentioned|specified|stated) in the sources?)\b".to_string(),
        r"\bnot (mentioned|specified|stated|provided|covered|addressed) in the\b".to_string(),
        // Spanish
        format!(
            r"\b{SOURCES_ES}( proporcionad[oa]s| dad[oa]s| disponibles| anteriores)? no (dicen|dice|mencionan|menciona|indican|indica|contienen|contiene|responden|responde|especifican|especifica|incluyen|incluye|proporcionan|proporciona|informan|abordan|precisan|hablan|explican|dan|detallan|permiten responder)\b"
        ),
        r"\bno se (menciona|mencionan|especifica|especifican|indica|indican|dice|informa|encuentra|encuentran|precisa|detalla|aborda|proporciona|hace mencion|habla|puede determinar|puede responder)\b".to_string(),
        r"\bno (hay|tengo|existe|existen|se encontro|se encontraron|encontre|se dispone de|dispongo de|contienen|contiene) (suficiente |ninguna |informacion suficiente|datos suficientes)?(informacion|datos|mencion|respuesta|referencia)".to_string(),
        r"\bno (puedo|es posible|fue posible|pude) (responder|determinar|contestar|saber|encontrar|precisar)\b".to_string(),
        r"\bno (esta|estan|aparece|aparecen|figura|figuran) (mencionad|especificad|indicad|detallad|en las fuentes|en los documentos)".to_string(),
        // Portuguese
        format!(
            r"\b{SOURCES_PT}( fornecid[oa]s| dad[oa]s| disponiveis| acima)? nao (dizem|diz|mencionam|menciona|indicam|indica|contem|respondem|responde|especificam|especifica|incluem|inclui|fornecem|fornece|informam|informa|abordam|trazem|traz|falam|fala|explicam|detalham|permitem responder)\b"
        ),
        r"\bnao (ha|tenho|existe|existem|encontrei|foi encontrada|foram encontradas|consta|constam|contem) (nenhuma |informac(ao|oes) suficientes? |dados suficientes )?(informac|dados|mencao|resposta|referencia)".to_string(),
        r"\bnao (e|sao|esta|estao|foi|foram) (mencionad|especificad|indicad|informad|detalhad|possivel (responder|determinar|saber))".to_string(),
        r"\bnao se (menciona|mencionam|especifica|indica|informa|diz|sabe)\b".to_string(),
        r"\bnao (consigo|posso|e possivel|foi possivel|pude) (responder|determinar|encontrar|saber|dizer)\b".to_string(),
    ];
    RegexSet::new(patterns).expect("valid no-answer patterns")
});

/// Whether `sentence` (markers removed) says the sources do not answer the question.
pub(crate) fn says_no_answer(sentence: &str) -> bool {
    let folded: String = sentence
        .chars()
        .flat_map(char::to_lowercase)
        .map(fold)
        .map(|c| if c == '’' { '\'' } else { c })
        .collect::<String>()
        .replace("can't", "can not")
        .replace("n't", " not")
        .replace("cannot", "can not");
    let folded = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    let folded = folded.trim_start_matches(|c: char| !c.is_alphanumeric());
    PATTERNS.is_match(folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompted_sentences_are_recognised() {
        for language in Language::ALL {
            assert!(says_no_answer(no_answer_sentence(language)), "{language:?}");
        }
    }

    #[test]
    fn natural_phrasings_are_recognised_in_english() {
        for s in [
            "The sources do not say how many days can be carried over.",
            "The provided documents don't mention a carry-over limit.",
            "This is not mentioned in the sources.",
            "There is no information about parking in the sources.",
            "I could not find an answer in the documents.",
            "I don't know.",
            "The context does not specify the deadline.",
        ] {
            assert!(says_no_answer(s), "{s}");
        }
    }

    #[test]
    fn natural_phrasings_are_recognised_in_spanish() {
        for s in [
            "No se menciona cuántos días se pueden acumular.",
            "Las fuentes no indican el plazo.",
            "Los documentos proporcionados no especifican un monto máximo.",
            "No hay información sobre el estacionamiento en las fuentes.",
            "No puedo responder con la información disponible.",
            "No se especifica en los documentos.",
        ] {
            assert!(says_no_answer(s), "{s}");
        }
    }

    #[test]
    fn natural_phrasings_are_recognised_in_portuguese() {
        for s in [
            "Não há informação sobre isso nas fontes.",
            "As fontes não mencionam o prazo.",
            "Os documentos fornecidos não especificam o valor.",
            "Não é mencionado quantos dias podem ser vendidos.",
            "Não foi possível responder com base nas fontes.",
            "Não há informações suficientes nos documentos.",
        ] {
            assert!(says_no_answer(s), "{s}");
        }
    }

    #[test]
    fn claims_with_negations_are_not_abstentions() {
        for s in [
            "Employees may not carry over unused days.",
            "Unused days do not expire before March.",
            "No receipts are needed for meals under 10 euros.",
            "Los días no utilizados no se pagan.",
            "Las horas extra no se compensan con días libres.",
            "Os dias não utilizados não são pagos.",
            "O vale-refeição não é pago nas férias.",
            "Documents do not need a signature if they are sent through the portal.",
        ] {
            assert!(!says_no_answer(s), "{s}");
        }
    }
}
