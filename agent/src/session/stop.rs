//! Stopping `agent run` in order: the first SIGTERM (or ctrl-c) lets the running cell finish and
//! be reported before the agent exits; a second one cancels the cell, reports it cancelled and
//! exits; a third exits at once.

use tokio::sync::watch;

/// How far the agent has been asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopLevel {
    /// Keep serving.
    Run,
    /// Take no new cell, finish the running one, report it, exit.
    Drain,
    /// Cancel the running cell, report it cancelled, exit.
    Cancel,
}

impl StopLevel {
    fn next(self) -> StopLevel {
        match self {
            StopLevel::Run => StopLevel::Drain,
            StopLevel::Drain | StopLevel::Cancel => StopLevel::Cancel,
        }
    }
}

/// The asking side: each call asks for the next level.
pub struct StopSender(watch::Sender<StopLevel>);

impl StopSender {
    /// Raises the level by one step; returns the new level.
    pub fn escalate(&self) -> StopLevel {
        let mut now = StopLevel::Run;
        self.0.send_modify(|l| {
            *l = l.next();
            now = *l;
        });
        now
    }
}

/// The listening side, held by the session.
#[derive(Clone)]
pub struct Stop(watch::Receiver<StopLevel>);

impl Stop {
    pub fn level(&self) -> StopLevel {
        *self.0.borrow()
    }

    /// Waits for the level to change; never returns once the sending side is gone.
    pub async fn changed(&mut self) -> StopLevel {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        *self.0.borrow_and_update()
    }
}

pub fn channel() -> (StopSender, Stop) {
    let (tx, rx) = watch::channel(StopLevel::Run);
    (StopSender(tx), Stop(rx))
}

/// Turns SIGTERM and SIGINT into stop levels, on a task of its own (call inside the runtime).
pub fn on_signals() -> std::io::Result<Stop> {
    let (tx, stop) = channel();
    let mut signals = Signals::new()?;
    tokio::spawn(async move {
        for count in 1u32.. {
            let name = signals.next().await;
            match (count, tx.escalate()) {
                (3.., _) => {
                    tracing::error!(signal = name, "stopping now");
                    std::process::exit(1);
                }
                (_, StopLevel::Drain) => {
                    tracing::warn!(signal = name, "stopping: no new cells; the running cell finishes first (signal again to cancel it)")
                }
                (_, StopLevel::Cancel) => tracing::warn!(signal = name, "stopping: cancelling the running cell"),
                (_, StopLevel::Run) => {}
            }
        }
    });
    Ok(stop)
}

/// SIGTERM and SIGINT as one stream (ctrl-c where there is no SIGTERM).
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    /// Waits for the next signal; returns its name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_signal_asks_for_more_and_listeners_see_it() {
        let (tx, mut stop) = channel();
        assert_eq!(stop.level(), StopLevel::Run);
        assert_eq!(tx.escalate(), StopLevel::Drain);
        assert_eq!(stop.changed().await, StopLevel::Drain);
        assert_eq!(tx.escalate(), StopLevel::Cancel);
        assert_eq!(tx.escalate(), StopLevel::Cancel);
        assert_eq!(stop.changed().await, StopLevel::Cancel);
    }
}
