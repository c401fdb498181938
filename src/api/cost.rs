//! What a query may cost follows the data it asks for: each field costs one, and a list's
//! subtree counts as many times as the list can hold — its `first` (or the page size when it
//! has none), or [`NESTED_LIST`] for the lists inside an object (history, timers, children,
//! materials), which are bounded by what one case holds. Aliases are fields like any other, so
//! eighty-five aliases of a page of two hundred instances with their histories cost what they
//! would return. Checked once on the parsed request, before anything runs (`checks.rs`):
//! QUERY_TOO_COSTLY with the cost and the limit. Introspection (`__…`) is static and free.

use async_graphql::parser::types::{ExecutableDocument, FragmentDefinition, OperationType, Selection, SelectionSet};
use async_graphql::registry::{MetaTypeName, Registry};
use async_graphql::{Name, Positioned, ServerError, Value, Variables};

/// The most a request may cost.
pub const MAX_COST: u64 = 50_000;
/// What a list inside an object (a case's history, timers, children) is counted as holding.
pub const NESTED_LIST: u64 = 20;

/// The refusal to answer `doc` with, when it would cost more than [`MAX_COST`].
pub fn refusal(doc: &ExecutableDocument, registry: &Registry, variables: &Variables) -> Option<ServerError> {
    let walk = Walk { registry, fragments: &doc.fragments, variables };
    let mut worst = 0u64;
    for (_, op) in doc.operations.iter() {
        let root = match op.node.ty {
            OperationType::Query => Some(registry.query_type.as_str()),
            OperationType::Mutation => registry.mutation_type.as_deref(),
            OperationType::Subscription => registry.subscription_type.as_deref(),
        };
        if let Some(root) = root {
            worst = worst.max(walk.set(&op.node.selection_set.node, root, 0));
        }
    }
    (worst > MAX_COST).then(|| {
        let mut error = super::access::request_error("QUERY_TOO_COSTLY", format!("the query would cost {worst}, more than the {MAX_COST} allowed: ask for smaller pages or fewer fields"));
        let ext = error.extensions.get_or_insert_with(Default::default);
        ext.set("cost", worst);
        ext.set("limit", MAX_COST);
        error
    })
}

struct Walk<'a> {
    registry: &'a Registry,
    fragments: &'a std::collections::HashMap<Name, Positioned<FragmentDefinition>>,
    variables: &'a Variables,
}

impl Walk<'_> {
    /// The cost of `set` selected on an object of type `ty`; `depth` guards fragment cycles
    /// (refused by validation anyway).
    fn set(&self, set: &SelectionSet, ty: &str, depth: usize) -> u64 {
        if depth > 64 {
            return 0;
        }
        let mut total = 0u64;
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    if name.starts_with("__") {
                        continue;
                    }
                    let Some(field) = self.registry.concrete_type_by_name(ty).and_then(|t| t.field_by_name(name)) else { continue };
                    let inner = MetaTypeName::concrete_typename(&field.ty);
                    let list = is_list(&field.ty);
                    let first = f.node.get_argument("first").and_then(|v| {
                        let v = v.node.clone().into_const_with(|n| Ok::<_, std::convert::Infallible>(self.variables.get(&n).cloned().unwrap_or_default())).ok()?;
                        match v {
                            Value::Number(n) => n.as_u64(),
                            _ => None,
                        }
                    });
                    let paged = field.args.contains_key("first");
                    let times = match (first, paged, list || inner.ends_with("Connection")) {
                        // A page past the largest is refused by its field (BAD_USER_INPUT naming
                        // `first`): it is counted at the largest, not here.
                        (Some(n), _, _) => n.clamp(1, super::access::Page::MAX),
                        (None, true, _) => super::access::Page::DEFAULT,
                        // A connection's `edges` is its page, counted at the connection.
                        (None, false, true) if ty.ends_with("Connection") => 1,
                        (None, false, true) => NESTED_LIST,
                        (None, false, false) => 1,
                    };
                    let below = if f.node.selection_set.node.items.is_empty() { 0 } else { self.set(&f.node.selection_set.node, inner, depth + 1) };
                    1u64.saturating_add(times.saturating_mul(below))
                }
                Selection::InlineFragment(f) => {
                    let on = f.node.type_condition.as_ref().map_or(ty, |c| c.node.on.node.as_str());
                    self.set(&f.node.selection_set.node, on, depth + 1)
                }
                Selection::FragmentSpread(s) => match self.fragments.get(&s.node.fragment_name.node) {
                    Some(fragment) => self.set(&fragment.node.selection_set.node, fragment.node.type_condition.node.on.node.as_str(), depth + 1),
                    None => 0,
                },
            };
            total = total.saturating_add(cost);
        }
        total
    }
}

fn is_list(ty: &str) -> bool {
    match MetaTypeName::create(ty) {
        MetaTypeName::List(_) => true,
        MetaTypeName::NonNull(inner) => is_list(inner),
        MetaTypeName::Named(_) => false,
    }
}
