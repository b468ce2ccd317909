//! The GraphQL layer: schema, roots, types, per-request context and loaders. Errors become
//! `extensions.code` at this boundary (see `crate::error`).

pub mod connection;
pub mod context;
pub mod ids;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod types;

use async_graphql::{EmptySubscription, SDLExportOptions, Schema};

use crate::config::Limits;

/// The schema type served by partnerhub.
pub type AppSchema = Schema<query::Query, mutation::Mutation, EmptySubscription>;

/// Builds the schema with the configured limits.
pub fn build_schema(limits: &Limits) -> AppSchema {
    Schema::build(query::Query, mutation::Mutation::default(), EmptySubscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .finish()
}

/// The SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build_schema(&Limits::default()).sdl_with_options(SDLExportOptions::new().sorted_fields().sorted_enum_items())
}
