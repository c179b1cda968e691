//! Trusted proxies: the networks (`10.0.0.0/8`, `::1/128`, or a bare address) whose forwarding
//! headers and request ids are believed. IPv4 networks also match IPv4-mapped IPv6 peers
//! (`::ffff:10.1.2.3`), as a dual-stack listener reports them.

use ipnet::IpNet;
use std::net::IpAddr;

/// An entry that is neither a network nor an address.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR network")]
pub struct NotANetwork(String);

#[derive(Clone, Debug, Default)]
pub struct Trusted(Vec<IpNet>);

impl Trusted {
    /// Parses each entry; the error names the first one that is not a network or an address.
    pub fn parse(entries: &[String]) -> Result<Trusted, NotANetwork> {
        entries
            .iter()
            .map(|s| {
                let s = s.trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| NotANetwork(s.to_owned()))
            })
            .collect::<Result<_, _>>()
            .map(Trusted)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
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
        assert!(one("10.0.0.0/33").is_err());
        assert!(one("example.com").is_err());
        assert!(!Trusted::default().contains("127.0.0.1".parse().unwrap()));
    }
}
