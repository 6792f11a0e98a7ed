//! `/runs/<id>`: every panel of a run; while it runs, the page follows `/runs/<id>/events` and
//! swaps in fresh panels when something changed.

use axum::extract::{Path, State};
use axum::response::Html;

use super::html::{self, Frame};
use super::{WebError, WebState, blocking, run};
use crate::store::runs::TERMINAL_RUN_STATES;

/// Follows the run's events; on each change, fetches the panels again.
pub(crate) const LIVE: &str = r#"(() => {
  const base = location.pathname.replace(/\/$/, '');
  const events = new EventSource(base + '/events');
  const refresh = async () => {
    const r = await fetch(base + '/panels', { credentials: 'same-origin' });
    if (r.ok) document.getElementById('panels').innerHTML = await r.text();
  };
  events.addEventListener('change', refresh);
  events.addEventListener('end', () => { events.close(); refresh(); });
})();"#;

async fn body(web: WebState, id: String) -> Result<(String, String, bool), WebError> {
    blocking(move || {
        let doc = web.doc(&id)?;
        let live = !TERMINAL_RUN_STATES.contains(&doc.run.state.as_str());
        Ok((doc.run.name.clone(), run::panels(&doc), live))
    })
    .await
}

pub async fn page(State(web): State<WebState>, Path(id): Path<String>) -> Result<Html<String>, WebError> {
    let (name, panels, live) = body(web, id).await?;
    let title = format!("Run: {name}");
    Ok(Html(html::page(Frame::Dashboard, &title, &format!("<div id=\"panels\">{panels}</div>"), live.then_some(LIVE))))
}

pub async fn panels(State(web): State<WebState>, Path(id): Path<String>) -> Result<Html<String>, WebError> {
    Ok(Html(body(web, id).await?.1))
}
