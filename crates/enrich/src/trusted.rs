//! Trusted proxies: the networks (`10.0.0.0/8`, `::1/128`, or a bare address) whose forwarding
//! headers and request ids are believed. IPv4 networks also match IPv4-mapped IPv6 peers
//! (`::ffff:10.1.2.3`), as a dual-stack listener reports them; IPv6 networks match IPv6
//! addresses as they are.

use ipnet::IpNet;
use std::net::IpAddr;

/// An entry that is neither a network nor an address.
#[derive(Debug, thiserror::Error)]
pub enum NotANetwork {
    #[error("{0:?} is not an IP address or CIDR network")]
    Address(String),
    #[error("{0:?} has an invalid prefix length (0..={1})")]
    Prefix(String, u8),
}

#[derive(Clone, Debug, Default)]
pub struct Trusted(Vec<IpNet>);

impl Trusted {
    /// Parses each entry; the error names the first one that is not a network or an address.
    pub fn parse(entries: &[String]) -> Result<Trusted, NotANetwork> {
        entries
            .iter()
            .map(|s| parse_one(s))
            .collect::<Result<_, _>>()
            .map(Trusted)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let unmapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.0.iter().any(|net| match net {
            IpNet::V4(_) => net.contains(&unmapped.unwrap_or(ip)),
            IpNet::V6(_) => net.contains(&ip),
        })
    }
}

/// `addr`, `addr/prefix` (blanks around either part allowed).
fn parse_one(s: &str) -> Result<IpNet, NotANetwork> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| NotANetwork::Address(s.to_owned()))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| NotANetwork::Prefix(s.to_owned(), max))?,
        None => max,
    };
    IpNet::new(addr, prefix).map_err(|_| NotANetwork::Prefix(s.to_owned(), max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Result<Trusted, NotANetwork> {
        Trusted::parse(&[s.to_owned()])
    }

    #[test]
    fn membership() {
        let c = one("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.9.9".parse().unwrap()));
        assert!(one("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(!one("::1").unwrap().contains("::2".parse().unwrap()));
        assert!(one("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(one(" 192.168.0.0/24 ")
            .unwrap()
            .contains("192.168.0.9".parse().unwrap()));
        assert!(one("10.0.0.0 / 8")
            .unwrap()
            .contains("10.9.9.9".parse().unwrap()));
        // An IPv6 network matches a mapped peer as it is; an IPv4 one matches it unmapped.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(one("::ffff:127.0.0.1/128").unwrap().contains(mapped));
        assert!(one("::/0").unwrap().contains(mapped));
        assert!(one("127.0.0.0/8").unwrap().contains(mapped));
        assert!(!one("::/0").unwrap().contains("127.0.0.1".parse().unwrap()));
        assert!(matches!(
            one("10.0.0.0/33"),
            Err(NotANetwork::Prefix(_, 32))
        ));
        assert!(matches!(one("example.com"), Err(NotANetwork::Address(_))));
        assert!(!Trusted::default().contains("127.0.0.1".parse().unwrap()));
    }
}
