//! `/healthz` and `/readyz`, for a load balancer in front of coordinator replicas and for
//! whatever supervises the process. Neither asks for a credential, and neither says more than
//! whether the coordinator serves: `/healthz` that the process answers, `/readyz` that its store
//! answers too and its schema is this coordinator's (a replica whose database is gone, or was
//! migrated by a newer release, takes no traffic).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::WebState;

pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

pub async fn readyz(State(web): State<WebState>) -> impl IntoResponse {
    let store = web.store.clone();
    let ready = tokio::task::spawn_blocking(move || store.ready()).await;
    match ready {
        Ok(Ok(())) => (StatusCode::OK, "ready\n"),
        // Why, in the log only: the store's address is nobody else's business.
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }
        Err(e) => {
            tracing::error!(error = %e, "the readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }
    }
}
