//! Secrets and personal data are readable by the server's user alone (issue #17, item 9), over
//! the real binary: the database, its signing key file, mail and webhook files are 0600 in 0700
//! folders, and no signing key is left in the database — one kept there by an earlier version
//! moves to the key file, and the tokens it signed keep working.

use std::os::unix::fs::PermissionsExt;

use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::http::{graphql_as, start, token_as};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

async fn settings_key(url: &str) -> Option<String> {
    let db = pledgeflow::store::connect(url, 1).await.unwrap();
    let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT value FROM settings WHERE key = 'jwt_hs256_secret'".to_string())).await.unwrap();
    row.map(|r| r.try_get::<String>("", "value").unwrap())
}

#[tokio::test]
async fn files_are_private_and_the_signing_key_lives_outside_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base, url) = start(dir.path(), &[("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099")]).await;
    let http = crate::http::client();
    let db_file = dir.path().join("serve.db");
    let key_file = dir.path().join("serve.db.key");
    // The demo's mail and webhooks are written meanwhile.
    let mail = dir.path().join("data/mail");
    let hooks = dir.path().join("data/webhooks");
    for _ in 0..300 {
        if [&mail, &hooks].iter().all(|d| std::fs::read_dir(d).is_ok_and(|mut d| d.next().is_some())) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(mode(&db_file), 0o600, "the database");
    assert_eq!(mode(&key_file), 0o600, "the signing key");
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    assert_eq!(mode(&mail), 0o700);
    for f in std::fs::read_dir(&mail).unwrap() {
        assert_eq!(mode(&f.unwrap().path()), 0o600, "a mail file");
    }
    for f in std::fs::read_dir(&hooks).unwrap() {
        let folder = f.unwrap().path();
        assert_eq!(mode(&folder), 0o700);
        for g in std::fs::read_dir(&folder).unwrap() {
            assert_eq!(mode(&g.unwrap().path()), 0o600, "a webhook file");
        }
    }
    assert_eq!(settings_key(&url).await, None, "no signing key in the database");
    let window = token_as(&url, "window-01", &["--role", "window", "--department", "310101-SCJG", "--region", "310101"]);
    let ask = json!({"query": "{ workflowInstances { totalCount } }"});
    assert!(graphql_as(&http, &base, &window, ask.clone()).await["errors"].is_null());
    drop(server);

    // An installation from before: its key in the database, no key file.
    let legacy = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    std::fs::remove_file(&key_file).unwrap();
    let db = pledgeflow::store::connect(&url, 1).await.unwrap();
    db.execute_unprepared(&format!("INSERT INTO settings (key, value, created_at) VALUES ('jwt_hs256_secret', '{legacy}', 0)")).await.unwrap();
    db.close().await.unwrap();
    let mut claims = pledgeflow::auth::Claims::new("window-01", vec!["window".into()], chrono::Utc::now(), chrono::Duration::hours(1));
    claims.department = Some("310101-SCJG".into());
    let minted_before = pledgeflow::auth::Keys::hs256(legacy.as_bytes()).mint(&claims).unwrap();
    let (_server, base, url) = start(dir.path(), &[("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099")]).await;
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), legacy, "the key moved to the file");
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(settings_key(&url).await, None, "and left the database");
    let r = graphql_as(&http, &base, &minted_before, ask).await;
    assert!(r["errors"].is_null(), "a token minted before still works: {r}");
}
