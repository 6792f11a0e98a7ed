//! A fleet of real processes on loopback for the integration tests: a `coordinator serve` and
//! `agent run`s, driven through the same command line users have.

#![allow(dead_code)]

pub mod browser;
pub mod postgres;
pub mod proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn coordinator_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_coordinator"))
}

/// The agent binary beside the coordinator (`cargo build --release --workspace` builds both).
pub fn agent_exe() -> PathBuf {
    let p = coordinator_exe().with_file_name("agent");
    assert!(p.exists(), "{} is missing: run `cargo build --release --workspace` before the tests", p.display());
    p
}

/// `agent simulate` of `agents` agents at `coordinators` (a comma-separated list), with the
/// token in `token_file` and reports every few milliseconds of made-up latency; stderr shown.
pub fn simulate_command(coordinators: &str, token_file: &Path, agents: usize) -> Command {
    let mut c = Command::new(agent_exe());
    c.args(["simulate", "--coordinator", coordinators, "--agents", &agents.to_string(), "--latency-ms", "5"])
        .arg("--token-file")
        .arg(token_file)
        .env("ANEFLEET_LOG", "warn")
        .stderr(Stdio::inherit());
    c
}

/// The test models (models/scripts/fetch-test-models.sh puts them there).
pub fn models_dir() -> PathBuf {
    anefleet_models::test_models::resolve(None).unwrap_or_else(|e| panic!("{e}"))
}

/// Polls `cond` until it holds or the deadline passes (then panics with `what`).
pub fn wait_until<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {}s waiting for {what}", timeout.as_secs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGKILL, as a crash or a power cut would.
    pub fn kill9(&mut self) {
        self.0.kill().expect("kill");
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command, log: &Path) -> Proc {
    let f = std::fs::File::create(log).expect("log file");
    let child = cmd.stdin(Stdio::null()).stdout(f.try_clone().expect("log")).stderr(f).spawn().expect("spawn");
    Proc(child)
}

/// One small encode cell on the CPU: the quickest real run, for tests about everything around it.
pub const QUICK_SPEC: &str = r#"
name = "quick encode"
[models.minilm]
candle = "{models}/all-minilm-l6-v2"
[[benchmarks]]
model = "minilm"
workload = "encode"
context_lengths = [32]
units = ["candle:cpu"]
[measure]
warmup = 0
min_iterations = 3
min_duration_s = 0
repetitions = 1
cooldown_s = 0
"#;

pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub coordinator: Option<Proc>,
    pub agents: Vec<(String, Proc)>,
    pub grace_s: u64,
    /// The address the coordinator listens on (loopback unless a test asks otherwise).
    pub listen_host: String,
    /// More `serve` options (e.g. `--tls-self-signed`).
    pub serve_args: Vec<String>,
}

impl Fleet {
    /// A coordinator on a free loopback port with its own data dir.
    pub fn start(grace_s: u64) -> Fleet {
        Fleet::start_on("127.0.0.1", grace_s)
    }

    /// A coordinator listening on `host` (e.g. "0.0.0.0": not loopback, so the dashboard asks
    /// for a credential; plaintext there needs `--insecure`); clients still reach it on 127.0.0.1.
    pub fn start_on(host: &str, grace_s: u64) -> Fleet {
        let insecure: &[&str] = if host.starts_with("127.") { &[] } else { &["--insecure"] };
        Fleet::start_with(host, grace_s, insecure)
    }

    /// A coordinator on `host` with more `serve` options; `--tls-self-signed` makes the fleet's
    /// URL https:// and its clients and agents trust DATA_DIR/tls/ca.pem.
    pub fn start_with(host: &str, grace_s: u64, serve_args: &[&str]) -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = Fleet {
            dir,
            port: free_port(),
            coordinator: None,
            agents: Vec::new(),
            grace_s,
            listen_host: host.to_string(),
            serve_args: serve_args.iter().map(|a| a.to_string()).collect(),
        };
        f.start_coordinator();
        f
    }

    pub fn tls(&self) -> bool {
        self.serve_args.iter().any(|a| a == "--tls-self-signed")
    }

    /// The private CA of a fleet serving `--tls-self-signed`.
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir().join("tls").join("ca.pem")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("coordinator")
    }

    pub fn token_file(&self) -> PathBuf {
        self.data_dir().join("token")
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn start_coordinator(&mut self) {
        let _ = std::fs::remove_file(self.data_dir().join("address"));
        let log = self.dir.path().join(format!("coordinator-{}.log", Instant::now().elapsed().as_nanos()));
        let proc = spawn(
            Command::new(coordinator_exe())
                .args([
                    "serve",
                    "--listen",
                    &format!("{}:{}", self.listen_host, self.port),
                    "--agent-grace-s",
                    &self.grace_s.to_string(),
                    "--data-dir",
                ])
                .arg(self.data_dir())
                .args(&self.serve_args),
            &log,
        );
        self.coordinator = Some(proc);
        let addr = self.data_dir().join("address");
        wait_until("the coordinator to listen", Duration::from_secs(30), || addr.exists().then_some(()));
    }

    /// Starts an agent whose identity lives in `cache` (reuse it to restart the same agent).
    pub fn start_agent(&mut self, name: &str, tags: &[&str]) -> PathBuf {
        self.start_agent_with(name, tags, &self.token_file(), &format!("agent-{name}"))
    }

    /// Starts an agent with the token in `token_file` and its identity in the fleet's folder `cache`.
    pub fn start_agent_with(&mut self, name: &str, tags: &[&str], token_file: &Path, cache: &str) -> PathBuf {
        let url = self.url();
        self.start_agent_at(name, tags, token_file, cache, &url, None)
    }

    /// Starts an agent that reaches the coordinator at `url`, inside the network namespace
    /// `netns` when given (`ip netns exec` runs the agent itself: its pid is the agent's).
    pub fn start_agent_at(&mut self, name: &str, tags: &[&str], token_file: &Path, cache: &str, url: &str, netns: Option<&str>) -> PathBuf {
        let cache = self.dir.path().join(cache);
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(agent_exe());
                c
            }
            None => Command::new(agent_exe()),
        };
        cmd.args(["--threads", "1", "run", "--coordinator", url, "--name", name])
            .arg("--token-file")
            .arg(token_file)
            .arg("--cache-dir")
            .arg(&cache);
        if self.tls() {
            cmd.arg("--ca-file").arg(self.ca_file());
        }
        for t in tags {
            cmd.args(["--tag", t]);
        }
        let log = self.dir.path().join(format!("agent-{name}-{}.log", self.agents.len()));
        self.agents.push((name.to_string(), spawn(&mut cmd, &log)));
        cache
    }

    pub fn kill_agent(&mut self, name: &str) {
        let i = self.agents.iter().position(|(n, _)| n == name).expect("agent");
        let (_, mut p) = self.agents.remove(i);
        p.kill9();
    }

    /// Runs a client command with the fleet's URL and token.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(&std::fs::read_to_string(self.token_file()).expect("token"), args)
    }

    /// Runs a client command with the fleet's URL and the credential `token`.
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(coordinator_exe());
        cmd.args(args).env("ANEFLEET_COORDINATOR", self.url()).env("ANEFLEET_TOKEN", token.trim()).env("ANEFLEET_LOG", "warn");
        if self.tls() {
            cmd.env("ANEFLEET_CA_FILE", self.ca_file());
        }
        cmd.output().expect("run coordinator cli")
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cli(args);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Waits until `n` agents are connected.
    pub fn wait_for_agents(&self, n: usize) {
        wait_until(&format!("{n} connected agents"), Duration::from_secs(60), || {
            let v = self.json(&["agents", "--format", "json"]);
            (v.as_array()?.iter().filter(|a| a["state"] != "offline").count() >= n).then_some(())
        });
    }

    /// The value of one series of the coordinator's `/metrics` (on loopback, no credential).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let text = ureq::get(&format!("{}/metrics", self.url())).call().ok()?.body_mut().read_to_string().ok()?;
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Writes a spec into the fleet's folder, with `{models}` replaced.
    pub fn write_spec(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, anefleet_models::test_models::expand(text, &models_dir())).expect("write spec");
        p
    }

    /// Submits without waiting; returns the run id (the last line of stdout).
    pub fn submit(&self, spec: &Path) -> String {
        let out = self.cli(&["submit", spec.to_str().expect("utf-8 path")]);
        assert!(out.status.success(), "submit failed: {}", String::from_utf8_lossy(&out.stderr));
        last_line(&out.stdout)
    }

    pub fn results(&self, run: &str) -> serde_json::Value {
        self.json(&["results", run, "--format", "json"])
    }

    /// Waits until the run reaches a final state; returns its results.
    pub fn wait_for_run(&self, run: &str, timeout: Duration) -> serde_json::Value {
        wait_until(&format!("run {run} to end"), timeout, || {
            let r = self.results(run);
            matches!(r["run"]["state"].as_str(), Some("finished" | "failed" | "cancelled")).then_some(r)
        })
    }
}

/// One generate cell of tiny-qwen3 that measures for 4 s: long enough to kill things under it.
pub fn long_cell(fan_out: &str) -> String {
    format!(
        "name = \"one long cell\"\n[models.tiny-qwen3]\ncandle = \"{{models}}/tiny-qwen3\"\n[[benchmarks]]\nmodel = \"tiny-qwen3\"\n\
         workload = \"generate\"\ncontext_lengths = [64]\nmax_new_tokens = 8\nunits = [\"candle:cpu\"]\n[measure]\nwarmup = 0\n\
         min_iterations = 1\nmin_duration_s = 4\nrepetitions = 1\ncooldown_s = 0\n[targets]\nfan_out = \"{fan_out}\"\n"
    )
}

/// One encode cell of all-MiniLM per (context length, batch size), any agent: `contexts` × 5
/// cells, in benchmarks of at most 50 context lengths, each measuring `min_duration_s`.
pub fn encode_cells(contexts: usize, min_duration_s: u32) -> String {
    let lengths: Vec<String> = (0..contexts).map(|i| (16 + i).to_string()).collect();
    let benchmarks: String = lengths
        .chunks(50)
        .map(|c| {
            format!(
                "[[benchmarks]]\nmodel = \"minilm\"\nworkload = \"encode\"\ncontext_lengths = [{}]\nbatch_sizes = [1, 2, 3, 4, 5]\n\
                 units = [\"candle:cpu\"]\n",
                c.join(", ")
            )
        })
        .collect();
    format!(
        "name = \"encode cells\"\n[models.minilm]\ncandle = \"{{models}}/all-minilm-l6-v2\"\n{benchmarks}\
         [measure]\nwarmup = 0\nmin_iterations = 1\nmin_duration_s = {min_duration_s}\nrepetitions = 1\ncooldown_s = 0\n\
         [targets]\nfan_out = \"any\"\n"
    )
}

pub fn last_line(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout).lines().last().unwrap_or_default().trim().to_string()
}

/// Cells of a results document in the given state.
pub fn cells_in<'a>(results: &'a serde_json::Value, state: &str) -> Vec<&'a serde_json::Value> {
    results["cells"].as_array().map(|c| c.iter().filter(|c| c["state"] == state).collect()).unwrap_or_default()
}
