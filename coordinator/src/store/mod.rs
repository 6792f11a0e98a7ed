//! The result store: runs, cells, interval histograms, agents and artifact metadata in SQLite
//! (one file in the data directory, WAL). Every state change is one transaction, so a
//! coordinator killed at any moment restarts with every finished result intact.

mod agents;
mod artifacts;
mod baselines;
mod cells;
mod credentials;
pub mod runs;
mod views;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::error::{CoordError, Result};

pub use cells::{NewCell, PendingCell};
pub use credentials::StoredCredential;
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
        conn.pragma_update(None, "synchronous", "NORMAL")?;
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
    const ADDED: [(&str, &str, &str); 4] = [
        ("runs", "submitted_by", "TEXT NOT NULL DEFAULT ''"),
        ("artifacts", "uploaded_by", "TEXT NOT NULL DEFAULT ''"),
        ("cells", "reference_variant", "TEXT NOT NULL DEFAULT ''"),
        ("cells", "min_agreement", "REAL NOT NULL DEFAULT 1.0"),
    ];
    for (table, column, kind) in ADDED {
        let has: i64 =
            conn.query_row(&format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{column}'"), [], |r| r.get(0))?;
        if has == 0 {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
