//! Hostile requests against the real binary (issue #8): each is refused with its typed code,
//! and a refused request leaves every table as it was. `tools/fuzz/hostile_api.py` generates
//! these by the hundred; the cases here pin each kind, and the bugs the fuzzing found.

use pledgeflow::auth::{Claims, Keys};
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::http::{graphql_as, start, token_as};

/// Row counts and a checksum of versions of every table a request may write: equal before
/// and after a refused request.
pub(crate) async fn snapshot(db: &sea_orm::DatabaseConnection) -> Vec<(String, i64, i64)> {
    let tables = [
        ("workflow_instances", "version"),
        ("workflow_events", "seq"),
        ("workflow_timers", "due_at"),
        ("outbox", "event_seq"),
        ("cases", "1"),
        ("case_materials", "1"),
        ("applicants", "1"),
        ("returns", "1"),
        ("credit_records", "1"),
        ("electronic_licences", "1"),
        ("idempotency_keys", "1"),
        ("staff", "1"),
        ("approval_items", "1"),
        ("departments", "1"),
        ("licence_sequences", "1"),
        ("applicant_changes", "1"),
        ("divisions", "1"),
        ("supervision_items", "1"),
        ("inspection_draws", "1"),
        ("regions", "1"),
        ("deregistrations", "1"),
    ];
    let mut out = Vec::new();
    for (table, col) in tables {
        let sql = format!("SELECT COUNT(*) AS n, CAST(COALESCE(SUM({col}), 0) AS BIGINT) AS s FROM {table}");
        let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
        out.push((table.to_string(), row.try_get::<i64>("", "n").unwrap(), row.try_get::<i64>("", "s").unwrap()));
    }
    // Whole rows of the two tables that hold free text a request may put: names, reasons.
    for sql in [
        "SELECT uscc || name || legal_representative || COALESCE(email, '') || COALESCE(mobile, '') || COALESCE(home_region, '') AS t FROM applicants",
        "SELECT state || context AS t FROM workflow_instances",
        // Who owns what: an upsert must not move a department, a staff member or an item.
        "SELECT code || region || name || COALESCE(email, '') || CAST(registration_authority AS TEXT) AS t FROM departments",
        "SELECT id || name || region || COALESCE(department, '') || COALESCE(division, '') || roles AS t FROM staff",
        "SELECT code || CAST(version AS TEXT) || department AS t FROM approval_items",
        "SELECT id || CAST(COALESCE(repaired_at, 0) AS TEXT) AS t FROM credit_records",
        "SELECT holder_uscc || number || valid_until || CAST(revoked AS TEXT) AS t FROM electronic_licences",
        "SELECT instance_id || number || CAST(event_seq AS TEXT) AS t FROM licences",
        // The statistics by their summed figures: a sweep folds the unfolded changes into their
        // rows whenever it runs, which moves rows between the two tables and changes no figure.
        "SELECT department || '|' || CAST(day AS TEXT) || '|' || item_code || '|' || mode || '|' || metric || '|' || key || '|' || CAST(SUM(n) AS TEXT) AS t \
         FROM (SELECT department, day, item_code, mode, metric, key, n FROM statistics_rollup \
               UNION ALL SELECT department, day, item_code, mode, metric, key, n FROM statistics_rollup_deltas) r \
         GROUP BY department, day, item_code, mode, metric, key HAVING SUM(n) <> 0",
    ] {
        let rows = db.query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql.to_string())).await.unwrap();
        let mut text: Vec<String> = rows.iter().map(|r| r.try_get::<String>("", "t").unwrap_or_default()).collect();
        text.sort();
        // A digest of the text, not its length: a rename to a name of the same length is a change.
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&text, &mut digest);
        out.push((sql.to_string(), text.len() as i64, std::hash::Hasher::finish(&digest) as i64));
    }
    out
}

/// `serve --demo` with no timer sweep (nothing moves but what a test sends), a client, and a
/// connection to its database for looking underneath.
pub(crate) struct QuietDemo {
    pub _dir: tempfile::TempDir,
    pub _server: crate::http::Server,
    pub base: String,
    pub url: String,
    pub http: reqwest::Client,
    pub db: sea_orm::DatabaseConnection,
}

pub(crate) async fn quiet_demo() -> QuietDemo {
    let dir = tempfile::tempdir().unwrap();
    let (server, base, url) = start(dir.path(), &[("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099")]).await;
    let db = pledgeflow::store::connect(&url, 1).await.unwrap();
    QuietDemo { _dir: dir, _server: server, base, url, http: crate::http::client(), db }
}

/// A snapshot once the server is idle: the demo's own messages (signals to parents move
/// instances) delivered, and nothing moving between two looks.
pub(crate) async fn settled(db: &sea_orm::DatabaseConnection) -> Vec<(String, i64, i64)> {
    loop {
        let sql = format!("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending' AND next_attempt_at <= {}", chrono::Utc::now().timestamp_millis());
        let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
        let first = snapshot(db).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        if row.try_get::<i64>("", "n").unwrap() == 0 && snapshot(db).await == first {
            return first;
        }
    }
}

fn errors(r: &Value) -> Vec<(String, Option<String>)> {
    r["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("expected errors in {r}"))
        .iter()
        .map(|e| (e["extensions"]["code"].as_str().unwrap_or("(none)").to_string(), e["extensions"]["field"].as_str().map(str::to_string)))
        .collect()
}

const INJECTIONS: &[&str] = &[
    "' OR '1'='1",
    "'; DROP TABLE cases; --",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "a\u{0}b",
    "{{ 7*7 }}",
    "${jndi:ldap://x/a}",
    "\u{202e}",
];

#[tokio::test]
async fn injection_strings_in_mutations_are_refused_with_their_field_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099")]).await;
    let http = crate::http::client();
    let db = pledgeflow::store::connect(&url, 1).await.unwrap();
    let window = token_as(&url, "window-01", &["--role", "window", "--department", "310101-SCJG", "--region", "310101"]);
    let admin = token_as(&url, "admin-01", &["--role", "regional_admin", "--region", "310101"]);
    let open = "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }";
    let put = "mutation($i: PutApplicantInput!) { putApplicant(input: $i) { applicant { uscc } } }";
    let ret = "mutation($i: ReturnApplicationInput!) { returnApplication(input: $i) { id } }";
    let materials = json!([{"code": "M01", "status": "PROVIDED"}, {"code": "M02", "status": "PROVIDED"}, {"code": "M03", "status": "PROVIDED"}]);
    let before = settled(&db).await;
    for bad in INJECTIONS {
        let cases: Vec<(&str, &str, Value, &str, &str)> = vec![
            (&window, open, json!({"applicantUscc": bad, "itemCode": "310101-FOOD-01", "mode": "AFTER_THE_FACT", "signedBy": "张伟", "materials": materials}), "BAD_USER_INPUT", "applicantUscc"),
            (&window, open, json!({"applicantUscc": "91310110666007217T", "itemCode": bad, "mode": "AFTER_THE_FACT", "signedBy": "张伟", "materials": materials}), "NOT_FOUND", ""),
            (&window, open, json!({"applicantUscc": "91310110666007217T", "itemCode": "310101-FOOD-01", "mode": "AFTER_THE_FACT", "signedBy": "张伟",
                "materials": [{"code": bad, "status": "PROVIDED"}, {"code": "M02", "status": "PROVIDED"}, {"code": "M03", "status": "PROVIDED"}]}), "BAD_USER_INPUT", "materials"),
            (&admin, put, json!({"uscc": bad, "name": "某公司", "legalRepresentative": "张三"}), "BAD_USER_INPUT", "uscc"),
            (&window, ret, json!({"itemCode": bad, "applicantUscc": "91310110666007217T", "category": "APPLICANT_MATERIALS", "reason": "缺材料"}), "NOT_FOUND", ""),
            (&window, ret, json!({"itemCode": "310101-FOOD-01", "applicantUscc": bad, "category": "APPLICANT_MATERIALS", "reason": "缺材料"}), "BAD_USER_INPUT", "applicantUscc"),
        ];
        // Control characters never get past the edge: BAD_USER_INPUT naming the field they sit in.
        let control = pledgeflow::api::plain_text::problem("name", bad).is_some();
        let held_in = ["applicantUscc", "itemCode", "code", "uscc", "itemCode", "applicantUscc"];
        for ((token, query, input, code, field), held_in) in cases.into_iter().zip(held_in) {
            let r = graphql_as(&http, &base, token, json!({"query": query, "variables": {"i": input}})).await;
            // An unknown code is NOT_FOUND (no field); a malformed one BAD_USER_INPUT naming it.
            let (code, field) = if control { ("BAD_USER_INPUT", held_in) } else { (code, field) };
            let field = Some(field.to_string()).filter(|f| !f.is_empty());
            assert_eq!(errors(&r), [(code.to_string(), field)], "{bad:?} in {input}: {r}");
        }
    }
    assert_eq!(snapshot(&db).await, before, "a refused mutation changed nothing");
}

#[tokio::test]
async fn malformed_expired_forged_and_unsigned_tokens_are_unauthenticated_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099")]).await;
    let http = crate::http::client();
    let db = pledgeflow::store::connect(&url, 1).await.unwrap();
    let good = token_as(&url, "admin-01", &["--role", "regional_admin", "--region", "310101"]);
    // The installation's signing key, in its file beside the database.
    let secret = std::fs::read_to_string(dir.path().join("serve.db.key")).unwrap().trim().to_string();
    let now = chrono::Utc::now();
    let mut claims = Claims::new("ops-1", vec!["regional_admin".into()], now - chrono::Duration::hours(3), chrono::Duration::hours(1));
    claims.region = Some("310101".into());
    let expired = Keys::hs256(secret.as_bytes()).mint(&claims).unwrap();
    let forged = Keys::hs256(b"not-this-installation-key-not-it").mint(&Claims { exp: (now + chrono::Duration::hours(1)).timestamp(), ..claims.clone() }).unwrap();
    // {"alg":"none","typ":"JWT"} over the good token's own claims, with and without its signature.
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    let parts: Vec<&str> = good.split('.').collect();
    let unsigned = format!("{none_header}.{}.", parts[1]);
    let resigned = format!("{none_header}.{}.{}", parts[1], parts[2]);
    let swapped = format!("{}.{}.{}", parts[0], parts[1], "A".repeat(parts[2].len()));
    let tokens = [
        ("expired", format!("Bearer {expired}"), "expired"),
        ("wrong signature", format!("Bearer {forged}"), "signature"),
        ("alg none", format!("Bearer {unsigned}"), ""),
        ("alg none with a signature", format!("Bearer {resigned}"), ""),
        ("signature replaced", format!("Bearer {swapped}"), "signature"),
        ("garbage", "Bearer not.a.token".to_string(), "malformed"),
        ("empty", "Bearer ".to_string(), "malformed"),
        ("not bearer", format!("Basic {good}"), "malformed"),
        ("sql", "Bearer ' OR '1'='1".to_string(), "malformed"),
    ];
    let mutation = json!({"query": "mutation { putApplicant(input: {uscc: \"91310110666007217T\", name: \"改名\", legalRepresentative: \"李四\"}) { applicant { uscc } } }"});
    let before = settled(&db).await;
    for (what, header, says) in tokens {
        for body in [json!({"query": "{ outbox { totalCount } }"}), mutation.clone()] {
            let r: Value = http.post(format!("{base}/graphql")).header("authorization", &header).json(&body).send().await.unwrap().json().await.unwrap();
            assert_eq!(errors(&r), [("UNAUTHENTICATED".to_string(), None)], "{what}: {r}");
            assert!(r["errors"][0]["message"].as_str().unwrap().contains(says), "{what}: the message says why: {r}");
        }
    }
    assert_eq!(snapshot(&db).await, before, "a refused token changed nothing");
    // The same mutation with the good token does change something: the check can fail.
    let r = graphql_as(&http, &base, &good, mutation).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_ne!(snapshot(&db).await, before);
}

#[tokio::test]
async fn oversized_deep_and_expensive_mutations_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099")]).await;
    let http = crate::http::client();
    let db = pledgeflow::store::connect(&url, 1).await.unwrap();
    let admin = token_as(&url, "admin-01", &["--role", "regional_admin", "--region", "310101"]);
    let put = |alias: usize, name: &str| {
        format!("a{alias}: putApplicant(input: {{uscc: \"91310110666007217T\", name: \"{name}\", legalRepresentative: \"李四\"}}) {{ applicant {{ uscc }} }}")
    };
    let before = settled(&db).await;

    // Over 256 KiB: 413 before parsing, even for a mutation that would succeed.
    let padded = format!("mutation {{ {} }} # {}", put(0, "大"), "x".repeat(300 * 1024));
    // (Its own client: the server closes a connection whose body it refused to read, and a
    // pooled client would write the next request into it.)
    let r = crate::http::client().post(format!("{base}/graphql")).bearer_auth(&admin).json(&json!({"query": padded})).send().await.unwrap();
    assert_eq!(r.status(), 413);

    // Costlier than 2,000: refused as a whole, none of its mutations run (the first ones too).
    let many = (0..700).map(|i| put(i, "贵")).collect::<Vec<_>>().join(" ");
    let r = graphql_as(&http, &base, &admin, json!({"query": format!("mutation {{ {many} }}")})).await;
    assert!(r.get("data").is_none() && r["errors"][0]["message"].as_str().unwrap().contains("complex"), "{r}");
    // Every error a client sees carries a code; a request that never ran is BAD_REQUEST.
    assert_eq!(errors(&r), [("BAD_REQUEST".to_string(), None)]);

    // Deeper than 15: refused at validation.
    let mut deep = "uscc".to_string();
    for _ in 0..16 {
        deep = format!("applicant {{ {deep} }}");
    }
    let r = graphql_as(&http, &base, &admin, json!({"query": format!("mutation {{ putApplicant(input: {{uscc: \"91310110666007217T\", name: \"深\", legalRepresentative: \"李四\"}}) {{ {deep} }} }}")})).await;
    assert!(r.get("data").is_none() && errors(&r).iter().all(|(c, _)| c == "BAD_REQUEST"), "{r}");
    // Invalid against the schema: BAD_REQUEST too.
    let r = graphql_as(&http, &base, &admin, json!({"query": "mutation { putApplicant(input: {uscc: 1}) { nope } }"})).await;
    assert!(r.get("data").is_none() && !errors(&r).is_empty() && errors(&r).iter().all(|(c, _)| c == "BAD_REQUEST"), "{r}");

    assert_eq!(snapshot(&db).await, before, "nothing ran");
    // One of those mutations alone runs: the refusals above were the limits'.
    let r = graphql_as(&http, &base, &admin, json!({"query": format!("mutation {{ {} }}", put(0, "小"))})).await;
    assert!(r.get("errors").is_none(), "{r}");
}

/// Found by the API fuzzer: an argument async-graphql cannot coerce (an Int past 32 bits, a
/// DateTime or NaiveDate that does not parse) came back with no code and no field.
#[tokio::test]
async fn arguments_that_do_not_coerce_are_bad_user_input_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099")]).await;
    let http = crate::http::client();
    let db = pledgeflow::store::connect(&url, 1).await.unwrap();
    let admin = token_as(&url, "admin-01", &["--role", "regional_admin", "--region", "310101"]);
    let sup = token_as(&url, "supervisor-01", &["--role", "supervisor", "--region", "310101"]);
    let inspector = token_as(&url, "inspector-sp-1", &["--role", "inspector", "--department", "310101-SCJG", "--division", "310101-SCJG-SP"]);
    let cases = [
        (&admin, json!({"query": "{ workflowInstances(first: 99999999999) { totalCount } }"}), "first"),
        (&admin, json!({"query": "query($n: Int) { workflowInstances(first: $n) { totalCount } }", "variables": {"n": 99999999999i64}}), "first"),
        (&sup, json!({"query": "{ statistics(filter: {from: \"2026-01-01T00:00:00Z\", to: \"' OR 1=1 --\"}) { fulfilment { rate } } }"}), "to"),
        (&sup, json!({"query": "query($f: StatisticsFilter!) { statistics(filter: $f) { fulfilment { rate } } }", "variables": {"f": {"from": "yesterday", "to": "2026-01-01T00:00:00Z"}}}), "from"),
        (&sup, json!({"query": "{ dueSoon(workingDays: 4294967296) { instanceId } }"}), "workingDays"),
        // A number where a DateTime belongs: async-graphql's other wording ("Expected input type").
        (&sup, json!({"query": "query($d: String, $f: DateTime) { slaBreaches(filter: {division: $d, from: $f}) { id } }", "variables": {"d": "310101-SCJG-SP", "f": -1}}), "from"),
        (&inspector, json!({"query": "mutation { recordInspection(input: {taskId: \"x\", inspectedOn: \"2026-02-30\", findings: [], evidence: []}) { task { id } } }"}), "inspectedOn"),
        (&admin, json!({"query": "mutation { importElectronicLicences(input: {licences: [{holderUscc: \"91310110666007217T\", kind: \"k\", number: \"n\", validUntil: \"'; DROP TABLE x; --\", revoked: false}]}) { imported } }"}), "validUntil"),
        (&admin, json!({"query": "mutation { advanceClock(input: {to: \"<script>\"}) { now } }"}), "to"),
    ];
    let before = settled(&db).await;
    for (token, body, field) in cases {
        let r = graphql_as(&http, &base, token, body.clone()).await;
        assert_eq!(errors(&r), [("BAD_USER_INPUT".to_string(), Some(field.to_string()))], "{body}: {r}");
    }
    assert_eq!(snapshot(&db).await, before);
}
