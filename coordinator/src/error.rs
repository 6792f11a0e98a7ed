//! The coordinator's one error type; every variant maps to a gRPC status.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("store: {0}")]
    Postgres(#[from] postgres::Error),
    /// The store cannot be reached now; another replica, or a later try, may do.
    #[error("{0}")]
    Unavailable(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Internal(String),
}

impl CoordError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CoordError {
        let context = context.into();
        move |source| CoordError::Io { context, source }
    }
}

impl From<prost::DecodeError> for CoordError {
    fn from(e: prost::DecodeError) -> Self {
        CoordError::Internal(format!("stored record does not decode: {e}"))
    }
}

impl From<CoordError> for Status {
    fn from(e: CoordError) -> Status {
        match &e {
            CoordError::InvalidArgument(m) => Status::invalid_argument(m.clone()),
            CoordError::NotFound(m) => Status::not_found(m.clone()),
            CoordError::FailedPrecondition(m) => Status::failed_precondition(m.clone()),
            CoordError::PermissionDenied(m) => Status::permission_denied(m.clone()),
            CoordError::Unavailable(m) => Status::unavailable(m.clone()),
            _ => {
                tracing::error!(error = %e, "internal error");
                Status::internal(e.to_string())
            }
        }
    }
}

pub type Result<T> = std::result::Result<T, CoordError>;
