//! Group commit. With `synchronous=FULL` every SQLite commit waits for the disk (an fsync of the
//! WAL), and a thousand agents each reporting once a second would queue a thousand fsyncs a
//! second behind one lock. Instead every statement joins one open transaction (the store's
//! operations are savepoints inside it), and one thread commits it — one fsync for everything
//! written since the last commit — as soon as someone waits for durability, or [`IDLE_COMMIT`]
//! after the first write nobody waits for (an assignment, a heartbeat's bookkeeping).
//!
//! Whoever tells a peer that something is stored waits for it first: an agent's acknowledgement
//! ([`super::Store::durable`]), and every gRPC and HTTP response (`serve::durable_responses`), so
//! nothing is acknowledged or answered before it is on disk, as with one commit per write. A
//! write is counted when it takes the connection; a commit covers every write counted before it.
//!
//! A commit that fails (a full disk) rolls its transaction back: the writes it held are lost,
//! their waiters get the error (agents keep those reports and send them again), and the next
//! writes start a new transaction.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::watch;

use crate::error::{CoordError, Result};

/// How long a write nobody waits for stays uncommitted at most.
pub const IDLE_COMMIT: Duration = Duration::from_millis(50);

/// Failed commits remembered, so that a waiter woken late still learns its write was lost.
const FAILURES_KEPT: usize = 64;

/// What the committing thread has done: writes up to `upto` are settled, and those in the
/// ranges of `lost` (first, last) were rolled back.
#[derive(Debug, Clone, Default)]
pub struct Settled {
    upto: u64,
    lost: VecDeque<(u64, u64, String)>,
}

impl Settled {
    fn outcome(&self, write: u64) -> Option<Result<()>> {
        if self.upto < write {
            return None;
        }
        let forgotten = self.lost.len() == FAILURES_KEPT && self.lost.front().is_some_and(|(first, _, _)| write < *first);
        match self.lost.iter().find(|(first, last, _)| (*first..=*last).contains(&write)) {
            Some((_, _, why)) => Some(Err(CoordError::Internal(format!("the store could not commit: {why}")))),
            None if forgotten => Some(Err(CoordError::Internal("the store could not commit".into()))),
            None => Some(Ok(())),
        }
    }
}

/// The connection, its open transaction and the committing thread's signals.
pub(super) struct Shared {
    conn: Mutex<Connection>,
    /// Writes counted so far (each connection taken counts as one).
    written: AtomicU64,
    wake: Mutex<Wake>,
    ring: Condvar,
    settled: watch::Sender<Settled>,
    /// Commits that wrote something.
    commits: AtomicU64,
}

#[derive(Default)]
struct Wake {
    /// The highest write someone waits for.
    wanted: u64,
    /// When the open transaction began (None: none is open).
    open_since: Option<Instant>,
    stop: bool,
}

/// The connection, inside the open transaction (begun when it was taken, if none was open).
pub struct Conn<'a>(MutexGuard<'a, Connection>);

impl Deref for Conn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0
    }
}

impl Shared {
    pub(super) fn new(conn: Connection) -> Arc<Shared> {
        Arc::new(Shared {
            conn: Mutex::new(conn),
            written: AtomicU64::new(0),
            wake: Mutex::new(Wake::default()),
            ring: Condvar::new(),
            settled: watch::channel(Settled::default()).0,
            commits: AtomicU64::new(0),
        })
    }

    /// The connection inside the open transaction; counts one write.
    pub(super) fn conn(&self) -> Result<Conn<'_>> {
        let guard = self.conn.lock().map_err(|_| CoordError::Internal("store lock poisoned".into()))?;
        if guard.is_autocommit() {
            guard.execute_batch("BEGIN")?;
            let mut w = self.wake()?;
            w.open_since = Some(Instant::now());
            self.ring.notify_all();
        }
        self.written.fetch_add(1, Ordering::SeqCst);
        Ok(Conn(guard))
    }

    fn wake(&self) -> Result<MutexGuard<'_, Wake>> {
        self.wake.lock().map_err(|_| CoordError::Internal("store lock poisoned".into()))
    }

    /// The count of writes so far: waiting for it covers every write made before this call.
    pub(super) fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Asks for a commit covering `write`; `None` when it is settled already.
    fn want(&self, write: u64) -> Result<Option<watch::Receiver<Settled>>> {
        let rx = self.settled.subscribe();
        if let Some(outcome) = rx.borrow().outcome(write) {
            return outcome.map(|()| None);
        }
        let mut w = self.wake()?;
        if w.stop {
            // No committing thread any more: commit here.
            drop(w);
            self.commit();
            return self.settled.borrow().outcome(write).unwrap_or(Ok(())).map(|()| None);
        }
        w.wanted = w.wanted.max(write);
        self.ring.notify_all();
        Ok(Some(rx))
    }

    /// Waits until `write` is committed (or its commit failed).
    pub(super) async fn durable(&self, write: u64) -> Result<()> {
        let Some(mut rx) = self.want(write)? else { return Ok(()) };
        let settled = rx.wait_for(|s| s.upto >= write).await.map_err(|_| CoordError::Internal("the store is closed".into()))?;
        settled.outcome(write).unwrap_or(Ok(()))
    }

    /// [`Shared::durable`] for threads outside the async runtime.
    #[cfg(test)]
    fn durable_blocking(&self, write: u64) -> Result<()> {
        futures::executor::block_on(self.durable(write))
    }

    /// The committing thread's loop: commits when someone waits, or [`IDLE_COMMIT`] after the
    /// transaction began; on stop, commits what is open and returns.
    pub(super) fn committer(self: Arc<Self>) {
        loop {
            let stop = match self.wait_for_work() {
                Ok(stop) => stop,
                Err(_) => return,
            };
            self.commit();
            if stop {
                return;
            }
        }
    }

    /// Blocks until a commit is due; true when the store is closing.
    fn wait_for_work(&self) -> Result<bool> {
        let mut w = self.wake()?;
        loop {
            if w.stop {
                return Ok(true);
            }
            let settled = self.settled.borrow().upto;
            let due = match w.open_since {
                Some(_) if w.wanted > settled => Duration::ZERO,
                Some(since) => IDLE_COMMIT.saturating_sub(since.elapsed()),
                None if w.wanted > settled => Duration::ZERO, // settled by the commit below
                None => Duration::from_secs(3600),
            };
            if due.is_zero() {
                return Ok(false);
            }
            w = self.ring.wait_timeout(w, due).map_err(|_| CoordError::Internal("store lock poisoned".into()))?.0;
        }
    }

    /// Commits the open transaction, if any, and settles every write counted before it.
    pub(super) fn commit(&self) {
        let Ok(conn) = self.conn.lock() else { return };
        let upto = self.written.load(Ordering::SeqCst);
        let failed = if conn.is_autocommit() {
            None
        } else {
            match conn.execute_batch("COMMIT") {
                Ok(()) => {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(e) => {
                    tracing::error!(error = %e, "the store could not commit; the writes since the last commit are rolled back");
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    Some(e.to_string())
                }
            }
        };
        if let Ok(mut w) = self.wake() {
            w.open_since = None;
        }
        drop(conn);
        self.settled.send_modify(|s| {
            if let Some(why) = failed {
                if s.lost.len() == FAILURES_KEPT {
                    s.lost.pop_front();
                }
                s.lost.push_back((s.upto + 1, upto, why));
            }
            s.upto = s.upto.max(upto);
        });
    }

    /// Commits made, and the writes settled by them.
    pub(super) fn counts(&self) -> (u64, u64) {
        (self.commits.load(Ordering::Relaxed), self.settled.borrow().upto)
    }

    /// Ends the committing thread after a last commit.
    pub(super) fn stop(&self) {
        if let Ok(mut w) = self.wake() {
            w.stop = true;
            self.ring.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> (tempfile::TempDir, Arc<Shared>, std::thread::JoinHandle<()>) {
        let d = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(d.path().join("t.db")).expect("open");
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (v INTEGER)").expect("schema");
        let s = Shared::new(conn);
        let c = s.clone();
        let t = std::thread::spawn(move || c.committer());
        (d, s, t)
    }

    fn rows_seen_by_another_connection(d: &tempfile::TempDir) -> i64 {
        let other = Connection::open(d.path().join("t.db")).expect("open");
        other.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).expect("count")
    }

    #[test]
    fn a_write_is_on_disk_once_durable_returns_and_one_commit_takes_many_writes() {
        let (d, s, t) = shared();
        for v in 0..100 {
            s.conn().expect("conn").execute("INSERT INTO t VALUES (?1)", [v]).expect("insert");
        }
        let w = s.written();
        assert_eq!(w, 100);
        s.durable_blocking(w).expect("durable");
        assert_eq!(rows_seen_by_another_connection(&d), 100, "committed, so another connection sees them");
        assert!(s.conn.lock().expect("lock").is_autocommit(), "no transaction left open");
        let (commits, settled) = s.counts();
        assert!((1..10).contains(&commits), "100 writes in a few commits, not one each: {commits}");
        assert_eq!(settled, 100);
        s.stop();
        t.join().expect("committer");
    }

    #[test]
    fn a_write_nobody_waits_for_is_committed_soon_and_stop_commits_what_is_open() {
        let (d, s, t) = shared();
        s.conn().expect("conn").execute("INSERT INTO t VALUES (1)", []).expect("insert");
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.settled.borrow().upto < 1 {
            assert!(Instant::now() < deadline, "the idle commit never came");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(rows_seen_by_another_connection(&d), 1);
        s.conn().expect("conn").execute("INSERT INTO t VALUES (2)", []).expect("insert");
        s.stop();
        t.join().expect("committer");
        assert_eq!(rows_seen_by_another_connection(&d), 2, "the last commit on stop");
    }

    #[test]
    fn a_failed_commit_fails_its_own_writes_only() {
        let mut settled = Settled::default();
        settled.lost.push_back((3, 5, "disk full".into()));
        settled.upto = 8;
        assert!(matches!(settled.outcome(2), Some(Ok(()))));
        assert!(matches!(settled.outcome(4), Some(Err(_))));
        assert!(matches!(settled.outcome(6), Some(Ok(()))));
        assert!(settled.outcome(9).is_none(), "not settled yet");
    }
}
