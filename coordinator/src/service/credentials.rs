//! The `Credentials` service (admin only, checked by `access::grpc`): create, list, revoke.

use tonic::{Request, Response, Status};

use anefleet_proto::pb;

use crate::access::AccessRef;
use crate::schedule::Scheduler;

pub struct CredentialService {
    pub access: AccessRef,
    pub scheduler: std::sync::Arc<Scheduler>,
}

#[tonic::async_trait]
impl pb::credentials_server::Credentials for CredentialService {
    async fn create_credential(&self, req: Request<pb::CreateCredentialRequest>) -> Result<Response<pb::CreatedCredential>, Status> {
        let req = req.into_inner();
        let (credential, token) = self.access.create(&req.name, &req.role)?;
        Ok(Response::new(pb::CreatedCredential { credential: Some(credential), token }))
    }

    async fn list_credentials(&self, _: Request<pb::ListCredentialsRequest>) -> Result<Response<pb::ListCredentialsResponse>, Status> {
        Ok(Response::new(pb::ListCredentialsResponse { credentials: self.access.list()? }))
    }

    async fn revoke_credential(&self, req: Request<pb::RevokeCredentialRequest>) -> Result<Response<pb::Credential>, Status> {
        let revoked = self.access.revoke(&req.into_inner().name)?;
        if revoked.role == "agent" && !revoked.agent_id.is_empty() {
            self.scheduler.close_session(&revoked.agent_id)?;
        }
        Ok(Response::new(revoked))
    }
}
