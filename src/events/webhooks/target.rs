//! Where a webhook may point: `https` on a public address (unless `allow_private`), checked when it
//! is registered and again at every send after DNS resolution, connecting to the address checked
//! (a name that resolved to a public address at registration and to `127.0.0.1` later is refused).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

use crate::error::{ApiError, ApiResult};

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// How long a registration waits for DNS.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// A URL that passed the checks that need no network.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    pub host: String,
    pub port: u16,
}

/// Why an address may not be a webhook target, or `None` when it may.
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a unique local (private) IPv6 address")
            } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
                Some("a link-local IPv6 address")
            } else if first == 0x0064 && v6.segments()[1] == 0xff9b {
                // NAT64 (64:ff9b::/96) embeds an IPv4 address: judge that one.
                let [.., a, b] = v6.segments();
                forbidden_v4(Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8))
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() || a == 0 {
        Some("the unspecified network")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT address")
    } else if ip.is_multicast() || a >= 224 {
        Some("a multicast or reserved address")
    } else if ip.is_broadcast() {
        Some("the broadcast address")
    } else {
        None
    }
}

/// Parses and checks a URL without the network: length, scheme, host, no credentials, and the
/// address when the host is one. `field` names the input field in errors.
pub fn parse(field: &str, text: &str, allow_private: bool) -> ApiResult<Target> {
    if text.len() > MAX_URL_LEN {
        return Err(ApiError::bad_input(field, format!("at most {MAX_URL_LEN} characters")));
    }
    let url = Url::parse(text.trim()).map_err(|err| ApiError::bad_input(field, format!("not a URL ({err})")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err(ApiError::bad_input(field, "must use https")),
        other => return Err(ApiError::bad_input(field, format!("must use https, not `{other}`"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::bad_input(field, "must not carry credentials (user:password@)"));
    }
    let host = match url.host() {
        None => return Err(ApiError::bad_input(field, "has no host")),
        Some(Host::Ipv4(ip)) => {
            check_ip(field, IpAddr::V4(ip), allow_private)?;
            ip.to_string()
        }
        Some(Host::Ipv6(ip)) => {
            check_ip(field, IpAddr::V6(ip), allow_private)?;
            ip.to_string()
        }
        Some(Host::Domain(name)) => {
            let lower = name.trim_end_matches('.').to_ascii_lowercase();
            if !allow_private && (lower == "localhost" || lower.ends_with(".localhost")) {
                return Err(ApiError::bad_input(field, "must not point at localhost"));
            }
            lower
        }
    };
    let port = url.port_or_known_default().ok_or_else(|| ApiError::bad_input(field, "has no port"))?;
    // Normalising (percent-encoding) may lengthen it: the stored form must fit too.
    if url.as_str().len() > MAX_URL_LEN {
        return Err(ApiError::bad_input(field, format!("at most {MAX_URL_LEN} characters once normalised")));
    }
    Ok(Target { url, host, port })
}

fn check_ip(field: &str, ip: IpAddr, allow_private: bool) -> ApiResult<()> {
    match forbidden_ip(ip) {
        Some(why) if !allow_private => Err(ApiError::bad_input(field, format!("must not point at {why} ({ip})"))),
        _ => Ok(()),
    }
}

/// Resolves the target's host and checks every address it gives (an endpoint must not be able to
/// pick a private one among them). Answers the addresses to connect to.
pub async fn resolve(field: &str, target: &Target, allow_private: bool) -> ApiResult<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = if let Ok(ip) = target.host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, target.port)]
    } else {
        let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
        match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(err)) => {
                return Err(ApiError::bad_input(field, format!("host `{}` does not resolve ({err})", target.host)));
            }
            Err(_) => {
                return Err(ApiError::bad_input(field, format!("host `{}` did not resolve in time", target.host)));
            }
        }
    };
    if addrs.is_empty() {
        return Err(ApiError::bad_input(field, format!("host `{}` has no address", target.host)));
    }
    for addr in &addrs {
        check_ip(field, addr.ip(), allow_private)?;
    }
    Ok(addrs)
}

/// Checks a URL as registration does: [`parse`], then [`resolve`].
pub async fn check(field: &str, text: &str, allow_private: bool) -> ApiResult<Target> {
    let target = parse(field, text, allow_private)?;
    resolve(field, &target, allow_private).await?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(forbidden_ip(ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))).is_some(), "{ip}");
        }
        for ip in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(forbidden_ip(ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))).is_none(), "{ip}");
        }
    }
}
