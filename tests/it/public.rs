//! Public disclosure: an enterprise's commitments open to anyone, with no personal or internal
//! data, limited per client address.

use serde_json::{json, Value};

use crate::http::{graphql, graphql_as, start, token_as};

/// What the public types may carry, field by field: nothing personal, nothing internal.
const PUBLIC_TYPES: [(&str, &[&str]); 4] = [
    ("PublicEnterprise", &["uscc", "name", "commitments"]),
    (
        "PublicCommitment",
        &["itemCode", "itemName", "department", "mode", "conditions", "promisedOn", "materialsDue", "licenceNumber", "status", "settledOn", "creditRepaired"],
    ),
    // The licences under a business licence (一照通行).
    ("PublicLicenceHolder", &["uscc", "name", "businessLicence", "licences"]),
    ("PublicLicence", &["licenceNumber", "itemCode", "itemName", "issuer", "validFrom", "validUntil", "mayOperate", "commitmentStatus"]),
];

#[test]
fn the_public_types_hold_no_personal_or_internal_field() {
    let sdl = pledgeflow::api::sdl();
    for (name, allowed) in PUBLIC_TYPES {
        let start = sdl.find(&format!("type {name} {{")).unwrap_or_else(|| panic!("no type {name}"));
        let body = &sdl[start..start + sdl[start..].find("\n}").unwrap()];
        let fields: Vec<&str> = body
            .lines()
            .skip(1)
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('"') && !l.starts_with('#'))
            .filter_map(|l| l.split(':').next())
            .filter(|f| f.chars().all(|c| c.is_ascii_alphanumeric()))
            .collect();
        assert_eq!(fields, allowed, "{name} changed: review it for personal and internal data before widening this list");
    }
}

#[tokio::test]
async fn anyone_sees_an_enterprises_commitments_without_personal_data_and_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[("PLEDGEFLOW_PUBLIC_REQUESTS_PER_MINUTE", "3")]).await;
    let http = crate::http::client();
    let ask = |uscc: &str| json!({"query": "query($u: String!) { publicCommitments(uscc: $u) { uscc name commitments { itemName department mode conditions promisedOn materialsDue licenceNumber status settledOn creditRepaired } } }", "variables": {"u": uscc}});

    // The demo restaurant: cases in force, one revoked by its department; no sign-in needed.
    let r = graphql(&http, &base, ask("91310110666007217T")).await;
    let enterprise = &r["data"]["publicCommitments"];
    assert_eq!(enterprise["name"], "上海示例餐饮管理有限公司", "{r}");
    let statuses: Vec<&str> = enterprise["commitments"].as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert!(statuses.contains(&"NOT_KEPT") && statuses.contains(&"IN_FORCE"), "{statuses:?}");
    let revoked = enterprise["commitments"].as_array().unwrap().iter().find(|c| c["status"] == "NOT_KEPT").unwrap();
    assert!(revoked["settledOn"].is_string() && revoked["licenceNumber"].is_string(), "{revoked}");
    assert_eq!(revoked["conditions"].as_array().map(Vec::len), Some(3), "what was promised: {revoked}");
    // Withdrawn and refused applications carry no standing commitment: not listed.
    assert_eq!(statuses.len(), statuses.iter().filter(|s| ["NOT_KEPT", "IN_FORCE", "KEPT"].contains(s)).count());
    // No person, contact, signature, or internal opinion or reason anywhere in the answer.
    let text = r.to_string();
    for private in ["张伟", "法定代表人", "contact0@", "1380", "以欺骗手段取得许可", "window-01", "approver-01"] {
        assert!(!text.contains(private), "{private:?} is disclosed: {text}");
    }

    // A malformed code is refused with its field; an unknown one is null.
    let r = graphql(&http, &base, ask("91310110666007217X")).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "uscc", "{r}");
    let r = graphql(&http, &base, ask("91350211M0000XUK1D")).await;
    assert!(r["data"]["publicCommitments"].is_null(), "{r}");

    // Three a minute from one address: the fourth is turned away.
    let r = graphql(&http, &base, ask("91310110666007217T")).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{r}");
    // Signed-in staff are not held back by it.
    let admin = token_as(&url, "admin-01", &["--role", "regional_admin", "--region", "310101"]);
    let r: Value = graphql_as(&http, &base, &admin, json!({"query": "{ serverClock { manual } }"})).await;
    assert_eq!(r["data"]["serverClock"]["manual"], false, "{r}");
}
