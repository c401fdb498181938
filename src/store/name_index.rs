//! Finding applicants by a fragment of their name, Chinese names included: each name's
//! overlapping character pairs (and its last character with an end mark, so that every
//! character starts some pair) are kept in `applicant_name_bigrams` with each pair's first
//! character, written wherever the name is. A fragment of two or more characters needs every one
//! of its pairs; one character is found by the pairs it starts. Both are index lookups on either backend — trigram indexes find
//! nothing for a two-character fragment and a `LIKE '%…%'` scans everything.

use sea_orm::{ConnectionTrait, DbErr};

use super::stmt;

/// Marks the end of a name in its last pair.
const END: char = '\u{2402}';

/// A name or fragment as the index compares it: whitespace dropped, case folded.
fn folded(text: &str) -> Vec<char> {
    text.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// The overlapping pairs of `chars`, sorted, each once.
fn pairs(chars: &[char]) -> Vec<String> {
    let mut out: Vec<String> = chars.windows(2).map(|w| w.iter().collect()).collect();
    out.sort();
    out.dedup();
    out
}

/// The pairs kept for `name` (case-folded, whitespace dropped).
pub fn bigrams(name: &str) -> Vec<String> {
    let chars = folded(name);
    let mut out = pairs(&chars);
    if let Some(last) = chars.last() {
        out.push(format!("{last}{END}"));
    }
    out.sort();
    out.dedup();
    out
}

/// Replaces the pairs kept for applicant `uscc` with those of `name`, in the caller's transaction.
pub async fn write(db: &impl ConnectionTrait, uscc: &str, name: &str) -> Result<(), DbErr> {
    db.execute_raw(stmt(db, "DELETE FROM applicant_name_bigrams WHERE uscc = ?", vec![uscc.into()])).await?;
    for pair in bigrams(name) {
        let head: String = pair.chars().take(1).collect();
        db.execute_raw(stmt(db, "INSERT INTO applicant_name_bigrams (bigram, head, uscc) VALUES (?, ?, ?)", vec![pair.into(), head.into(), uscc.into()])).await?;
    }
    Ok(())
}

/// A condition on a column holding unified social credit codes: the applicants whose name
/// contains `fragment`. `None` for an empty fragment.
pub fn condition(column: &str, fragment: &str) -> Option<(String, Vec<sea_orm::Value>)> {
    subquery(fragment).map(|(sql, values)| (format!("{column} IN ({sql})"), values))
}

/// The most codes `matching` hands back for a list of values; a fragment matching more is
/// searched through the subquery (`condition`).
pub const MAX_LISTED: usize = 2000;

/// The codes of the applicants whose name contains `fragment`, when there are at most
/// `MAX_LISTED` (else `None`). A search given them as values is planned on the number it will
/// match — a page newest first then walks the scope's own index by time instead of sorting
/// every match, which a subquery the planner cannot size does not get on PostgreSQL.
pub async fn matching(db: &impl ConnectionTrait, fragment: &str) -> Result<Option<Vec<String>>, DbErr> {
    #[derive(sea_orm::FromQueryResult)]
    struct Code {
        uscc: String,
    }
    let Some((sql, values)) = subquery(fragment) else { return Ok(Some(Vec::new())) };
    let rows: Vec<Code> = super::fetch(db, &format!("{sql} LIMIT {}", MAX_LISTED + 1), values).await?;
    Ok((rows.len() <= MAX_LISTED).then(|| rows.into_iter().map(|c| c.uscc).collect()))
}

/// `SELECT uscc …` of the applicants whose name contains `fragment`; `None` for an empty one.
fn subquery(fragment: &str) -> Option<(String, Vec<sea_orm::Value>)> {
    let chars = folded(fragment);
    let pairs: Vec<String> = {
        match chars.len() {
            0 => return None,
            // Every character of a name starts one of its pairs (the last with the end mark).
            1 => return Some(("SELECT DISTINCT uscc FROM applicant_name_bigrams WHERE head = ?".to_string(), vec![chars[0].to_string().into()])),
            _ => pairs(&chars),
        }
    };
    // Every pair present, then the name itself checked: pairs in another order match too.
    let marks = vec!["?"; pairs.len()].join(", ");
    let sql = format!(
        "SELECT b.uscc FROM applicant_name_bigrams b JOIN applicants a ON a.uscc = b.uscc \
         WHERE b.bigram IN ({marks}) GROUP BY b.uscc, a.name HAVING COUNT(*) = ? AND LOWER(REPLACE(a.name, ' ', '')) LIKE ? ESCAPE '\\'"
    );
    let n = pairs.len() as i64;
    let mut values: Vec<sea_orm::Value> = pairs.into_iter().map(Into::into).collect();
    values.push(n.into());
    let folded: String = chars.iter().collect();
    values.push(format!("%{}%", folded.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")).into());
    Some((sql, values))
}

/// Keeps the pairs of applicants that have none (rows from before the index): once per start,
/// a page at a time.
pub async fn backfill(db: &sea_orm::DatabaseConnection) -> Result<usize, DbErr> {
    let mut done = 0;
    loop {
        let rows = db
            .query_all_raw(stmt(
                db,
                "SELECT uscc, name FROM applicants a WHERE NOT EXISTS (SELECT 1 FROM applicant_name_bigrams b WHERE b.uscc = a.uscc) LIMIT 500",
                vec![],
            ))
            .await?;
        if rows.is_empty() {
            return Ok(done);
        }
        let txn = super::begin_write(db).await?;
        for r in &rows {
            let (uscc, name): (String, String) = (r.try_get("", "uscc")?, r.try_get("", "name")?);
            write(&txn, &uscc, &name).await?;
            done += 1;
        }
        txn.commit().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_starts_a_pair_and_pairs_are_unique() {
        assert_eq!(bigrams("上海餐饮"), ["上海", "海餐", "餐饮", "饮\u{2402}"]);
        assert_eq!(bigrams("A a"), ["aa", "a\u{2402}"]);
        assert!(bigrams("").is_empty());
    }
}
