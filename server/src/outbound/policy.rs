//! Where the server may send requests: the SSRF allow-list.
//!
//! A destination must be a public unicast address. Everything an attacker could
//! use to reach the server's own network (loopback, private and link-local ranges,
//! the cloud metadata address 169.254.169.254, CGNAT, multicast, …) is refused,
//! unless the operator lists the host name or the address range in
//! `outbound.allow_private`. The same rule is applied to IP literals in URLs and,
//! in [`super::PolicyResolver`], to every address a name resolves to, so a DNS
//! answer that changes between checks (rebinding) cannot get around it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use url::{Host, Url};

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `fd00::/8`). A bare
/// address is a single host (`/32` or `/128`). Host bits are cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpCidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR text was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an address range like 10.0.0.0/8 or fd00::/8")]
pub struct ParseIpCidrError(String);

impl IpCidr {
    /// Whether `ip` is inside this network. IPv4-mapped IPv6 addresses
    /// (`::ffff:10.0.0.1`) are compared as the IPv4 address they carry.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_v4(ip, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_v6(ip, self.prefix) == net,
            _ => false,
        }
    }
}

fn mask_v4(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(u32::from(ip) & mask)
}

fn mask_v6(ip: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(u128::from(ip) & mask)
}

impl FromStr for IpCidr {
    type Err = ParseIpCidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = || ParseIpCidrError(text.to_owned());
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| fail())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(fail)?,
            None => max,
        };
        let network = match addr {
            IpAddr::V4(ip) => IpAddr::V4(mask_v4(ip, prefix)),
            IpAddr::V6(ip) => IpAddr::V6(mask_v6(ip, prefix)),
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// What kind of non-public address an address is, or `None` for a public
/// unicast address. IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4)
/// are judged by that IPv4 address.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => non_public_v4(ip),
        IpAddr::V6(ip) => non_public_v6(ip),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_broadcast() => "broadcast",
        (0, _, _) => "\"this network\"",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        (192, 0, 0) => "IETF protocol",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(kind)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return non_public_v4(v4);
    }
    let s = ip.segments();
    let kind = match s {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // ::/96, the deprecated IPv4-compatible form, and anything else in ::/8.
        [0, ..] => "reserved",
        [0x0100, 0, 0, 0, ..] => "discard",
        [0x2001, 0x0db8, ..] => "documentation",
        [0x2001, 0, ..] => "Teredo",
        [x, ..] if x & 0xfe00 == 0xfc00 => "unique local (private)",
        [x, ..] if x & 0xffc0 == 0xfe80 => "link-local",
        [x, ..] if x & 0xffc0 == 0xfec0 => "site-local",
        [x, ..] if x & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    };
    Some(kind)
}

/// The IPv4 address carried by an IPv4-mapped (`::ffff:a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`) IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(from(hi, lo)),
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(from(hi, lo)),
        [0x2002, hi, lo, ..] => Some(from(hi, lo)),
        _ => None,
    }
}

/// The destinations the operator allows despite being non-public, and whether
/// plain http may be used towards loopback.
#[derive(Clone, Debug, Default)]
pub struct DestinationPolicy {
    /// Exact host names (lowercase, no trailing dot) whose addresses are all allowed.
    pub hosts: Vec<String>,
    /// Address ranges allowed even though they are not public.
    pub networks: Vec<IpCidr>,
    /// Plain `http` to a loopback destination (development only; config refuses it in production).
    pub insecure_http_loopback: bool,
}

impl DestinationPolicy {
    /// Whether `host` is listed by name.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.hosts.contains(&host)
    }

    /// Whether a connection to `ip`, reached through the name `host` (if any), is allowed.
    pub fn allows_address(&self, host: Option<&str>, ip: IpAddr) -> Result<(), String> {
        let Some(kind) = non_public_kind(ip) else {
            return Ok(());
        };
        if host.is_some_and(|h| self.allows_host(h)) || self.networks.iter().any(|n| n.contains(ip)) {
            return Ok(());
        }
        Err(format!(
            "{ip} is a {kind} address and is not listed in outbound.allow_private"
        ))
    }

    fn allows_localhost(&self, name: &str) -> bool {
        let loopback = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
        self.allows_host(name) || loopback.iter().any(|ip| self.networks.iter().any(|n| n.contains(*ip)))
    }

    /// Checks a URL without resolving it: the scheme, credentials, an IP-literal
    /// host against the allow-list, and names that are known to mean loopback.
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err("URLs with credentials are not allowed".into());
        }
        let host = url.host().ok_or("the URL has no host")?;
        let (ip, name) = match &host {
            Host::Ipv4(ip) => (Some(IpAddr::V4(*ip)), None),
            Host::Ipv6(ip) => (Some(IpAddr::V6(*ip)), None),
            Host::Domain(name) => (None, Some(normalize_host(name))),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.insecure_http_loopback => {
                // Only destinations that cannot leave the machine: a loopback
                // literal, or `localhost` (RFC 6761 reserves it for loopback).
                let loopback = ip.is_some_and(|ip| ip.to_canonical().is_loopback())
                    || name.as_deref().is_some_and(is_localhost_name);
                if !loopback {
                    return Err("plain http is allowed only towards a loopback address".into());
                }
            }
            "http" => return Err("plain http is not allowed; use https".into()),
            other => return Err(format!("the scheme {other} is not allowed; use https")),
        }
        match (ip, name) {
            (Some(ip), _) => self.allows_address(None, ip),
            // The resolver checks the addresses later; refuse early what cannot pass.
            (None, Some(name)) if is_localhost_name(&name) && !self.allows_localhost(&name) => Err(format!(
                "{name} is a loopback name and neither it nor a loopback address is listed in outbound.allow_private"
            )),
            _ => Ok(()),
        }
    }
}

/// Lowercase, without a trailing dot: how host names are compared.
pub fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn is_localhost_name(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_non_public_range_is_refused() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("169.254.0.1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "\"this network\""),
            ("255.255.255.255", "broadcast"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.127.255.255", "shared (CGNAT)"),
            ("192.0.2.10", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "unique local (private)"),
            ("fd12:3456::1", "unique local (private)"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:c0a8:0101::1", "private"),
            ("::10.0.0.1", "reserved"),
        ];
        for (text, kind) in cases {
            assert_eq!(non_public_kind(ip(text)), Some(kind), "{text}");
        }
    }

    #[test]
    fn public_unicast_is_allowed() {
        for text in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(non_public_kind(ip(text)), None, "{text}");
        }
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let net: IpCidr = "127.0.0.1/32".parse().unwrap();
        assert!(net.contains(ip("127.0.0.1")));
        assert!(net.contains(ip("::ffff:127.0.0.1")), "mapped form is the same host");
        assert!(!net.contains(ip("127.0.0.2")));
        let net: IpCidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(ip("10.200.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        let net: IpCidr = "fd00::/8".parse().unwrap();
        assert!(net.contains(ip("fd12::1")));
        assert!(!net.contains(ip("fe80::1")));
        assert!(!net.contains(ip("10.0.0.1")));
        let all: IpCidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("192.168.0.1")));
        let host: IpCidr = "::1".parse().unwrap();
        assert_eq!(host.to_string(), "::1/128");
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "bank.example",
            "10.0.0/8",
            "10.0.0.0/x",
            "",
        ] {
            assert!(bad.parse::<IpCidr>().is_err(), "{bad}");
        }
    }

    fn policy(hosts: &[&str], nets: &[&str]) -> DestinationPolicy {
        DestinationPolicy {
            hosts: hosts.iter().map(|h| normalize_host(h)).collect(),
            networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
            insecure_http_loopback: false,
        }
    }

    #[test]
    fn allow_private_lifts_the_refusal() {
        let strict = policy(&[], &[]);
        let err = strict.allows_address(None, ip("10.0.0.1")).unwrap_err();
        assert!(
            err.contains("private") && err.contains("outbound.allow_private"),
            "{err}"
        );
        assert!(strict
            .allows_address(Some("bank-internal.example"), ip("10.0.0.1"))
            .is_err());
        assert!(strict.allows_address(None, ip("169.254.169.254")).is_err());
        assert!(strict.allows_address(None, ip("8.8.8.8")).is_ok());

        let lenient = policy(&["Bank-Internal.example."], &["10.0.0.0/8"]);
        assert!(lenient.allows_address(None, ip("10.9.9.9")).is_ok(), "by CIDR");
        assert!(
            lenient.allows_address(None, ip("::ffff:10.9.9.9")).is_ok(),
            "mapped, by CIDR"
        );
        assert!(lenient.allows_address(None, ip("192.168.0.1")).is_err());
        assert!(
            lenient
                .allows_address(Some("bank-internal.example"), ip("192.168.0.1"))
                .is_ok(),
            "by exact host name"
        );
        assert!(lenient
            .allows_address(Some("x.bank-internal.example"), ip("192.168.0.1"))
            .is_err());
        assert!(lenient.allows_address(None, ip("169.254.169.254")).is_err());
    }

    #[test]
    fn scheme_rules() {
        let url = |s: &str| Url::parse(s).unwrap();
        let mut p = policy(&[], &["127.0.0.0/8"]);
        assert!(p.check_url(&url("https://client.example/jwks")).is_ok());
        assert!(p.check_url(&url("https://127.0.0.1/jwks")).is_ok());
        let err = p.check_url(&url("http://client.example/jwks")).unwrap_err();
        assert!(err.contains("https"), "{err}");
        assert!(p.check_url(&url("http://127.0.0.1:9000/jwks")).is_err(), "flag off");
        assert!(p.check_url(&url("ftp://client.example/jwks")).is_err());
        assert!(p.check_url(&url("https://user:pw@client.example/jwks")).is_err());

        p.insecure_http_loopback = true;
        assert!(p.check_url(&url("http://127.0.0.1:9000/jwks")).is_ok());
        assert!(p.check_url(&url("http://[::ffff:127.0.0.1]:9000/jwks")).is_ok());
        let err = p.check_url(&url("http://client.example/jwks")).unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        assert!(p.check_url(&url("http://10.0.0.1/jwks")).is_err());
        assert!(
            p.check_url(&url("http://localhost:9000/")).is_ok(),
            "127.0.0.1 is listed"
        );
        // Loopback over http still needs the allow-list.
        let mut q = policy(&[], &[]);
        q.insecure_http_loopback = true;
        assert!(q.check_url(&url("http://127.0.0.1:9000/")).is_err());
        assert!(q.check_url(&url("http://[::1]:9000/")).is_err());
        assert!(q.check_url(&url("http://localhost:9000/")).is_err());
        q.hosts.push("localhost".into());
        assert!(q.check_url(&url("http://localhost:9000/")).is_ok());
    }

    #[test]
    fn literal_addresses_are_checked_without_dns() {
        let p = policy(&[], &[]);
        let url = |s: &str| Url::parse(s).unwrap();
        for bad in [
            "https://169.254.169.254/latest/meta-data/",
            "https://[::ffff:10.0.0.1]/",
            "https://[fd00::1]/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://localhost/",
            "https://api.localhost/",
        ] {
            assert!(p.check_url(&url(bad)).is_err(), "{bad}");
        }
        assert!(p.check_url(&url("https://93.184.215.14/")).is_ok());
        assert!(
            p.check_url(&url("https://bank.example/")).is_ok(),
            "names are checked at resolution"
        );
    }
}
