//! The machine-readable reasons (`extensions.reason`) that tell apart refusals sharing one
//! code. A leaf: the API's policy and the window's checks both give them (README lists them).

/// FORBIDDEN: none of the caller's roles may do this act.
pub const ROLE: &str = "ROLE_NOT_ALLOWED";
/// NOT_FOUND: the target is outside the caller's region, department, division or owner.
pub const OUT_OF_SCOPE: &str = "OUT_OF_SCOPE";
/// UNAUTHENTICATED: a staff token whose subject the staff registry does not know.
pub const STAFF_NOT_REGISTERED: &str = "STAFF_NOT_REGISTERED";
/// UNAUTHENTICATED: the token claims a region, department, division or role the registry
/// does not give its subject (or mixes applicant and staff roles).
pub const CLAIMS_DISAGREE: &str = "CLAIMS_DISAGREE_WITH_REGISTRY";
/// UNAUTHENTICATED: the staff member is registered but not active.
pub const STAFF_INACTIVE: &str = "STAFF_INACTIVE";
/// UNAUTHENTICATED: an applicant token without its `uscc`.
pub const APPLICANT_WITHOUT_USCC: &str = "APPLICANT_WITHOUT_USCC";
/// UNAVAILABLE: the registry could not be read.
pub const REGISTRY_UNAVAILABLE: &str = "REGISTRY_UNAVAILABLE";
/// FORBIDDEN: deregistration by a department that is not its region's registration authority.
pub const NOT_REGISTRATION_AUTHORITY: &str = "NOT_REGISTRATION_AUTHORITY";
/// FORBIDDEN: an approval item handled by another department of the caller's region.
pub const OTHER_DEPARTMENT: &str = "OTHER_DEPARTMENT";
/// BAD_USER_INPUT (field `mode`): the applicant's credit does not allow commitment approval (or licensing on a commitment).
pub const CREDIT_BARRED: &str = "CREDIT_BARRED";
/// BAD_USER_INPUT (field `mode`): the approval item does not allow this mode.
pub const MODE_NOT_ALLOWED: &str = "MODE_NOT_ALLOWED";
/// FORBIDDEN: the window officer is suspended from intake under the return rule.
pub const OFFICER_SUSPENDED: &str = "OFFICER_SUSPENDED";
/// FORBIDDEN: the inspector is not assigned to the supervision task.
pub const NOT_ASSIGNED: &str = "NOT_ASSIGNED";
/// BAD_USER_INPUT (field `recordId`): the record's category's minimum publication period has not passed.
pub const REPAIR_TOO_EARLY: &str = "REPAIR_TOO_EARLY";
