//! The coordinator's web dashboard on the API's own address: gRPC and HTTP share the port
//! (tonic routes `/anefleet.v1.*` to the services, everything else comes here). Read-only pages
//! (`/` fleet, `/runs`, `/runs/<id>`, `/compare`) and `/metrics`; open on a loopback address (for
//! requests that name it as their Host), for users and admins on any other.

pub mod auth;
pub mod charts;
pub mod compare;
mod error;
mod headers;
mod health;
pub mod html;
mod live;
pub mod metrics;
mod pages;
pub mod run;
mod run_page;
pub mod sessions;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;

use anefleet_analysis::results::ResultsDoc;
use anefleet_proto::pb;

use crate::access::AccessRef;
use crate::schedule::Scheduler;
use crate::store::Store;
pub use error::{WebError, blocking};

/// What every handler reads from.
pub struct Web {
    pub store: Arc<Store>,
    pub scheduler: Arc<Scheduler>,
    pub access: AccessRef,
    pub sessions: sessions::Sessions,
    /// Listening on loopback: no credential asked.
    pub open: bool,
    /// Served over TLS: session cookies are `Secure`.
    pub tls: bool,
    pub metrics: metrics::Metrics,
    /// Turns true when the coordinator is asked to stop: live pages end their event streams.
    pub closing: tokio::sync::watch::Receiver<bool>,
    docs: Mutex<Vec<(DocKey, Arc<ResultsDoc>)>>,
}

pub type WebState = Arc<Web>;

/// How the dashboard is reached.
pub struct Exposure {
    /// On a loopback address: no credential asked.
    pub open: bool,
    pub tls: bool,
    /// Turns true when the coordinator is asked to stop.
    pub closing: tokio::sync::watch::Receiver<bool>,
}

/// What a cached results document depends on: the analysis changes only when a cell ends.
#[derive(Clone, PartialEq, Eq)]
struct DocKey {
    run: String,
    state: String,
    done: u32,
    failed: u32,
}

const CACHED_DOCS: usize = 8;

impl Web {
    pub fn new(store: Arc<Store>, scheduler: Arc<Scheduler>, access: AccessRef, exposure: Exposure, served: metrics::Served) -> WebState {
        let Exposure { open, tls, closing } = exposure;
        Arc::new(Web {
            metrics: metrics::Metrics::new(served),
            store,
            scheduler,
            access,
            sessions: Default::default(),
            open,
            tls,
            closing,
            docs: Mutex::new(vec![]),
        })
    }

    /// A run's results document, for views that need nothing else: a run that is over is
    /// answered from the cache without reading its cells again.
    pub fn doc(&self, run_id: &str) -> Result<Arc<ResultsDoc>, WebError> {
        let run = self.store.run_info(run_id)?;
        if crate::store::runs::TERMINAL_RUN_STATES.contains(&run.state.as_str()) {
            let key = DocKey { run: run.id.clone(), state: run.state.clone(), done: run.cells_done, failed: run.cells_failed };
            if let Some(doc) = self.docs.lock().ok().and_then(|d| d.iter().find(|(k, _)| *k == key).map(|(_, doc)| doc.clone())) {
                return Ok(doc);
            }
        }
        Ok(self.results(run_id)?.1)
    }

    /// A run's results document: the analysis is computed once per finished cell, the live parts
    /// (states, progress, interval histograms) are fresh on every call.
    pub fn results(&self, run_id: &str) -> Result<(pb::RunResults, Arc<ResultsDoc>), WebError> {
        let run = self.store.run_info(run_id)?;
        let mut cells = self.store.cells_of(run_id, true)?;
        let dropped = anefleet_analysis::results::sanitize(&mut cells);
        if dropped > 0 {
            tracing::warn!(run = run_id, dropped, "stored values that do not decode are left out of the run's views");
        }
        for c in &mut cells {
            c.iterations_so_far = self.scheduler.progress(&c.id);
        }
        let results = pb::RunResults { run: Some(run.clone()), cells };
        let key = DocKey { run: run.id.clone(), state: run.state.clone(), done: run.cells_done, failed: run.cells_failed };
        let cached = self.docs.lock().ok().and_then(|d| d.iter().find(|(k, _)| *k == key).map(|(_, doc)| doc.clone()));
        let doc = match cached {
            Some(doc) => Arc::new(refresh(&doc, &results)?),
            None => {
                let doc = Arc::new(ResultsDoc::from_pb(&results)?);
                if let Ok(mut d) = self.docs.lock() {
                    d.retain(|(k, _)| k.run != key.run);
                    d.insert(0, (key, doc.clone()));
                    d.truncate(CACHED_DOCS);
                }
                doc
            }
        };
        Ok((results, doc))
    }
}

/// A cached document with the cells' live parts brought up to date.
fn refresh(doc: &ResultsDoc, results: &pb::RunResults) -> Result<ResultsDoc, WebError> {
    let mut doc = doc.clone();
    for (c, r) in doc.cells.iter_mut().zip(&results.cells) {
        if c.id == r.id {
            c.state = r.state.clone();
            c.intervals = r.intervals;
            c.timeline = anefleet_analysis::results::timeline(r)?;
            if c.iterations == 0 {
                c.iterations = r.iterations_so_far;
            }
        }
    }
    if let Some(run) = &results.run {
        doc.run.cells_total = run.cells_total;
    }
    Ok(doc)
}

/// The dashboard's routes; tonic adds the gRPC services beside them.
pub fn router(web: WebState) -> Router {
    let pages = Router::new()
        .route("/", get(pages::fleet))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(run_page::page))
        .route("/runs/{id}/panels", get(run_page::panels))
        .route("/runs/{id}/events", get(live::events))
        .route("/compare", get(compare::page))
        .route("/metrics", get(metrics::handler))
        .route_layer(axum::middleware::from_fn_with_state(web.clone(), auth::require));
    Router::new()
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", axum::routing::post(auth::logout))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(pages)
        .fallback(error::fallback)
        .layer(axum::middleware::from_fn_with_state(web.clone(), auth::loopback_host))
        .layer(axum::middleware::from_fn(headers::secure))
        .with_state(web)
}
