//! Statements built at run time (multi-row inserts, listing filters), with
//! numbered placeholders (`$1`, `$2`, …) that both engines read.
//!
//! sqlx's own `QueryBuilder<Any>` writes `?` for every bound value, which
//! PostgreSQL does not accept; this is the same builder (the parts the store
//! uses, with the same names) writing `$n`. SQLite reads `$n` as the n-th bound
//! value, so static statements in the store are written the same way.

use std::fmt::{Display, Write};

use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, Encode, Type};

/// A statement and its bound values, built piece by piece.
pub struct Sql {
    text: String,
    args: AnyArguments,
    bound: usize,
}

impl Sql {
    pub fn new(init: impl Display) -> Self {
        Self {
            text: init.to_string(),
            args: AnyArguments::default(),
            bound: 0,
        }
    }

    /// Append SQL text (never a value: values go through [`Sql::push_bind`]).
    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        write!(self.text, "{sql}").expect("writing to a String cannot fail");
        self
    }

    /// Append a placeholder for `value` and bind it.
    pub fn push_bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any> + 't,
    {
        self.bound += 1;
        write!(self.text, "${}", self.bound).expect("writing to a String cannot fail");
        // The ledger binds integers, reals, text and NULLs: encoding them into
        // AnyArguments pushes a value and cannot fail.
        self.args.add(value).expect("encoding a ledger value cannot fail");
        self
    }

    /// Pieces separated by `separator` (`, ` for value lists).
    pub fn separated<'b>(&'b mut self, separator: &'static str) -> Separated<'b> {
        Separated {
            sql: self,
            separator,
            first: true,
        }
    }

    /// `VALUES (…), (…)`: one parenthesised tuple per item, its values pushed by
    /// `push_tuple` through a comma-separated builder.
    pub fn push_values<I, F>(&mut self, tuples: I, mut push_tuple: F) -> &mut Self
    where
        I: IntoIterator,
        F: FnMut(Separated<'_>, I::Item),
    {
        self.push("VALUES ");
        let mut first = true;
        for tuple in tuples {
            if !first {
                self.push(", ");
            }
            first = false;
            self.push("(");
            push_tuple(self.separated(", "), tuple);
            self.push(")");
        }
        self
    }

    /// The statement text so far (tests and logs).
    pub fn sql(&self) -> &str {
        &self.text
    }

    /// A query to run once.
    pub fn build(&mut self) -> sqlx::query::Query<'static, Any, AnyArguments> {
        let (text, args) = self.take();
        sqlx::query_with(sqlx::AssertSqlSafe(text), args)
    }

    /// A query whose rows decode as `O`.
    pub fn build_query_as<O>(&mut self) -> sqlx::query::QueryAs<'static, Any, O, AnyArguments>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let (text, args) = self.take();
        sqlx::query_as_with(sqlx::AssertSqlSafe(text), args)
    }

    /// A query whose first column decodes as `O`.
    pub fn build_query_scalar<O>(&mut self) -> sqlx::query::QueryScalar<'static, Any, O, AnyArguments>
    where
        (O,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let (text, args) = self.take();
        sqlx::query_scalar_with(sqlx::AssertSqlSafe(text), args)
    }

    fn take(&mut self) -> (String, AnyArguments) {
        self.bound = 0;
        (std::mem::take(&mut self.text), std::mem::take(&mut self.args))
    }
}

/// Pieces of a [`Sql`] with a separator between them (see [`Sql::separated`]).
pub struct Separated<'b> {
    sql: &'b mut Sql,
    separator: &'static str,
    first: bool,
}

impl Separated<'_> {
    fn separate(&mut self) {
        if !self.first {
            self.sql.push(self.separator);
        }
        self.first = false;
    }

    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        self.separate();
        self.sql.push(sql);
        self
    }

    pub fn push_bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any> + 't,
    {
        self.separate();
        self.sql.push_bind(value);
        self
    }

    pub fn push_unseparated(&mut self, sql: impl Display) -> &mut Self {
        self.sql.push(sql);
        self
    }

    pub fn push_bind_unseparated<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any> + 't,
    {
        self.sql.push_bind(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_numbered_in_the_order_they_are_bound() {
        let mut q = Sql::new("INSERT INTO t (a, b) ");
        q.push_values([(1_i64, "x"), (2, "y")], |mut b, (a, s)| {
            b.push_bind(a).push_bind(s);
        });
        q.push(" WHERE c = ").push_bind(3_i64);
        assert_eq!(
            q.sql(),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) WHERE c = $5"
        );
        let mut keys = Sql::new("(");
        let mut sep = keys.separated(", ");
        for k in [7_i64, 8] {
            sep.push("(").push_bind_unseparated(k).push_unseparated(")");
        }
        keys.push(")");
        assert_eq!(keys.sql(), "(($1), ($2))");
    }
}

/// An optional real, as the store binds it. sqlx 0.9's `Any` driver hands a
/// NULL `f64` to PostgreSQL as a FLOAT4 parameter (`AnyArguments::convert_into`
/// maps a NULL of `f64`'s kind to `Option<f32>`, and one of `f32`'s kind to
/// `Option<f64>`): a statement first prepared with that NULL keeps FLOAT4 in the
/// statement cache, and a later execution binding a value fails ("incorrect
/// binary data format"). A `Real` sends its NULL with `f32`'s kind, which reaches
/// PostgreSQL as FLOAT8 (SQLite reads either as NULL);
/// `store::tests::a_real_bound_null_then_a_value_reuses_its_statement` keeps it so.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Real(pub Option<f64>);

impl Type<Any> for Real {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <f64 as Type<Any>>::type_info()
    }
}

impl<'q> Encode<'q, Any> for Real {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as sqlx::Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        match self.0 {
            Some(v) => <f64 as Encode<'q, Any>>::encode_by_ref(&v, buf),
            None => <Option<f32> as Encode<'q, Any>>::encode_by_ref(&None, buf),
        }
    }
}
