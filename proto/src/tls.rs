//! How clients and agents reach a coordinator: `http://` in plaintext, `https://` over TLS,
//! trusting the system's roots or, with `--ca-file`, only that CA (the private one `coordinator
//! serve --tls-self-signed` makes); with a client certificate when the coordinator asks for one.

use std::path::{Path, PathBuf};

use tonic::transport::Endpoint;

/// What a client needs to reach a coordinator over TLS.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// A PEM CA certificate to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and key (PEM), for a coordinator that asks for one (mutual TLS).
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// An endpoint for `url`, with TLS for `https://`. The error says what is wrong with what.
pub fn endpoint(url: &str, tls: &ClientTls) -> Result<Endpoint, String> {
    let not_a_url = || format!("`{url}` is not a coordinator URL (like http://127.0.0.1:7070 or https://coord.lan:7070)");
    let https = url.starts_with("https://");
    if !https && !url.starts_with("http://") {
        return Err(not_a_url());
    }
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|_| not_a_url())?;
    if !https {
        if tls.ca_file.is_some() || tls.identity.is_some() {
            return Err(format!("--ca-file and client certificates need an https:// coordinator URL, not {url}"));
        }
        return Ok(endpoint);
    }
    with_tls(endpoint, tls)
}

/// Every coordinator of a comma-separated list (replicas sharing one store), in the order given.
pub fn endpoints(urls: &str, tls: &ClientTls) -> Result<Vec<Endpoint>, String> {
    let list: Vec<&str> = urls.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
    if list.is_empty() {
        return Err("no coordinator URL given".into());
    }
    list.into_iter().map(|u| endpoint(u, tls)).collect()
}

#[cfg(feature = "tls")]
fn with_tls(endpoint: Endpoint, tls: &ClientTls) -> Result<Endpoint, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    // A private CA is the only one trusted; otherwise the system's roots.
    let mut config = match &tls.ca_file {
        Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca, "--ca-file")?)),
        None => ClientTlsConfig::new().with_native_roots(),
    };
    if let Some((cert, key)) = &tls.identity {
        config = config.identity(Identity::from_pem(read(cert, "--client-cert")?, read(key, "--client-key")?));
    }
    endpoint.tls_config(config).map_err(|e| format!("TLS configuration: {e}"))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: Endpoint, _: &ClientTls) -> Result<Endpoint, String> {
    Err("this build has no TLS (built without the `tls` feature): use an http:// coordinator URL, or build with it".into())
}

#[cfg(feature = "tls")]
fn read(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if !String::from_utf8_lossy(&bytes).contains("-----BEGIN ") {
        return Err(format!("{flag} {}: not a PEM file (no -----BEGIN line)", path.display()));
    }
    Ok(bytes)
}

/// `--client-cert` and `--client-key` go together.
pub fn identity(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<(PathBuf, PathBuf)>, String> {
    match (cert, key) {
        (Some(c), Some(k)) => Ok(Some((c.to_path_buf(), k.to_path_buf()))),
        (None, None) => Ok(None),
        _ => Err("--client-cert and --client-key go together".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_gives_every_coordinator_in_order_and_names_a_bad_one() {
        let list = endpoints("http://127.0.0.1:7070, http://127.0.0.1:7071,", &ClientTls::default()).expect("two");
        let ports: Vec<_> = list.iter().map(|e| e.uri().port_u16()).collect();
        assert_eq!(ports, [Some(7070), Some(7071)]);
        let e = endpoints("http://127.0.0.1:7070,127.0.0.1:7071", &ClientTls::default()).expect_err("no scheme");
        assert!(e.contains("`127.0.0.1:7071`"), "{e}");
        assert!(endpoints(" , ", &ClientTls::default()).is_err());
    }

    #[test]
    fn plain_urls_stay_plain_and_bad_ones_are_named() {
        assert!(endpoint("http://127.0.0.1:7070", &ClientTls::default()).is_ok_and(|e| e.uri().scheme_str() == Some("http")));
        let e = endpoint("ftp://x", &ClientTls::default()).unwrap_err();
        assert!(e.contains("`ftp://x` is not a coordinator URL"), "{e}");
        let with_ca = ClientTls { ca_file: Some("ca.pem".into()), identity: None };
        let e = endpoint("http://127.0.0.1:7070", &with_ca).unwrap_err();
        assert!(e.contains("need an https:// coordinator URL"), "{e}");
        assert_eq!(identity(Some(Path::new("c")), None).unwrap_err(), "--client-cert and --client-key go together");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn a_ca_file_that_is_not_pem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, "hello").unwrap();
        let tls = ClientTls { ca_file: Some(f.clone()), identity: None };
        let e = endpoint("https://127.0.0.1:7070", &tls).unwrap_err();
        assert_eq!(e, format!("--ca-file {}: not a PEM file (no -----BEGIN line)", f.display()));
    }
}
