//! 一照通行 over GraphQL: the bundle's form (the union of its items' fields), taking a bundled
//! application at a window, the bundle and its children (which holds it up), registering an
//! enterprise being established, and deregistering a business licence with everything under it.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::access::{self, ErrorCode, APPROVER, WINDOW};
use super::types::WorkflowInstance;
use super::window::window_error;
use crate::runtime::Engine;
use crate::store::InstanceRecord;
use crate::window::bundle::{self, FormField, OpenBundleInput, BUNDLE};


#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum BundleChildStatus {
    /// Waiting for its prerequisites (the business licence and the enterprise's code).
    Waiting,
    Started,
    /// Never started: a prerequisite ended without a licence, or its intake was refused.
    NotStarted,
}

/// One child of a bundle and where it stands.
#[derive(SimpleObject, Debug, Clone)]
pub struct BundleChild {
    pub position: i64,
    /// The definition's kind (`business_licence`, `operating_licence`).
    pub kind: String,
    /// The approval item; null for the business licence.
    pub item_code: Option<String>,
    pub item_name: Option<String>,
    /// The department it is routed to.
    pub department: Option<String>,
    /// The commitment mode (`deferral`, `verification`, `after_the_fact`); null for the business licence.
    pub mode: Option<String>,
    pub status: BundleChildStatus,
    /// Why it has not started.
    pub note: Option<String>,
    /// The child's case (or registration) once started.
    pub instance_id: Option<ID>,
    pub state: Option<String>,
    /// `waiting`, `not_started`, `pending`, `licensed`, `registered`, or the final state it
    /// ended in (`refused`, `returned`, `revoked`, `withdrawn`, `deregistered`).
    pub outcome: String,
    /// The licence number (for the business licence: the unified social credit code).
    pub licence_number: Option<String>,
    /// The bundle no longer waits for it.
    pub ended: bool,
}

/// A bundled application (一照通行) and its children.
pub struct Bundle {
    instance: InstanceRecord,
    children: Vec<BundleChild>,
}

#[Object]
impl Bundle {
    async fn id(&self) -> ID {
        ID(self.instance.id.clone())
    }
    /// `running` or `completed`.
    async fn state(&self) -> &str {
        &self.instance.state
    }
    async fn instance(&self) -> WorkflowInstance {
        WorkflowInstance(self.instance.clone())
    }
    /// The applicant's name (the reserved name of an enterprise being established).
    async fn applicant_name(&self) -> Option<&str> {
        self.instance.context["applicant"]["name"].as_str()
    }
    /// The applicant's unified social credit code: null until the business licence gives one.
    async fn applicant_uscc(&self) -> Option<String> {
        self.instance.context["applicant"]["uscc"]
            .as_str()
            .map(str::to_string)
            .or_else(|| self.children.iter().find(|c| c.kind == "business_licence").and_then(|c| c.licence_number.clone()))
    }
    /// The one time limit, in working days, and when it runs out.
    async fn limit_working_days(&self) -> Option<i64> {
        self.instance.context["limit_working_days"].as_i64()
    }
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.instance.deadlines.get("bundle_due").copied()
    }
    /// Every child with its outcome: the bundle's summary once it is completed.
    async fn children(&self) -> &[BundleChild] {
        &self.children
    }
    /// The children the bundle still waits for.
    async fn holding_up(&self) -> Vec<BundleChild> {
        self.children.iter().filter(|c| !c.ended && c.status != BundleChildStatus::NotStarted).cloned().collect()
    }
}

async fn load_bundle(engine: &Engine, instance: InstanceRecord) -> async_graphql::Result<Bundle> {
    let db = &engine.db;
    let rows = bundle::children(db, &instance.id).await.map_err(|e| e.internal())?;
    let mut children = Vec::new();
    for r in rows {
        let item = match &r.item_code {
            Some(code) => crate::window::catalogue::item(db, code, None).await.map_err(|e| e.internal())?,
            None => None,
        };
        let request: serde_json::Value = serde_json::from_str(&r.request).unwrap_or_default();
        let standing = match &r.instance_id {
            Some(id) => Some(bundle::standing(db, &engine.workflows, id).await.map_err(|e| e.internal())?),
            None => None,
        };
        let (status, outcome) = match (r.status.as_str(), &standing) {
            ("not_started", _) => (BundleChildStatus::NotStarted, "not_started".to_string()),
            (_, None) => (BundleChildStatus::Waiting, "waiting".to_string()),
            (_, Some(s)) => {
                let started = r.instance_id.as_deref().unwrap_or_default();
                let child = crate::store::instances::load(db, started).await.map_err(|e| e.internal())?;
                let is_final = engine.workflows.set.get(&child.definition_name, child.definition_version).is_some_and(|d| d.is_final(&s.state));
                let outcome = match (is_final, s.approved) {
                    (true, _) if s.state != "closed" => s.state.clone(),
                    // Kept, but its licence lapsed with the business licence (recorded by the
                    // deregistration's event, whose payload the case's context took).
                    (true, _) if child.context["cause"] == "deregistered" => "deregistered".to_string(),
                    (_, true) if r.item_code.is_none() => "registered".to_string(),
                    (_, true) => "licensed".to_string(),
                    _ => "pending".to_string(),
                };
                (BundleChildStatus::Started, outcome)
            }
        };
        let department = item.as_ref().map(|i| i.department.clone()).or_else(|| request["establishment"]["department"].as_str().map(str::to_string));
        let registration = r.item_code.is_none();
        children.push(BundleChild {
            position: r.position,
            kind: r.kind,
            item_code: r.item_code,
            item_name: item.map(|i| i.name).or_else(|| registration.then(|| "营业执照（设立登记）".to_string())),
            department,
            mode: request["mode"].as_str().map(str::to_string),
            status,
            note: r.note,
            instance_id: r.instance_id.map(ID),
            state: standing.as_ref().map(|s| s.state.clone()),
            ended: standing.as_ref().is_some_and(|s| s.ended),
            licence_number: standing.and_then(|s| s.licence_number),
            outcome,
        });
    }
    Ok(Bundle { instance, children })
}

#[derive(Default)]
pub struct BundleQuery;

#[Object]
impl BundleQuery {
    /// The one form of a bundle of these items: the union of their fields, each code once
    /// (with the registration's when the enterprise is being established).
    #[graphql(guard = "WINDOW")]
    async fn bundle_form(&self, ctx: &Context<'_>, item_codes: Vec<String>, #[graphql(default)] establishment: bool) -> async_graphql::Result<Vec<FormField>> {
        let engine = ctx.data::<Engine>()?;
        let items = bundle::items_named(&engine.db, &item_codes, "itemCodes").await.map_err(window_error)?;
        Ok(bundle::form(&items, establishment))
    }

    /// A bundle in the caller's scope (the window that took it), with its children.
    #[graphql(guard = "access::ANYONE")]
    async fn bundle(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Bundle>> {
        let engine = ctx.data::<Engine>()?;
        let Some(model) = access::visible_instance(&engine.db, access::claims(ctx)?, &id).await? else { return Ok(None) };
        if model.definition_name != BUNDLE {
            return Ok(None);
        }
        let instance: InstanceRecord = model.try_into().map_err(|e: crate::store::StoreError| e.internal())?;
        Ok(Some(load_bundle(engine, instance).await?))
    }
}

#[derive(SimpleObject)]
pub struct BundlePayload {
    pub bundle: Bundle,
}

#[derive(InputObject)]
pub struct RegisterEnterpriseInput {
    /// The registration (the bundle's business-licence child).
    pub registration_id: ID,
    pub opinion: Option<String>,
}

#[derive(SimpleObject)]
pub struct RegisterEnterprisePayload {
    /// The unified social credit code assigned: the number the business licence carries.
    pub uscc: String,
    pub registration: WorkflowInstance,
}

#[derive(InputObject)]
pub struct DeregisterBusinessLicenceInput {
    pub uscc: String,
    pub reason: String,
}

#[derive(SimpleObject)]
pub struct NotEnded {
    pub instance_id: ID,
    pub reason: String,
}

#[derive(SimpleObject)]
pub struct DeregisterBusinessLicencePayload {
    pub uscc: String,
    /// Cases (and the registration) ended as deregistered.
    pub ended: Vec<ID>,
    /// Closed cases (commitment kept) whose licence lapsed with the business licence: each has
    /// its `deregister` audit event and notices, and stays closed.
    pub lapsed: Vec<ID>,
    /// Running instances that could not be ended (a definition version without deregistration).
    pub not_ended: Vec<NotEnded>,
}

#[derive(Default)]
pub struct BundleMutation;

#[Object]
impl BundleMutation {
    /// Takes one application for several licences (一照通行) at a window: the items are routed to
    /// their departments; the operating licences start once the business licence is approved.
    #[graphql(guard = "WINDOW")]
    async fn open_bundle(&self, ctx: &Context<'_>, input: OpenBundleInput) -> async_graphql::Result<BundlePayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let instance = bundle::open_bundle(engine, claims, input).await.map_err(window_error)?;
        let instance = crate::store::instances::load(&engine.db, &instance.id).await.map_err(super::events::store_error)?;
        Ok(BundlePayload { bundle: load_bundle(engine, instance).await? })
    }

    /// Approves the registration of an enterprise being established: assigns its unified social
    /// credit code and issues the business licence.
    #[graphql(guard = "APPROVER")]
    async fn register_enterprise(&self, ctx: &Context<'_>, input: RegisterEnterpriseInput) -> async_graphql::Result<RegisterEnterprisePayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let (instance, uscc) = bundle::register(engine, claims, &input.registration_id, input.opinion.as_deref()).await.map_err(window_error)?;
        Ok(RegisterEnterprisePayload { uscc, registration: WorkflowInstance(instance) })
    }

    /// Deregisters an enterprise's business licence: its registration, running cases and active
    /// licences end with it in one step, as deregistered (no breach, no credit record).
    #[graphql(guard = "APPROVER")]
    async fn deregister_business_licence(&self, ctx: &Context<'_>, input: DeregisterBusinessLicenceInput) -> async_graphql::Result<DeregisterBusinessLicencePayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let uscc = crate::domain::ids::uscc(&input.uscc)
            .map_err(|e| async_graphql::ErrorExtensions::extend_with(access::error("BAD_USER_INPUT", e.to_string()), |_, x| x.set("field", "uscc")))?;
        // Always the registration authority of the enterprise's region, whether or not an
        // establishment record names the registering department.
        super::policy::deregistration(&engine.db, claims, &uscc).await?;
        let done = bundle::deregister(engine, claims, &uscc, &input.reason).await.map_err(window_error)?;
        Ok(DeregisterBusinessLicencePayload {
            uscc: crate::domain::ids::uscc(&input.uscc).unwrap_or(input.uscc),
            ended: done.ended.into_iter().map(ID).collect(),
            lapsed: done.lapsed.into_iter().map(ID).collect(),
            not_ended: done.not_ended.into_iter().map(|(id, reason)| NotEnded { instance_id: ID(id), reason }).collect(),
        })
    }
}
