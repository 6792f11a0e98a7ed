//! The client side of authentication, shared by every gRPC client: where the token comes from,
//! and `authorization: Bearer <token>` on every call (the coordinator checks it against its
//! credentials, `coordinator/src/access`); owner-only folders for what holds tokens.

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Environment variable that may hold the token itself.
pub const TOKEN_ENV: &str = "ANEFLEET_TOKEN";

/// The token in `path`, trimmed; an empty or unreadable file is an error naming it.
pub fn read_token_file(path: &std::path::Path) -> Result<String, String> {
    let t = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the token file {}: {e} (a coordinator writes DATA_DIR/token at its first start, e.g. ./fleet/token)",
            path.display()
        )
    })?;
    let t = t.trim().to_string();
    if t.is_empty() {
        return Err(format!("token file {} is empty", path.display()));
    }
    Ok(t)
}

/// Creates `dir` (and missing parents) readable by its owner only (0700 on Unix): the data and
/// cache folders hold tokens, identities, results and models. An existing folder is left as it is.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Makes an existing `dir` (and the files `names` in it, when present) its owner's only: a data
/// dir or cache made by an older version, or by hand, was readable by every local user. Returns
/// whether anything was changed, so the caller can say so.
pub fn make_private(dir: &std::path::Path, names: &[&str]) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut changed = false;
        let mut tighten = |p: &std::path::Path, mode: u32| -> std::io::Result<()> {
            let Ok(meta) = std::fs::metadata(p) else { return Ok(()) };
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
                changed = true;
            }
            Ok(())
        };
        tighten(dir, 0o700)?;
        for n in names {
            tighten(&dir.join(n), 0o600)?;
        }
        Ok(changed)
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, names);
        Ok(false)
    }
}

/// A client's token: from `--token-file` when given, else from [`TOKEN_ENV`].
pub fn client_token(file: Option<&std::path::Path>) -> Result<String, String> {
    if let Some(f) = file {
        return read_token_file(f);
    }
    match std::env::var(TOKEN_ENV) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => Err(format!(
            "no token: pass --token-file FILE (the file a coordinator writes at its first start, DATA_DIR/token, \
             e.g. ./fleet/token) or set {TOKEN_ENV} to its content"
        )),
    }
}

/// Attaches the bearer token to every outgoing request.
#[derive(Clone)]
pub struct BearerToken {
    header: MetadataValue<tonic::metadata::Ascii>,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl BearerToken {
    pub fn new(token: &str) -> Result<BearerToken, String> {
        let header = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| "the token holds characters that cannot travel in a header".to_string())?;
        Ok(BearerToken { header })
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.header.clone());
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn an_existing_open_folder_and_its_files_become_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("fleet");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.join("anefleet.db"), "x").unwrap();
        std::fs::set_permissions(d.join("anefleet.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert!(make_private(&d, &["anefleet.db", "absent"]).unwrap());
        assert_eq!((mode(&d), mode(&d.join("anefleet.db"))), (0o700, 0o600));
        assert!(!make_private(&d, &["anefleet.db"]).unwrap(), "nothing left to change");
    }

    #[test]
    fn every_call_carries_the_token_as_a_bearer_header() {
        let mut add = BearerToken::new(" s3cret\n").unwrap();
        let req = add.call(Request::new(())).unwrap();
        assert_eq!(req.metadata().get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer s3cret"));
        assert!(BearerToken::new("bad\u{7f}token").is_err());
    }
}
