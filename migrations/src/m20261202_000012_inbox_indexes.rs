use sea_orm_migration::prelude::*;

use crate::sql_migration;

// A staff member's list (the window's inbox: its department's cases of one workflow in one
// state, newest first, with the total) read every such instance of every department through
// (definition_name, state) and filtered the department afterwards: ~400 ms a request at
// 1,000,000 cases, which queued the whole server (BENCHMARKS.md, the load figures). Led by the
// caller's scope, the count is a range of one index and the page its last rows.
sql_migration!(
    "CREATE INDEX ix_instances_department_inbox ON workflow_instances (department, definition_name, state, created_at);
    CREATE INDEX ix_instances_division_inbox ON workflow_instances (division, definition_name, state, created_at)",
    "DROP INDEX ix_instances_division_inbox; DROP INDEX ix_instances_department_inbox"
);
