//! Channel-binding data of the TLS connection an exchange runs over.

use std::fmt;

/// The channel-binding types this crate verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBindingType {
    /// RFC 9266: TLS exporter with label `EXPORTER-Channel-Binding`, no context, 32 bytes. The one
    /// to use with TLS 1.3.
    TlsExporter,
    /// RFC 5929 §4: a hash of the server's certificate.
    TlsServerEndPoint,
}

impl ChannelBindingType {
    /// Every type, preferred first.
    pub const ALL: [Self; 2] = [Self::TlsExporter, Self::TlsServerEndPoint];

    /// The registered name, as in the gs2 header (`p=tls-exporter`) and XEP-0440.
    pub fn name(self) -> &'static str {
        match self {
            Self::TlsExporter => "tls-exporter",
            Self::TlsServerEndPoint => "tls-server-end-point",
        }
    }

    /// The type with this exact name (names are case-sensitive, RFC 5056 §7).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for ChannelBindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Channel-binding data of the TLS connection the exchange runs over. Empty when not over TLS.
/// An empty `Vec` counts as absent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChannelBindings {
    pub tls_exporter: Option<Vec<u8>>,
    pub tls_server_end_point: Option<Vec<u8>>,
}

impl ChannelBindings {
    /// True when there is no binding data: the -PLUS mechanisms are offered only when this is
    /// false.
    pub fn is_empty(&self) -> bool {
        self.available_types().next().is_none()
    }

    /// The data for `kind`, if present.
    pub fn data(&self, kind: ChannelBindingType) -> Option<&[u8]> {
        let data = match kind {
            ChannelBindingType::TlsExporter => self.tls_exporter.as_deref(),
            ChannelBindingType::TlsServerEndPoint => self.tls_server_end_point.as_deref(),
        };
        data.filter(|data| !data.is_empty())
    }

    /// The types there is data for, preferred first (for XEP-0440's `<sasl-channel-binding/>`).
    pub fn available_types(&self) -> impl Iterator<Item = ChannelBindingType> + '_ {
        ChannelBindingType::ALL
            .into_iter()
            .filter(|&kind| self.data(kind).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_data_counts_as_absent() {
        assert!(ChannelBindings::default().is_empty());
        let bindings = ChannelBindings {
            tls_exporter: Some(Vec::new()),
            tls_server_end_point: None,
        };
        assert!(bindings.is_empty());
        assert_eq!(bindings.data(ChannelBindingType::TlsExporter), None);
    }

    #[test]
    fn available_types_in_preference_order() {
        let bindings = ChannelBindings {
            tls_exporter: Some(vec![1]),
            tls_server_end_point: Some(vec![2]),
        };
        assert!(!bindings.is_empty());
        assert_eq!(
            bindings.available_types().collect::<Vec<_>>(),
            ChannelBindingType::ALL
        );
        let only_endpoint = ChannelBindings {
            tls_exporter: None,
            tls_server_end_point: Some(vec![2]),
        };
        assert_eq!(
            only_endpoint.available_types().collect::<Vec<_>>(),
            [ChannelBindingType::TlsServerEndPoint]
        );
    }

    #[test]
    fn names_round_trip() {
        for kind in ChannelBindingType::ALL {
            assert_eq!(ChannelBindingType::from_name(kind.name()), Some(kind));
        }
        assert_eq!(ChannelBindingType::from_name("tls-unique"), None);
        assert_eq!(ChannelBindingType::from_name("TLS-EXPORTER"), None);
    }
}
