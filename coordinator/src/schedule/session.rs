//! What the scheduler does with the messages of an agent's session. Every message carries the
//! session it came on: messages of a replaced session are ignored.

use std::sync::Arc;

use tokio::sync::Notify;

use anefleet_proto::{histogram, pb};

use super::{AgentTx, Connected, Scheduler};
use crate::error::Result;
use crate::store::now_ms;

impl Scheduler {
    /// Registers a session after its hello; returns its id and its kill switch. A previous
    /// session of the same agent is closed, and whatever it had in flight is lost.
    pub fn connect(&self, hello: pb::Hello, tx: AgentTx) -> Result<(u64, Arc<Notify>)> {
        self.store.upsert_agent(&hello)?;
        let kill = Arc::new(Notify::new());
        let (agent_id, name) = (hello.agent_id.clone(), hello.name.clone());
        let session = {
            let mut st = self.state()?;
            st.next_session += 1;
            let session = st.next_session;
            let now = now_ms();
            let old = st.agents.insert(
                agent_id.clone(),
                Connected { session, hello, tx, running: None, connected_since_ms: now, last_seen_ms: now, kill: kill.clone() },
            );
            if let Some(old) = old {
                old.kill.notify_one();
            }
            // A fresh session runs nothing: what the agent had in flight before is lost.
            for (cell, target, attempts) in self.store.cells_in_flight_on(&agent_id)? {
                self.lose_cell(&cell, &target, attempts, &name)?;
            }
            session
        };
        tracing::info!(agent = %name, id = %agent_id, session, "agent connected");
        self.bump();
        if let Err(e) = self.schedule() {
            tracing::error!(error = %e, "scheduling after a connect failed");
        }
        Ok((session, kill))
    }

    /// The session ended (stream closed, error, or silence).
    pub fn disconnect(&self, agent_id: &str, session: u64) -> Result<()> {
        {
            let mut st = self.state()?;
            if !Self::is_current(&st, agent_id, session) {
                return Ok(()); // replaced by a newer session
            }
            let name = st.agents.remove(agent_id).map(|c| c.hello.name).unwrap_or_default();
            tracing::warn!(agent = %name, "agent disconnected");
            for (cell, target, attempts) in self.store.cells_in_flight_on(agent_id)? {
                self.lose_cell(&cell, &target, attempts, &name)?;
            }
        }
        self.bump();
        self.schedule()
    }

    /// Ends an agent's session now (its credential was revoked); what it runs is handled as for
    /// any lost session.
    pub fn close_session(&self, agent_id: &str) -> Result<()> {
        if let Some(c) = self.state()?.agents.get(agent_id) {
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

    pub fn cell_started(&self, agent_id: &str, m: &pb::CellStarted) -> Result<()> {
        self.store.mark_running(&m.cell_id, agent_id, m.attempt)?;
        self.bump();
        Ok(())
    }

    /// An interval histogram of the cell this session runs; one for any other cell (another
    /// agent's, a finished one, an id never assigned) is dropped before it is decoded or stored.
    pub fn interval(&self, agent_id: &str, session: u64, m: &pb::IntervalHistogram) -> Result<()> {
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
        if !self.store.add_interval(m)? {
            tracing::warn!(agent = %agent_id, cell = %m.cell_id, "dropped an interval past the cell's limit");
            return Ok(());
        }
        self.state()?.progress.insert(m.cell_id.clone(), m.iterations_so_far);
        self.bump();
        Ok(())
    }

    /// A cell ended on its agent: free the agent, store the outcome, schedule more.
    pub fn cell_finished(&self, agent_id: &str, session: u64, m: pb::CellFinished) -> Result<()> {
        {
            let mut st = self.state()?;
            st.progress.remove(&m.cell_id);
            match st.agents.get_mut(agent_id) {
                Some(c) if c.session == session && c.running.as_deref() == Some(m.cell_id.as_str()) => c.running = None,
                _ => return Ok(()), // not this session's cell (a stale or duplicate report)
            }
        }
        let checked = anefleet_proto::receipt::check(&m);
        let outcome = match (&m.outcome, &checked) {
            (_, Err(e)) => Err(e.as_str()),
            (Some(pb::cell_finished::Outcome::Result(r)), Ok(())) => Ok(r),
            (Some(pb::cell_finished::Outcome::Error(e)), Ok(())) => Err(e.as_str()),
            (None, Ok(())) => Err("the agent reported no outcome"),
        };
        if let Some(run) = self.store.finish_cell(&m.cell_id, agent_id, m.attempt, outcome)? {
            self.store.refresh_run_state(&run)?;
            tracing::info!(cell = %m.cell_id, ok = outcome.is_ok(), "cell finished");
        }
        self.bump();
        self.schedule()
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
        let s = crate::schedule::Scheduler::new(store.clone(), std::time::Duration::from_secs(60), std::time::Duration::from_secs(30));
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
        s.interval("b", b, &iv("r-000")).expect("dropped, not refused");
        s.interval("a", a, &iv(&"x".repeat(5 << 20))).expect("dropped");
        s.interval("a", a + 100, &iv("r-000")).expect("another session's: dropped");
        assert_eq!(stored(), 0, "nothing stored for a cell the session does not run");
        s.interval("a", a, &iv("r-000")).expect("taken");
        assert_eq!(stored(), 1);
    }
}
