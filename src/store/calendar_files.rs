//! Calendar years imported into the database (`pledgeflow calendar import`): the State Council's
//! notice for next year, put in force by every server at its next sweep, provisional deadlines
//! recounted at once, without a restart.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use super::{count, fetch, stmt};
use crate::domain::calendar::SharedCalendar;
use crate::domain::shipped::File;

/// The imported files, by name, as the calendar reads them.
pub async fn imported(db: &impl ConnectionTrait) -> Result<Vec<File>, DbErr> {
    #[derive(sea_orm::FromQueryResult)]
    struct Row {
        name: String,
        body: String,
    }
    let rows: Vec<Row> = fetch(db, "SELECT name, body FROM calendar_files ORDER BY name", vec![]).await?;
    Ok(rows.into_iter().map(|r| File { name: format!("database:calendar_files/{}", r.name), text: r.body }).collect())
}

/// Stores (or replaces) the file `name`.
pub async fn put(db: &impl ConnectionTrait, name: &str, body: &str, now: DateTime<Utc>) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db,
        "INSERT INTO calendar_files (name, body, imported_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET body = excluded.body, imported_at = excluded.imported_at",
        vec![name.into(), body.into(), now.timestamp_millis().into()],
    ))
    .await
    .map(|_| ())
}

/// Puts the imported years in force when an import newer than the calendar's is on file;
/// `Ok(true)` when the calendar changed (then provisional deadlines are to be recounted).
pub async fn refresh(db: &DatabaseConnection, calendar: &SharedCalendar) -> anyhow::Result<bool> {
    let newest = count(db, "SELECT COALESCE(MAX(imported_at), 0) AS n FROM calendar_files", vec![]).await?;
    if newest <= calendar.stamp() {
        return Ok(false);
    }
    let files = imported(db).await?;
    let next = calendar.with_imported(&files).map_err(|e| anyhow::anyhow!("the imported calendar cannot be put in force: {e}"))?;
    let years: Vec<String> = next.years().filter(|y| !next.is_provisional_year(*y)).map(|y| y.to_string()).collect();
    calendar.replace(next, newest);
    tracing::info!(official_years = %years.join(", "), "imported calendar put in force");
    Ok(true)
}
