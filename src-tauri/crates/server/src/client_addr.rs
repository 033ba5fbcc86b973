//! Who sent a request, when the listener sits behind a reverse proxy.
//!
//! A relay on the internet is often put behind Caddy or nginx (which then hold the certificate).
//! Every request then arrives from the proxy's address, and the sender's own address is only in
//! the header the proxy adds: `X-Forwarded-For` (Caddy and nginx) or the standard `Forwarded:
//! for=…`. That address matters twice: the rejection log shows it, and Vagaro's allow-list is
//! checked against it — so a header is believed only from a peer the operator named as its proxy
//! (`--trust-proxy ADDR`). Anyone else could write any address into it; their own address is used.
//!
//! Proxies *append* to these headers, so the right end is the part a trusted proxy wrote and the
//! left end is whatever the client sent. [`client_addr`] therefore reads from the right, skips the
//! trusted proxies' own addresses (several proxies in a row), and takes the first other address.
//! When that entry isn't an address ("unknown", an obfuscated name, garbage), it stops there and
//! uses the peer: reading further left would mean believing what the client wrote.
//!
//! A proxy sets one of the two headers and passes the other through from the client untouched,
//! and the listener can't tell which one the proxy wrote. So when a request carries both, their
//! answers must agree; if they don't, the peer (the proxy) is used. A spoofed header can then only
//! make a request look as if it came from the proxy, never from an address of the client's choice.

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The reverse proxies whose forwarding headers are believed. Empty (the default): none, the
/// peer's own address is always the sender's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[IpAddr]>);

impl TrustedProxies {
    /// The proxies at `addrs`. IPv4 addresses written as IPv6 (`::ffff:10.0.0.1`, how a listener
    /// on `[::]` sees IPv4 peers) are the same as their IPv4 form.
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> TrustedProxies {
        addrs.into_iter().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `ip` is one of the proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    /// The proxies' addresses.
    pub fn addrs(&self) -> &[IpAddr] {
        &self.0
    }
}

impl FromIterator<IpAddr> for TrustedProxies {
    fn from_iter<T: IntoIterator<Item = IpAddr>>(iter: T) -> TrustedProxies {
        let mut addrs: Vec<IpAddr> = iter.into_iter().map(|ip| ip.to_canonical()).collect();
        addrs.sort_unstable();
        addrs.dedup();
        TrustedProxies(addrs.into())
    }
}

/// A list as an operator writes it: addresses separated by commas or spaces
/// (`127.0.0.1, ::1`).
impl FromStr for TrustedProxies {
    type Err = NotAnAddress;

    fn from_str(s: &str) -> Result<TrustedProxies, NotAnAddress> {
        s.split([',', ' '])
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpAddr>()
                    .map_err(|_| NotAnAddress(part.into()))
            })
            .collect()
    }
}

/// A trusted proxy that isn't written as an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnAddress(pub String);

impl fmt::Display for NotAnAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not an IP address. Give the reverse proxy's address as numbers, for example 127.0.0.1 or ::1.",
            self.0
        )
    }
}

impl std::error::Error for NotAnAddress {}

/// The address of whoever sent the request: `peer` (the TCP connection's other end), unless
/// `peer` is a trusted proxy and its forwarding header names someone else (see the module docs
/// for which entry is taken and why).
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let x_forwarded_for = forwarded_client(
        headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .flat_map(|value| match value.to_str() {
                Ok(value) => value.split(',').map(parse_node).collect(),
                Err(_) => vec![None],
            }),
        trusted,
    );
    let forwarded = forwarded_client(
        headers.get_all(FORWARDED).iter().flat_map(|value| {
            match value.to_str() {
                // No quoted commas in a `for=` that names an address, so a plain split is
                // enough; a client's odd quoting can only affect elements left of the proxy's.
                Ok(value) => value.split(',').map(forwarded_for).collect(),
                Err(_) => vec![None],
            }
        }),
        trusted,
    );
    match (x_forwarded_for, forwarded) {
        (Said::Nothing, Said::Nothing) => peer,
        (Said::Client(ip), Said::Nothing) | (Said::Nothing, Said::Client(ip)) => ip,
        (Said::Client(a), Said::Client(b)) if a == b => a,
        _ => peer,
    }
}

/// What one forwarding header says about the client.
#[derive(Debug, PartialEq, Eq)]
enum Said {
    /// The header isn't there.
    Nothing,
    /// There, but its last untrusted entry isn't an address (or every entry is a trusted proxy).
    Unusable,
    Client(IpAddr),
}

/// The right-most entry that isn't a trusted proxy; `None` entries are values that aren't
/// addresses.
fn forwarded_client(
    entries: impl Iterator<Item = Option<IpAddr>>,
    trusted: &TrustedProxies,
) -> Said {
    let entries: Vec<Option<IpAddr>> = entries.collect();
    if entries.is_empty() {
        return Said::Nothing;
    }
    for entry in entries.into_iter().rev() {
        match entry {
            Some(ip) if trusted.contains(ip) => continue,
            Some(ip) => return Said::Client(ip),
            None => return Said::Unusable,
        }
    }
    Said::Unusable
}

/// One element of `Forwarded` (`for=192.0.2.60;proto=https;by=…`): its `for`, if an address.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        parse_node(value)
    })
}

/// An address as proxies write it: `192.0.2.60`, `2001:db8::1`, with or without a port
/// (`192.0.2.60:4711`, `[2001:db8::1]:4711`), or bracketed (`[2001:db8::1]`).
fn parse_node(value: &str) -> Option<IpAddr> {
    let value = value.trim();
    let ip = if let Ok(ip) = value.parse::<IpAddr>() {
        ip
    } else if let Ok(socket) = value.parse::<SocketAddr>() {
        socket.ip()
    } else {
        let inner = value.strip_prefix('[')?.strip_suffix(']')?;
        IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    const PROXY: &str = "10.0.0.2";
    const CLIENT: &str = "203.0.113.9";

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn proxies(list: &str) -> TrustedProxies {
        list.parse().expect("test proxies")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    fn resolve(peer: &str, trusted: &str, pairs: &[(&str, &str)]) -> IpAddr {
        client_addr(ip(peer), &headers(pairs), &proxies(trusted))
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        assert_eq!(resolve(CLIENT, "", &[]), ip(CLIENT));
        assert_eq!(
            resolve(CLIENT, "", &[("x-forwarded-for", "198.51.100.1")]),
            ip(CLIENT)
        );
    }

    #[test]
    fn a_client_not_coming_from_the_proxy_cannot_choose_its_address() {
        // Spoofing: the header names an address, but the peer isn't the proxy.
        for pairs in [
            &[("x-forwarded-for", "198.51.100.1")][..],
            &[("forwarded", "for=198.51.100.1")][..],
            &[
                ("x-forwarded-for", "198.51.100.1"),
                ("forwarded", "for=198.51.100.1"),
            ][..],
        ] {
            assert_eq!(resolve(CLIENT, PROXY, pairs), ip(CLIENT), "{pairs:?}");
        }
    }

    #[test]
    fn the_proxy_s_header_names_the_client() {
        assert_eq!(
            resolve(PROXY, PROXY, &[("x-forwarded-for", CLIENT)]),
            ip(CLIENT)
        );
        assert_eq!(
            resolve(PROXY, PROXY, &[("X-Forwarded-For", " 203.0.113.9 ")]),
            ip(CLIENT)
        );
        // No header: a request the proxy made itself (a health check).
        assert_eq!(resolve(PROXY, PROXY, &[]), ip(PROXY));
    }

    #[test]
    fn the_right_most_address_the_proxy_appended_wins_over_what_the_client_wrote() {
        // nginx's $proxy_add_x_forwarded_for: the client's own header, then what nginx saw.
        assert_eq!(
            resolve(
                PROXY,
                PROXY,
                &[("x-forwarded-for", "198.51.100.1, 203.0.113.9")]
            ),
            ip(CLIENT)
        );
        // The same with the client's value on its own header line.
        assert_eq!(
            resolve(
                PROXY,
                PROXY,
                &[
                    ("x-forwarded-for", "198.51.100.1"),
                    ("x-forwarded-for", CLIENT)
                ]
            ),
            ip(CLIENT)
        );
    }

    #[test]
    fn trusted_proxies_in_a_row_are_skipped() {
        assert_eq!(
            resolve(
                PROXY,
                "10.0.0.2, 10.0.0.3",
                &[("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.3")]
            ),
            ip(CLIENT)
        );
        // Only proxies: nobody else to name, so the peer.
        assert_eq!(
            resolve(
                PROXY,
                "10.0.0.2, 10.0.0.3",
                &[("x-forwarded-for", "10.0.0.3")]
            ),
            ip(PROXY)
        );
    }

    #[test]
    fn values_that_are_not_addresses_fall_back_to_the_peer() {
        for value in ["unknown", "", "not an address", "203.0.113.9, garbage"] {
            assert_eq!(
                resolve(PROXY, PROXY, &[("x-forwarded-for", value)]),
                ip(PROXY),
                "{value:?}"
            );
        }
        // Garbage to the left of the proxy's entry is the client's own business.
        assert_eq!(
            resolve(PROXY, PROXY, &[("x-forwarded-for", "garbage, 203.0.113.9")]),
            ip(CLIENT)
        );
        // Never past an unusable entry to an address further left, which the client wrote.
        assert_eq!(
            resolve(
                PROXY,
                PROXY,
                &[("x-forwarded-for", "198.51.100.1, unknown")]
            ),
            ip(PROXY)
        );
        let mut non_ascii = HeaderMap::new();
        non_ascii.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"203.0.113.9\xff").expect("value"),
        );
        assert_eq!(
            client_addr(ip(PROXY), &non_ascii, &proxies(PROXY)),
            ip(PROXY)
        );
    }

    #[test]
    fn ports_brackets_and_ipv6_are_read() {
        for (value, expected) in [
            ("203.0.113.9:4711", CLIENT),
            ("2001:db8::17", "2001:db8::17"),
            ("[2001:db8::17]", "2001:db8::17"),
            ("[2001:db8::17]:4711", "2001:db8::17"),
            ("::ffff:203.0.113.9", CLIENT),
        ] {
            assert_eq!(
                resolve(PROXY, PROXY, &[("x-forwarded-for", value)]),
                ip(expected),
                "{value}"
            );
        }
    }

    #[test]
    fn an_ipv4_proxy_seen_on_an_ipv6_socket_is_still_trusted() {
        assert_eq!(
            resolve("::ffff:10.0.0.2", PROXY, &[("x-forwarded-for", CLIENT)]),
            ip(CLIENT)
        );
        assert_eq!(
            resolve(PROXY, "::ffff:10.0.0.2", &[("x-forwarded-for", CLIENT)]),
            ip(CLIENT)
        );
    }

    #[test]
    fn the_standard_forwarded_header_is_read() {
        for (value, expected) in [
            ("for=203.0.113.9", CLIENT),
            ("For=\"203.0.113.9\";proto=https", CLIENT),
            ("proto=https;for=203.0.113.9;by=10.0.0.2", CLIENT),
            ("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=198.51.100.1, for=203.0.113.9", CLIENT),
            ("for=203.0.113.9, for=10.0.0.2", CLIENT),
            ("for=unknown", PROXY),
            ("for=_hidden", PROXY),
            ("proto=https", PROXY),
            ("for=198.51.100.1, for=unknown", PROXY),
        ] {
            assert_eq!(
                resolve(PROXY, PROXY, &[("forwarded", value)]),
                ip(expected),
                "{value}"
            );
        }
    }

    #[test]
    fn both_headers_must_agree() {
        let both = |xff: &str, fwd: &str| {
            resolve(
                PROXY,
                PROXY,
                &[("x-forwarded-for", xff), ("forwarded", fwd)],
            )
        };
        assert_eq!(both(CLIENT, "for=203.0.113.9"), ip(CLIENT));
        // The proxy wrote one of them and the client the other: which is which can't be told,
        // so neither is believed.
        assert_eq!(both(CLIENT, "for=198.51.100.1"), ip(PROXY));
        assert_eq!(both("198.51.100.1", "for=203.0.113.9"), ip(PROXY));
        assert_eq!(both(CLIENT, "for=unknown"), ip(PROXY));
    }

    #[test]
    fn trusted_proxies_are_read_as_operators_write_them() {
        let list = proxies("127.0.0.1, ::1 10.0.0.2,");
        assert_eq!(list.addrs().len(), 3);
        assert!(list.contains(ip("::1")));
        assert!(list.contains(ip("::ffff:127.0.0.1")));
        assert!(!list.contains(ip("10.0.0.3")));
        assert!(proxies("").is_empty());
        let err = "10.0.0.0/8".parse::<TrustedProxies>().expect_err("a range");
        assert_eq!(
            err.to_string(),
            "'10.0.0.0/8' is not an IP address. Give the reverse proxy's address as numbers, for example 127.0.0.1 or ::1."
        );
        assert!("caddy".parse::<TrustedProxies>().is_err());
    }
}
