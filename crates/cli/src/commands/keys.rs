//! `verity keys`: API keys created, listed and revoked.

use clap::Subcommand;
use verity_cli::settings::Settings;
use verity_core::Scope;
use verity_store::Store;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key; it is printed once and only its hash is stored.
    Create {
        /// Who or what uses the key.
        #[arg(long)]
        name: String,
        /// What it may do, comma-separated: query, ingest, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<Scope>,
        /// The collections it may use, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        collections: Option<Vec<String>>,
        /// Its access groups: it reads documents of these groups and documents without groups.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Print {"id", "key"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never the keys themselves), with their last use.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id; the next request with it is refused.
    Revoke { id: String },
}

pub(crate) async fn keys(settings: Settings, which: KeysCommand) -> anyhow::Result<()> {
    // Only the store: no data-directory lock, so keys can be managed while a server runs.
    let store = match &settings.database.url {
        Some(url) => Store::connect(url).await?,
        None => {
            std::fs::create_dir_all(&settings.data_dir)?;
            Store::open_sqlite(&settings.database_path()).await?
        }
    };
    match which {
        KeysCommand::Create {
            name,
            scopes,
            collections,
            groups,
            json,
        } => {
            let created =
                verity_auth::create_key(&store, &name, &scopes, collections.as_deref(), &groups)
                    .await?;
            if json {
                println!("{}", serde_json::to_string(&created)?);
            } else {
                println!(
                    "created key {} ({name}). It is shown only now; store it safely:\n{}",
                    created.id, created.key
                );
            }
        }
        KeysCommand::List { json } => {
            let keys = store.list_api_keys().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!(
                    "id            name                  scopes              collections   groups        last used   revoked"
                );
                for k in keys {
                    println!(
                        "{:<13} {:<21} {:<19} {:<13} {:<13} {:<11} {}",
                        k.id,
                        k.name,
                        k.scopes.join(","),
                        k.collections.map_or("all".to_string(), |c| c.join(",")),
                        k.groups.join(","),
                        k.last_used_at
                            .map_or("never".to_string(), |t| t.to_string()),
                        k.revoked_at
                            .map_or("no".to_string(), |t| format!("yes ({t})"))
                    );
                }
            }
        }
        KeysCommand::Revoke { id } => {
            store.revoke_api_key(&id).await?;
            println!("revoked key {id}: requests with it are refused from now on");
        }
    }
    Ok(())
}
