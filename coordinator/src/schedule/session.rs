//! What the scheduler does with the messages of an agent's session. Every message carries the
//! session it came on: messages of a replaced session are ignored.

use std::sync::Arc;

use tokio::sync::Notify;

use anefleet_proto::pb::coordinator_message::Body;
use anefleet_proto::{histogram, pb};

use super::{AgentTx, Connected, Scheduler};
use crate::error::Result;
use crate::store::{Finish, now_ms};

impl Scheduler {
    /// Registers a session after its hello; returns its id and its kill switch. A previous
    /// session of the same agent is closed. What the store holds in flight on the agent is taken
    /// up again when the hello says the agent still has it (running, or finished with the result
    /// in its outbox), and lost otherwise (the agent restarted without it).
    pub fn connect(&self, hello: pb::Hello, tx: AgentTx) -> Result<(u64, Arc<Notify>)> {
        self.store.upsert_agent(&hello)?;
        let kill = Arc::new(Notify::new());
        let (agent_id, name) = (hello.agent_id.clone(), hello.name.clone());
        let session = {
            let mut st = self.state()?;
            st.next_session += 1;
            let session = st.next_session;
            let now = now_ms();
            let (running, stale) = self.take_up(&hello, now)?;
            if let Some(cell) = stale {
                let msg = pb::CoordinatorMessage {
                    body: Some(Body::Cancel(pb::Cancel {
                        cell_id: cell,
                        reason: "the cell is over (it has its result, or its run was cancelled)".into(),
                    })),
                };
                let _ = tx.try_send(Ok(msg));
            }
            let old = st.agents.insert(
                agent_id.clone(),
                Connected { session, hello, tx, running, connected_since_ms: now, last_seen_ms: now, kill: kill.clone(), revoked: false },
            );
            if let Some(old) = old {
                old.kill.notify_one();
            }
            session
        };
        self.mark_online(&agent_id, true);
        tracing::info!(agent = %name, id = %agent_id, session, "agent connected");
        self.bump();
        if let Err(e) = self.schedule() {
            tracing::error!(error = %e, "scheduling after a connect failed");
        }
        Ok((session, kill))
    }

    /// Re-attaches what the agent still has, loses what it does not; returns the cell it is busy
    /// with, and a cell it still runs that is over. Called with the state lock held.
    fn take_up(&self, hello: &pb::Hello, now: u64) -> Result<(Option<String>, Option<String>)> {
        let has = |c: &pb::CellRef, cell: &str, attempt: u32| c.cell_id == cell && c.attempt == attempt;
        let running = hello.running.as_ref().filter(|r| !r.cell_id.is_empty());
        let mut busy = None;
        for c in self.store.cells_in_flight_on(&hello.agent_id)? {
            let still =
                running.is_some_and(|r| has(r, &c.cell_id, c.attempt)) || hello.finished.iter().any(|f| has(f, &c.cell_id, c.attempt));
            if still && self.store.reattach(&c.cell_id, &hello.agent_id, c.attempt, now)? {
                tracing::info!(cell = %c.cell_id, agent = %hello.name, attempt = c.attempt, "re-attached");
                busy = Some(c.cell_id);
            } else if !c.started {
                // Assigned, never started: the assignment was lost with the session (or the agent
                // restarted before it began). That attempt never happened.
                self.store.unassign(&c.cell_id)?;
                tracing::info!(cell = %c.cell_id, agent = %hello.name, "an assignment that never reached its agent goes back to the queue");
            } else {
                self.lose_cell(&c, &format!("agent {} came back without it", hello.name))?;
            }
        }
        // Cells the agent still has that are not in flight on it: their lease expired. One taken
        // back, or raced by a later attempt elsewhere (the first valid result wins), keeps the
        // agent busy until it reports; one that is over is cancelled on the agent.
        let mut stale = None;
        for r in running.into_iter().chain(&hello.finished) {
            if busy.as_deref() == Some(r.cell_id.as_str()) {
                continue;
            }
            if self.store.reattach(&r.cell_id, &hello.agent_id, r.attempt, now)? {
                tracing::info!(cell = %r.cell_id, agent = %hello.name, attempt = r.attempt, "re-attached after its lease expired");
                busy = Some(r.cell_id.clone());
            } else if self.store.is_open(&r.cell_id)? {
                busy = Some(r.cell_id.clone());
            } else if running.is_some_and(|x| x.cell_id == r.cell_id) {
                stale = Some(r.cell_id.clone());
                // An attempt it was really given keeps it busy until it reports the cancelled cell
                // (a new cell now would be declined); a claim of anything else changes nothing.
                if self.store.was_given(&r.cell_id, r.attempt, &hello.agent_id)? {
                    busy = Some(r.cell_id.clone());
                }
            }
        }
        Ok((busy, stale))
    }

    /// The session ended (the stream closed or broke, or silence): the agent's in-flight cells
    /// are leased to it for [`Scheduler::lease`]: it may well be measuring still (a stopping
    /// agent reports or declines what it holds before it closes). An agent whose credential was
    /// revoked cannot come back: what it holds is lost at once.
    pub fn disconnect(&self, agent_id: &str, session: u64) -> Result<()> {
        {
            let mut st = self.state()?;
            if !Self::is_current(&st, agent_id, session) {
                return Ok(()); // replaced by a newer session
            }
            let Some(gone) = st.agents.remove(agent_id) else { return Ok(()) };
            self.mark_online(agent_id, false);
            let name = gone.hello.name;
            if gone.revoked {
                for c in self.store.cells_in_flight_on(agent_id)? {
                    self.lose_cell(&c, &format!("agent {name}'s credential was revoked"))?;
                }
            } else {
                let now = now_ms();
                let leased = self.store.lease_in_flight(agent_id, now, now + self.lease.as_millis() as u64)?;
                tracing::warn!(agent = %name, cells = ?leased, lease_s = self.lease.as_secs(), "agent disconnected; its cells are leased to it");
            }
        }
        self.bump();
        self.schedule()
    }

    /// With a shared store: the agent's session is here now, or ended here. A failure is logged
    /// and does not fail the session: the other replicas then count the agent from the next
    /// connect (or a take-over) on.
    fn mark_online(&self, agent_id: &str, online: bool) {
        if let Some(r) = self.replica.get()
            && let Err(e) = self.store.agent_online(agent_id, &r.id, online)
        {
            tracing::error!(agent = %agent_id, online, error = %e, "the store could not record where the agent's session is");
        }
    }

    /// Ends an agent's session now (its credential was revoked): what it runs is re-queued.
    pub fn close_session(&self, agent_id: &str) -> Result<()> {
        if let Some(c) = self.state()?.agents.get_mut(agent_id) {
            c.revoked = true;
            c.kill.notify_one();
        }
        Ok(())
    }

    /// Any message from the agent proves it alive.
    pub fn seen(&self, agent_id: &str, session: u64) -> Result<bool> {
        let mut st = self.state()?;
        match st.agents.get_mut(agent_id) {
            Some(c) if c.session == session => {
                c.last_seen_ms = now_ms();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Tells the agent its outbox message `seq` is stored for good. Called after the commit.
    pub fn ack(&self, agent_id: &str, session: u64, ack: pb::Ack) -> Result<()> {
        let tx = {
            let st = self.state()?;
            match st.agents.get(agent_id) {
                Some(c) if c.session == session => c.tx.clone(),
                _ => return Ok(()),
            }
        };
        // Never waits on an agent that does not read: a lost ack costs a redelivery, which the
        // store takes as the same report.
        if tx.try_send(Ok(pb::CoordinatorMessage { body: Some(Body::Ack(ack)) })).is_err() {
            tracing::debug!(agent = %agent_id, "an acknowledgement was not sent (the session's queue is full or closed)");
        }
        Ok(())
    }

    pub fn cell_started(&self, agent_id: &str, m: &pb::CellStarted) -> Result<()> {
        self.store.mark_running(&m.cell_id, agent_id, m.attempt)?;
        self.bump();
        Ok(())
    }

    /// An interval histogram of the cell this session runs, from an attempt it was given; one
    /// for any other cell (another agent's, a finished one, an id never assigned) is dropped
    /// before it is decoded or stored, and a replayed one (same outbox `seq`) is kept once.
    pub fn interval(&self, agent_id: &str, session: u64, m: &pb::IntervalHistogram, seq: u64) -> Result<()> {
        {
            let st = self.state()?;
            let own = st.agents.get(agent_id).is_some_and(|c| c.session == session && c.running.as_deref() == Some(m.cell_id.as_str()));
            if !own {
                tracing::warn!(agent = %agent_id, "dropped an interval for a cell this session does not run");
                return Ok(());
            }
        }
        histogram::decode(&m.latency)
            .map_err(|e| crate::error::CoordError::InvalidArgument(format!("interval of cell {}: {e}", m.cell_id)))?;
        if !self.store.add_interval(m, agent_id, seq)? {
            tracing::debug!(agent = %agent_id, cell = %m.cell_id, seq, "interval not kept (a replay, past the cell's limit, or not this agent's attempt)");
            return Ok(());
        }
        self.state()?.progress.insert(m.cell_id.clone(), m.iterations_so_far);
        self.bump();
        Ok(())
    }

    /// A cell ended on its agent: free the agent, decide the report (see
    /// [`crate::store::Finish`]), schedule more.
    pub fn cell_finished(&self, agent_id: &str, session: u64, m: pb::CellFinished) -> Result<()> {
        if !Self::is_current(&*self.state()?, agent_id, session) {
            return Ok(()); // a replaced session's
        }
        if m.declined {
            return self.declined(agent_id, session, &m);
        }
        let checked = anefleet_proto::receipt::check(&m);
        let outcome = match (&m.outcome, &checked) {
            (_, Err(e)) => Err(e.as_str()),
            (Some(pb::cell_finished::Outcome::Result(r)), Ok(())) => Ok(r),
            (Some(pb::cell_finished::Outcome::Error(e)), Ok(())) => Err(e.as_str()),
            (None, Ok(())) => Err("the agent reported no outcome"),
        };
        let finish = self.store.finish_cell(&m.cell_id, agent_id, m.attempt, outcome)?;
        // Stored (or decided): only now is the agent free; a failed store leaves it busy, and
        // the report unacknowledged, to be delivered again.
        {
            let mut st = self.state()?;
            st.progress.remove(&m.cell_id);
            if let Some(c) = st.agents.get_mut(agent_id)
                && c.session == session
                && c.running.as_deref() == Some(m.cell_id.as_str())
            {
                c.running = None;
            }
        }
        match finish {
            Finish::Stored { run_id } => {
                self.store.refresh_run_state(&run_id)?;
                tracing::info!(cell = %m.cell_id, ok = outcome.is_ok(), "cell finished");
            }
            Finish::Won { run_id, superseded } => {
                self.store.refresh_run_state(&run_id)?;
                tracing::warn!(cell = %m.cell_id, attempt = m.attempt, "a re-queued cell's first attempt reported first: its result is kept");
                if let Some(agent) = superseded {
                    self.cancel_on(&agent, &m.cell_id, "an earlier attempt of this cell reported its result first");
                }
            }
            Finish::Duplicate => {
                tracing::warn!(cell = %m.cell_id, attempt = m.attempt, agent = %agent_id, "a second result for the cell: kept aside as a duplicate")
            }
            Finish::Again | Finish::Ignored => {}
        }
        self.bump();
        self.schedule()
    }

    /// The agent did not start the cell it was given (it is stopping): that attempt never
    /// happened, and the cell goes back to the queue.
    fn declined(&self, agent_id: &str, session: u64, m: &pb::CellFinished) -> Result<()> {
        if self.store.decline(&m.cell_id, agent_id, m.attempt)? {
            tracing::info!(cell = %m.cell_id, agent = %agent_id, "declined by its agent; back in the queue");
        }
        {
            let mut st = self.state()?;
            if let Some(c) = st.agents.get_mut(agent_id)
                && c.session == session
                && c.running.as_deref() == Some(m.cell_id.as_str())
            {
                c.running = None;
            }
        }
        self.bump();
        Ok(())
    }

    /// Asks `agent_id`'s session, if it has one, to stop running `cell_id`.
    pub(super) fn cancel_on(&self, agent_id: &str, cell_id: &str, reason: &str) {
        if let Ok(st) = self.state()
            && let Some(c) = st.agents.get(agent_id)
        {
            let msg = pb::CoordinatorMessage { body: Some(Body::Cancel(pb::Cancel { cell_id: cell_id.into(), reason: reason.into() })) };
            let _ = c.tx.try_send(Ok(msg));
        }
    }
}

#[cfg(test)]
mod tests {
    use anefleet_proto::histogram;
    use anefleet_proto::pb;

    /// A scheduler over a fresh store holding one pending candle:cpu cell, `r-000`.
    fn scheduler_with_a_cell() -> (tempfile::TempDir, std::sync::Arc<crate::store::Store>, std::sync::Arc<crate::schedule::Scheduler>) {
        use crate::store::{NewCell, NewRun, Store};
        let d = tempfile::tempdir().expect("tempdir");
        let store = std::sync::Arc::new(Store::open(&d.path().join("t.db")).expect("store"));
        let run = NewRun {
            id: "r".into(),
            name: "n".into(),
            spec_toml: "x".into(),
            spec_path: "s.toml".into(),
            skipped: vec![],
            submitted_by: "alice".into(),
        };
        let spec = pb::CellSpec { model: "m".into(), backend: "candle".into(), unit: "cpu".into(), ..Default::default() };
        let cell = NewCell {
            id: "r-000".into(),
            seq: 0,
            target: "any".into(),
            spec,
            baseline_unit: "candle:cpu".into(),
            benchmark_index: 0,
            reference_variant: String::new(),
            min_agreement: 1.0,
        };
        store.insert_run(&run, &[cell]).expect("run");
        let secs = std::time::Duration::from_secs;
        let t = crate::schedule::Timeouts { agent_grace: secs(60), heartbeat: secs(30), lease: secs(600) };
        let s = crate::schedule::Scheduler::new(store.clone(), t);
        (d, store, s)
    }

    fn hello(id: &str) -> pb::Hello {
        let units = vec![pb::ComputeUnit { backend: "candle".into(), unit: "cpu".into() }];
        pb::Hello { agent_id: id.into(), name: id.into(), units, ..Default::default() }
    }

    #[test]
    fn intervals_are_taken_only_for_the_cell_the_session_runs() {
        let (_d, store, s) = scheduler_with_a_cell();
        let (tx_a, _rx_a) = tokio::sync::mpsc::channel(16);
        let (a, _) = s.connect(hello("a"), tx_a).expect("a connects and gets r-000");
        let (tx_b, _rx_b) = tokio::sync::mpsc::channel(16);
        let (b, _) = s.connect(hello("b"), tx_b).expect("b connects, idle");
        let mut h = histogram::new_latency();
        histogram::record(&mut h, 1_000);
        let iv = |cell: &str| pb::IntervalHistogram {
            cell_id: cell.into(),
            attempt: 1,
            latency: histogram::encode(&h).expect("encode"),
            ..Default::default()
        };
        let stored = || store.cells_of("r", false).expect("cells")[0].intervals;
        s.interval("b", b, &iv("r-000"), 1).expect("dropped, not refused");
        s.interval("a", a, &iv(&"x".repeat(5 << 20)), 1).expect("dropped");
        s.interval("a", a + 100, &iv("r-000"), 1).expect("another session's: dropped");
        assert_eq!(stored(), 0, "nothing stored for a cell the session does not run");
        s.interval("a", a, &iv("r-000"), 1).expect("taken");
        s.interval("a", a, &iv("r-000"), 1).expect("a replay: taken once");
        assert_eq!(stored(), 1);
        s.interval("a", a, &iv("r-000"), 2).expect("the next one");
        assert_eq!(stored(), 2);
    }

    fn assignments(
        rx: &mut tokio::sync::mpsc::Receiver<Result<pb::CoordinatorMessage, tonic::Status>>,
    ) -> Vec<pb::coordinator_message::Body> {
        std::iter::from_fn(|| rx.try_recv().ok()).filter_map(|m| m.ok()?.body).collect()
    }

    fn finished(cell: &str, attempt: u32) -> pb::CellFinished {
        let mut h = histogram::new_latency();
        histogram::record(&mut h, 1_000);
        let bytes = histogram::encode(&h).expect("encode");
        let r = pb::CellResult { latency: bytes.clone(), ttft: bytes.clone(), decode_token: bytes, ..Default::default() };
        pb::CellFinished {
            cell_id: cell.into(),
            attempt,
            outcome: Some(pb::cell_finished::Outcome::Result(r)),
            cancelled: false,
            declined: false,
        }
    }

    #[test]
    fn a_broken_session_keeps_its_cell_for_the_lease_then_the_first_result_of_two_attempts_wins() {
        use pb::coordinator_message::Body;
        let (_d, store, s) = scheduler_with_a_cell();
        let cell = || store.cells_of("r", false).expect("cells").remove(0);
        let (tx_a, _rx_a) = tokio::sync::mpsc::channel(16);
        let (a, _) = s.connect(hello("a"), tx_a).expect("a gets r-000");
        s.disconnect("a", a).expect("a's session breaks");
        let (tx_b, mut rx_b) = tokio::sync::mpsc::channel(16);
        let (b, _) = s.connect(hello("b"), tx_b).expect("b connects");
        let away = crate::store::now_ms();
        s.reap_at(away + 590_000).expect("reap");
        s.schedule().expect("schedule");
        assert!(!assignments(&mut rx_b).iter().any(|m| matches!(m, Body::Assign(_))), "held for a while its lease runs");
        assert_eq!((cell().state.as_str(), cell().attempts, cell().interruptions), ("assigned", 1, 1));
        s.reap_at(away + 601_000).expect("reap");
        s.schedule().expect("schedule");
        let sent = assignments(&mut rx_b);
        assert!(sent.iter().any(|m| matches!(m, Body::Assign(x) if x.cell_id == "r-000" && x.attempt == 2)), "{sent:?}");
        // `a` comes back still measuring attempt 1: it races b, and its result, first, wins.
        let mut back = hello("a");
        back.running = Some(pb::CellRef { cell_id: "r-000".into(), attempt: 1 });
        let (tx_a, _rx_a) = tokio::sync::mpsc::channel(16);
        let (a, _) = s.connect(back, tx_a).expect("a is back");
        s.cell_finished("a", a, finished("r-000", 1)).expect("a reports");
        let sent = assignments(&mut rx_b);
        assert!(sent.iter().any(|m| matches!(m, Body::Cancel(c) if c.cell_id == "r-000")), "b is told to stop: {sent:?}");
        s.cell_finished("b", b, finished("r-000", 2)).expect("b reports too");
        let c = cell();
        assert_eq!((c.state.as_str(), c.agent_id.as_str(), c.result_attempt, c.duplicates), ("done", "a", 1, 1));
    }

    #[test]
    fn an_agent_back_without_its_cell_loses_it_at_once_and_one_back_with_it_takes_it_up() {
        let (_d, store, s) = scheduler_with_a_cell();
        let cell = || store.cells_of("r", false).expect("cells").remove(0);
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let (a, _) = s.connect(hello("a"), tx).expect("a gets r-000");
        s.disconnect("a", a).expect("a's session breaks before the assignment arrives");
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let (a, _) = s.connect(hello("a"), tx).expect("a is back without it");
        assert_eq!((cell().state.as_str(), cell().attempts), ("assigned", 1), "an assignment never started does not count");
        s.cell_started("a", &pb::CellStarted { cell_id: "r-000".into(), attempt: 1, load_ms: 1.0 }).expect("started");
        s.disconnect("a", a).expect("breaks while it runs");
        let mut back = hello("a");
        back.finished = vec![pb::CellRef { cell_id: "r-000".into(), attempt: 1 }];
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let (a, _) = s.connect(back, tx).expect("a is back with its result in the outbox");
        assert_eq!((cell().state.as_str(), cell().attempts), ("running", 1), "re-attached: its result is on the way");
        s.disconnect("a", a).expect("breaks again");
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        s.connect(hello("a"), tx).expect("a restarted: it holds nothing");
        // A started attempt is lost, re-queued, and (a being idle) given to a again as attempt 2.
        assert_eq!(cell().attempts, 2, "{:?}", cell());
    }

    #[test]
    fn an_agent_back_with_a_cell_that_is_over_is_cancelled_there_and_given_nothing_until_it_says_so() {
        use pb::coordinator_message::Body;
        let (_d, store, s) = scheduler_with_a_cell();
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let (a, _) = s.connect(hello("a"), tx).expect("a gets r-000");
        s.cell_finished("a", a, finished("r-000", 1)).expect("r-000 done");
        let next = crate::store::NewCell {
            id: "q-000".into(),
            seq: 0,
            target: "any".into(),
            spec: pb::CellSpec { model: "m".into(), backend: "candle".into(), unit: "cpu".into(), ..Default::default() },
            baseline_unit: "candle:cpu".into(),
            benchmark_index: 0,
            reference_variant: String::new(),
            min_agreement: 1.0,
        };
        let run = crate::store::NewRun {
            id: "q".into(),
            name: "n".into(),
            spec_toml: "x".into(),
            spec_path: "s".into(),
            skipped: vec![],
            submitted_by: "b".into(),
        };
        store.insert_run(&run, &[next]).expect("run q");
        // The agent comes back still running r-000 (its done report's ack was lost, say).
        let mut back = hello("a");
        back.running = Some(pb::CellRef { cell_id: "r-000".into(), attempt: 1 });
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let (a, _) = s.connect(back, tx).expect("a is back");
        let sent = assignments(&mut rx);
        assert!(sent.iter().any(|m| matches!(m, Body::Cancel(c) if c.cell_id == "r-000")), "{sent:?}");
        assert!(!sent.iter().any(|m| matches!(m, Body::Assign(_))), "nothing new before it stops r-000: {sent:?}");
        let cancelled = pb::CellFinished {
            cell_id: "r-000".into(),
            attempt: 1,
            outcome: Some(pb::cell_finished::Outcome::Error("cancelled: over".into())),
            cancelled: true,
            declined: false,
        };
        s.cell_finished("a", a, cancelled).expect("it says so");
        assert!(assignments(&mut rx).iter().any(|m| matches!(m, Body::Assign(x) if x.cell_id == "q-000")));
        assert_eq!(store.cells_of("r", false).expect("cells")[0].state, "done", "the late cancel changes nothing");
    }
}
