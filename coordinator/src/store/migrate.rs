//! Versioned migrations, the same for both stores: `migrations/NNNN_name.sql`, applied in order,
//! each in a transaction with its row in `schema_migrations`. `coordinator serve` applies what is
//! missing before it serves, and `coordinator migrate` alone. A database migrated by a newer
//! coordinator is refused by an older one (it would not know the columns it must keep).
//! PostgreSQL replicas starting together take an advisory lock, so one applies and the others
//! find the work done.

use rusqlite::Connection;

use super::now_ms;
use crate::error::{CoordError, Result};

/// Every migration: version, name and SQL.
pub const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "schema", include_str!("migrations/0001_schema.sql")), (2, "replicas", include_str!("migrations/0002_replicas.sql"))];

/// The version this coordinator brings a database to.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

const TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)";
const CURRENT: &str = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";

/// What a migration pass found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub from: i64,
    pub to: i64,
    pub applied: Vec<String>,
}

fn too_new(version: i64) -> CoordError {
    CoordError::FailedPrecondition(format!(
        "the store is at schema version {version}, newer than this coordinator's {}: run a coordinator of the same release or later",
        latest()
    ))
}

fn pending(from: i64) -> Result<impl Iterator<Item = &'static (i64, &'static str, &'static str)>> {
    if from > latest() {
        return Err(too_new(from));
    }
    Ok(MIGRATIONS.iter().filter(move |m| m.0 > from))
}

fn name(m: &(i64, &str, &str)) -> String {
    format!("{:04}_{}", m.0, m.1)
}

/// Brings an SQLite database to [`latest`].
pub fn sqlite(conn: &mut Connection) -> Result<Migrated> {
    conn.execute_batch(TABLE)?;
    let from: i64 = conn.query_row(CURRENT, [], |r| r.get(0))?;
    let mut applied = Vec::new();
    for m in pending(from)? {
        let tx = conn.transaction()?;
        if m.0 == 1 {
            adopt_unversioned(&tx)?;
        }
        tx.execute_batch(m.2)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.0, m.1, now_ms() as i64],
        )?;
        tx.commit()?;
        applied.push(name(m));
    }
    Ok(Migrated { from, to: from.max(latest()), applied })
}

/// The version an SQLite database is at (0: none applied), without changing it.
pub fn sqlite_version(conn: &Connection) -> Result<i64> {
    let has: i64 =
        conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'", [], |r| r.get(0))?;
    if has == 0 {
        return Ok(0);
    }
    Ok(conn.query_row(CURRENT, [], |r| r.get(0))?)
}

/// A database made before migrations were versioned has the tables of version 1, without the
/// columns added since they were first made: those are added before version 1's indexes.
fn adopt_unversioned(conn: &Connection) -> Result<()> {
    const ADDED: [(&str, &str, &str); 11] = [
        ("runs", "submitted_by", "TEXT NOT NULL DEFAULT ''"),
        ("artifacts", "uploaded_by", "TEXT NOT NULL DEFAULT ''"),
        ("cells", "reference_variant", "TEXT NOT NULL DEFAULT ''"),
        ("cells", "min_agreement", "REAL NOT NULL DEFAULT 1.0"),
        ("cells", "lease_until_ms", "INTEGER NOT NULL DEFAULT 0"),
        ("cells", "away_since_ms", "INTEGER NOT NULL DEFAULT 0"),
        ("cells", "interruptions", "INTEGER NOT NULL DEFAULT 0"),
        ("cells", "interrupted_ms", "INTEGER NOT NULL DEFAULT 0"),
        ("cells", "duplicates", "INTEGER NOT NULL DEFAULT 0"),
        ("cells", "result_attempt", "INTEGER NOT NULL DEFAULT 0"),
        ("intervals", "seq", "INTEGER NOT NULL DEFAULT 0"),
    ];
    for (table, column, kind) in ADDED {
        let table_exists: i64 =
            conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))?;
        if table_exists == 0 {
            continue; // made whole by version 1
        }
        let has: i64 =
            conn.query_row(&format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{column}'"), [], |r| r.get(0))?;
        if has == 0 {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

/// The lock replicas take to migrate one at a time (any fixed number: "anefleet" in ASCII).
const PG_LOCK: i64 = 0x616e_6566_6c65_6574;

/// PostgreSQL has no `blob`: the schema's BLOB columns are bytea.
const PG_PRELUDE: &str = "DO $$ BEGIN CREATE DOMAIN blob AS bytea; EXCEPTION WHEN duplicate_object THEN NULL; END $$;";

/// Brings a PostgreSQL database to [`latest`], one replica at a time.
pub fn postgres(client: &mut postgres::Client) -> Result<Migrated> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PG_LOCK])?;
    tx.batch_execute(TABLE)?;
    let from: i64 = tx.query_one(CURRENT, &[])?.get(0);
    let mut applied = Vec::new();
    for m in pending(from)? {
        if m.0 == 1 {
            tx.batch_execute(PG_PRELUDE)?;
        }
        tx.batch_execute(m.2)?;
        tx.execute("INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)", &[&m.0, &m.1, &(now_ms() as i64)])?;
        applied.push(name(m));
    }
    tx.commit()?;
    Ok(Migrated { from, to: from.max(latest()), applied })
}

/// The version a PostgreSQL database is at (0: none applied), without changing it.
pub fn postgres_version(client: &mut postgres::Client) -> Result<i64> {
    let has: i64 = client.query_one("SELECT COUNT(*) FROM pg_tables WHERE tablename = 'schema_migrations'", &[])?.get(0);
    if has == 0 {
        return Ok(0);
    }
    Ok(client.query_one(CURRENT, &[])?.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_is_migrated_once_and_a_second_pass_applies_nothing() {
        let mut c = Connection::open_in_memory().unwrap();
        let first = sqlite(&mut c).unwrap();
        assert_eq!(first, Migrated { from: 0, to: latest(), applied: vec!["0001_schema".into(), "0002_replicas".into()] });
        assert_eq!(sqlite(&mut c).unwrap(), Migrated { from: latest(), to: latest(), applied: vec![] });
        assert_eq!(sqlite_version(&c).unwrap(), latest());
    }

    #[test]
    fn a_database_from_before_versions_keeps_its_rows_and_gains_the_later_columns() {
        let mut c = Connection::open_in_memory().unwrap();
        // The first release's tables, without the columns added since.
        c.execute_batch(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,
                spec_toml TEXT NOT NULL, spec_path TEXT NOT NULL, skipped TEXT NOT NULL DEFAULT '[]',
                created_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE intervals (cell_id TEXT NOT NULL, attempt INTEGER NOT NULL, repetition INTEGER NOT NULL,
                start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, latency BLOB NOT NULL);
             INSERT INTO runs (id, seq, name, state, spec_toml, spec_path, created_ms) VALUES ('r', 1, 'old', 'finished', '', '', 5);",
        )
        .unwrap();
        assert_eq!(sqlite_version(&c).unwrap(), 0);
        sqlite(&mut c).unwrap();
        let (name, by): (String, String) = c.query_row("SELECT name, submitted_by FROM runs", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((name.as_str(), by.as_str()), ("old", ""));
        let once: i64 = c.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'intervals_once'", [], |r| r.get(0)).unwrap();
        assert_eq!(once, 1, "the index on the added column exists");
    }

    #[test]
    fn a_database_from_a_newer_coordinator_is_refused_untouched() {
        let mut c = Connection::open_in_memory().unwrap();
        sqlite(&mut c).unwrap();
        c.execute("INSERT INTO schema_migrations VALUES (?1, 'future', 0)", [latest() + 1]).unwrap();
        let e = sqlite(&mut c).unwrap_err().to_string();
        assert!(e.contains(&format!("schema version {}", latest() + 1)) && e.contains("newer"), "{e}");
    }
}
