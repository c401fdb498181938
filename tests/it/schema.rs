//! `graphql/schema.graphql` is the contract: it must match the code.

use crate::helpers::repo;

#[test]
fn the_committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(repo().join("graphql/schema.graphql")).unwrap_or_default();
    let current = pledgeflow::api::sdl();
    assert!(
        committed == current,
        "graphql/schema.graphql is out of date: run `cargo run -- export-schema` and commit it"
    );
}

/// Every file under `graphql/operations/`, with its example variables.
fn operations() -> Vec<(std::path::PathBuf, String, serde_json::Value)> {
    let mut out = Vec::new();
    let mut dirs = vec![repo().join("graphql/operations")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "graphql") {
                let text = std::fs::read_to_string(&path).unwrap();
                let vars = text
                    .lines()
                    .find_map(|l| l.strip_prefix("# variables:"))
                    .map(|v| serde_json::from_str(v.trim()).unwrap_or_else(|e| panic!("{}: variables: {e}", path.display())))
                    .unwrap_or_else(|| serde_json::json!({}));
                out.push((path, text, vars));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test]
async fn every_example_operation_is_valid_against_the_schema() {
    let schema = pledgeflow::api::schema(None);
    let ops = operations();
    assert!(ops.len() >= 10, "example operations for each role: {}", ops.len());
    for (path, text, vars) in ops {
        let is_subscription = text.lines().any(|l| l.trim_start().starts_with("subscription"));
        let request = async_graphql::Request::new(text).variables(async_graphql::Variables::from_json(vars));
        let response = if is_subscription {
            use futures::StreamExt;
            schema.execute_stream(request).next().await.expect("a subscription answers at least once")
        } else {
            schema.execute(request).await
        };
        // Without a caller every field is refused (errors with a path): that is execution.
        // Validation errors (unknown field, wrong argument, missing variable) have no path.
        let invalid: Vec<String> = response.errors.iter().filter(|e| e.path.is_empty()).map(|e| e.message.clone()).collect();
        assert!(invalid.is_empty(), "{}: {invalid:?}", path.display());
        assert!(!response.errors.is_empty(), "{}: ran without a caller?", path.display());
    }
}
