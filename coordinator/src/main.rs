//! `coordinator`: serves the anefleet API and is the command line users submit and read runs with.

mod access;
mod artifacts;
mod cli;
mod error;
mod schedule;
mod serve;
mod service;
mod store;
mod tls;
mod upload;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::{ClientArgs, Format, InvalidSpec};

#[derive(Parser, Debug)]
#[command(name = "coordinator", version, about = "anefleet coordinator: on-device inference benchmarks across a fleet of agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the API agents and users connect to.
    Serve(serve::ServeArgs),
    /// Bring the store's schema up to date and say its version (`serve` does this too, first).
    Migrate {
        /// The data directory whose SQLite store to migrate (DATA_DIR/anefleet.db).
        #[arg(long, required_unless_present = "store")]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        store: serve::StoreArgs,
    },
    /// Validate a spec, upload its artifacts and start a run; prints the run id last.
    Submit {
        spec: PathBuf,
        /// Follow the run live, then print its results.
        #[arg(long)]
        wait: bool,
        /// The folder `{models}` in the spec stands for (default: $ANEFLEET_TEST_MODELS, else
        /// ~/.cache/anefleet/test-models, where models/scripts/fetch-test-models.sh puts them).
        #[arg(long, value_name = "DIR")]
        models: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A run's results.
    Results {
        run: String,
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
        /// Also write each cell's interval histograms as DIR/<cell>.hlog (HdrHistogram interval log).
        #[arg(long, value_name = "DIR")]
        hlog_dir: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop a run: cells not started fail as cancelled, running ones stop on their agents.
    Cancel {
        run: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Runs, most recent first.
    Runs {
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Agents the coordinator knows, with their state.
    Agents {
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Compare two runs, or a saved baseline and a run (A → B).
    Compare {
        a: String,
        b: String,
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
        /// Exit 1 when any matched cell got significantly slower.
        #[arg(long)]
        fail_on_regression: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Named baselines: keep a run, or record a figure measured elsewhere.
    Baseline {
        #[command(subcommand)]
        command: cli::baseline::BaselineCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Credentials: who may call the coordinator, with which role (admin only).
    Credentials {
        #[command(subcommand)]
        command: cli::credentials::CredentialsCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One self-contained HTML file with every panel of a run (inline SVG and CSS, no network).
    Report {
        run: String,
        /// Also compare the run with this saved baseline (or another run), regressions highlighted.
        #[arg(long)]
        baseline: Option<String>,
        /// Write the optimal-configurations document (Markdown) instead: per device the recommended
        /// configuration per context length with its evidence, the trade-offs and what was rejected.
        #[arg(long)]
        optimal: bool,
        /// Default: report.html, or optimal-configurations.md with --optimal ("-": standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Everything on this machine: a coordinator, two agents and a run on small real models.
    Quickstart(cli::quickstart::QuickstartArgs),
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<InvalidSpec>().is_some() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve::serve(args).await?,
        Command::Migrate { data_dir, store } => {
            let at = store.location(data_dir.as_deref().unwrap_or(std::path::Path::new(".")))?;
            let migrated = tokio::task::spawn_blocking(move || store::Store::migrate(&at).map(|m| (at, m))).await?;
            let (at, m) = migrated?;
            let applied = if m.applied.is_empty() { "nothing to apply".to_string() } else { format!("applied {}", m.applied.join(", ")) };
            println!("{at}: schema version {} (was {}; {applied})", m.to, m.from);
        }
        Command::Submit { spec, wait, models, client } => {
            return Ok(match cli::submit::submit(&client, &spec, models.as_deref(), wait).await? {
                cli::submit::Outcome::SomeFailed => ExitCode::FAILURE,
                _ => ExitCode::SUCCESS,
            });
        }
        Command::Results { run, format, hlog_dir, client } => cli::show::results(&client, &run, format, hlog_dir.as_deref()).await?,
        Command::Runs { format, client } => cli::show::runs(&client, format).await?,
        Command::Cancel { run, reason, client } => cli::show::cancel(&client, &run, &reason).await?,
        Command::Agents { format, client } => cli::show::agents(&client, format).await?,
        Command::Compare { a, b, format, fail_on_regression, client } => {
            return cli::compare::compare(&client, &a, &b, format, fail_on_regression).await;
        }
        Command::Baseline { command, client } => cli::baseline::baseline(&client, command).await?,
        Command::Credentials { command, client } => cli::credentials::credentials(&client, command).await?,
        Command::Report { run, baseline, optimal: false, out, client } => {
            cli::report::report(&client, &run, baseline.as_deref(), &out.unwrap_or_else(|| "report.html".into())).await?
        }
        Command::Report { run, optimal: true, out, client, .. } => {
            cli::report::optimal(&client, &run, &out.unwrap_or_else(|| "optimal-configurations.md".into())).await?
        }
        Command::Quickstart(args) => return cli::quickstart::quickstart(args).await,
    }
    Ok(ExitCode::SUCCESS)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ANEFLEET_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    /// The client options of `cmd` with `--coordinator URL --token-file F` placed at `at`.
    fn parse_with_client_options(cmd: &[&str], at: usize) -> Cli {
        let mut args = vec!["coordinator"];
        args.extend(&cmd[..at]);
        args.extend(["--coordinator", "http://c:1", "--token-file", "/t"]);
        args.extend(&cmd[at..]);
        Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?} refused: {e}"))
    }

    #[test]
    fn client_options_are_accepted_after_every_subcommand_and_argument() {
        let commands: &[&[&str]] = &[
            &["submit", "spec.toml", "--wait"],
            &["results", "RUN", "--format", "json"],
            &["runs"],
            &["agents"],
            &["cancel", "RUN", "--reason", "r"],
            &["compare", "A", "B"],
            &["report", "RUN", "--out", "r.html"],
            &["baseline", "save", "before", "RUN"],
            &["baseline", "list"],
            &["credentials", "add", "mac-1", "--role", "agent"],
            &["credentials", "revoke", "mac-1"],
            &["baseline", "record", "d", "--model", "m", "--unit", "coreml:ane", "--against", "coreml:cpu", "--speedup", "1.3"],
        ];
        for cmd in commands {
            // Every place between arguments, not between an option and its value.
            for at in (1..=cmd.len()).filter(|&at| !cmd[at - 1].starts_with("--") || cmd[at - 1] == "--wait") {
                let cli = parse_with_client_options(cmd, at);
                let client = match cli.command {
                    Command::Submit { client, .. }
                    | Command::Results { client, .. }
                    | Command::Runs { client, .. }
                    | Command::Agents { client, .. }
                    | Command::Cancel { client, .. }
                    | Command::Compare { client, .. }
                    | Command::Report { client, .. }
                    | Command::Baseline { client, .. }
                    | Command::Credentials { client, .. } => client,
                    other => panic!("{cmd:?} parsed as {other:?}"),
                };
                assert_eq!(client.coordinator, "http://c:1", "{cmd:?} at {at}");
                assert_eq!(client.token_file.as_deref(), Some(std::path::Path::new("/t")), "{cmd:?} at {at}");
            }
        }
    }
}
