//! What a query may cost follows the data it asks for (issue #17, item 4), over the real binary:
//! the eighty-five aliases of a page of two hundred instances with their histories are
//! refused at once with QUERY_TOO_COSTLY, while a page of two hundred, the operations a console
//! sends, and GraphiQL's introspection query pass.

use serde_json::json;

use crate::hostile::quiet_demo;
use crate::http::{graphql_as, token_as};

#[tokio::test]
async fn costs_multiply_by_page_sizes_and_aliases_and_the_costly_query_is_refused_before_it_runs() {
    let demo = quiet_demo().await;
    let (base, url, http) = (&demo.base, &demo.url, &demo.http);
    let window = token_as(url, "window-01", &["--role", "window", "--department", "310101-SCJG", "--region", "310101"]);
    let page = "workflowInstances(first: 200) { totalCount edges { cursor node { id state version context history { seq event fromState toState actor hash } } } }";
    let aliases: Vec<String> = (0..85).map(|i| format!("a{i}: {page}")).collect();
    let costly = format!("{{ {} }}", aliases.join(" "));
    assert!(costly.len() > 10_000, "the issue's query is tens of KB");
    let started = std::time::Instant::now();
    let r = graphql_as(http, base, &window, json!({"query": costly})).await;
    let ext = &r["errors"][0]["extensions"];
    assert_eq!(ext["code"], "QUERY_TOO_COSTLY", "{r}");
    assert!(ext["cost"].as_u64().unwrap() > ext["limit"].as_u64().unwrap(), "{r}");
    assert!(r.get("data").is_none_or(|d| d.is_null()), "nothing ran: {r}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "refused before running: {:?}", started.elapsed());

    // One such page is fine; so is a variable page size within the limit, and introspection.
    let r = graphql_as(http, base, &window, json!({"query": format!("{{ {page} }}")})).await;
    assert!(r["errors"].is_null(), "{r}");
    let r = graphql_as(http, base, &window, json!({"query": "query($n: Int) { workflowInstances(first: $n) { edges { node { id history { seq } timers { name } } } } }", "variables": {"n": 50}})).await;
    assert!(r["errors"].is_null(), "{r}");
    let nested = "{ __schema { types { name fields(includeDeprecated: true) { name args { name type { name kind ofType { name kind ofType { name kind } } } } type { name kind ofType { name kind } } } inputFields { name } enumValues { name } } } }";
    let r = graphql_as(http, base, &window, json!({"query": nested})).await;
    assert!(r["errors"].is_null(), "introspection is free: {}", &r.to_string()[..200.min(r.to_string().len())]);
    // Aliases are counted: the same costly page under two names costs twice as much.
    let twice = format!("{{ a: workflowInstances(first: 200) {{ edges {{ node {{ history {{ seq event fromState toState actor hash }} timers {{ name dueAt }} }} }} }} b: workflowInstances(first: 200) {{ edges {{ node {{ history {{ seq event fromState toState actor hash }} timers {{ name dueAt }} }} }} }} }}");
    let r = graphql_as(http, base, &window, json!({"query": twice})).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "QUERY_TOO_COSTLY", "{r}");
}
