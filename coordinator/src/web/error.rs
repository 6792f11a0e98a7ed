//! What a page answers when something is wrong: a 404 for what does not exist, a 500 naming the
//! problem otherwise; gRPC calls to an unknown service get gRPC's own UNIMPLEMENTED.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::html::{Frame, esc, page};
use crate::error::CoordError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Coord(#[from] CoordError),
    #[error("the results do not decode: {0}")]
    Codec(#[from] anefleet_proto::histogram::CodecError),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebError::NotFound(_) | WebError::Coord(CoordError::NotFound(_)) => StatusCode::NOT_FOUND,
            WebError::Coord(CoordError::InvalidArgument(_)) => StatusCode::BAD_REQUEST,
            _ => {
                tracing::error!(error = %self, "web page failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let title = status.canonical_reason().unwrap_or("error");
        (status, axum::response::Html(page(Frame::Dashboard, title, &format!("<p>{}</p>", esc(&self.to_string())), None))).into_response()
    }
}

pub async fn fallback(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let grpc = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        let (parts, ()) = tonic::Status::unimplemented(format!("no service at {}", uri.path())).into_http::<()>().into_parts();
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    WebError::NotFound(format!("nothing at {}", uri.path())).into_response()
}

/// Runs blocking work (the store, the analysis) off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, WebError> + Send + 'static) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| WebError::Internal(format!("page task: {e}")))?
}
