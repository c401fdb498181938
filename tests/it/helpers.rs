//! Test plumbing: one isolated database per test on each backend (SQLite always, PostgreSQL
//! when PLEDGEFLOW_TEST_DATABASE_URL is set), an engine on it with a manual clock.

use std::{path::PathBuf, sync::Arc};

use chrono::{DateTime, TimeZone, Utc};
use pledgeflow::{app, clock::ManualClock, config::Config, runtime::Engine};
use sea_orm::{ConnectionTrait, Database};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pledgeflow"))
}

/// Monday 2026-11-23 10:00 in Shanghai.
pub fn monday_morning() -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap().with_timezone(&Utc)
}

pub struct TestDb {
    pub url: String,
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/test.db", dir.path().display());
        Self { url, label: "sqlite", _dir: Some(dir), pg_admin: None }
    }

    pub async fn postgres(admin_url: &str) -> Self {
        let name = format!("pf_t_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url).await.expect("connect to PLEDGEFLOW_TEST_DATABASE_URL");
        admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
        admin.close().await.ok();
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin_url);
        Self { url: format!("{base}/{name}"), label: "postgres", _dir: None, pg_admin: Some((admin_url.into(), name)) }
    }

    /// Drops a PostgreSQL test database (SQLite's goes with its temporary folder).
    pub async fn cleanup(self) {
        if let Some((admin_url, name)) = &self.pg_admin {
            if let Ok(admin) = Database::connect(admin_url.as_str()).await {
                let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
            }
        }
    }
}

/// A fresh database on every backend this run has.
pub async fn backends() -> Vec<TestDb> {
    let mut dbs = vec![TestDb::sqlite().await];
    if let Ok(url) = std::env::var("PLEDGEFLOW_TEST_DATABASE_URL") {
        if !url.is_empty() {
            dbs.push(TestDb::postgres(&url).await);
        }
    }
    dbs
}

pub fn config_for(db: &TestDb, workflows_dir: PathBuf) -> Config {
    Config { database_url: db.url.clone(), workflows_dir: Some(workflows_dir), listen: "127.0.0.1:0".parse().unwrap(), ..Config::default() }
}

pub async fn engine_with(db: &TestDb, workflows_dir: PathBuf, clock: &ManualClock) -> Engine {
    app::build_engine(&config_for(db, workflows_dir), Arc::new(clock.clone())).await.unwrap()
}

pub async fn engine(db: &TestDb, clock: &ManualClock) -> Engine {
    engine_with(db, repo().join("workflows"), clock).await
}

/// A workflows folder holding the shipped calendars and the given definitions.
pub fn workflows_dir(defs: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("calendars")).unwrap();
    for entry in std::fs::read_dir(repo().join("workflows/calendars")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join("calendars").join(p.file_name().unwrap())).unwrap();
    }
    // The shipped event policy, and rules for the test definitions' own events.
    std::fs::create_dir(dir.path().join("policy")).unwrap();
    let shipped = std::fs::read_to_string(repo().join("workflows/policy/events.toml")).unwrap();
    let own = "\n[[event]]\nname = \"go\"\npayload = { reason = \"text\" }\n\n[[event]]\nname = \"stop\"\npayload = {}\n\n[[event]]\nname = \"close\"\npayload = {}\n";
    std::fs::write(dir.path().join("policy/events.toml"), shipped + own).unwrap();
    for (name, text) in defs {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// The GraphQL schema in process, over an engine, for API tests that need no HTTP.
pub struct Api {
    pub schema: pledgeflow::api::PledgeflowSchema,
    pub engine: Engine,
    /// The outbox behind the API (mail and webhooks to files under the data folder).
    pub outbox: pledgeflow::delivery::Outbox,
}

impl Api {
    pub fn new(engine: Engine, data: &std::path::Path) -> Self {
        let config = Config { templates_dir: Some(repo().join("templates")), data_dir: data.to_path_buf(), ..Config::default() };
        let channels = pledgeflow::delivery::Channels::from_config(&config, &engine.workflows.set).unwrap();
        let outbox = pledgeflow::delivery::Outbox::new(engine.clone(), Arc::new(channels), &config);
        let services = pledgeflow::api::Services {
            engine: engine.clone(),
            outbox: outbox.clone(),
            manual_clock: None,
            wake: Arc::default(),
            worker: "api-test".into(),
            keys: pledgeflow::auth::Keys::hs256(b"0123456789abcdef0123456789abcdef"),
            live_poll: std::time::Duration::from_millis(20),
            loops: Default::default(),
            sampling: Default::default(),
            metrics: None,
            reads: None,
            public_limiter: Arc::new(pledgeflow::api::public::PublicLimiter::per_minute(std::num::NonZeroU32::new(1000).unwrap())),
        };
        Self { schema: pledgeflow::api::schema(Some(services)), engine, outbox }
    }

    pub fn request(&self, who: Option<&pledgeflow::auth::Claims>, query: &str, vars: serde_json::Value) -> async_graphql::Request {
        async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(vars))
            .data(pledgeflow::api::access::Caller(Ok(who.cloned())))
            .data(pledgeflow::api::loaders::Loaders::new(&self.engine.db))
    }

    pub async fn call(&self, who: Option<&pledgeflow::auth::Claims>, query: &str, vars: serde_json::Value) -> serde_json::Value {
        serde_json::to_value(self.schema.execute(self.request(who, query, vars)).await).unwrap()
    }

    /// Like `call`, asserting there were no errors; the `data`.
    pub async fn ok(&self, who: &pledgeflow::auth::Claims, query: &str, vars: serde_json::Value) -> serde_json::Value {
        let r = self.call(Some(who), query, vars).await;
        assert!(r["errors"].as_array().is_none_or(|e| e.is_empty()), "{r}");
        r["data"].clone()
    }
}
