//! JWT verification and minting of development tokens.
//!
//! This module owns everything between a raw bearer token and verified [`Claims`]:
//!
//! - the key sources: an HS256 shared secret and/or a JWKS (RS256 and ES256 public keys) read from a
//!   file at startup or fetched from a URL, cached, and refetched — at most once per
//!   [`JWKS_REFRESH_INTERVAL`] — when a token names an unknown `kid`;
//! - the algorithm policy: the algorithm is decided by the key, never by the token. HS256 tokens are
//!   checked only against the configured secret, RS256/ES256 tokens only against the JWKS key named by
//!   their `kid` whose own type and `alg` match. `none` and every other algorithm are refused;
//! - the claim checks: `exp` (required), `nbf`, `iss` and `aud` (required when configured), with
//!   [`AuthConfig::leeway_secs`] of clock skew, and the partnerhub claims `tid` and `sub`.
//!
//! Every failure is `UNAUTHENTICATED` with a short message that never echoes the token; nothing from a
//! token is logged except (at debug level, truncated) its `kid`.
//!
//! Tokens verified once are kept ([`VerifiedTokens`]), so a client that sends the same token with
//! every request pays for its signature once: a kept token is checked again for time (`exp`, `nbf`)
//! on every use, and one signed with a JWKS key only while that very key is still the one its `kid`
//! names (a key rotated out or replaced ends the kept tokens it signed at once). Only tokens that
//! passed every check are kept; a refused token is verified in full each time.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{
    Algorithm, DecodingKey, DecodingKeyKind, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Minimum time between two fetches of a JWKS URL: a token with an unknown `kid` triggers a refetch
/// only when the previous fetch is at least this old.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Timeout of one JWKS fetch (connect, request and body).
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest JWKS document accepted, in bytes.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Longest `sub` claim accepted, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 256;

/// Smallest RSA modulus accepted from a JWKS, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Where keys come from and what is checked.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// Shared secret for HS256 tokens (`PARTNERHUB_JWT_SECRET`).
    pub hs256_secret: Option<String>,
    /// URL of a JWKS with RS256/ES256 public keys (`PARTNERHUB_JWKS_URL`), fetched lazily and cached.
    pub jwks_url: Option<String>,
    /// File holding a JWKS with RS256/ES256 public keys (`PARTNERHUB_JWKS_FILE`), read at startup.
    pub jwks_file: Option<PathBuf>,
    /// When set, tokens must carry this `iss`.
    pub issuer: Option<String>,
    /// When set, tokens must carry this `aud` (alone or in a list).
    pub audience: Option<String>,
    /// Allowed clock skew for `exp`/`nbf`/`iat`, in seconds.
    pub leeway_secs: u64,
}

/// Never prints the HS256 secret.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("hs256_secret", &self.hs256_secret.as_ref().map(|_| "[redacted]"))
            .field("jwks_url", &self.jwks_url)
            .field("jwks_file", &self.jwks_file)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

/// The claims partnerhub reads. Other claims in a token are ignored once checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// The tenant the caller acts for.
    pub tid: Uuid,
    /// The caller (user or service) within the tenant.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Role names; unknown ones are ignored later.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Not-before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued-at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

/// A JWKS public key together with the one algorithm it may verify.
struct JwksKey {
    alg: Algorithm,
    key: DecodingKey,
}

/// Usable JWKS keys by `kid`.
type KeyMap = HashMap<String, Arc<JwksKey>>;

/// A JWKS fetched from a URL, cached, refetched at most once per `refresh_interval`.
struct RemoteJwks {
    url: reqwest::Url,
    client: reqwest::Client,
    /// Minimum time between two fetches (successful or not).
    refresh_interval: Duration,
    cache: RwLock<RemoteCache>,
    /// Held while deciding on and doing a fetch, so concurrent verifications fetch at most once.
    fetch_lock: Mutex<()>,
}

#[derive(Default)]
struct RemoteCache {
    keys: KeyMap,
    /// When the last fetch attempt finished; `None` before the first one.
    last_fetch: Option<Instant>,
}

/// Verifies bearer tokens. Cheap to share behind an `Arc`; the JWKS cache is internal.
pub struct Verifier {
    config: AuthConfig,
    hmac_key: Option<DecodingKey>,
    file_keys: KeyMap,
    remote: Option<RemoteJwks>,
    verified: VerifiedTokens,
}

/// Most tokens kept verified; all are dropped when full (expired ones go on their next use).
const MAX_VERIFIED_TOKENS: usize = 10_000;

/// A token that passed every check, and what it was checked with.
struct VerifiedToken {
    claims: Claims,
    /// The header's `kid`: for HS256 it must still name no JWKS key; for RS256/ES256 it must still
    /// name `key`.
    kid: Option<String>,
    /// The JWKS key that verified it (`None` for HS256, whose secret is fixed for the process).
    key: Option<Arc<JwksKey>>,
}

/// Tokens verified already, by their whole text (see the module documentation).
#[derive(Default)]
struct VerifiedTokens(std::sync::Mutex<HashMap<Box<str>, Arc<VerifiedToken>>>);

impl VerifiedTokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<VerifiedToken>>> {
        // Nothing can panic while the lock is held; a poisoned map is still a valid map.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, token: &str) -> Option<Arc<VerifiedToken>> {
        self.lock().get(token).cloned()
    }

    fn keep(&self, token: &str, verified: VerifiedToken) {
        let mut tokens = self.lock();
        if tokens.len() >= MAX_VERIFIED_TOKENS {
            tokens.clear();
        }
        tokens.insert(token.into(), Arc::new(verified));
    }

    fn forget(&self, token: &str) {
        self.lock().remove(token);
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .field("file_keys", &self.file_keys.len())
            .field("remote", &self.remote.as_ref().map(|r| r.url.as_str()))
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Builds a verifier. Fails when no key source is configured, when the secret is empty, when the
    /// JWKS URL is not http(s), or when the JWKS file cannot be read or holds no usable key.
    pub fn new(config: AuthConfig) -> anyhow::Result<Self> {
        if config.hs256_secret.is_none() && config.jwks_file.is_none() && config.jwks_url.is_none() {
            anyhow::bail!(
                "no JWT key configured: set PARTNERHUB_JWT_SECRET, PARTNERHUB_JWKS_FILE or PARTNERHUB_JWKS_URL"
            );
        }
        let hmac_key = match config.hs256_secret.as_deref() {
            Some("") => anyhow::bail!("the JWT secret (PARTNERHUB_JWT_SECRET) is empty"),
            Some(secret) => Some(DecodingKey::from_secret(secret.as_bytes())),
            None => None,
        };
        let file_keys = match &config.jwks_file {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("cannot read JWKS file {}: {e}", path.display()))?;
                parse_jwks(&bytes).map_err(|e| anyhow::anyhow!("bad JWKS file {}: {e:#}", path.display()))?
            }
            None => KeyMap::new(),
        };
        let remote = match config.jwks_url.as_deref() {
            Some(url) => Some(RemoteJwks::new(url)?),
            None => None,
        };
        Ok(Self { config, hmac_key, file_keys, remote, verified: VerifiedTokens::default() })
    }

    /// Minimum time between two fetches of the JWKS URL, if one is configured.
    pub fn jwks_refresh_interval(&self) -> Option<Duration> {
        self.remote.as_ref().map(|r| r.refresh_interval)
    }

    /// Checks signature, algorithm and claims; any failure is `UNAUTHENTICATED`.
    pub async fn verify(&self, token: &str) -> ApiResult<Claims> {
        self.verify_at(token, chrono::Utc::now().timestamp()).await
    }

    /// [`Verifier::verify`] at `now` (seconds since the Unix epoch) for a token verified before (the
    /// signature checks themselves read the system clock).
    async fn verify_at(&self, token: &str, now: i64) -> ApiResult<Claims> {
        if let Some(kept) = self.verified.get(token) {
            let leeway = i64::try_from(self.config.leeway_secs).unwrap_or(i64::MAX);
            if kept.claims.exp < now.saturating_sub(leeway) {
                self.verified.forget(token);
                return Err(ApiError::unauthenticated(rejection(&ErrorKind::ExpiredSignature)));
            }
            if kept.claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
                return Err(ApiError::unauthenticated(rejection(&ErrorKind::ImmatureSignature)));
            }
            if self.still_signs(&kept).await {
                return Ok(kept.claims.clone());
            }
            // Its key is gone or replaced: verified again in full (and refused, unless the new key
            // set still verifies it).
            self.verified.forget(token);
        }
        let (claims, kid, key) = self.verify_fully(token).await?;
        self.verified.keep(token, VerifiedToken { claims: claims.clone(), kid, key });
        Ok(claims)
    }

    /// Whether the keys that verified `kept` are still the keys its header names, without fetching.
    async fn still_signs(&self, kept: &VerifiedToken) -> bool {
        match (&kept.key, kept.kid.as_deref()) {
            // HS256: the secret never changes; a `kid` must still name no public key.
            (None, None) => true,
            (None, Some(kid)) => !self.is_known_public_kid(kid).await,
            (Some(key), Some(kid)) => self.loaded_public_key(kid).await.is_some_and(|now| Arc::ptr_eq(&now, key)),
            (Some(_), None) => false,
        }
    }

    /// Every check, from the token alone: its claims, its `kid`, and the JWKS key that verified it.
    async fn verify_fully(&self, token: &str) -> ApiResult<(Claims, Option<String>, Option<Arc<JwksKey>>)> {
        let header = decode_header(token).map_err(|_| ApiError::unauthenticated("malformed token"))?;
        if header.crit.is_some() {
            return Err(ApiError::unauthenticated("token header has unsupported critical extensions"));
        }
        match header.alg {
            Algorithm::HS256 => {
                let key =
                    self.hmac_key.as_ref().ok_or_else(|| ApiError::unauthenticated("HS256 tokens are not accepted"))?;
                // A `kid` naming a public key means someone is trying to pass that key off as an
                // HMAC secret.
                if let Some(kid) = header.kid.as_deref()
                    && self.is_known_public_kid(kid).await
                {
                    tracing::debug!(kid = log_kid(kid), "HS256 token names a public key");
                    return Err(ApiError::unauthenticated("token algorithm does not match its key"));
                }
                Ok((self.decode_with(token, key, Algorithm::HS256)?, header.kid, None))
            }
            Algorithm::RS256 | Algorithm::ES256 => {
                let kid = header.kid.as_deref().ok_or_else(|| ApiError::unauthenticated("token has no key id"))?;
                let Some(jwks_key) = self.find_public_key(kid).await else {
                    tracing::debug!(kid = log_kid(kid), "token signed with an unknown key");
                    return Err(ApiError::unauthenticated("token signed with an unknown key"));
                };
                if jwks_key.alg != header.alg {
                    tracing::debug!(kid = log_kid(kid), "token algorithm does not match its key");
                    return Err(ApiError::unauthenticated("token algorithm does not match its key"));
                }
                let claims = self.decode_with(token, &jwks_key.key, jwks_key.alg)?;
                Ok((claims, header.kid, Some(jwks_key)))
            }
            _ => Err(ApiError::unauthenticated("token algorithm not accepted")),
        }
    }

    /// Verifies the signature with `key` for exactly `alg` and checks the claims.
    fn decode_with(&self, token: &str, key: &DecodingKey, alg: Algorithm) -> ApiResult<Claims> {
        let mut validation = Validation::new(alg);
        validation.leeway = self.config.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.config.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let claims = decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| ApiError::unauthenticated(rejection(e.kind())))?;
        self.check_claims(&claims, chrono::Utc::now().timestamp())?;
        Ok(claims)
    }

    /// What `jsonwebtoken` does not check: `iat` not in the future beyond the leeway (a token minted
    /// ahead of time, or by a clock far off), and a `sub` that is short, printable text (it is copied
    /// into every audit row).
    fn check_claims(&self, claims: &Claims, now: i64) -> ApiResult<()> {
        let leeway = i64::try_from(self.config.leeway_secs).unwrap_or(i64::MAX);
        if claims.iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
            return Err(ApiError::unauthenticated("token issued in the future (`iat`)"));
        }
        if claims.sub.is_empty() || claims.sub.len() > MAX_SUBJECT_BYTES || claims.sub.chars().any(char::is_control) {
            return Err(ApiError::unauthenticated(format!(
                "token claim `sub` must be 1 to {MAX_SUBJECT_BYTES} bytes of printable text"
            )));
        }
        Ok(())
    }

    /// Whether `kid` names a JWKS key already loaded (never fetches).
    async fn is_known_public_kid(&self, kid: &str) -> bool {
        self.loaded_public_key(kid).await.is_some()
    }

    /// The JWKS key named `kid` as loaded now (never fetches).
    async fn loaded_public_key(&self, kid: &str) -> Option<Arc<JwksKey>> {
        if let Some(key) = self.file_keys.get(kid) {
            return Some(Arc::clone(key));
        }
        match &self.remote {
            Some(remote) => remote.cache.read().await.keys.get(kid).cloned(),
            None => None,
        }
    }

    /// The JWKS key named `kid`: from the file, else from the URL (refetching if allowed).
    async fn find_public_key(&self, kid: &str) -> Option<Arc<JwksKey>> {
        if let Some(key) = self.file_keys.get(kid) {
            return Some(Arc::clone(key));
        }
        match &self.remote {
            Some(remote) => remote.lookup(kid).await,
            None => None,
        }
    }
}

impl RemoteJwks {
    fn new(url: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("bad JWKS URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            anyhow::bail!("the JWKS URL must be http or https");
        }
        let client = reqwest::Client::builder()
            .timeout(JWKS_FETCH_TIMEOUT)
            .connect_timeout(JWKS_FETCH_TIMEOUT)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the JWKS HTTP client: {e}"))?;
        Ok(Self {
            url,
            client,
            refresh_interval: JWKS_REFRESH_INTERVAL,
            cache: RwLock::default(),
            fetch_lock: Mutex::new(()),
        })
    }

    /// The cached key `kid`; on a miss, refetches unless the last fetch is younger than
    /// `refresh_interval`. Concurrent misses wait for one fetch instead of each doing their own.
    async fn lookup(&self, kid: &str) -> Option<Arc<JwksKey>> {
        if let Some(key) = self.cache.read().await.keys.get(kid) {
            return Some(Arc::clone(key));
        }
        let _fetching = self.fetch_lock.lock().await;
        {
            let cache = self.cache.read().await;
            if let Some(key) = cache.keys.get(kid) {
                return Some(Arc::clone(key));
            }
            if cache.last_fetch.is_some_and(|at| at.elapsed() < self.refresh_interval) {
                return None;
            }
        }
        let fetched = self.fetch().await;
        let mut cache = self.cache.write().await;
        cache.last_fetch = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "JWKS fetched");
                cache.keys = keys;
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "JWKS fetch failed; keeping the cached keys"),
        }
        cache.keys.get(kid).cloned()
    }

    async fn fetch(&self) -> anyhow::Result<KeyMap> {
        let mut response = self.client.get(self.url.clone()).send().await?.error_for_status()?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                anyhow::bail!("JWKS larger than {MAX_JWKS_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body)
    }
}

/// Parses a JWKS document, keeping only signature keys partnerhub accepts: RSA (≥ 2048 bits) for
/// RS256 and P-256 EC for ES256, each with a `kid` and an `alg` that is absent or matches. Other keys
/// (symmetric, encryption, other algorithms) are skipped; a document with none left is an error.
fn parse_jwks(bytes: &[u8]) -> anyhow::Result<KeyMap> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet = serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("not a JWKS document: {e}"))?;
    let mut keys = KeyMap::new();
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            tracing::debug!("skipping an unparsable JWKS entry");
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            tracing::debug!("skipping a JWKS key without kid");
            continue;
        };
        match usable_key(&jwk) {
            Some(key) => match keys.entry(kid) {
                Entry::Occupied(entry) => {
                    tracing::warn!(kid = log_kid(entry.key()), "duplicate kid in JWKS; keeping the first key")
                }
                Entry::Vacant(entry) => {
                    entry.insert(Arc::new(key));
                }
            },
            None => tracing::debug!(kid = log_kid(&kid), "skipping a JWKS key partnerhub does not accept"),
        }
    }
    if keys.is_empty() {
        anyhow::bail!("the JWKS holds no usable RS256 or ES256 signature key");
    }
    Ok(keys)
}

/// The key and its one algorithm, if `jwk` is an acceptable signature key.
fn usable_key(jwk: &Jwk) -> Option<JwksKey> {
    if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
        return None;
    }
    if jwk.common.key_operations.as_ref().is_some_and(|ops| !ops.contains(&KeyOperations::Verify)) {
        return None;
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(params), None | Some(KeyAlgorithm::ES256))
            if params.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let sane = match (alg, key.kind()) {
        (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            n.iter().skip_while(|b| **b == 0).count() >= MIN_RSA_MODULUS_BYTES && !e.is_empty()
        }
        (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => point.len() == 65,
        _ => false,
    };
    sane.then_some(JwksKey { alg, key })
}

/// A short, safe rejection message (never the token, never a serde message that could quote it).
fn rejection(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "token expired".into(),
        ErrorKind::ImmatureSignature => "token not yet valid".into(),
        ErrorKind::InvalidSignature => "invalid token signature".into(),
        ErrorKind::InvalidIssuer => "token issuer not accepted".into(),
        ErrorKind::InvalidAudience => "token audience not accepted".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::MissingAlgorithm => {
            "token algorithm not accepted".into()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("token lacks the `{claim}` claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("token claim `{claim}` is malformed"),
        ErrorKind::Json(_) => "token claims missing or malformed".into(),
        _ => "invalid token".into(),
    }
}

/// A `kid` as it may appear in logs: at most 64 characters.
fn log_kid(kid: &str) -> &str {
    kid.char_indices().nth(64).map_or(kid, |(end, _)| &kid[..end])
}

/// Mints an HS256 token (development and tests).
pub fn mint_hs256(secret: &str, claims: &Claims) -> anyhow::Result<String> {
    Ok(encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    use super::*;
    use crate::error::Code;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt/", $name))
        };
    }

    const SECRET: &str = "test-secret-with-enough-bytes-0123456789";
    const RSA1_PRIVATE: &str = fixture!("rsa1_private.pem");
    const RSA1_PUBLIC: &str = fixture!("rsa1_public.pem");
    const RSA2_PRIVATE: &str = fixture!("rsa2_private.pem");
    const EC1_PRIVATE: &str = fixture!("ec1_private.pem");
    const JWKS: &str = fixture!("jwks.json");
    const JWKS_ROTATED: &str = fixture!("jwks_rotated.json");
    const JWKS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt/jwks.json");

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn tid() -> Uuid {
        Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
    }

    fn claims() -> Value {
        json!({ "tid": tid(), "sub": "user-1", "exp": now() + 300, "roles": ["reader"] })
    }

    fn hs_config() -> AuthConfig {
        AuthConfig { hs256_secret: Some(SECRET.into()), leeway_secs: 30, ..AuthConfig::default() }
    }

    fn file_config() -> AuthConfig {
        AuthConfig { jwks_file: Some(JWKS_PATH.into()), leeway_secs: 30, ..AuthConfig::default() }
    }

    fn mint(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        encode(&header, claims, key).unwrap()
    }

    fn hs(claims: &Value) -> String {
        mint(Algorithm::HS256, None, &EncodingKey::from_secret(SECRET.as_bytes()), claims)
    }

    fn rsa1() -> EncodingKey {
        EncodingKey::from_rsa_pem(RSA1_PRIVATE.as_bytes()).unwrap()
    }

    fn rsa2() -> EncodingKey {
        EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).unwrap()
    }

    fn ec1() -> EncodingKey {
        EncodingKey::from_ec_pem(EC1_PRIVATE.as_bytes()).unwrap()
    }

    async fn refused(verifier: &Verifier, token: &str) -> String {
        match verifier.verify(token).await {
            Ok(claims) => panic!("token accepted: {claims:?}"),
            Err(err) => {
                assert_eq!(err.code, Code::Unauthenticated);
                assert!(token.is_empty() || !err.message.contains(token), "message echoes the token");
                err.message
            }
        }
    }

    #[test]
    fn new_needs_a_key_source_and_a_good_file() {
        assert!(Verifier::new(AuthConfig::default()).is_err());
        assert!(Verifier::new(AuthConfig { hs256_secret: Some(String::new()), ..AuthConfig::default() }).is_err());
        let missing = AuthConfig { jwks_file: Some("/nonexistent/jwks.json".into()), ..AuthConfig::default() };
        assert!(Verifier::new(missing).is_err());
        let not_jwks = AuthConfig {
            jwks_file: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt/rsa1_public.pem").into()),
            ..AuthConfig::default()
        };
        assert!(Verifier::new(not_jwks).is_err());
        let bad_url = AuthConfig { jwks_url: Some("file:///etc/passwd".into()), ..AuthConfig::default() };
        assert!(Verifier::new(bad_url).is_err());
        assert!(Verifier::new(file_config()).is_ok());
        assert!(Verifier::new(hs_config()).is_ok());
    }

    #[test]
    fn debug_redacts_the_secret() {
        let text = format!("{:?}", hs_config());
        assert!(!text.contains(SECRET));
        assert!(text.contains("[redacted]"));
        let verifier = Verifier::new(hs_config()).unwrap();
        assert!(!format!("{verifier:?}").contains(SECRET));
    }

    #[test]
    fn parse_jwks_keeps_only_acceptable_signature_keys() {
        let keys = parse_jwks(JWKS.as_bytes()).unwrap();
        assert_eq!(keys["rsa-1"].alg, Algorithm::RS256);
        assert_eq!(keys["ec-1"].alg, Algorithm::ES256);

        let mut doc: Value = serde_json::from_str(JWKS).unwrap();
        let rsa = doc["keys"][0].clone();
        let other = |patch: Value| {
            let mut key = rsa.clone();
            for (k, v) in patch.as_object().unwrap() {
                key[k] = v.clone();
            }
            key
        };
        let extra = vec![
            json!({ "kty": "oct", "kid": "sym", "k": URL_SAFE_NO_PAD.encode(SECRET) }),
            other(json!({ "kid": "rsa-enc", "use": "enc" })),
            other(json!({ "kid": "rsa-ps", "alg": "PS256" })),
            other(json!({ "kid": "rsa-hs", "alg": "HS256" })),
            other(json!({ "kid": "rsa-small", "n": URL_SAFE_NO_PAD.encode([0xc5u8; 128]) })),
            json!({ "kty": "RSA", "kid": "broken" }),
        ];
        doc["keys"].as_array_mut().unwrap().extend(extra);
        let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["ec-1", "rsa-1"]);

        assert!(parse_jwks(br#"{"keys":[{"kty":"oct","kid":"sym","k":"c2VjcmV0"}]}"#).is_err());
        assert!(parse_jwks(b"not json").is_err());
    }

    #[test]
    fn logged_kids_are_truncated() {
        assert_eq!(log_kid("rsa-1"), "rsa-1");
        let long = "é".repeat(100);
        assert_eq!(log_kid(&long).chars().count(), 64);
    }

    #[tokio::test]
    async fn hs256_valid_token_is_accepted() {
        let verifier = Verifier::new(hs_config()).unwrap();
        let got = verifier.verify(&hs(&claims())).await.unwrap();
        assert_eq!(got.tid, tid());
        assert_eq!(got.sub, "user-1");
        assert_eq!(got.roles, ["reader"]);
    }

    #[tokio::test]
    async fn mint_hs256_round_trips() {
        let verifier = Verifier::new(hs_config()).unwrap();
        let claims = Claims {
            tid: tid(),
            sub: "svc".into(),
            exp: now() + 60,
            roles: vec![],
            nbf: Some(now() - 5),
            iat: Some(now()),
        };
        let token = mint_hs256(SECRET, &claims).unwrap();
        assert_eq!(verifier.verify(&token).await.unwrap(), claims);
    }

    #[tokio::test]
    async fn hs256_wrong_secret_is_refused() {
        let verifier = Verifier::new(hs_config()).unwrap();
        let token = mint(Algorithm::HS256, None, &EncodingKey::from_secret(b"another-secret"), &claims());
        assert_eq!(refused(&verifier, &token).await, "invalid token signature");
        refused(&verifier, "not-a-token").await;
        refused(&verifier, "").await;
    }

    #[tokio::test]
    async fn hs256_is_refused_without_a_secret() {
        let verifier = Verifier::new(file_config()).unwrap();
        refused(&verifier, &hs(&claims())).await;
    }

    #[tokio::test]
    async fn expiry_honours_the_leeway() {
        let verifier = Verifier::new(hs_config()).unwrap();
        let mut c = claims();
        c["exp"] = json!(now() - 10);
        assert!(verifier.verify(&hs(&c)).await.is_ok(), "expired within the leeway");
        c["exp"] = json!(now() - 60);
        assert_eq!(refused(&verifier, &hs(&c)).await, "token expired");
    }

    #[tokio::test]
    async fn a_token_verified_before_is_still_refused_once_it_expires() {
        let verifier = Verifier::new(AuthConfig { leeway_secs: 0, ..hs_config() }).unwrap();
        let mut c = claims();
        c["exp"] = json!(now() + 60);
        let token = hs(&c);
        assert!(verifier.verify(&token).await.is_ok());
        // Kept verified: at a later time, its expiry still counts.
        assert!(verifier.verify_at(&token, now() + 30).await.is_ok());
        let err = verifier.verify_at(&token, now() + 120).await.unwrap_err();
        assert_eq!(err.message, "token expired");
    }

    #[tokio::test]
    async fn a_kept_token_ends_when_a_jwks_key_replaces_its_key_under_the_same_kid() {
        let body = Arc::new(std::sync::Mutex::new(JWKS.to_owned()));
        let hits = Arc::new(AtomicUsize::new(0));
        let addr = serve_jwks(Arc::clone(&body), Arc::clone(&hits)).await;
        let config =
            AuthConfig { jwks_url: Some(format!("http://{addr}/jwks")), leeway_secs: 30, ..AuthConfig::default() };
        let verifier = Verifier::new(config).unwrap();
        let token = mint(Algorithm::RS256, Some("rsa-1"), &rsa1(), &claims());
        assert!(verifier.verify(&token).await.is_ok());
        // The server now publishes rsa-2's key under the kid "rsa-1"; once fetched, the token that
        // rsa-1's old key verified is refused, kept or not.
        let replaced = JWKS_ROTATED.replace("\"rsa-2\"", "\"rsa-1\"");
        assert_ne!(replaced, JWKS_ROTATED);
        *body.lock().unwrap() = replaced;
        age_last_fetch(&verifier).await;
        refused(&verifier, &mint(Algorithm::RS256, Some("rsa-9"), &rsa1(), &claims())).await;
        assert_eq!(hits.load(Ordering::SeqCst), 2, "the unknown kid refetched the key set");
        assert_eq!(refused(&verifier, &token).await, "invalid token signature");
        assert!(verifier.verify(&mint(Algorithm::RS256, Some("rsa-1"), &rsa2(), &claims())).await.is_ok());
    }

    #[tokio::test]
    async fn nbf_in_the_future_is_refused() {
        let verifier = Verifier::new(hs_config()).unwrap();
        let mut c = claims();
        c["nbf"] = json!(now() + 120);
        assert_eq!(refused(&verifier, &hs(&c)).await, "token not yet valid");
        c["nbf"] = json!(now() + 10);
        assert!(verifier.verify(&hs(&c)).await.is_ok(), "nbf within the leeway");
    }

    #[tokio::test]
    async fn iat_in_the_future_beyond_the_leeway_is_refused() {
        let verifier = Verifier::new(hs_config()).unwrap();
        let mut c = claims();
        c["iat"] = json!(now() + 3600);
        assert_eq!(refused(&verifier, &hs(&c)).await, "token issued in the future (`iat`)");
        c["iat"] = json!(now() + 10);
        assert!(verifier.verify(&hs(&c)).await.is_ok(), "iat within the leeway");
    }

    #[tokio::test]
    async fn sub_is_bounded_printable_text() {
        let verifier = Verifier::new(hs_config()).unwrap();
        let mut c = claims();
        c["sub"] = json!("u".repeat(MAX_SUBJECT_BYTES));
        assert!(verifier.verify(&hs(&c)).await.is_ok());
        for bad in ["u".repeat(MAX_SUBJECT_BYTES + 1), String::new(), "a\u{0}b".into(), "a\nb".into()] {
            c["sub"] = json!(bad);
            refused(&verifier, &hs(&c)).await;
        }
    }

    #[tokio::test]
    async fn required_claims_are_required() {
        let verifier = Verifier::new(hs_config()).unwrap();
        for claim in ["tid", "sub", "exp"] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(claim);
            refused(&verifier, &hs(&c)).await;
        }
        let mut c = claims();
        c["tid"] = json!("not-a-uuid");
        refused(&verifier, &hs(&c)).await;
    }

    #[tokio::test]
    async fn alg_none_is_refused() {
        let verifier = Verifier::new(AuthConfig { jwks_file: Some(JWKS_PATH.into()), ..hs_config() }).unwrap();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        assert_eq!(refused(&verifier, &format!("{header}.{payload}.")).await, "malformed token");
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
        refused(&verifier, &format!("{header}.{payload}.")).await;
    }

    #[tokio::test]
    async fn other_algorithms_are_refused() {
        let verifier = Verifier::new(AuthConfig { jwks_file: Some(JWKS_PATH.into()), ..hs_config() }).unwrap();
        let secret = EncodingKey::from_secret(SECRET.as_bytes());
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            assert_eq!(refused(&verifier, &mint(alg, None, &secret, &claims())).await, "token algorithm not accepted");
        }
        for alg in [Algorithm::PS256, Algorithm::RS384, Algorithm::RS512] {
            refused(&verifier, &mint(alg, Some("rsa-1"), &rsa1(), &claims())).await;
        }
    }

    #[tokio::test]
    async fn issuer_and_audience_are_checked_when_configured() {
        let config = AuthConfig {
            issuer: Some("https://idp.example".into()),
            audience: Some("partnerhub".into()),
            ..hs_config()
        };
        let verifier = Verifier::new(config).unwrap();
        let with = |iss: Option<&str>, aud: Option<Value>| {
            let mut c = claims();
            if let Some(iss) = iss {
                c["iss"] = json!(iss);
            }
            if let Some(aud) = aud {
                c["aud"] = aud;
            }
            hs(&c)
        };
        assert!(verifier.verify(&with(Some("https://idp.example"), Some(json!("partnerhub")))).await.is_ok());
        assert!(
            verifier.verify(&with(Some("https://idp.example"), Some(json!(["other", "partnerhub"])))).await.is_ok()
        );
        assert_eq!(
            refused(&verifier, &with(Some("https://evil.example"), Some(json!("partnerhub")))).await,
            "token issuer not accepted"
        );
        assert_eq!(
            refused(&verifier, &with(Some("https://idp.example"), Some(json!("other")))).await,
            "token audience not accepted"
        );
        assert_eq!(refused(&verifier, &with(None, Some(json!("partnerhub")))).await, "token lacks the `iss` claim");
        assert_eq!(refused(&verifier, &with(Some("https://idp.example"), None)).await, "token lacks the `aud` claim");

        // Not configured: not required, and any value passes.
        let lenient = Verifier::new(hs_config()).unwrap();
        assert!(lenient.verify(&with(None, None)).await.is_ok());
        assert!(lenient.verify(&with(Some("https://any.example"), Some(json!("anyone")))).await.is_ok());
    }

    #[tokio::test]
    async fn rs256_and_es256_from_a_jwks_file() {
        let verifier = Verifier::new(file_config()).unwrap();
        assert_eq!(
            verifier.verify(&mint(Algorithm::RS256, Some("rsa-1"), &rsa1(), &claims())).await.unwrap().tid,
            tid()
        );
        assert_eq!(verifier.verify(&mint(Algorithm::ES256, Some("ec-1"), &ec1(), &claims())).await.unwrap().tid, tid());

        assert_eq!(
            refused(&verifier, &mint(Algorithm::RS256, Some("rsa-404"), &rsa1(), &claims())).await,
            "token signed with an unknown key"
        );
        assert_eq!(refused(&verifier, &mint(Algorithm::RS256, None, &rsa1(), &claims())).await, "token has no key id");
        // Right kid, wrong private key.
        assert_eq!(
            refused(&verifier, &mint(Algorithm::RS256, Some("rsa-1"), &rsa2(), &claims())).await,
            "invalid token signature"
        );
        // An RS256 token naming the EC key, and an ES256 token naming the RSA key.
        assert_eq!(
            refused(&verifier, &mint(Algorithm::RS256, Some("ec-1"), &rsa1(), &claims())).await,
            "token algorithm does not match its key"
        );
        assert_eq!(
            refused(&verifier, &mint(Algorithm::ES256, Some("rsa-1"), &ec1(), &claims())).await,
            "token algorithm does not match its key"
        );
        // Claims are checked for public-key tokens too.
        let mut c = claims();
        c["exp"] = json!(now() - 3600);
        assert_eq!(refused(&verifier, &mint(Algorithm::ES256, Some("ec-1"), &ec1(), &c)).await, "token expired");
    }

    #[tokio::test]
    async fn rsa_public_key_is_never_an_hmac_secret() {
        let forged_key = EncodingKey::from_secret(RSA1_PUBLIC.as_bytes());
        let forged = mint(Algorithm::HS256, Some("rsa-1"), &forged_key, &claims());
        let forged_no_kid = mint(Algorithm::HS256, None, &forged_key, &claims());

        // Both an HS256 secret and the JWKS configured.
        let both = Verifier::new(AuthConfig { jwks_file: Some(JWKS_PATH.into()), ..hs_config() }).unwrap();
        assert_eq!(refused(&both, &forged).await, "token algorithm does not match its key");
        refused(&both, &forged_no_kid).await;
        // Legitimate tokens of both kinds still pass on the same verifier.
        assert!(both.verify(&hs(&claims())).await.is_ok());
        assert!(both.verify(&mint(Algorithm::RS256, Some("rsa-1"), &rsa1(), &claims())).await.is_ok());

        // Only the JWKS configured.
        let jwks_only = Verifier::new(file_config()).unwrap();
        refused(&jwks_only, &forged).await;
        refused(&jwks_only, &forged_no_kid).await;
    }

    /// Serves `body` as a JWKS at `/jwks`, counting requests in `hits`.
    async fn serve_jwks(body: Arc<std::sync::Mutex<String>>, hits: Arc<AtomicUsize>) -> SocketAddr {
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let body = Arc::clone(&body);
                let hits = Arc::clone(&hits);
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let text = body.lock().unwrap().clone();
                    ([(axum::http::header::CONTENT_TYPE, "application/json")], text)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// Pretends the last JWKS fetch was a full refresh interval ago.
    async fn age_last_fetch(verifier: &Verifier) {
        let remote = verifier.remote.as_ref().unwrap();
        remote.cache.write().await.last_fetch = Instant::now().checked_sub(remote.refresh_interval);
    }

    #[tokio::test]
    async fn jwks_url_is_cached_and_refetched_at_most_once_a_minute() {
        let body = Arc::new(std::sync::Mutex::new(JWKS.to_owned()));
        let hits = Arc::new(AtomicUsize::new(0));
        let addr = serve_jwks(Arc::clone(&body), Arc::clone(&hits)).await;
        let config =
            AuthConfig { jwks_url: Some(format!("http://{addr}/jwks")), leeway_secs: 30, ..AuthConfig::default() };
        let verifier = Arc::new(Verifier::new(config).unwrap());
        assert_eq!(verifier.jwks_refresh_interval(), Some(Duration::from_secs(60)));
        assert_eq!(hits.load(Ordering::SeqCst), 0, "fetched lazily");

        let rsa1_token = mint(Algorithm::RS256, Some("rsa-1"), &rsa1(), &claims());
        let rsa2_token = mint(Algorithm::RS256, Some("rsa-2"), &rsa2(), &claims());
        assert!(verifier.verify(&rsa1_token).await.is_ok());
        assert!(verifier.verify(&mint(Algorithm::ES256, Some("ec-1"), &ec1(), &claims())).await.is_ok());
        assert_eq!(hits.load(Ordering::SeqCst), 1, "first use fetches once, then the cache serves");

        // Rotate on the server. Within the minute of the first fetch, an unknown kid does not refetch.
        *body.lock().unwrap() = JWKS_ROTATED.to_owned();
        refused(&verifier, &rsa2_token).await;
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // A minute later, an unknown kid triggers exactly one refetch, which picks up the new key.
        age_last_fetch(&verifier).await;
        assert!(verifier.verify(&rsa2_token).await.is_ok());
        assert_eq!(hits.load(Ordering::SeqCst), 2);

        // A second unknown kid within the minute does not refetch; the rotated-out key is gone.
        refused(&verifier, &mint(Algorithm::RS256, Some("rsa-3"), &rsa1(), &claims())).await;
        refused(&verifier, &rsa1_token).await;
        assert!(verifier.verify(&rsa2_token).await.is_ok());
        assert_eq!(hits.load(Ordering::SeqCst), 2);

        // Concurrent verifications with an unknown kid share one refetch.
        age_last_fetch(&verifier).await;
        let unknown = mint(Algorithm::RS256, Some("rsa-9"), &rsa1(), &claims());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let verifier = Arc::clone(&verifier);
                let token = unknown.clone();
                tokio::spawn(async move { verifier.verify(&token).await.is_err() })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap());
        }
        assert_eq!(hits.load(Ordering::SeqCst), 3);

        // A failed refetch keeps the cached keys.
        age_last_fetch(&verifier).await;
        *body.lock().unwrap() = "oops".to_owned();
        refused(&verifier, &unknown).await;
        assert_eq!(hits.load(Ordering::SeqCst), 4);
        assert!(verifier.verify(&rsa2_token).await.is_ok());
    }

    #[tokio::test]
    async fn unreachable_jwks_url_is_refused_and_rate_limited() {
        // Bind then drop a listener to get a local port nobody listens on.
        let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let config = AuthConfig { jwks_url: Some(format!("http://{addr}/jwks")), ..AuthConfig::default() };
        let verifier = Verifier::new(config).unwrap();
        let token = mint(Algorithm::RS256, Some("rsa-1"), &rsa1(), &claims());
        assert_eq!(refused(&verifier, &token).await, "token signed with an unknown key");
        let fetched_at = verifier.remote.as_ref().unwrap().cache.read().await.last_fetch;
        assert!(fetched_at.is_some());
        refused(&verifier, &token).await;
        assert_eq!(
            verifier.remote.as_ref().unwrap().cache.read().await.last_fetch,
            fetched_at,
            "no second attempt within the minute"
        );
    }
}
