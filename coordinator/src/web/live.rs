//! `/runs/<id>/events`: server-sent events for a run's page. `change` whenever a cell changes
//! state or an interval histogram arrives, `end` once the run is over.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;

use super::{WebError, WebState, blocking};
use crate::store::runs::TERMINAL_RUN_STATES;

/// What the page shows that can change: states, and interval histograms received.
fn fingerprint(web: &super::Web, run: &str) -> Result<(String, bool), WebError> {
    let info = web.store.run_info(run)?;
    let cells = web.store.cells_of(run, false)?;
    let mut f = format!("{}:{}:{}", info.state, info.cells_done, info.cells_failed);
    for c in &cells {
        f.push_str(&format!("|{}:{}", c.state, c.intervals));
    }
    Ok((f, TERMINAL_RUN_STATES.contains(&info.state.as_str())))
}

pub async fn events(
    State(web): State<WebState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let first = {
        let (web, id) = (web.clone(), id.clone());
        blocking(move || fingerprint(&web, &id)).await?
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(4);
    tokio::spawn(async move {
        let mut changes = web.scheduler.subscribe();
        let mut closing = web.closing.clone();
        let (mut last, mut over) = first;
        while !over {
            tokio::select! {
                _ = tokio::time::timeout(Duration::from_secs(1), changes.changed()) => {}
                _ = closing.wait_for(|c| *c) => return, // the coordinator stops: end the stream
            }
            let (w, i) = (web.clone(), id.clone());
            let Ok((now, ended)) = blocking(move || fingerprint(&w, &i)).await else { break };
            over = ended;
            if now != last && tx.send(Ok(Event::default().event("change").data(&now))).await.is_err() {
                return;
            }
            last = now;
        }
        let _ = tx.send(Ok(Event::default().event("end").data("over"))).await;
    });
    Ok(Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx)).keep_alive(KeepAlive::default()))
}
