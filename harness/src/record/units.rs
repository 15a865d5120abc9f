//! Parsing the lab's argument syntax: durations `300ms`, `2s`, `1m`; sizes
//! `64MiB`, `1GiB`, `4096`; lists `1,2,4`. Errors are one line naming the
//! value and the expected form.

use std::time::Duration;

/// `s` as a number and the unit text after it (`300ms` -> `(300, "ms")`);
/// `not_a` names the value's kind and its expected form for the error.
fn number_and_unit<'a>(s: &'a str, shown: &str, not_a: &str) -> Result<(f64, &'a str), String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v = num
        .parse()
        .map_err(|_| format!("'{shown}' is not {not_a}"))?;
    Ok((v, unit.trim()))
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (v, unit) = number_and_unit(s, s, "a duration (expected e.g. 300ms, 2s, 1m)")?;
    let secs = match unit {
        "ns" => v / 1e9,
        "us" | "µs" => v / 1e6,
        "ms" => v / 1e3,
        "s" | "" => v,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => {
            return Err(format!(
                "'{s}' has an unknown duration unit (use ns, us, ms, s, m, h)"
            ))
        }
    };
    if !secs.is_finite() || !(0.0..=1e7).contains(&secs) {
        return Err(format!("'{s}' is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let (v, unit) = number_and_unit(s, s, "a size (expected e.g. 4096, 64MiB, 1GiB)")?;
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => {
            return Err(format!(
                "'{s}' has an unknown size unit (use KiB, MiB, GiB, TiB)"
            ))
        }
    };
    let bytes = v * mult;
    if !bytes.is_finite() || !(0.0..=1.0e18).contains(&bytes) {
        return Err(format!("'{s}' is out of range"));
    }
    Ok(bytes as u64)
}

/// A comma-separated list of values parsed by `item`.
pub fn parse_list<T>(s: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let v: Result<Vec<T>, String> = s
        .split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| item(x.trim()))
        .collect();
    let v = v?;
    if v.is_empty() {
        return Err(format!("'{s}' is an empty list"));
    }
    Ok(v)
}

pub fn parse_u32_list(s: &str) -> Result<Vec<u32>, String> {
    parse_list(s, |x| {
        x.parse::<u32>()
            .map_err(|_| format!("'{x}' is not a whole number"))
    })
}

/// Human form of a byte count: `256MiB`.
pub fn format_size(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 && (v / 1024.0).fract() == 0.0 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", v, U[i])
}

/// Human form of nanoseconds: `850ns`, `12.3us`, `4.56ms`, `1.23s`.
pub fn format_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0}ns")
    } else if ns < 1e6 {
        format!("{:.1}us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}s", ns / 1e9)
    }
}

/// Human form of a count or rate with an SI prefix and three significant
/// digits: `950`, `12.3k`, `1.23M`, `4.56G`; below 1, `0.123`.
pub fn format_si(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    let (scaled, prefix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = scaled.abs();
    let digits = if s == 0.0 || s >= 100.0 {
        0
    } else if s >= 10.0 {
        1
    } else if s >= 1.0 || !prefix.is_empty() {
        2
    } else {
        3
    };
    // Whole numbers below 1000 print as such: `12`, not `12.0`.
    if prefix.is_empty() && v.fract() == 0.0 {
        return format!("{v:.0}");
    }
    format!("{scaled:.digits$}{prefix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_sizes_lists() {
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 parsecs").is_err());
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_u32_list("1,2,4").unwrap(), vec![1, 2, 4]);
        assert!(parse_u32_list("1,x").is_err());
        assert_eq!(format_size(256 << 20), "256MiB");
        assert_eq!(format_ns(1500.0), "1.5us");
        assert_eq!(format_si(950.0), "950");
        assert_eq!(format_si(12_345.0), "12.3k");
        assert_eq!(format_si(1_234_567.0), "1.23M");
        assert_eq!(format_si(0.1234), "0.123");
        assert_eq!(format_si(2.5), "2.50");
    }
}
