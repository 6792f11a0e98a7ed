//! Replicas tell each other that something changed, through PostgreSQL's LISTEN/NOTIFY on the
//! channel `anefleet`: a run submitted, a cell assigned or finished anywhere wakes every
//! replica's scheduler (its idle agents may take the cell) and live views (run pages,
//! `submit --wait`, `/metrics`). A notification carries the sending replica's id, so a replica
//! skips its own. Changes are coalesced: at most one NOTIFY per [`COALESCE`].

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::db::postgres::{Manager, Pool};

/// The channel every replica listens on.
const CHANNEL: &str = "anefleet";
/// One NOTIFY carries every change made within this time.
pub const COALESCE: Duration = Duration::from_millis(100);

/// Changes waiting to be told, and the thread that tells them.
#[derive(Default)]
pub struct Notifier {
    dirty: Mutex<bool>,
    ring: Condvar,
}

impl Notifier {
    /// Something changed here: the other replicas will hear of it.
    pub fn changed(&self) {
        if let Ok(mut d) = self.dirty.lock() {
            *d = true;
            self.ring.notify_one();
        }
    }

    /// Sends the coalesced notifications for replica `me`, on a thread of its own, for as long as
    /// the process lives.
    pub fn start(self: &Arc<Self>, pool: Pool, me: String) {
        let n = self.clone();
        let spawned = std::thread::Builder::new().name("store-notify".into()).spawn(move || {
            loop {
                if !n.wait() {
                    return;
                }
                let sent = pool
                    .get()
                    .map_err(|e| e.to_string())
                    .and_then(|mut c| c.client.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &me]).map_err(|e| e.to_string()));
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "the other replicas could not be told of a change");
                }
                std::thread::sleep(COALESCE);
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the store's notifying thread did not start: other replicas learn of changes on their next pass");
        }
    }

    /// Blocks until something changed; false when the lock is poisoned.
    fn wait(&self) -> bool {
        let Ok(mut d) = self.dirty.lock() else { return false };
        while !*d {
            d = match self.ring.wait(d) {
                Ok(d) => d,
                Err(_) => return false,
            };
        }
        *d = false;
        true
    }
}

/// Listens for the other replicas' changes on a connection of its own (reconnecting after a
/// failure, with a growing pause); runs `on_change` for each notification not from `me`.
pub fn listen(manager: Manager, me: String, on_change: impl Fn() + Send + 'static) {
    let spawned = std::thread::Builder::new().name("store-listen".into()).spawn(move || {
        let mut pause = Duration::from_millis(200);
        loop {
            match listen_once(&manager, &me, &on_change) {
                Ok(()) => pause = Duration::from_millis(200),
                Err(e) => tracing::warn!(error = %e, retry_ms = pause.as_millis() as u64, "listening for other replicas' changes failed"),
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(10));
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "the store's listening thread did not start: changes elsewhere are seen on the next pass");
    }
}

fn listen_once(manager: &Manager, me: &str, on_change: &impl Fn()) -> Result<(), postgres::Error> {
    let mut client = manager.connect_client()?;
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    // A change may have been missed while not listening.
    on_change();
    let mut notifications = client.notifications();
    let mut it = notifications.blocking_iter();
    while let Some(n) = it.next()? {
        if n.payload() != me {
            on_change();
        }
    }
    Ok(())
}
