//! A logical dump of the ledger: every row of every table, each value rendered as
//! text, the rows sorted. Two dumps are equal exactly when the ledger holds the
//! same data, whatever the pages, the WAL or the order rows were written in: what
//! tests compare to prove an operation changed nothing (or only what it should).

use sqlx::{Row, TypeInfo, ValueRef};

use super::Store;
use crate::error::{Error, Result};

/// One table of a [`Store::logical_dump`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDump {
    pub name: String,
    /// The columns, in the table's order.
    pub columns: Vec<String>,
    /// Every row, its values in column order rendered by [`render`], the rows sorted.
    pub rows: Vec<Vec<String>>,
}

impl TableDump {
    /// The position of `column`, if the table has it.
    pub fn column(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// Each row as one line: `table: column=value, …`.
    pub fn lines(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|row| {
                let values: Vec<String> = self
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| format!("{c}={v}"))
                    .collect();
                format!("{}: {}", self.name, values.join(", "))
            })
            .collect()
    }
}

/// An identifier for SQL: in double quotes, a double quote doubled.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One value as text, the same for the same value on every run: `NULL`, an integer,
/// a real in Rust's shortest round-trip form (`9.0`, `0.65`), a text in double
/// quotes with escapes, a blob as `x'…'` in hex.
fn render(row: &sqlx::any::AnyRow, i: usize) -> Result<String> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok("NULL".into());
    }
    // The value's own storage class (SQLite's, not the column's declared type).
    let class = raw.type_info().name().to_string();
    Ok(match class.as_str() {
        "INTEGER" | "BIGINT" | "SMALLINT" => row.try_get::<i64, _>(i)?.to_string(),
        "REAL" | "DOUBLE" => format!("{:?}", row.try_get::<f64, _>(i)?),
        "BOOLEAN" => i64::from(row.try_get::<bool, _>(i)?).to_string(),
        "BLOB" => {
            let bytes: Vec<u8> = row.try_get(i)?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("x'{hex}'")
        }
        _ => format!("{:?}", row.try_get::<String, _>(i)?),
    })
}

impl Store {
    /// Every table of the ledger (all but the engine's own and the migration
    /// record, sorted by name) with every row, read in one transaction so the
    /// tables agree.
    pub async fn logical_dump(&self) -> Result<Vec<TableDump>> {
        let mut tx = self.pool.begin().await?;
        let names = super::engine::tables(&mut tx).await?;
        let mut tables = Vec::with_capacity(names.len());
        for name in names {
            let columns: Vec<String> = super::engine::columns(&mut tx, &name)
                .await?
                .into_iter()
                .map(|c| c.name)
                .collect();
            if columns.is_empty() {
                return Err(Error::internal(format!("table {name} has no columns")));
            }
            let list: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
            let sql = format!("SELECT {} FROM {}", list.join(", "), quoted(&name));
            let fetched = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *tx).await?;
            let mut rows = Vec::with_capacity(fetched.len());
            for row in &fetched {
                rows.push(
                    (0..columns.len())
                        .map(|i| render(row, i))
                        .collect::<Result<Vec<String>>>()?,
                );
            }
            rows.sort();
            tables.push(TableDump { name, columns, rows });
        }
        tx.rollback().await?;
        Ok(tables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_table_and_row_renders_the_same_whatever_the_order_rows_came_in() {
        let store = Store::open_in_memory().await.unwrap();
        let dump = store.logical_dump().await.unwrap();
        let names: Vec<&str> = dump.iter().map(|t| t.name.as_str()).collect();
        assert!(
            names.contains(&"ledger_meta") && names.contains(&"grades"),
            "{names:?}"
        );
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("sqlite_") || *n == "_sqlx_migrations")
        );
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let grades = dump.iter().find(|t| t.name == "grades").unwrap();
        assert!(grades.rows.is_empty());
        assert!(
            grades.column("score_given").is_some(),
            "columns of an empty table"
        );

        // Values of every storage class, written in two orders: the same dump.
        let mut dumps = Vec::new();
        for order in [[1, 2, 3], [3, 1, 2]] {
            // A table with a column of no type: SQLite's storage classes.
            let store = Store::open_sqlite_in_memory().await.unwrap();
            sqlx::query("CREATE TABLE zz_kinds (i INTEGER, r REAL, t TEXT, b BLOB, n)")
                .execute(store.pool())
                .await
                .unwrap();
            for k in order {
                sqlx::query("INSERT INTO zz_kinds VALUES ($1, $2, $3, $4, NULL)")
                    .bind(k)
                    .bind(k as f64 / 4.0)
                    .bind(format!("t{k} \"q\"\n"))
                    .bind(vec![k as u8, 0xff])
                    .execute(store.pool())
                    .await
                    .unwrap();
            }
            let dump = store.logical_dump().await.unwrap();
            dumps.push(dump.into_iter().find(|t| t.name == "zz_kinds").unwrap());
        }
        assert_eq!(dumps[0], dumps[1]);
        assert_eq!(
            dumps[0].lines()[0],
            r#"zz_kinds: i=1, r=0.25, t="t1 \"q\"\n", b=x'01ff', n=NULL"#
        );
        assert_eq!(dumps[0].rows.len(), 3);
    }
}
