//! The hottest scoped reads as statements built once per shape: SeaORM builds the statement the
//! first time a shape is asked for, and later calls of that shape only fill in their values.
//!
//! Building a statement with the visibility rule (an expression tree of a few dozen nodes, rendered
//! to SQL and then dropped) was about a sixth of the server's CPU for a lookup by id and for a
//! write's read. The SQL of a lookup depends only on its shape (the entity, the kind of caller,
//! how many ids), never on the values: the caller's ids, the clock and the ids asked for are bound
//! parameters. So the statement of a shape is built once with stand-in values ("sentinels"), the
//! positions where the stand-ins land are remembered, and each call copies the values and puts its
//! own at those positions.
//!
//! The builder stays the one source of the SQL: a template is kept only if two builds with two
//! different sets of stand-ins give the same SQL, the same values everywhere else, and every
//! stand-in back exactly where the other set put its own (a value computed from an input, say
//! `now - 1 day`, fails this and that shape is simply built every time). In debug builds (the test
//! suite) every call also builds its statement the ordinary way and asserts that the template gave
//! the same SQL and values.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use chrono::{DateTime, Utc};
use sea_orm::{DbBackend, Statement, Value, Values};
use uuid::Uuid;

use super::{Scope, Viewer};

/// Templates are kept for lookups of at most this many ids (an `IN` list of more is built each
/// time), and at most this many templates in all: the map stays small whatever clients ask.
const MAX_IDS: usize = 128;
const MAX_TEMPLATES: usize = 2048;

/// What decides a statement's SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    /// The read (`"by_ids"`, `"first_per_parent"`, …).
    pub what: &'static str,
    /// The column it selects by (`"id"`, `"customer_id"`, …).
    pub by: &'static str,
    /// The entity read.
    pub entity: TypeId,
    /// How many ids the read names.
    pub ids: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    shape: Shape,
    /// The backend (0 PostgreSQL, 1 SQLite, 2 MySQL): the dialect of the SQL.
    backend: u8,
    viewer: u8,
}

/// The values a read binds: the scope's (its viewer's ids and its clock), then ids, then integers
/// (page sizes).
#[derive(Debug, Clone)]
pub struct Args {
    pub scope: Scope,
    pub ids: Vec<Uuid>,
    pub ints: Vec<i64>,
}

/// Where an input goes in a template's values, and in which form.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Uuid(usize),
    Time,
    Int(usize, IntForm),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntForm {
    BigInt,
    BigUnsigned,
    Int,
    Unsigned,
}

struct Template {
    sql: String,
    values: Vec<Value>,
    slots: Vec<(usize, Slot)>,
}

static TEMPLATES: LazyLock<RwLock<HashMap<Key, Option<Arc<Template>>>>> = LazyLock::new(Default::default);

fn viewer_kind(viewer: &Viewer) -> u8 {
    match viewer {
        Viewer::Platform => 0,
        Viewer::Partner { .. } => 1,
        Viewer::Customer { .. } => 2,
    }
}

/// The statement `build` makes of `args`, from the template of `shape` when there is one.
pub fn statement(backend: DbBackend, shape: Shape, args: &Args, build: impl Fn(&Args) -> Statement) -> Statement {
    if shape.ids > MAX_IDS {
        return build(args);
    }
    let backend_kind = match backend {
        DbBackend::Postgres => 0,
        DbBackend::Sqlite => 1,
        _ => 2,
    };
    let key = Key { shape, backend: backend_kind, viewer: viewer_kind(&args.scope.viewer) };
    let found = TEMPLATES.read().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
    let template = match found {
        Some(template) => template,
        None => {
            let made = make(args, &build).map(Arc::new);
            if made.is_none() {
                tracing::debug!(?shape, "statement shape not templated: its values do not all come from inputs");
            }
            let mut map = TEMPLATES.write().unwrap_or_else(|p| p.into_inner());
            if map.len() < MAX_TEMPLATES {
                map.insert(key, made.clone());
            }
            made
        }
    };
    let Some(template) = template else { return build(args) };
    let statement = fill(&template, backend, args);
    #[cfg(debug_assertions)]
    {
        let built = build(args);
        assert_eq!(statement.sql, built.sql, "a template's SQL differs from the builder's for {shape:?}");
        assert_eq!(statement.values, built.values, "a template's values differ from the builder's for {shape:?}");
    }
    statement
}

fn fill(template: &Template, backend: DbBackend, args: &Args) -> Statement {
    let uuids = uuid_inputs(args);
    let mut values = template.values.clone();
    for &(position, slot) in &template.slots {
        values[position] = match slot {
            Slot::Uuid(i) => Value::from(uuids[i]),
            Slot::Time => Value::from(args.scope.now),
            Slot::Int(i, form) => int_value(args.ints[i], form),
        };
    }
    Statement { sql: template.sql.clone(), values: Some(Values(values)), db_backend: backend }
}

/// The uuid inputs in order: the viewer's ids, then `args.ids`.
fn uuid_inputs(args: &Args) -> Vec<Uuid> {
    let mut all = match args.scope.viewer {
        Viewer::Platform => Vec::new(),
        Viewer::Partner { id, tenant_id } | Viewer::Customer { id, tenant_id } => vec![id, tenant_id],
    };
    all.extend_from_slice(&args.ids);
    all
}

fn int_value(n: i64, form: IntForm) -> Value {
    match form {
        IntForm::BigInt => Value::BigInt(Some(n)),
        IntForm::BigUnsigned => Value::BigUnsigned(Some(n as u64)),
        IntForm::Int => Value::Int(Some(n as i32)),
        IntForm::Unsigned => Value::Unsigned(Some(n as u32)),
    }
}

/// `args` with every input replaced by a stand-in of set `set` (1 or 2): distinct values no caller
/// sends and no statement holds as a constant (which input each one is, [`slot_of`] finds by its
/// place in [`uuid_inputs`]).
fn sentinels(args: &Args, set: u128) -> Args {
    let uuid = |i: usize| Uuid::from_u128(0x5e47_0000_0000_4000_8000_0000_0000_0000 | (set << 64) | i as u128);
    let viewer = match args.scope.viewer {
        Viewer::Platform => Viewer::Platform,
        Viewer::Partner { .. } => Viewer::Partner { id: uuid(0), tenant_id: uuid(1) },
        Viewer::Customer { .. } => Viewer::Customer { id: uuid(0), tenant_id: uuid(1) },
    };
    let now = DateTime::<Utc>::from_timestamp(-30_000_000_000 + set as i64 * 1_000_003, 0).unwrap_or_default();
    Args {
        scope: Scope { viewer, now },
        ids: (0..args.ids.len()).map(|i| uuid(2 + i)).collect(),
        ints: (0..args.ints.len()).map(|i| int_sentinel(set, i)).collect(),
    }
}

fn int_sentinel(set: u128, i: usize) -> i64 {
    1_900_000_000 + set as i64 * 10_000 + i as i64
}

/// Which input a value of a build with stand-ins of `set` is, if any.
fn slot_of(value: &Value, args: &Args, set: u128) -> Option<Slot> {
    let int = |n: i64, form| (0..args.ints.len()).find(|&i| int_sentinel(set, i) == n).map(|i| Slot::Int(i, form));
    match value {
        Value::Uuid(Some(u)) => uuid_inputs(args).iter().position(|s| s == u).map(Slot::Uuid),
        Value::ChronoDateTimeUtc(Some(t)) if *t == args.scope.now => Some(Slot::Time),
        Value::BigInt(Some(n)) => int(*n, IntForm::BigInt),
        Value::BigUnsigned(Some(n)) => int(*n as i64, IntForm::BigUnsigned),
        Value::Int(Some(n)) => int(*n as i64, IntForm::Int),
        Value::Unsigned(Some(n)) => int(*n as i64, IntForm::Unsigned),
        _ => None,
    }
}

/// The template of `build`, or `None` when two builds with different stand-ins disagree anywhere
/// but at the stand-ins themselves.
fn make(args: &Args, build: &impl Fn(&Args) -> Statement) -> Option<Template> {
    let (one, two) = (sentinels(args, 1), sentinels(args, 2));
    let (first, second) = (build(&one), build(&two));
    if first.sql != second.sql {
        return None;
    }
    let values = first.values.map(|v| v.0).unwrap_or_default();
    let others = second.values.map(|v| v.0).unwrap_or_default();
    if values.len() != others.len() {
        return None;
    }
    let mut slots = Vec::new();
    for (position, (a, b)) in values.iter().zip(&others).enumerate() {
        match (slot_of(a, &one, 1), slot_of(b, &two, 2)) {
            (None, None) if a == b => {}
            (Some(x), Some(y)) if same_slot(x, y) => slots.push((position, x)),
            _ => return None,
        }
    }
    Some(Template { sql: first.sql, values, slots })
}

fn same_slot(a: Slot, b: Slot) -> bool {
    match (a, b) {
        (Slot::Uuid(x), Slot::Uuid(y)) => x == y,
        (Slot::Time, Slot::Time) => true,
        (Slot::Int(x, f), Slot::Int(y, g)) => x == y && f == g,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait};

    fn partner_args(ids: usize) -> Args {
        let viewer = Viewer::Partner { id: Uuid::now_v7(), tenant_id: Uuid::now_v7() };
        Args {
            scope: Scope { viewer, now: Utc::now() },
            ids: (0..ids).map(|_| Uuid::now_v7()).collect(),
            ints: vec![11],
        }
    }

    fn lookup(args: &Args) -> Statement {
        use entity::subscription;
        subscription::Entity::find()
            .filter(args.scope.subscription_probe_condition())
            .filter(subscription::Column::Id.is_in(args.ids.clone()))
            .limit(args.ints[0] as u64)
            .build(DbBackend::Postgres)
    }

    #[test]
    fn a_template_gives_the_statement_the_builder_gives() {
        let shape =
            Shape { what: "test_lookup", by: "id", entity: TypeId::of::<entity::subscription::Entity>(), ids: 3 };
        for _ in 0..3 {
            let args = partner_args(3);
            let templated = statement(DbBackend::Postgres, shape, &args, lookup);
            let built = lookup(&args);
            assert_eq!(templated.sql, built.sql);
            assert_eq!(templated.values, built.values);
        }
    }

    #[test]
    fn a_value_computed_from_an_input_is_never_templated() {
        // `now` minus a day lands where no stand-in is: the shape is built every time, and right.
        let build = |args: &Args| {
            DbBackend::Postgres.build(
                &Query::select()
                    .expr(Expr::val(1))
                    .and_where(Expr::col("t").gt(args.scope.now - chrono::Duration::days(1)))
                    .to_owned(),
            )
        };
        assert!(make(&partner_args(0), &build).is_none());
        let args = partner_args(0);
        let shape = Shape { what: "test_computed", by: "t", entity: TypeId::of::<()>(), ids: 0 };
        assert_eq!(statement(DbBackend::Postgres, shape, &args, build).values, build(&args).values);
    }
}
