use sea_orm_migration::prelude::*;

use crate::sql_migration;

// Search (issue #19): applicants by a fragment of their name through the pairs of its characters,
// and cases by licence number and by mode, each an index lookup.
sql_migration!(
    "CREATE TABLE applicant_name_bigrams (
        bigram TEXT NOT NULL,
        head   TEXT NOT NULL,
        uscc   TEXT NOT NULL,
        PRIMARY KEY (bigram, uscc)
    );
    CREATE INDEX ix_name_bigrams_uscc ON applicant_name_bigrams (uscc);
    CREATE INDEX ix_name_bigrams_head ON applicant_name_bigrams (head, uscc);
    CREATE INDEX ix_cases_licence_number ON cases (licence_number);
    CREATE INDEX ix_cases_mode ON cases (mode, created_at)",
    "DROP INDEX ix_cases_mode; DROP INDEX ix_cases_licence_number; DROP INDEX ix_name_bigrams_head; DROP INDEX ix_name_bigrams_uscc; DROP TABLE applicant_name_bigrams"
);
