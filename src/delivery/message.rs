//! What a template sees: the case, its applicant and item, deadlines in the office's local
//! time, what is still missing, and the office to turn to. Built from the outbox row's payload
//! (the instance as the transition left it), so a message says what was true when it was decided.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use crate::config::Office;

pub use crate::domain::calendar::local_text;

/// A value looked up in the context, or for a child instance (a supervision task) in its
/// parent's context.
pub fn inherited<'a>(context: &'a Value, key: &str) -> &'a Value {
    match &context[key] {
        Value::Null => &context["parent"]["context"][key],
        v => v,
    }
}

/// Names of materials still owed: deferred materials, and any the event said were missing.
fn missing(context: &Value) -> Vec<String> {
    let mut out: Vec<String> = inherited(context, "materials")
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["status"] == "deferred")
                .map(|m| m["name"].as_str().or(m["code"].as_str()).unwrap_or("").to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for m in context["missing"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !out.iter().any(|o| o == m) {
            out.push(m.to_string());
        }
    }
    out
}

/// What a provisional date says after it.
pub const PROVISIONAL: &str = "（暂按法定节假日推算，以公布的节假日安排为准，如有顺延另行告知）";

pub struct Titles<'a> {
    pub workflow: &'a str,
    pub state: &'a str,
}

/// The template context for one delivery, sent at `now`. `marked` is the instant a reminder is
/// about (its calendar entry), when there is one.
pub fn context(payload: &Value, recipient: &str, office: &Office, tz: Tz, titles: Titles<'_>, marked: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Value {
    let ctx = &payload["context"];
    // A date counted over a year whose official holidays are not yet published says so wherever
    // a template prints it (the mark lives in the context: `provisional_deadlines`).
    let provisional = |name: &str| ctx["provisional_deadlines"].as_array().is_some_and(|l| l.iter().any(|n| n == name));
    let told = |t: DateTime<Utc>, provisional: bool| {
        let text = local_text(t, tz);
        if provisional { format!("{text}{PROVISIONAL}") } else { text }
    };
    let mut deadlines = Map::new();
    let mut first: Option<(DateTime<Utc>, bool)> = None;
    if let Some(map) = payload["deadlines"].as_object() {
        for (name, v) in map {
            if let Some(t) = v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()) {
                let t = t.with_timezone(&Utc);
                let p = provisional(name);
                first = Some(first.map_or((t, p), |f| if t < f.0 { (t, p) } else { f }));
                deadlines.insert(name.clone(), Value::String(told(t, p)));
            }
        }
    }
    // A reminder's own instant is counted from its deadline: provisional with it.
    let about = marked.map(|t| (t, first.is_some_and(|f| f.1))).or(first);
    let deadline = about.map(|(t, p)| told(t, p));
    let first = first.map(|f| f.0);
    let due_day = marked.or(first).map(|t| crate::domain::calendar::day_from(t, now, tz));
    let licence = match &ctx["licence_number"] {
        Value::Null => inherited(ctx, "parent").get("licence_number").cloned().unwrap_or(Value::Null),
        v => v.clone(),
    };
    json!({
        "case": {
            "id": payload["instance_id"],
            "workflow": payload["definition"],
            "workflow_title": titles.workflow,
            "state": payload["to"],
            "state_title": titles.state,
            "event": payload["event"],
        },
        "applicant": inherited(ctx, "applicant"),
        "item": inherited(ctx, "item"),
        "licence_number": licence,
        // The procedure before an adverse decision, as the item set it when the case opened.
        "due_process": inherited(ctx, "due_process"),
        "deadlines": deadlines,
        "deadline": deadline,
        // Whether `deadline` is counted over a year whose official holidays are not yet published.
        "deadline_provisional": about.is_some_and(|(_, p)| p),
        "due_day": due_day,
        "missing": missing(ctx),
        "data": payload["payload"],
        "office": office,
        "recipient": recipient,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_sees_its_parents_applicant_and_what_is_missing() {
        let payload = json!({
            "instance_id": "c1", "definition": "supervision-task", "to": "awaiting_look",
            "context": {"parent": {"context": {"applicant": {"name": "甲公司"},
                "materials": [{"code": "M1", "name": "营业执照", "status": "provided"},
                              {"code": "M2", "name": "健康证明", "status": "deferred"}]}}},
            "deadlines": {"materials_due": "2026-11-27T09:30:00Z"},
        });
        let now = "2026-11-26T02:00:00Z".parse().unwrap();
        let v = context(&payload, "applicant", &Office::default(), chrono_tz::Asia::Shanghai, Titles { workflow: "w", state: "s" }, None, now);
        assert_eq!(v["applicant"]["name"], "甲公司");
        assert_eq!(v["missing"], json!(["健康证明"]));
        assert_eq!(v["deadline"], "2026年11月27日（星期五）17:30");
        assert_eq!(v["due_day"], "明天");
        assert_eq!(v["deadline_provisional"], false);
    }

    #[test]
    fn a_provisional_deadline_says_so_wherever_a_template_prints_it() {
        let payload = json!({
            "instance_id": "c1", "definition": "material-deferral", "to": "breach_noticed",
            "context": {"provisional_deadlines": ["response_due"]},
            "deadlines": {"materials_due": "2026-12-31T09:30:00Z", "response_due": "2027-01-08T09:30:00Z"},
        });
        let now = "2026-12-31T10:00:00Z".parse().unwrap();
        let v = context(&payload, "applicant", &Office::default(), chrono_tz::Asia::Shanghai, Titles { workflow: "w", state: "s" }, None, now);
        assert_eq!(v["deadlines"]["response_due"], format!("2027年1月8日（星期五）17:30{PROVISIONAL}"));
        assert_eq!(v["deadlines"]["materials_due"], "2026年12月31日（星期四）17:30", "an official date is just a date");
        assert_eq!((&v["deadline"], &v["deadline_provisional"]), (&json!("2026年12月31日（星期四）17:30"), &json!(false)));
        let reminder = context(&payload, "applicant", &Office::default(), chrono_tz::Asia::Shanghai, Titles { workflow: "w", state: "s" }, Some("2027-01-07T01:00:00Z".parse().unwrap()), now);
        assert_eq!(reminder["deadline_provisional"], false, "about the first deadline, which is official");
    }
}
