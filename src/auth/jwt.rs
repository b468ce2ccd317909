//! JWT verification (HS256 for now) and minting of development tokens.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Where keys come from and what is checked.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub hs256_secret: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks_file: Option<std::path::PathBuf>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Allowed clock skew for `exp`/`nbf`/`iat`, in seconds.
    pub leeway_secs: u64,
}

/// The claims partnerhub reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub tid: Uuid,
    pub sub: String,
    pub exp: i64,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

/// Verifies bearer tokens.
pub struct Verifier {
    config: AuthConfig,
}

impl Verifier {
    pub fn new(config: AuthConfig) -> anyhow::Result<Self> {
        if config.hs256_secret.is_none() && config.jwks_file.is_none() && config.jwks_url.is_none() {
            anyhow::bail!("no JWT key configured: set PARTNERHUB_JWT_SECRET, PARTNERHUB_JWKS_FILE or PARTNERHUB_JWKS_URL");
        }
        Ok(Self { config })
    }

    /// Checks signature, algorithm and time claims; any failure is `UNAUTHENTICATED`.
    pub async fn verify(&self, token: &str) -> ApiResult<Claims> {
        let secret = self.config.hs256_secret.as_deref().ok_or_else(|| ApiError::unauthenticated("token not accepted"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = self.config.leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub", "tid"]);
        decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
            .map(|data| data.claims)
            .map_err(|e| ApiError::unauthenticated(format!("invalid token: {e}")))
    }
}

/// Mints an HS256 token (development and tests).
pub fn mint_hs256(secret: &str, claims: &Claims) -> anyhow::Result<String> {
    Ok(encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))?)
}
