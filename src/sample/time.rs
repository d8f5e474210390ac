//! ISO 8601 timestamps without a clock.
//!
//! Every date in the sample is computed from the seed, never read from the
//! system clock, so that two generations give the same bytes.

/// 2024-01-01T00:00:00Z in milliseconds since the Unix epoch.
pub(crate) const Y2024: i64 = 1_704_067_200_000;
/// 2025-12-01T00:00:00Z: when the sample's embeddings were "generated".
pub(crate) const EMBEDDED_AT: i64 = 1_764_547_200_000;
/// 2026-01-01T00:00:00Z: the sample's `_schema.lastUpdated`.
pub(crate) const Y2026: i64 = 1_767_225_600_000;
/// One day in milliseconds.
pub(crate) const DAY: i64 = 86_400_000;

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the format `Date.prototype.toISOString` gives
/// and that the real movies.json uses.
pub(crate) fn iso(ms: i64) -> String {
    let days = ms.div_euclid(DAY);
    let rem = ms.rem_euclid(DAY);
    let (y, m, d) = crate::movies::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// OMDB's `Released` format: `12 Mar 1951`.
pub(crate) fn omdb_date(year: i64, month: u32, day: u32) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let name = MONTHS[(month.clamp(1, 12) - 1) as usize];
    format!("{day:02} {name} {year}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(Y2026), "2026-01-01T00:00:00.000Z");
        assert_eq!(
            iso(Y2024 + 59 * DAY + 3_723_004),
            "2024-02-29T01:02:03.004Z"
        );
        assert_eq!(iso(EMBEDDED_AT), "2025-12-01T00:00:00.000Z");
        assert_eq!(omdb_date(1951, 3, 2), "02 Mar 1951");
    }
}
