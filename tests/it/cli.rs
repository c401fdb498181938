//! The command line as an operator meets it: it runs from any directory on the built-in
//! definitions and templates, lists its settings in `--help`, takes a port alone, reports an
//! unreachable database at once with where and why, refuses a token that would see nothing,
//! and keeps benches off a database they did not seed.

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use crate::helpers::{bin, repo};

/// The binary run in `dir`, with none of the test environment's pledgeflow settings.
fn run_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PLEDGEFLOW_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn it_runs_from_any_directory_on_the_built_in_set_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_in(dir.path(), &["check-workflows"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("from the built-in definitions, policy and calendars; message templates from the built-in message templates"), "{}", text(&o));
    // A configured folder replaces the set, and is named.
    let o = run_in(dir.path(), &["check-workflows"], &[("PLEDGEFLOW_WORKFLOWS_DIR", repo().join("workflows").to_str().unwrap())]);
    assert!(o.status.success() && text(&o).contains(&format!("from the folder {}", repo().join("workflows").display())), "{}", text(&o));
    // A folder that is not there is reported, not replaced by the built-in set behind the
    // operator's back.
    let o = run_in(dir.path(), &["check-workflows"], &[("PLEDGEFLOW_WORKFLOWS_DIR", "/nonexistent/workflows")]);
    assert!(!o.status.success() && text(&o).contains("/nonexistent/workflows"), "{}", text(&o));
}

#[tokio::test]
async fn the_server_starts_outside_the_checkout_on_a_port_alone() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(bin())
        .current_dir(dir.path())
        .args(["serve", "--listen", &port.to_string()])
        .env_remove("PLEDGEFLOW_WORKFLOWS_DIR")
        .env_remove("PLEDGEFLOW_TEMPLATES_DIR")
        .env("PLEDGEFLOW_DATABASE_URL", format!("sqlite://{}/p.db", dir.path().display()))
        .env("PLEDGEFLOW_DATA_DIR", dir.path().join("data"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = crate::http::client();
    let mut ready = None;
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/readyz")).send().await {
            ready = Some(r.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ready, Some(reqwest::StatusCode::OK), "a port alone listens on 127.0.0.1");
}

#[test]
fn help_lists_every_setting_with_its_default() {
    let o = run_in(std::env::temp_dir().as_path(), &["--help"], &[]);
    let help = text(&o);
    for line in ["PLEDGEFLOW_LISTEN", "127.0.0.1:8080", "PLEDGEFLOW_DATABASE_URL", "PLEDGEFLOW_WORKFLOWS_DIR", "PLEDGEFLOW_OIDC_CLIENT_ID"] {
        assert!(help.contains(line), "{line} in --help:\n{help}");
    }
    // The environment spells a port as a number; it is taken as one.
    let o = run_in(std::env::temp_dir().as_path(), &["check-workflows"], &[("PLEDGEFLOW_LISTEN", "8080")]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run_in(std::env::temp_dir().as_path(), &["check-workflows"], &[("PLEDGEFLOW_LISTEN", "localhost")]);
    assert!(!o.status.success() && text(&o).contains("PLEDGEFLOW_LISTEN") && text(&o).contains("a port alone"), "{}", text(&o));
}

#[test]
fn an_unreachable_database_is_reported_at_once_with_host_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let o = run_in(dir.path(), &["migrate"], &[("PLEDGEFLOW_DATABASE_URL", "postgres://nobody@127.0.0.1:1/x")]);
    assert!(started.elapsed() < Duration::from_secs(6), "reported within 5 s: {:?}", started.elapsed());
    assert!(!o.status.success());
    let said = text(&o);
    assert!(said.contains("127.0.0.1:1/x") && said.contains("refused"), "{said}");
}

#[test]
fn a_token_without_the_scope_its_role_needs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let env = [("PLEDGEFLOW_DATABASE_URL", db.as_str()), ("PLEDGEFLOW_DATA_DIR", dir.path().to_str().unwrap())];
    for (args, needs) in [
        (vec!["token", "--role", "window"], "--department"),
        (vec!["token", "--role", "inspector", "--department", "310101-SCJG"], "--division"),
        (vec!["token", "--role", "supervisor"], "--region"),
        (vec!["token", "--role", "applicant"], "--uscc"),
    ] {
        let o = run_in(dir.path(), &args, &env);
        assert!(!o.status.success() && text(&o).contains(needs), "{args:?}: {}", text(&o));
    }
    let o = run_in(dir.path(), &["token", "--role", "system"], &env);
    assert!(!o.status.success() && text(&o).contains("possible values"), "{}", text(&o));
    // An unregistered subject with its scope is minted, with a word about the registry.
    let o = run_in(dir.path(), &["token", "--role", "window", "--department", "310101-SCJG"], &env);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stderr).contains("not in the staff registry"), "{}", text(&o));
    // A registered one takes the registry's scope.
    assert!(run_in(dir.path(), &["demo"], &env).status.success());
    let o = run_in(dir.path(), &["token", "--subject", "inspector-sp-1", "--role", "inspector"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let claims = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    assert_eq!((claims["department"].as_str(), claims["division"].as_str()), (Some("310101-SCJG"), Some("310101-SCJG-SP")), "{claims}");
}

#[test]
fn a_bench_refuses_a_database_it_did_not_seed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/b.db", dir.path().display());
    let env = [("PLEDGEFLOW_DATABASE_URL", db.as_str()), ("PLEDGEFLOW_DATA_DIR", dir.path().to_str().unwrap())];
    assert!(run_in(dir.path(), &["demo"], &env).status.success());
    let o = run_in(dir.path(), &["bench-stats", "--cases", "10"], &env);
    assert!(!o.status.success() && text(&o).contains("no bench seeded") && text(&o).contains("--force"), "{}", text(&o));
    // A fresh database is the bench's, and stays so for the next bench.
    let fresh = format!("sqlite://{}/fresh.db", dir.path().display());
    let env = [("PLEDGEFLOW_DATABASE_URL", fresh.as_str()), ("PLEDGEFLOW_DATA_DIR", dir.path().to_str().unwrap())];
    let o = run_in(dir.path(), &["bench-stats", "--cases", "10"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let o = run_in(dir.path(), &["bench-stats", "--cases", "10"], &env);
    assert!(o.status.success(), "the bench's own fixtures are reused: {}", text(&o));
}

#[test]
fn a_calendar_file_is_checked_before_it_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/c.db", dir.path().display());
    let env = [("PLEDGEFLOW_DATABASE_URL", db.as_str()), ("PLEDGEFLOW_DATA_DIR", dir.path().to_str().unwrap())];
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let twice = file("again.toml", "[years.2026]\noff_days = []\nmakeup_workdays = []\n");
    let o = run_in(dir.path(), &["calendar", "import", &twice], &env);
    assert!(!o.status.success() && text(&o).contains("2026 is given twice"), "{}", text(&o));
    let wrong = file("wrong.toml", "[years.2027]\noff_days = [\"2026-05-01\"]\nmakeup_workdays = []\n");
    let o = run_in(dir.path(), &["calendar", "import", &wrong], &env);
    assert!(!o.status.success() && text(&o).contains("listed under year 2027"), "{}", text(&o));
    let good = file("cn-2027.toml", "[years.2027]\noff_days = [\"2027-01-01\"]\nmakeup_workdays = []\n");
    let o = run_in(dir.path(), &["calendar", "import", &good], &env);
    assert!(o.status.success() && text(&o).contains("2026, 2027, 2028 (provisional)"), "{}", text(&o));
}
