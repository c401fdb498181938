//! Deployed definitions are stored, so that an instance started on an older version keeps
//! running on exactly that text after a newer version is deployed.

use sea_orm::{sea_query::OnConflict, ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::entities::definition;
use super::StoreError;
use crate::workflow::{parse_definition, WorkflowSet};

/// Records every definition of `set` not yet stored, refuses a stored name and version whose
/// text has changed, and adds the stored older versions back into `set`. Safe when several
/// processes start together: a version another process stored meanwhile is left as it is (no
/// unique violation stopping this start) and its text compared like any stored one.
pub async fn deploy(db: &impl ConnectionTrait, set: &mut WorkflowSet, now_ms: i64) -> Result<(), StoreError> {
    let known = definition::Entity::find().all(db).await?;
    for def in set.all().cloned().collect::<Vec<_>>() {
        if known.iter().any(|s| s.name == def.name && s.version == def.version) {
            continue;
        }
        definition::Entity::insert(definition::ActiveModel {
            name: Set(def.name.clone()),
            version: Set(def.version),
            digest: Set(def.digest.clone()),
            source: Set(def.source.clone()),
            deployed_at: Set(now_ms),
        })
        .on_conflict(OnConflict::columns([definition::Column::Name, definition::Column::Version]).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    }
    let stored = definition::Entity::find().all(db).await?;
    for def in set.all() {
        if let Some(s) = stored.iter().find(|s| s.name == def.name && s.version == def.version) {
            if s.digest != def.digest {
                return Err(StoreError::DefinitionChanged { name: def.name.clone(), version: def.version });
            }
        }
    }
    for s in stored {
        if set.get(&s.name, s.version).is_none() {
            let file = format!("<stored {} v{}>", s.name, s.version);
            let def = parse_definition(&file, &s.source).map_err(|problems| {
                StoreError::Corrupt(problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            })?;
            set.insert(def);
        }
    }
    Ok(())
}
