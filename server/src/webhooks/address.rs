//! The private-address rule: a webhook never makes the server call itself or its neighbours
//! (loopback, private, link-local, unique-local, CGNAT, multicast, unspecified and other special
//! ranges, v4 and v6, v4 addresses inside v6 ones too) unless `--webhook-allow-private`.
//!
//! Checked twice: when an endpoint is saved, for a URL whose host is a literal address, and at
//! every delivery, by the HTTP client's resolver ([`GuardedResolver`]), which drops such
//! addresses from each answer, so a name that resolves to a public address when saved and to a
//! private one later (DNS rebinding) reaches nothing. A literal address never meets the
//! resolver, so a delivery checks it again itself ([`check_url`]).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether an outbound request may not go to `ip` (without `--webhook-allow-private`).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0 // "this network", 0.0.0.0/8
        || ip.is_loopback() // 127.0.0.0/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16 (cloud metadata lives here)
        || (a == 100 && (b & 0xc0) == 64) // CGNAT, 100.64.0.0/10
        || ip.is_multicast() // 224/4
        || a >= 240 // reserved 240/4 and the broadcast address
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0.0/24
        || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18.0.0/15
        || ip.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_forbidden_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || (first & 0xfe00) == 0xfc00 // unique-local, fc00::/7
        || ip.is_multicast() // ff00::/8
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation, 2001:db8::/32
        || (first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]) // discard-only, 100::/64
}

/// The v4 address a v6 one stands for: v4-mapped (`::ffff:a.b.c.d`), v4-compatible
/// (`::a.b.c.d`, deprecated), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail()),
        // `::` and `::1` are v6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => Some(tail()),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail()),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// What is wrong with a webhook URL, said so that its sender can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not a URL: {0}")]
    Unparsable(String),
    #[error("the URL must be http:// or https://")]
    Scheme,
    #[error("the URL needs a host")]
    NoHost,
    #[error(
        "{0} is a private, loopback or otherwise internal address: webhooks go to public \
         addresses only (unless the server runs with --webhook-allow-private)"
    )]
    Private(IpAddr),
}

/// Parses a webhook URL: http or https, with a host that, when it is a literal address, is a
/// public one (or any with `allow_private`). Names are checked when they resolve.
pub fn check_url(raw: &str, allow_private: bool) -> Result<reqwest::Url, UrlError> {
    let url = reqwest::Url::parse(raw).map_err(|e| UrlError::Unparsable(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme);
    }
    let ip = match url.host() {
        None => return Err(UrlError::NoHost),
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(ip) = ip
        && !allow_private
        && is_forbidden(ip)
    {
        return Err(UrlError::Private(ip));
    }
    Ok(url)
}

/// The system resolver (`getaddrinfo`, on a blocking thread), with every forbidden address
/// dropped from its answer; a name left with none fails to resolve, so nothing is sent.
#[derive(Debug, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|addr| !is_forbidden(addr.ip()))
                .collect();
            if allowed.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = if resolved.is_empty() {
                    format!("{host} does not resolve").into()
                } else {
                    format!(
                        "{host} resolves only to private, loopback or otherwise internal \
                         addresses, where webhooks are not sent (see --webhook-allow-private)"
                    )
                    .into()
                };
                return Err(error);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

    use super::*;

    fn forbidden(raw: &str) -> bool {
        is_forbidden(raw.parse().unwrap())
    }

    #[test]
    fn internal_v4_addresses_are_forbidden() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.2.1",
        ] {
            assert!(forbidden(ip), "{ip}");
        }
    }

    #[test]
    fn public_v4_addresses_are_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "169.255.0.1",
            "198.20.0.1",
            "223.255.255.255",
        ] {
            assert!(!forbidden(ip), "{ip}");
        }
    }

    #[test]
    fn internal_v6_addresses_are_forbidden() {
        for ip in [
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "ff02::1",
            "ff05::2",
            "2001:db8::1",
            "100::1",
        ] {
            assert!(forbidden(ip), "{ip}");
        }
    }

    #[test]
    fn v4_inside_v6_is_judged_as_v4() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:c0a8:0101::1",
            "2002:7f00:0001::",
        ] {
            assert!(forbidden(ip), "{ip}");
        }
        for ip in ["::ffff:8.8.8.8", "64:ff9b::1.1.1.1", "2002:0808:0808::1"] {
            assert!(!forbidden(ip), "{ip}");
        }
    }

    #[test]
    fn public_v6_addresses_are_allowed() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:4860::8888",
        ] {
            assert!(!forbidden(ip), "{ip}");
        }
    }

    #[test]
    fn urls_need_http_a_host_and_a_public_literal_address() {
        assert!(check_url("https://hooks.example.com/in", false).is_ok());
        assert!(check_url("http://93.184.216.34:8080/x", false).is_ok());
        assert_eq!(
            check_url("ftp://example.com/", false),
            Err(UrlError::Scheme)
        );
        assert!(matches!(
            check_url("not a url", false),
            Err(UrlError::Unparsable(_))
        ));
        assert!(matches!(
            check_url("http://127.0.0.1:9000/hook", false),
            Err(UrlError::Private(_))
        ));
        assert!(matches!(
            check_url("http://[::ffff:10.1.2.3]/hook", false),
            Err(UrlError::Private(_))
        ));
        assert!(matches!(
            check_url("http://[fd00::1]/hook", false),
            Err(UrlError::Private(_))
        ));
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_internal_addresses() {
        let err = GuardedResolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("private"), "{err}");
    }
}
