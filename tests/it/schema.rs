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
