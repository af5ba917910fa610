//! The host whitelist checked on the `Origin` of every ingest request.

use std::fmt;
use std::str::FromStr;

/// Hosts allowed to embed the recorder, by the rules of the hosted Pipe's allowed-domains
/// setting: host names (`example.com`), the port ignored; `*.example.com` matches one
/// level of subdomain (`a.example.com`, not `a.b.example.com`, not the apex) and
/// `*.*.example.com` two. An empty list allows every host.
///
/// One addition of ours, for pages told apart only by their port (apps on one intranet
/// host, a developer's `localhost`): an entry that names a port (`localhost:8080`)
/// matches only that port. An entry without one, as Pipe's, matches any.
///
/// ```
/// use pipe_core::HostAllowList;
///
/// let hosts: HostAllowList = "example.com, *.example.org, localhost:8080".parse().unwrap();
/// assert!(hosts.allows_origin("https://example.com:8443"));
/// assert!(hosts.allows_origin("https://a.example.org"));
/// assert!(!hosts.allows_origin("https://a.b.example.org"));
/// assert!(!hosts.allows_origin("https://example.org"));
/// assert!(hosts.allows_origin("http://localhost:8080"));
/// assert!(!hosts.allows_origin("http://localhost:9090"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HostAllowList {
    entries: Vec<Entry>,
}

#[derive(Clone, PartialEq, Eq)]
struct Entry {
    /// Lowercase host; for a wildcard, the suffix after the `*.`s.
    host: String,
    /// How many labels the `*.`s in front stand for (0: an exact name).
    wild: usize,
    port: Option<u16>,
}

impl HostAllowList {
    /// A list that allows every host.
    pub fn any() -> Self {
        Self::default()
    }

    /// A list of `entries`, each one host pattern (no commas).
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, HostListError> {
        let mut list = Self::any();
        for entry in entries {
            if entry.contains(',') || entry.trim().is_empty() {
                return Err(HostListError {
                    entry: entry.to_owned(),
                    why: "one host per entry",
                });
            }
            list.entries.extend(entry.parse::<Self>()?.entries);
        }
        Ok(list)
    }

    /// The entries in their canonical form (`*.example.com`, `localhost:8080`), as
    /// [`HostAllowList::from_entries`] reads them.
    pub fn entries(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| {
                let star = "*.".repeat(e.wild);
                let host = if e.host.contains(':') {
                    format!("[{}]", e.host)
                } else {
                    e.host.clone()
                };
                match e.port {
                    Some(p) => format!("{star}{host}:{p}"),
                    None => format!("{star}{host}"),
                }
            })
            .collect()
    }

    /// Whether every host is allowed.
    pub fn allows_any(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a request with this `Origin` header value may use the ingest. A missing,
    /// opaque (`null`) or malformed origin is allowed only by an empty list.
    pub fn allows_origin(&self, origin: &str) -> bool {
        if self.allows_any() {
            return true;
        }
        let Some((host, port)) = parse_origin(origin) else {
            return false;
        };
        self.entries.iter().any(|e| {
            let host_ok = match e.wild {
                0 => host == e.host,
                wild => host
                    .strip_suffix(e.host.as_str())
                    .and_then(|rest| rest.strip_suffix('.'))
                    .is_some_and(|labels| {
                        labels.split('.').count() == wild
                            && labels.split('.').all(|label| !label.is_empty())
                    }),
            };
            host_ok && e.port.is_none_or(|p| Some(p) == port)
        })
    }
}

/// `scheme://host[:port]` to a lowercase host and the explicit or default port.
fn parse_origin(origin: &str) -> Option<(String, Option<u16>)> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    let authority = rest.split('/').next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let (host, port) = split_host_port(authority)?;
    Some((host.to_ascii_lowercase(), port.or(default_port)))
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host, port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((s, None)),
    }
}

/// Why a host list did not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid allowed host {entry:?}: {why}")]
pub struct HostListError {
    entry: String,
    why: &'static str,
}

impl FromStr for HostAllowList {
    type Err = HostListError;

    /// Comma-separated entries; blanks around them are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let entries = s
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|raw| {
                let err = |why| HostListError {
                    entry: raw.to_owned(),
                    why,
                };
                let (mut wild, mut rest) = (0, raw);
                while let Some(after) = rest.strip_prefix("*.") {
                    (wild, rest) = (wild + 1, after);
                }
                if rest.contains("://") || rest.contains('/') {
                    return Err(err("give a host name, not a URL"));
                }
                let (host, port) = split_host_port(rest).ok_or_else(|| err("bad port"))?;
                let valid = !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
                if !valid || host.contains('*') {
                    return Err(err(
                        "a host is letters, digits, '-' and '.', optionally after '*.'",
                    ));
                }
                Ok(Entry {
                    host: host.to_ascii_lowercase(),
                    wild,
                    port,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }
}

impl fmt::Debug for HostAllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostAllowList[")?;
        for (i, e) in self.entries.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{}{}", "*.".repeat(e.wild), e.host)?;
            if let Some(p) = e.port {
                write!(f, ":{p}")?;
            }
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> HostAllowList {
        s.parse().unwrap()
    }

    #[test]
    fn entries_read_back_as_the_same_list() {
        let hosts = list("Example.com, *.example.org, localhost:8080, [::1]:9000");
        let again = HostAllowList::from_entries(hosts.entries().iter().map(String::as_str));
        assert_eq!(again.unwrap(), hosts);
        assert!(HostAllowList::from_entries(["a.com,b.com"]).is_err());
    }

    #[test]
    fn empty_list_allows_everything() {
        assert!(list("").allows_origin("https://evil.example"));
        assert!(list(" , ").allows_origin("null"));
    }

    #[test]
    fn exact_names_match_case_insensitively() {
        let l = list("Example.com");
        assert!(l.allows_origin("https://EXAMPLE.com"));
        assert!(!l.allows_origin("https://example.com.evil.net"));
        assert!(!l.allows_origin("https://notexample.com"));
        assert!(!l.allows_origin("null"));
        assert!(!l.allows_origin(""));
    }

    #[test]
    fn each_wildcard_matches_one_level_of_subdomain_as_in_pipe() {
        let l = list("*.example.com");
        assert!(l.allows_origin("https://a.example.com"));
        assert!(l.allows_origin("https://a.example.com:444"));
        assert!(!l.allows_origin("https://x.y.example.com"));
        assert!(!l.allows_origin("https://example.com"));
        assert!(!l.allows_origin("https://aexample.com"));
        assert!(!l.allows_origin("https://.example.com"));
        let two = list("*.*.example.com");
        assert!(two.allows_origin("https://x.y.example.com"));
        assert!(!two.allows_origin("https://y.example.com"));
        assert!(!two.allows_origin("https://w.x.y.example.com"));
        assert!(!two.allows_origin("https://x..example.com"));
        assert_eq!(two.entries(), ["*.*.example.com"]);
    }

    #[test]
    fn the_port_is_ignored_unless_an_entry_names_one() {
        assert!(list("example.com").allows_origin("https://example.com:8443"));
        assert!(list("example.com").allows_origin("http://example.com"));
        let l = list("127.0.0.1:8080, [::1]:9000");
        assert!(l.allows_origin("http://127.0.0.1:8080"));
        assert!(!l.allows_origin("http://127.0.0.1"));
        assert!(l.allows_origin("http://[::1]:9000"));
        assert!(list("example.com:443").allows_origin("https://example.com"));
    }

    #[test]
    fn urls_and_junk_are_refused_at_parse_time() {
        for bad in [
            "https://example.com",
            "exa mple.com",
            "a.*.x",
            "*x.com",
            "a.com:port",
            "a/b",
        ] {
            assert!(bad.parse::<HostAllowList>().is_err(), "{bad:?} accepted");
        }
    }
}
