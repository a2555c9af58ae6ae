//! Which destination URLs Hookline will send to. Webhook URLs are written by strangers
//! and fetched by our servers, so by default only public `https` addresses pass.
//! `url` parses with the WHATWG rules, which normalises odd IPv4 spellings
//! (`2130706433`, `0x7f.1`, `127.1`) before we look at the address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use url::{Host, Url};

use crate::ValidationError;

const MAX_URL_LEN: usize = 2048;

/// What the server allows for destinations: which URLs may be saved and which addresses
/// may be connected to. `--dev` opens plain http and private networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_http: bool,
    pub allow_private: bool,
    /// Ranges that pass even though they are private (e.g. an internal receiver).
    pub allowed_cidrs: Vec<IpNet>,
    /// Ranges that are refused even though they are public; these win over everything.
    pub denied_cidrs: Vec<IpNet>,
    /// Destination ports that may be used; empty means any.
    pub allowed_ports: Vec<u16>,
    /// Whether a destination may set `tls_verify: false`.
    pub allow_tls_verify_off: bool,
}

impl UrlPolicy {
    pub fn dev() -> Self {
        Self {
            allow_http: true,
            allow_private: true,
            ..Self::default()
        }
    }

    /// Everything open: for settings read back from the store, checked when written.
    pub fn permissive() -> Self {
        Self {
            allow_tls_verify_off: true,
            ..Self::dev()
        }
    }

    /// Why connecting to `ip` is refused under this policy, or `None` when it may be.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        let judged = ip.to_canonical();
        let within = |nets: &'_ [IpNet]| -> Option<IpNet> {
            nets.iter()
                .find(|net| net.contains(&ip) || net.contains(&judged))
                .copied()
        };
        if let Some(net) = within(&self.denied_cidrs) {
            return Some(format!("{ip} is in denied_cidrs ({net})"));
        }
        if self.allow_private || within(&self.allowed_cidrs).is_some() {
            return None;
        }
        forbidden_reason(ip).map(|rule| format!("{ip} is a {rule} address"))
    }

    /// Why a destination may not use `port`, or `None` when it may.
    pub fn port_refusal(&self, port: u16) -> Option<String> {
        (!self.allowed_ports.is_empty() && !self.allowed_ports.contains(&port))
            .then(|| format!("port {port} is not in allowed_ports"))
    }
}

/// A destination URL that passed the policy it was parsed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationUrl(Url);

impl DestinationUrl {
    pub fn parse(field: &str, text: &str, policy: &UrlPolicy) -> Result<Self, ValidationError> {
        let err = |m: String| ValidationError::new(field, m);
        if text.len() > MAX_URL_LEN {
            return Err(err(format!("is longer than {MAX_URL_LEN} characters")));
        }
        let mut url = Url::parse(text).map_err(|e| err(format!("is not a valid URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_http => {}
            "http" => {
                return Err(err(
                    "must use https (http is allowed only in --dev or with allow_http)".into(),
                ));
            }
            other => return Err(err(format!("scheme '{other}' is not allowed; use https"))),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err("must not contain a user name or password".into()));
        }
        let refusal = match url.host() {
            None => return Err(err("has no host".into())),
            Some(Host::Ipv4(ip)) => policy.refusal(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => policy.refusal(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let loopback = name == "localhost" || name.ends_with(".localhost");
                (loopback && !policy.allow_private).then(|| format!("{name} is a loopback name"))
            }
        };
        if let Some(refusal) = refusal {
            return Err(err(format!(
                "is refused: {refusal} (private networks are allowed only in --dev or by allowed_cidrs)"
            )));
        }
        let port = url.port_or_known_default().unwrap_or(0);
        if let Some(refusal) = policy.port_refusal(port) {
            return Err(err(format!("is refused: {refusal}")));
        }
        url.set_fragment(None);
        Ok(Self(url))
    }

    /// For values read back from the store, which were checked when they were written.
    pub fn from_trusted(text: &str) -> Option<Self> {
        Url::parse(text).ok().map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL, so an HTTP client need not parse the text again per request.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn port(&self) -> u16 {
        self.0.port_or_known_default().unwrap_or(0)
    }

    /// The address, when the host is an IP literal (which no resolver ever sees).
    pub fn host_ip(&self) -> Option<IpAddr> {
        match self.0.host()? {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        }
    }
}

/// Why an address must not be connected to, or `None` if it is a public unicast address.
/// IPv4 carried inside IPv6 (mapped, compatible, NAT64) is judged as the IPv4 it carries.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RULES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "unspecified (0.0.0.0/8)"),
        ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
        ([100, 64, 0, 0], 10, "CGNAT (100.64.0.0/10)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local (169.254.0.0/16)"),
        ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
        (
            [192, 0, 0, 0],
            24,
            "IETF protocol assignment (192.0.0.0/24)",
        ),
        ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
        ([192, 88, 99, 0], 24, "6to4 relay (192.88.99.0/24)"),
        ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
        ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
        ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
        ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved or broadcast (240.0.0.0/4)"),
    ];
    RULES
        .iter()
        .find(|(net, bits, _)| in_v4(ip, *net, *bits))
        .map(|(_, _, rule)| *rule)
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible or NAT64 (64:ff9b::/96) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let mapped = s[..5] == [0; 5] && s[5] == 0xffff;
    let compatible = s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1);
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    (mapped || compatible || nat64).then_some(tail)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        return Some("loopback");
    }
    if s[0] & 0xe000 != 0x2000 {
        return Some("non-global IPv6 (outside 2000::/3)");
    }
    if s[0] == 0x2001 && s[1] < 0x0200 {
        return Some("IETF special-purpose IPv6 (2001::/23)");
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return Some("documentation (2001:db8::/32)");
    }
    if s[0] == 0x2002 {
        return Some("6to4 (2002::/16)");
    }
    if s[0] == 0x3fff && s[1] < 0x1000 {
        return Some("documentation (3fff::/20)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(url: &str) -> Result<DestinationUrl, ValidationError> {
        DestinationUrl::parse("url", url, &UrlPolicy::default())
    }

    #[test]
    fn public_https_urls_pass() {
        for ok in [
            "https://example.com/hook",
            "https://93.184.216.34/x",
            "https://[2606:4700::1111]/",
            "https://hooks.example.com:8443/a?b=c",
        ] {
            assert!(strict(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn private_and_odd_addresses_are_refused() {
        for bad in [
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://127.0.0.1./",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://255.255.255.255/",
            "https://224.0.0.1/",
            "https://[::1]/",
            "https://[::]/",
            "https://[fc00::1]/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::7f00:1]/",
            "https://[2001:db8::1]/",
            "https://[2002:7f00:1::]/",
            "https://[2001::1]/",
            "https://0/",
            "https://0.0.0.0:443/",
            "https://127.0.0.2/",
            "https://127.255.255.254/",
            "https://10.255.255.255/",
            "https://172.31.255.255/",
            "https://192.168.255.255/",
            "https://169.254.0.1/",
            "https://100.127.255.255/",
            "https://192.0.0.1/",
            "https://192.0.2.1/",
            "https://198.51.100.1/",
            "https://203.0.113.1/",
            "https://198.18.0.1/",
            "https://198.19.255.255/",
            "https://192.88.99.1/",
            "https://239.255.255.250/",
            "https://240.0.0.1/",
            "https://0x7f000001/",
            "https://017700000001/",
            "https://0x7f.0x0.0x0.0x1/",
            "https://127.0.1/",
            "https://0177.1/",
            "https://%31%32%37.0.0.1/",
            "https://0xa9.0xfe.0xa9.0xfe/latest/meta-data",
            "https://2852039166/",
            "https://[0:0:0:0:0:ffff:7f00:1]/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://[::ffff:0:0]/",
            "https://[fd00::1]/",
            "https://[ff02::1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2001:0::1]/",
            "https://[2002:a9fe:a9fe::]/",
            "https://[3fff::1]/",
            "https://127.0.0.1#@evil.example/",
        ] {
            let err = strict(bad).unwrap_err();
            assert_eq!(err.field, "url");
            assert!(err.message.contains("refused"), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn schemes_and_userinfo_are_checked() {
        assert!(
            strict("http://example.com/")
                .unwrap_err()
                .message
                .contains("https")
        );
        assert!(strict("ftp://example.com/").is_err());
        assert!(strict("file:///etc/passwd").is_err());
        for scheme in [
            "gopher://127.0.0.1/",
            "javascript:alert(1)",
            "data:text/plain,hi",
            "ws://example.com/",
            "file://localhost/etc/passwd",
        ] {
            assert!(strict(scheme).is_err(), "{scheme}");
        }
        assert!(strict("https://user:pw@example.com/").is_err());
        assert!(strict("https://example.com@127.0.0.1/").is_err());
        assert!(strict("not a url").is_err());
        assert!(strict(&format!("https://example.com/{}", "a".repeat(2100))).is_err());
    }

    #[test]
    fn dev_policy_allows_loopback_http() {
        let url =
            DestinationUrl::parse("url", "http://127.0.0.1:9000/hook#frag", &UrlPolicy::dev())
                .unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9000/hook");
        assert_eq!(url.host_ip(), Some("127.0.0.1".parse().unwrap()));
        let named =
            DestinationUrl::parse("url", "https://example.com/", &UrlPolicy::dev()).unwrap();
        assert_eq!(named.host_ip(), None);
    }

    #[test]
    fn mapped_public_addresses_are_judged_as_ipv4() {
        assert_eq!(forbidden_reason("::ffff:8.8.8.8".parse().unwrap()), None);
        assert_eq!(
            forbidden_reason("::ffff:192.168.0.1".parse().unwrap()),
            Some("private (192.168.0.0/16)")
        );
    }

    #[test]
    fn cidr_lists_adjust_the_policy() {
        let policy = UrlPolicy {
            allowed_cidrs: vec!["10.20.0.0/16".parse().unwrap()],
            denied_cidrs: vec![
                "93.184.0.0/16".parse().unwrap(),
                "10.20.30.0/24".parse().unwrap(),
            ],
            ..UrlPolicy::default()
        };
        let parse = |u: &str| DestinationUrl::parse("url", u, &policy);
        assert!(parse("https://10.20.1.1/").is_ok());
        assert!(parse("https://[::ffff:10.20.1.1]/").is_ok());
        assert!(parse("https://10.21.1.1/").is_err());
        let denied = parse("https://10.20.30.4/").unwrap_err();
        assert!(
            denied.message.contains("denied_cidrs"),
            "{}",
            denied.message
        );
        assert!(
            parse("https://93.184.216.34/")
                .unwrap_err()
                .message
                .contains("denied_cidrs")
        );
        assert!(parse("https://8.8.8.8/").is_ok());
        // Denied ranges hold even when private networks are open.
        let dev = UrlPolicy {
            denied_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
            ..UrlPolicy::dev()
        };
        assert!(dev.refusal("127.0.0.1".parse().unwrap()).is_some());
        assert!(dev.refusal("::ffff:127.0.0.1".parse().unwrap()).is_some());
        assert!(dev.refusal("10.0.0.1".parse().unwrap()).is_none());
    }

    #[test]
    fn allowed_ports_limit_destination_ports() {
        let policy = UrlPolicy {
            allowed_ports: vec![443, 8443],
            ..UrlPolicy::default()
        };
        let parse = |u: &str| DestinationUrl::parse("url", u, &policy);
        assert!(parse("https://example.com/").is_ok());
        assert!(parse("https://example.com:8443/").is_ok());
        let err = parse("https://example.com:22/").unwrap_err();
        assert!(err.message.contains("allowed_ports"), "{}", err.message);
        assert!(UrlPolicy::default().port_refusal(22).is_none());
    }
}
