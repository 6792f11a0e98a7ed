//! TLS end to end on real processes: a coordinator serving its own private CA, an agent and
//! `submit` over https; a plaintext client, a client without the CA and one trusting another CA
//! are refused; plaintext off loopback needs --insecure.

mod common;

use std::process::Command;

use common::{Fleet, QUICK_SPEC, coordinator_exe, free_port};

#[test]
fn an_agent_and_submit_work_over_tls_and_nothing_else_gets_in() {
    let mut f = Fleet::start_with("127.0.0.1", 60, &["--tls-self-signed"]);
    assert!(f.url().starts_with("https://"));
    let ca = std::fs::read_to_string(f.ca_file()).expect("the private CA");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::metadata(f.data_dir().join("tls").join("ca-key.pem")).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }
    f.start_agent("tls-agent", &[]);
    f.wait_for_agents(1);
    let spec = f.write_spec("tls.toml", QUICK_SPEC);
    let out = f.cli(&["submit", spec.to_str().unwrap(), "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_string();
    assert_eq!(f.results(&run)["run"]["state"], "finished");

    let token = std::fs::read_to_string(f.token_file()).unwrap();
    let runs = |url: &str, ca: Option<&std::path::Path>| {
        let mut cmd = Command::new(coordinator_exe());
        cmd.args(["runs", "--coordinator", url]).env("ANEFLEET_TOKEN", token.trim()).env_remove("ANEFLEET_CA_FILE");
        if let Some(ca) = ca {
            cmd.arg("--ca-file").arg(ca);
        }
        cmd.output().unwrap()
    };
    // Plaintext to the TLS port: no answer that a client takes.
    let out = runs(&format!("http://127.0.0.1:{}", f.port), None);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    // Without the private CA, or trusting another coordinator's CA: the certificate is refused.
    let out = runs(&f.url(), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach the coordinator") && stderr.contains("--ca-file"), "{stderr}");
    let other = Fleet::start_with("127.0.0.1", 60, &["--tls-self-signed"]);
    let out = runs(&f.url(), Some(&other.ca_file()));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let out = runs(&f.url(), Some(&f.ca_file()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&run));
}

/// A client that speaks only HTTP/1.1 over TLS (a Prometheus scrape, curl --http1.1) reads
/// `/metrics`; one that trusts another CA does not get in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_clients_read_the_dashboard_over_tls() {
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;

    let f = tokio::task::block_in_place(|| Fleet::start_with("127.0.0.1", 60, &["--tls-self-signed"]));
    let other = tokio::task::block_in_place(|| Fleet::start_with("127.0.0.1", 60, &["--tls-self-signed"]));
    let get = |ca: std::path::PathBuf| async move {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls_pki_types::CertificateDer::from_pem_file(ca).unwrap()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", f.port)).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp).await?;
        tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await?;
        let mut answer = String::new();
        tls.read_to_string(&mut answer).await?;
        Ok::<String, std::io::Error>(answer)
    };
    let answer = get(f.ca_file()).await.expect("an HTTP/1.1 answer over TLS");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("anefleet_agents{state=\"idle\"}"), "{answer}");
    let refused = get(other.ca_file()).await;
    assert!(refused.is_err(), "a client trusting another CA got {refused:?}");
}

/// Mutual TLS: with `--client-ca`, only clients showing a certificate of that CA get in.
#[test]
fn client_certificates_are_required_with_client_ca() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["ci-runner".to_string()]).unwrap().signed_by(&client_key, &ca).unwrap();
    let file = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (ca_pem, cert, key) =
        (file("clients-ca.pem", ca.pem()), file("client.pem", client.pem()), file("client-key.pem", client_key.serialize_pem()));
    let f = Fleet::start_with("127.0.0.1", 60, &["--tls-self-signed", "--client-ca", ca_pem.to_str().unwrap()]);
    let out = f.cli(&["runs"]);
    assert_eq!(out.status.code(), Some(1), "no client certificate: {}", String::from_utf8_lossy(&out.stderr));
    let out = f.cli(&["runs", "--client-cert", cert.to_str().unwrap(), "--client-key", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn plaintext_off_loopback_needs_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(coordinator_exe())
        .args(["serve", "--listen", &format!("0.0.0.0:{}", free_port()), "--data-dir"])
        .arg(dir.path().join("fleet"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("credentials would cross the network in clear"), "{stderr}");
    assert!(stderr.contains("--tls-self-signed") && stderr.contains("--insecure"), "{stderr}");
    assert!(!dir.path().join("fleet").join("token").exists(), "a refused start writes nothing it does not need");
}
