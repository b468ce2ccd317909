#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The integration suite: one binary, the app driven in-process. Runs on SQLite by default and on
//! PostgreSQL when `PARTNERHUB_TEST_DATABASE_URL` points at one (a fresh database per test).

mod common;

mod architecture;
mod audit;
mod auth;
mod cancellation;
mod cli;
mod docs;
mod events;
mod first_contact;
mod graphiql;
mod hardening;
mod http;
mod isolation;
mod lifecycle;
mod logs;
mod migrations;
mod n_plus_one;
mod operations;
mod queries;
mod schema;
mod walkthrough;
mod webhooks;
mod write_customers;
mod write_relationships;
mod write_subscriptions;
mod write_transfers;
