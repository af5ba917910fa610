//! The SSRF guard: which addresses a webhook may be delivered to.
//!
//! ## Why
//!
//! A webhook endpoint URL is chosen by whoever may configure endpoints, and Pipe then
//! makes requests to it from inside the operator's network. Without a guard, an endpoint
//! such as `http://169.254.169.254/latest/meta-data/` (cloud instance metadata, often
//! holding credentials), `http://127.0.0.1:6379/` or `http://10.0.0.5/admin` turns Pipe
//! into a proxy into that network: server-side request forgery.
//!
//! ## What it refuses
//!
//! [`classify`] names every address that is not a public unicast address on the
//! Internet; [`AddressPolicy`] refuses them all by default:
//!
//! - loopback (`127.0.0.0/8`, `::1`), unspecified / "this network" (`0.0.0.0/8`, `::`);
//! - private (RFC 1918: `10/8`, `172.16/12`, `192.168/16`), shared address space
//!   (`100.64/10`, carrier-grade NAT), unique-local (`fc00::/7`), site-local (`fec0::/10`);
//! - link-local (`169.254/16`, which holds the cloud metadata services, `fe80::/10`);
//! - multicast (`224/4`, `ff00::/8`) and broadcast (`255.255.255.255`);
//! - documentation, benchmarking and reserved ranges (`192.0.0/24`, `192.0.2/24`,
//!   `198.18/15`, `198.51.100/24`, `203.0.113/24`, `240/4`, `2001:db8::/32`,
//!   `3fff::/20`, `100::/64`, `2001::/23`, `64:ff9b:1::/48`, and all IPv6 outside the
//!   global unicast `2000::/3`);
//! - IPv6 forms that embed an IPv4 address are judged by that address: IPv4-mapped
//!   (`::ffff:127.0.0.1`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`); the deprecated
//!   IPv4-compatible form (`::a.b.c.d`) is refused outright.
//!
//! A URL is refused unless its scheme is `http` or `https` and it has a host. The
//! unusual spellings of IPv4 addresses (`http://2130706433/`, `http://0177.0.0.1/`,
//! `http://0x7f.0.0.1/`) need no special care: URL parsing (WHATWG, as the `url` crate
//! implements it) turns each into the address it denotes, `127.0.0.1`, before the guard
//! sees it.
//!
//! ## The allow-list
//!
//! [`AddressPolicy::allow`] re-admits an explicit network (an address or a CIDR block),
//! for an operator whose receiver lives on the private network, and for tests, whose
//! receivers listen on `127.0.0.1`. The allow-list only ever re-admits: a public address
//! is allowed with or without it.
//!
//! ## DNS rebinding, and where the check happens
//!
//! Checking a name and then letting the HTTP client look it up again would be useless: a
//! hostile DNS server answers the check with a public address and the connection, a
//! moment later, with `127.0.0.1` (DNS rebinding). So names are resolved **once**, by
//! [`GuardedResolver`], the HTTP client's resolver: it drops the forbidden addresses
//! from the answer and the client connects only to the addresses that were checked.
//!
//! An IP-literal host never reaches a resolver (hyper connects to it directly), so a
//! request to one must be checked with [`AddressPolicy::check_url`] before it is made.
//! [`AddressPolicy::client_builder`] makes the client these two rules assume: the guarded
//! resolver, no redirects (a redirect would lead to a URL no one checked), and no proxy
//! (a proxy would resolve the name itself, out of the guard's sight).
//!
//! At endpoint creation, [`AddressPolicy::check_url_resolving`] resolves the name too,
//! so that a URL whose name points inside the network is refused with a clear message
//! then, rather than failing at every delivery. It does not replace the check at
//! connection time: the name can point elsewhere by then.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use reqwest::Url;

/// Why an address is not one a webhook may be delivered to. [`classify`] tells.
///
/// An IPv6 address that embeds an IPv4 address (IPv4-mapped, NAT64, 6to4) has the
/// reason of the IPv4 address it embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Forbidden {
    /// `127.0.0.0/8`, `::1`: this machine.
    Loopback,
    /// RFC 1918: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `100.64.0.0/10` (RFC 6598): carrier-grade NAT, the provider's network.
    SharedAddressSpace,
    /// `169.254.0.0/16` (including cloud metadata at `169.254.169.254`), `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`: IPv6's private addresses.
    UniqueLocal,
    /// `fec0::/10`: deprecated IPv6 site-local addresses.
    SiteLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `0.0.0.0/8` and `::`: "this host" / "this network" (`0.0.0.0` reaches this
    /// machine on Linux).
    Unspecified,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`,
    /// `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15`, `2001:2::/48`: network benchmarking.
    Benchmarking,
    /// Reserved or special-purpose: `192.0.0.0/24`, `240.0.0.0/4`, `100::/64`
    /// (discard), `2001::/23` (IETF protocol assignments, Teredo), `64:ff9b:1::/48`
    /// (local-use NAT64), IPv4-compatible `::a.b.c.d`, and IPv6 outside `2000::/3`.
    Reserved,
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forbidden::Loopback => "loopback",
            Forbidden::Private => "private (RFC 1918)",
            Forbidden::SharedAddressSpace => "shared address space (100.64/10)",
            Forbidden::LinkLocal => "link-local (incl. cloud metadata)",
            Forbidden::UniqueLocal => "unique-local (fc00::/7)",
            Forbidden::SiteLocal => "site-local (fec0::/10)",
            Forbidden::Multicast => "multicast",
            Forbidden::Unspecified => "unspecified (this host or network)",
            Forbidden::Broadcast => "broadcast",
            Forbidden::Documentation => "documentation",
            Forbidden::Benchmarking => "benchmarking",
            Forbidden::Reserved => "reserved",
        })
    }
}

/// Why `ip` may not receive webhooks, or `None` for a public unicast address.
///
/// This ignores any allow-list: [`AddressPolicy::check_ip`] applies one.
#[must_use]
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let bits = ip.to_bits();
    let within = |net: [u8; 4], prefix: u32| {
        let mask = u32::MAX << (32 - prefix);
        bits & mask == u32::from_be_bytes(net)
    };
    Some(if within([0, 0, 0, 0], 8) {
        Forbidden::Unspecified
    } else if within([10, 0, 0, 0], 8)
        || within([172, 16, 0, 0], 12)
        || within([192, 168, 0, 0], 16)
    {
        Forbidden::Private
    } else if within([100, 64, 0, 0], 10) {
        Forbidden::SharedAddressSpace
    } else if within([127, 0, 0, 0], 8) {
        Forbidden::Loopback
    } else if within([169, 254, 0, 0], 16) {
        Forbidden::LinkLocal
    } else if within([192, 0, 2, 0], 24)
        || within([198, 51, 100, 0], 24)
        || within([203, 0, 113, 0], 24)
    {
        Forbidden::Documentation
    } else if within([198, 18, 0, 0], 15) {
        Forbidden::Benchmarking
    } else if within([224, 0, 0, 0], 4) {
        Forbidden::Multicast
    } else if ip == Ipv4Addr::BROADCAST {
        Forbidden::Broadcast
    } else if within([192, 0, 0, 0], 24) || within([240, 0, 0, 0], 4) {
        Forbidden::Reserved
    } else {
        return None;
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    let bits = ip.to_bits();
    let within = |net: u128, prefix: u32| {
        let mask = u128::MAX << (128 - prefix);
        bits & mask == net
    };
    // The IPv4 address in the low 32 bits.
    let low_v4 = || Ipv4Addr::from_bits(bits as u32);

    if ip == Ipv6Addr::UNSPECIFIED {
        return Some(Forbidden::Unspecified);
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Some(Forbidden::Loopback);
    }
    // ::ffff:a.b.c.d, IPv4-mapped: a dual-stack socket connects to a.b.c.d.
    if within(0xffff << 32, 96) {
        return classify_v4(low_v4());
    }
    // ::a.b.c.d, IPv4-compatible: deprecated (RFC 4291), never legitimate.
    if within(0, 96) {
        return Some(classify_v4(low_v4()).unwrap_or(Forbidden::Reserved));
    }
    // 64:ff9b::/96, NAT64 (RFC 6052): the translator connects to a.b.c.d.
    if within(0x0064_ff9b << 96, 96) {
        return classify_v4(low_v4());
    }
    // 2002:AABB:CCDD::/48, 6to4 (RFC 3056): the IPv4 address in bits 16..48.
    if within(0x2002 << 112, 16) {
        return classify_v4(Ipv4Addr::from_bits((bits >> 80) as u32));
    }
    Some(if within(0xfe80 << 112, 10) {
        Forbidden::LinkLocal
    } else if within(0xfec0 << 112, 10) {
        Forbidden::SiteLocal
    } else if within(0xfc00 << 112, 7) {
        Forbidden::UniqueLocal
    } else if within(0xff00 << 112, 8) {
        Forbidden::Multicast
    } else if within(0x2001_0db8 << 96, 32) || within(0x3fff << 112, 20) {
        Forbidden::Documentation
    } else if within(0x2001_0002 << 96, 48) {
        Forbidden::Benchmarking
    } else if within(0x2001 << 112, 23)
        || within(0x0064_ff9b_0001 << 80, 48)
        || within(0x0100 << 112, 64)
        || !within(0x2000 << 112, 3)
    {
        Forbidden::Reserved
    } else {
        return None;
    })
}

/// An IP network: an address and a prefix length, such as `127.0.0.0/8` or `::1/128`.
///
/// Parsed from `"127.0.0.1"` (one address, `/32` or `/128`) or `"10.0.0.0/8"`; bits set
/// past the prefix length (`"10.0.0.1/8"`) are refused rather than silently dropped,
/// since an allow-list that means something else than it says is a hazard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

impl IpNet {
    /// The network `addr/prefix_len`.
    ///
    /// # Errors
    ///
    /// If `prefix_len` is longer than the address (32 or 128), or `addr` has bits set
    /// past it.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<IpNet, IpNetError> {
        let max = max_prefix_len(addr);
        if prefix_len > max {
            return Err(IpNetError::PrefixLength {
                input: format!("{addr}/{prefix_len}"),
                max,
            });
        }
        let net = IpNet { addr, prefix_len };
        if net.network() != addr {
            return Err(IpNetError::HostBits {
                input: format!("{addr}/{prefix_len}"),
                network: IpNet {
                    addr: net.network(),
                    prefix_len,
                }
                .to_string(),
            });
        }
        Ok(net)
    }

    /// The network's first address.
    #[must_use]
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// How many leading bits are the network's.
    #[must_use]
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in this network. An IPv4 network holds no IPv6 address and the
    /// other way round ([`AddressPolicy`] handles IPv4-mapped addresses).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let shift = u32::from(max_prefix_len(self.addr) - self.prefix_len);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(shift).unwrap_or(0);
                ip.to_bits() & mask == net.to_bits()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(shift).unwrap_or(0);
                ip.to_bits() & mask == net.to_bits()
            }
            _ => false,
        }
    }

    /// `addr` with the bits past the prefix length cleared.
    fn network(&self) -> IpAddr {
        let shift = u32::from(max_prefix_len(self.addr) - self.prefix_len);
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(shift).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(shift).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & mask))
            }
        }
    }
}

fn max_prefix_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl From<IpAddr> for IpNet {
    /// The network of this one address (`/32` or `/128`).
    fn from(addr: IpAddr) -> IpNet {
        IpNet {
            addr,
            prefix_len: max_prefix_len(addr),
        }
    }
}

impl From<Ipv4Addr> for IpNet {
    fn from(addr: Ipv4Addr) -> IpNet {
        IpNet::from(IpAddr::V4(addr))
    }
}

impl From<Ipv6Addr> for IpNet {
    fn from(addr: Ipv6Addr) -> IpNet {
        IpNet::from(IpAddr::V6(addr))
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<IpNet, IpNetError> {
        let (addr, prefix_len) = match s.split_once('/') {
            Some((addr, prefix_len)) => (addr, Some(prefix_len)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| IpNetError::Address {
            input: s.to_owned(),
        })?;
        let Some(prefix_len) = prefix_len else {
            return Ok(IpNet::from(addr));
        };
        let max = max_prefix_len(addr);
        let prefix_len = (!prefix_len.is_empty() && prefix_len.bytes().all(|b| b.is_ascii_digit()))
            .then(|| prefix_len.parse::<u8>().ok())
            .flatten()
            .filter(|&len| len <= max)
            .ok_or_else(|| IpNetError::PrefixLength {
                input: s.to_owned(),
                max,
            })?;
        IpNet::new(addr, prefix_len).map_err(|e| match e {
            IpNetError::HostBits { network, .. } => IpNetError::HostBits {
                input: s.to_owned(),
                network,
            },
            other => other,
        })
    }
}

/// Why a string is not an [`IpNet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpNetError {
    /// The part before any `/` is not an IP address.
    #[error(
        "`{input}` is not an IP address or network (expected e.g. 127.0.0.1, 10.0.0.0/8 or ::1/128)"
    )]
    Address {
        /// The text that did not parse.
        input: String,
    },
    /// The part after the `/` is not a number from 0 to 32 (IPv4) or 128 (IPv6).
    #[error("the prefix length in `{input}` is not a number from 0 to {max}")]
    PrefixLength {
        /// The text that did not parse.
        input: String,
        /// The longest prefix for this address family.
        max: u8,
    },
    /// The address has bits set past the prefix length.
    #[error("`{input}` has address bits set past its prefix length; did you mean {network}?")]
    HostBits {
        /// The text that did not parse.
        input: String,
        /// The network with those bits cleared.
        network: String,
    },
}

/// Why a webhook URL or address was refused.
///
/// Never quotes the URL (its path and query may carry tokens); the host name and the
/// address are fine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SsrfError {
    /// The scheme is not `http` or `https`.
    #[error("the URL scheme `{scheme}` is not allowed for webhooks, only http and https")]
    Scheme {
        /// The URL's scheme.
        scheme: String,
    },
    /// The URL has no host.
    #[error("the URL has no host")]
    NoHost,
    /// The address (given, or one the host name resolved to) may not receive webhooks.
    #[error("webhooks may not be sent to {addr}: the address is {why}")]
    Forbidden {
        /// The refused address.
        addr: IpAddr,
        /// Why.
        why: Forbidden,
    },
    /// The host name did not resolve.
    #[error("could not resolve {host}: {detail}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        detail: String,
    },
    /// The host name resolved to no address at all.
    #[error("{host} resolved to no address")]
    NoAddress {
        /// The host name.
        host: String,
    },
}

/// Which addresses webhooks may be delivered to: every public unicast address, plus the
/// networks re-admitted with [`allow`](AddressPolicy::allow). See the [module
/// docs](self).
///
/// Where each check belongs:
///
/// - **Every request**: a client from [`client_builder`](AddressPolicy::client_builder)
///   (or with [`resolver`](AddressPolicy::resolver) as its DNS resolver, no redirects and
///   no proxy) checks every address a host name resolves to, at connection time. An
///   IP-literal host never goes through a resolver, so call
///   [`check_url`](AddressPolicy::check_url) before each request as well: it checks
///   literal hosts, and the scheme.
/// - **Endpoint creation**: [`check_url_resolving`](AddressPolicy::check_url_resolving),
///   which also resolves the name, for a clear refusal (a `4xx`) up front.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// The default policy: every non-public address refused, no exception.
    #[must_use]
    pub fn new() -> AddressPolicy {
        AddressPolicy::default()
    }

    /// Re-admits `net`: `"127.0.0.1".parse()?`, `"10.1.0.0/16".parse()?`, or an
    /// [`IpAddr`]. An IPv4 network also admits the IPv4-mapped forms of its addresses.
    #[must_use]
    pub fn allow(mut self, net: impl Into<IpNet>) -> AddressPolicy {
        self.allowed.push(net.into());
        self
    }

    /// The re-admitted networks.
    #[must_use]
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Whether `ip` is in a re-admitted network (directly, or as the IPv4 address an
    /// IPv4-mapped `::ffff:a.b.c.d` stands for).
    fn is_allowed(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.allowed
            .iter()
            .any(|net| net.contains(ip) || net.contains(canonical))
    }

    /// Refuses `ip` unless it is public or re-admitted.
    ///
    /// # Errors
    ///
    /// [`SsrfError::Forbidden`], with the reason.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), SsrfError> {
        if self.is_allowed(ip) {
            return Ok(());
        }
        match classify(ip) {
            Some(why) => Err(SsrfError::Forbidden { addr: ip, why }),
            None => Ok(()),
        }
    }

    /// Refuses a URL whose scheme is not `http` or `https`, that has no host, or whose
    /// host is a forbidden IP address. A host name passes: its addresses are checked when
    /// it is resolved ([`GuardedResolver`], or
    /// [`check_url_resolving`](AddressPolicy::check_url_resolving)).
    ///
    /// # Errors
    ///
    /// [`SsrfError::Scheme`], [`SsrfError::NoHost`], [`SsrfError::Forbidden`].
    pub fn check_url(&self, url: &Url) -> Result<(), SsrfError> {
        match target(url)? {
            Target::Ip(ip) => self.check_ip(ip),
            Target::Name(_) => Ok(()),
        }
    }

    /// [`check_url`](AddressPolicy::check_url), and a host name is resolved: refused if
    /// *any* of its addresses is forbidden, or if it does not resolve. For endpoint
    /// creation; at delivery, the client's [`GuardedResolver`] checks again.
    ///
    /// # Errors
    ///
    /// Those of `check_url`, [`SsrfError::Resolve`], [`SsrfError::NoAddress`].
    pub async fn check_url_resolving(&self, url: &Url) -> Result<(), SsrfError> {
        match target(url)? {
            Target::Ip(ip) => self.check_ip(ip),
            Target::Name(host) => {
                let port = url.port_or_known_default().unwrap_or(0);
                let addrs = lookup(host, port).await?;
                if addrs.is_empty() {
                    return Err(SsrfError::NoAddress {
                        host: host.to_owned(),
                    });
                }
                addrs.iter().try_for_each(|addr| self.check_ip(addr.ip()))
            }
        }
    }

    /// This policy as a reqwest DNS resolver, for
    /// [`ClientBuilder::dns_resolver`](reqwest::ClientBuilder::dns_resolver).
    #[must_use]
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver {
            policy: Arc::new(self.clone()),
        }
    }

    /// A reqwest client builder that enforces this policy on host names: the guarded
    /// resolver, no redirects, no proxy (not even one from `HTTP_PROXY` and friends).
    /// Requests to IP-literal hosts still need [`check_url`](AddressPolicy::check_url).
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .dns_resolver(self.resolver())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
    }
}

/// The guard where endpoints are created: a URL whose scheme, host, or any address its
/// name resolves to is refused is `Invalid` (field `url`), saying why. A name that does
/// not resolve now passes (DNS may be down for a moment; each delivery resolves again).
#[async_trait::async_trait]
impl pipe_core::UrlGuard for AddressPolicy {
    async fn check_url(&self, url: &str) -> pipe_core::Result<()> {
        let invalid = |why: &dyn fmt::Display| pipe_core::Error::invalid("url", why.to_string());
        let url = Url::parse(url).map_err(|e| invalid(&e))?;
        match self.check_url_resolving(&url).await {
            Ok(()) | Err(SsrfError::Resolve { .. } | SsrfError::NoAddress { .. }) => Ok(()),
            Err(e) => Err(invalid(&e)),
        }
    }
}

/// What a URL connects to: an address, or a name to resolve.
enum Target<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

/// The URL's scheme checked, and its host as hyper will see it: hyper strips the
/// brackets of an IPv6 literal and connects directly to anything that parses as an IP
/// address, and resolves everything else.
fn target(url: &Url) -> Result<Target<'_>, SsrfError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SsrfError::Scheme {
            scheme: url.scheme().to_owned(),
        });
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(SsrfError::NoHost)?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok(match bare.parse::<IpAddr>() {
        Ok(ip) => Target::Ip(ip),
        Err(_) => Target::Name(host),
    })
}

async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, SsrfError> {
    tokio::net::lookup_host((host, port))
        .await
        .map(Iterator::collect)
        .map_err(|e| SsrfError::Resolve {
            host: host.to_owned(),
            detail: e.to_string(),
        })
}

/// A reqwest DNS resolver that resolves with the system resolver and keeps only the
/// addresses its [`AddressPolicy`] allows; a name with none left fails the connection
/// with the [`SsrfError`] (in the `reqwest::Error`'s source chain).
///
/// reqwest connects to exactly the addresses a resolver returns, so what was checked is
/// what is connected to: no second lookup for DNS rebinding to exploit. IP-literal hosts
/// never reach a resolver: check them with [`AddressPolicy::check_url`].
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    /// The addresses of `host` that the policy allows (port `port`).
    ///
    /// # Errors
    ///
    /// [`SsrfError::Resolve`] if the name does not resolve, [`SsrfError::NoAddress`] if
    /// it resolves to nothing, [`SsrfError::Forbidden`] (the first forbidden address) if
    /// none of its addresses is allowed.
    pub async fn resolve_checked(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, SsrfError> {
        let addrs = lookup(host, port).await?;
        let mut refused = None;
        let mut allowed = Vec::with_capacity(addrs.len());
        for addr in addrs {
            match self.policy.check_ip(addr.ip()) {
                Ok(()) => allowed.push(addr),
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        if !allowed.is_empty() {
            return Ok(allowed);
        }
        Err(refused.unwrap_or_else(|| SsrfError::NoAddress {
            host: host.to_owned(),
        }))
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts in the URL's port, or the scheme's.
            match this.resolve_checked(&host, 0).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(e) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn every_special_range_is_refused_with_its_reason() {
        use Forbidden::*;
        let table = [
            // IPv4, with the edges of each range.
            ("0.0.0.0", Unspecified),
            ("0.255.255.255", Unspecified),
            ("10.0.0.0", Private),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("100.64.0.0", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("127.0.0.1", Loopback),
            ("127.0.0.2", Loopback),
            ("127.255.255.255", Loopback),
            ("169.254.0.0", LinkLocal),
            ("169.254.169.254", LinkLocal),
            ("169.254.255.255", LinkLocal),
            ("172.16.0.0", Private),
            ("172.31.255.255", Private),
            ("192.0.0.0", Reserved),
            ("192.0.0.255", Reserved),
            ("192.0.2.0", Documentation),
            ("192.0.2.255", Documentation),
            ("192.168.0.0", Private),
            ("192.168.255.255", Private),
            ("198.18.0.0", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("198.51.100.7", Documentation),
            ("203.0.113.7", Documentation),
            ("224.0.0.0", Multicast),
            ("239.255.255.255", Multicast),
            ("240.0.0.0", Reserved),
            ("255.255.255.254", Reserved),
            ("255.255.255.255", Broadcast),
            // IPv6.
            ("::", Unspecified),
            ("::1", Loopback),
            ("fe80::", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf:ffff::", LinkLocal),
            ("fec0::1", SiteLocal),
            ("feff:ffff::", SiteLocal),
            ("fc00::", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("fdff:ffff::", UniqueLocal),
            ("ff00::", Multicast),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("2001:db8:ffff::", Documentation),
            ("3fff::1", Documentation),
            ("2001:2::1", Benchmarking),
            ("2001::1", Reserved), // Teredo
            ("2001:1ff::1", Reserved),
            ("100::1", Reserved),
            ("100::ffff:ffff:ffff:ffff", Reserved),
            ("64:ff9b:1::1", Reserved),
            ("::2", Unspecified), // IPv4-compatible ::0.0.0.2, in 0.0.0.0/8
            ("::0.1.0.0", Unspecified),
            ("4000::1", Reserved), // outside 2000::/3
            ("1000::1", Reserved),
            ("::ffff:0:1:1", Reserved), // IPv4-translated (SIIT), in ::/8
        ];
        for (addr, why) in table {
            assert_eq!(classify(ip(addr)), Some(why), "{addr}");
            let policy = AddressPolicy::new();
            assert_eq!(
                policy.check_ip(ip(addr)),
                Err(SsrfError::Forbidden {
                    addr: ip(addr),
                    why
                }),
                "{addr}"
            );
        }
    }

    #[test]
    fn public_addresses_and_the_neighbours_of_ranges_are_allowed() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.88.99.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "2000::",
            "3ffe:ffff::",
            "3fff:1000::",
            "2001:200::1",
            "2001:db7:ffff::",
            "2001:db9::",
            "2003::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808", // NAT64 of 8.8.8.8
            "2002:808:808::1",  // 6to4 of 8.8.8.8
        ] {
            assert_eq!(classify(ip(addr)), None, "{addr}");
            assert_eq!(AddressPolicy::new().check_ip(ip(addr)), Ok(()), "{addr}");
        }
        assert_eq!(classify(ip("172.16.0.0")), Some(Forbidden::Private));
        assert_eq!(
            classify(ip("100.64.0.0")),
            Some(Forbidden::SharedAddressSpace)
        );
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address() {
        for (v6, why) in [
            ("::ffff:127.0.0.1", Forbidden::Loopback),
            ("::ffff:7f00:1", Forbidden::Loopback),
            ("::ffff:10.1.2.3", Forbidden::Private),
            ("::ffff:169.254.169.254", Forbidden::LinkLocal),
            ("::ffff:0.0.0.0", Forbidden::Unspecified),
            ("::127.0.0.1", Forbidden::Loopback),
            ("::8.8.8.8", Forbidden::Reserved),
            ("64:ff9b::127.0.0.1", Forbidden::Loopback),
            ("64:ff9b::a9fe:a9fe", Forbidden::LinkLocal),
            ("2002:7f00:1::", Forbidden::Loopback),
            ("2002:c0a8:101::1", Forbidden::Private),
            ("2002:a9fe:a9fe:1234::1", Forbidden::LinkLocal),
        ] {
            assert_eq!(classify(ip(v6)), Some(why), "{v6}");
        }
    }

    #[test]
    fn refuses_literal_hosts_in_every_spelling() {
        let policy = AddressPolicy::new();
        for (u, addr, why) in [
            ("http://127.0.0.1/", "127.0.0.1", Forbidden::Loopback),
            (
                "http://127.0.0.1:8080/hook?token=s3cret",
                "127.0.0.1",
                Forbidden::Loopback,
            ),
            ("https://10.0.0.1/", "10.0.0.1", Forbidden::Private),
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
                Forbidden::LinkLocal,
            ),
            ("http://[::1]/", "::1", Forbidden::Loopback),
            (
                "http://[::ffff:127.0.0.1]/",
                "::ffff:127.0.0.1",
                Forbidden::Loopback,
            ),
            (
                "http://[0:0:0:0:0:ffff:7f00:0001]/",
                "::ffff:127.0.0.1",
                Forbidden::Loopback,
            ),
            ("http://0.0.0.0/", "0.0.0.0", Forbidden::Unspecified),
            ("http://[::]/", "::", Forbidden::Unspecified),
            // The WHATWG IPv4 parser: decimal, octal, hex, short forms, trailing dot.
            ("http://2130706433/", "127.0.0.1", Forbidden::Loopback),
            ("http://0177.0.0.1/", "127.0.0.1", Forbidden::Loopback),
            ("http://0x7f.0.0.1/", "127.0.0.1", Forbidden::Loopback),
            ("http://0x7f000001/", "127.0.0.1", Forbidden::Loopback),
            ("http://127.1/", "127.0.0.1", Forbidden::Loopback),
            ("http://127.0.0.1./", "127.0.0.1", Forbidden::Loopback),
            ("http://0/", "0.0.0.0", Forbidden::Unspecified),
            (
                "http://0xa9fea9fe/",
                "169.254.169.254",
                Forbidden::LinkLocal,
            ),
            ("http://%31%32%37.0.0.1/", "127.0.0.1", Forbidden::Loopback),
            ("http://１２７.0.0.1/", "127.0.0.1", Forbidden::Loopback),
            (
                "HTTP://user:pw@127.0.0.1:80/",
                "127.0.0.1",
                Forbidden::Loopback,
            ),
        ] {
            let parsed = url(u);
            let host = parsed.host_str().unwrap().trim_matches(['[', ']']);
            assert_eq!(host.parse::<IpAddr>(), Ok(ip(addr)), "{u} has an IP host");
            let expected = Err(SsrfError::Forbidden {
                addr: ip(addr),
                why,
            });
            assert_eq!(policy.check_url(&parsed), expected, "{u}");
        }
    }

    #[test]
    fn refuses_other_schemes_and_accepts_public_hosts_and_names() {
        let policy = AddressPolicy::new();
        for (u, scheme) in [
            ("ftp://example.com/", "ftp"),
            ("file:///etc/passwd", "file"),
            ("gopher://127.0.0.1:6379/_INFO", "gopher"),
            ("ws://example.com/", "ws"),
            ("data:text/plain,hi", "data"),
        ] {
            assert_eq!(
                policy.check_url(&url(u)),
                Err(SsrfError::Scheme {
                    scheme: scheme.to_owned()
                }),
                "{u}"
            );
        }
        for u in [
            "https://example.com/hooks/pipe",
            "http://8.8.8.8/",
            "https://[2606:4700::1111]:8443/x",
            // Names pass check_url: the resolver judges their addresses.
            "http://localhost/",
            "http://metadata.google.internal/",
        ] {
            assert_eq!(policy.check_url(&url(u)), Ok(()), "{u}");
        }
    }

    #[test]
    fn errors_name_the_host_or_address_but_never_the_url() {
        let policy = AddressPolicy::new();
        let e = policy
            .check_url(&url(
                "http://169.254.169.254/latest/meta-data/?token=s3cret",
            ))
            .unwrap_err();
        let text = e.to_string();
        assert_eq!(
            text,
            "webhooks may not be sent to 169.254.169.254: the address is link-local (incl. cloud metadata)"
        );
        let e = policy.check_url(&url("file:///etc/passwd")).unwrap_err();
        assert!(!e.to_string().contains("passwd"), "{e}");
    }

    #[test]
    fn the_allow_list_readmits_exactly_what_it_names() {
        let policy = AddressPolicy::new().allow("127.0.0.1/32".parse::<IpNet>().unwrap());
        assert_eq!(policy.check_ip(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check_url(&url("http://127.0.0.1:3000/hook")), Ok(()));
        // The mapped form reaches the same address, so it is re-admitted too.
        assert_eq!(policy.check_ip(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(
            policy.check_ip(ip("127.0.0.2")),
            Err(SsrfError::Forbidden {
                addr: ip("127.0.0.2"),
                why: Forbidden::Loopback
            })
        );
        assert!(policy.check_ip(ip("::1")).is_err());
        assert!(policy.check_ip(ip("10.0.0.1")).is_err());

        let policy = AddressPolicy::new()
            .allow("10.1.0.0/16".parse::<IpNet>().unwrap())
            .allow(ip("::1"));
        assert_eq!(policy.check_ip(ip("10.1.255.255")), Ok(()));
        assert!(policy.check_ip(ip("10.2.0.0")).is_err());
        assert_eq!(policy.check_url(&url("http://[::1]:8080/")), Ok(()));
        assert_eq!(policy.check_ip(ip("8.8.8.8")), Ok(()));
        assert_eq!(policy.allowed().len(), 2);
    }

    #[test]
    fn networks_parse_strictly() {
        let net = |s: &str| s.parse::<IpNet>();
        assert_eq!(net("127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        assert_eq!(net("127.0.0.0/8").unwrap().to_string(), "127.0.0.0/8");
        assert_eq!(net("::1/128").unwrap().to_string(), "::1/128");
        assert_eq!(net("::1").unwrap().prefix_len(), 128);
        assert_eq!(net("0.0.0.0/0").unwrap().prefix_len(), 0);
        assert_eq!(net("::/0").unwrap().addr(), ip("::"));
        assert!(net("0.0.0.0/0").unwrap().contains(ip("203.0.113.9")));
        assert!(!net("0.0.0.0/0").unwrap().contains(ip("::1")));
        assert!(net("fc00::/7").unwrap().contains(ip("fdff::1")));
        assert!(!net("fc00::/7").unwrap().contains(ip("fe00::1")));

        for (input, e) in [
            ("localhost", "is not an IP address or network"),
            ("", "is not an IP address or network"),
            ("10.0.0/8", "is not an IP address or network"),
            ("[::1]", "is not an IP address or network"),
            ("10.0.0.0/33", "not a number from 0 to 32"),
            ("::/129", "not a number from 0 to 128"),
            ("10.0.0.0/", "not a number from 0 to 32"),
            ("10.0.0.0/+8", "not a number from 0 to 32"),
            ("10.0.0.0/8/8", "not a number from 0 to 32"),
            ("10.0.0.0/ 8", "not a number from 0 to 32"),
            ("10.0.0.1/8", "did you mean 10.0.0.0/8?"),
            ("::1/64", "did you mean ::/64?"),
        ] {
            let err = net(input).unwrap_err().to_string();
            assert!(err.contains(e), "{input}: {err}");
        }
        assert!(IpNet::new(ip("10.0.0.0"), 33).is_err());
        assert!(IpNet::new(ip("10.0.0.1"), 8).is_err());
        assert_eq!(
            IpNet::new(ip("10.0.0.0"), 8).unwrap(),
            net("10.0.0.0/8").unwrap()
        );
    }

    #[tokio::test]
    async fn names_are_resolved_and_their_addresses_checked() {
        let strict = AddressPolicy::new();
        let e = strict
            .resolver()
            .resolve_checked("localhost", 0)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                SsrfError::Forbidden {
                    why: Forbidden::Loopback,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = strict
            .check_url_resolving(&url("http://localhost:8080/hook"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                SsrfError::Forbidden {
                    why: Forbidden::Loopback,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            strict
                .check_url_resolving(&url("http://127.0.0.1/"))
                .await
                .is_err()
        );
        assert!(
            strict
                .check_url_resolving(&url("ftp://localhost/"))
                .await
                .is_err()
        );

        let open = AddressPolicy::new()
            .allow("127.0.0.0/8".parse::<IpNet>().unwrap())
            .allow(ip("::1"));
        let addrs = open
            .resolver()
            .resolve_checked("localhost", 8080)
            .await
            .unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080),
            "{addrs:?}"
        );
        assert_eq!(
            open.check_url_resolving(&url("http://localhost:8080/hook"))
                .await,
            Ok(())
        );

        let e = strict
            .check_url_resolving(&url("http://no-such-host.invalid/"))
            .await
            .unwrap_err();
        assert!(matches!(e, SsrfError::Resolve { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn a_client_with_the_guard_refuses_names_that_resolve_inside() {
        use std::error::Error as _;

        // A receiver on loopback that would answer if the guard let the request through.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });

        let strict = AddressPolicy::new().client_builder().build().unwrap();
        let e = strict
            .get(format!("http://localhost:{port}/hook?token=s3cret"))
            .send()
            .await
            .unwrap_err();
        let mut ssrf = None;
        let mut source = e.source();
        while let Some(cause) = source {
            if let Some(found) = cause.downcast_ref::<SsrfError>() {
                ssrf = Some(found.clone());
            }
            source = cause.source();
        }
        assert!(
            matches!(
                ssrf,
                Some(SsrfError::Forbidden {
                    why: Forbidden::Loopback,
                    ..
                })
            ),
            "{e:?}"
        );

        let policy = AddressPolicy::new().allow(ip("127.0.0.1"));
        let open = policy.client_builder().build().unwrap();
        let u = url(&format!("http://127.0.0.1:{port}/hook"));
        assert_eq!(policy.check_url(&u), Ok(()));
        let status = open.get(u).send().await.unwrap().status();
        assert_eq!(status.as_u16(), 204);
        server.abort();
    }
}
