//! An outside issuer's keys by its JWKS URL, kept fresh: fetched at start, again when they are
//! older than their age allows, and again (at most once per `min_refresh`, one fetch at a time)
//! when a token names a key not among them — so the issuer can add a key and sign with it, or
//! withdraw one, without a restart here, and a flood of made-up key ids cannot hammer it.

use std::{
    collections::HashMap,
    sync::{Mutex, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey};

/// A fetch that takes longer, or a set bigger, is a failed fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BYTES: usize = 1024 * 1024;

pub struct Jwks {
    url: String,
    algorithm: Algorithm,
    client: reqwest::Client,
    min_refresh: Duration,
    max_age: Duration,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// The last fetch tried and the last that succeeded.
    tried: Mutex<Option<Instant>>,
    fetched: Mutex<Option<Instant>>,
    /// One fetch at a time; the others wait for it and use what it brought.
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jwks({}, {} keys)", self.url, self.keys.read().map(|k| k.len()).unwrap_or(0))
    }
}

impl Jwks {
    /// The issuer's set, fetched once now: a server that cannot read its issuer's keys does not start.
    pub async fn fetch_first(url: &str, algorithm: Algorithm, min_refresh: Duration, max_age: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().map_err(|e| e.to_string())?;
        let jwks = Self {
            url: url.to_string(),
            algorithm,
            client,
            min_refresh,
            max_age,
            keys: RwLock::default(),
            tried: Mutex::default(),
            fetched: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        };
        if let Ok(mut tried) = jwks.tried.lock() {
            *tried = Some(Instant::now());
        }
        let keys = jwks.fetch().await?;
        jwks.install(keys);
        Ok(jwks)
    }

    /// The key `kid` names, as last fetched.
    pub fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok()?.get(kid).cloned()
    }

    /// Whether the set is older than its age allows.
    pub fn stale(&self) -> bool {
        self.fetched.lock().ok().and_then(|f| *f).is_none_or(|at| at.elapsed() >= self.max_age)
    }

    /// Fetches the set again unless a fetch was tried within `min_refresh` (or another caller's
    /// fetch, waited for here, just brought it).
    pub async fn refresh(&self) {
        let _one = self.fetching.lock().await;
        let recent = self.tried.lock().ok().and_then(|t| *t).is_some_and(|at| at.elapsed() < self.min_refresh);
        if recent {
            return;
        }
        if let Ok(mut tried) = self.tried.lock() {
            *tried = Some(Instant::now());
        }
        match self.fetch().await {
            Ok(keys) => self.install(keys),
            Err(e) => {
                // The last good set stays: an issuer down for a while does not lock everyone out.
                metrics::counter!("pledgeflow_jwks_refresh_failures_total").increment(1);
                tracing::warn!(url = %self.url, error = %e, "could not refresh the issuer's keys; keeping the last set");
            }
        }
    }

    fn install(&self, keys: HashMap<String, DecodingKey>) {
        tracing::info!(url = %self.url, keys = keys.len(), "issuer keys loaded");
        if let Ok(mut k) = self.keys.write() {
            *k = keys;
        }
        if let Ok(mut f) = self.fetched.lock() {
            *f = Some(Instant::now());
        }
    }

    /// The set's keys for this service's algorithm, by key id.
    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let mut response = self.client.get(&self.url).send().await.map_err(|e| format!("{}: {e}", self.url))?;
        if !response.status().is_success() {
            return Err(format!("{}: {}", self.url, response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{}: {e}", self.url))? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(format!("{}: the key set is larger than {} KiB", self.url, MAX_BYTES / 1024));
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("{}: not a JSON Web Key Set: {e}", self.url))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            // A key declared for another algorithm is not one this service accepts tokens by.
            if jwk.common.key_algorithm.is_some_and(|a| a.to_string() != format!("{:?}", self.algorithm)) {
                continue;
            }
            let fits = matches!(
                (&jwk.algorithm, self.algorithm),
                (jsonwebtoken::jwk::AlgorithmParameters::RSA(_), Algorithm::RS256) | (jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
            );
            if !fits {
                continue;
            }
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, key);
                }
                Err(e) => tracing::warn!(url = %self.url, kid = %kid, error = %e, "an issuer key that cannot be used"),
            }
        }
        if keys.is_empty() {
            return Err(format!("{}: no {:?} key with a key id (kid) in the set", self.url, self.algorithm));
        }
        Ok(keys)
    }
}
