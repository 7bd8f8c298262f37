//! The deployment files name only what the binary reads: every service, port, volume and
//! environment variable of docker-compose.yml (and the Dockerfile's ENV) is checked against the
//! settings Verity knows. No Docker engine runs here, so the files are checked, not run.

use std::collections::{BTreeMap, HashSet};

use serde_yaml_ng::Value;

use crate::helpers::repo_root;

/// Every environment variable Verity reads: one per key of config/default.toml
/// (`VERITY_<KEY>` at the top level, `VERITY_<SECTION>__<KEY>` in a section) and a few more.
fn known_variables() -> HashSet<String> {
    let defaults: toml::Table = std::fs::read_to_string(repo_root().join("config/default.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let mut known: HashSet<String> = [
        "VERITY_DATABASE_URL",
        "VERITY_QDRANT_URL",
        "VERITY_QDRANT_API_KEY",
        "VERITY_CONFIG",
        "VERITY_LOG",
        "ORT_DYLIB_PATH",
        "VERITY_GENERATION_BACKEND",
        "VERITY_AUTH_MODE",
        "VERITY_OPENAI_BASE_URL",
        "VERITY_OPENAI_MODEL",
        "VERITY_OPENAI_API_KEY",
        "VERITY_MISTRALRS_MODEL_DIR",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for (key, value) in &defaults {
        match value {
            toml::Value::Table(section) => {
                for (inner, value) in section {
                    let name = format!("VERITY_{}__{}", key.to_uppercase(), inner.to_uppercase());
                    // A table in a section ([generation.openai]) has keys one level deeper.
                    if let toml::Value::Table(nested) = value {
                        for deeper in nested.keys() {
                            known.insert(format!("{name}__{}", deeper.to_uppercase()));
                        }
                    } else {
                        known.insert(name);
                    }
                }
            }
            _ => {
                known.insert(format!("VERITY_{}", key.to_uppercase()));
            }
        }
    }
    known
}

fn compose() -> Value {
    let mut compose: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap(),
    )
    .unwrap();
    // Resolve `<<: *anchor` merge keys, as Docker Compose does.
    compose.apply_merge().unwrap();
    compose
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_mapping()
        .expect("environment as a mapping")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{v:?}")),
            )
        })
        .collect()
}

/// `ENV A=1 \ B=2` and `ENV A 1` lines of the Dockerfile.
fn dockerfile_env() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile"))
        .unwrap()
        .replace("\\\n", " ");
    let mut env = BTreeMap::new();
    for line in text.lines().filter_map(|l| l.trim().strip_prefix("ENV ")) {
        for pair in line.split_whitespace() {
            if let Some((k, v)) = pair.split_once('=') {
                env.insert(k.to_string(), v.to_string());
            }
        }
    }
    env
}

fn dockerfile_directive(name: &str) -> Vec<String> {
    std::fs::read_to_string(repo_root().join("Dockerfile"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix(&format!("{name} "))
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn compose_and_dockerfile_set_only_variables_verity_reads() {
    let known = known_variables();
    let compose = compose();
    for service in ["verity", "worker"] {
        for name in environment(&compose["services"][service]).keys() {
            assert!(
                known.contains(name),
                "{name} is set for {service} but Verity does not read it"
            );
        }
    }
    for name in dockerfile_env().keys() {
        assert!(
            known.contains(name),
            "the Dockerfile sets {name} but Verity does not read it"
        );
    }
}

#[test]
fn servers_and_workers_share_the_store_and_the_qdrant_server() {
    let compose = compose();
    let verity = environment(&compose["services"]["verity"]);
    let worker = environment(&compose["services"]["worker"]);
    for key in ["VERITY_DATABASE_URL", "VERITY_QDRANT_URL"] {
        assert_eq!(
            verity.get(key),
            worker.get(key),
            "{key} differs between verity and worker"
        );
    }
    // The Qdrant URL names the qdrant service on Qdrant's gRPC port.
    assert_eq!(verity["VERITY_QDRANT_URL"], "http://qdrant:6334");
    let qdrant_image = compose["services"]["qdrant"]["image"].as_str().unwrap();
    assert!(qdrant_image.starts_with("qdrant/qdrant:"), "{qdrant_image}");
    let command: Vec<&str> = compose["services"]["worker"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(command, ["worker", "--follow"]);
}

#[test]
fn the_verity_service_port_data_volume_and_database_fit_together() {
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    let verity = &compose["services"]["verity"];
    let postgres = &compose["services"]["postgres"];
    let env = environment(verity);
    let image_env = dockerfile_env();

    // The port the server binds is the one published and exposed.
    let bind = env
        .get("VERITY_SERVER__BIND")
        .or(image_env.get("VERITY_SERVER__BIND"))
        .unwrap();
    let port = bind.rsplit(':').next().unwrap();
    let published: Vec<&str> = verity["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().rsplit(':').next().unwrap())
        .collect();
    assert!(
        published.contains(&port),
        "bind port {port} is not published: {published:?}"
    );
    assert!(
        dockerfile_directive("EXPOSE").iter().any(|p| p == port),
        "Dockerfile does not EXPOSE {port}"
    );

    // The data directory is a volume, in the compose file and the image.
    let data_dir = env
        .get("VERITY_DATA_DIR")
        .or(image_env.get("VERITY_DATA_DIR"))
        .unwrap();
    let mounts: Vec<&str> = verity["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        mounts
            .iter()
            .any(|m| m.split(':').nth(1) == Some(data_dir.as_str())),
        "{data_dir} is not a volume: {mounts:?}"
    );
    assert!(dockerfile_directive("VOLUME").iter().any(|v| v == data_dir));
    let declared = compose["volumes"].as_mapping().unwrap();
    for mount in mounts {
        let source = mount.split(':').next().unwrap();
        if !source.starts_with('.') && !source.starts_with('/') {
            assert!(
                declared.contains_key(source),
                "named volume {source} is not declared"
            );
        }
    }

    // The database URL names the postgres service with its user, password and database.
    let url = &env["VERITY_DATABASE_URL"];
    let pg = environment(postgres);
    let expected = format!(
        "postgres://{}:{}@postgres:5432/{}",
        pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"]
    );
    assert_eq!(url, &expected);
    assert!(services.contains_key("postgres"));
    assert!(verity["depends_on"]["postgres"]["condition"].as_str() == Some("service_healthy"));

    // The image runs as a non-root user and has a health check on a route the server has.
    assert!(dockerfile_directive("USER").iter().any(|u| u != "root"));
    let health = dockerfile_directive("HEALTHCHECK").join(" ");
    assert!(
        health.contains(&format!("127.0.0.1:{port}/readyz")),
        "{health}"
    );
}

#[test]
fn the_image_points_verity_at_the_model_and_onnx_runtime_it_ships() {
    let env = dockerfile_env();
    let copies = dockerfile_directive("COPY").join("\n");
    let model_dir = &env["VERITY_EMBED__MODEL_DIR"];
    let runtime = &env["VERITY_EMBED__ONNXRUNTIME"];
    assert!(model_dir.starts_with("/opt/verity/models") && copies.contains("/opt/verity/models"));
    assert!(
        copies.contains(runtime.as_str()),
        "the image does not copy {runtime}"
    );
}

#[test]
fn the_gpu_engine_runs_only_in_the_gpu_profile() {
    let compose = compose();
    let engine = &compose["services"]["engine"];
    let profiles: Vec<&str> = engine["profiles"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(profiles, ["gpu"]);
    let devices = &engine["deploy"]["resources"]["reservations"]["devices"][0];
    assert_eq!(devices["driver"].as_str(), Some("nvidia"));
    for service in ["postgres", "qdrant", "verity", "worker"] {
        assert!(
            compose["services"][service].get("profiles").is_none(),
            "{service} must run without a profile"
        );
    }
}

#[test]
fn the_cpu_engine_runs_only_in_the_cpu_profile_under_the_engines_name() {
    let compose = compose();
    let engine = &compose["services"]["engine-cpu"];
    assert_eq!(engine["profiles"][0].as_str(), Some("cpu"));
    assert_eq!(engine["profiles"].as_sequence().unwrap().len(), 1);
    // Verity's VERITY_OPENAI_BASE_URL names `engine`: the CPU engine answers to it too.
    let aliases = &engine["networks"]["default"]["aliases"];
    assert_eq!(aliases[0].as_str(), Some("engine"));
    let base_url = compose["x-verity-environment"]["VERITY_OPENAI_BASE_URL"]
        .as_str()
        .unwrap();
    let command: Vec<&str> = engine["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let port = command[command.iter().position(|a| *a == "--port").unwrap() + 1];
    assert_eq!(base_url, format!("http://engine:{port}/v1"));
}
