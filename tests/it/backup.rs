//! A backup taken from the running server while it writes, restored into a fresh place: the
//! trail verifies with the restored keys, and every case committed before the backup began is
//! in it.

use std::{
    process::Command,
    sync::{Arc, Mutex},
};

use serde_json::{json, Value};

use crate::helpers::bin;
use crate::http::{start, token_as};

const OPEN: &str = r#"mutation { openCase(input: {applicantUscc: "91310110666007217T", itemCode: "310101-FOOD-01", mode: DEFERRAL, deferralWorkingDays: 5, signedBy: "张伟", materials: [{code: "M01", status: PROVIDED, fileRef: "DOC-1"}, {code: "M02", status: DEFERRED}, {code: "M03", status: PROVIDED, fileRef: "DOC-3"}]}) { case { id } } }"#;

fn pledgeflow(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[tokio::test]
async fn a_backup_under_write_load_restores_verified_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base, url) = start(dir.path(), &[]).await;
    let window = token_as(&url, "window-01", &["--role", "window"]);
    // Writers open cases without pause; each id is kept once its commit is answered.
    let committed: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..2 {
        let (base, window, committed, stop) = (base.clone(), window.clone(), committed.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let http = crate::http::client();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r: Value = http.post(format!("{base}/graphql")).bearer_auth(&window).json(&json!({"query": OPEN})).send().await.unwrap().json().await.unwrap();
                let id = r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
                committed.lock().unwrap().push(id);
            }
        }));
    }
    while committed.lock().unwrap().len() < 10 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before: Vec<String> = committed.lock().unwrap().clone();
    let folder = dir.path().join("backup");
    let data = dir.path().join("data").display().to_string();
    let env = [("PLEDGEFLOW_DATABASE_URL", url.as_str()), ("PLEDGEFLOW_DATA_DIR", data.as_str())];
    let taken = tokio::task::spawn_blocking({
        let folder = folder.clone();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            pledgeflow(&["backup", "--to", folder.to_str().unwrap()], &env)
        }
    })
    .await
    .unwrap();
    let during = committed.lock().unwrap().len();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    server.stop();
    assert!(taken.status.success(), "{}", String::from_utf8_lossy(&taken.stderr));
    assert!(during > before.len(), "the server kept writing while the backup ran ({} → {during})", before.len());
    for f in ["pledgeflow.db", "signing.key", "audit.key", "backup.toml"] {
        assert!(folder.join(f).exists(), "{f} in the backup");
    }

    // Restored into a fresh place, under its own configuration.
    let fresh = tempfile::tempdir().unwrap();
    let restored_url = format!("sqlite://{}/restored.db", fresh.path().display());
    let fresh_data = fresh.path().join("data").display().to_string();
    let env = [("PLEDGEFLOW_DATABASE_URL", restored_url.as_str()), ("PLEDGEFLOW_DATA_DIR", fresh_data.as_str())];
    let o = pledgeflow(&["restore", "--from", folder.to_str().unwrap()], &env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!pledgeflow(&["restore", "--from", folder.to_str().unwrap()], &env).status.success(), "nothing is overwritten");
    let o = pledgeflow(&["audit", "verify"], &env);
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success() && said.contains(", 0 break(s)"), "{said}{}", String::from_utf8_lossy(&o.stderr));
    let db = pledgeflow::store::connect(&restored_url, 1).await.unwrap();
    use sea_orm::EntityTrait;
    for id in &before {
        let found = pledgeflow::store::entities::instance::Entity::find_by_id(id.clone()).one(&db).await.unwrap();
        assert!(found.is_some(), "case {id} committed before the backup is in it");
    }
    // The restored keys are the installation's: a token signed before still signs in.
    let (server, base, _) = crate::http::serve_on(fresh.path(), &restored_url, false, &[]).await;
    let r: Value = crate::http::client().post(format!("{base}/graphql")).bearer_auth(&window).json(&json!({"query": "{ viewer { subject } }"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["data"]["viewer"]["subject"], "window-01", "{r}");
    server.stop();
}

#[test]
fn a_backup_never_overwrites_and_a_restore_needs_a_whole_backup_and_a_fresh_place() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/live.db", dir.path().display());
    let env = [("PLEDGEFLOW_DATABASE_URL", url.as_str())];
    assert!(pledgeflow(&["migrate"], &env).status.success());
    let folder = dir.path().join("backup");
    let folder = folder.to_str().unwrap();
    let o = pledgeflow(&["backup", "--to", folder], &env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let again = pledgeflow(&["backup", "--to", folder], &env);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already holds a backup"), "{}", String::from_utf8_lossy(&again.stderr));
    // Over the live database: refused, nothing moved.
    let o = pledgeflow(&["restore", "--from", folder], &env);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("restore into a fresh place"), "{}", String::from_utf8_lossy(&o.stderr));
    // From a folder that holds no backup: said so.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let fresh = format!("sqlite://{}/fresh.db", dir.path().display());
    let o = pledgeflow(&["restore", "--from", empty.to_str().unwrap()], &[("PLEDGEFLOW_DATABASE_URL", fresh.as_str())]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("is not a complete backup"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!dir.path().join("fresh.db").exists(), "a refused restore writes nothing");
}
