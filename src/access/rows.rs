//! Decoding the rows of the hottest tables by position.
//!
//! SeaORM's derived `FromQueryResult` looks every column up by name (a hash of the name per
//! column and row) and turns every `NULL` of an optional column into a formatted error before
//! mapping it to `None`: for a page of 50 customers × 10 subscriptions that was a fifth of the
//! server's CPU time (see the README's performance notes). The reads of [`super::Reader`] select
//! whole rows in the entity's column order (`E::find()` and the window/link queries built on it,
//! which append their own columns at the end), so customers and subscriptions are decoded here
//! straight from the driver's row by index. Other tables, and any row whose driver this code does
//! not know, keep SeaORM's decoding. A test (`tests/queries.rs`,
//! `rows_decoded_by_position_equal_rows_decoded_by_name`) reads the same rows both ways.

use chrono::{DateTime, Utc};
use entity::enums::{BillingModel, Channel, Cloud, SubscriptionStatus};
use entity::{customer, subscription};
use sea_orm::sqlx::postgres::{PgRow, PgValueFormat};
use sea_orm::sqlx::sqlite::SqliteRow;
use sea_orm::sqlx::{ColumnIndex, Decode, Row, Type, ValueRef};
use sea_orm::{DbErr, FromQueryResult, QueryResult};

fn type_error(column: usize, err: impl std::fmt::Display) -> DbErr {
    DbErr::Type(format!("column {column}: {err}"))
}

/// Column `i` of a driver row. Without sqlx's type-compatibility check (a comparison of type infos
/// per value, a third of the decoding time): the columns are the entity's own, and the test named in
/// the module documentation decodes every column both ways.
fn col<'r, R, T>(row: &'r R, i: usize) -> Result<T, DbErr>
where
    R: Row,
    usize: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get_unchecked(i).map_err(|e| type_error(i, e))
}

/// Column `i` of a driver row, an enumeration stored as its text.
fn text<'r, R, T>(row: &'r R, i: usize, parse: fn(&str) -> Option<T>) -> Result<T, DbErr>
where
    R: Row,
    usize: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
{
    let text: &str = col(row, i)?;
    parse(text).ok_or_else(|| type_error(i, format!("unexpected value {text:?}")))
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Timestamp columns. sqlx decodes PostgreSQL's binary `timestamptz` (microseconds since 2000)
/// through a `NaiveDate` built from the calendar for every value, then converts it twice (a third
/// of the decoding of a subscription row, five timestamps each); here it is one addition.
trait Times {
    fn time(&self, i: usize) -> Result<Option<DateTime<Utc>>, DbErr>;
}

impl Times for PgRow {
    fn time(&self, i: usize) -> Result<Option<DateTime<Utc>>, DbErr> {
        let value = self.try_get_raw(i).map_err(|e| type_error(i, e))?;
        if value.is_null() {
            return Ok(None);
        }
        if value.format() != PgValueFormat::Binary {
            return col(self, i);
        }
        let bytes = value.as_bytes().map_err(|e| type_error(i, e))?;
        let micros = <[u8; 8]>::try_from(bytes).map_err(|_| type_error(i, "a timestamp is 8 bytes"))?;
        i64::from_be_bytes(micros)
            .checked_add(PG_EPOCH_MICROS)
            .and_then(DateTime::from_timestamp_micros)
            .map(Some)
            .ok_or_else(|| type_error(i, "timestamp out of range"))
    }
}

impl Times for SqliteRow {
    fn time(&self, i: usize) -> Result<Option<DateTime<Utc>>, DbErr> {
        col(self, i)
    }
}

/// A timestamp column that is never `NULL`.
fn time<R: Times>(row: &R, i: usize) -> Result<DateTime<Utc>, DbErr> {
    row.time(i)?.ok_or_else(|| type_error(i, "unexpected NULL"))
}

/// Runs `$body` with `$r` bound to the driver's row (PostgreSQL or SQLite), else `$fallback`.
macro_rules! by_position {
    ($row:expr, $fallback:expr, |$r:ident| $body:expr) => {{
        let row: &QueryResult = $row;
        if let Some($r) = row.try_as_pg_row() {
            return $body;
        }
        if let Some($r) = row.try_as_sqlite_row() {
            return $body;
        }
        $fallback
    }};
}

/// A subscription row whose first columns are the entity's, in its order.
pub fn subscription(row: &QueryResult) -> Result<subscription::Model, DbErr> {
    by_position!(row, subscription::Model::from_query_result(row, ""), |r| {
        Ok(subscription::Model {
            id: col(r, 0)?,
            customer_id: col(r, 1)?,
            offer_id: col(r, 2)?,
            offer_name: col(r, 3)?,
            billing_model: text(r, 4, BillingModel::from_text)?,
            channel: text(r, 5, Channel::from_text)?,
            partner_id: col(r, 6)?,
            reseller_id: col(r, 7)?,
            quantity: col(r, 8)?,
            status: text(r, 9, SubscriptionStatus::from_text)?,
            term_months: col(r, 10)?,
            term_start: time(r, 11)?,
            term_end: r.time(12)?,
            auto_renew: col(r, 13)?,
            cancellation_allowed_until: r.time(14)?,
            external_reference: col(r, 15)?,
            migrated_from_id: col(r, 16)?,
            version: col(r, 17)?,
            created_at: time(r, 18)?,
            updated_at: time(r, 19)?,
            cancelled_at: r.time(20)?,
        })
    })
}

/// A customer row whose first columns are the entity's, in its order.
pub fn customer(row: &QueryResult) -> Result<customer::Model, DbErr> {
    by_position!(row, customer::Model::from_query_result(row, ""), |r| {
        Ok(customer::Model {
            id: col(r, 0)?,
            tenant_id: col(r, 1)?,
            company_name: col(r, 2)?,
            domain: col(r, 3)?,
            country: col(r, 4)?,
            cloud: text(r, 5, Cloud::from_text)?,
            version: col(r, 6)?,
            created_at: time(r, 7)?,
            updated_at: time(r, 8)?,
        })
    })
}
