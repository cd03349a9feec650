use std::fmt;
use std::str::FromStr;

/// A user's role, with Snikket's names (`spec/snikket-compat.md` §7). Stored as Prosody's role name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// Administrator (`prosody:admin`).
    Admin,
    /// Normal user (`prosody:registered`), the default for new accounts.
    #[default]
    Normal,
    /// Limited user (`prosody:restricted`): no federation.
    Limited,
}

impl Role {
    /// Prosody's name, as stored and as carried in OAuth scopes.
    pub fn prosody_name(self) -> &'static str {
        match self {
            Self::Admin => "prosody:admin",
            Self::Normal => "prosody:registered",
            Self::Limited => "prosody:restricted",
        }
    }

    /// Snikket's name, as the portal and the CLI use it.
    pub fn snikket_name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Normal => "normal",
            Self::Limited => "limited",
        }
    }
}

impl Role {
    /// Whether the role may talk to other servers (Prosody's `xmpp:federate` permission, which Snikket grants to
    /// Normal users and administrators, not to Limited ones: `spec/snikket-compat.md` §7). Rookery has no
    /// federation yet; the server-to-server code asks this for every stanza a local user sends to, or receives
    /// from, a remote domain once it lands.
    pub fn may_federate(self) -> bool {
        match self {
            Self::Admin | Self::Normal => true,
            Self::Limited => false,
        }
    }
}

/// Displays Snikket's name.
impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.snikket_name())
    }
}

/// A role name that is neither Snikket's nor Prosody's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected admin, normal or limited)")]
pub struct UnknownRole(pub String);

/// Accepts Snikket's names (any case) and Prosody's, including `prosody:normal`, which Snikket itself migrates to
/// `prosody:registered` at start-up.
impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "admin" | "prosody:admin" => Ok(Self::Admin),
            "normal" | "prosody:registered" | "prosody:normal" => Ok(Self::Normal),
            "limited" | "prosody:restricted" => Ok(Self::Limited),
            _ => Err(UnknownRole(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in [Role::Admin, Role::Normal, Role::Limited] {
            assert_eq!(role.prosody_name().parse::<Role>(), Ok(role));
            assert_eq!(role.snikket_name().parse::<Role>(), Ok(role));
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
    }

    #[test]
    fn only_limited_users_may_not_federate() {
        assert!(Role::Admin.may_federate());
        assert!(Role::Normal.may_federate());
        assert!(!Role::Limited.may_federate());
    }

    #[test]
    fn other_spellings() {
        assert_eq!("ADMIN".parse::<Role>(), Ok(Role::Admin));
        assert_eq!("prosody:normal".parse::<Role>(), Ok(Role::Normal));
        assert_eq!(Role::default(), Role::Normal);
        for bad in ["", "operator", "prosody:operator", "root", "prosody:guest"] {
            assert_eq!(bad.parse::<Role>(), Err(UnknownRole(bad.to_owned())));
        }
    }
}
