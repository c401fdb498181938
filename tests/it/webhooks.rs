//! What leaves by webhook is minimal by design (issue #16, item 4): each topic's body, built
//! from a case whose context holds everything (staff ids, the approver's opinion, inspection
//! notes, contacts, the signer, credit standing), is pinned to a checked-in file
//! (`tests/webhooks/CHANNEL-TOPIC.json`). A change to what leaves shows here first: review it
//! before updating the file (run with `PLEDGEFLOW_BLESS_WEBHOOKS=1` to rewrite the files).

use chrono::TimeZone;
use pledgeflow::delivery::notices;
use serde_json::{json, Value};

use crate::helpers::repo;

fn case_context() -> Value {
    json!({
        "scope": {"region": "310101", "department": "310101-SCJG"},
        "applicant": {"uscc": "91310110666007217T", "name": "上海某某餐饮管理有限公司", "email": "owner@example.cn", "mobile": "13800000000",
                      "legal_representative": "张伟"},
        "item": {"code": "310101-FOOD-01", "name": "食品经营许可", "version": 2, "conditions": ["经营场所符合要求", "人员持有健康证明"]},
        "commitment": {"text": "本人承诺……", "version": 3, "signed_by": "张伟"},
        "mode": "deferral",
        "materials": [{"code": "M02", "name": "健康证明", "status": "received"}],
        "supervision": {"department": "310101-SCJG", "division": "310101-SCJG-SP", "rectification_working_days": 20},
        "department": {"code": "310101-SCJG", "name": "区市场监管局", "email": "scjg@example.gov.cn"},
        "division": {"code": "310101-SCJG-SP", "name": "食品安全科", "email": "sp@example.gov.cn"},
        "credit": {"tier": "B", "dishonest": false},
        "licence_number": "JY13101010000002",
        "decision": {"by": "approver-01", "name": "王审批", "at": "2026-11-23T02:00:00Z", "opinion": "符合条件"},
        "reason": "逾期未补齐材料",
        "officer": {"sub": "window-01"},
    })
}

fn task_context() -> Value {
    json!({
        "parent": {"id": "case-1", "definition": "material-deferral", "context": case_context()},
        "inspectors": ["inspector-sp-1"],
        "inspection": {"inspected_by": "inspector-sp-1", "note": "后厨卫生差", "findings": [{"condition": "经营场所符合要求", "kept": false, "note": "地面积水"}]},
        "reinspection": {"inspected_by": "inspector-sp-1", "note": "仍未整改"},
        "rectification_order": "限期整改",
        "reason": "复查仍不符合承诺",
    })
}

fn payload(id: &str, definition: &str, event: &str, to: &str, context: Value) -> Value {
    json!({"instance_id": id, "definition": definition, "definition_version": 5, "event": event, "seq": 3, "from": "x", "to": to,
           "context": context, "deadlines": {}, "payload": {"reason": "x"}})
}

#[test]
fn each_webhook_topic_sends_only_what_its_receiver_needs() {
    let at = chrono::Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap();
    let bodies = [
        ("credit", "breach", payload("case-1", "material-deferral", "expire", "revoked", case_context())),
        ("credit", "fulfilment", payload("case-1", "material-deferral", "supervision_closed", "closed", case_context())),
        ("credit", "breach-from-a-task", payload("task-1", "supervision-task", "still_failing", "closed_revoked", task_context())),
        ("supervision", "archive", payload("case-1", "material-deferral", "approve", "licensed", case_context())),
        ("supervision", "sla_breach", payload("task-1", "supervision-task", "look_at_overdue", "notified", task_context())),
        ("sms", "task_assigned", payload("task-1", "supervision-task", "notify", "notified", task_context())),
        ("approval", "anything_else", payload("case-1", "material-deferral", "approve", "licensed", case_context())),
    ];
    let bless = std::env::var("PLEDGEFLOW_BLESS_WEBHOOKS").is_ok();
    let mut differ = Vec::new();
    for (channel, name, p) in bodies {
        let topic = name.split("-from-").next().unwrap();
        let body = notices::body(channel, topic, "case-1:3:2", &p, at);
        let file = repo().join(format!("tests/webhooks/{channel}-{name}.json"));
        let text = serde_json::to_string_pretty(&body).unwrap() + "\n";
        if bless {
            std::fs::write(&file, &text).unwrap();
        }
        let pinned = std::fs::read_to_string(&file).unwrap_or_default();
        if pinned != text {
            differ.push(format!("{}:\n{text}", file.display()));
        }
        // Whatever the receiver, none of these leave.
        let leaked: Vec<&str> = ["owner@example.cn", "13800000000", "后厨卫生差", "地面积水", "仍未整改", "window-01", "inspector-sp-1", "\"tier\""]
            .into_iter()
            .filter(|s| text.contains(s))
            .collect();
        let allowed: &[&str] = if (channel, topic) == ("supervision", "archive") { &["owner@example.cn", "13800000000"] } else { &[] };
        let leaked: Vec<&str> = leaked.into_iter().filter(|s| !allowed.contains(s)).collect();
        assert!(leaked.is_empty(), "{channel}:{topic} sends {leaked:?}:\n{text}");
        if channel == "credit" {
            for s in ["张伟", "符合条件", "approver-01", "本人承诺"] {
                assert!(!text.contains(s), "the credit platform gets no signer, opinion, approver or commitment: {text}");
            }
        }
    }
    assert!(differ.is_empty(), "webhook bodies changed (review, then PLEDGEFLOW_BLESS_WEBHOOKS=1):\n{}", differ.join("\n"));
}
