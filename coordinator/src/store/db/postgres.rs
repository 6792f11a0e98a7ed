//! [`Tx`] on PostgreSQL, through `postgres` (the blocking client of `tokio-postgres`: the store's
//! operations run on blocking threads, never on the async workers) and an `r2d2` pool. Each
//! pooled connection keeps the statements it prepared; a store operation is one transaction,
//! durable when its commit returns (`synchronous_commit` as the server sets it, on by default).
//! Connections use TLS when the URL says `sslmode=require`, the server's certificate verified
//! (name and chain) against `--store-ca-file` or the system's roots, and a client certificate
//! shown where `--store-client-cert` gives one; otherwise they are plain.

use std::collections::HashMap;
use std::error::Error;
use std::path::Path;

use bytes::BytesMut;
use postgres::types::{IsNull, Kind, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};
use rustls_pki_types::pem::PemObject;

use super::{Arg, Row, Tx, Val};
use crate::error::{CoordError, Result};
use crate::store::StoreTls;

/// Connections one coordinator keeps open to the database at most.
pub const POOL_SIZE: u32 = 16;

/// A pooled connection and the statements prepared on it, by their SQL as the store writes it.
pub struct PgConn {
    pub client: Client,
    statements: HashMap<String, Statement>,
}

/// Opens connections to the database: for the pool, and for the replicas' listener.
#[derive(Clone)]
pub struct Manager {
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Manager {
    /// From a `postgres://` URL; TLS as `tls` says when the URL says `sslmode=require`.
    pub fn new(url: &str, tls: &StoreTls) -> Result<Manager> {
        let config = config(url)?;
        let tls = match config.get_ssl_mode() {
            postgres::config::SslMode::Require => Some(tokio_postgres_rustls::MakeRustlsConnect::new(client_tls(tls)?)),
            _ if tls != &StoreTls::default() => {
                let flag = if tls.ca_file.is_some() { "--store-ca-file" } else { "--store-client-cert" };
                return Err(CoordError::InvalidArgument(format!(
                    "{flag} is for TLS: add sslmode=require to the store's URL ({})",
                    redact(url)
                )));
            }
            _ => None,
        };
        Ok(Manager { config, tls })
    }

    /// A new connection, as the URL says.
    pub fn connect_client(&self) -> std::result::Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
    }
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("tls", &self.tls.is_some()).finish_non_exhaustive()
    }
}

/// What a TLS connection to the database trusts (the CA file's certificates, or the system's)
/// and the client certificate it shows, if any.
fn client_tls(tls: &StoreTls) -> Result<tokio_rustls::rustls::ClientConfig> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(path) => {
            for cert in certificates(path, "--store-ca-file")? {
                roots.add(cert).map_err(|e| CoordError::InvalidArgument(format!("--store-ca-file {}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(CoordError::InvalidArgument("sslmode=require: the system has no CA certificates; pass --store-ca-file".into()));
            }
        }
    }
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CoordError::Internal(format!("TLS to the store: {e}")))?
        .with_root_certificates(roots);
    let Some((cert, key)) = &tls.identity else { return Ok(config.with_no_client_auth()) };
    let bad_key = |e: String| CoordError::InvalidArgument(format!("--store-client-key {}: {e}", key.display()));
    let private = rustls_pki_types::PrivateKeyDer::from_pem_file(key).map_err(|e| bad_key(e.to_string()))?;
    config
        .with_client_auth_cert(certificates(cert, "--store-client-cert")?, private)
        .map_err(|e| bad_key(format!("does not go with --store-client-cert {}: {e}", cert.display())))
}

/// The certificates of a PEM file (`flag` names it in errors); at least one.
fn certificates(path: &Path, flag: &str) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>> {
    let bad = |e: String| CoordError::InvalidArgument(format!("{flag} {}: {e}", path.display()));
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(certs)
}

/// The connection settings a URL gives.
fn config(url: &str) -> Result<postgres::Config> {
    url.parse::<postgres::Config>().map_err(|e| CoordError::InvalidArgument(format!("--store {}: {e}", redact(url))))
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<PgConn, postgres::Error> {
        Ok(PgConn { client: self.connect_client()?, statements: HashMap::new() })
    }

    fn is_valid(&self, conn: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

pub type Pool = r2d2::Pool<Manager>;

/// A pool of `manager`'s connections to the database at `url`; fails at once when it cannot be
/// reached.
pub fn pool(url: &str, manager: Manager) -> Result<Pool> {
    r2d2::Pool::builder()
        .max_size(POOL_SIZE)
        .connection_timeout(std::time::Duration::from_secs(10))
        .build(manager)
        .map_err(|e| CoordError::Unavailable(format!("the store at {} cannot be reached: {e}", redact(url))))
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}{}@{}", &url[..scheme + 3], if userinfo.contains(':') { ":***" } else { "" }, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// One store operation's transaction on a pooled connection.
struct PgTx<'a, 'c> {
    tx: &'a mut postgres::Transaction<'c>,
    statements: &'a mut HashMap<String, Statement>,
}

impl PgConn {
    /// The connection's transaction and its statement cache, to run `f` in.
    pub fn transaction<T>(&mut self, read_only: bool, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let PgConn { client, statements } = self;
        let mut tx = client.build_transaction().read_only(read_only).start()?;
        let out = f(&mut PgTx { tx: &mut tx, statements })?;
        tx.commit()?;
        Ok(out)
    }
}

impl PgTx<'_, '_> {
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(&placeholders(sql))?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

impl Tx for PgTx<'_, '_> {
    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        let s = self.statement(sql)?;
        Ok(self.tx.execute(&s, &params(args))?)
    }

    fn rows(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>> {
        let s = self.statement(sql)?;
        self.tx.query(&s, &params(args))?.iter().map(row).collect()
    }

    fn row_locks(&self) -> bool {
        true
    }
}

fn params<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

/// `?N` parameters as PostgreSQL writes them (`$N`), outside quoted strings.
pub fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// A domain's underlying type (the schema's `blob` is `bytea`).
fn base(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(inner) => base(inner),
        _ => ty,
    }
}

fn is_text(ty: &Type) -> bool {
    matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN)
}

impl Arg<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Arg::Null => "NULL",
            Arg::Int(_) => "an integer",
            Arg::Real(_) => "a real number",
            Arg::Text(_) => "text",
            Arg::Blob(_) => "bytes",
        }
    }
}

impl ToSql for Arg<'_> {
    /// Whatever type the server gave the parameter, where the value converts without loss.
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, Box<dyn Error + Sync + Send>> {
        let ty = base(ty);
        match (*self, ty) {
            (Arg::Null, _) => Ok(IsNull::Yes),
            (Arg::Int(v), &Type::INT8) => v.to_sql(ty, out),
            (Arg::Int(v), &Type::INT4) => i32::try_from(v)?.to_sql(ty, out),
            (Arg::Int(v), &Type::INT2) => i16::try_from(v)?.to_sql(ty, out),
            (Arg::Int(v), &Type::FLOAT8) => (v as f64).to_sql(ty, out),
            (Arg::Int(v), &Type::BOOL) => (v != 0).to_sql(ty, out),
            (Arg::Real(v), &Type::FLOAT8) => v.to_sql(ty, out),
            (Arg::Real(v), &Type::FLOAT4) => (v as f32).to_sql(ty, out),
            (Arg::Text(v), t) if is_text(t) => v.to_sql(&Type::TEXT, out),
            (Arg::Blob(v), &Type::BYTEA) => v.to_sql(ty, out),
            (arg, ty) => Err(format!("{} cannot be sent as a parameter of type {ty}", arg.kind()).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A returned row's values; truth values as 0 or 1, as SQLite gives them.
fn row(r: &postgres::Row) -> Result<Row> {
    (0..r.len()).map(|i| val(r, i)).collect::<Result<Vec<_>>>().map(Row)
}

fn val(r: &postgres::Row, i: usize) -> Result<Val> {
    let ty = base(r.columns()[i].type_());
    let v = match *ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Val::Int),
        Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map(|v| Val::Int(v.into())),
        Type::INT2 => r.try_get::<_, Option<i16>>(i)?.map(|v| Val::Int(v.into())),
        Type::BOOL => r.try_get::<_, Option<bool>>(i)?.map(|v| Val::Int(v.into())),
        Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Val::Real),
        Type::FLOAT4 => r.try_get::<_, Option<f32>>(i)?.map(|v| Val::Real(v.into())),
        Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Val::Blob),
        ref t if is_text(t) => r.try_get::<_, Option<String>>(i)?.map(Val::Text),
        ref t => {
            let name = r.columns()[i].name();
            return Err(CoordError::Internal(format!("the store returned column `{name}` of type {t}, which it never asks for")));
        }
    };
    Ok(v.unwrap_or(Val::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renamed_outside_strings_only() {
        assert_eq!(placeholders("SELECT ?1, '?2', ?10 FROM t WHERE a = ?2"), "SELECT $1, '?2', $10 FROM t WHERE a = $2");
        assert_eq!(placeholders("SELECT 'it''s ?1' || ?1"), "SELECT 'it''s ?1' || $1");
        assert_eq!(placeholders("SELECT ? FROM t"), "SELECT ? FROM t", "only numbered parameters");
    }

    #[test]
    fn a_url_s_password_is_never_shown() {
        assert_eq!(redact("postgres://fleet:s3cret@db.example:5432/anefleet"), "postgres://fleet:***@db.example:5432/anefleet");
        assert_eq!(redact("postgres://fleet@db/anefleet"), "postgres://fleet@db/anefleet");
        assert_eq!(redact("host=/tmp dbname=x"), "host=/tmp dbname=x");
    }

    #[test]
    fn integers_go_as_the_type_the_server_asks_for_and_never_wrap() {
        let mut out = BytesMut::new();
        assert!(Arg::Int(7).to_sql(&Type::INT4, &mut out).is_ok());
        assert_eq!(&out[..], &7i32.to_be_bytes());
        assert!(Arg::Int(1 << 40).to_sql(&Type::INT4, &mut out).is_err(), "too big for int4: refused, not wrapped");
        out.clear();
        let e = Arg::Blob(&[1]).to_sql(&Type::INT8, &mut out).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("bytes cannot be sent as a parameter of type int8"));
    }
}
