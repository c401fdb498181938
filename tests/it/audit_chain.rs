//! The audit trail holds against someone who can write the database but holds neither the
//! audit key file nor the checkpoint file (issue #17, item 6): each of the audit's findings is
//! reproduced by tampering with the database directly, as such a person would — recomputing
//! the unkeyed hashes the code is open about — and `pledgeflow audit verify` (the real binary)
//! reports it, naming the instance or row, with `--checkpoint` for what no chain can show
//! (a history deleted or truncated whole). An untouched database, with an old unkeyed chain
//! from before the key, verifies clean; a rotated key verifies with the retired one given.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command, sync::Arc};

use chrono::Duration;
use pledgeflow::{
    app,
    clock::ManualClock,
    store::{self, audit, entities::event, entities::instance},
    window::registry,
    workflow::Actor,
};
use sea_orm::{sea_query::Expr, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::helpers::{backends, bin, config_for, monday_morning, repo, TestDb};

/// `pledgeflow ARGS` on `db`, as an operator runs it: (succeeded, stdout and stderr).
fn cli(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args).env("PLEDGEFLOW_DATABASE_URL", &db.url).env("PLEDGEFLOW_WORKFLOWS_DIR", repo().join("workflows"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

async fn one(db: &impl ConnectionTrait, sql: &str) -> String {
    let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql.to_string())).await.unwrap().unwrap_or_else(|| panic!("no row: {sql}"));
    row.try_get_by_index::<String>(0).unwrap()
}

async fn exec(db: &impl ConnectionTrait, sql: &str) {
    db.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Rewrites the stored chain of `id` from event `from` on as `edit` leaves its events, each
/// hash recomputed with the unkeyed formula and linked on, the row's last hash to match: what
/// someone without the key can do.
async fn rewrite_unkeyed(db: &impl ConnectionTrait, id: &str, from: i64, edit: impl Fn(&mut event::Model)) {
    let mut prev = audit::GENESIS.to_string();
    for mut e in store::instances::history(db, id).await.unwrap() {
        if e.seq < from {
            prev = e.hash;
            continue;
        }
        edit(&mut e);
        e.prev_hash = prev;
        e.hash = audit::event_hash(&e);
        event::Entity::update_many()
            .col_expr(event::Column::Payload, Expr::value(e.payload.clone()))
            .col_expr(event::Column::Actor, Expr::value(e.actor.clone()))
            .col_expr(event::Column::ActorSubject, Expr::value(e.actor_subject.clone()))
            .col_expr(event::Column::Scheme, Expr::value(e.scheme.clone()))
            .col_expr(event::Column::PrevHash, Expr::value(e.prev_hash.clone()))
            .col_expr(event::Column::Hash, Expr::value(e.hash.clone()))
            .filter(event::Column::InstanceId.eq(id))
            .filter(event::Column::Seq.eq(e.seq))
            .exec(db)
            .await
            .unwrap();
        prev = e.hash;
    }
    instance::Entity::update_many().col_expr(instance::Column::LastEventHash, Expr::value(prev)).filter(instance::Column::Id.eq(id)).exec(db).await.unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// An instance with two events: its start, then a withdrawal.
async fn two_events(e: &pledgeflow::runtime::Engine) -> String {
    let window = Actor::person("window-01", "window");
    let case = e.start("after-the-fact-review", json!({}), Default::default(), &window).await.unwrap();
    e.fire(&case.id, "withdraw", &window, &json!({"reason": "撤回申请"}), None).await.unwrap();
    case.id
}

#[tokio::test]
async fn every_finding_of_the_audit_is_reported_and_an_untouched_trail_verifies_clean() {
    for db in backends().await {
        let label = db.label;
        let config = config_for(&db, repo().join("workflows"));
        let t0 = monday_morning();
        let clock = ManualClock::at(t0);
        let before = app::build_engine(&config, Arc::new(clock.clone())).await.unwrap();
        assert!(pledgeflow::demo::seed(&before).await.unwrap() > 0);
        // A chain from before the trail was keyed: unkeyed hashes, no mark, rows unsealed — as
        // a database written by the previous version is found at its first keyed start.
        let legacy = two_events(&before).await;
        rewrite_unkeyed(&before.db, &legacy, 1, |e| e.scheme = audit::SHA256.into()).await;
        exec(&before.db, &format!("DELETE FROM settings WHERE key = '{}'", audit::KEYED_SINCE)).await;
        for table in ["credit_records", "applicants", "applicant_changes"] {
            exec(&before.db, &format!("UPDATE {table} SET mac = NULL")).await;
        }
        before.db.close().await.unwrap();

        clock.advance(Duration::hours(1));
        let e = app::build_engine(&config, Arc::new(clock.clone())).await.unwrap();
        if label == "sqlite" {
            let file = db.url.trim_start_matches("sqlite://");
            assert_eq!(mode(Path::new(&format!("{file}.audit.key"))), 0o600, "the audit key is made beside the database, private");
        }
        // An applicant's details changed through the window, each change recorded.
        let uscc = "91310110666007217T";
        let old = registry::applicant(&e.db, uscc).await.unwrap().unwrap();
        let renamed = registry::Applicant { name: "上海示例餐饮管理有限公司（更名）".into(), ..old.clone() };
        let txn = store::begin_write(&e.db).await.unwrap();
        registry::put_applicant(&txn, &e.workflows.audit, &renamed, e.now()).await.unwrap();
        registry::record_changes(&txn, &e.workflows.audit, &old, &renamed, "admin-01", e.now()).await.unwrap();
        txn.commit().await.unwrap();
        let (edited, deleted, truncated) = (two_events(&e).await, two_events(&e).await, two_events(&e).await);
        let (downgraded, unkeyed) = (two_events(&e).await, two_events(&e).await);

        // Untouched: clean, the old unkeyed chain included, and against a checkpoint of now.
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = dir.path().join("checkpoints.jsonl");
        let file = checkpoints.to_str().unwrap();
        let (ok, out) = cli(&db, &["audit", "verify"], &[]);
        assert!(ok && out.contains(" 0 break(s)"), "{label}: {out}");
        let (ok, out) = cli(&db, &["audit", "checkpoint", "--file", file], &[]);
        assert!(ok, "{label}: {out}");
        assert_eq!(mode(&checkpoints), 0o600);
        let (ok, out) = cli(&db, &["audit", "verify", "--checkpoint", file], &[]);
        assert!(ok && out.contains(" 0 break(s)"), "{label}: {out}");

        // Payload and actor of the first event edited, the unkeyed chain recomputed.
        rewrite_unkeyed(&e.db, &edited, 1, |ev| {
            if ev.seq == 1 {
                ev.payload = r#"{"context":{"note":"edited"},"deadlines":{}}"#.into();
                ev.actor = r#"{"subject":"someone-else","roles":["window"]}"#.into();
                ev.actor_subject = Some("someone-else".into());
            }
        })
        .await;
        // An instance deleted with its events.
        for table in ["workflow_timers", "outbox", "workflow_events"] {
            exec(&e.db, &format!("DELETE FROM {table} WHERE instance_id = '{deleted}'")).await;
        }
        exec(&e.db, &format!("DELETE FROM workflow_instances WHERE id = '{deleted}'")).await;
        // Its last event dropped and the row rolled back to the one before.
        let first = &store::instances::history(&e.db, &truncated).await.unwrap()[0];
        exec(&e.db, &format!("DELETE FROM workflow_events WHERE instance_id = '{truncated}' AND seq = 2")).await;
        exec(&e.db, &format!("UPDATE workflow_instances SET version = 1, state = '{}', last_event_hash = '{}' WHERE id = '{truncated}'", first.to_state, first.hash)).await;
        // The last event of a keyed chain rewritten unkeyed; a whole chain rewritten unkeyed.
        rewrite_unkeyed(&e.db, &downgraded, 2, |ev| ev.scheme = audit::SHA256.into()).await;
        rewrite_unkeyed(&e.db, &unkeyed, 1, |ev| ev.scheme = audit::SHA256.into()).await;
        // A case's licence number, another's commitment text.
        let licensed = one(&e.db, "SELECT instance_id FROM cases WHERE licence_number IS NOT NULL ORDER BY instance_id LIMIT 1").await;
        exec(&e.db, &format!("UPDATE cases SET licence_number = 'JY31010199999999' WHERE instance_id = '{licensed}'")).await;
        // Another's number forged consistently, in its sealed licence row and on the case.
        let forged = one(&e.db, &format!("SELECT instance_id FROM licences WHERE instance_id <> '{licensed}' ORDER BY instance_id LIMIT 1")).await;
        exec(&e.db, &format!("UPDATE licences SET number = 'JY31010188888888' WHERE instance_id = '{forged}'")).await;
        exec(&e.db, &format!("UPDATE cases SET licence_number = 'JY31010188888888' WHERE instance_id = '{forged}'")).await;
        let promised = one(&e.db, &format!("SELECT instance_id FROM cases WHERE commitment_text IS NOT NULL AND instance_id NOT IN ('{licensed}', '{forged}') ORDER BY instance_id LIMIT 1")).await;
        exec(&e.db, &format!("UPDATE cases SET commitment_text = '本企业承诺：无' WHERE instance_id = '{promised}'")).await;
        // A revocation's credit record turned into a fulfilment.
        let record = one(&e.db, "SELECT id FROM credit_records WHERE kind = 'revocation' ORDER BY id LIMIT 1").await;
        exec(&e.db, &format!("UPDATE credit_records SET kind = 'fulfilment' WHERE id = '{record}'")).await;
        // The renamed applicant's name put back; the dishonest one taken off the list.
        exec(&e.db, &format!("UPDATE applicants SET name = '{}' WHERE uscc = '{uscc}'", old.name)).await;
        exec(&e.db, "UPDATE applicants SET dishonest = 0, credit_tier = 'A' WHERE uscc = '91310115591693856A'").await;

        let (ok, out) = cli(&db, &["audit", "verify"], &[]);
        assert!(!ok, "{label}: {out}");
        for expected in [
            format!("BREAK instance {edited} event 1: its hash does not match its contents"),
            format!("BREAK instance {downgraded} event 2: an unkeyed (sha256) event after a keyed one: a downgrade"),
            format!("BREAK instance {unkeyed} event 1: a wholly unkeyed chain begun after the trail was keyed"),
            format!("BREAK case {licensed}: its licence number \"JY31010199999999\" is not the"),
            format!("BREAK case {promised}: its commitment text is not the one its first event recorded"),
            format!("BREAK licence {forged}: its seal does not match its contents"),
            format!("BREAK credit record {record}: its seal does not match its contents"),
            format!("BREAK applicant {uscc}: its seal does not match its contents"),
            format!("BREAK applicant {uscc}: its name is not the one its latest change record gave"),
            "BREAK applicant 91310115591693856A: its seal does not match its contents".to_string(),
        ] {
            assert!(out.contains(&expected), "{label}: {expected:?} in\n{out}");
        }
        // A deleted or truncated history leaves a chain that is whole in itself.
        assert!(!out.contains(&deleted) && !out.contains(&truncated), "{label}: {out}");
        assert!(!out.contains(&legacy), "{label}: the old unkeyed chain still verifies: {out}");

        // The change record that gave the name away deleted: only the count a checkpoint kept knows.
        exec(&e.db, &format!("DELETE FROM applicant_changes WHERE uscc = '{uscc}'")).await;
        // The checkpoint file knows what was there; a line forged into it is told and not used.
        let mut lines: Vec<String> = std::fs::read_to_string(&checkpoints).unwrap().lines().map(str::to_string).collect();
        let mut forged: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        forged["heads"] = json!([[deleted, 9, "0".repeat(64)]]);
        lines.push(forged.to_string());
        let other = audit::AuditKeys::new(audit::AuditKey::new(b"an attacker's own key, not the installation's"), vec![]);
        let mut own: pledgeflow::trail::Checkpoint = serde_json::from_str(&lines[0]).unwrap();
        own.heads.clear();
        own.seal = None;
        own.seal = Some(other.seal(&[Some(&serde_json::to_string(&own).unwrap())]));
        lines.push(serde_json::to_string(&own).unwrap());
        std::fs::write(&checkpoints, lines.join("\n") + "\n").unwrap();
        let (ok, out) = cli(&db, &["audit", "verify", "--checkpoint", file], &[]);
        assert!(!ok, "{label}: {out}");
        for expected in [
            format!("BREAK instance {deleted}: deleted: the checkpoint of"),
            format!("BREAK instance {truncated}: at version 1, below the version 2 the checkpoint of"),
            format!("BREAK instance {truncated} event 2: gone, though the checkpoint of"),
            "BREAK checkpoint line 2: its seal does not match its contents: forged or edited, not used".to_string(),
            format!("BREAK checkpoint line 3: sealed with key {}, which is not among the keys given", other.current().kid()),
            format!("BREAK instance {edited} event 2: its hash is not the one the checkpoint of"),
            "BREAK table applicant_changes: 0 rows, fewer than the 1 the checkpoint of".to_string(),
        ] {
            assert!(out.contains(&expected), "{label}: {expected:?} in\n{out}");
        }
        db.cleanup().await;
    }
}

/// A key rotated as README says: the old key file listed as retired, a new one in its place.
/// Events and seals made with either verify; without the retired key the old ones are named;
/// a server given a key unknown to the trail refuses to start rather than fork it.
#[tokio::test]
async fn a_rotated_key_verifies_with_the_retired_one_and_a_stranger_key_is_refused() {
    for db in backends().await {
        let label = db.label;
        let dir = tempfile::tempdir().unwrap();
        let (old_key, new_key) = (dir.path().join("audit.key.1"), dir.path().join("audit.key"));
        std::fs::write(&old_key, "11".repeat(32)).unwrap();
        std::fs::set_permissions(&old_key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut config = config_for(&db, repo().join("workflows"));
        config.audit_key_file = Some(old_key.clone());
        let clock = ManualClock::at(monday_morning());
        let e = app::build_engine(&config, Arc::new(clock.clone())).await.unwrap();
        let before = two_events(&e).await;
        e.db.close().await.unwrap();

        config.audit_key_file = Some(new_key.clone());
        let refused = app::build_engine(&config, Arc::new(clock.clone())).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(refused.contains("PLEDGEFLOW_AUDIT_RETIRED_KEY_FILES"), "{label}: {refused}");
        config.audit_retired_key_files = vec![old_key.clone()];
        let e = app::build_engine(&config, Arc::new(clock.clone())).await.unwrap();
        assert_eq!(mode(&new_key), 0o600);
        let after = two_events(&e).await;
        let scheme = |id: String| {
            let db = e.db.clone();
            async move { store::instances::history(&db, &id).await.unwrap()[0].scheme.clone() }
        };
        assert_ne!(scheme(before.clone()).await, scheme(after).await, "{label}: written with the new key");

        let new = new_key.to_str().unwrap();
        let (ok, out) = cli(&db, &["audit", "verify"], &[("PLEDGEFLOW_AUDIT_KEY_FILE", new), ("PLEDGEFLOW_AUDIT_RETIRED_KEY_FILES", &format!("[\"{}\"]", old_key.display()))]);
        assert!(ok && out.contains(" 0 break(s)"), "{label}: {out}");
        let (ok, out) = cli(&db, &["audit", "verify"], &[("PLEDGEFLOW_AUDIT_KEY_FILE", new)]);
        assert!(!ok && out.contains(&format!("BREAK instance {before} event 1: keyed with key")), "{label}: {out}");
        let (ok, out) = cli(&db, &["audit", "verify"], &[("PLEDGEFLOW_AUDIT_KEY_FILE", dir.path().join("missing.key").to_str().unwrap())]);
        assert!(!ok && out.contains("no audit key file"), "{label}: verify never makes a key: {out}");
        db.cleanup().await;
    }
}

/// The server anchors the trail by itself: on its schedule (here every second) it appends a
/// sealed checkpoint, private to its user, that `audit verify --checkpoint` reads clean.
#[tokio::test]
async fn the_server_appends_sealed_checkpoints_on_its_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _base, url) = crate::http::start(dir.path(), &[("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099"), ("PLEDGEFLOW_AUDIT_CHECKPOINT_SCHEDULE", "* * * * * *")]).await;
    let file = dir.path().join("data/audit-checkpoints.jsonl");
    for _ in 0..100 {
        if std::fs::read_to_string(&file).is_ok_and(|t| t.ends_with('\n')) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(server);
    assert_eq!(mode(&file), 0o600);
    let first: pledgeflow::trail::Checkpoint = serde_json::from_str(std::fs::read_to_string(&file).unwrap().lines().next().unwrap()).unwrap();
    // The demo seeds 20 instances; its bundle starts more as the outbox delivers, maybe before the first checkpoint.
    assert!(first.since.is_none() && first.heads.len() >= 20, "the first holds every head, the demo's at least: {first:?}");
    let out = Command::new(bin()).args(["audit", "verify", "--checkpoint", file.to_str().unwrap()]).env("PLEDGEFLOW_DATABASE_URL", &url).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains(" 0 break(s)") && !stdout.contains(" 0 checkpointed"), "{stdout}");
}
