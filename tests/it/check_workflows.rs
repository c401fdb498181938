//! `check-workflows` passes on the shipped definitions and names each kind of problem.

use std::process::Command;

use pledgeflow::workflow::parse_definition;

use crate::helpers::{bin, repo, workflows_dir};

const BASE: &str = r#"
name = "t"
version = 1
initial = "a"
deadlines = ["due"]
events = ["go", "tick", "stop"]

[states.a]
timers = [{ fire = "tick", at = "deadline:due", offset = "-1 working day", time = "09:00" }]

[states.b]

[states.done]
final = true

[[transitions]]
from = "a"
on = "tick"
internal = true
effects = ["email:applicant:reminder"]

[[transitions]]
from = "a"
on = "go"
to = "b"
roles = ["window"]
guards = ["payload_has:reason"]

[[transitions]]
from = "b"
on = "stop"
to = "done"
roles = ["approver"]
"#;

fn problems(text: &str) -> Vec<String> {
    match parse_definition("t.toml", text) {
        Ok(_) => Vec::new(),
        Err(p) => p.iter().map(ToString::to_string).collect(),
    }
}

fn assert_problem(text: &str, expected: &str) {
    let found = problems(text);
    assert!(found.iter().any(|p| p.contains(expected)), "expected a problem containing {expected:?}, got {found:#?}");
}

#[test]
fn the_base_definition_is_valid() {
    assert_eq!(problems(BASE), Vec::<String>::new());
}

#[test]
fn unknown_states_events_guards_effects_and_roles_are_named() {
    assert_problem(&BASE.replace("to = \"done\"", "to = \"nowhere\""), "to unknown state \"nowhere\"");
    assert_problem(&BASE.replace("from = \"b\"", "from = \"limbo\""), "from unknown state \"limbo\"");
    assert_problem(&BASE.replace("on = \"stop\"", "on = \"jump\""), "on unknown event \"jump\"");
    assert_problem(&BASE.replace("payload_has:reason", "is_nice"), "unknown guard \"is_nice\"");
    assert_problem(&BASE.replace("email:applicant:reminder", "launch:rockets"), "unknown effect \"launch:rockets\"");
    assert_problem(&BASE.replace("roles = [\"approver\"]", "roles = [\"janitor\"]"), "unknown role \"janitor\"");
    assert_problem(&BASE.replace("initial = \"a\"", "initial = \"z\""), "initial: unknown state \"z\"");
}

#[test]
fn problems_point_at_the_file_and_line() {
    let found = problems(&BASE.replace("to = \"done\"", "to = \"nowhere\""));
    // the third [[transitions]] header is on line 29 of BASE
    assert!(found.iter().any(|p| p.starts_with("t.toml:29: transitions[2]:")), "{found:#?}");
    // Problems with a top-level key point at its line (found by the parser fuzzing, issue #8:
    // they had none), and "no final state" at the first state's table.
    let found = problems(&BASE.replace("name = \"t\"", "name = \"T\"").replace("version = 1", "version = 0"));
    assert!(found.iter().any(|p| p.starts_with("t.toml:2: name:")), "{found:#?}");
    assert!(found.iter().any(|p| p.starts_with("t.toml:3: version:")), "{found:#?}");
    let found = problems(&BASE.replace("events = [\"go\", \"tick\", \"stop\"]", "events = [\"go\", \"tick\", \"stop\", \"idle\"]"));
    assert!(found.iter().any(|p| p.starts_with("t.toml:6: events:")), "{found:#?}");
    let found = problems(&BASE.replace("final = true", ""));
    assert!(found.iter().any(|p| p.starts_with("t.toml:8: states: no state is marked final")), "{found:#?}");
}

#[test]
fn unreachable_states_and_states_without_a_way_out_are_refused() {
    let island = format!("{BASE}\n[states.island]\n\n[[transitions]]\nfrom = \"island\"\non = \"stop\"\nto = \"done\"\nroles = [\"approver\"]\n");
    assert_problem(&island, "states.island: unreachable from the initial state \"a\"");
    let stuck = BASE.replace("to = \"done\"\nroles = [\"approver\"]", "internal = true\nroles = [\"approver\"]");
    assert_problem(&stuck, "states.b: a non-final state with no way out");
    let trap = format!("{}\n[[transitions]]\nfrom = \"b\"\non = \"go\"\nto = \"a\"\nroles = [\"window\"]\n",
        BASE.replace("to = \"done\"\nroles = [\"approver\"]", "internal = true\nroles = [\"approver\"]"));
    assert_problem(&trap, "no final state can be reached from here");
}

#[test]
fn a_timer_firing_an_event_its_state_cannot_take_is_refused() {
    let text = BASE.replace("[states.b]\n", "[states.b]\ntimers = [{ fire = \"tick\", offset = \"3 working days\" }]\n");
    assert_problem(&text, "states.b.timers[0]: fires \"tick\", which state \"b\" cannot take");
    let human_only = BASE.replace("internal = true\neffects", "internal = true\nroles = [\"window\"]\neffects");
    assert_problem(&human_only, "does not let the system fire it");
    assert_problem(&BASE.replace("deadline:due", "deadline:someday"), "undeclared deadline \"someday\"");
    assert_problem(&BASE.replace("-1 working day", "-1 fortnight"), "offset = \"-1 fortnight\"");
    assert_problem(&BASE.replace("fire = \"tick\"", "fire = \"tock\""), "fires unknown event \"tock\"");
}

#[test]
fn duplicate_and_ambiguous_transitions_are_refused() {
    let dup = format!("{BASE}\n[[transitions]]\nfrom = \"b\"\non = \"stop\"\nto = \"done\"\nroles = [\"approver\"]\n");
    assert_problem(&dup, "duplicate of transitions[2]");
    let amb = format!("{BASE}\n[[transitions]]\nfrom = \"b\"\non = \"stop\"\nto = \"a\"\nroles = [\"approver\"]\n");
    assert_problem(&amb, "ambiguous with transitions[2]");
}

#[test]
fn malformed_files_and_unknown_keys_are_refused_with_their_line() {
    assert_problem("name = \n", "t.toml:1: file: malformed definition");
    assert_problem("", "t.toml:1: file: malformed definition: missing field `name`");
    assert_problem("# nothing here\n", "t.toml:1: file: malformed definition");
    assert_problem(&BASE.replace("[states.b]\n", "[states.b]\ncolour = \"red\"\n"), "malformed definition: unknown field `colour`");
    assert_problem(&BASE.replace("events = [\"go\", \"tick\", \"stop\"]", "events = [\"go\", \"tick\", \"stop\", \"idle\"]"), "\"idle\" is declared but no transition takes it");
}

#[test]
fn an_event_people_may_fire_needs_a_rule_in_the_event_policy() {
    let stamped = BASE.replace(r#"events = ["go", "tick", "stop"]"#, r#"events = ["go", "tick", "stop", "stamp"]"#)
        + "\n[[transitions]]\nfrom = \"b\"\non = \"stamp\"\ninternal = true\nroles = [\"window\"]\n";
    let dir = workflows_dir(&[("stamped.toml", &stamped)]);
    let out = Command::new(bin()).arg("check-workflows").arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("stamped.toml: event stamp: people may fire \"stamp\", but") && stdout.contains("has no rule for it"), "{stdout}");
    assert!(stdout.contains("1 problem(s) found"), "{stdout}");
}

#[test]
fn the_command_passes_on_the_shipped_definitions() {
    let out = Command::new(bin()).arg("check-workflows").arg(repo().join("workflows")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("material-deferral v1") && stdout.contains("supervision-task v1"), "{stdout}");
}

#[test]
fn the_command_lists_every_problem_of_every_file_and_fails() {
    let dir = workflows_dir(&[
        ("good.toml", BASE),
        ("bad-target.toml", &BASE.replace("name = \"t\"", "name = \"u\"").replace("to = \"done\"", "to = \"nowhere\"")),
        ("bad-guard.toml", &BASE.replace("name = \"t\"", "name = \"v\"").replace("payload_has:reason", "is_nice")),
        ("broken.toml", "name = ["),
    ]);
    let out = Command::new(bin()).arg("check-workflows").arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("bad-target.toml:29: transitions[2]: to unknown state \"nowhere\""), "{stdout}");
    assert!(stdout.contains("bad-guard.toml:") && stdout.contains("unknown guard \"is_nice\""), "{stdout}");
    assert!(stdout.contains("broken.toml:1: file: malformed definition"), "{stdout}");
    assert!(stdout.contains("3 problem(s) found"), "{stdout}");
}

#[test]
fn serve_refuses_to_start_on_a_broken_definition() {
    let dir = workflows_dir(&[("bad.toml", &BASE.replace("payload_has:reason", "is_nice"))]);
    let db = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .arg("serve")
        .env("PLEDGEFLOW_WORKFLOWS_DIR", dir.path())
        .env("PLEDGEFLOW_DATABASE_URL", format!("sqlite://{}/x.db", db.path().display()))
        .env("PLEDGEFLOW_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("unknown guard \"is_nice\""), "{stderr}");
}

#[test]
fn an_invalid_setting_stops_start_up_naming_it() {
    let out = Command::new(bin()).arg("serve").env("PLEDGEFLOW_TIMEZONE", "Mars/Olympus").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("PLEDGEFLOW_TIMEZONE") && stderr.contains("Mars/Olympus"), "{stderr}");
}

#[test]
fn an_event_may_set_a_declared_deadline_from_its_payload_and_the_new_state_counts_from_it() {
    use chrono::{TimeZone, Utc};
    use pledgeflow::domain::calendar::WorkingCalendar;
    use pledgeflow::workflow::{engine, Actor, TimeEnv, TransitionError};
    use serde_json::json;
    let text = BASE
        .replace("deadlines = [\"due\"]", "deadlines = [\"due\", \"fix_by\"]")
        .replace("guards = [\"payload_has:reason\"]", "effects = [\"deadline:from_payload:fix_by\"]")
        .replace("[states.b]", "[states.b]\ntimers = [{ fire = \"stop\", at = \"deadline:fix_by\" }]")
        .replace("roles = [\"approver\"]", "roles = [\"approver\", \"system\"]");
    assert_problem(&text.replace("deadline:from_payload:fix_by", "deadline:from_payload:later"), "sets undeclared deadline \"later\"");
    let def = parse_definition("t.toml", &text).unwrap_or_else(|p| panic!("{p:?}"));
    let env = TimeEnv { calendar: WorkingCalendar::load_dir(&repo().join("workflows/calendars")).unwrap().into(), tz: chrono_tz::Asia::Shanghai };
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0).unwrap();
    let due = std::collections::BTreeMap::from([("due".to_string(), now + chrono::Duration::days(9))]);
    let snapshot = engine::Snapshot { state: "a", context: &json!({}), deadlines: &due };
    let window = Actor::person("w", "window");
    let fire = |payload| engine::fire(&def, &snapshot, "go", &window, &payload, now, &env);

    let out = fire(json!({"fix_by": "2026-03-20T17:30:00+08:00"})).unwrap();
    let fix_by = Utc.with_ymd_and_hms(2026, 3, 20, 9, 30, 0).unwrap();
    assert_eq!(out.deadlines.as_ref().and_then(|d| d.get("fix_by")), Some(&fix_by));
    assert_eq!(out.deadlines.as_ref().and_then(|d| d.get("due")), due.get("due"), "the other deadlines stay");
    assert_eq!(out.arm.iter().map(|t| t.due_at).collect::<Vec<_>>(), [fix_by], "the new state's timer counts from it");
    for bad in [json!({}), json!({"fix_by": "next friday"}), json!({"fix_by": "2026-03-01T17:30:00+08:00"})] {
        assert!(matches!(fire(bad.clone()), Err(TransitionError::BadDeadline { .. })), "{bad}");
    }
}
