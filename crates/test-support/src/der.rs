//! Just enough DER to turn the PKCS#8 keys rcgen produces into the "traditional" encodings that certbot and
//! `openssl` write (PKCS#1 for RSA, SEC1 for EC), so that tests cover every key file a real install may hold.
//!
//! Inputs are keys this crate generated itself, so malformed DER is a bug here and panics.

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OCTET_STRING: u8 = 0x04;
/// `[0]` constructed, context-specific: ECPrivateKey's `parameters` field.
const TAG_EC_PARAMETERS: u8 = 0xa0;

/// One tag-length-value element: its tag, its content, and the whole encoding.
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
    encoded: &'a [u8],
}

/// Splits the first element off `input`.
fn next_element(input: &[u8]) -> (Element<'_>, &[u8]) {
    let tag = input[0];
    let first_len = input[1];
    let (len, header) = if first_len < 0x80 {
        (usize::from(first_len), 2)
    } else {
        let count = usize::from(first_len & 0x7f);
        let len = input[2..2 + count]
            .iter()
            .fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte));
        (len, 2 + count)
    };
    let end = header + len;
    let element = Element {
        tag,
        content: &input[header..end],
        encoded: &input[..end],
    };
    (element, &input[end..])
}

fn elements(mut input: &[u8]) -> Vec<Element<'_>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (element, rest) = next_element(input);
        out.push(element);
        input = rest;
    }
    out
}

fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|byte| *byte == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The fields of a PKCS#8 `PrivateKeyInfo`: (algorithm identifier's fields, the inner private key).
fn pkcs8_parts(pkcs8: &[u8]) -> (Vec<Element<'_>>, &[u8]) {
    let (outer, _) = next_element(pkcs8);
    assert_eq!(outer.tag, TAG_SEQUENCE, "PKCS#8 is a SEQUENCE");
    let fields = elements(outer.content);
    // version, AlgorithmIdentifier, privateKey OCTET STRING, ...
    assert_eq!(
        fields[1].tag, TAG_SEQUENCE,
        "AlgorithmIdentifier is a SEQUENCE"
    );
    assert_eq!(
        fields[2].tag, TAG_OCTET_STRING,
        "privateKey is an OCTET STRING"
    );
    (elements(fields[1].content), fields[2].content)
}

/// An RSA PKCS#8 key as PKCS#1 `RSAPrivateKey` (PEM label "RSA PRIVATE KEY").
pub(crate) fn pkcs8_to_pkcs1(pkcs8: &[u8]) -> Vec<u8> {
    let (_, inner) = pkcs8_parts(pkcs8);
    inner.to_vec()
}

/// An EC PKCS#8 key as SEC1 `ECPrivateKey` (PEM label "EC PRIVATE KEY"), with the named curve in `parameters`
/// as `openssl ec` writes it: inside PKCS#8 that field is usually left out because the algorithm identifier says it.
pub(crate) fn pkcs8_to_sec1(pkcs8: &[u8]) -> Vec<u8> {
    let (algorithm, inner) = pkcs8_parts(pkcs8);
    let curve_oid = algorithm[1].encoded;
    let (ec_private_key, _) = next_element(inner);
    let fields = elements(ec_private_key.content);
    if fields.iter().any(|field| field.tag == TAG_EC_PARAMETERS) {
        return inner.to_vec();
    }
    // version, privateKey, [0] parameters, [1] publicKey
    let mut content = Vec::new();
    content.extend_from_slice(fields[0].encoded);
    content.extend_from_slice(fields[1].encoded);
    content.extend_from_slice(&encode(TAG_EC_PARAMETERS, curve_oid));
    for field in &fields[2..] {
        content.extend_from_slice(field.encoded);
    }
    encode(TAG_SEQUENCE, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        let content = vec![7u8; 300];
        let encoded = encode(TAG_OCTET_STRING, &content);
        assert_eq!(&encoded[..4], &[TAG_OCTET_STRING, 0x82, 0x01, 0x2c]);
        let (element, rest) = next_element(&encoded);
        assert!(rest.is_empty());
        assert_eq!(element.content, &content[..]);
    }
}
