//! `agent`: runs benchmark cells on this machine's compute units, for a coordinator (`run`) or
//! alone (`bench`).

use agent::{backend, bench, inspect, install, probe, session, simulate};

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

// glibc's malloc hands large tensors back to the kernel and faults them in again on every forward
// pass (BERT at 512 tokens: 325 → 187 ms with it tuned); mimalloc keeps them.
#[cfg(not(target_os = "macos"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "agent", version, about = "anefleet agent: on-device inference benchmarks on this machine")]
struct Cli {
    /// Inference threads (default: every core). Never more than the cores: that slows candle badly.
    #[arg(long, global = true, env = "ANEFLEET_THREADS")]
    threads: Option<usize>,
    /// Before each cell, wait until every thermal sensor reads at most this many degrees Celsius
    /// (at most 5 minutes, then run anyway with a warning). No sensor: no wait.
    #[arg(long, global = true, env = "ANEFLEET_COOL_BELOW_C", value_name = "CELSIUS", value_parser = parse_celsius)]
    cool_below_c: Option<f64>,
    /// The Python the `torch` backend's worker runs on (it needs torch and transformers); no
    /// such Python, no torch units.
    #[arg(long, global = true, env = "ANEFLEET_PYTHON", default_value = "python3")]
    python: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Connect to a coordinator and run the cells it assigns, reconnecting until stopped: the first
    /// SIGTERM (or ctrl-c) finishes and reports the running cell, then exits; a second cancels it.
    Run {
        /// The coordinator's URL, or several replicas' comma-separated: a session that fails or
        /// ends moves to the next, and the running cell is re-attached there.
        #[arg(long, env = "ANEFLEET_COORDINATOR", default_value = "http://127.0.0.1:7070")]
        coordinator: String,
        /// File holding the bearer token (otherwise the ANEFLEET_TOKEN environment variable).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Artifact cache and the agent's identity.
        #[arg(long)]
        cache_dir: PathBuf,
        /// Name shown in results and listings.
        #[arg(long)]
        name: String,
        /// Tags specs target (e.g. m2, studio).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Bound on the outbox (CACHE_DIR/outbox), where measurements wait until the coordinator
        /// has stored them: past it, interval histograms are dropped (logged and counted: the
        /// cell's timeline has a gap); a cell's final result is always kept.
        #[arg(long, default_value_t = 256, value_name = "MIB")]
        outbox_max_mib: u64,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Run a spec on this machine alone, without a coordinator.
    Bench {
        spec: PathBuf,
        #[arg(long, value_enum, default_value = "md")]
        format: bench::Format,
        /// The folder `{models}` in the spec stands for (default: $ANEFLEET_TEST_MODELS, else
        /// ~/.cache/anefleet/test-models, where models/scripts/fetch-test-models.sh puts them).
        #[arg(long, value_name = "DIR")]
        models: Option<PathBuf>,
    },
    /// A fleet of simulated agents, to load-test a coordinator: each a real session with its own
    /// identity that takes cells and streams made-up measurements (no model runs, nothing is
    /// downloaded). Prints what it measured as JSON (acknowledgement latency per report kind,
    /// wait for an assignment, cells finished, reports never acknowledged) when stopped
    /// (SIGINT, SIGTERM) or after --duration-s.
    Simulate(SimulateArgs),
    /// What this machine is and which backends and units it has.
    Info,
    /// What a model artifact is and what it needs, from its files alone: .mlpackage, .mlmodelc,
    /// anemll folders (meta.yaml), GGUF files, Hugging Face folders.
    Inspect {
        path: PathBuf,
        #[arg(long, value_enum, default_value = "json")]
        format: InspectFormat,
        /// Exit 1 with the reason when a Mac running this macOS version cannot load the model.
        #[arg(long, value_name = "VERSION", value_parser = parse_macos)]
        macos: Option<inspect::OsVersion>,
    },
    /// Run the agent as a daemon that starts at boot and restarts when it dies: a launchd daemon
    /// on macOS (/Library/LaunchDaemons/LABEL.plist), a systemd service on Linux
    /// (/etc/systemd/system/LABEL.service). Needs root; --threads and --cool-below-c are passed on.
    Install(InstallArgs),
    /// Stop the daemon (its running cell finishes first) and remove it; its cache and identity stay.
    Uninstall {
        #[arg(long, default_value = install::DEFAULT_LABEL)]
        label: String,
        /// Print the commands instead of running them.
        #[arg(long)]
        dry_run: bool,
    },
}

/// How to trust an https:// coordinator.
#[derive(clap::Args, Debug)]
struct TlsArgs {
    /// A CA certificate (PEM) to trust instead of the system's roots (the coordinator's
    /// DATA_DIR/tls/ca.pem when it serves --tls-self-signed).
    #[arg(long, env = "ANEFLEET_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for a coordinator that asks for one (mutual TLS), with --client-key.
    #[arg(long)]
    client_cert: Option<PathBuf>,
    #[arg(long)]
    client_key: Option<PathBuf>,
}

impl TlsArgs {
    fn client(&self) -> anyhow::Result<anefleet_proto::tls::ClientTls> {
        let identity =
            anefleet_proto::tls::identity(self.client_cert.as_deref(), self.client_key.as_deref()).map_err(anyhow::Error::msg)?;
        Ok(anefleet_proto::tls::ClientTls { ca_file: self.ca_file.clone(), identity })
    }
}

#[derive(clap::Args, Debug)]
struct InstallArgs {
    /// The coordinator's URL, or several replicas' comma-separated.
    #[arg(long, env = "ANEFLEET_COORDINATOR")]
    coordinator: String,
    /// File holding the bearer token; the daemon reads it at every start (the token itself is
    /// never written into the service file). Must not be readable by every user.
    #[arg(long)]
    token_file: PathBuf,
    /// Name shown in results and listings (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Tags specs target (e.g. m2, studio).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Artifact cache and the agent's identity (default: /Library/Application Support/anefleet
    /// on macOS, /var/lib/anefleet on Linux).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// The launchd label / systemd unit name.
    #[arg(long, default_value = install::DEFAULT_LABEL)]
    label: String,
    /// Run the daemon as this user (default: a dedicated user, `_anefleet` on macOS, `anefleet`
    /// on Linux, created when missing; `root` for root).
    #[arg(long)]
    user: Option<String>,
    /// A CA certificate (PEM) the daemon trusts for an https:// coordinator (its DATA_DIR/tls/ca.pem).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Print the service file and the commands instead of writing and running them.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // Before any thread pool exists: candle and rayon read it once.
    let threads = cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    backend::torch::set_python(&cli.python);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command, cli.threads, cli.cool_below_c)) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<bench::InvalidSpec>().is_some() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn install_daemon(a: &InstallArgs, threads: Option<usize>, cool_below_c: Option<f64>) -> anyhow::Result<ExitCode> {
    let steps = install::Manager::here().install_plan(&service(a, threads, cool_below_c)?)?;
    take(&steps, a.dry_run, &format!("installed and started {}", a.label))
}

fn uninstall_daemon(label: &str, dry_run: bool) -> anyhow::Result<ExitCode> {
    let steps = install::Manager::here().uninstall_plan(label)?;
    take(&steps, dry_run, &format!("stopped and removed {label}"))
}

fn service(a: &InstallArgs, threads: Option<usize>, cool_below_c: Option<f64>) -> anyhow::Result<install::Service> {
    let manager = install::Manager::here();
    let hostname = || Some(probe::device::profile().hostname).filter(|h| !h.is_empty()).unwrap_or_else(|| "agent".into());
    let service = install::Service {
        label: a.label.clone(),
        exe: std::env::current_exe().context("finding the agent binary")?,
        coordinator: a.coordinator.clone(),
        token_file: a.token_file.clone(),
        cache_dir: a.cache_dir.clone().unwrap_or_else(|| manager.default_cache_dir()),
        name: a.name.clone().unwrap_or_else(hostname),
        tags: a.tags.clone(),
        threads,
        cool_below_c,
        user: a.user.clone(),
        ca_file: a.ca_file.clone(),
    };
    Ok(service.resolve()?)
}

/// Prints the steps (`--dry-run`) or takes them.
fn take(steps: &[install::Step], dry_run: bool, done: &str) -> anyhow::Result<ExitCode> {
    if dry_run {
        print!("{}", install::describe(steps));
    } else {
        install::apply(steps)?;
        eprintln!("{done}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(command: Command, threads: Option<usize>, cool_below_c: Option<f64>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { coordinator, token_file, cache_dir, name, tags, outbox_max_mib, tls } => {
            let token = anefleet_proto::auth::client_token(token_file.as_deref()).map_err(anyhow::Error::msg)?;
            let outbox_max_bytes = outbox_max_mib.saturating_mul(1 << 20);
            let cfg =
                session::AgentConfig { coordinator, token, cache_dir, name, tags, cool_below_c, outbox_max_bytes, tls: tls.client()? };
            let stop = session::stop::on_signals().context("listening for SIGTERM and SIGINT")?;
            session::run_forever(cfg, stop).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { spec, format, models } => bench::bench(&spec, models.as_deref(), format, cool_below_c).await,
        Command::Install(a) => install_daemon(&a, threads, cool_below_c),
        Command::Uninstall { label, dry_run } => uninstall_daemon(&label, dry_run),
        Command::Inspect { path, format, macos } => inspect_command(&path, format, macos),
        Command::Simulate(a) => simulate_command(a).await,
        Command::Info => {
            let p = probe::device::profile();
            let units: Vec<String> = backend::probe_units().iter().map(|u| format!("{}:{}", u.backend, u.unit)).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "hostname": p.hostname, "os": p.os, "os_version": p.os_version, "arch": p.arch, "cpu_model": p.cpu_model,
                    "cpu_cores": p.cpu_cores, "memory_bytes": p.memory_bytes, "units": units,
                    "threads": candle_core::utils::get_num_threads(),
                    "torch": backend::torch::status(),
                }))?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(clap::Args, Debug)]
struct SimulateArgs {
    /// The coordinator's URL, or several replicas' comma-separated: the simulated agents start
    /// spread over them in turn, and each moves to the next when its session ends.
    #[arg(long, env = "ANEFLEET_COORDINATOR", default_value = "http://127.0.0.1:7070")]
    coordinator: String,
    /// File holding the bearer token (otherwise the ANEFLEET_TOKEN environment variable).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Simulated agents, each with its own connection.
    #[arg(long, default_value_t = 10)]
    agents: usize,
    /// Their names and identities: PREFIX-00001…
    #[arg(long, default_value = "sim")]
    prefix: String,
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// The backend:unit each offers (repeat for several).
    #[arg(long = "unit", default_value = "candle:cpu")]
    units: Vec<String>,
    /// Median simulated iteration latency, and its spread (a fraction, uniform either side).
    #[arg(long, default_value_t = 20.0)]
    latency_ms: f64,
    #[arg(long, default_value_t = 0.2)]
    spread: f64,
    /// An interval histogram this often while a cell runs (the real agent: about every second).
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// How long each cell runs.
    #[arg(long, default_value_t = 5.0)]
    cell_s: f64,
    /// The spread of each cell's duration around --cell-s (a fraction, uniform either side).
    #[arg(long, default_value_t = 0.0)]
    cell_spread: f64,
    /// Each agent drops its connection about this often and re-attaches its cell (0: never).
    #[arg(long, default_value_t = 0.0)]
    drop_every_s: f64,
    /// Stop after this long (otherwise at SIGINT or SIGTERM).
    #[arg(long)]
    duration_s: Option<f64>,
    /// Fetch each cell's artifacts before running it, as the real agent does, into the cache
    /// DIR/<agent name>/ (resumable, verified, installed); the report's `fetch` figures time it.
    #[arg(long, value_name = "DIR")]
    fetch_dir: Option<PathBuf>,
    #[command(flatten)]
    tls: TlsArgs,
}

async fn simulate_command(a: SimulateArgs) -> anyhow::Result<ExitCode> {
    let bad = |what: &str| anyhow::anyhow!("simulate: {what}");
    if !(a.latency_ms > 0.0 && a.latency_ms.is_finite()) {
        return Err(bad(&format!("--latency-ms must be above 0, got {}", a.latency_ms)));
    }
    for (flag, v) in [("--spread", a.spread), ("--cell-spread", a.cell_spread)] {
        if !(0.0..1.0).contains(&v) {
            return Err(bad(&format!("{flag} must be in [0, 1), got {v}")));
        }
    }
    if a.interval_ms < 10 || !(a.cell_s > 0.0 && a.cell_s.is_finite()) || !(a.drop_every_s >= 0.0 && a.drop_every_s.is_finite()) {
        return Err(bad("--interval-ms must be at least 10, --cell-s above 0, --drop-every-s at least 0"));
    }
    let units = a
        .units
        .iter()
        .map(|u| match u.split_once(':') {
            Some((b, unit)) if !b.is_empty() && !unit.is_empty() => {
                Ok(anefleet_proto::pb::ComputeUnit { backend: b.into(), unit: unit.into() })
            }
            _ => Err(bad(&format!("--unit `{u}` is not backend:unit"))),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let token = anefleet_proto::auth::client_token(a.token_file.as_deref()).map_err(anyhow::Error::msg)?;
    let cfg = simulate::SimConfig {
        coordinator: a.coordinator,
        token,
        agents: a.agents,
        prefix: a.prefix,
        tags: a.tags,
        units,
        latency: std::time::Duration::from_secs_f64(a.latency_ms / 1000.0),
        spread: a.spread,
        interval: std::time::Duration::from_millis(a.interval_ms),
        cell: std::time::Duration::from_secs_f64(a.cell_s),
        cell_spread: a.cell_spread,
        drop_every: std::time::Duration::from_secs_f64(a.drop_every_s),
        tls: a.tls.client()?,
        fetch_dir: a.fetch_dir,
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let duration = a.duration_s.map(std::time::Duration::from_secs_f64);
    tokio::spawn(async move {
        let until = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = until => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated() => {}
        }
        let _ = stop_tx.send(true);
    });
    let report = simulate::run(cfg, stop).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// Resolves at SIGTERM (never where there is none).
async fn terminated() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        term.recv().await;
        return;
    }
    std::future::pending::<()>().await
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum InspectFormat {
    Json,
    Md,
}

fn inspect_command(path: &std::path::Path, format: InspectFormat, macos: Option<inspect::OsVersion>) -> anyhow::Result<ExitCode> {
    let info = inspect::inspect(path).with_context(|| format!("inspecting {}", path.display()))?;
    match format {
        InspectFormat::Json => println!("{}", serde_json::to_string_pretty(&info)?),
        InspectFormat::Md => print!("{}", inspect::to_markdown(&info)),
    }
    if let Some(v) = macos
        && let Err(reason) = inspect::check_os_support(&info, v)
    {
        eprintln!("error: {reason}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_macos(s: &str) -> Result<inspect::OsVersion, String> {
    s.parse()
}

fn parse_celsius(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(c) if (1.0..=150.0).contains(&c) => Ok(c),
        _ => Err(format!("`{s}` is not a temperature in degrees Celsius between 1 and 150")),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ANEFLEET_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
