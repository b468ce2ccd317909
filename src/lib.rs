//! partnerhub: a multi-tenant GraphQL API server for cloud-reseller partner programs.
//!
//! Request path: [`http`] (layers, GraphQL-over-HTTP) → [`auth`] (JWT → principal) → [`graphql`]
//! (resolvers) → [`domain`] (business rules) and [`access`] (visibility) → SeaORM entities.

pub mod access;
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod metrics;
#[cfg(feature = "profiling")]
pub mod profiling;
pub mod state;
pub mod telemetry;

pub use http::router as app;
pub mod cli;
pub mod demo;
pub mod seed;
