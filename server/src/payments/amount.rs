//! Money as integers of a currency's minor unit (cents): amounts arrive as
//! decimal strings (`"12.50"`, [RFC 9396](https://www.rfc-editor.org/rfc/rfc9396)
//! `instructedAmount`), are compared and added exactly, and are written back
//! with the currency's number of decimals.

/// Largest amount accepted, in minor units (a sanity bound that keeps sums far
/// from overflowing).
pub const MAX_MINOR: i64 = 1_000_000_000_000_000;

/// An ISO 4217 currency code: three upper-case letters.
pub fn is_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// Decimals of a currency's minor unit (ISO 4217): 2 unless listed.
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "VND" | "VUV"
        | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Parses a non-negative decimal (`"12.5"`, `"12.50"`, `"7"`) into minor units
/// of `currency`. `None` for anything else: signs, exponents, more decimals
/// than the currency has, or more than [`MAX_MINOR`].
pub fn parse_minor(text: &str, currency: &str) -> Option<i64> {
    let digits = minor_digits(currency);
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || whole.len() > 18 {
        return None;
    }
    if text.contains('.') && fraction.is_empty() {
        return None;
    }
    // Trailing zeros beyond the minor unit are harmless ("12.500" EUR).
    let fraction = fraction.trim_end_matches('0');
    let places = u32::try_from(fraction.len()).ok().filter(|&n| n <= digits)?;
    let scale = 10i64.checked_pow(digits)?;
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
    let minor = whole
        .checked_mul(scale)?
        .checked_add(fraction.checked_mul(10i64.checked_pow(digits - places)?)?)?;
    (minor <= MAX_MINOR).then_some(minor)
}

/// Writes minor units of `currency` as a decimal with its number of decimals.
pub fn format_minor(minor: i64, currency: &str) -> String {
    let digits = minor_digits(currency);
    let scale = 10i64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let (whole, fraction) = (
        minor.unsigned_abs() / scale.unsigned_abs(),
        minor.unsigned_abs() % scale.unsigned_abs(),
    );
    if digits == 0 {
        return format!("{sign}{whole}");
    }
    format!("{sign}{whole}.{fraction:0width$}", width = digits as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimals_exactly() {
        assert_eq!(parse_minor("12.50", "EUR"), Some(1250));
        assert_eq!(parse_minor("12.5", "EUR"), Some(1250));
        assert_eq!(parse_minor("12.500", "EUR"), Some(1250));
        assert_eq!(parse_minor("12", "EUR"), Some(1200));
        assert_eq!(parse_minor("0.01", "EUR"), Some(1));
        assert_eq!(parse_minor("1000", "JPY"), Some(1000));
        assert_eq!(parse_minor("1.234", "KWD"), Some(1234));
        for bad in [
            "",
            ".5",
            "12.",
            "-1",
            "+1",
            "1e3",
            "12.345",
            "1,00",
            " 1",
            "１",
            "9999999999999999999",
        ] {
            assert_eq!(parse_minor(bad, "EUR"), None, "{bad:?}");
        }
        assert_eq!(parse_minor("1.5", "JPY"), None);
    }

    #[test]
    fn formats_with_the_currency_decimals() {
        assert_eq!(format_minor(1250, "EUR"), "12.50");
        assert_eq!(format_minor(0, "EUR"), "0.00");
        assert_eq!(format_minor(5, "EUR"), "0.05");
        assert_eq!(format_minor(1000, "JPY"), "1000");
        assert_eq!(format_minor(1234, "KWD"), "1.234");
        assert_eq!(format_minor(-250, "EUR"), "-2.50");
    }

    #[test]
    fn currencies() {
        assert!(is_currency("EUR"));
        assert!(!is_currency("eur"));
        assert!(!is_currency("EURO"));
    }
}
