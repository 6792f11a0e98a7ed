//! What the scheduler does with the messages of an agent's session.

use std::sync::Arc;

use tokio::sync::Notify;

use anefleet_proto::pb;

use super::{AgentTx, Connected, Scheduler};
use crate::error::Result;
use crate::store::now_ms;

impl Scheduler {
    /// Registers a session after its hello; returns its id and its kill switch. A previous
    /// session of the same agent is closed, and whatever it had in flight is lost.
    pub fn connect(&self, hello: pb::Hello, tx: AgentTx) -> Result<(u64, Arc<Notify>)> {
        self.store.upsert_agent(&hello)?;
        let kill = Arc::new(Notify::new());
        let agent_id = hello.agent_id.clone();
        let name = hello.name.clone();
        let session = {
            let mut st = self.state()?;
            st.next_session += 1;
            let session = st.next_session;
            let now = now_ms();
            let old = st.agents.insert(agent_id.clone(), Connected { session, hello, tx, running: None, connected_since_ms: now, last_seen_ms: now, kill: kill.clone() });
            if let Some(old) = old {
                old.kill.notify_one();
            }
            session
        };
        // A fresh session runs nothing: what the agent had in flight before is lost.
        for (cell, target, attempts) in self.store.cells_in_flight_on(&agent_id)? {
            self.lose_cell(&cell, &target, attempts, &name)?;
        }
        tracing::info!(agent = %name, id = %agent_id, session, "agent connected");
        self.bump();
        self.schedule()?;
        Ok((session, kill))
    }

    /// The session ended (stream closed, error, or silence).
    pub fn disconnect(&self, agent_id: &str, session: u64) -> Result<()> {
        let name = {
            let mut st = self.state()?;
            match st.agents.get(agent_id) {
                Some(c) if c.session == session => {}
                _ => return Ok(()), // replaced by a newer session
            }
            let c = st.agents.remove(agent_id);
            c.map(|c| c.hello.name).unwrap_or_default()
        };
        tracing::warn!(agent = %name, "agent disconnected");
        for (cell, target, attempts) in self.store.cells_in_flight_on(agent_id)? {
            self.lose_cell(&cell, &target, attempts, &name)?;
        }
        self.bump();
        self.schedule()
    }

    /// Any message from the agent proves it alive.
    pub fn seen(&self, agent_id: &str) -> Result<()> {
        if let Some(c) = self.state()?.agents.get_mut(agent_id) {
            c.last_seen_ms = now_ms();
        }
        Ok(())
    }

    pub fn cell_started(&self, agent_id: &str, m: &pb::CellStarted) -> Result<()> {
        self.store.mark_running(&m.cell_id, agent_id)?;
        self.bump();
        Ok(())
    }

    pub fn interval(&self, m: &pb::IntervalHistogram) -> Result<()> {
        self.store.add_interval(m)?;
        self.state()?.progress.insert(m.cell_id.clone(), m.iterations_so_far);
        self.bump();
        Ok(())
    }

    /// A cell ended on its agent: store the outcome, free the agent, schedule more.
    pub fn cell_finished(&self, agent_id: &str, m: pb::CellFinished) -> Result<()> {
        let outcome = match &m.outcome {
            Some(pb::cell_finished::Outcome::Result(r)) => Ok(r),
            Some(pb::cell_finished::Outcome::Error(e)) => Err(e.as_str()),
            None => Err("the agent reported no outcome"),
        };
        if let Some(run) = self.store.finish_cell(&m.cell_id, agent_id, outcome)? {
            self.store.refresh_run_state(&run)?;
            tracing::info!(cell = %m.cell_id, ok = outcome.is_ok(), "cell finished");
        }
        {
            let mut st = self.state()?;
            st.progress.remove(&m.cell_id);
            if let Some(c) = st.agents.get_mut(agent_id) {
                if c.running.as_deref() == Some(m.cell_id.as_str()) {
                    c.running = None;
                }
            }
        }
        self.bump();
        self.schedule()
    }
}
