//! Per-request DataLoaders: a page of instances with their histories and timers costs one
//! query per kind, not one per row. Made per request, so no cache is shared between callers.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};

use crate::store::entities::{event, timer};

pub struct HistoryLoader(pub DatabaseConnection);
pub struct TimerLoader(pub DatabaseConnection);
/// The names of each instance's deadlines still counted over a provisional year.
pub struct ProvisionalLoader(pub DatabaseConnection);
/// The written notices each case's applicant was sent.
pub struct NoticeLoader(pub DatabaseConnection);

impl Loader<String> for NoticeLoader {
    type Value = Vec<crate::store::notices::Notice>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = crate::store::notices::of(&self.0, keys).await.map_err(Arc::new)?;
        Ok(by_instance(keys, rows, |r| &r.instance_id))
    }
}

/// Rows grouped under the instance each belongs to; every key present, if only with none.
fn by_instance<T>(keys: &[String], rows: Vec<T>, instance: impl Fn(&T) -> &str) -> HashMap<String, Vec<T>> {
    let mut out: HashMap<String, Vec<T>> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for row in rows {
        out.entry(instance(&row).to_string()).or_default().push(row);
    }
    out
}

impl Loader<String> for HistoryLoader {
    type Value = Vec<event::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = event::Entity::find()
            .filter(event::Column::InstanceId.is_in(keys.iter().cloned()))
            .order_by_asc(event::Column::InstanceId)
            .order_by_asc(event::Column::Seq)
            .all(&self.0)
            .await
            .map_err(Arc::new)?;
        Ok(by_instance(keys, rows, |r| &r.instance_id))
    }
}

impl Loader<String> for TimerLoader {
    type Value = Vec<timer::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = timer::Entity::find()
            .filter(timer::Column::InstanceId.is_in(keys.iter().cloned()))
            .order_by_asc(timer::Column::DueAt)
            .all(&self.0)
            .await
            .map_err(Arc::new)?;
        Ok(by_instance(keys, rows, |r| &r.instance_id))
    }
}

impl Loader<String> for ProvisionalLoader {
    type Value = Vec<String>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = crate::store::provisional::deadlines_of_all(&self.0, keys).await.map_err(Arc::new)?;
        Ok(by_instance(keys, rows, |r| &r.0).into_iter().map(|(k, v)| (k, v.into_iter().map(|(_, name)| name).collect())).collect())
    }
}

/// The loaders one request uses, caching for that request only.
pub struct Loaders {
    pub history: DataLoader<HistoryLoader, HashMapCache>,
    pub timers: DataLoader<TimerLoader, HashMapCache>,
    pub provisional: DataLoader<ProvisionalLoader, HashMapCache>,
    pub notices: DataLoader<NoticeLoader, HashMapCache>,
}

impl Loaders {
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            history: DataLoader::with_cache(HistoryLoader(db.clone()), tokio::spawn, HashMapCache::default()),
            timers: DataLoader::with_cache(TimerLoader(db.clone()), tokio::spawn, HashMapCache::default()),
            provisional: DataLoader::with_cache(ProvisionalLoader(db.clone()), tokio::spawn, HashMapCache::default()),
            notices: DataLoader::with_cache(NoticeLoader(db.clone()), tokio::spawn, HashMapCache::default()),
        }
    }

    /// Loads the nested lists a page selects in one query each, before the page's items
    /// resolve them one by one from the cache (batching by delay alone splits a big page
    /// into several queries when resolvers are slow to queue).
    /// A page's items are its `edges { node }` or its `nodes`, each an instance or a case with
    /// its `instance`.
    pub async fn prefetch(&self, ctx: &async_graphql::Context<'_>, ids: &[String]) -> Result<(), Arc<DbErr>> {
        let page = ctx.look_ahead();
        let wants = |field: &str| {
            [page.field("edges").field("node"), page.field("nodes")].into_iter().any(|item| item.field(field).exists() || item.field("instance").field(field).exists())
        };
        if wants("history") {
            self.history.load_many(ids.iter().cloned()).await?;
        }
        if wants("timers") {
            self.timers.load_many(ids.iter().cloned()).await?;
        }
        if wants("deadlines") {
            self.provisional.load_many(ids.iter().cloned()).await?;
        }
        Ok(())
    }
}
