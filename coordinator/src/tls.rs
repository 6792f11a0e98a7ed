//! TLS on the coordinator's one port (gRPC and the dashboard): a certificate the operator
//! gives (`--tls-cert`/`--tls-key`), or a private CA and a server certificate made at the first
//! start (`--tls-self-signed`, kept in DATA_DIR/tls; clients and agents trust `ca.pem` with
//! `--ca-file`). Optionally every client must show a certificate of `--client-ca` (mutual TLS).
//! Plaintext is for loopback, or for `--insecure`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::{Context, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig, server::WebPkiClientVerifier};

/// PEM texts of a certificate chain and its key.
struct Identity {
    cert: Vec<u8>,
    key: Vec<u8>,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// PEM certificate chain to serve TLS with (with --tls-key).
    #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve TLS with a private CA made at the first start in DATA_DIR/tls (clients and agents
    /// trust DATA_DIR/tls/ca.pem with --ca-file).
    #[arg(long)]
    pub tls_self_signed: bool,
    /// Names and addresses the self-signed certificate is valid for, besides localhost,
    /// 127.0.0.1, ::1, this host's name and the --listen address (repeatable).
    #[arg(long = "tls-name", value_name = "NAME")]
    pub tls_names: Vec<String>,
    /// Mutual TLS: every client and agent must show a certificate signed by this CA (PEM).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Serve plaintext on an address other machines reach: credentials then cross the network in clear.
    #[arg(long)]
    pub insecure: bool,
}

/// The TLS configuration to serve with, or `None` for plaintext (loopback, or `--insecure`).
pub fn server_config(args: &TlsArgs, listen: SocketAddr, data_dir: &Path) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Identity { cert: read(cert)?, key: read(key)? }),
        _ if args.tls_self_signed => Some(self_signed(&data_dir.join("tls"), &names(args, listen))?),
        _ => None,
    };
    let Some(identity) = identity else {
        plaintext_allowed(args, listen)?;
        return Ok(None);
    };
    rustls_config(&identity, args.client_ca.as_deref()).map(Some)
}

/// rustls with ring, TLS 1.2 and 1.3, offering HTTP/2 (gRPC, browsers) and HTTP/1.1 (scrapers and
/// scripts that speak only that), with client certificates of `client_ca` required when given.
fn rustls_config(identity: &Identity, client_ca: Option<&Path>) -> anyhow::Result<Arc<ServerConfig>> {
    let certs =
        CertificateDer::pem_slice_iter(&identity.cert).collect::<Result<Vec<_>, _>>().context("reading the certificate chain (PEM)")?;
    let key = PrivateKeyDer::from_pem_slice(&identity.key).context("reading the private key (PEM)")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&read(ca)?) {
                roots.add(c.with_context(|| format!("reading {}", ca.display()))?)?;
            }
            builder.with_client_cert_verifier(WebPkiClientVerifier::builder_with_provider(roots.into(), provider).build()?)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).context("the certificate and its key")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn plaintext_allowed(args: &TlsArgs, listen: SocketAddr) -> anyhow::Result<()> {
    if args.client_ca.is_some() {
        bail!("--client-ca needs TLS: pass --tls-cert and --tls-key, or --tls-self-signed");
    }
    if listen.ip().is_loopback() {
        return Ok(());
    }
    if !args.insecure {
        bail!(
            "{listen} is reachable from other machines and credentials would cross the network in clear: \
             pass --tls-self-signed (a private CA in DATA_DIR/tls), --tls-cert FILE --tls-key FILE, \
             or --insecure to serve plaintext anyway"
        );
    }
    tracing::warn!(%listen, "serving plaintext off loopback (--insecure): tokens, results and models cross the network in clear");
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The names the self-signed certificate covers.
fn names(args: &TlsArgs, listen: SocketAddr) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string())
        && !h.is_empty()
    {
        names.push(h);
    }
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    } else if args.tls_names.is_empty() {
        tracing::warn!(
            %listen,
            "the self-signed certificate names no address other machines use for this one: pass --tls-name HOST \
             (the name or address agents connect to) before the first start, or agents refuse it"
        );
    }
    names.extend(args.tls_names.iter().cloned());
    names.dedup();
    names
}

/// DATA_DIR/tls/{ca.pem, ca-key.pem, server.pem, server-key.pem}: made once, reused after (delete
/// the folder to make new ones, e.g. for other names).
fn self_signed(dir: &Path, names: &[String]) -> anyhow::Result<Identity> {
    let (cert, key) = (dir.join("server.pem"), dir.join("server-key.pem"));
    if !cert.exists() {
        anefleet_proto::auth::create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        let made = make_ca_and_server(names).context("making the private CA")?;
        for (name, pem) in
            [("ca.pem", &made.ca), ("ca-key.pem", &made.ca_key), ("server-key.pem", &made.server_key), ("server.pem", &made.server)]
        {
            crate::serve::write_private(&dir.join(name), pem).with_context(|| format!("writing {}", dir.join(name).display()))?;
        }
        tracing::info!(ca = %dir.join("ca.pem").display(), names = ?names, "made a private CA and a server certificate: clients pass --ca-file with ca.pem");
    }
    Ok(Identity { cert: read(&cert)?, key: read(&key)? })
}

/// PEM texts of a new private CA and a server certificate it signed.
pub struct Made {
    pub ca: String,
    pub ca_key: String,
    pub server: String,
    pub server_key: String,
}

pub fn make_ca_and_server(names: &[String]) -> Result<Made, rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, "anefleet private CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, "anefleet coordinator");
    let key = KeyPair::generate()?;
    let server = params.signed_by(&key, &ca)?;
    Ok(Made { ca: ca.pem(), ca_key: ca_key_pem, server: server.pem(), server_key: key.serialize_pem() })
}

/// How long a client may take over its TLS handshake.
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// The TLS connections of `listener`: each handshake in its own task (a slow or silent client
/// holds up no one), failed ones dropped with a debug log.
pub fn incoming(
    listener: tokio::net::TcpListener,
    config: Arc<ServerConfig>,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    continue;
                }
            };
            // As tonic's own listener does: small gRPC frames go out at once, not after a delayed ACK.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
            }
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake took too long"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_ca_signs_a_certificate_rustls_serves_with_both_protocols() {
        let made = make_ca_and_server(&["coord.lan".into(), "127.0.0.1".into()]).unwrap();
        let identity = Identity { cert: made.server.into_bytes(), key: made.server_key.into_bytes() };
        let config = rustls_config(&identity, None).unwrap();
        assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        let broken = Identity { cert: b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(), key: identity.key };
        assert!(rustls_config(&broken, None).is_err());
    }
}
