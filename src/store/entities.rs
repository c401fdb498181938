//! sea-orm entities, one per table of `migrations/`. Instants are UTC milliseconds; JSON
//! columns are text, parsed at the edge of the store.

pub mod definition {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "workflow_definitions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i64,
        pub digest: String,
        pub source: String,
        pub deployed_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod instance {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "workflow_instances")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub definition_name: String,
        pub definition_version: i64,
        pub state: String,
        pub version: i64,
        pub context: String,
        pub deadlines: String,
        pub parent_id: Option<String>,
        pub last_event_hash: String,
        pub created_at: i64,
        pub updated_at: i64,
        pub region: Option<String>,
        pub department: Option<String>,
        pub division: Option<String>,
        pub applicant_uscc: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "workflow_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub instance_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub event: String,
        pub from_state: Option<String>,
        pub to_state: String,
        pub actor: String,
        pub payload: String,
        pub occurred_at: i64,
        pub prev_hash: String,
        pub hash: String,
        /// `actor.subject`, indexed: the audit trail per actor.
        pub actor_subject: Option<String>,
        /// How `hash` was made: `sha256` (events from before the trail was keyed) or
        /// `hmac-sha256:<key id>` (`store::audit`).
        pub scheme: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod timer {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "workflow_timers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub instance_id: String,
        pub state: String,
        pub name: String,
        pub event: String,
        pub due_at: i64,
        pub status: String,
        pub armed_seq: i64,
        pub claimed_by: Option<String>,
        pub claimed_until: Option<i64>,
        pub settled_at: Option<i64>,
        pub last_error: Option<String>,
        /// 1 when counted over a provisional calendar year.
        pub provisional: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub instance_id: String,
        pub event_seq: i64,
        pub channel: String,
        pub recipient: String,
        pub topic: String,
        pub payload: String,
        pub idempotency_key: String,
        pub status: String,
        pub attempts: i64,
        pub next_attempt_at: i64,
        pub last_error: Option<String>,
        pub claimed_by: Option<String>,
        pub claimed_until: Option<i64>,
        pub created_at: i64,
        pub delivered_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
