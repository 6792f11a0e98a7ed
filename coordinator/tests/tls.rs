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
