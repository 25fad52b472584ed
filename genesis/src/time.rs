//! RFC 3339 UTC timestamps (`2026-11-23T09:00:00Z`) to and from Unix milliseconds, enough for a
//! genesis time without pulling in a calendar library.

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        _ => 28,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC only) to Unix milliseconds.
pub fn parse_rfc3339_utc(text: &str) -> Result<u64, String> {
    const FORM: &str = "expected an RFC 3339 UTC time like 2026-01-01T00:00:00Z";
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !text.is_ascii() || !text.ends_with('Z') {
        return Err(FORM.into());
    }
    let num = |range: std::ops::Range<usize>| -> Result<u32, String> {
        text[range].parse::<u32>().map_err(|_| FORM.to_string())
    };
    if bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return Err(FORM.into());
    }
    let (year, month, day) = (num(0..4)? as i64, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let millis = match &text[19..text.len() - 1] {
        "" => 0,
        frac if frac.starts_with('.') && frac.len() >= 2 && frac.len() <= 10 => {
            let digits = &frac[1..];
            let value: u64 = digits.parse().map_err(|_| FORM.to_string())?;
            (value * 1000 / 10u64.pow(digits.len() as u32)) as u32
        }
        _ => return Err(FORM.into()),
    };
    if year < 1970
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(format!("{text} is not a valid time after 1970"));
    }
    let days = days_from_civil(year, month, day) as u64;
    Ok(((days * 24 + hour as u64) * 60 + minute as u64) * 60_000
        + second as u64 * 1000
        + millis as u64)
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
pub fn format_rfc3339_utc(millis: u64) -> String {
    let days = (millis / 86_400_000) as i64;
    let rem = millis % 86_400_000;
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, ms) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    if ms == 0 {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339_utc("2009-01-03T18:15:05Z"),
            Ok(1_231_006_505_000)
        );
        assert_eq!(
            parse_rfc3339_utc("2024-02-29T23:59:59.5Z"),
            Ok(1_709_251_199_500)
        );
        assert_eq!(
            format_rfc3339_utc(1_231_006_505_000),
            "2009-01-03T18:15:05Z"
        );
        assert_eq!(
            format_rfc3339_utc(1_709_251_199_500),
            "2024-02-29T23:59:59.500Z"
        );
    }

    #[test]
    fn round_trips_and_rejects_nonsense() {
        for ms in [0u64, 86_399_999, 951_782_400_000, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339_utc(&format_rfc3339_utc(ms)), Ok(ms));
        }
        for bad in [
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-01-01 00:00:00Z",
            "2023-01-01T00:00:00+01:00",
            "yesterday",
            "2023-01-01T24:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_rfc3339_utc(bad).is_err(), "{bad}");
        }
    }
}
