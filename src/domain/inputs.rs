//! Parse, don't validate: caller input becomes these types before any rule sees it. Each parse
//! failure is `BAD_USER_INPUT` naming the field and saying what would be accepted.

use chrono::{DateTime, Datelike, Utc};

use crate::auth::Role;
use crate::error::{ApiError, ApiResult};

/// The limits of free-text input, in characters (listed in `docs/rules.md`, "Input limits").
pub mod limits {
    /// Company and partner names, offer names.
    pub const NAME: usize = 200;
    /// Offer ids, partner network ids.
    pub const IDENTIFIER: usize = 100;
    /// `externalReference` (an agreement or enrollment number).
    pub const EXTERNAL_REFERENCE: usize = 100;
    /// Relationship request and invitation messages.
    pub const MESSAGE: usize = 1000;
    /// Idempotency keys.
    pub const IDEMPOTENCY_KEY: usize = 255;
    /// Search and other text filters of list fields.
    pub const FILTER: usize = 200;
    /// Roles named in one delegated-admin request.
    pub const ROLES: usize = 10;
    /// A pagination cursor (`after`).
    pub const CURSOR: usize = 1024;
}

/// At most 64 characters of a caller's input, for quoting it back in a message.
pub fn shown(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The one check every free text goes through: at most `max` characters, no NUL and no other
/// control character (line breaks and tabs only where `multiline`). Neither database stores NUL
/// (PostgreSQL refuses it in text), and nothing we store contains one.
pub fn check_text(field: &str, text: &str, max: usize, multiline: bool) -> ApiResult<()> {
    let mut count = 0usize;
    for c in text.chars() {
        count += 1;
        if count > max {
            return Err(ApiError::bad_input(field, format!("at most {max} characters")));
        }
        if c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')) {
            let what = if multiline {
                "control characters other than line breaks and tabs"
            } else {
                "control characters or line breaks"
            };
            return Err(ApiError::bad_input(field, format!("must not contain {what} (at most {max} characters)")));
        }
    }
    Ok(())
}

/// A filter's text (`search`, `country`, `action`): bounded, without control characters.
pub fn filter_text(field: &str, text: Option<&str>) -> ApiResult<()> {
    text.map_or(Ok(()), |t| check_text(field, t, limits::FILTER, false))
}

/// An instant given by a caller: between the years 1900 and 9999 (both databases store those, and
/// nothing in a partner program lies outside).
pub fn instant(field: &str, at: DateTime<Utc>) -> ApiResult<DateTime<Utc>> {
    if (1900..=9999).contains(&at.year()) {
        Ok(at)
    } else {
        Err(ApiError::bad_input(field, "must be between the years 1900 and 9999"))
    }
}

/// An optional multi-line message (relationship requests, invitations): trimmed, empty means none,
/// at most [`limits::MESSAGE`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message(String);

impl Message {
    pub fn parse(field: &str, text: Option<&str>) -> ApiResult<Option<Self>> {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(None) };
        check_text(field, text, limits::MESSAGE, true)?;
        Ok(Some(Self(text.to_owned())))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A DNS domain name, lower-cased (`contoso.com`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Domain(String);

impl Domain {
    pub fn parse(field: &str, text: &str) -> ApiResult<Self> {
        let domain = text.trim().trim_end_matches('.').to_ascii_lowercase();
        let bad = |why: &str| Err(ApiError::bad_input(field, format!("`{}` is not a domain name: {why}", shown(text))));
        if domain.is_empty() || domain.len() > 253 {
            return bad("it must have 1 to 253 characters");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return bad("it needs at least two labels, like `contoso.com`");
        }
        for label in &labels {
            let ok_chars = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if label.is_empty() || label.len() > 63 || !ok_chars || label.starts_with('-') || label.ends_with('-') {
                return bad("each label has 1 to 63 letters, digits or inner hyphens");
            }
        }
        if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
            return bad("the last label cannot be numeric");
        }
        Ok(Self(domain))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 3166-1 alpha-2 country code, upper-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryCode(String);

/// The officially assigned ISO 3166-1 alpha-2 codes.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS \
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI \
KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC \
NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM \
SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA \
ZM ZW";

impl CountryCode {
    pub fn parse(field: &str, text: &str) -> ApiResult<Self> {
        let code = text.trim().to_ascii_uppercase();
        if code.len() == 2 && ISO_3166_ALPHA2.split_ascii_whitespace().any(|c| c == code) {
            Ok(Self(code))
        } else {
            Err(ApiError::bad_input(
                field,
                format!("`{}` is not an ISO 3166-1 alpha-2 country code (like `US`)", shown(text)),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A required, trimmed, single-line text of bounded length (names, offer ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn parse(field: &str, text: &str, max: usize) -> ApiResult<Self> {
        let trimmed = text.trim();
        if trimmed.is_empty() || check_text(field, trimmed, max, false).is_err() {
            return Err(ApiError::bad_input(field, format!("must be 1 to {max} characters on one line")));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Seats of a license-based subscription: 1 to 100 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i32);

impl Quantity {
    pub const MAX: i32 = 100_000;

    pub fn parse(field: &str, value: i32) -> ApiResult<Self> {
        if (1..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ApiError::bad_input(field, format!("must be between 1 and {}", Self::MAX)))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// A commitment term: 1, 12 or 36 months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermMonths(i32);

impl TermMonths {
    pub fn parse(field: &str, value: i32) -> ApiResult<Self> {
        if matches!(value, 1 | 12 | 36) {
            Ok(Self(value))
        } else {
            Err(ApiError::bad_input(field, "must be 1, 12 or 36"))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// How long a delegated-admin grant lasts: 1 to 730 days (default 730).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationDays(i32);

impl DurationDays {
    pub const DEFAULT: i32 = 730;

    pub fn parse(field: &str, value: Option<i32>) -> ApiResult<Self> {
        match value.unwrap_or(Self::DEFAULT) {
            v @ 1..=730 => Ok(Self(v)),
            _ => Err(ApiError::bad_input(field, "must be between 1 and 730 days")),
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// The roles a delegated-admin relationship grants: a non-empty subset of `admin_agent`, `helpdesk_agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedRoles(Vec<Role>);

impl DelegatedRoles {
    pub fn parse(field: &str, roles: &[String]) -> ApiResult<Self> {
        if roles.len() > limits::ROLES {
            return Err(ApiError::bad_input(field, format!("name at most {} roles", limits::ROLES)));
        }
        let mut parsed = Vec::new();
        for text in roles {
            match Role::parse(text.trim()) {
                Some(role @ (Role::AdminAgent | Role::HelpdeskAgent)) => {
                    if !parsed.contains(&role) {
                        parsed.push(role);
                    }
                }
                _ => {
                    return Err(ApiError::bad_input(
                        field,
                        format!("`{}`: only `admin_agent` and `helpdesk_agent` can be delegated", shown(text)),
                    ));
                }
            }
        }
        if parsed.is_empty() {
            return Err(ApiError::bad_input(field, "name at least one role: `admin_agent` or `helpdesk_agent`"));
        }
        parsed.sort_by_key(|r| r.as_str());
        Ok(Self(parsed))
    }

    /// Stored form: comma separated.
    pub fn stored(&self) -> String {
        self.0.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }
}

/// A client-chosen idempotency key (R14): 1 to [`limits::IDEMPOTENCY_KEY`] printable characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: Option<&str>) -> ApiResult<Option<Self>> {
        const FIELD: &str = "idempotencyKey";
        match text {
            None => Ok(None),
            Some(t) if !t.is_empty() && check_text(FIELD, t, limits::IDEMPOTENCY_KEY, false).is_ok() => {
                Ok(Some(Self(t.to_owned())))
            }
            Some(_) => Err(ApiError::bad_input(
                FIELD,
                format!("must be 1 to {} printable characters", limits::IDEMPOTENCY_KEY),
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_lower_cased_and_checked() {
        assert_eq!(Domain::parse("d", " Contoso.COM. ").unwrap().as_str(), "contoso.com");
        let long = format!("{}.com", "a".repeat(64));
        for bad in ["", "localhost", "-a.com", "a..com", "a_b.com", "1.2.3.4", long.as_str()] {
            assert!(Domain::parse("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn free_text_is_bounded_and_has_no_nul() {
        assert!(Text::parse("f", "a\u{0}b", 10).is_err());
        assert!(Text::parse("f", &"a".repeat(11), 10).is_err());
        assert!(Message::parse("m", Some("line one\nline two")).unwrap().is_some());
        assert!(Message::parse("m", Some("a\u{0}")).is_err());
        assert!(Message::parse("m", Some(&"a".repeat(1001))).unwrap_err().message.contains("1000"));
        assert!(filter_text("filter.search", Some("a\u{0}")).unwrap_err().message.contains("filter.search"));
        assert_eq!(shown(&"x".repeat(1000)).chars().count(), 65);
        assert!(Domain::parse("d", &"x".repeat(100_000)).unwrap_err().message.len() < 200);
    }

    #[test]
    fn countries_quantities_terms_durations_roles() {
        assert_eq!(CountryCode::parse("c", "de").unwrap().as_str(), "DE");
        assert!(CountryCode::parse("c", "XX").is_err());
        assert!(Quantity::parse("q", 0).is_err() && Quantity::parse("q", 100_001).is_err());
        assert!(TermMonths::parse("t", 6).is_err() && TermMonths::parse("t", 36).is_ok());
        assert_eq!(DurationDays::parse("d", None).unwrap().get(), 730);
        assert!(DurationDays::parse("d", Some(731)).is_err());
        assert!(DelegatedRoles::parse("r", &[]).is_err());
        assert!(DelegatedRoles::parse("r", &["sales_agent".into()]).is_err());
        let roles = DelegatedRoles::parse("r", &["helpdesk_agent".into(), "admin_agent".into()]).unwrap();
        assert_eq!(roles.stored(), "admin_agent,helpdesk_agent");
    }
}
