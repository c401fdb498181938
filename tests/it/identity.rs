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
