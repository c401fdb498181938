//! The real binary over HTTP: probes, GraphiQL, and the GraphQL endpoint on demo data.

use std::{process::Command, time::Duration};

use pledgeflow::store::{self, entities};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{bin, repo};

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn graphql(http: &reqwest::Client, base: &str, body: Value) -> Value {
    http.post(format!("{base}/graphql")).json(&body).send().await.unwrap().json().await.unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn serve_with_demo_data_answers_probes_and_graphql() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/serve.db", dir.path().display());
    let port = free_port();
    let _server = Server(
        Command::new(bin())
            .args(["serve", "--demo"])
            .env("PLEDGEFLOW_DATABASE_URL", &url)
            .env("PLEDGEFLOW_LISTEN", format!("127.0.0.1:{port}"))
            .env("PLEDGEFLOW_WORKFLOWS_DIR", repo().join("workflows"))
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = None;
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            ready = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = ready.expect("server did not come up");
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body, json!({"ready": true, "database": true, "definitions": 4}));
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    let page = http.get(format!("{base}/graphql")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("graphiql"), "GraphiQL is served");

    // The demo's licensed deferral case, found in the database the server wrote.
    let db = store::connect(&url, 1).await.unwrap();
    let case = entities::instance::Entity::find()
        .filter(entities::instance::Column::DefinitionName.eq("material-deferral"))
        .filter(entities::instance::Column::State.eq("licensed"))
        .one(&db)
        .await
        .unwrap()
        .expect("demo seeds a licensed deferral case");
    let query = "query($id: ID!) { workflowInstance(id: $id) { state version definitionVersion \
                 history { seq event fromState toState hash prevHash } timers { name status } } \
                 workflowDefinitions { name } }";
    let r = graphql(&http, &base, json!({"query": query, "variables": {"id": case.id}})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let inst = &r["data"]["workflowInstance"];
    assert_eq!(inst["state"], "licensed");
    assert_eq!(inst["version"], 3);
    let events: Vec<&str> = inst["history"].as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["start", "materials_complete", "approve"]);
    assert_eq!(inst["history"][1]["prevHash"], inst["history"][0]["hash"]);
    assert_eq!(r["data"]["workflowDefinitions"].as_array().unwrap().len(), 4);

    let missing = graphql(&http, &base, json!({"query": "{ workflowInstance(id: \"nope\") { state } }"})).await;
    assert_eq!(missing["data"]["workflowInstance"], Value::Null);
}
