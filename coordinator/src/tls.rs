//! TLS on the coordinator's one port (gRPC and the dashboard): a certificate the operator
//! gives (`--tls-cert`/`--tls-key`), or a private CA and a server certificate made at the first
//! start (`--tls-self-signed`, kept in DATA_DIR/tls; clients and agents trust `ca.pem` with
//! `--ca-file`). Optionally every client must show a certificate of `--client-ca` (mutual TLS).
//! Plaintext is for loopback, or for `--insecure`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

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
pub fn server_config(args: &TlsArgs, listen: SocketAddr, data_dir: &Path) -> anyhow::Result<Option<ServerTlsConfig>> {
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Identity::from_pem(read(cert)?, read(key)?)),
        _ if args.tls_self_signed => Some(self_signed(&data_dir.join("tls"), &names(args, listen))?),
        _ => None,
    };
    let Some(identity) = identity else {
        plaintext_allowed(args, listen)?;
        return Ok(None);
    };
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &args.client_ca {
        config = config.client_ca_root(Certificate::from_pem(read(ca)?)).client_auth_optional(false);
    }
    Ok(Some(config))
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
    Ok(Identity::from_pem(read(&cert)?, read(&key)?))
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
