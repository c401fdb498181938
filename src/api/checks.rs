//! Checks of a whole request, made once on its parsed document before anything runs, for every
//! transport (HTTP and websocket): its text is plain (`plain_text`), its cost within bounds
//! (`cost`). The first that refuses answers the request.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerResult, Variables};

pub struct RequestChecks;

impl ExtensionFactory for RequestChecks {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestChecks)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequestChecks {
    async fn parse_query(&self, ctx: &ExtensionContext<'_>, query: &str, variables: &Variables, next: NextParseQuery<'_>) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        match super::plain_text::refusal(&doc, variables).or_else(|| super::cost::refusal(&doc, &ctx.schema_env.registry, variables)) {
            Some(refused) => Err(refused),
            None => Ok(doc),
        }
    }
}
