//! The one error type of the API: a stable code (sent as `extensions.code`), a message for the caller,
//! and, for internal failures, a cause that is logged and never sent.

use std::fmt;

/// Error codes of the contract, each explained for users in `docs/api.md` (Error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthenticated,
    UnknownTenant,
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    DomainTaken,
    CannotResellToPartner,
    CloudMismatch,
    RelationshipRequired,
    IndirectResellerCannotTransact,
    LicenseBasedSwitchNotAllowed,
    InvalidState,
    CancellationWindowClosed,
    ActiveSubscriptionsExist,
    VersionConflict,
    IdempotencyKeyReused,
    PartnerSuspended,
    RateLimited,
    /// A live event stream fell too far behind and was ended (resubscribe, then catch up).
    EventsLagged,
    /// The document does not parse (or nests past what the parser may take).
    GraphqlParseFailed,
    /// The document parses but fails validation, or a limit (depth, cost, size).
    GraphqlValidationFailed,
    /// The operation ran past the request time limit and was stopped.
    Timeout,
    Internal,
}

impl Code {
    /// The text of `extensions.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::UnknownTenant => "UNKNOWN_TENANT",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::Conflict => "CONFLICT",
            Code::DomainTaken => "DOMAIN_TAKEN",
            Code::CannotResellToPartner => "CANNOT_RESELL_TO_PARTNER",
            Code::CloudMismatch => "CLOUD_MISMATCH",
            Code::RelationshipRequired => "RELATIONSHIP_REQUIRED",
            Code::IndirectResellerCannotTransact => "INDIRECT_RESELLER_CANNOT_TRANSACT",
            Code::LicenseBasedSwitchNotAllowed => "LICENSE_BASED_SWITCH_NOT_ALLOWED",
            Code::InvalidState => "INVALID_STATE",
            Code::CancellationWindowClosed => "CANCELLATION_WINDOW_CLOSED",
            Code::ActiveSubscriptionsExist => "ACTIVE_SUBSCRIPTIONS_EXIST",
            Code::VersionConflict => "VERSION_CONFLICT",
            Code::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Code::PartnerSuspended => "PARTNER_SUSPENDED",
            Code::RateLimited => "RATE_LIMITED",
            Code::EventsLagged => "EVENTS_LAGGED",
            Code::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Code::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Code::Timeout => "TIMEOUT",
            Code::Internal => "INTERNAL",
        }
    }
}

/// An error as the caller sees it.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// Internal cause: logged once, never sent.
    pub source: Option<anyhow::Error>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), source: None }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    pub fn bad_input(field: &str, problem: impl fmt::Display) -> Self {
        Self::new(Code::BadUserInput, format!("`{field}`: {problem}"))
    }

    /// A loader's error, already logged where it happened.
    pub fn from_gql(_: async_graphql::Error) -> Self {
        Self::new(Code::Internal, "internal error")
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self { code: Code::Internal, message: "internal error".into(), source: Some(cause.into()) }
    }
}

// No `Display` on purpose: async-graphql converts every `Display` type into an error without
// `extensions.code`; keeping `ApiError` out of that blanket impl makes `?` go through ours below.

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::internal(err)
    }
}

/// The one place where errors become GraphQL errors: internal causes are logged with their chain and
/// replaced by a bare `INTERNAL`.
impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        if let Some(cause) = &err.source {
            tracing::error!(code = err.code.as_str(), error = format!("{cause:#}"), "internal error");
        }
        let code = err.code.as_str();
        async_graphql::ErrorExtensions::extend_with(async_graphql::Error::new(err.message), |_, ext| {
            ext.set("code", code)
        })
    }
}
