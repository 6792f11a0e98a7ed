//! A real PostgreSQL for tests: one server per test process, made with `initdb` in a temporary
//! directory and run as an unprivileged user (`nobody` when the tests run as root, which
//! PostgreSQL refuses), listening on a free loopback port; each caller gets a database of its own.
//! It takes TLS too (`sslmode=require`), with a certificate for 127.0.0.1 from a private CA
//! ([`TestPostgres::ca_file`]); the role `certuser` signs in only with a client certificate that
//! CA signed for it ([`TestPostgres::client_identity`]). The server dies with the process (`setpriv --pdeathsig`); a directory left by a process that
//! died is removed by the next one. The binaries are found on PATH, else in Debian's
//! /usr/lib/postgresql/VERSION/bin (scripts/install-test-deps.sh installs them).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct TestPostgres {
    port: u16,
    bin: PathBuf,
    dir: PathBuf,
}

static SERVER: OnceLock<Result<TestPostgres, String>> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);
/// `CREATE DATABASE` copies template1: one at a time.
static CREATING: Mutex<()> = Mutex::new(());

/// The folder holding initdb, pg_ctl and postgres.
pub fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    debian.sort_by_key(|p| std::cmp::Reverse(p.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())));
    on_path.chain(debian).find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
}

impl TestPostgres {
    /// The process's server, started on first use.
    pub fn shared() -> &'static TestPostgres {
        match SERVER.get_or_init(|| {
            // Started from a thread that never ends: --pdeathsig fires when the thread that
            // spawned the server exits, not only the process.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(TestPostgres::start());
                loop {
                    std::thread::park();
                }
            });
            rx.recv().unwrap_or_else(|e| Err(e.to_string()))
        }) {
            Ok(s) => s,
            Err(e) => panic!("the test PostgreSQL could not start: {e}"),
        }
    }

    /// A URL to a new, empty database of the shared server.
    pub fn fresh_database() -> String {
        let server = TestPostgres::shared();
        let name = format!("t{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::SeqCst));
        let _one = CREATING.lock().unwrap_or_else(|p| p.into_inner());
        server.psql(&format!("CREATE DATABASE {name}"));
        server.url(&name)
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca_file() -> PathBuf {
        TestPostgres::shared().dir.join("ca.pem")
    }

    /// The client certificate and key (PEM) of the role `certuser`, which may sign in with
    /// nothing else (pg_hba `cert`).
    pub fn client_identity() -> (PathBuf, PathBuf) {
        let dir = &TestPostgres::shared().dir;
        (dir.join("client.pem"), dir.join("client-key.pem"))
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://anefleet@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs one SQL statement on the database of `url` (one of [`TestPostgres::fresh_database`]);
    /// returns its rows, one a line, columns split by `|`.
    pub fn query(url: &str, sql: &str) -> String {
        let db = url.rsplit('/').next().expect("a database in the URL");
        TestPostgres::shared().psql_on(db, sql)
    }

    /// Runs one SQL statement as the superuser, on the `postgres` database; panics on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_on("postgres", sql)
    }

    fn psql_on(&self, db: &str, sql: &str) -> String {
        let psql = if self.bin.join("psql").is_file() { self.bin.join("psql") } else { PathBuf::from("psql") };
        let out = Command::new(psql)
            .args(["-X", "-q", "-t", "-A", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "anefleet", "-d", db, "-c", sql])
            .output()
            .expect("psql");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn start() -> Result<TestPostgres, String> {
        let bin = bin_dir().ok_or("no initdb and postgres on PATH or in /usr/lib/postgresql/*/bin: run scripts/install-test-deps.sh")?;
        let parent = std::env::temp_dir().join("anefleet-test-postgres");
        std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        remove_dead(&parent);
        let dir = parent.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let root = is_root();
        if root {
            // PostgreSQL will not run as root: the directory goes to nobody, who runs it.
            chown_nobody(&parent)?;
            chown_nobody(&dir)?;
        }
        let data = dir.join("data");
        let initdb = as_server_user(root, &bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "anefleet", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!("initdb: {}", String::from_utf8_lossy(&initdb.stderr)));
        }
        make_certificates(&dir, root)?;
        // Before initdb's `trust` lines: certuser over TLS with a client certificate, or not at all.
        let hba = data.join("pg_hba.conf");
        let lines = std::fs::read_to_string(&hba).map_err(|e| format!("{}: {e}", hba.display()))?;
        let cert_only = "hostssl all certuser 127.0.0.1/32 cert\nhost all certuser 127.0.0.1/32 reject\n";
        std::fs::write(&hba, format!("{cert_only}{lines}")).map_err(|e| format!("{}: {e}", hba.display()))?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.join("postgres.log")).map_err(|e| e.to_string())?;
        if root {
            chown_nobody(&dir.join("postgres.log"))?;
        }
        let mut server = as_server_user(root, &bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="])
            // A test server: nothing here must survive a power loss, and it should start fast.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"])
            .args(["-c", "ssl=on", "-c"])
            .arg(format!("ssl_cert_file={}", dir.join("server.pem").display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", dir.join("server-key.pem").display()))
            .arg("-c")
            .arg(format!("ssl_ca_file={}", dir.join("ca.pem").display()))
            .stdout(Stdio::null())
            .stderr(log);
        server.spawn().map_err(|e| format!("postgres: {e}"))?;
        let s = TestPostgres { port, bin, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !s.answers() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(s.dir.join("postgres.log")).unwrap_or_default();
                return Err(format!("postgres did not start within 30 s: {log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        s.psql("CREATE ROLE certuser LOGIN SUPERUSER");
        Ok(s)
    }

    fn answers(&self) -> bool {
        let ready = self.bin.join("pg_isready");
        Command::new(if ready.is_file() { ready } else { PathBuf::from("pg_isready") })
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "anefleet"])
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// A private CA (ca.pem), the server's certificate for 127.0.0.1 it signed, the key readable by
/// the server's user alone, as PostgreSQL demands; and a client certificate for `certuser`.
fn make_certificates(dir: &Path, root: bool) -> Result<(), String> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let e = |e: rcgen::Error| e.to_string();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(e)?).map_err(e)?;
    let key = KeyPair::generate().map_err(e)?;
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()]).map_err(e)?.signed_by(&key, &ca).map_err(e)?;
    let client_key = KeyPair::generate().map_err(e)?;
    let mut client_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    client_params.distinguished_name.push(DnType::CommonName, "certuser");
    let client = client_params.signed_by(&client_key, &ca).map_err(e)?;
    let write = |name: &str, text: String, mode: u32| -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())?;
        if root { chown_nobody(&p) } else { Ok(()) }
    };
    write("ca.pem", ca.pem(), 0o644)?;
    write("server.pem", server.pem(), 0o644)?;
    write("server-key.pem", key.serialize_pem(), 0o600)?;
    write("client.pem", client.pem(), 0o644)?;
    write("client-key.pem", client_key.serialize_pem(), 0o600)
}

/// `program` as the user the server runs as, killed when the thread that started it ends.
fn as_server_user(root: bool, program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    if root {
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
    }
    c.args(["--pdeathsig", "KILL", "--"]).arg(program);
    c
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn chown_nobody(p: &Path) -> Result<(), String> {
    let ok = Command::new("chown").arg("nobody:nogroup").arg(p).status().is_ok_and(|s| s.success());
    if ok { Ok(()) } else { Err(format!("chown nobody {}", p.display())) }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Directories of test processes that are gone (their servers died with them).
fn remove_dead(parent: &Path) {
    for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let alive =
            e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()).is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
