//! `viewer`: who the caller is once the staff registry has resolved the token — what a client
//! (the console) shows and chooses its start page by. An identity provider's ID token carries no
//! roles of ours, so the client cannot read them from the token itself.

use async_graphql::{Context, Object, SimpleObject};

use super::access;

#[derive(SimpleObject)]
pub struct Viewer {
    /// The token's subject: a staff member's registry id, or the applicant's login.
    pub subject: String,
    pub name: Option<String>,
    /// The registry's roles (an applicant: `applicant`).
    pub roles: Vec<String>,
    pub region: Option<String>,
    pub department: Option<String>,
    pub division: Option<String>,
    /// An applicant's unified social credit code.
    pub uscc: Option<String>,
}

#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// The signed-in caller as the staff registry resolved them (UNAUTHENTICATED without a token).
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        let c = access::claims(ctx)?;
        Ok(Viewer {
            subject: c.sub.clone(),
            name: c.name.clone(),
            roles: c.roles.clone(),
            region: c.region.clone(),
            department: c.department.clone(),
            division: c.division.clone(),
            uscc: c.uscc.clone(),
        })
    }
}
