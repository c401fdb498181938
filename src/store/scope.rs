//! Where an instance belongs — its region, department, division and applicant — which every
//! listing filters by and every breach and figure is counted under.

use serde_json::Value;

/// Who may see an instance: staff of its region, department or division, and its applicant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub region: Option<String>,
    pub department: Option<String>,
    pub division: Option<String>,
    pub applicant_uscc: Option<String>,
}

impl Scope {
    /// From the context's `scope` (`region`, `department`, `division`) and `applicant.uscc`.
    /// A spawned instance without its own belongs to the supervising department and division
    /// its parent names (`supervision`), else takes its parent's scope.
    pub fn from_context(ctx: &Value) -> Self {
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        let parent = &ctx["parent"]["context"];
        let pick = |key: &str| {
            text(&ctx["scope"][key])
                .or_else(|| if key == "region" { None } else { text(&parent["supervision"][key]) })
                .or_else(|| text(&parent["scope"][key]))
        };
        Self {
            region: pick("region"),
            department: pick("department"),
            division: pick("division"),
            applicant_uscc: text(&ctx["applicant"]["uscc"]).or_else(|| text(&ctx["parent"]["context"]["applicant"]["uscc"])),
        }
    }
}

/// Limits of a case's own procedure, kept against the approving department alone.
pub fn is_case_limit(limit: &str) -> bool {
    matches!(limit, "legal_limit" | "revocation_decision")
}
