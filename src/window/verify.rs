//! Verifying a material against the electronic licence library (电子证照库): holder, kind,
//! number and validity. An interface, so that a province's library service can stand in for
//! the embedded table.

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbErr};
use serde::{Deserialize, Serialize};

use super::registry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Verified,
    /// Found, but held by someone else.
    Mismatch,
    NotFound,
    /// Past its validity, or revoked.
    Expired,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Mismatch => "mismatch",
            Verdict::NotFound => "not_found",
            Verdict::Expired => "expired",
        }
    }
}

pub trait Verifier {
    fn verify(
        &self,
        holder_uscc: &str,
        kind: &str,
        number: &str,
        today: NaiveDate,
    ) -> impl std::future::Future<Output = Result<Verdict, DbErr>> + Send;
}

/// The embedded library: the `electronic_licences` table (importable through the API).
pub struct Library<'a, C: ConnectionTrait>(pub &'a C);

impl<C: ConnectionTrait> Verifier for Library<'_, C> {
    async fn verify(&self, holder_uscc: &str, kind: &str, number: &str, today: NaiveDate) -> Result<Verdict, DbErr> {
        let Some(licence) = registry::electronic_licence(self.0, kind, number).await? else {
            return Ok(Verdict::NotFound);
        };
        if licence.holder_uscc != holder_uscc {
            return Ok(Verdict::Mismatch);
        }
        let valid = NaiveDate::parse_from_str(&licence.valid_until, "%Y-%m-%d").is_ok_and(|until| today <= until);
        Ok(if licence.revoked != 0 || !valid { Verdict::Expired } else { Verdict::Verified })
    }
}
