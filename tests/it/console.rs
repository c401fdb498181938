//! The console as served by the real binary: every page and asset from the binary itself and none
//! naming an outside host, the headers that keep a page to its origin, GraphiQL from local
//! files, and the demo sign-in present only on a demo or training server. (The pages themselves
//! are driven in Chromium by `tests/console/`.)

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::http::{serve_on, start};

/// Hosts an asset may name without loading from them: XML namespaces (SVG, XHTML), and the
/// documentation links in the vendored libraries' comments and error messages. A new host here
/// is a change to review.
const NAMED_NOT_LOADED: [&str; 8] = ["www.w3.org", "github.com", "www.chartjs.org", "reactjs.org", "radix-ui.com", "en.wikipedia.org", "commonmark.org", "codemirror.net"];

/// Every absolute `//host` an asset mentions.
fn hosts(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("//") {
        let after = &rest[at + 2..];
        let host: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-').collect();
        let scheme_before = rest[..at].ends_with("http:") || rest[..at].ends_with("https:") || rest[..at].ends_with("ws:") || rest[..at].ends_with("wss:");
        if host.contains('.') && host.rsplit('.').next().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())) && (scheme_before || rest[..at].ends_with(['"', '\'', '(', '`', '='])) {
            found.insert(host);
        }
        rest = after;
    }
    found
}

#[test]
fn no_page_or_asset_names_an_outside_host_to_load() {
    let paths = pledgeflow::console::asset_paths();
    for must in ["index.html", "core.js", "app.js", "login.js", "graphiql.html", "graphiql.js", "vendor/chartjs/chart.umd.min.js", "vendor/graphiql/graphiql.min.js"] {
        assert!(paths.iter().any(|p| p == must), "{must} is embedded: {paths:?}");
    }
    for path in &paths {
        let bytes = pledgeflow::console::asset(path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let own = !path.starts_with("vendor/");
        for host in hosts(&text) {
            let allowed = if own { host == "www.w3.org" } else { NAMED_NOT_LOADED.contains(&host.as_str()) };
            assert!(allowed, "{path} names the outside host {host}");
        }
        // What a browser would fetch by itself: markup and style references, imports, maps.
        let lower = text.to_lowercase();
        for pattern in ["src=\"http", "src='http", "href=\"http", "href='http", "url(http", "url(\"http", "url('http", "url(//", "@import", "sourcemappingurl=http", "from 'http", "from \"http", "import(\"http", "import('http", "importscripts("] {
            assert!(!lower.contains(pattern), "{path} loads from outside: {pattern}");
        }
    }
    // The checker itself finds what it must.
    assert_eq!(hosts("<script src=\"https://cdn.example.com/x.js\">"), BTreeSet::from(["cdn.example.com".to_string()]));
    assert_eq!(hosts("url(//fonts.example.org/a.woff)"), BTreeSet::from(["fonts.example.org".to_string()]));
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_its_guard_headers_and_demo_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, _url) = start(dir.path(), &[]).await;
    let http = crate::http::client();

    let root = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(root.status(), 200);
    let csp = root.headers()["content-security-policy"].to_str().unwrap().to_string();
    for directive in ["default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(root.headers()["x-content-type-options"], "nosniff");
    let etag = root.headers()["etag"].clone();
    assert!(root.text().await.unwrap().contains("/console/app.js"));
    let again = http.get(format!("{base}/")).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(again.status(), 304, "an unchanged page is revalidated, not sent again");

    let js = http.get(format!("{base}/console/core.js")).send().await.unwrap();
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(http.get(format!("{base}/console/no-such.js")).send().await.unwrap().status(), 404);
    assert_eq!(http.get(format!("{base}/console/../Cargo.toml")).send().await.unwrap().status(), 404);

    // GraphiQL from local files, at /graphiql and for a browser asking /graphql for a page.
    for path in ["/graphiql", "/graphql"] {
        let page = http.get(format!("{base}{path}")).header("accept", "text/html").send().await.unwrap();
        assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
        let text = page.text().await.unwrap();
        assert!(text.contains("/console/vendor/graphiql/graphiql.min.js") && !text.contains("https://"), "{path}: {text}");
    }

    let config: Value = http.get(format!("{base}/console/config.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config, json!({"demoLogin": true, "oidc": null}));
    let ids: Value = http.get(format!("{base}/console/demo/identities")).send().await.unwrap().json().await.unwrap();
    assert!(ids["staff"].as_array().unwrap().iter().any(|s| s["id"] == "window-01"), "{ids}");
    let token: Value = http.post(format!("{base}/console/demo/token")).json(&json!({"staff": "window-01"})).send().await.unwrap().json().await.unwrap();
    let me: Value = http
        .post(format!("{base}/graphql"))
        .bearer_auth(token["token"].as_str().unwrap())
        .json(&json!({"query": "{ viewer { subject roles department } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["data"]["viewer"], json!({"subject": "window-01", "roles": ["window"], "department": "310101-SCJG"}));
    let nobody = http.post(format!("{base}/console/demo/token")).json(&json!({"staff": "nobody"})).send().await.unwrap();
    assert_eq!(nobody.status(), 404);
    let both = http.post(format!("{base}/console/demo/token")).json(&json!({"staff": "window-01", "applicant": "x"})).send().await.unwrap();
    assert_eq!(both.status(), 400);
}

#[tokio::test]
async fn without_demo_or_the_training_switch_there_is_no_demo_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/plain.db", dir.path().display());
    let http = crate::http::client();
    {
        let (_server, base, _) = serve_on(dir.path(), &url, false, &[]).await;
        let config: Value = http.get(format!("{base}/console/config.json")).send().await.unwrap().json().await.unwrap();
        assert_eq!(config["demoLogin"], false);
        assert_eq!(http.get(format!("{base}/console/demo/identities")).send().await.unwrap().status(), 404);
        assert_eq!(http.post(format!("{base}/console/demo/token")).json(&json!({"staff": "window-01"})).send().await.unwrap().status(), 404);
        assert_eq!(http.get(format!("{base}/")).send().await.unwrap().status(), 200, "the console itself is there");
    }
    // A training server turns it on explicitly.
    let (_server, base, _) = serve_on(dir.path(), &url, false, &[("PLEDGEFLOW_DEMO_LOGIN", "true")]).await;
    let config: Value = http.get(format!("{base}/console/config.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["demoLogin"], true);
    assert_eq!(http.get(format!("{base}/console/demo/identities")).send().await.unwrap().status(), 200);
}
