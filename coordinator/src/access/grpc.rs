//! The role every gRPC method needs, checked before the call reaches its service; the caller's
//! [`Principal`] travels in the request's extensions for the checks that depend on the data
//! (whose run, which agent).

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AccessRef, Principal, Role};

const AGENT_ONLY: &[Role] = &[Role::Agent, Role::Admin];
const ANY: &[Role] = &[Role::Agent, Role::User, Role::Admin];
const USERS: &[Role] = &[Role::User, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];

/// The roles allowed to call `path` (`/package.Service/Method`); `None` for paths that are not
/// gRPC (the dashboard's, which checks its own).
pub fn allowed_roles(path: &str) -> Option<&'static [Role]> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    Some(match (service, method) {
        ("anefleet.v1.AgentService", "Session") => AGENT_ONLY,
        ("anefleet.v1.Artifacts", "Read" | "Stat") => ANY,
        ("anefleet.v1.Artifacts", "Upload") => USERS,
        ("anefleet.v1.Runs", "SaveBaseline") => ADMIN,
        ("anefleet.v1.Runs", _) => USERS,
        ("anefleet.v1.Credentials", _) => ADMIN,
        (s, _) if s.starts_with("grpc.reflection.") => ANY,
        (s, _) if s.starts_with("anefleet.") => ADMIN,
        _ => return None,
    })
}

/// Refuses a gRPC call without a valid token (`UNAUTHENTICATED`) or with a role the method does
/// not allow (`PERMISSION_DENIED`); passes the dashboard's paths through.
pub async fn check(State(access): State<AccessRef>, mut req: Request, next: Next) -> Response {
    let Some(roles) = allowed_roles(req.uri().path()) else {
        return next.run(req).await;
    };
    let principal = match bearer(req.headers()).and_then(|t| access.authenticate(&t)) {
        Some(p) => p,
        None => return refuse(tonic::Status::unauthenticated("missing or wrong credential: send authorization: Bearer <token>")),
    };
    if !roles.contains(&principal.role) {
        let need: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        return refuse(tonic::Status::permission_denied(format!(
            "credential `{}` (role {}) may not call {}: it needs the role {}",
            principal.name,
            principal.role.as_str(),
            req.uri().path(),
            need.join(" or ")
        )));
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// The token of `authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    Some(v.strip_prefix("Bearer ")?.trim().to_string())
}

fn refuse(status: tonic::Status) -> Response {
    status.into_http::<axum::body::Body>().into_response()
}

/// The caller of a gRPC request (set by [`check`]).
pub fn caller<T>(req: &tonic::Request<T>) -> Result<&Principal, tonic::Status> {
    req.extensions().get::<Principal>().ok_or_else(|| tonic::Status::unauthenticated("no credential"))
}
