//! Authentication of a request: the bearer token becomes a [`Principal`], once, before GraphQL runs.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::auth::{Principal, resolve_principal_cached};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `Ok(None)` when no token was sent (anonymous: introspection only); an error for a token that is
/// malformed, badly signed, expired, or names an unknown tenant.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<Principal>> {
    let Some(value) = headers.get(AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ApiError::unauthenticated("the Authorization header is not text"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthenticated("expected `Authorization: Bearer <token>`"))?;
    let claims = state.verifier.verify(token).await?;
    let principal = resolve_principal_cached(&state.db, &state.tenants, state.settings.platform_tenant, claims).await?;
    Ok(Some(principal))
}
