//! An outside issuer's keys by its JWKS URL, over the real binary (issue #17, item 7): a test
//! issuer serves a key set it can change; the server takes a key the issuer adds without a
//! restart, stops taking one it withdraws once it has looked again, refuses keys of another
//! type or algorithm, and does not hammer the issuer with made-up key ids or when it is down.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};

use base64::Engine as _;
use chrono::Utc;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const ISSUER: &str = "https://login.zwfw.example.gov.cn";

fn openssl(args: &[&str]) -> String {
    let out = std::process::Command::new("openssl").args(args).output().expect("openssl is on the machine");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// An RSA key of the issuer: what it signs with, and its public half as a JWK named `kid`.
struct IssuerKey {
    kid: &'static str,
    signing: EncodingKey,
    jwk: Value,
}

impl IssuerKey {
    fn new(dir: &std::path::Path, kid: &'static str) -> Self {
        let path = dir.join(format!("{kid}.pem"));
        openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path.to_str().unwrap()]);
        let modulus = openssl(&["rsa", "-in", path.to_str().unwrap(), "-noout", "-modulus"]);
        let n = hex::decode(modulus.trim().trim_start_matches("Modulus=")).unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64.encode(n), "e": "AQAB"});
        Self { kid, signing: EncodingKey::from_rsa_pem(&std::fs::read(&path).unwrap()).unwrap(), jwk }
    }

    /// A token for the demo's window officer, signed with this key under `kid`.
    fn token(&self, kid: &str) -> String {
        let now = Utc::now().timestamp();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_string());
        encode(&header, &json!({"sub": "window-01", "roles": ["window"], "iss": ISSUER, "iat": now, "exp": now + 600}), &self.signing).unwrap()
    }
}

/// The test issuer: its key set, whether it answers, and how often it was asked.
#[derive(Clone, Default)]
struct Issuer {
    keys: Arc<Mutex<Vec<Value>>>,
    down: Arc<Mutex<bool>>,
    asked: Arc<AtomicUsize>,
}

impl Issuer {
    async fn serve(&self) -> String {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let me = me.clone();
                async move {
                    me.asked.fetch_add(1, Ordering::SeqCst);
                    if *me.down.lock().unwrap() {
                        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down".to_string());
                    }
                    (axum::http::StatusCode::OK, json!({"keys": *me.keys.lock().unwrap()}).to_string())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn publish(&self, keys: &[&IssuerKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

/// What a request with `token` is answered: `ok`, or the error's code and message.
async fn ask(http: &reqwest::Client, base: &str, token: &str) -> Result<(), String> {
    let r = crate::http::graphql_as(http, base, token, json!({"query": "{ workflowInstances { totalCount } }"})).await;
    match r["errors"][0]["extensions"]["code"].as_str() {
        None => Ok(()),
        Some(code) => Err(format!("{code}: {}", r["errors"][0]["message"])),
    }
}

fn server_env<'a>(url: &'a str, min_refresh: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("PLEDGEFLOW_JWT_ISSUER", ISSUER), ("PLEDGEFLOW_JWT_JWKS_URL", url), ("PLEDGEFLOW_JWT_ALGORITHM", "RS256"), ("PLEDGEFLOW_JWT_JWKS_MIN_REFRESH_SECS", min_refresh)]
}

#[tokio::test]
async fn a_key_the_issuer_adds_is_taken_and_one_it_withdraws_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (k1, k2) = (IssuerKey::new(dir.path(), "k1"), IssuerKey::new(dir.path(), "k2"));
    let issuer = Issuer::default();
    issuer.publish(&[&k1]);
    let url = issuer.serve().await;
    let (_server, base, _) = crate::http::start(dir.path(), &server_env(&url, "0")).await;
    // A connection of its own for each request: signing with RSA in a debug build is slow, and a
    // pooled connection left idle past the server's idle timeout would close under the client.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    assert_eq!(ask(&http, &base, &k1.token(k1.kid)).await, Ok(()));
    let asked = issuer.asked();

    // The issuer rotates: a token signed with its new key is taken, the set fetched again for it.
    issuer.publish(&[&k1, &k2]);
    assert_eq!(ask(&http, &base, &k2.token(k2.kid)).await, Ok(()));
    assert_eq!(issuer.asked(), asked + 1, "one fetch for the key it did not know");
    // Known keys need no fetch.
    assert_eq!(ask(&http, &base, &k1.token(k1.kid)).await, Ok(()));
    assert_eq!(issuer.asked(), asked + 1);

    // The issuer withdraws the old key: once the server has looked again (here for a key id it
    // does not know), a token signed with the old key is refused.
    issuer.publish(&[&k2]);
    let unknown = ask(&http, &base, &k2.token("k9")).await.unwrap_err();
    assert!(unknown.starts_with("UNAUTHENTICATED") && unknown.contains("k9"), "{unknown}");
    let withdrawn = ask(&http, &base, &k1.token(k1.kid)).await.unwrap_err();
    assert!(withdrawn.starts_with("UNAUTHENTICATED") && withdrawn.contains("k1"), "{withdrawn}");
    assert_eq!(ask(&http, &base, &k2.token(k2.kid)).await, Ok(()));

    // A token signed with one key under another's id, or by another algorithm, is refused.
    assert!(ask(&http, &base, &k1.token(k2.kid)).await.unwrap_err().starts_with("UNAUTHENTICATED"));
    let now = Utc::now().timestamp();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k2".into());
    let hs = encode(&header, &json!({"sub": "window-01", "roles": ["window"], "iss": ISSUER, "iat": now, "exp": now + 600}), &EncodingKey::from_secret(b"k2")).unwrap();
    assert!(ask(&http, &base, &hs).await.unwrap_err().starts_with("UNAUTHENTICATED"));

    // The issuer goes down: a fetch fails (tried for an unknown key id) and the keys last
    // fetched keep serving.
    *issuer.down.lock().unwrap() = true;
    let before = issuer.asked();
    assert!(ask(&http, &base, &k2.token("k8")).await.is_err());
    assert_eq!(issuer.asked(), before + 1, "it was asked, and failed");
    assert_eq!(ask(&http, &base, &k2.token(k2.kid)).await, Ok(()));
}

#[tokio::test]
async fn made_up_key_ids_do_not_hammer_the_issuer_nor_lock_anyone_out() {
    let dir = tempfile::tempdir().unwrap();
    let k1 = IssuerKey::new(dir.path(), "k1");
    let issuer = Issuer::default();
    // A key of another algorithm in the set is left out, not a reason to refuse the set.
    let mut es = k1.jwk.clone();
    es["kid"] = json!("es");
    es["alg"] = json!("ES256");
    *issuer.keys.lock().unwrap() = vec![k1.jwk.clone(), es];
    let url = issuer.serve().await;
    let (_server, base, _) = crate::http::start(dir.path(), &server_env(&url, "3600")).await;
    // A connection of its own for each request: signing with RSA in a debug build is slow, and a
    // pooled connection left idle past the server's idle timeout would close under the client.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    assert_eq!(ask(&http, &base, &k1.token(k1.kid)).await, Ok(()));
    assert!(ask(&http, &base, &k1.token("es")).await.unwrap_err().starts_with("UNAUTHENTICATED"));
    let asked = issuer.asked();

    // Fifty requests with made-up key ids, eight at a time (within the connections one address
    // may hold): refused, and the issuer is not asked again within the minimum interval.
    use futures::StreamExt;
    let tokens: Vec<String> = (0..50).map(|i| k1.token(&format!("bogus-{i}"))).collect();
    let flood = tokens.into_iter().map(|token| {
        let (http, base) = (http.clone(), base.clone());
        async move { ask(&http, &base, &token).await }
    });
    for r in futures::stream::iter(flood).buffer_unordered(8).collect::<Vec<_>>().await {
        assert!(r.unwrap_err().starts_with("UNAUTHENTICATED"));
    }
    assert_eq!(issuer.asked(), asked, "no fetch within the minimum interval");
    assert_eq!(ask(&http, &base, &k1.token(k1.kid)).await, Ok(()));
}

#[tokio::test]
async fn a_server_that_cannot_read_its_issuers_keys_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::default();
    *issuer.down.lock().unwrap() = true;
    let url = issuer.serve().await;
    let out = tokio::task::spawn_blocking({
        let (url, dir) = (url.clone(), dir.path().to_path_buf());
        move || {
            std::process::Command::new(crate::helpers::bin())
                .arg("serve")
                .env("PLEDGEFLOW_DATABASE_URL", format!("sqlite://{}/s.db", dir.display()))
                .env("PLEDGEFLOW_DATA_DIR", dir.join("data"))
                .env("PLEDGEFLOW_LISTEN", "127.0.0.1:0")
                .env("PLEDGEFLOW_WORKFLOWS_DIR", crate::helpers::repo().join("workflows"))
                .env("PLEDGEFLOW_TEMPLATES_DIR", crate::helpers::repo().join("templates"))
                .envs(server_env(&url, "60"))
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PLEDGEFLOW_JWT_JWKS_URL") && stderr.contains("503"), "{stderr}");
}

/// An identity provider's ID token vouches for the person, not for our roles: a registered
/// subject gets the registry's roles and scope, anyone else is refused, and a role the token
/// does claim must still be one the registry gives (issue #20: the console's sign-in).
#[tokio::test]
async fn an_id_token_without_roles_gets_the_registrys_and_a_stranger_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = IssuerKey::new(dir.path(), "k1");
    let issuer = Issuer::default();
    issuer.publish(&[&key]);
    let url = issuer.serve().await;
    let (_server, base, _) = crate::http::start(dir.path(), &server_env(&url, "0")).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let id_token = |claims: Value| {
        let now = Utc::now().timestamp();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        let mut body = json!({"iss": ISSUER, "iat": now, "exp": now + 600, "nonce": "n", "auth_time": now});
        body.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
        encode(&header, &body, &key.signing).unwrap()
    };
    let viewer = |token: String| {
        let http = http.clone();
        let base = base.clone();
        async move { crate::http::graphql_as(&http, &base, &token, json!({"query": "{ viewer { subject roles department } }"})).await }
    };
    let officer = viewer(id_token(json!({"sub": "window-01"}))).await;
    assert_eq!(officer["data"]["viewer"], json!({"subject": "window-01", "roles": ["window"], "department": "310101-SCJG"}), "{officer}");
    let stranger = viewer(id_token(json!({"sub": "someone-else"}))).await;
    assert_eq!(stranger["errors"][0]["extensions"]["reason"], "STAFF_NOT_REGISTERED", "{stranger}");
    let overreach = viewer(id_token(json!({"sub": "window-01", "roles": ["regional_admin"]}))).await;
    assert_eq!(overreach["errors"][0]["extensions"]["reason"], "CLAIMS_DISAGREE_WITH_REGISTRY", "{overreach}");
    // This server signs nothing itself: no demo sign-in, whatever the switch says.
    let config: Value = http.get(format!("{base}/console/config.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["demoLogin"], false, "{config}");
}
