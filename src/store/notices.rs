//! The written notices a case's applicant was sent, kept with the case as worded when sent.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use super::outbox::Delivery;
use super::stmt;

/// Keeps the notice an outbox message carried (once: a message sent again after a crash keeps
/// the first).
pub async fn keep(db: &impl ConnectionTrait, d: &Delivery, subject: &str, body: &str, now: DateTime<Utc>) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db,
        "INSERT INTO case_notices (outbox_id, instance_id, topic, subject, body, sent_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (outbox_id) DO NOTHING",
        vec![d.id.clone().into(), d.instance_id.clone().into(), d.topic.clone().into(), subject.into(), body.into(), now.timestamp_millis().into()],
    ))
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct Notice {
    pub outbox_id: String,
    pub instance_id: String,
    pub topic: String,
    pub subject: String,
    pub body: String,
    pub sent_at: i64,
}

/// The notices of `instances`, oldest first, in one query.
pub async fn of(db: &impl ConnectionTrait, instances: &[String]) -> Result<Vec<Notice>, DbErr> {
    if instances.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT outbox_id, instance_id, topic, subject, body, sent_at FROM case_notices WHERE instance_id IN ({}) ORDER BY instance_id, sent_at, outbox_id",
        vec!["?"; instances.len()].join(", ")
    );
    super::fetch(db, &sql, instances.iter().map(|i| i.clone().into()).collect()).await
}
