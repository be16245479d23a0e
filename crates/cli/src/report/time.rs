//! Timestamps of the query log: RFC 3339 in UTC (`2026-11-26T01:02:03.456789Z`), kept as
//! microseconds since the Unix epoch.

use winsink_server::civil::{civil_from_days, days_from_civil};

/// Microseconds per day.
pub(crate) const DAY_US: i64 = 86_400_000_000;

/// Parses the log's `ts` (and `--since`/`--until`): `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`,
/// `YYYY-MM-DDTHH:MM[:SS]` (taken as UTC) or a date `YYYY-MM-DD` (its midnight, UTC).
/// `T` may be a space.
pub(crate) fn parse(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0i64, |n, d| n * 10 + i64::from(d - b'0')),
        )
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut us = days_from_civil(year, month, day) * DAY_US;
    if b.len() == 10 {
        return Some(us);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let (hour, minute) = (num(11..13)?, num(14..16)?);
    let mut i = 16;
    let mut second = 0;
    if b.get(i) == Some(&b':') {
        second = num(17..19)?;
        i = 19;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    us += ((hour * 60 + minute) * 60 + second) * 1_000_000;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        let mut frac = 0i64;
        for k in 0..6 {
            frac = frac * 10
                + b.get(start + k)
                    .filter(|_| start + k < end)
                    .map_or(0, |d| i64::from(d - b'0'));
        }
        us += frac;
        i = end;
    }
    match b.get(i) {
        None => Some(us),
        Some(b'Z' | b'z') if i + 1 == b.len() => Some(us),
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let offset = (num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?) * 60_000_000;
            Some(if sign == b'+' {
                us - offset
            } else {
                us + offset
            })
        }
        _ => None,
    }
}

/// `2026-11-26T01:02:03Z` (seconds; the report's precision).
pub(crate) fn format(us: i64) -> String {
    let (y, m, d) = civil_from_days(us.div_euclid(DAY_US));
    let secs = us.rem_euclid(DAY_US) / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `2026-11-26` for a day number (days since the epoch).
pub(crate) fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_log_s_timestamps_and_the_shorter_forms() {
        let t = parse("2026-11-26T01:02:03.456789Z").unwrap();
        assert_eq!(format(t), "2026-11-26T01:02:03Z");
        assert_eq!(t % 1_000_000, 456_789);
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("1970-01-01"), Some(0));
        assert_eq!(parse("1970-01-02"), Some(DAY_US));
        assert_eq!(parse("1970-01-01T01:00"), Some(3_600_000_000));
        assert_eq!(parse("1970-01-01 00:00:01.5Z"), Some(1_500_000));
        assert_eq!(parse("1970-01-01T02:00:00+02:00"), Some(0));
        assert_eq!(parse("1969-12-31T22:00:00-02:00"), Some(0));
        assert_eq!(
            parse("2024-02-29"),
            parse("2024-02-28T00:00:00Z").map(|t| t + DAY_US)
        );
        assert_eq!(
            format_day(parse("2026-11-26T23:59:59Z").unwrap() / DAY_US),
            "2026-11-26"
        );
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for bad in [
            "",
            "2026-13-01",
            "2026-02-30",
            "2026-11-26T25:00:00Z",
            "2026-11-26T01:02:03.Z",
            "2026-11-26T01:02:03Zjunk",
            "26-11-2026",
            "yesterday",
            "2026-11-26T01",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn day_numbers_round_trip_over_centuries() {
        for day in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }
}
