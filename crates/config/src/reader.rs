//! Typed reads of single variables. Each read records the name (so unknown names can be found afterwards) and turns
//! a bad value into one error line that names the variable and the value; parsing then goes on with the default so
//! that every error is found in one pass.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub(crate) struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    pub(crate) errors: Vec<String>,
    pub(crate) warnings: Vec<String>,
    pub(crate) read: HashSet<&'static str>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(vars: &'a HashMap<String, String>) -> Self {
        Self {
            vars,
            errors: Vec::new(),
            warnings: Vec::new(),
            read: HashSet::new(),
        }
    }

    /// The value, or `None` when unset. An empty value counts as unset: `SNIKKET_X=` in an env file is how people
    /// blank a setting, and treating it as "use the default" is what the Snikket documentation implies.
    pub(crate) fn raw(&mut self, name: &'static str) -> Option<&'a str> {
        self.read.insert(name);
        let vars: &'a HashMap<String, String> = self.vars;
        vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub(crate) fn error(&mut self, name: &str, value: &str, reason: impl std::fmt::Display) {
        self.errors.push(format!("{name}={value:?}: {reason}"));
    }

    pub(crate) fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    pub(crate) fn string(&mut self, name: &'static str) -> Option<String> {
        self.raw(name).map(str::to_owned)
    }

    /// Parses with `parse`, which returns a reason on failure; falls back to `default` after recording the error.
    pub(crate) fn parsed<T>(
        &mut self,
        name: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        self.optional(name, parse).unwrap_or(default)
    }

    pub(crate) fn optional<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.raw(name)?;
        match parse(value) {
            Ok(v) => Some(v),
            Err(reason) => {
                self.error(name, value, reason);
                None
            }
        }
    }

    /// A TCP or UDP port; 0 is allowed and means "this listener is off".
    pub(crate) fn port(&mut self, name: &'static str, default: u16) -> u16 {
        self.parsed(name, default, |v| {
            number::<u16>(v)
                .map_err(|_| "not a port number (0 to 65535; 0 turns the listener off)".to_owned())
        })
    }

    /// A port that must be a real port (the TURN relay range).
    pub(crate) fn nonzero_port(&mut self, name: &'static str, default: u16) -> u16 {
        self.parsed(name, default, |v| match number::<u16>(v) {
            Ok(0) | Err(_) => Err("not a port number (1 to 65535)".to_owned()),
            Ok(p) => Ok(p),
        })
    }

    /// Snikket's "on unless `0`" switches (`ENV ~= "0"` in its Lua config).
    pub(crate) fn on_unless_zero(&mut self, name: &'static str) -> bool {
        self.switch(name, true)
    }

    /// Snikket's "off unless `1`" switches (`ENV == "1"`).
    pub(crate) fn off_unless_one(&mut self, name: &'static str) -> bool {
        self.switch(name, false)
    }

    /// Only `0` and `1` are accepted. Snikket compares strings, so any other value silently means the default there;
    /// an error here shows the operator that the setting never did what they meant.
    fn switch(&mut self, name: &'static str, default: bool) -> bool {
        self.parsed(name, default, |v| match v.trim() {
            "1" => Ok(true),
            "0" => Ok(false),
            _ => Err(format!(
                "not a switch: use 1 (on) or 0 (off); the default is {}",
                u8::from(default)
            )),
        })
    }

    pub(crate) fn unsigned<T: FromStr>(&mut self, name: &'static str, default: T, what: &str) -> T {
        self.parsed(name, default, |v| {
            number::<T>(v).map_err(|_| format!("not {what}"))
        })
    }

    pub(crate) fn seconds(&mut self, name: &'static str, default: Duration) -> Duration {
        self.parsed(name, default, |v| {
            number::<u64>(v)
                .map(Duration::from_secs)
                .map_err(|_| "not a whole number of seconds".to_owned())
        })
    }

    /// Gigabytes as Snikket takes them: a decimal number (1.5 is fine), multiplied by 1024³.
    pub(crate) fn gigabytes(&mut self, name: &'static str) -> Option<f64> {
        self.optional(name, |v| match v.trim().parse::<f64>() {
            Ok(gb) if gb.is_finite() && gb >= 0.0 => Ok(gb),
            _ => {
                Err("not a size in gigabytes (a number such as 1 or 1.5, not negative)".to_owned())
            }
        })
    }

    pub(crate) fn email(&mut self, name: &'static str) -> Option<String> {
        self.optional(name, |v| {
            // Snikket puts `mailto:` in front itself; people who wrote it too would otherwise get it twice.
            let v = v.trim();
            let address = v
                .get(..7)
                .filter(|p| p.eq_ignore_ascii_case("mailto:"))
                .map_or(v, |_| &v[7..]);
            check_email(address).map(|()| address.to_owned())
        })
    }

    pub(crate) fn uri(&mut self, name: &'static str) -> Option<String> {
        self.optional(name, |v| check_uri(v.trim()).map(|()| v.trim().to_owned()))
    }

    pub(crate) fn ip_list(&mut self, name: &'static str, default: Vec<IpAddr>) -> Vec<IpAddr> {
        self.parsed(name, default, parse_ip_list)
    }

    pub(crate) fn existing_file(&mut self, name: &'static str) -> Option<PathBuf> {
        self.optional(name, |v| {
            let path = PathBuf::from(v);
            if path.is_file() {
                Ok(path)
            } else {
                Err("no such file".to_owned())
            }
        })
    }
}

/// Numbers may have surrounding spaces (Lua's `tonumber`, which Snikket uses, allows them too).
pub(crate) fn number<T: FromStr>(v: &str) -> Result<T, T::Err> {
    v.trim().parse::<T>()
}

/// Light validation: one `@`, something on both sides, a dot-free host is fine (`admin@localhost` in tests).
pub(crate) fn check_email(v: &str) -> Result<(), String> {
    match v.split_once('@') {
        Some((local, host))
            if !local.is_empty()
                && !host.is_empty()
                && !host.contains('@')
                && !v.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(())
        }
        _ => Err("not an e-mail address (expected name@host)".to_owned()),
    }
}

/// Light validation of an absolute URI: a scheme, a colon, something after it, no spaces.
pub(crate) fn check_uri(v: &str) -> Result<(), String> {
    let valid = v.split_once(':').is_some_and(|(scheme, rest)| {
        let mut chars = scheme.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.is_empty()
    }) && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err("not an absolute URI (such as https://example.com/terms)".to_owned())
    }
}

/// Like Snikket's `split()` for interface lists: commas and spaces both separate. `*` is Prosody's name for "every
/// IPv4 address"; brackets around IPv6 addresses are tolerated. Duplicates are dropped, order kept.
pub(crate) fn parse_ip_list(v: &str) -> Result<Vec<IpAddr>, String> {
    let mut addresses = Vec::new();
    for item in v.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
        let ip = if item == "*" {
            IpAddr::from([0, 0, 0, 0])
        } else {
            item.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| format!("{item:?} is not an IP address"))?
        };
        if !addresses.contains(&ip) {
            addresses.push(ip);
        }
    }
    if addresses.is_empty() {
        Err("lists no address".to_owned())
    } else {
        Ok(addresses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shapes() {
        assert!(check_email("admin@example.com").is_ok());
        assert!(check_email("admin@localhost").is_ok());
        for bad in [
            "",
            "admin",
            "@example.com",
            "admin@",
            "a@b@c",
            "a b@example.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uri_shapes() {
        assert!(check_uri("https://example.com/tos").is_ok());
        assert!(check_uri("mailto:x@y").is_ok());
        for bad in [
            "",
            "example.com",
            "://x",
            "1http://x",
            "https://a b",
            "https:",
        ] {
            assert!(check_uri(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ip_lists() {
        assert_eq!(
            parse_ip_list("127.0.0.1, ::1 [::1] *").unwrap(),
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap(),
                "0.0.0.0".parse().unwrap()
            ]
        );
        assert!(parse_ip_list(" , ").is_err());
        assert!(parse_ip_list("localhost").is_err());
    }
}
