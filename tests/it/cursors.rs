//! Cursors are opaque, but a client can forge one (issue #17, item 8): on every paginated field
//! a cursor at an integer limit, negative, or not a number at all is BAD_USER_INPUT naming
//! `after`, over the real binary — never a panic or a reset connection.

use serde_json::json;

use crate::hostile::quiet_demo;
use crate::http::{graphql_as, token_as};

/// A cursor as the server writes one (URL-safe base64 of the JSON of the position), around a
/// forged position.
fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn forged_cursors_on_every_paginated_field_are_bad_user_input_naming_after() {
    let demo = quiet_demo().await;
    let (base, url, http) = (&demo.base, &demo.url, &demo.http);
    let admin = token_as(url, "admin-01", &["--role", "regional_admin", "--region", "310101"]);
    let applicant_uscc = {
        use sea_orm::ConnectionTrait;
        let row = demo.db.query_one_raw(sea_orm::Statement::from_string(demo.db.get_database_backend(), "SELECT applicant_uscc AS u FROM workflow_instances WHERE applicant_uscc IS NOT NULL ORDER BY id LIMIT 1".to_string())).await.unwrap().unwrap();
        row.try_get::<String>("", "u").unwrap()
    };
    let applicant = token_as(url, "applicant-1", &["--role", "applicant", "--uscc", &applicant_uscc]);
    let fields = [
        (&admin, "query($a: String) { workflowDefinitions(after: $a) { totalCount } }"),
        (&admin, "query($a: String) { workflowInstances(after: $a) { totalCount } }"),
        (&admin, "query($a: String) { approvalItems(after: $a) { totalCount } }"),
        (&admin, "query($a: String) { outbox(after: $a) { totalCount } }"),
        (&applicant, "query($a: String) { auditTrail(after: $a) { totalCount } }"),
    ];
    let forged = ["9223372036854775807", "18446744073709551615", "18446744073709551616", "-1", "1e308", "NaN", "", "\"0\""];
    for (token, query) in fields {
        // A real cursor still works.
        let r = graphql_as(http, base, token, json!({"query": query, "variables": {"a": null}})).await;
        assert!(r["errors"].is_null(), "{query}: {r}");
        for value in forged {
            let r = graphql_as(http, base, token, json!({"query": query, "variables": {"a": b64(value)}})).await;
            let ext = &r["errors"][0]["extensions"];
            assert_eq!((ext["code"].as_str(), ext["field"].as_str()), (Some("BAD_USER_INPUT"), Some("after")), "{query} after {value:?}: {r}");
        }
    }
    let healthy = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert!(healthy.status().is_success(), "the server is still up");
}
