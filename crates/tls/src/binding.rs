//! The TLS half of SASL channel binding (SCRAM-*-PLUS).

use rustls::{ProtocolVersion, ServerConnection};
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::signature_algorithm::SignatureAlgorithm;

/// RFC 9266's exporter label for the `tls-exporter` channel-binding type.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// RFC 9266 `tls-exporter` channel binding from a finished server connection: 32 bytes exported with
/// [`TLS_EXPORTER_LABEL`] and no context.
///
/// `None` while the handshake runs, and on TLS 1.2: RFC 9266 only allows the exporter there when the extended master
/// secret extension was negotiated, and rustls doesn't tell whether it was. Offer `tls-server-end-point` on such
/// connections instead (as Prosody does, which binds to the exporter only on TLS 1.3).
pub fn tls_exporter(conn: &ServerConnection) -> Option<Vec<u8>> {
    if conn.is_handshaking() || conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
        return None;
    }
    conn.export_keying_material(vec![0u8; 32], TLS_EXPORTER_LABEL, None)
        .ok()
}

/// RFC 5929 `tls-server-end-point` channel-binding data for an end-entity certificate (DER): the certificate hashed
/// with its signature algorithm's hash function, SHA-256 when that is MD5 or SHA-1.
///
/// Algorithms without a hash of their own follow OpenSSL (`X509_digest_sig`), which most peers use: SHA-512 for
/// Ed25519. Anything unrecognised, including a certificate x509-parser cannot read, gets SHA-256.
pub fn tls_server_end_point_for(end_entity_der: &[u8]) -> Vec<u8> {
    let hash = X509Certificate::from_der(end_entity_der)
        .map_or(EndPointHash::Sha256, |(_, cert)| end_point_hash(&cert));
    hash.digest(end_entity_der)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EndPointHash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl EndPointHash {
    fn from_hash_oid(oid: &str) -> Self {
        match oid {
            "2.16.840.1.101.3.4.2.4" => Self::Sha224,
            "2.16.840.1.101.3.4.2.2" => Self::Sha384,
            "2.16.840.1.101.3.4.2.3" => Self::Sha512,
            // SHA-256 itself, and RFC 5929's upgrade of MD5 and SHA-1.
            _ => Self::Sha256,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha224 => Sha224::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

fn end_point_hash(cert: &X509Certificate<'_>) -> EndPointHash {
    let algorithm = &cert.signature_algorithm;
    match algorithm.algorithm.to_id_string().as_str() {
        // sha224WithRSAEncryption, ecdsa-with-SHA224
        "1.2.840.113549.1.1.14" | "1.2.840.10045.4.3.1" => EndPointHash::Sha224,
        // sha384WithRSAEncryption, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => EndPointHash::Sha384,
        // sha512WithRSAEncryption, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => EndPointHash::Sha512,
        // RSASSA-PSS names its hash in the parameters.
        "1.2.840.113549.1.1.10" => match SignatureAlgorithm::try_from(algorithm) {
            Ok(SignatureAlgorithm::RSASSA_PSS(params)) => {
                EndPointHash::from_hash_oid(&params.hash_algorithm_oid().to_id_string())
            }
            _ => EndPointHash::Sha256,
        },
        // Ed25519
        "1.3.101.112" => EndPointHash::Sha512,
        // sha256WithRSAEncryption, ecdsa-with-SHA256, and MD5/SHA-1 upgraded to SHA-256 by RFC 5929 §4.1.
        _ => EndPointHash::Sha256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).expect("key");
        let params =
            rcgen::CertificateParams::new(vec!["example.test".to_owned()]).expect("params");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn hash_follows_the_signature_algorithm() {
        let p256 = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(
            tls_server_end_point_for(&p256),
            Sha256::digest(&p256).to_vec()
        );
        let p384 = self_signed(&rcgen::PKCS_ECDSA_P384_SHA384);
        assert_eq!(
            tls_server_end_point_for(&p384),
            Sha384::digest(&p384).to_vec()
        );
        let ed25519 = self_signed(&rcgen::PKCS_ED25519);
        assert_eq!(
            tls_server_end_point_for(&ed25519),
            Sha512::digest(&ed25519).to_vec()
        );
    }

    #[test]
    fn unreadable_certificate_falls_back_to_sha256() {
        let junk = b"not a certificate";
        assert_eq!(
            tls_server_end_point_for(junk),
            Sha256::digest(junk).to_vec()
        );
    }

    #[test]
    fn pss_and_weak_hashes_map_as_rfc_5929_says() {
        assert_eq!(
            EndPointHash::from_hash_oid("1.3.14.3.2.26"),
            EndPointHash::Sha256
        ); // SHA-1
        assert_eq!(
            EndPointHash::from_hash_oid("1.2.840.113549.2.5"),
            EndPointHash::Sha256
        ); // MD5
        assert_eq!(
            EndPointHash::from_hash_oid("2.16.840.1.101.3.4.2.2"),
            EndPointHash::Sha384
        );
        assert_eq!(
            EndPointHash::from_hash_oid("2.16.840.1.101.3.4.2.3"),
            EndPointHash::Sha512
        );
    }
}
