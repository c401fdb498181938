//! Signed JSON webhooks (SMS gateway, public credit platform, supervision platform), signed as
//! Standard Webhooks (https://www.standardwebhooks.com): `webhook-id` (the outbox message's
//! idempotency key, the same on every retry: the receiver's dedup key), `webhook-timestamp`
//! and `webhook-signature: v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`, which the
//! published verifiers check as they are. A channel with no URL configured is written as a
//! .json file in a folder instead, like mail.
//!
//! Secrets are written `whsec_<base64 of the key>`. A secret without the prefix — what the
//! first releases took — keeps working: its key is its UTF-8 bytes, exactly the key it signed
//! with before, so `whsec_` + base64(old secret) is the same secret for a receiver's library.
//! The first releases' own headers (`x-pledgeflow-signature`, `x-pledgeflow-timestamp`) are
//! still sent, with the same key, for one more version: deprecated.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ChannelError;
use crate::config::WebhookEndpoint;

pub const ID_HEADER: &str = "webhook-id";
pub const STANDARD_TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";
/// Deprecated: the first releases' signature header, sent for one more version.
pub const SIGNATURE_HEADER: &str = "x-pledgeflow-signature";
/// Deprecated with `SIGNATURE_HEADER`.
pub const TIMESTAMP_HEADER: &str = "x-pledgeflow-timestamp";

/// The HMAC key a configured secret stands for: `whsec_<base64>` decoded, else the text's bytes.
pub fn key_of(secret: &str) -> Result<Vec<u8>, String> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("a whsec_ secret is base64 after the prefix: {e}")),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`: the Standard Webhooks signature.
pub fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let sig = mac(key, &[id.as_bytes(), b".", timestamp.to_string().as_bytes(), b".", body]);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(sig))
}

/// Deprecated: `v1=<hex HMAC-SHA256(key, "{timestamp}.{body}")>`, the first releases' scheme.
pub fn signature(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("v1={}", hex::encode(mac(key, &[timestamp.to_string().as_bytes(), b".", body])))
}

pub struct Webhooks {
    client: reqwest::Client,
    endpoints: BTreeMap<String, WebhookEndpoint>,
    folder: PathBuf,
}

impl Webhooks {
    pub fn new(endpoints: BTreeMap<String, WebhookEndpoint>, folder: PathBuf, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self { client, endpoints, folder })
    }

    pub fn describe(&self, channel: &str) -> String {
        match self.endpoints.get(channel) {
            Some(e) => e.url.clone(),
            None => format!(".json files in {}", self.folder.join(channel).display()),
        }
    }

    pub async fn post(&self, channel: &str, key: &str, body: &serde_json::Value, timestamp: i64) -> Result<String, ChannelError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ChannelError::Permanent(e.to_string()))?;
        let Some(endpoint) = self.endpoints.get(channel) else {
            return self.write_file(channel, key, &bytes).await;
        };
        let secret = key_of(&endpoint.secret).map_err(|e| ChannelError::Permanent(format!("webhook {channel}: {e}")))?;
        let response = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .header(ID_HEADER, key)
            .header(STANDARD_TIMESTAMP_HEADER, timestamp.to_string())
            .header(STANDARD_SIGNATURE_HEADER, standard_signature(&secret, key, timestamp, &bytes))
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(&secret, timestamp, &bytes))
            .body(bytes)
            .send()
            .await
            .map_err(|e| ChannelError::Transient(format!("POST {}: {e}", endpoint.url)))?;
        let status = response.status();
        if status.is_success() {
            Ok(format!("POST {} → {status}", endpoint.url))
        } else {
            Err(ChannelError::Transient(format!("POST {} → {status}", endpoint.url)))
        }
    }

    async fn write_file(&self, channel: &str, key: &str, bytes: &[u8]) -> Result<String, ChannelError> {
        let dir = self.folder.join(channel);
        let name: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let path = dir.join(format!("{name}.json"));
        let tmp = dir.join(format!(".{name}.tmp"));
        let io = async {
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::write(&tmp, bytes).await?;
            tokio::fs::rename(&tmp, &path).await
        };
        io.await.map_err(|e| ChannelError::Transient(format!("writing {}: {e}", path.display())))?;
        Ok(format!("written to {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hmac_sha256_over_timestamp_and_body() {
        // Computed independently: python3 -c "import hmac,hashlib; print(hmac.new(b'key', b'1.{}', hashlib.sha256).hexdigest())"
        assert_eq!(
            super::signature(b"key", 1, b"{}"),
            "v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }

    #[test]
    fn a_raw_secret_and_its_whsec_form_are_one_key() {
        use base64::Engine as _;
        let whsec = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode("key"));
        assert_eq!(super::key_of("key").unwrap(), super::key_of(&whsec).unwrap());
        assert_eq!(super::signature(&super::key_of("key").unwrap(), 1, b"{}"), super::signature(&super::key_of(&whsec).unwrap(), 1, b"{}"));
        assert!(super::key_of("whsec_not base64!").is_err());
    }
}
