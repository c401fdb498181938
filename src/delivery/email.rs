//! Email through lettre: pooled SMTP when a URL is configured, else one .eml file per message
//! in a folder so that a fresh install works without a mail server.

use std::{path::PathBuf, time::Duration};

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, Event, EventLike};
use lettre::{
    message::{header::ContentType, Attachment, Mailbox, MultiPart},
    transport::smtp::PoolConfig,
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

use super::templates::RenderedEmail;
use super::ChannelError;

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

pub struct Mailer {
    transport: Transport,
    pub from: Mailbox,
    /// Covers the whole exchange: lettre's own timeout covers connecting only.
    timeout: Duration,
}

impl Mailer {
    /// Must be called inside the Tokio runtime (the pool spawns its reaper there).
    pub fn new(url: Option<&str>, folder: PathBuf, from: Mailbox, timeout: Duration) -> anyhow::Result<Self> {
        let transport = match url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
                    .timeout(Some(timeout))
                    .pool_config(PoolConfig::new().max_size(4))
                    .build(),
            ),
            None => {
                std::fs::create_dir_all(&folder)?;
                Transport::Files(AsyncFileTransport::<Tokio1Executor>::new(&folder), folder)
            }
        };
        Ok(Self { transport, from, timeout })
    }

    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp(_) => "SMTP".into(),
            Transport::Files(_, dir) => format!(".eml files in {}", dir.display()),
        }
    }

    /// Sends one message; says whether a failure is worth retrying.
    pub async fn send(&self, message: Message) -> Result<String, ChannelError> {
        let outcome = match &self.transport {
            Transport::Smtp(t) => match tokio::time::timeout(self.timeout, t.send(message)).await {
                Err(_) => Err(ChannelError::Transient(format!("SMTP exchange timed out after {:?}", self.timeout))),
                Ok(Ok(r)) => Ok(format!("SMTP {} {}", r.code(), r.message().collect::<Vec<_>>().join(" "))),
                Ok(Err(e)) if e.is_permanent() => Err(ChannelError::Permanent(format!("SMTP refused: {e}"))),
                Ok(Err(e)) => Err(ChannelError::Transient(format!("SMTP: {e}"))),
            },
            Transport::Files(t, dir) => match t.send(message).await {
                Ok(id) => Ok(format!("written to {}/{id}.eml", dir.display())),
                Err(e) => Err(ChannelError::Transient(format!("writing .eml: {e}"))),
            },
        };
        outcome
    }
}

/// A stable Message-ID from the outbox row's idempotency key: a resend after a crash carries
/// the same ID, so mail systems and people can tell it is the same message.
pub fn message_id(key: &str, from: &Mailbox) -> String {
    let local: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '.' }).collect();
    format!("<{local}@{}>", from.email.domain())
}

/// A calendar entry for a deadline: PUBLISH (no accept/decline), a UID stable per delivery,
/// UTC times.
pub fn ics(uid: &str, summary: &str, description: &str, at: DateTime<Utc>, stamp: DateTime<Utc>) -> String {
    let event = Event::new()
        .uid(uid)
        .summary(summary)
        .description(description)
        .starts(at)
        .ends(at)
        .timestamp(stamp)
        .done();
    let mut cal = Calendar::new();
    cal.append_property(("METHOD", "PUBLISH"));
    cal.push(event);
    cal.done().to_string()
}

pub struct Envelope {
    pub to: Vec<Mailbox>,
    pub message_id: String,
    pub calendar: Option<String>,
}

pub fn build(from: &Mailbox, envelope: Envelope, body: RenderedEmail) -> Result<Message, ChannelError> {
    let mut builder = Message::builder().from(from.clone()).subject(body.subject).message_id(Some(envelope.message_id));
    for to in envelope.to {
        builder = builder.to(to);
    }
    let alternative = MultiPart::alternative_plain_html(body.text, body.html);
    let result = match envelope.calendar {
        Some(ics) => {
            let content_type = ContentType::parse("text/calendar; method=PUBLISH; charset=UTF-8")
                .map_err(|e| ChannelError::Permanent(e.to_string()))?;
            builder.multipart(MultiPart::mixed().multipart(alternative).singlepart(
                Attachment::new("deadline.ics".into()).body(ics, content_type),
            ))
        }
        None => builder.multipart(alternative),
    };
    result.map_err(|e| ChannelError::Permanent(format!("building the message: {e}")))
}
