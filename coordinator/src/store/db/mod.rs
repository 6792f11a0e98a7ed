//! The two databases behind one small interface: the embedded SQLite (the default) and
//! PostgreSQL (a store shared by several coordinator replicas). Store operations are written once,
//! in the SQL both understand, against [`Tx`]: statements with `?N` parameters ([`Arg`]) that
//! return owned [`Row`]s. What differs stays here: placeholders (`$N` for PostgreSQL), how a
//! value is typed on the wire, and how a transaction ends (see `store::Store::write`).

pub mod postgres;
pub mod sqlite;

use crate::error::{CoordError, Result};

/// A statement's parameter.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<u32> for Arg<'_> {
    fn from(v: u32) -> Self {
        Arg::Int(i64::from(v))
    }
}

impl From<u64> for Arg<'_> {
    /// Times in ms and sizes in bytes: far below `i64::MAX`; saturates rather than wraps.
    fn from(v: u64) -> Self {
        Arg::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Arg<'_> {
    fn from(v: usize) -> Self {
        Arg::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Arg<'_> {
    fn from(v: f64) -> Self {
        Arg::Real(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Blob(v)
    }
}

impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Arg::Blob(v)
    }
}

impl<'a, T> From<Option<T>> for Arg<'a>
where
    T: Into<Arg<'a>>,
{
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

/// `args![a, b, …]`: a statement's parameters, each converted with `Arg::from`.
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$($crate::store::db::Arg::from($a)),*][..] };
}
pub(crate) use args;

/// A value of a returned row.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// One returned row, its values in column order. Truth values come back as 0 or 1 from both
/// databases.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Val>);

impl Row {
    fn at(&self, i: usize) -> Result<&Val> {
        self.0.get(i).ok_or_else(|| CoordError::Internal(format!("the store returned no column {i}")))
    }

    fn wrong(&self, i: usize, want: &str) -> CoordError {
        CoordError::Internal(format!("the store returned {:?} for column {i}, where {want} was expected", self.0.get(i)))
    }

    pub fn i64(&self, i: usize) -> Result<i64> {
        match self.at(i)? {
            Val::Int(v) => Ok(*v),
            _ => Err(self.wrong(i, "an integer")),
        }
    }

    /// A count, a time in ms or a size: never negative.
    pub fn u64(&self, i: usize) -> Result<u64> {
        Ok(self.i64(i)?.max(0) as u64)
    }

    pub fn u32(&self, i: usize) -> Result<u32> {
        u32::try_from(self.i64(i)?.max(0)).map_err(|_| self.wrong(i, "a 32-bit count"))
    }

    pub fn bool(&self, i: usize) -> Result<bool> {
        Ok(self.i64(i)? != 0)
    }

    pub fn f64(&self, i: usize) -> Result<f64> {
        match self.at(i)? {
            Val::Real(v) => Ok(*v),
            Val::Int(v) => Ok(*v as f64),
            _ => Err(self.wrong(i, "a number")),
        }
    }

    /// Takes a text value out of the row.
    pub fn text(&mut self, i: usize) -> Result<String> {
        match self.0.get_mut(i) {
            Some(Val::Text(v)) => Ok(std::mem::take(v)),
            _ => Err(self.wrong(i, "text")),
        }
    }

    /// Takes a blob out of the row.
    pub fn blob(&mut self, i: usize) -> Result<Vec<u8>> {
        self.opt_blob(i)?.ok_or_else(|| self.wrong(i, "bytes"))
    }

    /// Takes a blob, or NULL, out of the row.
    pub fn opt_blob(&mut self, i: usize) -> Result<Option<Vec<u8>>> {
        match self.0.get_mut(i) {
            Some(Val::Blob(v)) => Ok(Some(std::mem::take(v))),
            Some(Val::Null) => Ok(None),
            _ => Err(self.wrong(i, "bytes")),
        }
    }
}

/// Statements inside one store operation's transaction.
pub trait Tx {
    /// Runs a statement; returns the rows it changed.
    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64>;
    /// Every row a query returns.
    fn rows(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>>;
    /// Whether other writers run beside this transaction, so that a read it decides on must lock
    /// its rows (`SELECT … FOR UPDATE`). SQLite has one writer at a time, and no such clause.
    fn row_locks(&self) -> bool {
        false
    }
}

impl dyn Tx + '_ {
    /// The first row a query returns, if any.
    pub fn row(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<Row>> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }

    /// The one row a query must return (an aggregate, a lookup by key known to exist).
    pub fn one(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Row> {
        self.row(sql, args)?.ok_or_else(|| CoordError::Internal(format!("no row from `{}`", first_line(sql))))
    }
}

fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or(sql).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_give_back_what_they_hold_and_name_what_they_do_not() {
        let mut r = Row(vec![Val::Int(7), Val::Text("a".into()), Val::Blob(vec![1, 2]), Val::Null, Val::Real(0.5)]);
        assert_eq!((r.i64(0).unwrap(), r.u32(0).unwrap(), r.bool(0).unwrap()), (7, 7, true));
        assert_eq!(r.text(1).unwrap(), "a");
        assert_eq!(r.blob(2).unwrap(), vec![1, 2]);
        assert_eq!(r.opt_blob(3).unwrap(), None);
        assert_eq!(r.f64(4).unwrap(), 0.5);
        assert_eq!(r.f64(0).unwrap(), 7.0);
        let e = r.i64(1).unwrap_err().to_string();
        assert!(e.contains("column 1") && e.contains("an integer"), "{e}");
        assert!(r.blob(3).is_err(), "NULL is no blob");
        assert!(r.i64(9).unwrap_err().to_string().contains("no column 9"));
        assert!(Row(vec![Val::Int(-1)]).u32(0).unwrap() == 0 && Row(vec![Val::Int(1 << 40)]).u32(0).is_err());
    }

    #[test]
    fn args_convert_from_the_store_s_types() {
        let s = String::from("x");
        let b = vec![1u8];
        let a = args![1u32, 2u64, u64::MAX, &s, "y", &b, None::<&str>, 0.5];
        assert!(matches!(a[0], Arg::Int(1)) && matches!(a[1], Arg::Int(2)) && matches!(a[2], Arg::Int(i64::MAX)));
        assert!(matches!(a[3], Arg::Text("x")) && matches!(a[4], Arg::Text("y")) && matches!(a[5], Arg::Blob([1])));
        assert!(matches!(a[6], Arg::Null) && matches!(a[7], Arg::Real(v) if v == 0.5));
    }
}
