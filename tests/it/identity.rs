//! Tokens from an outside issuer (a unified government login): checked with its public key,
//! issuer and audience; each failure told apart.

use chrono::{Duration, Utc};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use pledgeflow::auth::{AuthError, Claims, Keys};
use serde_json::json;

fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl").args(args).output().expect("openssl is on the machine");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_outside_issuers_es256_tokens_are_checked_for_issuer_audience_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let public = dir.path().join("pub.pem");
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.to_str().unwrap()]);
    openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout", "-out", public.to_str().unwrap()]);
    let signing = EncodingKey::from_ec_pem(&std::fs::read(&key).unwrap()).unwrap();
    let keys = Keys::issuer("ES256", &std::fs::read(&public).unwrap(), "https://login.zwfw.example.gov.cn", Some("pledgeflow")).unwrap();
    let now = Utc::now().timestamp();
    let token = |iss: &str, aud: &str, roles: &[&str], exp: i64| {
        let claims = json!({"sub": "staff-310101-0042", "name": "王芳", "roles": roles, "department": "310101-SCJG",
            "iss": iss, "aud": aud, "iat": now, "exp": exp});
        encode(&Header::new(Algorithm::ES256), &claims, &signing).unwrap()
    };
    let issuer = "https://login.zwfw.example.gov.cn";

    let ok = keys.verify(&token(issuer, "pledgeflow", &["window"], now + 600)).unwrap();
    assert_eq!((ok.sub.as_str(), ok.department.as_deref()), ("staff-310101-0042", Some("310101-SCJG")));
    assert!(matches!(keys.verify(&token("https://elsewhere.example", "pledgeflow", &["window"], now + 600)), Err(AuthError::WrongScope(_))));
    assert!(matches!(keys.verify(&token(issuer, "another-service", &["window"], now + 600)), Err(AuthError::WrongScope(_))));
    assert!(matches!(keys.verify(&token(issuer, "pledgeflow", &["root"], now + 600)), Err(AuthError::WrongScope(_))));
    assert_eq!(keys.verify(&token(issuer, "pledgeflow", &["window"], now - 600)), Err(AuthError::Expired));
    // A token this installation would sign itself is not accepted from outside.
    let own = Keys::hs256(b"0123456789abcdef0123456789abcdef");
    let hs = own.mint(&Claims::new("x", vec!["window".into()], Utc::now(), Duration::hours(1))).unwrap();
    assert!(matches!(keys.verify(&hs), Err(AuthError::WrongScope(_))), "{:?}", keys.verify(&hs));
    // An issuer's keys sign nothing here.
    assert!(keys.mint(&Claims::new("x", vec!["window".into()], Utc::now(), Duration::hours(1))).is_none());
    // A forged signature (another EC key) is a bad signature.
    let other = dir.path().join("other.pem");
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", other.to_str().unwrap()]);
    let forged = encode(
        &Header::new(Algorithm::ES256),
        &json!({"sub": "x", "roles": ["window"], "iss": issuer, "aud": "pledgeflow", "exp": now + 600}),
        &EncodingKey::from_ec_pem(&std::fs::read(&other).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(keys.verify(&forged), Err(AuthError::BadSignature));
}

/// Tokens valid only from tomorrow, without the configured audience, or living for years are
/// refused (issue #17, item 7): by an outside issuer's RS256 keys and by this installation's
/// own HS256 key, and over the real binary.
#[tokio::test]
async fn tokens_not_yet_valid_without_audience_or_too_long_lived_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("rsa.pem");
    let public = dir.path().join("rsa.pub.pem");
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key.to_str().unwrap()]);
    openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout", "-out", public.to_str().unwrap()]);
    let issuer = "https://login.zwfw.example.gov.cn";
    let rs = Keys::issuer("RS256", &std::fs::read(&public).unwrap(), issuer, Some("pledgeflow")).unwrap();
    let signing = EncodingKey::from_rsa_pem(&std::fs::read(&key).unwrap()).unwrap();
    let now = Utc::now().timestamp();
    let day = 86_400;
    let outside = |claims: serde_json::Value| encode(&Header::new(Algorithm::RS256), &claims, &signing).unwrap();
    let base = json!({"sub": "staff-1", "roles": ["window"], "iss": issuer, "aud": "pledgeflow", "iat": now, "exp": now + 600});
    let with = |patch: serde_json::Value| {
        let mut c = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    assert!(rs.verify(&outside(base.clone())).is_ok());
    let refused = [
        ("nbf tomorrow", with(json!({"nbf": now + day, "exp": now + day + 600}))),
        ("no aud with an audience configured", with(json!({"aud": null}))),
        ("valid to the year 9999", with(json!({"exp": 253_402_300_799i64}))),
        ("no iat, valid for a year from now", with(json!({"iat": null, "exp": now + 365 * day}))),
    ];
    for (what, claims) in &refused {
        assert!(matches!(rs.verify(&outside(claims.clone())), Err(AuthError::WrongScope(_))), "RS256, {what}: {:?}", rs.verify(&outside(claims.clone())));
    }

    // This installation's own key, over the real binary.
    let secret = "an-installation-secret-of-32-bytes!!";
    let (_server, base_url, _url) = crate::http::start(dir.path(), &[("PLEDGEFLOW_JWT_SECRET", secret)]).await;
    let own = EncodingKey::from_secret(secret.as_bytes());
    let hs = |claims: serde_json::Value| encode(&Header::new(Algorithm::HS256), &claims, &own).unwrap();
    let staff = json!({"sub": "window-01", "roles": ["window"], "department": "310101-SCJG", "region": "310101", "iat": now, "exp": now + 600});
    let http = crate::http::client();
    let ask = |token: String| {
        let http = http.clone();
        let base_url = base_url.clone();
        async move { crate::http::graphql_as(&http, &base_url, &token, json!({"query": "{ workflowInstances { totalCount } }"})).await }
    };
    let ok = ask(hs(staff.clone())).await;
    assert!(ok["errors"].is_null(), "{ok}");
    for (what, patch) in [("nbf tomorrow", json!({"nbf": now + day, "exp": now + day + 600})), ("valid to the year 9999", json!({"exp": 253_402_300_799i64}))] {
        let mut claims = staff.clone();
        for (k, v) in patch.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let r = ask(hs(claims)).await;
        assert_eq!(r["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "HS256 over HTTP, {what}: {r}");
    }
}
