//! The result store: runs, cells, interval histograms, agents and artifact metadata in SQLite
//! (one file in the data directory, WAL, synchronous=FULL). Every state change is one savepoint
//! of the open transaction, committed in groups (see [`commit`]); nothing is acknowledged or
//! answered before its commit, so a coordinator killed at any moment restarts with every result
//! it acknowledged intact.

mod agents;
mod artifacts;
mod attempts;
mod baselines;
mod cells;
pub mod commit;
mod credentials;
mod leases;
pub mod runs;
mod views;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::error::{CoordError, Result};

pub use attempts::Finish;
pub use cells::{NewCell, PendingCell, QueueMark};
pub use credentials::StoredCredential;
pub use leases::InFlight;
pub use runs::NewRun;

pub struct Store {
    shared: Arc<commit::Shared>,
    committer: Mutex<Option<std::thread::JoinHandle<()>>>,
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
        let shared = commit::Shared::new(conn);
        let s = shared.clone();
        let committer = std::thread::Builder::new()
            .name("store-commit".into())
            .spawn(move || s.committer())
            .map_err(|e| CoordError::Internal(format!("starting the store's committing thread: {e}")))?;
        Ok(Store { shared, committer: Mutex::new(Some(committer)) })
    }

    /// The connection, inside the open transaction: a store operation's statements run in a
    /// savepoint of it (or alone), and are committed with the others of their group.
    fn conn(&self) -> Result<commit::Conn<'_>> {
        self.shared.conn()
    }

    /// The count of writes so far; [`Store::durable`] of it covers every write made before.
    pub fn written(&self) -> u64 {
        self.shared.written()
    }

    /// Commits made so far, and the writes they settled.
    pub fn commit_counts(&self) -> (u64, u64) {
        self.shared.counts()
    }

    /// Returns once `write` (a [`Store::written`] count) is committed; an error when its commit
    /// failed (the write is lost).
    pub async fn durable(&self, write: u64) -> Result<()> {
        self.shared.durable(write).await
    }

    /// Commits what is open and stops the committing thread; later writes are committed by
    /// nobody. Called once the coordinator has stopped serving (and by drop).
    pub fn close(&self) {
        self.shared.stop();
        if let Some(t) = self.committer.lock().ok().and_then(|mut c| c.take()) {
            let _ = t.join();
        }
        self.shared.commit();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
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
