//! The scheduler: which connected agent runs which pending cell.
//!
//! One cell at a time per agent (benchmarks never share a device); a cell goes only to an agent
//! that has its backend:unit and matches its target; cells run in parallel across agents. An
//! agent that goes away mid-cell keeps its cell under a lease ([`Scheduler::lease`]): it goes on
//! measuring, and takes the cell up again when it returns. Only an expired lease loses the
//! attempt: cells bound to the agent wait a bounded time for it, other cells return to the
//! queue, at most [`MAX_ATTEMPTS`] attempts in all.

pub mod matrix;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tonic::Status;

use anefleet_proto::pb::{self, coordinator_message::Body};

use crate::error::{CoordError, Result};
use crate::store::{PendingCell, Store, now_ms};
pub use matrix::AgentView;

/// Attempts a cell gets before it fails.
pub const MAX_ATTEMPTS: u32 = 3;

pub type AgentTx = mpsc::Sender<std::result::Result<pb::CoordinatorMessage, Status>>;

/// A connected agent's session.
struct Connected {
    session: u64,
    hello: pb::Hello,
    tx: AgentTx,
    running: Option<String>,
    connected_since_ms: u64,
    last_seen_ms: u64,
    kill: Arc<Notify>,
    /// Its credential was revoked: it will not be back for what it runs.
    revoked: bool,
}

impl Connected {
    fn view(&self) -> AgentView {
        AgentView {
            id: self.hello.agent_id.clone(),
            name: self.hello.name.clone(),
            tags: self.hello.tags.clone(),
            units: self.hello.units.iter().map(|u| format!("{}:{}", u.backend, u.unit)).collect(),
        }
    }
}

#[derive(Default)]
struct State {
    agents: HashMap<String, Connected>,
    next_session: u64,
    /// Iterations measured so far, per running cell, from interval histograms.
    progress: HashMap<String, u64>,
}

pub struct Scheduler {
    store: Arc<Store>,
    state: Mutex<State>,
    /// This coordinator as a replica of a shared store (none for SQLite).
    replica: std::sync::OnceLock<Replica>,
    changes: watch::Sender<u64>,
    /// How long a cell bound to one agent waits for that agent to come back.
    pub agent_grace: Duration,
    /// Silence after which an agent's session is closed.
    pub heartbeat_timeout: Duration,
    /// How long an in-flight cell stays its agent's while the agent is away.
    pub lease: Duration,
}

/// A coordinator sharing its store with other replicas.
#[derive(Debug, Clone)]
pub struct Replica {
    pub id: String,
    /// Where its agents and clients reach it.
    pub address: String,
    /// Silence after which another replica is taken for dead.
    pub timeout: Duration,
}

impl Replica {
    /// The oldest heartbeat (ms) of a replica still alive at `now`.
    fn alive_since(&self, now: u64) -> u64 {
        now.saturating_sub(self.timeout.as_millis() as u64)
    }
}

/// How long the scheduler waits for what.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A cell bound to one agent waits this long for that agent to come back.
    pub agent_grace: Duration,
    /// Silence after which an agent's session is closed.
    pub heartbeat: Duration,
    /// An in-flight cell stays its away agent's this long.
    pub lease: Duration,
}

impl Scheduler {
    pub fn new(store: Arc<Store>, t: Timeouts) -> Arc<Scheduler> {
        let (changes, _) = watch::channel(0);
        Arc::new(Scheduler {
            store,
            state: Mutex::new(State::default()),
            replica: std::sync::OnceLock::new(),
            changes,
            agent_grace: t.agent_grace,
            heartbeat_timeout: t.heartbeat,
            lease: t.lease,
        })
    }

    /// The store the scheduler writes to.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn state(&self) -> Result<MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| CoordError::Internal("scheduler lock poisoned".into()))
    }

    /// A receiver that changes whenever a run, cell or agent changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Something changed: live views here, and the other replicas, learn of it.
    fn bump(&self) {
        self.bump_here();
        self.store.changed();
    }

    fn bump_here(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    /// Makes this scheduler `replica` of a shared store: it says it is alive on every pass,
    /// takes over replicas that died, and counts the agents online on every replica.
    pub fn set_replica(&self, replica: Replica) {
        let _ = self.replica.set(replica);
    }

    /// Another replica changed something: live views here learn of it, and idle agents here may
    /// take a cell it made pending.
    pub fn changed_elsewhere(&self) {
        self.bump_here();
        if let Err(e) = self.schedule() {
            tracing::error!(error = %e, "scheduling after another replica's change failed");
        }
    }

    /// Agents connected now, to this coordinator or (with a shared store) to a live replica, for
    /// matrix expansion.
    pub fn connected(&self) -> Result<Vec<AgentView>> {
        let mut views: Vec<AgentView> = self.state()?.agents.values().map(Connected::view).collect();
        if let Some(r) = self.replica.get() {
            let here: std::collections::HashSet<String> = views.iter().map(|v| v.id.clone()).collect();
            views.extend(self.store.online_agents(r.alive_since(now_ms()))?.into_iter().filter(|v| !here.contains(&v.id)));
        }
        Ok(views)
    }

    /// With a shared store: this replica is alive, and those that fell silent are taken over.
    fn keep_replicas(&self, now: u64) -> Result<()> {
        let Some(r) = self.replica.get() else { return Ok(()) };
        self.store.replica_alive(&r.id, &r.address, now)?;
        let lease_until = now + self.lease.as_millis() as u64;
        for t in self.store.take_over_dead_replicas(&r.id, r.alive_since(now), lease_until)? {
            tracing::warn!(replica = %t.replica, cells = t.cells, lease_s = self.lease.as_secs(), "a replica fell silent: its agents' cells are leased to them");
        }
        Ok(())
    }

    /// Iterations measured so far by a running cell.
    pub fn progress(&self, cell_id: &str) -> u64 {
        self.state().ok().and_then(|s| s.progress.get(cell_id).copied()).unwrap_or(0)
    }

    /// Every agent ever seen, with its live state; an offline agent holding a leased cell is away;
    /// with a shared store, one whose session is on another replica is idle or busy there, with
    /// that replica's address.
    pub fn agents(&self) -> Result<Vec<pb::AgentInfo>> {
        let mut all = self.store.list_agents()?;
        let leased = self.store.leased_cells()?;
        // With a shared store: agents whose session is on another live replica.
        let elsewhere: std::collections::HashMap<String, crate::store::Elsewhere> = match self.replica.get() {
            Some(r) => {
                self.store.sessions_elsewhere(&r.id, r.alive_since(now_ms()))?.into_iter().map(|e| (e.agent_id.clone(), e)).collect()
            }
            None => Default::default(),
        };
        let st = self.state()?;
        for a in &mut all {
            if let Some(e) = elsewhere.get(&a.id) {
                a.state = if e.cell_id.is_empty() { "idle" } else { "busy" }.into();
                a.running_cell_id = e.cell_id.clone();
                a.replica = e.replica.clone();
            }
            // Away: not connected here nor (with a shared store) anywhere else.
            let connected = st.agents.contains_key(&a.id) || elsewhere.contains_key(&a.id);
            if let Some(l) = leased.iter().find(|l| l.agent_id == a.id && !connected) {
                a.state = "away".into();
                a.running_cell_id = l.cell_id.clone();
                a.away_since_unix_ms = l.away_since_ms;
                a.lease_until_unix_ms = l.lease_until_ms;
            }
            if let Some(c) = st.agents.get(&a.id) {
                a.state = if c.running.is_some() { "busy" } else { "idle" }.into();
                a.running_cell_id = c.running.clone().unwrap_or_default();
                a.connected_since_unix_ms = c.connected_since_ms;
                a.last_seen_unix_ms = c.last_seen_ms;
                a.cached_digests = c.hello.cached_digests.clone();
            }
        }
        Ok(all)
    }

    /// A run was stored: its cells go to idle agents here, and other replicas hear of it.
    pub fn run_added(&self) -> Result<()> {
        self.bump();
        self.schedule()
    }

    /// Cancels a run: its cells end as cancelled, and agents running one are told to stop.
    pub fn cancel_run(&self, run_id: &str, reason: &str) -> Result<pb::RunInfo> {
        let in_flight = self.store.cancel_run(run_id, reason)?;
        for (cell_id, agent_id) in &in_flight {
            self.cancel_on(agent_id, cell_id, reason);
        }
        tracing::warn!(run = %run_id, cells = in_flight.len(), %reason, "run cancelled");
        self.bump();
        self.store.run_info(run_id)
    }

    /// Hands pending cells to idle agents that can run them. The state lock is held across the
    /// whole pass, so two passes never offer the same cell.
    pub fn schedule(&self) -> Result<()> {
        let mut st = self.state()?;
        let mut idle: Vec<&mut Connected> = st.agents.values_mut().filter(|c| c.running.is_none()).collect();
        if idle.is_empty() {
            return Ok(());
        }
        idle.sort_by(|a, b| a.hello.name.cmp(&b.hello.name));
        // The queue is read a page at a time, as far as the idle agents need: a cell ending in
        // a run of 10,000 reads the first page, not the run.
        let mut queue = Queue::new(&self.store)?;
        let mut taken = std::collections::HashSet::new();
        let (mut assigned, mut dead) = (false, Vec::new());
        for agent in idle {
            let view = agent.view();
            let Some(cell) = queue.find(|c| !taken.contains(&c.id) && can_run(c, &view))? else { continue };
            taken.insert(cell.id.clone());
            let device = agent.hello.profile.clone().unwrap_or_default();
            let Some(attempt) = self.store.mark_assigned(&cell.id, &view.id, &view.name, &device)? else { continue };
            let msg = pb::CoordinatorMessage {
                body: Some(Body::Assign(pb::Assign {
                    cell_id: cell.id.clone(),
                    run_id: cell.run_id.clone(),
                    attempt,
                    cell: Some(cell.spec.clone()),
                })),
            };
            match agent.tx.try_send(Ok(msg)) {
                Ok(()) => {}
                // Its queue is full (it reads slowly): this attempt never happened; a later pass offers it again.
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.store.unassign(&cell.id)?;
                    continue;
                }
                // The session is gone: this attempt never happened, and the agent is dropped.
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.store.unassign(&cell.id)?;
                    dead.push(view.id);
                    continue;
                }
            }
            tracing::info!(cell = %cell.id, agent = %view.name, attempt, "cell assigned");
            agent.running = Some(cell.id.clone());
            self.store.refresh_run_state(&cell.run_id)?;
            assigned = true;
        }
        for id in dead {
            st.agents.remove(&id);
        }
        drop(st);
        if assigned {
            self.bump();
        }
        Ok(())
    }

    /// Called periodically. A pending cell that no connected agent can run gets a deadline of
    /// `agent_grace` and fails when it passes (an agent-bound cell whose agent stays away, a
    /// tag whose last agent left); sessions of agents that fell silent are closed.
    pub fn reap(&self) -> Result<()> {
        self.reap_at(now_ms())
    }

    /// [`Scheduler::reap`] as of `now` (ms since the epoch): leases that ran out lose their
    /// attempt first, so their cells are pending for the rest of the pass.
    pub fn reap_at(&self, now: u64) -> Result<()> {
        self.keep_replicas(now)?;
        let expired = {
            let st = self.state()?;
            let expired = self.store.expired_leases(now)?;
            for c in &expired {
                let why = format!("agent {} stayed away past its lease of {}s", c.agent_name, self.lease.as_secs());
                self.lose_cell(c, &why)?;
            }
            drop(st);
            !expired.is_empty()
        };
        let views = self.connected()?;
        let st = self.state()?;
        let grace = self.agent_grace.as_secs();
        // Every change of this pass in two transactions and one recount per run, whatever the
        // number of cells: a run of 10,000 cells that no agent can take fails in one pass.
        let (mut waits, mut failed) = (Vec::new(), Vec::new());
        // Whether some agent can run a cell depends on its target and unit only: asked once each.
        let mut runnable: HashMap<(String, String, String), bool> = HashMap::new();
        for cell in self.store.pending_cells()? {
            let key = (cell.target.clone(), cell.spec.backend.clone(), cell.spec.unit.clone());
            if *runnable.entry(key).or_insert_with(|| views.iter().any(|a| can_run(&cell, a))) {
                if cell.wait_until_ms > 0 {
                    waits.push((cell.id, 0));
                }
            } else if cell.wait_until_ms == 0 {
                waits.push((cell.id, now + self.agent_grace.as_millis() as u64));
            } else if now > cell.wait_until_ms {
                let msg = match cell.target.strip_prefix("agent:") {
                    Some(agent) => format!("agent {agent} went away and did not return within {grace}s"),
                    None => format!(
                        "no connected agent could run it ({}:{}, target {}) for {grace}s",
                        cell.spec.backend, cell.spec.unit, cell.target
                    ),
                };
                failed.push((cell.id, msg));
            }
        }
        self.store.set_waits(&waits)?;
        let runs = self.store.fail_cells(&failed)?;
        for run in &runs {
            self.store.refresh_run_state(run)?;
        }
        if let Some((first, msg)) = failed.first() {
            tracing::warn!(cells = failed.len(), runs = runs.len(), first = %first, "failed cells no agent could take: {msg}");
        }
        let changed = expired || !failed.is_empty();
        let timeout = self.heartbeat_timeout.as_millis() as u64;
        for c in st.agents.values() {
            if now.saturating_sub(c.last_seen_ms) > timeout {
                tracing::warn!(agent = %c.hello.name, "no heartbeat for {}s; closing its session", timeout / 1000);
                c.kill.notify_one();
            }
        }
        let running: Vec<(String, String)> =
            st.agents.values().filter_map(|c| Some((c.hello.agent_id.clone(), c.running.clone()?))).collect();
        drop(st);
        self.stop_what_ended_elsewhere(&running)?;
        if changed {
            self.bump();
        }
        Ok(())
    }

    /// With a shared store: cells that agents here run but that ended through another replica
    /// (their run cancelled there) are stopped on their agents.
    fn stop_what_ended_elsewhere(&self, running: &[(String, String)]) -> Result<()> {
        if self.replica.get().is_none() || running.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = running.iter().map(|(_, cell)| cell.clone()).collect();
        for (cell, error) in self.store.ended_cells(&ids)? {
            if let Some((agent, _)) = running.iter().find(|(_, c)| *c == cell) {
                tracing::info!(cell = %cell, agent = %agent, "the cell ended elsewhere: stopped on its agent");
                self.cancel_on(agent, &cell, &error);
            }
        }
        Ok(())
    }

    /// An in-flight attempt is lost (its lease expired, or its agent came back without it):
    /// wait for the agent, re-queue, or fail at the cap. Called with the state lock held, so no
    /// pass sees the cell half-way.
    fn lose_cell(&self, c: &crate::store::InFlight, why: &str) -> Result<()> {
        let (cell_id, attempts) = (c.cell_id.as_str(), c.attempt);
        if attempts >= MAX_ATTEMPTS {
            let run = self.store.fail_cell(cell_id, &format!("{why}, during attempt {attempts} of {MAX_ATTEMPTS}"))?;
            self.store.refresh_run_state(&run)?;
        } else if c.target.starts_with("agent:") {
            let until = now_ms() + self.agent_grace.as_millis() as u64;
            self.store.requeue(cell_id, until, &format!("{why}; waiting for it to return"))?;
        } else {
            self.store.requeue(cell_id, 0, &format!("{why}; re-queued"))?;
        }
        tracing::warn!(cell = %cell_id, agent = %c.agent_name, attempts, "cell lost its agent: {why}");
        Ok(())
    }

    /// Whether `session` is the agent's current session (messages of a replaced one are ignored).
    fn is_current(st: &State, agent_id: &str, session: u64) -> bool {
        st.agents.get(agent_id).is_some_and(|c| c.session == session)
    }
}

/// The pending cells of runs not over, in queue order, read from the store a page at a time.
struct Queue<'a> {
    store: &'a Store,
    runs: Vec<String>,
    read: Vec<PendingCell>,
    next: Option<crate::store::QueueMark>,
}

/// Cells read from the queue at a time.
const QUEUE_PAGE: usize = 16;

impl<'a> Queue<'a> {
    fn new(store: &'a Store) -> Result<Queue<'a>> {
        Ok(Queue { store, runs: store.open_runs()?, read: Vec::new(), next: Some(crate::store::QueueMark::start()) })
    }

    /// The first cell in queue order that `pick` accepts, reading more pages as needed.
    fn find(&mut self, pick: impl Fn(&PendingCell) -> bool) -> Result<Option<PendingCell>> {
        let mut i = 0;
        loop {
            if let Some(c) = self.read.get(i) {
                if pick(c) {
                    return Ok(Some(c.clone()));
                }
                i += 1;
                continue;
            }
            let Some(mark) = self.next else { return Ok(None) };
            let (page, next) = self.store.pending_page(&self.runs, mark, QUEUE_PAGE)?;
            self.read.extend(page);
            self.next = next;
        }
    }
}

/// Whether `agent` may run `cell`: it has the unit and the target admits it.
fn can_run(cell: &PendingCell, agent: &AgentView) -> bool {
    let unit = format!("{}:{}", cell.spec.backend, cell.spec.unit);
    agent.units.contains(&unit) && matrix::target_admits(&cell.target, agent)
}
