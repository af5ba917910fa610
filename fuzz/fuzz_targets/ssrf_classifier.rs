//! The SSRF guard (pipe-webhook's `classify`, `AddressPolicy`, `IpNet`) on arbitrary
//! bytes: it never panics; an IPv6 form of an IPv4 address (mapped, NAT64, 6to4) is judged
//! as that address; every address std itself calls loopback, private, link-local,
//! unique-local, multicast, broadcast, documentation or unspecified is refused; the
//! allow-list re-admits what it names; and a URL the guard lets through never has a
//! forbidden IP host, whatever spelling the URL parser turned into it.
//!
//! Input: the first 16 bytes as an IPv6 address, the first 4 as an IPv4 address, the
//! whole input (as UTF-8) as a URL host, a URL, and a network. Run: `cargo fuzz run
//! ssrf_classifier` (from the repository root).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use pipe_webhook::{AddressPolicy, IpNet, SsrfError, classify};
use reqwest::Url;

fuzz_target!(|data: &[u8]| {
    let policy = AddressPolicy::new();

    if let Some(bytes) = data.first_chunk::<16>() {
        let v6 = Ipv6Addr::from(*bytes);
        addresses(&policy, IpAddr::V6(v6));
        let std_says = std_forbids_v6(v6);
        assert!(
            !std_says || classify(IpAddr::V6(v6)).is_some(),
            "{v6} is special to std but allowed"
        );
    }

    if let Some(bytes) = data.first_chunk::<4>() {
        let v4 = Ipv4Addr::from(*bytes);
        let why = classify(IpAddr::V4(v4));
        addresses(&policy, IpAddr::V4(v4));
        assert!(
            !std_forbids_v4(v4) || why.is_some(),
            "{v4} is special to std but allowed"
        );

        // The IPv6 forms that reach the IPv4 address: judged as it is.
        let bits = u128::from(v4.to_bits());
        let rest = data.get(4..14).map_or(0, |r| {
            r.iter().fold(0u128, |acc, &b| acc << 8 | u128::from(b))
        });
        for (form, v6) in [
            ("mapped", v4.to_ipv6_mapped()),
            ("NAT64", Ipv6Addr::from_bits(0x0064_ff9b << 96 | bits)),
            (
                "6to4",
                Ipv6Addr::from_bits(0x2002 << 112 | bits << 80 | (rest & ((1 << 80) - 1))),
            ),
        ] {
            assert_eq!(classify(IpAddr::V6(v6)), why, "{form} {v6} of {v4}");
        }
        // The deprecated IPv4-compatible form is never allowed.
        let compatible = Ipv6Addr::from_bits(bits);
        assert!(classify(IpAddr::V6(compatible)).is_some(), "{compatible}");
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    // As a host: whatever the WHATWG parser makes of it (decimal, octal, hex IPv4…).
    if let Ok(url) = Url::parse(&format!("http://{text}/")) {
        url_verdict(&policy, &url);
    }
    // As a whole URL: only http(s) with a host gets through.
    if let Ok(url) = Url::parse(text) {
        if url_verdict(&policy, &url) {
            assert!(matches!(url.scheme(), "http" | "https"), "{url}");
        }
    }
    // As a network: written out, it reads back the same, and it holds its own address.
    if let Ok(net) = text.parse::<IpNet>() {
        assert_eq!(net.to_string().parse::<IpNet>(), Ok(net), "{text}");
        assert!(net.contains(net.addr()), "{net}");
        let policy = AddressPolicy::new().allow(net);
        assert_eq!(policy.check_ip(net.addr()), Ok(()), "{net}");
    }
});

/// Put in the path and query of a URL: must not appear in an error.
const MARK: &str = "pathorquerymarker";

/// What the policy says of `ip`, alone and with an allow-list.
fn addresses(policy: &AddressPolicy, ip: IpAddr) {
    let why = classify(ip);
    assert_eq!(classify(ip), why, "deterministic");
    match (policy.check_ip(ip), why) {
        (Ok(()), None) => {}
        (Err(SsrfError::Forbidden { addr, why: w }), Some(why)) => {
            assert_eq!((addr, w), (ip, why), "{ip}");
        }
        (verdict, why) => panic!("{ip}: check_ip {verdict:?} but classify {why:?}"),
    }
    // Allowing the address re-admits it (and its IPv4-mapped form), and nothing else in
    // its family but what was already allowed.
    let allowed = AddressPolicy::new().allow(ip);
    assert_eq!(allowed.check_ip(ip), Ok(()), "{ip}");
    if let IpAddr::V4(v4) = ip {
        assert_eq!(
            allowed.check_ip(IpAddr::V6(v4.to_ipv6_mapped())),
            Ok(()),
            "{ip}"
        );
    }
    let neighbour = match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from_bits(v4.to_bits() ^ 1)),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() ^ 1)),
    };
    if neighbour.to_canonical() != ip.to_canonical() {
        assert_eq!(
            allowed.check_ip(neighbour).is_ok(),
            policy.check_ip(neighbour).is_ok(),
            "allowing {ip} changed {neighbour}"
        );
    }
}

/// The guard's verdict on a URL, checked against the host as hyper would connect to it:
/// brackets stripped, anything that parses as an IP address connected to directly.
/// Whether the URL was let through.
fn url_verdict(policy: &AddressPolicy, url: &Url) -> bool {
    let verdict = policy.check_url(url);
    let literal = url.host_str().and_then(|host| {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        bare.parse::<IpAddr>().ok()
    });
    match &verdict {
        Ok(()) => {
            assert!(matches!(url.scheme(), "http" | "https"), "{url}");
            assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url}");
            if let Some(ip) = literal {
                assert_eq!(classify(ip), None, "{url} let through");
            }
        }
        Err(SsrfError::Forbidden { addr, why }) => {
            assert_eq!(literal, Some(*addr), "{url}");
            assert_eq!(classify(*addr), Some(*why), "{url}");
        }
        Err(SsrfError::Scheme { scheme }) => {
            assert!(!matches!(url.scheme(), "http" | "https"), "{url}");
            assert_eq!(scheme, url.scheme());
        }
        Err(SsrfError::NoHost) => {
            assert!(url.host_str().is_none_or(str::is_empty), "{url}");
        }
        Err(e) => panic!("{url}: check_url does not resolve, yet {e:?}"),
    }
    // The verdict does not depend on the path or query, and never quotes them.
    if !url.cannot_be_a_base() {
        let mut marked = url.clone();
        marked.set_path(&format!("/{MARK}"));
        marked.set_query(Some(MARK));
        let again = policy.check_url(&marked);
        assert_eq!(again, verdict, "{url}");
        if let Err(e) = again {
            let text = e.to_string();
            let named = format!("{} {}", url.scheme(), url.host_str().unwrap_or_default());
            assert!(
                !text.contains(MARK) || named.contains(MARK),
                "{text} quotes {marked}"
            );
        }
    }
    verdict.is_ok()
}

/// IPv4 addresses std's own predicates call special: the guard must refuse them all.
fn std_forbids_v4(ip: Ipv4Addr) -> bool {
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
}

/// IPv6 addresses std's own predicates call special, and IPv4-mapped forms of special
/// IPv4 addresses.
fn std_forbids_v6(ip: Ipv6Addr) -> bool {
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || ip.to_ipv4_mapped().is_some_and(std_forbids_v4)
}
