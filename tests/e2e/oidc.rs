//! OpenID Connect bearer tokens (`auth.mode = "keys+oidc"`): tokens from the configured issuer
//! are accepted with their groups; expired, not-yet-valid, wrong-audience, wrong-issuer,
//! unsigned (`alg: none`), HMAC-signed-with-the-public-key and foreign-key tokens get 401.

use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use verity_auth::{AuthMode, create_key};
use verity_core::Scope;
use verity_service::pipeline::IngestOptions;

use crate::helpers::{TestApp, repo_root, server_runtime};

const ISSUER: &str = "https://login.example.com/realms/acme";
const AUDIENCE: &str = "verity-api";

struct OidcApp {
    runtime: tokio::runtime::Runtime,
    base_url: String,
    api_key: String,
    _app: TestApp,
}

fn app() -> &'static OidcApp {
    static APP: OnceLock<OidcApp> = OnceLock::new();
    APP.get_or_init(|| {
        let runtime = server_runtime();
        let (app, api_key) = runtime.block_on(async {
            let mut builder = TestApp::builder().settings(|s| {
                s.auth.mode = AuthMode::KeysAndOidc;
                s.auth.oidc.issuer = Some(ISSUER.into());
                s.auth.oidc.audience = Some(AUDIENCE.into());
                s.auth.oidc.jwks_file = Some(repo_root().join("tests/data/oidc/jwks.json"));
            });
            let docs = builder.docs();
            for (name, text, group) in [
                ("payroll.md", "# Payroll\n\nSalaries are paid on the 25th of each month by bank transfer.\n", "finance"),
                ("parking.md", "# Parking\n\nParking spaces are assigned by the facilities team every January.\n", "facilities"),
            ] {
                let path = docs.join(name);
                std::fs::write(&path, text).unwrap();
                builder = builder.ingest(
                    vec![path],
                    IngestOptions::new("default").with_groups(vec![group.into()]),
                );
            }
            let app = builder.serve().await;
            let key = create_key(app.verity.store(), "bot", &[Scope::Query], None, &["finance".into()])
                .await
                .unwrap();
            (app, key.key)
        });
        OidcApp {
            runtime,
            base_url: app.base_url.clone(),
            api_key,
            _app: app,
        }
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "maria@acme.example",
        "iat": now(), "exp": now() + 600, "groups": ["finance"]
    })
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("tests/data/oidc").join(name)).unwrap()
}

fn sign(claims: &Value, key_file: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(&pem(key_file)).unwrap(),
    )
    .unwrap()
}

fn ask(token: &str, question: &str) -> (StatusCode, String) {
    let app = app();
    app.runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/query", app.base_url))
            .bearer_auth(token)
            .json(&json!({"question": question}))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    })
}

#[test]
fn a_token_from_the_issuer_is_accepted_with_its_groups() {
    let token = sign(&claims(), "issuer-private.pem");
    let (status, text) = ask(&token, "When are salaries paid?");
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("payroll.md"), "{text}");
    // The facilities group's document is not the caller's.
    let (status, text) = ask(&token, "How are parking spaces assigned?");
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(!text.contains("parking.md"), "{text}");

    let mut facilities = claims();
    facilities["groups"] = json!("facilities");
    let (_, text) = ask(
        &sign(&facilities, "issuer-private.pem"),
        "How are parking spaces assigned?",
    );
    assert!(
        text.contains("parking.md") && !text.contains("payroll.md"),
        "{text}"
    );
}

#[test]
fn api_keys_work_beside_tokens() {
    let (status, text) = ask(&app().api_key, "When are salaries paid?");
    assert_eq!(status, StatusCode::OK, "{text}");
}

#[test]
fn bad_tokens_are_refused_with_401() {
    let mut cases: Vec<(&str, String)> = Vec::new();
    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    cases.push(("expired", sign(&expired, "issuer-private.pem")));
    let mut early = claims();
    early["nbf"] = json!(now() + 3600);
    cases.push(("not yet valid", sign(&early, "issuer-private.pem")));
    let mut audience = claims();
    audience["aud"] = json!("another-api");
    cases.push(("wrong audience", sign(&audience, "issuer-private.pem")));
    let mut issuer = claims();
    issuer["iss"] = json!("https://evil.example.com");
    cases.push(("wrong issuer", sign(&issuer, "issuer-private.pem")));
    cases.push(("foreign key", sign(&claims(), "attacker-private.pem")));

    // alg "none": a token with no signature at all.
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims())
    );
    cases.push(("alg none", unsigned));

    // HS256 "signed" with the issuer's public key as the HMAC secret (algorithm confusion).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("test-key-1".into());
    let confused = encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(&pem("issuer-public.pem")),
    )
    .unwrap();
    cases.push(("HS256 with the public key", confused));
    cases.push(("garbage", "not.a.jwt".to_string()));

    for (what, token) in cases {
        let (status, text) = ask(&token, "When are salaries paid?");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {text}");
        assert!(!text.contains("payroll.md"), "{what}");
    }
}
