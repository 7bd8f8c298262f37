//! `verity ask`: one question, answered and printed with its citations.

use anyhow::Context;
use clap::Args;
use verity_cli::settings::Settings;
use verity_core::{
    AnswerEvent, AnswerService, Caller, GroundingStatus, QueryRequest, RetrievalMode,
};

#[derive(Args)]
pub(crate) struct AskArgs {
    question: String,
    #[arg(long)]
    collection: Option<String>,
    /// Passages to retrieve and list.
    #[arg(long)]
    top_k: Option<u32>,
    /// dense, sparse or hybrid (default: query.mode).
    #[arg(long)]
    mode: Option<RetrievalMode>,
    /// Print the answer object as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn ask(settings: Settings, args: AskArgs) -> anyhow::Result<()> {
    let mut verity = verity_cli::open(&settings).await?;
    verity_cli::enable_generation(&mut verity, &settings).await?;
    let request = QueryRequest {
        question: args.question,
        collection: args.collection,
        top_k: args.top_k,
        mode: args.mode,
        filter: None,
        stream: !args.json,
    };
    if args.json {
        let (answer, _) = verity.query(&Caller::local(), request).await?;
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    // Text as it is generated, then the verified answer if verification changed it.
    let mut events = verity.query_stream(&Caller::local(), request).await?;
    let mut streamed = String::new();
    let mut answer = None;
    while let Some(event) = events.recv().await {
        match event {
            AnswerEvent::Delta(text) => {
                print!("{text}");
                std::io::Write::flush(&mut std::io::stdout())?;
                streamed.push_str(&text);
            }
            AnswerEvent::Grounding(a) => answer = Some(a),
            AnswerEvent::Error { code, message } => {
                anyhow::bail!("answering failed ({}): {message}", code.as_str())
            }
            AnswerEvent::Sources(_) | AnswerEvent::Done(_) => {}
        }
    }
    let answer = answer.context("the answer ended without its verification")?;
    println!();
    if streamed.trim() != answer.answer.trim() {
        println!("\nVerified answer:\n{}", answer.answer);
    }
    println!(
        "\nGrounding: {}{}",
        answer.grounding.status.as_str(),
        answer
            .grounding
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    for removed in &answer.grounding.unsupported {
        println!("  removed: {:?}: {}", removed.sentence, removed.reason);
    }
    for set in &answer.grounding.attributed {
        let cited = |markers: &[u32]| -> String {
            if markers.is_empty() {
                "nothing".to_string()
            } else {
                markers.iter().map(|n| format!("[{n}]")).collect()
            }
        };
        println!(
            "  {}: {:?}: the model cited {}, the sources say {}",
            set.action.as_str(),
            set.sentence,
            cited(&set.model_citations),
            cited(&set.citations)
        );
    }
    let heading = match answer.grounding.status {
        GroundingStatus::Abstained => "Nearest passages (none supports an answer):",
        _ => "Sources:",
    };
    println!("\n{heading}");
    for c in &answer.citations {
        let excerpt: String = c
            .text
            .chars()
            .take(160)
            .collect::<String>()
            .replace('\n', " ");
        println!(
            "[{}] {} ({}, chars {}-{}, similarity {:.2})\n    {excerpt}…",
            c.id, c.title, c.source, c.start, c.end, c.similarity
        );
    }
    Ok(())
}
