//! `audit verify` over the whole database: every instance's chain (`audit`), each page's cases
//! against their events and every sealed row (`seal`).

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::audit::{AuditKeys, VerifyReport};
use super::entities::{event, instance};

/// Walks every instance's chain, a page of instances at a time, with each page's cases checked
/// against their events; then every sealed row (`super::seal`).
pub async fn verify_all(db: &impl ConnectionTrait, keys: &AuditKeys) -> Result<VerifyReport, DbErr> {
    const PAGE: u64 = 500;
    let mut report = VerifyReport::default();
    let since = super::audit::keyed_since(db).await?;
    let mut after = String::new();
    loop {
        let page = instance::Entity::find()
            .filter(instance::Column::Id.gt(after.clone()))
            .order_by_asc(instance::Column::Id)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        let ids: Vec<String> = page.iter().map(|i| i.id.clone()).collect();
        let events = event::Entity::find()
            .filter(event::Column::InstanceId.is_in(ids.clone()))
            .order_by_asc(event::Column::InstanceId)
            .order_by_asc(event::Column::Seq)
            .all(db)
            .await?;
        let mut by_instance: std::collections::HashMap<&str, &[event::Model]> = Default::default();
        for chunk in events.chunk_by(|a, b| a.instance_id == b.instance_id) {
            by_instance.insert(&chunk[0].instance_id, chunk);
        }
        for inst in &page {
            let mine = by_instance.get(inst.id.as_str()).copied().unwrap_or_default();
            report.events += mine.len() as u64;
            report.breaks.extend(super::audit::verify_chain(inst, mine, keys, since));
        }
        super::seal::check_cases(db, &ids, &by_instance, &mut report).await?;
        report.instances += page.len() as u64;
    }
    super::seal::check_rows(db, keys, &mut report).await?;
    Ok(report)
}
