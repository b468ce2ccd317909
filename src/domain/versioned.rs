//! R13, optimistic concurrency: a row changes only if its version is still the one read (and the
//! one the caller expects, when it says). The update is conditional (`WHERE id = ? AND version = ?`)
//! and its affected-row count decides, so two racing updates at one version serialize on both
//! databases: exactly one wins, the other gets `VERSION_CONFLICT` and changes nothing.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use entity::{partner, relationship, subscription, subscription_transfer};
use sea_orm::sea_query::{CommonTableExpression, Expr, InsertStatement, Query, WithClause};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, Iterable, QueryFilter,
    QueryTrait, Statement, Values,
};

use super::WriteGuard;
use super::audit::{self, By, Change};

use crate::error::{ApiError, ApiResult, Code};

/// `VERSION_CONFLICT` unless `expected` (when given) is the row's current version.
pub fn check_expected(current: i32, expected: Option<i32>, what: &str) -> ApiResult<()> {
    match expected {
        Some(v) if v != current => Err(conflict(what, current)),
        _ => Ok(()),
    }
}

fn conflict(what: &str, current: i32) -> ApiError {
    ApiError::new(
        Code::VersionConflict,
        format!("the {what} changed since you read it (its version is now {current}); read it again and retry"),
    )
}

/// An active model with only the columns whose value differs between `before` and `after` set
/// (the version always does): the `UPDATE` writes those and nothing else.
fn changed_columns<A: ActiveModelTrait>(before: A, after: A) -> A {
    let mut changes = A::default();
    for column in <A::Entity as EntityTrait>::Column::iter() {
        let new = after.get(column).into_value();
        if new != before.get(column).into_value()
            && let Some(value) = new
        {
            changes.set(column, value);
        }
    }
    changes
}

macro_rules! versioned_update {
    ($name:ident, $module:ident, $what:literal) => {
        /// Writes `after` over `before` if `before.version` is still current (and matches
        /// `expected`, when given); returns the stored row with its new version.
        pub async fn $name<C: ConnectionTrait>(
            db: &C,
            before: &$module::Model,
            mut after: $module::Model,
            expected: Option<i32>,
        ) -> ApiResult<$module::Model> {
            check_expected(before.version, expected, $what)?;
            after.version = before.version + 1;
            let result = $module::Entity::update_many()
                .set(changed_columns(before.clone().into_active_model(), after.clone().into_active_model()))
                .filter($module::Column::Id.eq(before.id))
                .filter($module::Column::Version.eq(before.version))
                .exec(db)
                .await
                .map_err(|err| {
                    if super::is_unique_violation(&err) {
                        ApiError::new(
                            Code::Conflict,
                            concat!(
                                "this change would duplicate another ",
                                $what,
                                " (one PENDING request and one ACTIVE link per pair)"
                            ),
                        )
                    } else {
                        err.into()
                    }
                })?;
            if result.rows_affected != 1 {
                return Err(conflict($what, before.version + 1));
            }
            Ok(after)
        }
    };
}

versioned_update!(update_partner, partner, "partner");
versioned_update!(update_subscription, subscription, "subscription");
versioned_update!(update_relationship, relationship, "relationship");
versioned_update!(update_transfer, subscription_transfer, "transfer");

/// [`update_subscription`] and [`audit::record`] of `change` as ONE statement, without a
/// transaction (PostgreSQL only; a single statement is atomic on its own): the conditional `UPDATE
/// … WHERE id = ? AND version = ? RETURNING id` is a data-modifying CTE, and the audit and outbox
/// rows are inserted by `SELECT`s over its result, so when the version is no longer current nothing
/// at all is written and the caller gets `VERSION_CONFLICT`. One round trip instead of four
/// (`BEGIN`, `UPDATE`, the inserts, `COMMIT`). The caller wakes the event feed, as `Writer::write` does after a commit.
pub async fn update_subscription_recorded<C: ConnectionTrait>(
    db: &C,
    before: &subscription::Model,
    mut after: subscription::Model,
    by: &By,
    change: Change,
) -> ApiResult<subscription::Model> {
    debug_assert_eq!(db.get_database_backend(), DbBackend::Postgres);
    after.version = before.version + 1;
    let changes = changed_columns(before.clone().into_active_model(), after.clone().into_active_model());
    let (audit_row, outbox_row) = audit::rows(by, change);
    let statement = recorded_statement(before, changes, audit_row, outbox_row, None)?;
    if db.execute_raw(statement).await?.rows_affected() != 1 {
        return Err(conflict("subscription", before.version + 1));
    }
    Ok(after)
}

/// [`update_subscription_recorded`] whose update also requires `guard`'s read to return a row it
/// admits (`Writer::write_guard`: the row under the caller's visibility, its partner not
/// suspended), as one statement: `WITH ph_guard AS (<read>), ph_updated AS (UPDATE … WHERE id = ?
/// AND version = ? AND EXISTS (SELECT 1 FROM ph_guard WHERE <admits>) RETURNING id) …`. `before` is
/// the row at the version the caller expects, as kept (`domain::known`), not read. `None` when
/// nothing was written, for whatever reason: the caller then reads and judges.
pub async fn update_subscription_guarded<C: ConnectionTrait>(
    db: &C,
    guard: &WriteGuard,
    before: &subscription::Model,
    mut after: subscription::Model,
    by: &By,
    change: Change,
) -> ApiResult<Option<subscription::Model>> {
    debug_assert_eq!(db.get_database_backend(), DbBackend::Postgres);
    after.version = before.version + 1;
    let changes = changed_columns(before.clone().into_active_model(), after.clone().into_active_model());
    let (audit_row, outbox_row) = audit::rows(by, change);
    let statement = recorded_statement(before, changes, audit_row, outbox_row, Some(guard))?;
    Ok((db.execute_raw(statement).await?.rows_affected() == 1).then_some(after))
}

/// SQLite: [`update_subscription_guarded`] as one script holding its own transaction, which
/// [`crate::db::sqlite_script`] runs as one command of the connection's worker thread:
/// `BEGIN IMMEDIATE; UPDATE … AND EXISTS (SELECT 1 FROM (<read>) WHERE <admits>); INSERT INTO
/// audit_event … SELECT … WHERE changes() = 1; INSERT INTO outbox_event … SELECT … WHERE changes()
/// = 1 RETURNING id; COMMIT`. SQLite has no data-modifying `WITH`: the guard's read is a subquery
/// of the `UPDATE`, and each insert writes its row only if the statement before it wrote one
/// (`changes()` is the row count of the last completed `INSERT`/`UPDATE`). So an update the guard
/// or the version refuses writes nothing, and the outbox row's id comes back only when all three
/// rows were written. Run one by one, the five statements took five round trips to the worker
/// thread, each a thread hand-off, while holding the write lock. `None` when nothing was written.
pub async fn update_subscription_guarded_script(
    db: &crate::db::RequestConnection,
    guard: &WriteGuard,
    before: &subscription::Model,
    mut after: subscription::Model,
    by: &By,
    change: Change,
) -> ApiResult<Option<subscription::Model>> {
    debug_assert_eq!(db.get_database_backend(), DbBackend::Sqlite);
    after.version = before.version + 1;
    let changes = changed_columns(before.clone().into_active_model(), after.clone().into_active_model());
    let mut update = subscription::Entity::update_many()
        .set(changes)
        .filter(subscription::Column::Id.eq(before.id))
        .filter(subscription::Column::Version.eq(before.version))
        .build(DbBackend::Sqlite);
    let mut sql = String::from("BEGIN IMMEDIATE; ");
    sql.push_str(&update.sql);
    sql.push_str(&format!(
        " AND EXISTS (SELECT 1 FROM ({}) AS \"{GUARD}\" WHERE {})",
        guard.statement.sql, guard.admits
    ));
    let mut values = update.values.take().unwrap_or(Values(Vec::new())).0;
    values.extend(guard.statement.values.iter().flat_map(|v| v.0.iter().cloned()));
    let (audit_row, outbox_row) = audit::rows(by, change);
    let mut outbox_insert = insert_if_changed(outbox_row)?;
    outbox_insert.returning_col(entity::outbox_event::Column::Id);
    for insert in [insert_if_changed(audit_row)?, outbox_insert] {
        let (insert_sql, insert_values) = insert.build(sea_orm::sea_query::SqliteQueryBuilder);
        sql.push_str("; ");
        sql.push_str(&insert_sql);
        values.extend(insert_values.0);
    }
    sql.push_str("; COMMIT");
    let outbox_ids = db.sqlite_script(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)).await?;
    Ok((outbox_ids.len() == 1).then_some(after))
}

/// The statement of [`update_subscription_recorded`]. Its SQL depends only on which columns
/// change (the audit and outbox rows always set the same columns), so it is built with SeaORM
/// once per set of changed columns and kept; later calls of that set take the values straight from
/// the rows, in the order the builder binds them (the changed columns, the id and the version read,
/// then the audit row's and the outbox row's set columns, each in column order). Debug builds (the
/// test suite) build every statement and assert the two agree.
fn recorded_statement(
    before: &subscription::Model,
    changes: subscription::ActiveModel,
    audit_row: entity::audit_event::ActiveModel,
    outbox_row: entity::outbox_event::ActiveModel,
    guard: Option<&WriteGuard>,
) -> ApiResult<Statement> {
    /// Per set of changed columns, the SQL without a guard and with each guard's SQL seen.
    type Kept = HashMap<u64, (Option<Arc<str>>, Vec<(String, Arc<str>)>)>;
    static SQL: LazyLock<RwLock<Kept>> = LazyLock::new(Default::default);
    let mut mask = 0u64;
    let mut values = Vec::new();
    if let Some(guard) = guard {
        values.extend(guard.statement.values.iter().flat_map(|v| v.0.iter().cloned()));
    }
    for (i, _, value) in set_columns(&changes) {
        mask |= 1 << i;
        values.push(value);
    }
    values.push(before.id.into());
    values.push(before.version.into());
    values.extend(set_columns(&audit_row).map(|(_, _, value)| value));
    values.extend(set_columns(&outbox_row).map(|(_, _, value)| value));
    let build = || -> ApiResult<Statement> {
        let mut update = subscription::Entity::update_many()
            .set(changes.clone())
            .filter(subscription::Column::Id.eq(before.id))
            .filter(subscription::Column::Version.eq(before.version))
            .into_query();
        let mut with = WithClause::new();
        if let Some(guard) = guard {
            with.cte(CommonTableExpression::new().query((guard.query)()).table_name(GUARD).to_owned());
            let admitted =
                Query::select().expr(Expr::cust("1")).from(GUARD).and_where(Expr::cust(guard.admits)).to_owned();
            update.and_where(Expr::exists(admitted));
        }
        update.returning_col(subscription::Column::Id);
        let with = with
            .cte(CommonTableExpression::new().query(update).table_name(UPDATED).to_owned())
            .cte(
                CommonTableExpression::new()
                    .query(insert_per_updated_row(audit_row.clone())?)
                    .table_name("ph_audit")
                    .to_owned(),
            )
            .to_owned();
        Ok(DbBackend::Postgres.build(&insert_per_updated_row(outbox_row.clone())?.with(with)))
    };
    let guard_sql = guard.map(|g| g.statement.sql.as_str());
    let find = |kept: &Kept| {
        let (plain, guarded) = kept.get(&mask)?;
        match guard_sql {
            None => plain.clone(),
            Some(wanted) => guarded.iter().find(|(sql, _)| sql == wanted).map(|(_, full)| full.clone()),
        }
    };
    let known = find(&SQL.read().unwrap_or_else(|p| p.into_inner()));
    let sql = match known {
        Some(sql) => sql,
        None => {
            let built = build()?;
            let sql: Arc<str> = built.sql.into();
            let mut kept = SQL.write().unwrap_or_else(|p| p.into_inner());
            let (plain, guarded) = kept.entry(mask).or_default();
            match guard_sql {
                None => *plain = Some(sql.clone()),
                // A guard's SQL depends on the kind of caller only: a handful per set of columns.
                Some(wanted) if guarded.len() < MAX_GUARDS => guarded.push((wanted.to_owned(), sql.clone())),
                Some(_) => {}
            }
            sql
        }
    };
    let statement = Statement { sql: sql.to_string(), values: Some(Values(values)), db_backend: DbBackend::Postgres };
    #[cfg(debug_assertions)]
    {
        let built = build()?;
        assert_eq!(statement.sql, built.sql, "the kept SQL of a recorded update differs from the builder's");
        assert_eq!(statement.values, built.values, "the values of a recorded update differ from the builder's");
    }
    Ok(statement)
}

/// `row`'s set columns and their values, in column order (the order the builder binds them), each
/// with its place among the entity's columns.
fn set_columns<A: ActiveModelTrait>(
    row: &A,
) -> impl Iterator<Item = (usize, <A::Entity as EntityTrait>::Column, sea_orm::Value)> + '_ {
    <A::Entity as EntityTrait>::Column::iter()
        .enumerate()
        .filter_map(|(i, column)| row.get(column).into_value().map(|value| (i, column, value)))
}

/// The CTE holding the row an update changed.
const UPDATED: &str = "ph_updated";
/// The CTE holding a guarded update's read.
const GUARD: &str = "ph_guard";
/// Most guards' SQL kept per set of changed columns.
const MAX_GUARDS: usize = 16;

/// `INSERT INTO <table> (<columns>) SELECT <values> FROM ph_updated`: one row per updated row.
fn insert_per_updated_row<A: ActiveModelTrait>(row: A) -> ApiResult<InsertStatement> {
    insert_selecting(row, |select| select.from(UPDATED))
}

/// `INSERT INTO <table> (<columns>) SELECT <values> WHERE changes() = 1`: the row, if the statement
/// before wrote one (SQLite).
fn insert_if_changed<A: ActiveModelTrait>(row: A) -> ApiResult<InsertStatement> {
    insert_selecting(row, |select| select.and_where(Expr::cust("changes() = 1")))
}

/// `INSERT INTO <table> (<columns>) SELECT <values> …`, the rest of the `SELECT` added by `rest`.
fn insert_selecting<A: ActiveModelTrait>(
    row: A,
    rest: impl FnOnce(&mut sea_orm::sea_query::SelectStatement) -> &mut sea_orm::sea_query::SelectStatement,
) -> ApiResult<InsertStatement> {
    let (columns, values): (Vec<_>, Vec<_>) =
        set_columns(&row).map(|(_, column, value)| (column, Expr::val(value))).unzip();
    let mut select = Query::select();
    rest(select.exprs(values));
    let mut insert = Query::insert();
    insert
        .into_table(<A::Entity as Default>::default())
        .columns(columns)
        .select_from(select)
        .map_err(|err| ApiError::internal(anyhow::anyhow!(err)))?;
    Ok(insert)
}
