//! One typed configuration, layered: built-in defaults, then an optional TOML file, then
//! `PLEDGEFLOW_*` environment variables. Every value is checked before anything starts, and a
//! bad one stops start-up with the setting's name and the offending value.

use std::{net::SocketAddr, path::PathBuf};

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
    listen: String,
    timezone: String,
    workflows_dir: PathBuf,
    graphiql: bool,
    database_max_connections: u32,
    log_format: String,
    sweep_schedule: String,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            database_url: "sqlite://pledgeflow.db".into(),
            listen: "127.0.0.1:8080".into(),
            timezone: "Asia/Shanghai".into(),
            workflows_dir: PathBuf::from("workflows"),
            graphiql: true,
            database_max_connections: 8,
            log_format: "text".into(),
            sweep_schedule: "0 * * * * *".into(),
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
    pub listen: SocketAddr,
    pub timezone: Tz,
    pub workflows_dir: PathBuf,
    pub graphiql: bool,
    pub database_max_connections: u32,
    pub log_format: LogFormat,
    /// When due timers are swept (cron, seconds first, in `timezone`).
    pub sweep_schedule: cron::Schedule,
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
const ENV_KEYS: [&str; 8] = [
    "sweep_schedule",
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
        let listen = self.listen.parse().map_err(|_| {
            invalid("PLEDGEFLOW_LISTEN", &self.listen, "expected an address like 127.0.0.1:8080")
        })?;
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
        let sweep_schedule = crate::scheduler::parse_schedule(&self.sweep_schedule)
            .map_err(|reason| invalid("PLEDGEFLOW_SWEEP_SCHEDULE", &self.sweep_schedule, &reason))?;
        Ok(Config {
            sweep_schedule,
            database_url: self.database_url,
            listen,
            timezone,
            workflows_dir: self.workflows_dir,
            graphiql: self.graphiql,
            database_max_connections: self.database_max_connections,
            log_format,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        RawConfig::default().validate().expect("built-in defaults are valid")
    }
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
}
