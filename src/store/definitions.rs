//! Deployed definitions are stored, so that an instance started on an older version keeps
//! running on exactly that text after a newer version is deployed.

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::entities::definition;
use super::StoreError;
use crate::workflow::{parse_definition, WorkflowSet};

/// Records every definition of `set` not yet stored, refuses a stored name and version whose
/// text has changed, and adds the stored older versions back into `set`.
pub async fn deploy(db: &impl ConnectionTrait, set: &mut WorkflowSet, now_ms: i64) -> Result<(), StoreError> {
    let stored = definition::Entity::find().all(db).await?;
    for def in set.all().cloned().collect::<Vec<_>>() {
        match stored.iter().find(|s| s.name == def.name && s.version == def.version) {
            Some(s) if s.digest != def.digest => {
                return Err(StoreError::DefinitionChanged { name: def.name.clone(), version: def.version })
            }
            Some(_) => {}
            None => {
                definition::Entity::insert(definition::ActiveModel {
                    name: Set(def.name.clone()),
                    version: Set(def.version),
                    digest: Set(def.digest.clone()),
                    source: Set(def.source.clone()),
                    deployed_at: Set(now_ms),
                })
                .exec_without_returning(db)
                .await?;
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
