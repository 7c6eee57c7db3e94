//! GitLab's time-tracking durations: `1mo 2w 3d 4h 30m 10s`, with 8-hour
//! days, 5-day weeks and 4-week months; a leading `-` subtracts.

/// Seconds in each unit, longest first (`mo` before `m`).
const UNITS: [(&str, i64); 6] = [
    ("mo", 4 * 5 * 8 * 3600),
    ("w", 5 * 8 * 3600),
    ("d", 8 * 3600),
    ("h", 3600),
    ("m", 60),
    ("s", 1),
];

/// Parses a duration into seconds; `None` for anything malformed or absurd.
pub fn parse(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, text),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let value: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (_, size) = UNITS.iter().find(|(name, _)| rest.starts_with(name))?;
        let name_len = UNITS
            .iter()
            .find(|(name, _)| rest.starts_with(name))
            .map(|(n, _)| n.len())?;
        rest = &rest[name_len..];
        total = total.checked_add(value.checked_mul(*size)?)?;
    }
    // More than 100 years of work is a typo, not a duration.
    if total > 100 * 52 * 5 * 8 * 3600 {
        return None;
    }
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn gitlab_grammar() {
        assert_eq!(parse("3h30m"), Some(3 * 3600 + 30 * 60));
        assert_eq!(parse("1w 2d"), Some(5 * 8 * 3600 + 2 * 8 * 3600));
        assert_eq!(parse("1mo"), Some(4 * 5 * 8 * 3600));
        assert_eq!(parse("-30m"), Some(-1800));
        assert_eq!(parse("45s"), Some(45));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "h", "3", "3x", "1h 2", "-", "99999999999h", "1h-2m"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
