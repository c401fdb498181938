use sea_orm_migration::prelude::*;

use crate::sql_migration;

// A keyed audit trail (issue #17): each event says how its hash was made — `sha256` for the
// events written before (they keep verifying as they are), `hmac-sha256:<key id>` from now on,
// keyed by a file outside the database. Rows that no event records in full (credit records,
// applicants, their change records) carry a seal of the same kind over their columns.
const UP: &str = "ALTER TABLE workflow_events ADD COLUMN scheme TEXT NOT NULL DEFAULT 'sha256';
    ALTER TABLE credit_records ADD COLUMN mac TEXT NULL;
    ALTER TABLE applicants ADD COLUMN mac TEXT NULL;
    ALTER TABLE applicant_changes ADD COLUMN mac TEXT NULL";

const DOWN: &str = "ALTER TABLE applicant_changes DROP COLUMN mac;
    ALTER TABLE applicants DROP COLUMN mac;
    ALTER TABLE credit_records DROP COLUMN mac;
    ALTER TABLE workflow_events DROP COLUMN scheme";

sql_migration!(UP, DOWN);
