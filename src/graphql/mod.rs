//! The GraphQL layer: schema, roots, types, per-request context and loaders. Errors become
//! `extensions.code` at this boundary (see `crate::error`).

pub mod budget;
pub mod connection;
pub mod context;
pub mod cost;
pub mod document;
pub mod guard;
pub mod ids;
pub mod loaders;
pub mod mutation;
pub mod plain;
pub mod query;
pub mod realtime;
pub mod types;
pub mod validated;

use async_graphql::{SDLExportOptions, Schema};

use crate::config::Limits;

/// The schema type served by partnerhub.
pub type AppSchema = Schema<query::Query, mutation::Mutation, realtime::Realtime>;

/// Builds the schema with the configured limits. Depth and cost are checked by [`cost::CostGuard`]
/// (which names the setting in its errors), together with the document bounds and the budgets.
pub fn build_schema(limits: &Limits, budgets: std::sync::Arc<budget::Budgets>) -> AppSchema {
    guarded(limits, budgets, async_graphql::ValidationMode::Strict)
}

/// [`build_schema`]'s schema and guard (the same budgets), validating in async-graphql's fast mode:
/// for documents that passed the full validation before, with variables that cannot change its
/// outcome ([`validated`]). Cost and depth are still worked out from each request's variables.
pub fn build_fast_check_schema(limits: &Limits, budgets: std::sync::Arc<budget::Budgets>) -> AppSchema {
    guarded(limits, budgets, async_graphql::ValidationMode::Fast)
}

fn guarded(
    limits: &Limits,
    budgets: std::sync::Arc<budget::Budgets>,
    mode: async_graphql::ValidationMode,
) -> AppSchema {
    Schema::build(query::Query, mutation::Mutation::default(), realtime::Realtime)
        .extension(cost::CostGuard::new(budgets, *limits))
        .validation_mode(mode)
        .finish()
}

/// The same schema without the extension, for running operations that [`build_schema`]'s schema
/// has already checked (see [`cost::ValidateOnly`]). async-graphql sends every resolved field
/// through the extension chain as soon as a schema has one extension, and looks the field up in
/// its registry for that (two hash lookups and a `ResolveInfo` per field): about a tenth of the CPU
/// time of a page of 50 customers × 10 subscriptions. The extension's work is over once the
/// operation is validated, so the operation itself runs here, where fields take the engine's
/// direct path. Its validation runs in async-graphql's fast mode (fragment cycles only; the other
/// rules already passed on the guarded schema, over the same document and variables).
pub fn build_execution_schema() -> AppSchema {
    Schema::build(query::Query, mutation::Mutation::default(), realtime::Realtime)
        .validation_mode(async_graphql::ValidationMode::Fast)
        .finish()
}

/// The schema with default limits and a budget of its own (tests, `partnerhub schema`).
pub fn default_schema() -> AppSchema {
    let limits = Limits::default();
    build_schema(&limits, std::sync::Arc::new(budget::Budgets::new(limits.budgets)))
}

/// The SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    default_schema().sdl_with_options(SDLExportOptions::new().sorted_fields().sorted_enum_items())
}
