//! Timestamps stored in outputs: never the clock (two builds of the same
//! inputs must give the same bytes), always SOURCE_DATE_EPOCH or a time
//! found in the inputs.

/// Format seconds since the Unix epoch as JavaScript's `toISOString()` does
/// (`2026-01-01T00:00:00.000Z`).
pub fn iso_from_epoch(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        // toISOString's expanded years: sign and six digits.
        format!("{}{:06}", if y < 0 { '-' } else { '+' }, y.unsigned_abs())
    };
    format!(
        "{year}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_to_iso_string() {
        assert_eq!(iso_from_epoch(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_from_epoch(1_767_225_600), "2026-01-01T00:00:00.000Z");
        assert_eq!(
            iso_from_epoch(951_782_400 + 3661),
            "2000-02-29T01:01:01.000Z"
        );
        assert_eq!(iso_from_epoch(-1), "1969-12-31T23:59:59.000Z");
    }
}
