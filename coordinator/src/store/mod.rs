//! The result store: runs, cells, interval histograms, agents and artifact metadata, in one of
//! two databases (see [`db`]): the embedded SQLite (one file in the data directory, WAL,
//! synchronous=FULL; the default) or PostgreSQL (`--store postgres://…`, shared by several
//! coordinator replicas). Every state change is one transaction: with SQLite a savepoint of the
//! open transaction, committed in groups (see [`commit`]); with PostgreSQL a transaction of its
//! own. Nothing is acknowledged or answered before its commit, so a coordinator killed at any
//! moment restarts with every result it acknowledged intact.

mod agents;
mod artifacts;
mod attempts;
mod baselines;
mod cells;
pub mod commit;
mod credentials;
pub mod db;
mod leases;
pub mod migrate;
mod notify;
mod replicas;
pub mod runs;
mod views;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::error::{CoordError, Result};
use db::Tx;
use db::sqlite::SqliteTx;

pub use attempts::Finish;
pub use cells::{NewCell, PendingCell, QueueMark};
pub use credentials::StoredCredential;
pub use leases::InFlight;
pub use replicas::Elsewhere;
pub use runs::NewRun;

/// Where the store is: an SQLite file, or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// A `postgres://` URL, and its TLS (`sslmode=require`).
    Postgres {
        url: String,
        tls: StoreTls,
    },
}

/// TLS to a PostgreSQL store: the CA certificates it trusts (`--store-ca-file`; default the
/// system's roots), and the client certificate and key it shows a server that asks for one
/// (`--store-client-cert`, `--store-client-key`; PEM files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreTls {
    pub ca_file: Option<PathBuf>,
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl Location {
    /// `--store` (or `ANEFLEET_STORE`) when given: a `postgres://` or `postgresql://` URL, or an
    /// SQLite file's path; otherwise `anefleet.db` in the data directory. `tls`: a PostgreSQL
    /// store's.
    pub fn new(store: Option<&str>, data_dir: &Path, tls: StoreTls) -> Location {
        match store.map(str::trim).filter(|s| !s.is_empty()) {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Location::Postgres { url: url.to_string(), tls }
            }
            Some(path) => Location::Sqlite(PathBuf::from(path)),
            None => Location::Sqlite(data_dir.join("anefleet.db")),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "SQLite {}", p.display()),
            Location::Postgres { url, .. } => write!(f, "PostgreSQL {}", db::postgres::redact(url)),
        }
    }
}

pub struct Store {
    backend: Backend,
}

enum Backend {
    Sqlite { shared: Arc<commit::Shared>, committer: Mutex<Option<std::thread::JoinHandle<()>>> },
    Postgres { pool: db::postgres::Pool, commits: AtomicU64, manager: Box<db::postgres::Manager>, notifier: Arc<notify::Notifier> },
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Store {
    /// Opens the store at `at`, bringing its schema up to date.
    pub fn at(at: &Location) -> Result<Store> {
        match at {
            Location::Sqlite(path) => Store::open(path),
            Location::Postgres { url, tls } => Store::connect(url, tls),
        }
    }

    /// Brings the store at `at` to this coordinator's schema, and nothing else (`coordinator
    /// migrate`).
    pub fn migrate(at: &Location) -> Result<migrate::Migrated> {
        match at {
            Location::Sqlite(path) => migrate::sqlite(&mut sqlite_connection(path)?),
            Location::Postgres { url, tls } => {
                let manager = db::postgres::Manager::new(url, tls)?;
                migrate::postgres(&mut manager.connect_client().map_err(|e| answers_not(url, &e))?)
            }
        }
    }

    /// Opens (creating if needed) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let mut conn = sqlite_connection(path)?;
        migrate::sqlite(&mut conn)?;
        let shared = commit::Shared::new(conn);
        let s = shared.clone();
        let committer = std::thread::Builder::new()
            .name("store-commit".into())
            .spawn(move || s.committer())
            .map_err(|e| CoordError::Internal(format!("starting the store's committing thread: {e}")))?;
        Ok(Store { backend: Backend::Sqlite { shared, committer: Mutex::new(Some(committer)) } })
    }

    /// Connects to the PostgreSQL database at `url` (over `tls` when the URL says
    /// `sslmode=require`), bringing its schema up to date.
    pub fn connect(url: &str, tls: &StoreTls) -> Result<Store> {
        let manager = db::postgres::Manager::new(url, tls)?;
        // One connection first: what is wrong (the address, the password, TLS) is said at once.
        migrate::postgres(&mut manager.connect_client().map_err(|e| answers_not(url, &e))?)?;
        let pool = db::postgres::pool(url, manager.clone())?;
        Ok(Store { backend: Backend::Postgres { pool, commits: AtomicU64::new(0), manager: Box::new(manager), notifier: Arc::default() } })
    }

    /// Whether other coordinators (replicas) share this store.
    pub fn shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    /// This coordinator is replica `me` of a shared store: it tells the others of its changes
    /// ([`Store::changed`]) and hears theirs (`on_change`). Nothing for an SQLite store.
    pub fn join_replicas(&self, me: &str, on_change: impl Fn() + Send + 'static) {
        if let Backend::Postgres { pool, manager, notifier, .. } = &self.backend {
            notifier.start(pool.clone(), me.to_string());
            notify::listen((**manager).clone(), me.to_string(), on_change);
        }
    }

    /// Something changed that other replicas' schedulers and live views care about.
    pub fn changed(&self) {
        if let Backend::Postgres { notifier, .. } = &self.backend {
            notifier.changed();
        }
    }

    /// Runs `f`, a store operation that changes something, in one transaction: with SQLite a
    /// savepoint of the open transaction (committed with its group, see [`Store::durable`]), with
    /// PostgreSQL a transaction committed before this returns. An error undoes all of it.
    fn write<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite { shared, .. } => {
                let mut conn = shared.conn()?;
                let sp = conn.savepoint()?;
                let out = f(&mut SqliteTx(&sp))?;
                sp.commit()?;
                Ok(out)
            }
            Backend::Postgres { pool, commits, .. } => off_the_workers(|| {
                let out = pool.get().map_err(unavailable)?.transaction(false, f)?;
                commits.fetch_add(1, Ordering::Relaxed);
                Ok(out)
            }),
        }
    }

    /// Runs `f`, which only reads, on one consistent view of the store.
    fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite { shared, .. } => f(&mut SqliteTx(&*shared.conn()?)),
            Backend::Postgres { pool, .. } => off_the_workers(|| pool.get().map_err(unavailable)?.transaction(true, f)),
        }
    }

    /// The count of writes so far; [`Store::durable`] of it covers every write made before.
    pub fn written(&self) -> u64 {
        match &self.backend {
            Backend::Sqlite { shared, .. } => shared.written(),
            Backend::Postgres { .. } => 0,
        }
    }

    /// Commits made so far, and the writes they settled.
    pub fn commit_counts(&self) -> (u64, u64) {
        match &self.backend {
            Backend::Sqlite { shared, .. } => shared.counts(),
            Backend::Postgres { commits, .. } => {
                let n = commits.load(Ordering::Relaxed);
                (n, n)
            }
        }
    }

    /// Returns once `write` (a [`Store::written`] count) is committed; an error when its commit
    /// failed (the write is lost). PostgreSQL commits each operation before it returns.
    pub async fn durable(&self, write: u64) -> Result<()> {
        match &self.backend {
            Backend::Sqlite { shared, .. } => shared.durable(write).await,
            Backend::Postgres { .. } => Ok(()),
        }
    }

    /// Whether the store answers and its schema is this coordinator's (for `/readyz`).
    pub fn ready(&self) -> Result<()> {
        let version = match &self.backend {
            Backend::Sqlite { shared, .. } => migrate::sqlite_version(&*shared.conn()?)?,
            Backend::Postgres { pool, .. } => off_the_workers(|| migrate::postgres_version(&mut pool.get().map_err(unavailable)?.client))?,
        };
        if version != migrate::latest() {
            return Err(CoordError::Unavailable(format!(
                "the store is at schema version {version}; this coordinator needs {}",
                migrate::latest()
            )));
        }
        Ok(())
    }

    /// Commits what is open and stops the committing thread; later writes are committed by
    /// nobody. Called once the coordinator has stopped serving (and by drop).
    pub fn close(&self) {
        if let Backend::Sqlite { shared, committer } = &self.backend {
            shared.stop();
            if let Some(t) = committer.lock().ok().and_then(|mut c| c.take()) {
                let _ = t.join();
            }
            shared.commit();
        }
    }
}

/// The SQLite database at `path`, as the store uses it.
fn sqlite_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on the disk before it returns, so what the coordinator acknowledges to an
    // agent (which then forgets it) survives a power loss, not only a crash.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(db::sqlite::STATEMENT_CACHE);
    Ok(conn)
}

/// Runs `f`, which waits on PostgreSQL, where waiting is allowed: as is on a thread of its own
/// or a blocking one; on an async worker, after handing the worker's other tasks to another
/// thread (the `postgres` client drives its connection on a runtime of its own).
fn off_the_workers<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => Err(CoordError::Internal(
            "the PostgreSQL store was called on a single-threaded async runtime; call it from a blocking thread".into(),
        )),
        Ok(_) => tokio::task::block_in_place(f),
    }
}

fn answers_not(url: &str, e: &postgres::Error) -> CoordError {
    let why = std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source()).map(ToString::to_string).collect::<Vec<_>>();
    CoordError::Unavailable(format!("the store at {} does not answer: {}", db::postgres::redact(url), why.join(": ")))
}

fn unavailable(e: r2d2::Error) -> CoordError {
    CoordError::Unavailable(format!("no connection to the store: {e}"))
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests;
