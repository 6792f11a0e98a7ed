//! The result store: runs, cells, interval histograms, agents and artifact metadata in SQLite
//! (one file in the data directory, WAL, synchronous=FULL). Every state change is one
//! transaction, so a coordinator killed at any moment restarts with every finished result intact.

mod agents;
mod artifacts;
mod attempts;
mod baselines;
mod cells;
mod credentials;
mod leases;
pub mod runs;
mod views;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::error::{CoordError, Result};

pub use attempts::Finish;
pub use cells::{NewCell, PendingCell};
pub use credentials::StoredCredential;
pub use leases::InFlight;
pub use runs::NewRun;

pub struct Store {
    conn: Mutex<Connection>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on the disk before it returns, so what the coordinator acknowledges
        // to an agent (which then forgets it) survives a power loss, not only a crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(include_str!("schema.sql"))?;
        migrate(&conn)?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| CoordError::Internal("store lock poisoned".into()))
    }
}

/// Brings a database made by an older coordinator up to the schema: columns added since.
fn migrate(conn: &Connection) -> Result<()> {
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
        let has: i64 =
            conn.query_row(&format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{column}'"), [], |r| r.get(0))?;
        if has == 0 {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    conn.execute_batch("CREATE UNIQUE INDEX IF NOT EXISTS intervals_once ON intervals(cell_id, attempt, seq) WHERE seq > 0")?;
    Ok(())
}

#[cfg(test)]
mod tests;
