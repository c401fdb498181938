//! One typed configuration, layered: built-in defaults, then an optional TOML file, then
//! `PLEDGEFLOW_*` environment variables. Every value is checked before anything starts, and a
//! bad one stops start-up with the setting's name and the offending value.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use chrono_tz::Tz;
use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use serde::{Deserialize, Serialize};

/// The raw layer, as strings where parsing needs a better message than serde would give.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database_url: String,
    read_database_url: Option<String>,
    #[serde(deserialize_with = "string_or_number")]
    listen: String,
    timezone: String,
    workflows_dir: Option<PathBuf>,
    graphiql: bool,
    demo_login: bool,
    oidc_client_id: Option<String>,
    oidc_scope: String,
    database_max_connections: u32,
    log_format: String,
    sweep_schedule: String,
    digest_schedule: String,
    housekeeping_schedule: String,
    templates_dir: Option<PathBuf>,
    data_dir: PathBuf,
    mail_url: Option<String>,
    mail_from: String,
    mail_timeout_secs: u64,
    outbox_max_attempts: u32,
    outbox_backoff_secs: u64,
    retention_days: u32,
    public_requests_per_minute: u32,
    clock: String,
    clock_start: Option<String>,
    jwt_secret: Option<String>,
    jwt_issuer: Option<String>,
    jwt_public_key_file: Option<PathBuf>,
    jwt_jwks_url: Option<String>,
    jwt_jwks_min_refresh_secs: u64,
    jwt_jwks_max_age_secs: u64,
    jwt_algorithm: String,
    jwt_audience: Option<String>,
    jwt_max_lifetime_hours: i64,
    key_file: Option<PathBuf>,
    audit_key_file: Option<PathBuf>,
    audit_retired_key_files: Vec<PathBuf>,
    audit_checkpoint_file: Option<PathBuf>,
    audit_checkpoint_schedule: String,
    cors_origins: Vec<String>,
    trusted_proxies: Vec<String>,
    office: Office,
    contacts: BTreeMap<String, String>,
    webhooks: BTreeMap<String, WebhookEndpoint>,
    credit: crate::store::credit::CreditRules,
    return_rule: crate::domain::return_rule::ReturnRule,
    sampling: BTreeMap<String, f64>,
    draw_no_repeat_days: i64,
    draw_schedule: String,
    // The HTTP edge (src/edge.rs).
    http_header_read_timeout_secs: u64,
    http_idle_timeout_secs: u64,
    http_body_timeout_secs: u64,
    http_request_timeout_secs: u64,
    http_max_connections: u32,
    http_max_connections_per_address: u32,
}

/// The office named in messages to applicants: where and how to submit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Office {
    pub name: String,
    pub address: String,
    pub phone: String,
    pub hours: String,
    pub url: String,
}

impl Default for Office {
    fn default() -> Self {
        Self {
            name: "政务服务中心".into(),
            address: "政务服务中心一楼综合受理窗口".into(),
            phone: "12345".into(),
            hours: "工作日 9:00–12:00，13:30–17:30".into(),
            url: "http://127.0.0.1:8080/".into(),
        }
    }
}

/// Where a webhook channel posts, and the secret its HMAC signature uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    pub url: String,
    pub secret: String,
}

/// Whether the server's time is the system's or one an admin moves (training, demos, e2e tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    System,
    Manual,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            database_url: "sqlite://pledgeflow.db".into(),
            read_database_url: None,
            listen: "127.0.0.1:8080".into(),
            timezone: "Asia/Shanghai".into(),
            workflows_dir: None,
            graphiql: true,
            demo_login: false,
            oidc_client_id: None,
            oidc_scope: "openid profile".into(),
            database_max_connections: 8,
            log_format: "text".into(),
            sweep_schedule: "0 * * * * *".into(),
            digest_schedule: "0 30 8 * * *".into(),
            housekeeping_schedule: "0 15 3 * * *".into(),
            templates_dir: None,
            data_dir: PathBuf::from("data"),
            mail_url: None,
            mail_from: "政务服务中心 <noreply@pledgeflow.localhost>".into(),
            mail_timeout_secs: 30,
            outbox_max_attempts: 8,
            outbox_backoff_secs: 60,
            retention_days: 180,
            public_requests_per_minute: 30,
            clock: "system".into(),
            clock_start: None,
            jwt_secret: None,
            jwt_issuer: None,
            jwt_public_key_file: None,
            jwt_jwks_url: None,
            jwt_jwks_min_refresh_secs: 60,
            jwt_jwks_max_age_secs: 600,
            jwt_algorithm: "RS256".into(),
            jwt_audience: None,
            jwt_max_lifetime_hours: 24,
            key_file: None,
            audit_key_file: None,
            audit_retired_key_files: Vec::new(),
            audit_checkpoint_file: None,
            audit_checkpoint_schedule: "0 0 * * * *".into(),
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            office: Office::default(),
            contacts: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            credit: Default::default(),
            return_rule: Default::default(),
            sampling: crate::supervision::draw::default_ratios(),
            draw_no_repeat_days: 180,
            draw_schedule: "0 0 9 1 * *".into(),
            http_header_read_timeout_secs: 10,
            http_idle_timeout_secs: 5,
            http_body_timeout_secs: 10,
            http_request_timeout_secs: 30,
            http_max_connections: 1024,
            http_max_connections_per_address: 256,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration every part of the application reads.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// A PostgreSQL streaming replica for read-only requests (queries), each caller's own
    /// writes still read from the primary until the replica has replayed them.
    pub read_database_url: Option<String>,
    pub listen: SocketAddr,
    pub timezone: Tz,
    /// The definitions, event policy and calendars: a folder replacing the built-in set, or
    /// none (the set built into the binary).
    pub workflows_dir: Option<PathBuf>,
    pub graphiql: bool,
    /// The console's demo sign-in (pick a demo identity, the server mints its token): on with
    /// `serve --demo` or this training switch (`PLEDGEFLOW_DEMO_LOGIN`), absent otherwise.
    pub demo_login: bool,
    /// The console's client at the identity provider (`jwt_issuer`): with it, the console signs
    /// people in by OpenID Connect (authorization code with PKCE) and sends the ID token.
    pub oidc_client_id: Option<String>,
    pub oidc_scope: String,
    pub database_max_connections: u32,
    pub log_format: LogFormat,
    /// When due timers are swept (cron, seconds first, in `timezone`).
    pub sweep_schedule: cron::Schedule,
    /// The morning digest of deadlines coming up.
    pub digest_schedule: cron::Schedule,
    /// Nightly clean-up of delivered messages and finished job records.
    pub housekeeping_schedule: cron::Schedule,
    /// Message templates a department may edit (`email/*.toml`, `sms/*.txt`): a folder
    /// replacing the built-in set, or none.
    pub templates_dir: Option<PathBuf>,
    /// Where the embedded defaults write mail (.eml) and unconfigured webhooks (.json).
    pub data_dir: PathBuf,
    /// `smtp://[user:pass@]host:port[?tls=required]` or `smtps://…`; unset writes .eml files.
    pub mail_url: Option<String>,
    pub mail_from: lettre::message::Mailbox,
    pub mail_timeout: std::time::Duration,
    pub outbox_max_attempts: u32,
    pub outbox_backoff: std::time::Duration,
    /// Delivered messages and job records older than this are removed by housekeeping.
    pub retention_days: u32,
    /// Unauthenticated queries (public disclosure) allowed per client address and minute.
    pub public_requests_per_minute: std::num::NonZeroU32,
    pub clock: ClockMode,
    /// Where a training clock starts on a database that has none on record (`PLEDGEFLOW_CLOCK_START`).
    pub clock_start: Option<chrono::DateTime<chrono::Utc>>,
    /// HS256 token secret; unset, one is generated and kept in the database.
    pub jwt_secret: Option<String>,
    /// An outside issuer (unified login): tokens are checked with its public key instead.
    pub jwt_issuer: Option<String>,
    pub jwt_public_key_file: Option<PathBuf>,
    /// Or its key set by URL, fetched at start and kept fresh: again once older than
    /// `jwt_jwks_max_age`, and on a token whose key it does not hold — at most once per
    /// `jwt_jwks_min_refresh`.
    pub jwt_jwks_url: Option<String>,
    pub jwt_jwks_min_refresh: std::time::Duration,
    pub jwt_jwks_max_age: std::time::Duration,
    /// `RS256` or `ES256`, for the outside issuer's tokens.
    pub jwt_algorithm: String,
    pub jwt_audience: Option<String>,
    /// The longest a token may be valid for (`exp` − `iat`, or `exp` − now without `iat`).
    pub jwt_max_lifetime: chrono::Duration,
    /// This installation's signing key file (several servers on one database share it).
    pub key_file: Option<PathBuf>,
    /// The audit key file the trail is keyed with (`trail::audit_key_path` for the default).
    pub audit_key_file: Option<PathBuf>,
    /// Keys the trail was keyed with before a rotation: read to verify, never written with.
    pub audit_retired_key_files: Vec<PathBuf>,
    /// Where checkpoints of every instance's chain head are appended (`trail::checkpoint_path`).
    pub audit_checkpoint_file: Option<PathBuf>,
    /// When a checkpoint is written (cron, seconds first).
    pub audit_checkpoint_schedule: cron::Schedule,
    /// Browser origins allowed to call the API (CORS); empty allows none.
    pub cors_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (addresses or CIDR ranges): behind
    /// one, the client is the nearest address before it that is not itself a trusted proxy.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub office: Office,
    /// Addresses of staff recipients by the name effects use (`department`, `supervisors`, …),
    /// until the organisation is kept in the database.
    pub contacts: BTreeMap<String, String>,
    pub webhooks: BTreeMap<String, WebhookEndpoint>,
    /// How credit records move an applicant's tier and the dishonesty list (`[credit]`).
    pub credit: crate::store::credit::CreditRules,
    /// The 15% return rule's threshold, minimum sample and window (`[return_rule]`).
    pub return_rule: crate::domain::return_rule::ReturnRule,
    /// Share of after-the-fact cases drawn for random inspection, per credit tier (`[sampling]`),
    /// and the days an enterprise inspected for an item stays out of that item's draws.
    pub sampling: crate::supervision::draw::Sampling,
    /// When the random inspection draw runs (cron, seconds first).
    pub draw_schedule: cron::Schedule,
    /// Timeouts and connection caps at the HTTP edge.
    pub http: HttpLimits,
}

/// What the HTTP edge allows a client (src/edge.rs; the README's table of limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request's head must arrive within this, counted from when the server starts waiting
    /// for it (at accept, and after each response on a kept-alive connection).
    pub header_read_timeout: std::time::Duration,
    /// A connection that sends nothing and has no request in hand for this long is closed.
    pub idle_timeout: std::time::Duration,
    /// Longest pause between two pieces of a request body.
    pub body_timeout: std::time::Duration,
    /// A whole request, body and answer, must be done within this.
    pub request_timeout: std::time::Duration,
    /// Open connections in all (websockets included); more are refused with 503.
    pub max_connections: u32,
    /// Open connections from one client address.
    pub max_connections_per_address: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Source(String),
    #[error("configuration: {setting} = {value:?} is invalid: {reason}")]
    Invalid { setting: &'static str, value: String, reason: String },
}

impl Config {
    /// Loads defaults, then `file` if given (it must exist), then `PLEDGEFLOW_*` variables.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment(file)?)
    }

    fn figment(file: Option<&std::path::Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid {
                    setting: "config file",
                    value: path.display().to_string(),
                    reason: "no such file".into(),
                });
            }
            figment = figment.merge(Toml::file(path));
        }
        Ok(figment.merge(Env::prefixed("PLEDGEFLOW_").only(&ENV_KEYS)))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let raw: RawConfig = figment.extract().map_err(|e| {
            ConfigError::Source(e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
        })?;
        raw.validate()
    }
}

/// The env vars the config reads; others with the prefix (the test database URL, the clock)
/// belong to other parts and must not trip `deny_unknown_fields`.
const ENV_KEYS: [&str; 49] = [
    "read_database_url",
    "demo_login",
    "oidc_client_id",
    "oidc_scope",
    "audit_key_file",
    "audit_retired_key_files",
    "audit_checkpoint_file",
    "audit_checkpoint_schedule",
    "http_header_read_timeout_secs",
    "http_idle_timeout_secs",
    "http_body_timeout_secs",
    "http_request_timeout_secs",
    "http_max_connections",
    "http_max_connections_per_address",
    "draw_schedule",
    "draw_no_repeat_days",
    "jwt_issuer",
    "jwt_public_key_file",
    "jwt_jwks_url",
    "jwt_jwks_min_refresh_secs",
    "jwt_jwks_max_age_secs",
    "jwt_algorithm",
    "jwt_audience",
    "jwt_max_lifetime_hours",
    "key_file",
    "cors_origins",
    "trusted_proxies",
    "sweep_schedule",
    "digest_schedule",
    "housekeeping_schedule",
    "templates_dir",
    "data_dir",
    "mail_url",
    "mail_from",
    "mail_timeout_secs",
    "outbox_max_attempts",
    "outbox_backoff_secs",
    "retention_days",
    "public_requests_per_minute",
    "clock",
    "clock_start",
    "jwt_secret",
    "database_url",
    "listen",
    "timezone",
    "workflows_dir",
    "graphiql",
    "database_max_connections",
    "log_format",
];

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let invalid = |setting: &'static str, value: &str, reason: &str| ConfigError::Invalid {
            setting,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let scheme_ok = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| self.database_url.starts_with(p));
        if !scheme_ok {
            return Err(invalid(
                "PLEDGEFLOW_DATABASE_URL",
                &self.database_url,
                "expected sqlite://FILE or postgres://USER@HOST/DB",
            ));
        }
        let read_database_url = self.read_database_url.clone().filter(|u| !u.trim().is_empty());
        if let Some(url) = &read_database_url {
            let postgres = |u: &str| u.starts_with("postgres://") || u.starts_with("postgresql://");
            if !postgres(url) || !postgres(&self.database_url) {
                return Err(invalid("PLEDGEFLOW_READ_DATABASE_URL", url, "a PostgreSQL replica (postgres://…) of a PostgreSQL primary"));
            }
        }
        let listen = parse_listen(&self.listen).map_err(|why| invalid("PLEDGEFLOW_LISTEN", &self.listen, why))?;
        let timezone: Tz = self.timezone.parse().map_err(|_| {
            invalid("PLEDGEFLOW_TIMEZONE", &self.timezone, "not an IANA time zone name")
        })?;
        if self.database_max_connections == 0 {
            return Err(invalid(
                "PLEDGEFLOW_DATABASE_MAX_CONNECTIONS",
                "0",
                "needs at least one connection",
            ));
        }
        let log_format = match self.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(invalid("PLEDGEFLOW_LOG_FORMAT", other, "expected text or json")),
        };
        let sweep_schedule = parse_schedule(&self.sweep_schedule)
            .map_err(|reason| invalid("PLEDGEFLOW_SWEEP_SCHEDULE", &self.sweep_schedule, &reason))?;
        let schedule = |setting: &'static str, value: &str| {
            parse_schedule(value).map_err(|reason| invalid(setting, value, &reason))
        };
        let digest_schedule = schedule("PLEDGEFLOW_DIGEST_SCHEDULE", &self.digest_schedule)?;
        let housekeeping_schedule = schedule("PLEDGEFLOW_HOUSEKEEPING_SCHEDULE", &self.housekeeping_schedule)?;
        let draw_schedule = schedule("PLEDGEFLOW_DRAW_SCHEDULE", &self.draw_schedule)?;
        let audit_checkpoint_schedule = schedule("PLEDGEFLOW_AUDIT_CHECKPOINT_SCHEDULE", &self.audit_checkpoint_schedule)?;
        for (tier, ratio) in &self.sampling {
            if !["A", "B", "C", "D"].contains(&tier.as_str()) || !(0.0..=1.0).contains(ratio) {
                return Err(invalid("sampling", &format!("{tier} = {ratio}"), "expected A–D with a share between 0 and 1"));
            }
        }
        if !(0..=3650).contains(&self.draw_no_repeat_days) {
            return Err(invalid("PLEDGEFLOW_DRAW_NO_REPEAT_DAYS", &self.draw_no_repeat_days.to_string(), "between 0 and 3650 days"));
        }
        let mail_from = self
            .mail_from
            .parse()
            .map_err(|e| invalid("PLEDGEFLOW_MAIL_FROM", &self.mail_from, &format!("not a mailbox: {e}")))?;
        if let Some(url) = &self.mail_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(invalid("PLEDGEFLOW_MAIL_URL", &redact(url), "expected smtp://HOST:PORT or smtps://HOST:PORT"));
            }
        }
        if self.outbox_max_attempts == 0 {
            return Err(invalid("PLEDGEFLOW_OUTBOX_MAX_ATTEMPTS", "0", "needs at least one attempt"));
        }
        if self.mail_timeout_secs == 0 || self.outbox_backoff_secs == 0 {
            return Err(invalid("PLEDGEFLOW_MAIL_TIMEOUT_SECS / PLEDGEFLOW_OUTBOX_BACKOFF_SECS", "0", "must be at least one second"));
        }
        let clock = match self.clock.as_str() {
            "system" => ClockMode::System,
            "manual" => ClockMode::Manual,
            other => return Err(invalid("PLEDGEFLOW_CLOCK", other, "expected system or manual")),
        };
        let clock_start = match (&self.clock_start, clock) {
            (None, _) => None,
            (Some(start), ClockMode::Manual) => Some(
                chrono::DateTime::parse_from_rfc3339(start)
                    .map_err(|e| invalid("PLEDGEFLOW_CLOCK_START", start, &format!("expected a time like 2026-02-13T09:00:00+08:00 ({e})")))?
                    .with_timezone(&chrono::Utc),
            ),
            (Some(start), ClockMode::System) => return Err(invalid("PLEDGEFLOW_CLOCK_START", start, "only a training clock (PLEDGEFLOW_CLOCK=manual) can be set")),
        };
        if matches!(&self.jwt_secret, Some(s) if s.len() < 32) {
            return Err(invalid("PLEDGEFLOW_JWT_SECRET", "(hidden)", "needs at least 32 characters"));
        }
        if !matches!(self.jwt_algorithm.as_str(), "RS256" | "ES256") {
            return Err(invalid("PLEDGEFLOW_JWT_ALGORITHM", &self.jwt_algorithm, "expected RS256 or ES256"));
        }
        match (&self.jwt_issuer, &self.jwt_public_key_file, &self.jwt_jwks_url) {
            (Some(_), None, None) => return Err(invalid("PLEDGEFLOW_JWT_PUBLIC_KEY_FILE", "(unset)", "PLEDGEFLOW_JWT_ISSUER needs the issuer's public key (PEM) or its key set (PLEDGEFLOW_JWT_JWKS_URL)")),
            (Some(_), Some(_), Some(_)) => return Err(invalid("PLEDGEFLOW_JWT_JWKS_URL", "(set)", "give the issuer's public key file or its key set URL, not both")),
            (None, _, Some(url)) => return Err(invalid("PLEDGEFLOW_JWT_JWKS_URL", url, "needs PLEDGEFLOW_JWT_ISSUER")),
            (_, _, Some(url)) if !(url.starts_with("https://") || url.starts_with("http://")) => return Err(invalid("PLEDGEFLOW_JWT_JWKS_URL", url, "expected an http(s) URL")),
            _ => {}
        }
        if let (Some(client), None) = (&self.oidc_client_id, &self.jwt_issuer) {
            return Err(invalid("PLEDGEFLOW_OIDC_CLIENT_ID", client, "needs PLEDGEFLOW_JWT_ISSUER (the identity provider) and its key set"));
        }
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|p| p.parse::<ipnet::IpNet>().or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map_err(|_| invalid("PLEDGEFLOW_TRUSTED_PROXIES", p, "expected addresses or CIDR ranges like 127.0.0.1 or 10.0.0.0/8")))
            .collect::<Result<Vec<_>, _>>()?;
        for origin in &self.cors_origins {
            if origin.parse::<axum::http::HeaderValue>().is_err() || !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(invalid("PLEDGEFLOW_CORS_ORIGINS", origin, "expected origins like https://zwfw.example.gov.cn"));
            }
        }
        for (channel, endpoint) in &self.webhooks {
            if !(endpoint.url.starts_with("http://") || endpoint.url.starts_with("https://")) {
                return Err(invalid("webhooks.*.url", &format!("{channel}: {}", endpoint.url), "expected an http(s) URL"));
            }
            if let Err(why) = crate::delivery::webhook::key_of(&endpoint.secret) {
                return Err(invalid("webhooks.*.secret", &format!("{channel}: whsec_…"), &why));
            }
        }
        let http = self.http_limits()?;
        Ok(Config {
            http,
            digest_schedule,
            housekeeping_schedule,
            draw_schedule,
            sampling: crate::supervision::draw::Sampling { ratios: self.sampling, no_repeat_days: self.draw_no_repeat_days },
            templates_dir: self.templates_dir.filter(|d| !d.as_os_str().is_empty()),
            data_dir: self.data_dir,
            mail_url: self.mail_url,
            mail_from,
            mail_timeout: std::time::Duration::from_secs(self.mail_timeout_secs),
            outbox_max_attempts: self.outbox_max_attempts,
            outbox_backoff: std::time::Duration::from_secs(self.outbox_backoff_secs),
            retention_days: self.retention_days,
            public_requests_per_minute: std::num::NonZeroU32::new(self.public_requests_per_minute).ok_or_else(|| {
                invalid("public_requests_per_minute", &self.public_requests_per_minute.to_string(), "must be at least 1")
            })?,
            clock,
            clock_start,
            jwt_secret: self.jwt_secret,
            jwt_issuer: self.jwt_issuer,
            jwt_public_key_file: self.jwt_public_key_file,
            jwt_algorithm: self.jwt_algorithm,
            jwt_audience: self.jwt_audience,
            jwt_jwks_url: self.jwt_jwks_url,
            jwt_jwks_min_refresh: std::time::Duration::from_secs(self.jwt_jwks_min_refresh_secs),
            jwt_jwks_max_age: std::time::Duration::from_secs(self.jwt_jwks_max_age_secs),
            key_file: self.key_file,
            audit_key_file: self.audit_key_file,
            audit_retired_key_files: self.audit_retired_key_files,
            audit_checkpoint_file: self.audit_checkpoint_file,
            audit_checkpoint_schedule,
            jwt_max_lifetime: match self.jwt_max_lifetime_hours {
                h @ 1..=8760 => chrono::Duration::hours(h),
                h => return Err(invalid("jwt_max_lifetime_hours", &h.to_string(), "between 1 and 8760 (a year)")),
            },
            cors_origins: self.cors_origins,
            trusted_proxies,
            office: self.office,
            contacts: self.contacts,
            webhooks: self.webhooks,
            credit: {
                if let Err((setting, value, expected)) = self.credit.check() {
                    return Err(invalid(setting, &value, expected));
                }
                self.credit
            },
            return_rule: {
                let r = &self.return_rule;
                if !(r.threshold > 0.0 && r.threshold <= 1.0) {
                    return Err(invalid("return_rule.threshold", &r.threshold.to_string(), "a share above 0 and at most 1"));
                }
                if r.min_sample < 1 || r.window_days < 1 {
                    return Err(invalid("return_rule", &format!("min_sample {} window_days {}", r.min_sample, r.window_days), "both at least 1"));
                }
                self.return_rule
            },
            sweep_schedule,
            database_url: self.database_url,
            read_database_url,
            listen,
            timezone,
            workflows_dir: self.workflows_dir.filter(|d| !d.as_os_str().is_empty()),
            graphiql: self.graphiql,
            demo_login: self.demo_login,
            oidc_client_id: self.oidc_client_id,
            oidc_scope: self.oidc_scope,
            database_max_connections: self.database_max_connections,
            log_format,
        })
    }
}

impl RawConfig {
    fn http_limits(&self) -> Result<HttpLimits, ConfigError> {
        let invalid = |setting: &'static str, value: u64, reason: &str| ConfigError::Invalid { setting, value: value.to_string(), reason: reason.to_string() };
        let secs = std::time::Duration::from_secs;
        for (setting, value) in [
            ("PLEDGEFLOW_HTTP_HEADER_READ_TIMEOUT_SECS", self.http_header_read_timeout_secs),
            ("PLEDGEFLOW_HTTP_IDLE_TIMEOUT_SECS", self.http_idle_timeout_secs),
            ("PLEDGEFLOW_HTTP_BODY_TIMEOUT_SECS", self.http_body_timeout_secs),
            ("PLEDGEFLOW_HTTP_REQUEST_TIMEOUT_SECS", self.http_request_timeout_secs),
        ] {
            if !(1..=3600).contains(&value) {
                return Err(invalid(setting, value, "expected 1 to 3600 seconds"));
            }
        }
        // HTTP/1 waits for the next request on a kept-alive connection under the header timer.
        if self.http_idle_timeout_secs > self.http_header_read_timeout_secs {
            return Err(invalid("PLEDGEFLOW_HTTP_IDLE_TIMEOUT_SECS", self.http_idle_timeout_secs, "must not exceed PLEDGEFLOW_HTTP_HEADER_READ_TIMEOUT_SECS, which also bounds a kept-alive connection's wait"));
        }
        if self.http_max_connections == 0 {
            return Err(invalid("PLEDGEFLOW_HTTP_MAX_CONNECTIONS", 0, "needs at least one connection"));
        }
        if self.http_max_connections_per_address == 0 || self.http_max_connections_per_address > self.http_max_connections {
            return Err(invalid("PLEDGEFLOW_HTTP_MAX_CONNECTIONS_PER_ADDRESS", self.http_max_connections_per_address.into(), "between 1 and PLEDGEFLOW_HTTP_MAX_CONNECTIONS"));
        }
        Ok(HttpLimits {
            header_read_timeout: secs(self.http_header_read_timeout_secs),
            idle_timeout: secs(self.http_idle_timeout_secs),
            body_timeout: secs(self.http_body_timeout_secs),
            request_timeout: secs(self.http_request_timeout_secs),
            max_connections: self.http_max_connections,
            max_connections_per_address: self.http_max_connections_per_address,
        })
    }
}

impl Config {
    /// Where the definitions, policy and calendars come from.
    pub fn workflows(&self) -> crate::domain::shipped::Source {
        crate::domain::shipped::Source::of(crate::domain::shipped::Set::Workflows, self.workflows_dir.as_deref())
    }

    /// Where the message templates come from.
    pub fn templates(&self) -> crate::domain::shipped::Source {
        crate::domain::shipped::Source::of(crate::domain::shipped::Set::Templates, self.templates_dir.as_deref())
    }
}

impl Default for Config {
    fn default() -> Self {
        RawConfig::default().validate().expect("built-in defaults are valid")
    }
}

impl Config {
    /// Where this installation's own signing key lives: `PLEDGEFLOW_KEY_FILE`, else beside an
    /// embedded SQLite database (`<file>.key`), else `signing.key` in the data folder. Never in
    /// the database: whoever can read the database must not be able to mint tokens.
    pub fn key_path(&self) -> PathBuf {
        if let Some(path) = &self.key_file {
            return path.clone();
        }
        if let Some(file) = self.database_url.strip_prefix("sqlite://").and_then(|rest| rest.split('?').next()) {
            if !file.is_empty() && !file.contains(":memory:") {
                return PathBuf::from(format!("{file}.key"));
            }
        }
        self.data_dir.join("signing.key")
    }

    /// How tokens are checked and signed here.
    pub fn tokens(&self) -> crate::auth::TokenSettings {
        crate::auth::TokenSettings {
            secret: self.jwt_secret.clone(),
            key_file: self.key_path(),
            issuer: self.jwt_issuer.clone(),
            public_key_file: self.jwt_public_key_file.clone(),
            jwks_url: self.jwt_jwks_url.clone(),
            jwks_min_refresh: self.jwt_jwks_min_refresh,
            jwks_max_age: self.jwt_jwks_max_age,
            algorithm: self.jwt_algorithm.clone(),
            audience: self.jwt_audience.clone(),
            max_lifetime: self.jwt_max_lifetime,
        }
    }
}

/// A database URL with any password replaced, for logs and messages.
/// A setting given as text that an environment variable may spell as a number (`LISTEN=8080`).
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Text(String),
        Number(i64),
    }
    Ok(match Given::deserialize(d)? {
        Given::Text(s) => s,
        Given::Number(n) => n.to_string(),
    })
}

/// An address to listen on: `HOST:PORT`, or a port alone (on 127.0.0.1: behind a proxy on the
/// same machine, the usual place; say 0.0.0.0:PORT to take requests from elsewhere).
pub fn parse_listen(text: &str) -> Result<SocketAddr, &'static str> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| "expected HOST:PORT (127.0.0.1:8080, [::1]:8080) or a port alone (8080)")
}

/// Every setting's environment variable with its default, for `--help`.
pub fn settings_help() -> String {
    let defaults = serde_json::to_value(RawConfig::default()).unwrap_or_default();
    let mut keys: Vec<&str> = ENV_KEYS.to_vec();
    keys.sort_unstable();
    let mut out = String::from("Settings (environment variables; a --config TOML file takes the same names in lower case):\n");
    for key in keys {
        let default = match defaults.get(key) {
            None | Some(serde_json::Value::Null) => "unset".to_string(),
            Some(serde_json::Value::String(s)) if s.is_empty() => "\"\"".to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        out.push_str(&format!("  PLEDGEFLOW_{:<32} {default}\n", key.to_uppercase()));
    }
    out.push_str("Nested settings (office, contacts, webhooks, credit, return rule, sampling) are set in the TOML file; README.md lists each.");
    out
}

pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A cron expression as the settings give it (six or seven fields, seconds first).
pub fn parse_schedule(expr: &str) -> Result<cron::Schedule, String> {
    <cron::Schedule as std::str::FromStr>::from_str(expr).map_err(|e| format!("{e} (six fields, seconds first, e.g. \"0 * * * * *\")"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_need_nothing_installed() {
        let c = Config::default();
        assert_eq!(c.database_url, "sqlite://pledgeflow.db");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.timezone, chrono_tz::Asia::Shanghai);
    }

    #[test]
    fn env_overrides_file_and_bad_values_name_the_setting() {
        Jail::expect_with(|jail| {
            jail.create_file("p.toml", "listen = \"0.0.0.0:9000\"\ntimezone = \"Asia/Urumqi\"")?;
            jail.set_env("PLEDGEFLOW_TIMEZONE", "Asia/Shanghai");
            let c = Config::load(Some("p.toml".as_ref())).unwrap();
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(parse_listen("8080").unwrap().to_string(), "127.0.0.1:8080");
            assert_eq!(parse_listen("[::1]:81").unwrap().port(), 81);
            assert!(parse_listen("localhost").is_err());
            assert_eq!(c.timezone, chrono_tz::Asia::Shanghai);

            jail.set_env("PLEDGEFLOW_TIMEZONE", "Mars/Olympus");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("PLEDGEFLOW_TIMEZONE") && err.contains("Mars/Olympus"), "{err}");

            jail.set_env("PLEDGEFLOW_TIMEZONE", "Asia/Shanghai");
            jail.set_env("PLEDGEFLOW_LISTEN", "not-an-address");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("PLEDGEFLOW_LISTEN") && err.contains("not-an-address"), "{err}");

            jail.set_env("PLEDGEFLOW_LISTEN", "127.0.0.1:1");
            jail.set_env("PLEDGEFLOW_SWEEP_SCHEDULE", "* * * * *");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("PLEDGEFLOW_SWEEP_SCHEDULE") && err.contains("seconds first"), "{err}");

            jail.set_env("PLEDGEFLOW_SWEEP_SCHEDULE", "0 30 8 * * MON-FRI");
            jail.set_env("PLEDGEFLOW_DATABASE_URL", "mysql://x");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("PLEDGEFLOW_DATABASE_URL"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn http_limits_have_defaults_and_refuse_what_cannot_hold() {
        let c = Config::default();
        assert_eq!((c.http.header_read_timeout.as_secs(), c.http.idle_timeout.as_secs(), c.http.max_connections), (10, 5, 1024));
        Jail::expect_with(|jail| {
            jail.set_env("PLEDGEFLOW_HTTP_IDLE_TIMEOUT_SECS", "30");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("PLEDGEFLOW_HTTP_IDLE_TIMEOUT_SECS") && err.contains("HEADER_READ"), "{err}");
            jail.set_env("PLEDGEFLOW_HTTP_IDLE_TIMEOUT_SECS", "2");
            jail.set_env("PLEDGEFLOW_HTTP_MAX_CONNECTIONS", "10");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("PLEDGEFLOW_HTTP_MAX_CONNECTIONS_PER_ADDRESS"), "{err}");
            jail.set_env("PLEDGEFLOW_HTTP_MAX_CONNECTIONS_PER_ADDRESS", "10");
            jail.set_env("PLEDGEFLOW_HTTP_REQUEST_TIMEOUT_SECS", "0");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("PLEDGEFLOW_HTTP_REQUEST_TIMEOUT_SECS"), "{err}");
            jail.set_env("PLEDGEFLOW_HTTP_REQUEST_TIMEOUT_SECS", "3");
            let c = Config::load(None).unwrap();
            assert_eq!((c.http.idle_timeout.as_secs(), c.http.max_connections, c.http.request_timeout.as_secs()), (2, 10, 3));
            Ok(())
        });
    }

    #[test]
    fn a_read_replica_is_a_postgresql_replica_of_a_postgresql_primary() {
        Jail::expect_with(|jail| {
            jail.set_env("PLEDGEFLOW_READ_DATABASE_URL", "postgres://r@replica/pf");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("PLEDGEFLOW_READ_DATABASE_URL"), "an SQLite primary has no replica: {err}");
            jail.set_env("PLEDGEFLOW_DATABASE_URL", "postgres://p@primary/pf");
            jail.set_env("PLEDGEFLOW_READ_DATABASE_URL", "sqlite://copy.db");
            assert!(Config::load(None).unwrap_err().to_string().contains("PLEDGEFLOW_READ_DATABASE_URL"));
            jail.set_env("PLEDGEFLOW_READ_DATABASE_URL", "postgres://r@replica/pf");
            assert_eq!(Config::load(None).unwrap().read_database_url.as_deref(), Some("postgres://r@replica/pf"));
            jail.set_env("PLEDGEFLOW_READ_DATABASE_URL", "");
            assert_eq!(Config::load(None).unwrap().read_database_url, None);
            Ok(())
        });
    }
}
