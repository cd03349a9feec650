//! XEP-0082 date-times as the server writes them: UTC, `Z`, a fraction only when there is one. The one place that
//! formats them (delay stamps, archive results, token and invite expiry, entity time).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `2002-09-10T23:08:25Z` for unix seconds. Out of range (beyond year 9999) gives the epoch rather than fail:
/// nothing the server stores is that far out.
pub fn xep0082(unix_seconds: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format(t)
}

/// The same for unix milliseconds: `2002-09-10T23:08:25.120Z`, or without a fraction when it is whole seconds.
pub fn xep0082_millis(unix_millis: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format(t)
}

fn format(t: OffsetDateTime) -> String {
    // RFC 3339 of a UTC time is XEP-0082's DateTime profile; it cannot fail for years 0 to 9999.
    t.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles() {
        assert_eq!(xep0082(0), "1970-01-01T00:00:00Z");
        assert_eq!(xep0082(1_000_000_000), "2001-09-09T01:46:40Z");
        assert_eq!(xep0082(i64::MAX), "1970-01-01T00:00:00Z");
        assert_eq!(xep0082_millis(1_000_000_000_000), "2001-09-09T01:46:40Z");
        assert_eq!(xep0082_millis(1_000_000_000_120), "2001-09-09T01:46:40.12Z");
    }
}
