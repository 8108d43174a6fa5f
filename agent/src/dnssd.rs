//! DNS-SD service types: the one place that says what `http`, `_http._tcp`
//! or `_ipp._tcp.local` mean, for the config (`option type`), the console
//! (`cloudy publish`, `cloudy search`) and the mDNS engine alike.
//!
//! A service type is `_NAME._PROTO` (RFC 6763 §7): "the first label is
//! the application protocol name \[RFC6335\] preceded by an underscore
//! character", and "the second label is either `_tcp` ... or `_udp`".
//! Accepted forms (protocol and `local` compared ignoring case):
//!
//! | written              | means        |
//! |----------------------|--------------|
//! | `http`               | `_http._tcp` |
//! | `_http._tcp`         | `_http._tcp` |
//! | `_printer._udp`      | `_printer._udp` |
//! | `_http._tcp.local`, `_http._tcp.local.` | `_http._tcp` (mDNS's own domain) |
//!
//! The service name follows RFC 6335 §5.1 (quoted in [`check_service_name`]).
//! Subtypes (`_printer._sub._http._tcp`, RFC 6763 §7.1) and other domains
//! are refused.
//!
//! Invariants: [`parse_type`] accepts exactly the strings whose
//! [`ServiceType::normalized`] form it accepts again, unchanged (a fixed
//! point); nothing here allocates except `normalized`, and nothing panics.

use std::fmt;

/// Longest service name (RFC 6335 §5.1, RFC 6763 §7.2): 15 characters.
pub const MAX_SERVICE_NAME_LEN: usize = 15;

/// The transport label of a service type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// `_tcp` or `_udp`.
    pub fn label(self) -> &'static str {
        match self {
            Proto::Tcp => "_tcp",
            Proto::Udp => "_udp",
        }
    }
}

/// A parsed service type; `name` is the service name as written (case
/// kept, without the leading `_`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceType<'a> {
    pub name: &'a str,
    pub proto: Proto,
}

impl ServiceType<'_> {
    /// `_name._tcp`, lower case: the form the config stores and compares.
    pub fn normalized(&self) -> String {
        format!("_{}.{}", self.name.to_ascii_lowercase(), self.proto.label())
    }
}

/// Why a service name breaks RFC 6335 §5.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    /// A character other than a letter, a digit or '-'.
    BadChar,
    NoLetter,
    /// '-' first or last.
    EdgeHyphen,
    /// "--".
    DoubleHyphen,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "the service name is empty",
            NameError::TooLong => "the service name is longer than 15 characters",
            NameError::BadChar => {
                "the service name has a character other than a letter, digit or '-'"
            }
            NameError::NoLetter => "the service name has no letter",
            NameError::EdgeHyphen => "the service name starts or ends with '-'",
            NameError::DoubleHyphen => "the service name has '--'",
        })
    }
}

/// Why a string is not a service type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeError {
    /// `_http` without `._tcp` or `._udp`.
    MissingProto,
    /// A second label other than `_tcp` / `_udp` (also a subtype's `_sub`).
    BadProto,
    /// A domain after the protocol other than `local`.
    Domain,
    BadName(NameError),
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeError::MissingProto => f.write_str("the protocol (_tcp or _udp) is missing"),
            TypeError::BadProto => f.write_str("the protocol is not _tcp or _udp"),
            TypeError::Domain => f.write_str("a domain other than .local follows the protocol"),
            TypeError::BadName(e) => e.fmt(f),
        }
    }
}

/// RFC 6335 §5.1: "Valid service names are hereby normatively defined as
/// follows: MUST be at least 1 character and no more than 15 characters
/// long; MUST contain only US-ASCII letters 'A' - 'Z' and 'a' - 'z', digits
/// '0' - '9', and hyphens ('-', ASCII 0x2D or decimal 45); MUST contain at
/// least one letter ('A' - 'Z' or 'a' - 'z'); MUST NOT begin or end with a
/// hyphen; hyphens MUST NOT be adjacent to other hyphens."
pub fn check_service_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > MAX_SERVICE_NAME_LEN {
        return Err(NameError::TooLong);
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(NameError::BadChar);
    }
    if !s.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(NameError::NoLetter);
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(NameError::EdgeHyphen);
    }
    if s.contains("--") {
        return Err(NameError::DoubleHyphen);
    }
    Ok(())
}

/// Whether `s` is a valid service name (see [`check_service_name`]).
pub fn is_valid_service_name(s: &str) -> bool {
    check_service_name(s).is_ok()
}

/// Strip a trailing `.local` or `.local.` (any case).
fn strip_local(s: &str) -> &str {
    let s = s.strip_suffix('.').map_or(s, |t| {
        // A trailing dot is only the root after `local`.
        if ends_with_local(t) {
            t
        } else {
            s
        }
    });
    if ends_with_local(s) {
        &s[..s.len() - ".local".len()]
    } else {
        s
    }
}

fn ends_with_local(s: &str) -> bool {
    s.len() >= ".local".len()
        && s.is_char_boundary(s.len() - ".local".len())
        && s[s.len() - ".local".len()..].eq_ignore_ascii_case(".local")
}

/// Parse a service type in one of the forms of the module doc.
pub fn parse_type(s: &str) -> Result<ServiceType<'_>, TypeError> {
    let Some(rest) = s.strip_prefix('_') else {
        // A bare service name means TCP (`http` → `_http._tcp`).
        check_service_name(s).map_err(TypeError::BadName)?;
        return Ok(ServiceType {
            name: s,
            proto: Proto::Tcp,
        });
    };
    let rest = strip_local(rest);
    let Some((name, after)) = rest.split_once('.') else {
        return Err(TypeError::MissingProto);
    };
    let (proto, domain) = match after.split_once('.') {
        Some((p, d)) => (p, Some(d)),
        None => (after, None),
    };
    let proto = if proto.eq_ignore_ascii_case("_tcp") {
        Proto::Tcp
    } else if proto.eq_ignore_ascii_case("_udp") {
        Proto::Udp
    } else {
        return Err(TypeError::BadProto);
    };
    if domain.is_some() {
        return Err(TypeError::Domain);
    }
    check_service_name(name).map_err(TypeError::BadName)?;
    Ok(ServiceType { name, proto })
}

/// DNS-SD type a storage box publishes (docs/store.md, "Placement").
pub const STORE_SERVICE_TYPE: &str = "_cloudy-store._tcp";

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Result<String, TypeError> {
        parse_type(s).map(|t| t.normalized())
    }

    #[test]
    fn service_names_rfc6335() {
        for good in [
            "http",
            "x",
            "9p2000",
            "a-b-c",
            "abcdefghijklmno",
            "HTTP",
            "a1",
        ] {
            assert_eq!(check_service_name(good), Ok(()), "{good}");
        }
        let bad = [
            ("", NameError::Empty),
            ("abcdefghijklmnop", NameError::TooLong),
            ("a_b", NameError::BadChar),
            ("a.b", NameError::BadChar),
            ("caf\u{e9}", NameError::BadChar),
            ("123", NameError::NoLetter),
            ("-", NameError::NoLetter),
            ("-http", NameError::EdgeHyphen),
            ("http-", NameError::EdgeHyphen),
            ("a--b", NameError::DoubleHyphen),
        ];
        for (s, e) in bad {
            assert_eq!(check_service_name(s), Err(e), "{s}");
            assert!(!is_valid_service_name(s));
        }
    }

    #[test]
    fn type_forms() {
        let good = [
            ("http", "_http._tcp"),
            ("_http._tcp", "_http._tcp"),
            ("_printer._udp", "_printer._udp"),
            ("_Http._TCP", "_http._tcp"),
            ("_http._tcp.local", "_http._tcp"),
            ("_http._tcp.local.", "_http._tcp"),
            ("_IPP._udp.LOCAL", "_ipp._udp"),
            ("a-b", "_a-b._tcp"),
        ];
        for (s, want) in good {
            assert_eq!(norm(s).as_deref(), Ok(want), "{s}");
            // The normalised form is a fixed point.
            assert_eq!(norm(want).as_deref(), Ok(want), "{want}");
        }
        // Case is kept in the name itself (the mDNS engine sends it so).
        assert_eq!(parse_type("_IPP._udp").map(|t| t.name), Ok("IPP"));
        let bad = [
            ("_http", TypeError::MissingProto),
            ("_http.local", TypeError::MissingProto),
            ("_http._sctp", TypeError::BadProto),
            ("_http.tcp", TypeError::BadProto),
            ("_sub._http._tcp", TypeError::BadProto),
            ("_x._tcp.foo", TypeError::Domain),
            ("_http._tcp.", TypeError::Domain),
            ("_http._tcp.local..", TypeError::Domain),
            ("http._tcp", TypeError::BadName(NameError::BadChar)),
            ("http.local", TypeError::BadName(NameError::BadChar)),
            ("__http._tcp", TypeError::BadName(NameError::BadChar)),
            ("_._tcp", TypeError::BadName(NameError::Empty)),
            ("", TypeError::BadName(NameError::Empty)),
            (
                "_0123456789abcdef._tcp",
                TypeError::BadName(NameError::TooLong),
            ),
            // Where the config and the mDNS engine used to disagree.
            ("_123._tcp", TypeError::BadName(NameError::NoLetter)),
            ("_a--b._tcp", TypeError::BadName(NameError::DoubleHyphen)),
            ("_-ab._tcp", TypeError::BadName(NameError::EdgeHyphen)),
            ("123", TypeError::BadName(NameError::NoLetter)),
        ];
        for (s, e) in bad {
            assert_eq!(norm(s), Err(e), "{s}");
        }
        // Multi-byte text never splits a character.
        assert!(parse_type("_\u{e9}local").is_err());
        assert!(parse_type("_a._tcp\u{e9}local").is_err());
    }

    /// The config's normaliser and the mDNS engine read every type alike:
    /// both accept it (meaning the same type) or both refuse it.
    #[cfg(feature = "discovery")]
    #[test]
    fn config_and_mdns_agree() {
        let cases = [
            "http",
            "_http._tcp",
            "_http._tcp.local",
            "_http._tcp.local.",
            "_IPP._UDP",
            "_123._tcp",
            "_a--b._tcp",
            "_-a._tcp",
            "_a-._tcp",
            "a--b",
            "123",
            "_a_b._tcp",
            "_x._tcp.foo",
            "_http._tcp.",
            "_http",
            "http.",
            "_sub._http._tcp",
            "_abcdefghijklmno._udp",
            "_abcdefghijklmnop._udp",
            "",
        ];
        for s in cases {
            let config = crate::config::uci::normalize_service_type(s);
            let mdns = crate::mdns::parse_service_type(s);
            match (&config, &mdns) {
                (Ok(c), Ok(m)) => assert!(
                    m.to_string().eq_ignore_ascii_case(&format!("{c}.local")),
                    "{s}: {c} vs {m}"
                ),
                (Err(_), Err(_)) => {}
                _ => panic!("{s}: config {config:?}, mdns {mdns:?}"),
            }
        }
    }
}
