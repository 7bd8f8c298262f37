use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tempfile::TempDir;
use verity_cli::settings::{Overrides, Settings};
use verity_core::Caller;
use verity_core::{RetrievedChunk, SearchFilter};
use verity_service::Verity;
use verity_service::pipeline::IngestInput;
use verity_service::pipeline::{IngestOptions, IngestReport, Quiet};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn knowledge_dir() -> PathBuf {
    repo_root().join("knowledge")
}

/// Settings for a data directory, everything else from the defaults (and the environment,
/// e.g. VERITY_EMBED__MODEL_DIR set by CI).
pub fn settings_for(data_dir: &Path) -> Settings {
    Settings::load(
        None,
        &Overrides {
            data_dir: Some(data_dir.to_path_buf()),
            bind: None,
        },
    )
    .unwrap()
}

/// Writes a document `name` (which may name subdirectories) into `dir`, creating the folders
/// it needs; returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// A Verity for one test, built by [`TestApp::builder`]: a temporary directory holding its data
/// directory (`data/`) and its documents (`docs/`), the service opened from settings as
/// `verity serve` opens it, and, when served, a server on a free loopback port.
pub struct TestApp {
    pub verity: Arc<Verity>,
    pub settings: Settings,
    /// The server's base URL (`http://127.0.0.1:PORT`); empty unless built with `serve`.
    pub base_url: String,
    pub dir: TempDir,
}

/// How a [`TestApp`] is made: settings (the defaults and the environment, then the test's
/// changes), documents ingested before it is opened to callers, and the language model.
pub struct TestAppBuilder {
    dir: TempDir,
    settings: Settings,
    documents: Vec<(Vec<PathBuf>, IngestOptions)>,
    generating: bool,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings_for(&dir.path().join("data"));
        TestAppBuilder {
            dir,
            settings,
            documents: Vec::new(),
            generating: false,
        }
    }

    /// Serves the opened service over HTTP (on the current runtime), as `verity serve` does.
    pub async fn serve(mut self) -> TestApp {
        self.base_url = serve(&self.settings, Arc::clone(&self.verity)).await;
        self
    }

    /// A folder for documents beside the data directory.
    pub fn docs(&self) -> PathBuf {
        docs_in(self.dir.path())
    }

    pub async fn ingest(&self, path: &Path, collection: &str, prune: bool) -> IngestReport {
        let input = IngestInput::Paths(vec![path.to_path_buf()]);
        let options = IngestOptions::new(collection).with_prune(prune);
        self.verity
            .ingest(&Caller::local(), input, &options, &Quiet)
            .await
            .unwrap()
    }

    pub async fn search(&self, question: &str, collection: &str, k: usize) -> Vec<RetrievedChunk> {
        self.verity
            .retrieve(
                &Caller::local(),
                question,
                &SearchFilter::collection(collection),
                k,
                self.settings.query.mode,
            )
            .await
            .unwrap()
            .0
    }

    pub async fn index_count(&self, collection: &str) -> usize {
        self.verity
            .index()
            .count(&SearchFilter::collection(collection))
            .await
            .unwrap()
    }

    /// Chunks the store holds for a collection.
    pub async fn store_count(&self, collection: &str) -> usize {
        let mut total = 0;
        for document in self
            .verity
            .store()
            .documents_in_collection(collection)
            .await
            .unwrap()
        {
            total += self
                .verity
                .store()
                .chunks_of(&document.id)
                .await
                .unwrap()
                .len();
        }
        total
    }
}

fn docs_in(dir: &Path) -> PathBuf {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    docs
}

impl TestAppBuilder {
    /// The test's temporary directory (the data directory is `data/` in it).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A folder for documents beside the data directory.
    pub fn docs(&self) -> PathBuf {
        docs_in(self.dir.path())
    }

    pub fn settings(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(&mut self.settings);
        self
    }

    /// Ingests `paths` with `options` (as the operator) when the app is opened; every file
    /// must go in.
    pub fn ingest(mut self, paths: Vec<PathBuf>, options: IngestOptions) -> Self {
        self.documents.push((paths, options));
        self
    }

    /// Connects the language model the settings name once the documents are in.
    pub fn generating(mut self) -> Self {
        self.generating = true;
        self
    }

    /// Opens the service (no server).
    pub async fn open(self) -> TestApp {
        let mut verity = verity_cli::open(&self.settings).await.unwrap();
        for (paths, options) in self.documents {
            let report = verity
                .ingest(
                    &Caller::local(),
                    IngestInput::Paths(paths),
                    &options,
                    &Quiet,
                )
                .await
                .unwrap();
            assert_eq!(report.documents_failed, 0, "{:?}", report.failures);
        }
        if self.generating {
            verity_cli::enable_generation(&mut verity, &self.settings)
                .await
                .unwrap();
        }
        TestApp {
            verity: Arc::new(verity),
            settings: self.settings,
            base_url: String::new(),
            dir: self.dir,
        }
    }

    /// Opens the service and serves it over HTTP (on the current runtime).
    pub async fn serve(self) -> TestApp {
        self.open().await.serve().await
    }
}

/// A runtime for a test's server: multi-threaded, so that the server keeps answering while the
/// test thread blocks on its own requests.
pub fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Serves `verity` (opened from `settings`) over HTTP on a free loopback port (on the current
/// runtime); returns its base URL.
pub async fn serve(settings: &Settings, verity: Arc<Verity>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = verity_cli::build_server(settings, verity, listener)
        .await
        .unwrap();
    let base_url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    base_url
}

/// `knowledge/` ingested once per test run and served over HTTP on a random port. Lives in its
/// own runtime so that every test (each on its own thread) can share it.
pub struct KnowledgeApp {
    pub runtime: tokio::runtime::Runtime,
    pub verity: Arc<Verity>,
    pub base_url: String,
    _app: TestApp,
}

pub fn knowledge_app() -> &'static KnowledgeApp {
    static APP: OnceLock<KnowledgeApp> = OnceLock::new();
    APP.get_or_init(|| {
        let runtime = server_runtime();
        let app = runtime.block_on(
            TestApp::builder()
                .ingest(vec![knowledge_dir()], IngestOptions::new("default"))
                .serve(),
        );
        KnowledgeApp {
            runtime,
            verity: Arc::clone(&app.verity),
            base_url: app.base_url.clone(),
            _app: app,
        }
    })
}

/// A Postgres database of a test's own, on the server at `DATABASE_URL`; `None` (with a note on
/// stderr) when `DATABASE_URL` is not set. Dropped by [`TestDatabase::drop_database`].
pub struct TestDatabase {
    pub url: String,
    admin: sqlx::AnyPool,
    name: String,
}

impl TestDatabase {
    pub async fn create(purpose: &str) -> Option<Self> {
        let Ok(admin_url) = std::env::var("DATABASE_URL") else {
            eprintln!("{purpose}: not run, DATABASE_URL is not set (scripts/test.sh sets it)");
            return None;
        };
        sqlx::any::install_default_drivers();
        let admin = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .unwrap();
        let name = format!("verity_e2e_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let url = format!("{}/{name}", &admin_url[..admin_url.rfind('/').unwrap()]);
        Some(Self { url, admin, name })
    }

    pub async fn drop_database(self) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await
        .unwrap();
    }
}

/// The `verity` binary on `data`, with the store at `database_url` (the data directory's SQLite
/// when `None`), quiet logs, and optionally a crash at the fault point `fault`
/// (`VERITY_FAULT_INJECT`).
pub fn verity_command(
    data: &Path,
    database_url: Option<&str>,
    args: &[&str],
    fault: Option<&str>,
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_verity"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("VERITY_DATA_DIR")
        .env("VERITY_LOG", "error");
    match database_url {
        Some(url) => command.env("VERITY_DATABASE_URL", url),
        None => command.env_remove("VERITY_DATABASE_URL"),
    };
    if let Some(point) = fault {
        command.env("VERITY_FAULT_INJECT", point);
    }
    command
}

/// The boundary of the multipart bodies [`multipart`] writes.
pub const BOUNDARY: &str = "verity-test-boundary-7f3a";

/// A multipart/form-data body of `(field name, file name, bytes)` parts, written by hand so
/// tests can send malformed ones too.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let disposition = match file_name {
            Some(file) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// An HTTP answer: status, body as JSON (`null` if it is not JSON) and as text.
pub struct Reply {
    pub status: reqwest::StatusCode,
    pub body: serde_json::Value,
    pub text: String,
}

pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Reply { status, body, text }
}

/// Where `scripts/models.sh` puts SmolLM2: `<data dir>/models/llm/smollm2-135m`, the data
/// directory being VERITY_DATA_DIR (relative to the repository root, as the script runs there)
/// or `data/`.
pub fn smollm2_dir() -> PathBuf {
    let data = std::env::var_os("VERITY_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data"));
    let dir = repo_root().join(data).join("models/llm/smollm2-135m");
    let has_gguf = std::fs::read_dir(&dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "gguf"))
    });
    assert!(
        has_gguf,
        "SmolLM2-135M is not installed in {}: run `scripts/models.sh smollm2-135m` (scripts/test.sh \
         does it before the tests)",
        dir.display()
    );
    dir
}
