//! Every command of the README's `sh` blocks, run as written against a live coordinator and
//! agent started by the README's own commands, and checked against what the README says it
//! does. A README command this test does not know fails it (add it to `ways`), and so does an
//! entry of `ways` the README no longer has. What cannot run here is skipped with the reason.
//!
//! Two things differ from a user's terminal, both printed: the port (`127.0.0.1:7070` becomes a
//! free one, and `ANEFLEET_COORDINATOR` points there for the commands that rely on the default)
//! and the folders (the commands run in a fresh folder holding links to the checkout's
//! `examples`, `scripts`, `models` and built binaries, with a fresh `HOME`).

#[path = "readme/checks.rs"]
mod checks;
mod common;
#[path = "readme/shell.rs"]
mod shell;

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anefleet_proto::spec::Spec;
use common::{Proc, coordinator_exe, free_port, models_dir, wait_until};

/// What a finished command left.
struct Done {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

type Check = fn(&mut Ctx, &Done) -> Result<(), String>;

enum Way {
    /// Run to its end; exit 0 and the check must hold.
    Run(Check),
    /// A server: started, left running until the end, ready when the condition holds.
    Background(fn(&Ctx) -> bool),
    /// `export NAME=VALUE`: the value (shell-expanded) is in the environment of what follows.
    Export,
    Skip(&'static str),
}

/// How each README command is exercised, by its exact text.
fn ways() -> Vec<(&'static str, Way)> {
    use Way::*;
    vec![
        ("scripts/install-build-deps.sh", Run(exit_0)),
        (
            "cargo build --release --workspace",
            Skip("the suite's own `cargo test --release --workspace` built these binaries; a second build would wait on its lock"),
        ),
        ("target/release/coordinator quickstart", Run(quickstart)),
        ("scripts/test.sh", Skip("it is the command running this test")),
        ("coordinator serve --listen 127.0.0.1:7070 --data-dir ./fleet", Background(coordinator_ready)),
        (
            "agent run --coordinator http://127.0.0.1:7070 --token-file ./fleet/token --cache-dir ~/.cache/anefleet --name studio-m2 --tag m2",
            Background(agent_ready),
        ),
        ("export ANEFLEET_TOKEN=$(cat ./fleet/token)", Export),
        ("coordinator submit examples/quickstart.toml --wait", Run(submitted_and_done)),
        (
            "coordinator submit examples/typo-correction.toml --wait",
            Skip("needs Macs (coreml:* units) and Qwen3-0.6B with its anemll conversion in models/ (README: the seed's benchmark)"),
        ),
        ("coordinator results <RUN_ID> --format md", Run(results_in_every_format)),
        ("coordinator runs --format md", Run(lists_the_run)),
        ("coordinator agents --format md", Run(lists_the_agent)),
        ("coordinator results <RUN_ID> --hlog-dir ./hlog", Run(hlog_per_cell)),
        ("coordinator baseline save before <RUN_ID>", Run(exit_0)),
        (
            "coordinator baseline record distilbert-ane --model distilbert --workload encode --unit coreml:ane --against coreml:cpu --speedup 1.3 --source \"phase 1\"",
            Run(exit_0),
        ),
        ("coordinator compare before <RUN_ID> --fail-on-regression", Run(compared_with_itself)),
        ("coordinator report <RUN_ID> --baseline before --out report.html", Run(report_written)),
        ("coordinator report <RUN_ID> --out report.html", Run(report_written)),
        ("coordinator report <RUN_ID> --optimal --out optimal.md", Run(optimal_written)),
        ("agent bench examples/quickstart.toml --format md", Run(bench_done)),
        ("agent info", Run(agent_info)),
        ("coordinator submit examples/quickstart.toml", Run(submitted)),
        ("coordinator cancel <RUN_ID> --reason \"wrong model\"", Run(cancelled)),
        (
            "sudo agent install --coordinator https://coord.lan:7070 --ca-file /etc/anefleet/ca.pem --token-file /etc/anefleet/token --name studio-m2 --tag m2 [--cache-dir D] [--threads N] [--user U] [--dry-run]",
            Skip(
                "root, a service manager and a coordinator at coord.lan; the [options] are a synopsis. The service files and commands are tested with --dry-run in agent/tests",
            ),
        ),
        ("sudo agent uninstall", Skip("root and an installed daemon; tested with --dry-run in agent/tests")),
        (
            "coordinator serve --listen 0.0.0.0:7070 --data-dir ./fleet --tls-self-signed --tls-name coord.lan",
            Skip("port 7070 on every address; coordinator/tests/tls.rs serves --tls-self-signed on a free port with an agent and submit"),
        ),
        (
            "createdb -O fleet anefleet",
            Skip(
                "a PostgreSQL server and its role `fleet`; coordinator/tests/replicas.rs makes a server of its own (initdb) and a database per test",
            ),
        ),
        (
            "coordinator serve --listen 0.0.0.0:7070 --data-dir /var/lib/anefleet --store postgres://fleet:PASSWORD@db.lan/anefleet --artifacts-dir /mnt/anefleet --token-file /etc/anefleet/token --tls-cert … --tls-key …",
            Skip(
                "a database at db.lan and a shared mount; coordinator/tests/replicas.rs serves two replicas with --store and --artifacts-dir on loopback",
            ),
        ),
        (
            "agent run --coordinator https://coord-a.lan:7070,https://coord-b.lan:7070 …",
            Skip(
                "two replicas at coord-a.lan and coord-b.lan; coordinator/tests/replicas.rs runs agents with both replicas' addresses and kills one",
            ),
        ),
        (
            "ANEFLEET_COORDINATOR=https://coord-a.lan:7070,https://coord-b.lan:7070 coordinator submit --wait spec.toml",
            Skip("two replicas; coordinator/tests/replicas.rs follows a run with submit --wait through the replica it kills"),
        ),
        ("coordinator credentials add mac-mini-1 --role agent --out mac-mini-1.token", Run(agent_token_written)),
        ("coordinator credentials add alice --role user --out alice.token", Run(user_token_written)),
        ("coordinator credentials list", Run(lists_credentials)),
        ("coordinator credentials revoke alice", Run(alice_refused)),
    ]
}

struct Ctx {
    repo: PathBuf,
    work: PathBuf,
    port: u16,
    env: Vec<(String, String)>,
    run_id: Option<String>,
    /// Whether the run `<RUN_ID>` stands for was followed to its end.
    run_finished: bool,
    servers: Vec<Proc>,
    _dir: tempfile::TempDir,
}

#[test]
fn every_readme_command_runs_as_written() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(repo.join("README.md")).expect("README.md");
    let commands = shell::commands(&readme);
    let ways = ways();
    let unknown: Vec<_> = commands.iter().filter(|c| !ways.iter().any(|(t, _)| *t == c.text)).collect();
    assert!(unknown.is_empty(), "README commands this test does not know how to exercise (add them to `ways`): {unknown:#?}");
    let gone: Vec<_> = ways.iter().map(|(t, _)| t).filter(|t| !commands.iter().any(|c| c.text == **t)).collect();
    assert!(gone.is_empty(), "commands of `ways` the README no longer has: {gone:#?}");
    let mut ctx = Ctx::new(repo);
    let mut log = Vec::new();
    for c in &commands {
        let way = &ways.iter().find(|(t, _)| *t == c.text).expect("known").1;
        log.push(format!("README.md:{} {}: {}", c.line, way_name(way), c.text));
        if let Err(e) = ctx.exercise(&c.text, way) {
            panic!("README.md:{}: `{}` as written: {e}\n\nexercised so far:\n{}", c.line, c.text, log.join("\n"));
        }
    }
    eprintln!("every README command:\n{}", log.join("\n"));
}

fn way_name(way: &Way) -> String {
    match way {
        Way::Run(_) => "ran".into(),
        Way::Background(_) => "started".into(),
        Way::Export => "exported".into(),
        Way::Skip(why) => format!("SKIPPED ({why})"),
    }
}

impl Ctx {
    fn new(repo: PathBuf) -> Ctx {
        let dir = tempfile::tempdir().expect("tempdir");
        let work = dir.path().join("work");
        let bin = coordinator_exe().parent().expect("bin dir").to_path_buf();
        std::fs::create_dir_all(work.join("target")).expect("work dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        for d in ["examples", "scripts", "models"] {
            std::os::unix::fs::symlink(repo.join(d), work.join(d)).expect("link");
        }
        std::os::unix::fs::symlink(&bin, work.join("target/release")).expect("link the binaries");
        let port = free_port();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let mut env = vec![
            ("PATH".into(), path),
            ("HOME".into(), dir.path().join("home").display().to_string()),
            ("ANEFLEET_TEST_MODELS".into(), models_dir().display().to_string()),
            ("ANEFLEET_COORDINATOR".into(), format!("http://127.0.0.1:{port}")),
        ];
        // The torch venv scripts/test.sh made, as the test models: made once, outside the home.
        if let Some(venv) = anefleet_models::test_models::torch_python().and_then(|p| Some(p.parent()?.parent()?.to_path_buf())) {
            env.push(("ANEFLEET_TORCH_VENV".into(), venv.display().to_string()));
        }
        Ctx { repo, work, port, env, run_id: None, run_finished: false, servers: Vec::new(), _dir: dir }
    }

    /// The command as this machine runs it: the free port, and `<RUN_ID>` filled in.
    fn prepare(&self, text: &str) -> Result<String, String> {
        let text = text.replace("127.0.0.1:7070", &format!("127.0.0.1:{}", self.port));
        match (&self.run_id, text.contains("<RUN_ID>")) {
            (None, true) => Err("<RUN_ID> before any submit printed one".into()),
            (Some(id), true) => Ok(text.replace("<RUN_ID>", id)),
            _ => Ok(text),
        }
    }

    fn shell(&self, cmd: &str) -> Command {
        let mut c = Command::new("bash");
        c.arg("-c").arg(cmd).current_dir(&self.work).env_remove("ANEFLEET_TOKEN").envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn exercise(&mut self, text: &str, way: &Way) -> Result<(), String> {
        let cmd = self.prepare(text)?;
        match way {
            Way::Skip(_) => Ok(()),
            Way::Export => self.export(&cmd),
            Way::Background(ready) => self.start(&cmd, *ready),
            Way::Run(check) => {
                let done = self.run(&cmd, Duration::from_secs(900))?;
                if !done.status.success() {
                    return Err(format!("{}\nstdout:\n{}\nstderr:\n{}", done.status, done.stdout, tail(&done.stderr)));
                }
                check(self, &done).map_err(|e| format!("{e}\nstdout:\n{}\nstderr:\n{}", done.stdout, tail(&done.stderr)))
            }
        }
    }

    fn export(&mut self, cmd: &str) -> Result<(), String> {
        let (name, value) = cmd.strip_prefix("export ").and_then(|a| a.split_once('=')).ok_or("not export NAME=VALUE")?;
        let done = self.run(&format!("printf %s {value}"), Duration::from_secs(10))?;
        if !done.status.success() || done.stdout.is_empty() {
            return Err(format!("{value} gave nothing: {}", done.stderr));
        }
        self.env.push((name.to_string(), done.stdout));
        Ok(())
    }

    fn start(&mut self, cmd: &str, ready: fn(&Ctx) -> bool) -> Result<(), String> {
        let log = self.work.join(format!("server-{}.log", self.servers.len()));
        let f = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child =
            self.shell(&format!("exec {cmd}")).stdin(Stdio::null()).stdout(f.try_clone().map_err(|e| e.to_string())?).stderr(f).spawn();
        self.servers.push(Proc(child.map_err(|e| e.to_string())?));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready(self) {
            let exited = self.servers.last_mut().and_then(|p| p.0.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                return Err(format!("not ready ({exited:?}): {}", std::fs::read_to_string(&log).unwrap_or_default()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Runs `cmd` to its end (killed after `limit`), its output in files, not pipes.
    fn run(&self, cmd: &str, limit: Duration) -> Result<Done, String> {
        let (out, err) = (tempfile::tempfile().map_err(|e| e.to_string())?, tempfile::tempfile().map_err(|e| e.to_string())?);
        let mut child = self
            .shell(cmd)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(err.try_clone().map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| e.to_string())?;
        let status = wait_until(&format!("`{cmd}` to end"), limit, || child.try_wait().ok().flatten());
        Ok(Done { status, stdout: read_back(out), stderr: read_back(err) })
    }

    /// A client command of the fleet's own, for readiness checks.
    fn client(&self, args: &[&str]) -> Option<String> {
        let out = Command::new(coordinator_exe())
            .args(args)
            .arg("--token-file")
            .arg(self.work.join("fleet/token"))
            .env("ANEFLEET_COORDINATOR", format!("http://127.0.0.1:{}", self.port))
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Cells of the quickstart spec per agent.
    fn quickstart_cells(&self) -> usize {
        cells_of(&self.repo.join("examples/quickstart.toml"))
    }
}

/// Cells per agent of the spec at `path`.
fn cells_of(path: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = Spec::parse(&text, "quickstart.toml").expect("the quickstart spec parses");
    spec.benchmarks.iter().map(|b| b.units.len() * b.context_lengths.len() * b.batch_sizes.len()).sum()
}

fn read_back(mut f: std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut s = String::new();
    let _ = f.rewind().and_then(|_| f.read_to_string(&mut s));
    s
}

fn tail(s: &str) -> &str {
    let start = s.len().saturating_sub(4000);
    let start = (start..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
    &s[start..]
}

fn exit_0(_: &mut Ctx, _: &Done) -> Result<(), String> {
    Ok(())
}

/// The quickstart's table has every cell of the spec it ran on both agents, all done (with
/// torch:cpu cells where the torch test venv exists), and nothing it started is left running.
fn quickstart(ctx: &mut Ctx, done: &Done) -> Result<(), String> {
    let ran = ctx.work.join("anefleet-quickstart/quickstart.toml");
    let torch = std::fs::read_to_string(&ran).unwrap_or_default().contains("torch:cpu");
    if torch != anefleet_models::test_models::torch_python().is_some() {
        return Err(format!("torch:cpu in the quickstart: {torch}; the torch venv exists: {}", !torch));
    }
    checks::all_done(&done.stdout, 2 * cells_of(&ran))?;
    let left = checks::processes_mentioning(&ctx.work.join("anefleet-quickstart").display().to_string());
    if !left.is_empty() {
        return Err(format!("processes left behind: {left:?}"));
    }
    Ok(())
}

fn coordinator_ready(ctx: &Ctx) -> bool {
    ctx.work.join("fleet/token").exists() && TcpStream::connect(("127.0.0.1", ctx.port)).is_ok()
}

fn agent_ready(ctx: &Ctx) -> bool {
    ctx.client(&["agents", "--format", "json"]).is_some_and(|s| {
        serde_json::from_str::<serde_json::Value>(&s)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .any(|a| a["name"] == "studio-m2" && a["state"] != "offline")
    })
}

/// The run id is the last line of stdout.
fn submitted(ctx: &mut Ctx, done: &Done) -> Result<(), String> {
    let id = done.stdout.lines().last().unwrap_or_default().trim().to_string();
    if id.is_empty() || id.contains(' ') || Some(&id) == ctx.run_id.as_ref() {
        return Err(format!("the last line `{id}` is not a new run id"));
    }
    ctx.run_id = Some(id);
    ctx.run_finished = false;
    Ok(())
}

fn submitted_and_done(ctx: &mut Ctx, done: &Done) -> Result<(), String> {
    submitted(ctx, done)?;
    checks::all_done(&done.stdout, ctx.quickstart_cells())?;
    ctx.run_finished = true;
    Ok(())
}

/// `--format md`, and the formats its comment names: JSON with the README's keys, CSV.
fn results_in_every_format(ctx: &mut Ctx, done: &Done) -> Result<(), String> {
    let n = ctx.quickstart_cells();
    checks::all_done(&done.stdout, n)?;
    let run = ctx.run_id.clone().unwrap_or_default();
    let json = ctx.run(&format!("coordinator results {run} --format json"), Duration::from_secs(60))?;
    let readme = std::fs::read_to_string(ctx.repo.join("README.md")).map_err(|e| e.to_string())?;
    checks::results_json_documented(&json.stdout, &checks::documented_keys(&readme))?;
    let csv = ctx.run(&format!("coordinator results {run} --format csv"), Duration::from_secs(60))?;
    checks::csv_rows(&csv.stdout, n)
}

fn lists_the_run(ctx: &mut Ctx, done: &Done) -> Result<(), String> {
    let run = ctx.run_id.as_deref().unwrap_or_default();
    done.stdout.contains(run).then_some(()).ok_or_else(|| format!("run {run} is not listed"))
}

fn agent_token_written(ctx: &mut Ctx, _: &Done) -> Result<(), String> {
    token_written(ctx, "mac-mini-1.token")
}

fn user_token_written(ctx: &mut Ctx, _: &Done) -> Result<(), String> {
    token_written(ctx, "alice.token")
}

/// A new token file, owner-only, holding a credential token.
fn token_written(ctx: &Ctx, name: &str) -> Result<(), String> {
    let path = ctx.work.join(name);
    let token = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
    if !token.starts_with("anefleet_") {
        return Err(format!("{name} holds {token:?}, not a credential token"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).map_err(|e| e.to_string())?.permissions().mode() & 0o777;
        if mode != 0o600 {
            return Err(format!("{name} has mode {mode:o}, not 600"));
        }
    }
    Ok(())
}

fn lists_credentials(_: &mut Ctx, done: &Done) -> Result<(), String> {
    let want = ["| alice | user | - |", "| mac-mini-1 | agent | - |"];
    match want.iter().find(|w| !done.stdout.contains(**w)) {
        Some(w) => Err(format!("`{w}` is not in the listing:\n{}", done.stdout)),
        None => Ok(()),
    }
}

/// After the revocation, alice's token is refused.
fn alice_refused(ctx: &mut Ctx, _: &Done) -> Result<(), String> {
    let token = std::fs::read_to_string(ctx.work.join("alice.token")).map_err(|e| e.to_string())?;
    let out = Command::new(coordinator_exe())
        .args(["runs", "--coordinator", &format!("http://127.0.0.1:{}", ctx.port)])
        .env("ANEFLEET_TOKEN", token.trim())
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code() == Some(1) && stderr.contains("missing or wrong credential"))
        .then_some(())
        .ok_or_else(|| format!("a revoked credential was not refused: {stderr}"))
}

fn lists_the_agent(_: &mut Ctx, done: &Done) -> Result<(), String> {
    done.stdout.contains("studio-m2").then_some(()).ok_or_else(|| "studio-m2 is not listed".into())
}

fn hlog_per_cell(ctx: &mut Ctx, _: &Done) -> Result<(), String> {
    let (found, n) = (checks::count_files(&ctx.work.join("hlog"), "hlog"), ctx.quickstart_cells());
    (found == n).then_some(()).ok_or_else(|| format!("{found} .hlog files in ./hlog, {n} expected"))
}

/// A run against a saved copy of itself: every cell matched and `same`, so exit 0.
fn compared_with_itself(ctx: &mut Ctx, done: &Done) -> Result<(), String> {
    let same = done.stdout.matches("same").count();
    (same >= ctx.quickstart_cells()).then_some(()).ok_or_else(|| format!("{same} cells `same`, every matched cell expected"))
}

/// A whole page (with charts when the run has finished cells), written by this very command:
/// the file is removed once checked.
fn report_written(ctx: &mut Ctx, _: &Done) -> Result<(), String> {
    let path = ctx.work.join("report.html");
    let html = std::fs::read_to_string(&path).map_err(|e| format!("report.html: {e}"))?;
    std::fs::remove_file(&path).map_err(|e| e.to_string())?;
    if !html.contains("Run report") || !html.ends_with("</html>\n") && !html.ends_with("</html>") {
        return Err("report.html is not a whole report".into());
    }
    if ctx.run_finished && !html.contains("<svg") {
        return Err("report.html of a finished run has no chart".into());
    }
    Ok(())
}

/// The optimal-configurations document of the quickstart run: a row for every recommendation
/// the run's results JSON holds (how many depends on which cells passed the validity gate on this
/// machine), under a section for its agent.
fn optimal_written(ctx: &mut Ctx, _: &Done) -> Result<(), String> {
    let path = ctx.work.join("optimal.md");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("optimal.md: {e}"))?;
    std::fs::remove_file(&path).map_err(|e| e.to_string())?;
    let run = ctx.run_id.clone().unwrap_or_default();
    let json = ctx.run(&format!("coordinator results {run} --format json"), Duration::from_secs(60))?;
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).map_err(|e| e.to_string())?;
    let recs = doc["recommendations"].as_array().cloned().unwrap_or_default();
    let mut wanted = vec!["# Optimal configurations".to_string()];
    if recs.is_empty() {
        wanted.push("No configuration can be recommended yet".into());
    }
    for r in &recs {
        wanted.push(format!("\n## {}", r["agent"].as_str().unwrap_or_default()));
        wanted.push(format!("\n| {} | {} batch {} |", r["context_length"], r["unit"].as_str().unwrap_or_default(), r["batch_size"]));
    }
    match wanted.iter().find(|w| !text.contains(w.as_str())) {
        None => Ok(()),
        Some(w) => Err(format!("optimal.md has no {w:?}:\n{text}")),
    }
}

fn bench_done(ctx: &mut Ctx, done: &Done) -> Result<(), String> {
    checks::all_done(&done.stdout, ctx.quickstart_cells())
}

fn agent_info(_: &mut Ctx, done: &Done) -> Result<(), String> {
    checks::agent_info(&done.stdout)
}

fn cancelled(ctx: &mut Ctx, done: &Done) -> Result<(), String> {
    let want = format!("run {} cancelled", ctx.run_id.as_deref().unwrap_or_default());
    done.stdout.contains(&want).then_some(()).ok_or_else(|| format!("`{want}` expected"))
}

/// Python's answer to `script` reading `input` on stdin (checks use Python's csv module).
fn python(script: &str, input: &str) -> Result<String, String> {
    let mut child =
        Command::new("python3").args(["-c", script]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    child.stdin.take().ok_or("stdin")?.write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
