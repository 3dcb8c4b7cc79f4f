//! Who the client is. Behind a reverse proxy the TCP peer is the proxy, and
//! every client would share its attempt limits; so when the peer is one of the
//! `--trusted-proxies`, the client is the address those proxies recorded:
//! the right-most entry of `X-Forwarded-For` (or `Forwarded: for=`) that is
//! not itself a trusted proxy. Entries left of it were written by the client
//! and prove nothing. Without trusted proxies the headers are ignored.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;
use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client's address for a request that arrived from `peer`.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        // The hops the proxies appended, oldest first; walk back from the nearest.
        let hops = forwarded_for(headers);
        match hops.iter().rev().find(|hop| !self.trusts(**hop)) {
            Some(client) => SocketAddr::new(*client, 0),
            // Every hop is a proxy of ours (or none was recorded): the left-most is the best we know.
            None => hops.first().map_or(peer, |first| SocketAddr::new(*first, 0)),
        }
    }
}

/// IPv4-mapped IPv6 peers (`::ffff:10.0.0.1`) compare as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// Every address in `Forwarded: for=…` or, without that header, `X-Forwarded-For`,
/// in order; entries that are not addresses (`unknown`, obfuscated names) end the list's trust
/// by being skipped.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let forwarded: Vec<IpAddr> = headers
        .get_all(FORWARDED)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then(|| parse_node(value))?
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(parse_node)
        .collect()
}

/// `203.0.113.5`, `"[2001:db8::1]:4711"`, `198.51.100.7:80` → the address.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim().trim_matches('"');
    if let Ok(address) = raw.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    if let Ok(socket) = raw.parse::<SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    raw.strip_prefix('[').and_then(|rest| rest.split(']').next()).and_then(|v6| v6.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|n| n.parse().unwrap()).collect())
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let peer: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        let claimed = headers(&[("x-forwarded-for", "203.0.113.5")]);
        assert_eq!(proxies(&[]).client(peer, &claimed), peer);
        assert_eq!(proxies(&["10.0.0.0/8"]).client(peer, &claimed), peer);
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxy appended the real one.
        let forged = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.5, 10.0.0.3")]);
        assert_eq!(trusted.client(peer, &forged).ip().to_string(), "203.0.113.5");
        let rfc7239 = headers(&[("forwarded", "for=1.2.3.4, for=\"[2001:db8::7]:4711\";proto=https")]);
        assert_eq!(trusted.client(peer, &rfc7239).ip().to_string(), "2001:db8::7");
        assert_eq!(trusted.client(peer, &HeaderMap::new()), peer, "no header: the proxy itself");
    }

    #[test]
    fn mapped_ipv4_peers_match_ipv4_networks() {
        let peer: SocketAddr = "[::ffff:10.0.0.2]:5000".parse().unwrap();
        let client = proxies(&["10.0.0.0/8"]).client(peer, &headers(&[("x-forwarded-for", "203.0.113.5")]));
        assert_eq!(client.ip().to_string(), "203.0.113.5");
    }
}
