//! Text entering through the API is plain text: no control characters anywhere, and no line
//! breaks in names, addresses, codes and every other single-line field — the texts that end up
//! in mail headers (a newline in a display name once stopped all outgoing mail). Checked once,
//! on the parsed request of every transport, before anything runs (`checks.rs`):
//! BAD_USER_INPUT naming the field, nothing changed.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, ServerError, Value, Variables};

/// Fields whose text may run over several lines (opinions, reasons, templates, notes).
const MULTI_LINE: [&str; 14] = [
    "reason",
    "statement",
    "findings",
    "repairReason",
    "note",
    "opinion",
    "rectificationOrder",
    "commitmentTemplate",
    "description",
    "conditions",
    "legalBasis",
    "breachConsequences",
    "retraining",
    "value",
];

/// What is wrong with `text` as the value of `field`, if anything.
pub fn problem(field: &str, text: &str) -> Option<&'static str> {
    let multi = MULTI_LINE.contains(&field);
    text.chars().find_map(|c| match c {
        '\n' | '\r' | '\t' if multi => None,
        '\n' | '\r' => Some("must be a single line"),
        c if c.is_control() => Some("must not contain control characters"),
        // Bidirectional overrides and similar format characters make a name read differently
        // from what it is.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => Some("must not contain text-direction controls"),
        _ => None,
    })
}

/// The first string argument of `doc` that is not plain text, as the refusal to answer with.
pub fn refusal(doc: &ExecutableDocument, variables: &Variables) -> Option<ServerError> {
    let mut found = None;
    for (_, op) in doc.operations.iter() {
        walk_set(&op.node.selection_set.node, variables, &mut found);
    }
    for fragment in doc.fragments.values() {
        walk_set(&fragment.node.selection_set.node, variables, &mut found);
    }
    found.map(|(field, why)| {
        let mut error = super::access::request_error("BAD_USER_INPUT", format!("{field} {why}"));
        error.extensions.get_or_insert_with(Default::default).set("field", field);
        error
    })
}

fn walk_set(set: &SelectionSet, variables: &Variables, found: &mut Option<(String, &'static str)>) {
    for item in &set.items {
        if found.is_some() {
            return;
        }
        match &item.node {
            Selection::Field(f) => {
                for (name, value) in &f.node.arguments {
                    let value = value.node.clone().into_const_with(|v: Name| Ok::<_, std::convert::Infallible>(variables.get(&v).cloned().unwrap_or_default())).unwrap_or_default();
                    walk_value(name.node.as_str(), &value, found);
                }
                walk_set(&f.node.selection_set.node, variables, found);
            }
            Selection::InlineFragment(f) => walk_set(&f.node.selection_set.node, variables, found),
            Selection::FragmentSpread(_) => {}
        }
    }
}

fn walk_value(field: &str, value: &Value, found: &mut Option<(String, &'static str)>) {
    if found.is_some() {
        return;
    }
    match value {
        Value::String(s) => {
            if let Some(why) = problem(field, s) {
                *found = Some((field.to_string(), why));
            }
        }
        Value::List(items) => items.iter().for_each(|v| walk_value(field, v, found)),
        Value::Object(fields) => fields.iter().for_each(|(name, v)| walk_value(name.as_str(), v, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn names_are_single_lines_and_no_text_carries_control_characters() {
        assert_eq!(problem("name", "Acme\nCo"), Some("must be a single line"));
        assert_eq!(problem("email", "a@b.example\r\nBcc: x@y"), Some("must be a single line"));
        assert_eq!(problem("reason", "第一条\n第二条"), None);
        assert_eq!(problem("reason", "a\u{0}b"), Some("must not contain control characters"));
        assert_eq!(problem("name", "\u{202e}gnp.exe"), Some("must not contain text-direction controls"));
        assert_eq!(problem("name", "上海某某餐饮管理有限公司"), None);
    }
}
