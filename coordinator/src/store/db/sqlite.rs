//! [`Tx`] on the embedded SQLite: statements are prepared once per connection (cached), and the
//! transaction is a savepoint of the group commit's open transaction (`store::commit`).

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use super::{Arg, Row, Tx, Val};
use crate::error::Result;

/// Statements kept prepared per connection: every statement the store runs, with room to spare.
pub const STATEMENT_CACHE: usize = 128;

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Null => ValueRef::Null,
            Arg::Int(v) => ValueRef::Integer(v),
            Arg::Real(v) => ValueRef::Real(v),
            Arg::Text(v) => ValueRef::Text(v.as_bytes()),
            Arg::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

/// A connection (or a savepoint of it) as a [`Tx`].
pub struct SqliteTx<'c>(pub &'c Connection);

impl Tx for SqliteTx<'_> {
    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        let n = self.0.prepare_cached(sql)?.execute(rusqlite::params_from_iter(args))?;
        Ok(n as u64)
    }

    fn rows(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let vals = (0..width).map(|i| Ok(val(r.get_ref(i)?))).collect::<rusqlite::Result<Vec<_>>>()?;
            out.push(Row(vals));
        }
        Ok(out)
    }
}

fn val(v: ValueRef<'_>) -> Val {
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Real(f) => Val::Real(f),
        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Val::Blob(b.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::args;

    #[test]
    fn values_go_in_and_come_back_as_they_were() {
        let c = Connection::open_in_memory().unwrap();
        let mut tx = SqliteTx(&c);
        let tx: &mut dyn Tx = &mut tx;
        tx.exec("CREATE TABLE t (i BIGINT, r DOUBLE PRECISION, s TEXT, b BLOB)", &[]).unwrap();
        let blob = vec![0u8, 255, 7];
        assert_eq!(tx.exec("INSERT INTO t VALUES (?1, ?2, ?3, ?4)", args![-5i64, 0.25, "é", &blob]).unwrap(), 1);
        tx.exec("INSERT INTO t VALUES (?1, ?2, ?3, ?4)", args![None::<i64>, None::<f64>, None::<&str>, None::<&[u8]>]).unwrap();
        let rows = tx.rows("SELECT i, r, s, b, i > 0 FROM t ORDER BY i DESC", &[]).unwrap();
        assert_eq!(rows[0], Row(vec![Val::Int(-5), Val::Real(0.25), Val::Text("é".into()), Val::Blob(blob), Val::Int(0)]));
        assert_eq!(rows[1].0[..4], [Val::Null, Val::Null, Val::Null, Val::Null]);
        assert_eq!(tx.one("SELECT COUNT(*) FROM t", &[]).unwrap().i64(0).unwrap(), 2);
        assert!(tx.row("SELECT i FROM t WHERE s = ?1", args!["none"]).unwrap().is_none());
    }
}
