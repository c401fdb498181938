use sea_orm_migration::prelude::*;

use crate::sql_migration;

// Search and the enterprise file (issue #19) ask for one enterprise's (or a name's enterprises')
// instances within the caller's scope: led by the scope column, then the applicant, so that a
// window officer's count reads index entries of its department's matches only, never the rows
// of other departments' cases; with the definition and the order in the index, a count or a
// page of one kind (cases, tasks, bundles) never reads a row. The enterprise file also lists
// its returns.
sql_migration!(
    "CREATE INDEX ix_instances_department_applicant ON workflow_instances (department, applicant_uscc, definition_name, created_at, id);
    CREATE INDEX ix_instances_division_applicant ON workflow_instances (division, applicant_uscc, definition_name, created_at, id);
    CREATE INDEX ix_instances_region_applicant ON workflow_instances (region, applicant_uscc, definition_name, created_at, id);
    CREATE INDEX ix_returns_applicant ON returns (applicant_uscc, created_at)",
    "DROP INDEX ix_returns_applicant;
    DROP INDEX ix_instances_region_applicant;
    DROP INDEX ix_instances_division_applicant;
    DROP INDEX ix_instances_department_applicant"
);
