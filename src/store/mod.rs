//! Persistence: connecting, migrating, and applying what the engine decides in one
//! transaction per event. Every query goes through a `&impl ConnectionTrait` handed down from
//! the caller, never the pool behind a transaction's back (on SQLite that would deadlock).

pub mod audit;
pub mod calendar_files;
pub mod credit;
pub mod definitions;
pub mod entities;
pub mod error;
pub mod idempotency;
pub mod instances;
pub mod millis;
pub mod name_index;
pub mod notices;
pub mod outbox;
pub mod provisional;
pub mod rollup;
pub mod scope;
pub mod seal;
pub mod sla;
pub mod timers;
pub mod training_clock;
pub mod verify;
pub mod workflows;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

pub use instances::{FireResult, InstanceRecord, StoreError, Workflows};

/// How long a database that does not answer is waited for before it is reported.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a pool. On SQLite the file is created if missing, in WAL mode with a busy timeout.
/// A PostgreSQL server that cannot be reached is reported within `REACH_TIMEOUT`, naming the
/// host and the cause (the pool alone waits out its acquire timeout, then says only that).
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("postgres") {
        reach_postgres(url).await?;
    }
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        opts.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    }
    Database::connect(opts).await
}

async fn reach_postgres(url: &str) -> Result<(), DbErr> {
    use sea_orm::sqlx::{postgres::PgConnectOptions, Connection, PgConnection};
    let refuse = DbErr::Custom;
    let opts: PgConnectOptions = url.parse().map_err(|e| refuse(format!("the database URL is no PostgreSQL URL: {e}")))?;
    let place = format!("{}:{}/{}", opts.get_host(), opts.get_port(), opts.get_database().unwrap_or_default());
    match tokio::time::timeout(REACH_TIMEOUT, PgConnection::connect_with(&opts)).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(refuse(format!("cannot connect to PostgreSQL at {place}: {e}"))),
        Err(_) => Err(refuse(format!("no answer from PostgreSQL at {place} within {} s", REACH_TIMEOUT.as_secs()))),
    }
}

/// Applies pending migrations. On PostgreSQL, under a transaction-scoped advisory lock, so
/// that several processes starting together migrate once.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            txn.execute_unprepared("SELECT pg_advisory_xact_lock(727001)").await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await
        }
        _ => Migrator::up(db, None).await,
    }
}

/// A write transaction. On SQLite it takes the write lock at BEGIN, so that a read followed
/// by a write cannot fail with SQLITE_BUSY half-way.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Gives back what `worker` holds at shutdown: its claimed, unsettled timers and outbox rows
/// are free for another process at once instead of when the lease runs out. Claims are only
/// ever taken on due rows, so the pending indexes up to `now` find them.
pub async fn release_claims(db: &DatabaseConnection, worker: &str, now: chrono::DateTime<chrono::Utc>) -> Result<u64, DbErr> {
    let now = now.timestamp_millis();
    let timers = db
        .execute_raw(stmt(
            db,
            "UPDATE workflow_timers SET claimed_by = NULL, claimed_until = NULL WHERE status = 'pending' AND due_at <= ? AND claimed_by = ?",
            vec![now.into(), worker.into()],
        ))
        .await?;
    let outbox = db
        .execute_raw(stmt(
            db,
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE status = 'pending' AND next_attempt_at <= ? AND claimed_by = ?",
            vec![now.into(), worker.into()],
        ))
        .await?;
    Ok(timers.rows_affected() + outbox.rows_affected())
}

/// Whether the database answers: what `/readyz` asks.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// The rows of a raw statement (`?` placeholders), each read as `T`.
pub(crate) async fn fetch<T: sea_orm::FromQueryResult>(db: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> Result<Vec<T>, DbErr> {
    let rows = db.query_all_raw(stmt(db, sql, values)).await?;
    rows.iter().map(|r| T::from_query_result(r, "")).collect()
}

/// The `n` column of a counting statement's first row (0 when there is none).
pub(crate) async fn count(db: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> Result<i64, DbErr> {
    #[derive(sea_orm::FromQueryResult)]
    struct N {
        n: i64,
    }
    Ok(fetch::<N>(db, sql, values).await?.first().map_or(0, |c| c.n))
}

/// A statement written with `?` placeholders, numbered `$n` for PostgreSQL.
pub fn stmt(db: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let backend = db.get_database_backend();
    Statement::from_sql_and_values(backend, placeholders(backend, sql), values)
}

/// SQL written with `?` placeholders in the backend's own: `$1`, `$2`, … for PostgreSQL (a
/// statement of its own, or a condition sea-query places into a larger one, which renumbers
/// them). The SQL holds no `?` but placeholders.
pub fn placeholders(backend: DbBackend, sql: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            let mut out = String::new();
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => sql.to_string(),
    }
}


/// A lease claim on due rows of `table` (timers, outbox): marks up to `limit` pending rows with
/// `due_column <= now` and no live lease as held by `worker` until `now + lease`, and returns
/// the rows (as `T`, the table's entity model), in no particular order. One statement, so its cost follows the number
/// due (the partial indexes on pending rows); `SKIP LOCKED` lets PostgreSQL processes share.
/// Settings for a transaction that takes due rows (timers, messages) in due order: the rows
/// from their partial index of pending rows, stopping at the limit, planned for this execution.
/// A prepared statement's cached plan is made once per connection — by the first sweeps, on
/// tables with nothing pending — and planned from statistics taken while few rows were pending,
/// PostgreSQL would rather gather every due row, join and sort them all, then keep the limit:
/// once per batch, so a burst of N due timers cost N²/limit (seen: 184 timers/s instead of
/// thousands).
pub(crate) const DUE_ORDER: &str = "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off";

/// Undoes `DUE_ORDER` for the rest of a transaction that goes on to write: a batch's many-row
/// statements keep their cached plans (planned afresh on every execution, the reminders' sweep
/// ran at 8,200 a second instead of 10,300) and the planner its usual choices.
pub(crate) const USUAL_PLANS: &str = "SET LOCAL plan_cache_mode TO DEFAULT; SET LOCAL enable_sort TO DEFAULT; SET LOCAL enable_bitmapscan TO DEFAULT";

pub(crate) async fn claim_rows<T: sea_orm::FromQueryResult>(
    db: &DatabaseConnection,
    table: &str,
    due_column: &str,
    worker: &str,
    now: chrono::DateTime<chrono::Utc>,
    lease: chrono::Duration,
    limit: u64,
) -> Result<Vec<T>, DbErr> {
    let lock = if db.get_database_backend() == DbBackend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE {table} SET claimed_by = ?, claimed_until = ? \
         WHERE id IN (SELECT id FROM {table} \
           WHERE status = 'pending' AND {due_column} <= ? AND (claimed_until IS NULL OR claimed_until < ?) \
           ORDER BY {due_column} LIMIT ?{lock}) \
         RETURNING *"
    );
    let now_ms = now.timestamp_millis();
    let values = vec![worker.into(), (now_ms + lease.num_milliseconds()).into(), now_ms.into(), now_ms.into(), (limit as i64).into()];
    let txn = begin_write(db).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(DUE_ORDER).await?;
    }
    let rows = txn.query_all_raw(stmt(db, &sql, values)).await?;
    txn.commit().await?;
    rows.iter().map(|r| T::from_query_result(r, "")).collect()
}

/// Gives back `worker`'s leases on the still pending rows `ids` of `table` (timers, outbox)
/// when it cannot go on with them, so that the next pass retakes them at once rather than
/// after the lease. Best effort: the database may be what failed.
pub(crate) async fn release_rows(db: &DatabaseConnection, table: &str, ids: &[&str], worker: &str) {
    if ids.is_empty() {
        return;
    }
    let marks = vec!["?"; ids.len()].join(", ");
    let mut values: Vec<sea_orm::Value> = vec![worker.into()];
    values.extend(ids.iter().map(|id| sea_orm::Value::from(id.to_string())));
    let sql = format!("UPDATE {table} SET claimed_until = NULL WHERE claimed_by = ? AND status = 'pending' AND id IN ({marks})");
    if let Err(e) = db.execute_raw(stmt(db, &sql, values)).await {
        tracing::debug!(table, error = %e, "claims not given back: they are retaken when their lease runs out");
    }
}

/// Why the database cannot record anything just now, when that is the cause of `e`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwritable {
    /// SQLite's SQLITE_FULL (the disk, or `max_page_count`), PostgreSQL's `disk_full` (53100).
    Full,
    /// SQLite's SQLITE_READONLY (a read-only file or mount), PostgreSQL's
    /// `read_only_sql_transaction` (25006, e.g. a standby).
    ReadOnly,
    /// No connection could be had or it broke (the server restarting, the network).
    Unreachable,
}

impl Unwritable {
    /// What an API caller is told: the condition and that nothing was recorded; no database
    /// text (paths, SQL), which goes to the log.
    pub fn message(self) -> &'static str {
        match self {
            Self::Full => "the database is full: nothing was recorded; an operator must free space, then try again",
            Self::ReadOnly => "the database is read-only: nothing was recorded; an operator must make it writable, then try again",
            // A connection that broke during COMMIT may have committed: say so.
            Self::Unreachable => "the database did not answer: try again shortly; if this was a change, look whether it was recorded before repeating it",
        }
    }
}

/// Tells a condition an operator must fix (or wait out) from a fault in the program: disk
/// full, read-only, unreachable. Each write is one transaction, so in every such case nothing
/// of it was kept.
pub fn unwritable(e: &DbErr) -> Option<Unwritable> {
    use sea_orm::{sqlx, RuntimeErr};
    let sqlx_err = match e {
        DbErr::ConnectionAcquire(_) => return Some(Unwritable::Unreachable),
        DbErr::Conn(RuntimeErr::SqlxError(x)) | DbErr::Exec(RuntimeErr::SqlxError(x)) | DbErr::Query(RuntimeErr::SqlxError(x)) => x,
        _ => return None,
    };
    match sqlx_err.as_ref() {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => Some(Unwritable::Unreachable),
        sqlx::Error::Database(d) => match d.code()?.as_ref() {
            "53100" => Some(Unwritable::Full),
            "25006" => Some(Unwritable::ReadOnly),
            // SQLite gives its extended result code; the primary code is its low byte.
            code => match code.parse::<i64>().ok()? & 0xff {
                13 => Some(Unwritable::Full),
                8 => Some(Unwritable::ReadOnly),
                _ => None,
            },
        },
        _ => None,
    }
}
