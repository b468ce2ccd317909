//! What an operation costs, and the engine extension that enforces the document bounds, the
//! per-operation depth and cost limits and the per-tenant budget before any resolver runs. It also
//! gives engine errors their codes (parse, validation, or `BAD_USER_INPUT` for a variable's bad
//! value), and exempts operations that only introspect the schema from the depth limit
//! ([`super::document`]).
//!
//! Cost: async-graphql's complexity, where every field costs 1 plus what it selects, and every
//! connection field costs `first` (default 20) times its selection, plus 1 ([`connection`]), so
//! nested pages multiply and aliases add up. The cost is known after validation and before
//! execution; it is checked against `PARTNERHUB_MAX_COMPLEXITY`, then charged to the caller's
//! bucket ([`super::budget`]), and reported in `extensions.cost` of the response.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Pos, Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables};

use super::budget::{BudgetKey, Budgets, Charge};
use super::{document, guard};
use crate::config::Limits;
use crate::error::Code;

/// Page size assumed when a connection is asked for without `first`.
const DEFAULT_FIRST: usize = 20;

/// Cost of a connection field: `first` times its selection's cost, plus 1.
pub fn connection(first: Option<i32>, child_complexity: usize) -> usize {
    let rows = first.map_or(DEFAULT_FIRST, |n| n.max(0) as usize);
    rows.saturating_mul(child_complexity).saturating_add(1)
}

/// Cost of `nodes(ids:)`: one lookup per id.
pub fn lookups(ids: usize, child_complexity: usize) -> usize {
    ids.saturating_mul(child_complexity).saturating_add(1)
}

/// An error of the engine's phases, with its code.
pub fn coded_error(code: Code, message: impl Into<String>) -> ServerError {
    let mut error = ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
    error
}

/// Request data: the document was parsed and its bounds checked before the engine saw it (the HTTP
/// layer does this, and hands the parsed document over).
pub struct DocumentChecked;

/// Request data: check the operation only. When every check passes (and the budget is charged),
/// the flag is set and the engine stops before executing, with an error that only says so; the
/// caller then runs the operation on the schema without the extension
/// (`graphql::build_execution_schema`).
pub struct ValidateOnly(pub Arc<std::sync::atomic::AtomicBool>);

/// The extension factory installed on the schema.
pub struct CostGuard {
    budgets: Arc<Budgets>,
    limits: Limits,
}

impl CostGuard {
    pub fn new(budgets: Arc<Budgets>, limits: Limits) -> Self {
        Self { budgets, limits }
    }
}

impl ExtensionFactory for CostGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest {
            budgets: self.budgets.clone(),
            limits: self.limits,
            charge: Mutex::new(None),
            operation_name: Mutex::new(None),
            introspection_only: Mutex::new(false),
            operation_problem: Mutex::new(None),
            variable_positions: Mutex::new(HashSet::new()),
        })
    }
}

struct PerRequest {
    budgets: Arc<Budgets>,
    limits: Limits,
    charge: Mutex<Option<Charge>>,
    /// The operation the request names, to tell which operation of the document will run.
    operation_name: Mutex<Option<String>>,
    /// The operation only introspects the schema: the depth limit does not apply (its cost does).
    introspection_only: Mutex<bool>,
    /// The request names no operation of the document (or none when it must): reported as a
    /// validation error once the document itself validated.
    operation_problem: Mutex<Option<String>>,
    /// Where arguments take variables, to tell a variable's bad value from a broken document.
    variable_positions: Mutex<HashSet<Pos>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_graphql::async_trait::async_trait]
impl Extension for PerRequest {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let charge = *lock(&self.charge);
        if let Some(charge) = charge {
            response.extensions.insert("cost".into(), cost_value(&charge));
        }
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        *lock(&self.operation_name) = request.operation_name.clone();
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // The engine's own parse step walks fragment spreads without memory (its recursion check),
        // which a document of fragments that each spread the next twice turns into 2^n steps. So
        // the bounds are checked on a parse of our own first, unless the HTTP layer already did.
        if ctx.data_opt::<DocumentChecked>().is_none() {
            guard::parse(query).map_err(|(code, message)| coded_error(code, message))?;
        }
        let mut document = next.run(ctx, query, variables).await.map_err(|mut err| {
            err.extensions.get_or_insert_with(Default::default).set("code", Code::GraphqlParseFailed.as_str());
            err
        })?;
        document::hoist_typename_directives(&mut document);
        let operation_name = lock(&self.operation_name).clone();
        *lock(&self.introspection_only) = document::is_introspection_only(&document, operation_name.as_deref());
        let selected = document::select_operation(&document, operation_name.as_deref());
        if let Some(problem) = selected.as_ref().ok().and_then(|op| document::unset_required_variable(op, variables)) {
            return Err(coded_error(Code::BadUserInput, problem));
        }
        *lock(&self.operation_problem) = selected.err();
        *lock(&self.variable_positions) = document::variable_argument_positions(&document);
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errors| {
            // Bad data only when every error is about a variable's value: with a broken document
            // alongside, the document is the thing to fix first.
            let variable_positions = lock(&self.variable_positions);
            let mut errors = errors;
            let bad_data = errors.iter_mut().all(|err| document::is_bad_variable_value(err, &variable_positions));
            let code = if bad_data { Code::BadUserInput } else { Code::GraphqlValidationFailed };
            errors
                .into_iter()
                .map(|mut err| {
                    let ext = err.extensions.get_or_insert_with(Default::default);
                    if ext.get("code").is_none() {
                        ext.set("code", code.as_str());
                    }
                    err
                })
                .collect::<Vec<_>>()
        })?;
        if let Some(problem) = lock(&self.operation_problem).take() {
            return Err(vec![coded_error(Code::GraphqlValidationFailed, problem)]);
        }
        // Introspection nests deeper than data queries (the standard query: 15 levels) but can only
        // reach the schema; it still pays its cost below.
        if result.depth > self.limits.max_depth && !*lock(&self.introspection_only) {
            return Err(vec![coded_error(
                Code::GraphqlValidationFailed,
                format!(
                    "the operation nests {} levels deep; the limit is {} (PARTNERHUB_MAX_DEPTH)",
                    result.depth, self.limits.max_depth
                ),
            )]);
        }
        let key = ctx.data_opt::<BudgetKey>();
        // Refusals below still report the cost, and what the bucket holds (nothing is taken).
        let report_only = |this: &Self| {
            if let Some(key) = key {
                let mut charge = this.budgets.charge(key, 0, Instant::now(), chrono::Utc::now());
                charge.cost = result.complexity as u64;
                *this.charge.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(charge);
            }
        };
        if result.complexity > self.limits.max_complexity {
            report_only(self);
            return Err(vec![coded_error(
                Code::GraphqlValidationFailed,
                format!(
                    "the operation costs {} points; the limit is {} (PARTNERHUB_MAX_COMPLEXITY). \
                     Each connection costs `first` times what it selects: ask for smaller pages",
                    result.complexity, self.limits.max_complexity
                ),
            )]);
        }
        if let Some(key) = key {
            let capacity = self.budgets.capacity(key);
            if capacity != 0 && result.complexity as u64 > capacity {
                report_only(self);
                let setting = match key {
                    BudgetKey::Tenant(_) => "PARTNERHUB_TENANT_BUDGET",
                    BudgetKey::Anonymous(_) => "PARTNERHUB_ANONYMOUS_BUDGET",
                };
                return Err(vec![coded_error(
                    Code::GraphqlValidationFailed,
                    format!(
                        "the operation costs {} points, more than your budget ever holds ({capacity}, {setting}); ask for less",
                        result.complexity
                    ),
                )]);
            }
            let charge = self.budgets.charge(key, result.complexity as u64, Instant::now(), chrono::Utc::now());
            *lock(&self.charge) = Some(charge);
            if !charge.allowed {
                let mut error = coded_error(
                    Code::RateLimited,
                    format!(
                        "the operation costs {} points and the budget of your tenant holds {}; retry in {} s",
                        charge.cost, charge.remaining, charge.retry_after_secs
                    ),
                );
                error.extensions.get_or_insert_with(Default::default).set("retryAfter", charge.retry_after_secs);
                return Err(vec![error]);
            }
        }
        if let Some(ValidateOnly(passed)) = ctx.data_opt::<ValidateOnly>() {
            passed.store(true, std::sync::atomic::Ordering::Release);
            return Err(vec![ServerError::new("checked; not executed", None)]);
        }
        Ok(result)
    }
}

fn cost_value(charge: &Charge) -> Value {
    let mut map = async_graphql::indexmap::IndexMap::new();
    map.insert(async_graphql::Name::new("requestedQueryCost"), Value::from(charge.cost));
    let remaining = if charge.remaining == u64::MAX { Value::Null } else { Value::from(charge.remaining) };
    map.insert(async_graphql::Name::new("remaining"), remaining);
    map.insert(
        async_graphql::Name::new("resetAt"),
        Value::from(charge.reset_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    Value::Object(map)
}
