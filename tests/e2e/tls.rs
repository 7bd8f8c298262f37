//! Transport and browser rules of `verity serve`: HTTPS with TLS 1.3 (a certificate the test
//! generates; TLS 1.2 and plain-HTTP clients are refused), and CORS for configured origins only.

use crate::helpers::{TestApp, server_runtime};

#[test]
fn the_api_is_served_over_tls_13_only() {
    let runtime = server_runtime();
    let builder = TestApp::builder();
    let dir = builder.path().to_path_buf();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();

    runtime.block_on(async {
        let app = builder
            .settings(|s| {
                s.server.tls_cert = Some(cert);
                s.server.tls_key = Some(key);
            })
            .serve()
            .await;
        let base_url = &app.base_url;
        let address = base_url.trim_start_matches("http://").to_string();

        let root = reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap();
        let client = |max: Option<reqwest::tls::Version>| {
            let mut builder = reqwest::Client::builder()
                .use_rustls_tls()
                .tls_built_in_root_certs(false)
                .add_root_certificate(root.clone());
            if let Some(max) = max {
                builder = builder.max_tls_version(max);
            }
            builder.build().unwrap()
        };
        let url = format!("https://{address}/healthz");

        let ok = client(None).get(&url).send().await.unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.text().await.unwrap(), r#"{"status":"ok"}"#);

        let tls12 = client(Some(reqwest::tls::Version::TLS_1_2))
            .get(&url)
            .send()
            .await;
        assert!(tls12.is_err(), "a TLS 1.2 client was served");

        let plain = reqwest::get(format!("http://{address}/healthz")).await;
        assert!(
            plain.is_err() || plain.unwrap().status() != 200,
            "plain HTTP was served on the TLS port"
        );
    });
}

#[test]
fn configured_origins_and_only_they_may_call_from_a_browser() {
    let runtime = server_runtime();
    runtime.block_on(async {
        let app = TestApp::builder()
            .settings(|s| s.server.cors_origins = vec!["https://intranet.example.com".into()])
            .serve()
            .await;
        let base_url = &app.base_url;
        let preflight = |origin: &'static str| {
            reqwest::Client::new()
                .request(reqwest::Method::OPTIONS, format!("{base_url}/v1/query"))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization, content-type",
                )
                .send()
        };
        let allowed = preflight("https://intranet.example.com").await.unwrap();
        assert!(allowed.status().is_success(), "{}", allowed.status());
        assert_eq!(
            allowed.headers()["access-control-allow-origin"],
            "https://intranet.example.com"
        );
        let other = preflight("https://evil.example").await.unwrap();
        assert!(other.headers().get("access-control-allow-origin").is_none());
    });
}
