//! The `Runs` service: submit a spec, watch a run, read its results, list runs and agents.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tonic::{Request, Response, Status};

use anefleet_proto::pb;
use anefleet_proto::spec::{ArtifactSource, Spec};

use crate::access::{Role, grpc::caller};
use crate::artifacts::BlobStore;
use crate::error::{CoordError, Result};
use crate::schedule::{Scheduler, matrix};
use crate::store::runs::TERMINAL_RUN_STATES;
use crate::store::{NewRun, Store};

pub struct RunService {
    pub store: Arc<Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub scheduler: Arc<Scheduler>,
}

type Events = Pin<Box<dyn Stream<Item = std::result::Result<pb::RunEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::runs_server::Runs for RunService {
    async fn submit_run(&self, req: Request<pb::SubmitRunRequest>) -> std::result::Result<Response<pb::SubmitRunResponse>, Status> {
        let by = caller(&req)?.name.clone();
        Ok(Response::new(self.submit(req.into_inner(), by)?))
    }

    type WatchRunStream = Events;

    async fn watch_run(&self, req: Request<pb::WatchRunRequest>) -> std::result::Result<Response<Events>, Status> {
        let run_id = req.into_inner().run_id;
        self.store.run_info(&run_id)?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let (store, scheduler) = (self.store.clone(), self.scheduler.clone());
        tokio::spawn(async move {
            let mut changes = scheduler.subscribe();
            loop {
                let event = run_event(&store, &scheduler, &run_id);
                let over = matches!(&event, Ok(e) if e.run.as_ref().is_some_and(|r| TERMINAL_RUN_STATES.contains(&r.state.as_str())));
                if tx.send(event.map_err(Status::from)).await.is_err() || over {
                    break;
                }
                // Wake on any change, and at least once a second for progress.
                let _ = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn get_results(&self, req: Request<pb::GetResultsRequest>) -> std::result::Result<Response<pb::RunResults>, Status> {
        let run_id = req.into_inner().run_id;
        let run = self.store.run_info(&run_id)?;
        let cells = self.store.cells_of(&run_id, true)?;
        Ok(Response::new(pb::RunResults { run: Some(run), cells }))
    }

    async fn list_runs(&self, req: Request<pb::ListRunsRequest>) -> std::result::Result<Response<pb::ListRunsResponse>, Status> {
        Ok(Response::new(pb::ListRunsResponse { runs: self.store.list_runs(req.into_inner().limit)? }))
    }

    async fn list_agents(&self, _: Request<pb::ListAgentsRequest>) -> std::result::Result<Response<pb::ListAgentsResponse>, Status> {
        Ok(Response::new(pb::ListAgentsResponse { agents: self.scheduler.agents()? }))
    }

    async fn cancel_run(&self, req: Request<pb::CancelRunRequest>) -> std::result::Result<Response<pb::RunInfo>, Status> {
        let p = caller(&req)?.clone();
        let req = req.into_inner();
        let run = self.store.run_info(&req.run_id)?;
        if p.role != Role::Admin && run.submitted_by != p.name {
            return Err(Status::permission_denied(format!(
                "run {} was submitted by `{}`: credential `{}` may cancel only its own runs (an admin may cancel any)",
                run.id, run.submitted_by, p.name
            )));
        }
        let reason = if req.reason.trim().is_empty() { format!("cancelled by {}", p.name) } else { req.reason };
        Ok(Response::new(self.scheduler.cancel_run(&req.run_id, &reason)?))
    }

    async fn save_baseline(&self, req: Request<pb::SaveBaselineRequest>) -> std::result::Result<Response<pb::Baseline>, Status> {
        Ok(Response::new(self.store.save_baseline(&req.into_inner())?))
    }

    async fn get_baseline(&self, req: Request<pb::GetBaselineRequest>) -> std::result::Result<Response<pb::Baseline>, Status> {
        Ok(Response::new(self.store.get_baseline(&req.into_inner().name)?))
    }

    async fn list_baselines(
        &self,
        _: Request<pb::ListBaselinesRequest>,
    ) -> std::result::Result<Response<pb::ListBaselinesResponse>, Status> {
        Ok(Response::new(pb::ListBaselinesResponse { baselines: self.store.list_baselines()? }))
    }
}

fn run_event(store: &Store, scheduler: &Scheduler, run_id: &str) -> Result<pb::RunEvent> {
    let run = store.run_info(run_id)?;
    let mut cells = store.cells_of(run_id, false)?;
    for c in &mut cells {
        c.iterations_so_far = scheduler.progress(&c.id);
    }
    Ok(pb::RunEvent { run: Some(run), cells })
}

impl RunService {
    /// Validates the spec against the stored artifacts and the connected agents, then stores
    /// the run and its cells. Nothing is stored when anything is wrong.
    fn submit(&self, req: pb::SubmitRunRequest, submitted_by: String) -> Result<pb::SubmitRunResponse> {
        let file = if req.spec_path.is_empty() { "spec.toml".to_string() } else { req.spec_path.clone() };
        let spec = Spec::parse(&req.spec_toml, &file).map_err(|e| CoordError::InvalidArgument(e.to_string()))?;
        let artifacts = self.resolve_artifacts(&spec, &file, &req.resolved)?;
        let run_id = new_run_id();
        let (cells, skipped) = matrix::expand(&run_id, &spec, &artifacts, &self.scheduler.connected()?);
        if cells.is_empty() {
            return Err(CoordError::FailedPrecondition(format!(
                "{file}: no connected agent can run any cell of this spec ({})",
                skipped.join("; ")
            )));
        }
        if req.validate_only {
            return Ok(pb::SubmitRunResponse { run_id: String::new(), cells: cells.len() as u32, skipped });
        }
        let run = NewRun {
            id: run_id.clone(),
            name: spec.name.clone(),
            spec_toml: req.spec_toml,
            spec_path: file,
            skipped: skipped.clone(),
            submitted_by,
        };
        self.store.insert_run(&run, &cells)?;
        tracing::info!(run = %run_id, cells = cells.len(), name = %spec.name, "run submitted");
        self.scheduler.run_added()?;
        Ok(pb::SubmitRunResponse { run_id, cells: cells.len() as u32, skipped })
    }

    /// Maps every artifact reference of the spec to an artifact the store holds.
    fn resolve_artifacts(
        &self,
        spec: &Spec,
        file: &str,
        resolved: &HashMap<String, pb::ArtifactRef>,
    ) -> Result<HashMap<String, pb::ArtifactRef>> {
        let mut out = HashMap::new();
        for (field, reference) in spec.artifact_refs() {
            // The same bytes may be a file for one spec and a folder's archive for another: the
            // kind and name are this submission's, the digest and size the store's.
            let (digest, said) = match ArtifactSource::parse(&reference) {
                Ok(ArtifactSource::Stored(d)) => (d, None),
                _ => match resolved.get(&reference) {
                    Some(a) => (a.digest.clone(), Some(a)),
                    None => {
                        return Err(CoordError::InvalidArgument(format!(
                            "{file}: {field} = {reference:?}: was not uploaded with the spec"
                        )));
                    }
                },
            };
            let stored = self.store.get_artifact(&digest)?.filter(|_| self.blobs.has(&digest));
            let Some(mut artifact) = stored else {
                return Err(CoordError::InvalidArgument(format!(
                    "{file}: {field} = {reference:?}: the coordinator holds no artifact {digest}"
                )));
            };
            if let Some(a) = said {
                if a.kind != "file" && a.kind != "dir" {
                    return Err(CoordError::InvalidArgument(format!(
                        "{file}: {field}: artifact kind `{}` is neither file nor dir",
                        a.kind
                    )));
                }
                artifact.kind = a.kind.clone();
                artifact.name = a.name.chars().take(255).collect();
            }
            out.insert(reference, artifact);
        }
        Ok(out)
    }
}

/// A short random run id.
fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}
