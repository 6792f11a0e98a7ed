//! `agent`: runs benchmark cells on this machine's compute units, for a coordinator (`run`) or
//! alone (`bench`).

use agent::{backend, bench, probe, session};

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Connect to a coordinator and run the cells it assigns, reconnecting until stopped: the first
    /// SIGTERM (or ctrl-c) finishes and reports the running cell, then exits; a second cancels it.
    Run {
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
    },
    /// Run a spec on this machine alone, without a coordinator.
    Bench {
        spec: PathBuf,
        #[arg(long, value_enum, default_value = "md")]
        format: bench::Format,
    },
    /// What this machine is and which backends and units it has.
    Info,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // Before any thread pool exists: candle and rayon read it once.
    let threads = cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command, cli.cool_below_c)) {
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

async fn run(command: Command, cool_below_c: Option<f64>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { coordinator, token_file, cache_dir, name, tags } => {
            let token = anefleet_proto::auth::client_token(token_file.as_deref()).map_err(anyhow::Error::msg)?;
            let cfg = session::AgentConfig { coordinator, token, cache_dir, name, tags, cool_below_c };
            let stop = session::stop::on_signals().context("listening for SIGTERM and SIGINT")?;
            session::run_forever(cfg, stop).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { spec, format } => bench::bench(&spec, format, cool_below_c).await,
        Command::Info => {
            let p = probe::device::profile();
            let units: Vec<String> = backend::probe_units().iter().map(|u| format!("{}:{}", u.backend, u.unit)).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "hostname": p.hostname, "os": p.os, "os_version": p.os_version, "arch": p.arch, "cpu_model": p.cpu_model,
                    "cpu_cores": p.cpu_cores, "memory_bytes": p.memory_bytes, "units": units,
                    "threads": candle_core::utils::get_num_threads(),
                }))?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
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
