//! `coordinator serve`: the gRPC API (agents, artifacts, runs, reflection) and the web dashboard
//! with `/metrics` on one address, state in `DATA_DIR` (SQLite database, artifacts, token).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::response::IntoResponse;
use tonic::transport::Server;

use anefleet_proto::{MAX_MESSAGE_BYTES, pb};

use crate::access::Access;
use crate::artifacts::{ArtifactService, BlobStore, DirBlobs, Quota, Uploading};
use crate::schedule::Scheduler;
use crate::service::{agents::AgentService, credentials::CredentialService, runs::RunService};
use crate::store::{Location, Store, StoreTls};

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the address is written to DATA_DIR/address).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Where the database, the artifacts and the token live.
    #[arg(long)]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Read the token from this file instead of DATA_DIR/token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// How long a cell bound to one agent waits for that agent to come back, in seconds.
    #[arg(long, default_value_t = 120)]
    pub agent_grace_s: u64,
    /// Close an agent's session after this many seconds without a message (a hung agent, or a
    /// network gone without a word); its lease starts then.
    #[arg(long, default_value_t = 30)]
    pub heartbeat_timeout_s: u64,
    /// How long a running cell stays its agent's while the agent is away (a broken session, a
    /// coordinator restart), in seconds; the cell is re-queued only when this runs out.
    #[arg(long, default_value_t = 600)]
    pub lease_s: u64,
    /// Bytes (GiB) of artifacts each user credential may hold, stored plus unfinished (admins: no limit).
    #[arg(long, default_value_t = 256)]
    pub upload_quota_gib: u64,
    /// Ask for a credential on the dashboard on loopback too (a machine other people log in to).
    #[arg(long)]
    pub dashboard_login: bool,
    /// Where the artifacts live (default DATA_DIR): replicas sharing a store share this too (a
    /// directory every replica mounts).
    #[arg(long, env = "ANEFLEET_ARTIFACTS_DIR")]
    pub artifacts_dir: Option<PathBuf>,
    /// With a shared store (`--store postgres://…`): a replica silent this long is taken for
    /// dead, and its agents' cells are leased to them until they reconnect to another, in seconds.
    #[arg(long, default_value_t = 10)]
    pub replica_timeout_s: u64,
    /// Remove an unfinished upload nobody wrote to for this many hours.
    #[arg(long, default_value_t = 24)]
    pub partial_expiry_h: u64,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

/// Where the store is, and TLS to it (`serve` and `migrate`).
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store: a `postgres://user:password@host/db` URL (a database several coordinator
    /// replicas share), or an SQLite file; default DATA_DIR/anefleet.db.
    #[arg(long, env = "ANEFLEET_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// CA certificates (PEM) a `postgres://…?sslmode=require` store's TLS trusts (default: the
    /// system's roots).
    #[arg(long, env = "ANEFLEET_STORE_CA_FILE")]
    pub store_ca_file: Option<PathBuf>,
    /// A client certificate (PEM) to show a PostgreSQL server that asks for one (`cert`
    /// authentication), with --store-client-key.
    #[arg(long, env = "ANEFLEET_STORE_CLIENT_CERT", requires = "store_client_key")]
    pub store_client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "ANEFLEET_STORE_CLIENT_KEY", requires = "store_client_cert")]
    pub store_client_key: Option<PathBuf>,
}

impl StoreArgs {
    /// The store these arguments name, its SQLite default in `data_dir`.
    pub fn location(&self, data_dir: &Path) -> anyhow::Result<Location> {
        let identity = self.store_client_cert.clone().zip(self.store_client_key.clone());
        let tls = StoreTls { ca_file: self.store_ca_file.clone(), identity };
        let at = Location::new(self.store.as_deref(), data_dir, tls.clone());
        if matches!(at, Location::Sqlite(_)) && tls != StoreTls::default() {
            anyhow::bail!("--store-ca-file and --store-client-cert are for a postgres:// store, not SQLite");
        }
        Ok(at)
    }
}

/// Largest message of an agent's session (a result with its histograms and outputs is far smaller).
const MAX_SESSION_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // The address first: a second coordinator started by mistake on a busy port must not touch
    // the data (it would re-queue the first one's cells).
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| listen_error(args.listen, e))?;
    check_data_dir(&args.data_dir)?;
    let tls = crate::tls::server_config(&args.tls, args.listen, &args.data_dir)?;
    let token = load_or_create_token(&args)?;
    let location = args.store.location(&args.data_dir)?;
    let store = Arc::new(open_store(&location).await?);
    make_data_private(&args.data_dir)?;
    let access = Access::load(store.clone(), &token)?;
    let timeouts = crate::schedule::Timeouts {
        agent_grace: Duration::from_secs(args.agent_grace_s),
        heartbeat: Duration::from_secs(args.heartbeat_timeout_s),
        lease: Duration::from_secs(args.lease_s),
    };
    // Cells in flight when the coordinator stopped are still running on their agents: they stay
    // theirs for a lease, and the agents re-attach them when they reconnect. With a shared store
    // other replicas hold sessions of their own: what a replica that stopped held is leased by
    // the first live one to see it silent (see `Store::take_over_dead_replicas`).
    if !store.shared() {
        let leased = store.lease_all_in_flight(crate::store::now_ms() + timeouts.lease.as_millis() as u64)?;
        if leased > 0 {
            tracing::warn!(
                cells = leased,
                lease_s = args.lease_s,
                "cells in flight when the coordinator stopped are leased to their agents"
            );
        }
    }
    let blobs: Arc<dyn BlobStore> = Arc::new(DirBlobs::open(args.artifacts_dir.as_deref().unwrap_or(&args.data_dir))?);
    let scheduler = Scheduler::new(store.clone(), timeouts);
    if store.shared() {
        let replica = crate::schedule::Replica {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            address: advertised(listener.local_addr()?),
            timeout: Duration::from_secs(args.replica_timeout_s.max(1)),
        };
        tracing::info!(replica = %replica.id, store = %location, "a replica of a shared store");
        let (s, a) = (Arc::downgrade(&scheduler), access.clone());
        store.join_replicas(&replica.id, move || {
            if let Some(s) = s.upgrade() {
                s.changed_elsewhere();
            }
            if let Err(e) = a.reload() {
                tracing::error!(error = %e, "reading the credentials again failed");
            }
        });
        scheduler.set_replica(replica);
    }
    let uploading = Uploading::default();
    spawn_reaper(scheduler.clone());
    let quota = Arc::new(Quota::new(args.upload_quota_gib.saturating_mul(1 << 30)));
    spawn_partial_sweeper(blobs.clone(), uploading.clone(), quota.clone(), Duration::from_secs(args.partial_expiry_h * 3600));

    let served: crate::web::metrics::Served = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let open = args.listen.ip().is_loopback() && !args.dashboard_login;
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let exposure = crate::web::Exposure { open, tls: tls.is_some(), closing: closing.clone() };
    let web = crate::web::Web::new(store.clone(), scheduler.clone(), access.clone(), exposure, served.clone());
    let ingest = web.metrics.ingest();
    let agent_service = AgentService { scheduler: scheduler.clone(), access: access.clone(), store: store.clone(), ingest };
    let agents = pb::agent_service_server::AgentServiceServer::new(agent_service)
        .max_decoding_message_size(MAX_SESSION_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let artifacts = pb::artifacts_server::ArtifactsServer::new(ArtifactService {
        blobs: blobs.clone(),
        store: store.clone(),
        served,
        uploading,
        quota,
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let credentials =
        pb::credentials_server::CredentialsServer::new(CredentialService { access: access.clone(), scheduler: scheduler.clone() });
    let runs = pb::runs_server::RunsServer::new(RunService { store: store.clone(), blobs, scheduler })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;

    let addr = listener.local_addr()?;
    std::fs::write(args.data_dir.join("address"), addr.to_string()).context("writing DATA_DIR/address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, data_dir = %args.data_dir.display(), dashboard = %format!("{scheme}://{addr}/"), credential_needed = !open, "coordinator listening");
    // The dashboard's routes with the gRPC services beside them: one port for both; every gRPC
    // call's role is checked before it reaches its service.
    let routes = tonic::service::Routes::from(crate::web::router(web))
        .add_service(agents)
        .add_service(artifacts)
        .add_service(runs)
        .add_service(credentials)
        .add_service(reflection)
        .into_axum_router()
        .layer(axum::middleware::from_fn_with_state(store.clone(), durable_responses))
        .layer(axum::middleware::from_fn_with_state(access, crate::access::grpc::check));
    let routes = tonic::service::Routes::from(routes);
    match tls {
        Some(config) => run(routes, crate::tls::incoming(listener, config), closing_tx, closing).await?,
        None => run(routes, tokio_stream::wrappers::TcpListenerStream::new(listener), closing_tx, closing).await?,
    }
    store.close();
    tracing::info!("coordinator stopped");
    Ok(())
}

/// No response leaves before what was written until then is committed (see
/// [`crate::store::commit`]): what a client is told is stored survives a crash.
async fn durable_responses(
    axum::extract::State(store): axum::extract::State<Arc<Store>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let grpc = req.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let response = next.run(req).await;
    match store.durable(store.written()).await {
        Ok(()) => response,
        Err(e) => {
            tracing::error!(error = %e, "a response waited for a commit that failed");
            match grpc {
                true => tonic::Status::unavailable(e.to_string()).into_http::<axum::body::Body>(),
                false => (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
            }
        }
    }
}

/// Serves `routes` on the connections of `incoming` (plain TCP, or TLS streams) until a stop signal.
async fn run<IO, IE>(
    routes: tonic::service::Routes,
    incoming: impl futures::Stream<Item = Result<IO, IE>> + Send + 'static,
    closing_tx: tokio::sync::watch::Sender<bool>,
    closing: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + tonic::transport::server::Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let server = Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        // HTTP/2 receive windows: what a client may send before the coordinator reads it.
        // Uploads come in 1 MiB chunks, and hyper's 1 MiB windows let one in flight at a time
        // (a 1 GiB upload on loopback: 23 s; with 4/8 MiB: 5 s, as with 8/16 MiB).
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(8 << 20)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown_signal().await;
            let _ = closing_tx.send(true);
        });
    tokio::select! {
        served = server => served.context("serving")?,
        () = linger(closing) => tracing::warn!("connections still open {}s after the stop signal (agent sessions); stopping anyway", LINGER.as_secs()),
    }
    Ok(())
}

/// How long open connections (agents' sessions, dashboards following a run) may take to close
/// after a stop signal; every state change is already stored, so nothing is lost after it.
const LINGER: Duration = Duration::from_secs(3);

async fn linger(mut closing: tokio::sync::watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        return std::future::pending().await;
    }
    tokio::time::sleep(LINGER).await;
}

fn spawn_reaper(scheduler: Arc<Scheduler>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = scheduler.reap().and_then(|_| scheduler.schedule()) {
                tracing::error!(error = %e, "scheduler pass failed");
            }
        }
    });
}

/// Every minute, abandoned partial uploads older than `max_age` go.
fn spawn_partial_sweeper(blobs: Arc<dyn BlobStore>, uploading: Uploading, quota: Arc<Quota>, max_age: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let (b, u) = (blobs.clone(), uploading.clone());
            for digest in tokio::task::spawn_blocking(move || b.expire_partials(max_age, &u)).await.unwrap_or_default() {
                quota.forget_partial(&digest);
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn listen_error(addr: std::net::SocketAddr, e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        anyhow::anyhow!(
            "{addr} is in use (another coordinator, or a `coordinator quickstart`?): stop it, or pass another \
             --listen address (port 0 picks a free one and writes it to DATA_DIR/address)"
        )
    } else {
        anyhow::anyhow!("cannot listen on {addr}: {e} (pass --listen IP:PORT with an address of this machine)")
    }
}

/// The data folder exists and takes new files, or the error says which folder and what to do.
/// Opens the store, bringing its schema up to date, off the async workers (a PostgreSQL store
/// connects and migrates over the network).
pub async fn open_store(at: &Location) -> anyhow::Result<Store> {
    let a = at.clone();
    let store = tokio::task::spawn_blocking(move || Store::at(&a)).await.context("opening the store")?;
    store.with_context(|| format!("opening the store ({at})"))
}

fn check_data_dir(dir: &Path) -> anyhow::Result<()> {
    let advice = "pass --data-dir a folder this user can write";
    anefleet_proto::auth::create_private_dir(dir).with_context(|| format!("cannot create the data dir {}: {advice}", dir.display()))?;

    tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in the data dir {}: {advice}", dir.display()))?;
    Ok(())
}

/// The data dir 0700, its database and token 0600, whoever made them (an older version, by hand,
/// SQLite under the process's umask).
fn make_data_private(dir: &Path) -> anyhow::Result<()> {
    let files = ["anefleet.db", "anefleet.db-wal", "anefleet.db-shm", "token", "address"];
    if anefleet_proto::auth::make_private(dir, &files).with_context(|| format!("making {} its owner's only", dir.display()))? {
        tracing::info!(data_dir = %dir.display(), "the data dir and its database made owner-only (0700, files 0600)");
    }
    Ok(())
}

/// The token from `--token-file`, or `DATA_DIR/token`, written (mode 0600) on first start.
fn load_or_create_token(args: &ServeArgs) -> anyhow::Result<String> {
    if let Some(f) = &args.token_file {
        return read_token(f);
    }
    let path = args.data_dir.join("token");
    if path.exists() {
        return read_token(&path);
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let token = hex::encode(bytes);
    write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "wrote a new token");
    Ok(token)
}

fn read_token(path: &Path) -> anyhow::Result<String> {
    anefleet_proto::auth::read_token_file(path).map_err(anyhow::Error::msg)
}

pub fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(content.as_bytes())?;
    f.write_all(b"\n")
}

/// The address other replicas and users are told this replica serves on: the one it listens on,
/// or the machine's name where it listens on every interface (0.0.0.0 names no machine).
fn advertised(listening: std::net::SocketAddr) -> String {
    if !listening.ip().is_unspecified() {
        return listening.to_string();
    }
    match whoami::hostname() {
        Ok(host) if !host.is_empty() => format!("{host}:{}", listening.port()),
        _ => listening.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_replica_listening_everywhere_is_named_by_its_machine() {
        assert_eq!(super::advertised("127.0.0.1:7070".parse().unwrap()), "127.0.0.1:7070");
        let host = whoami::hostname().expect("this machine has a name");
        assert_eq!(super::advertised("0.0.0.0:7070".parse().unwrap()), format!("{host}:7070"));
        assert_eq!(super::advertised("[::]:7071".parse().unwrap()), format!("{host}:7071"));
    }
}
