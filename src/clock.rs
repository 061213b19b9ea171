//! Time as the protocol counts it: unix seconds, and calendar days for `YYYY-MM-DD` dates
//! (the calendar itself is jiff's).

use jiff::SignedDuration;
use jiff::civil::Date;

/// Unix time counts every day as this many seconds.
const SECS_PER_DAY: u32 = 86_400;
/// Day 0 of the day numbers.
const EPOCH: Date = Date::constant(1970, 1, 1);

/// Seconds since the Unix epoch (0 if the system clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian calendar), or `None`
/// if it is not exactly that shape or not a real date.
pub fn day_number(date: &str) -> Option<i64> {
    // jiff's parser takes more forms of ISO 8601 than the protocol allows; only this one passes.
    let b = date.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape_ok {
        return None;
    }
    let date: Date = date.parse().ok()?;
    Some(date.duration_since(EPOCH).as_secs() / i64::from(SECS_PER_DAY))
}

/// The day number of a unix time.
pub fn day_of(unix_secs: u64) -> i64 {
    (unix_secs / u64::from(SECS_PER_DAY)) as i64
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01); the inverse of [`day_number`].
/// `None` for a day outside the years 0000 to 9999, which that shape cannot write.
pub fn date_of_day(days: i64) -> Option<String> {
    let date = EPOCH
        .checked_add(SignedDuration::from_secs(
            days.checked_mul(i64::from(SECS_PER_DAY))?,
        ))
        .ok()?;
    (0..=9999).contains(&date.year()).then(|| date.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_match_the_calendar() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2000-03-01"), Some(11_017));
        assert_eq!(
            day_number("2024-02-29").map(|d| d - day_number("2024-02-28").unwrap()),
            Some(1)
        );
        assert_eq!(day_number("2023-02-29"), None);
        assert_eq!(day_number("2027-13-01"), None);
        assert_eq!(day_number("2027-1-01"), None);
        assert_eq!(day_of(1_800_000_000), day_number("2027-01-15").unwrap());
        for day in [0, 11_017, 20_833, 19_782, -1] {
            assert_eq!(
                date_of_day(day).and_then(|date| day_number(&date)),
                Some(day)
            );
        }
    }

    #[test]
    fn only_real_dates_in_the_one_shape_count() {
        assert_eq!(day_number("2000-02-29"), Some(11_016));
        assert_eq!(day_number("1900-02-29"), None, "1900 is not a leap year");
        for not_a_date in [
            "2024-04-31",
            "2024-00-10",
            "2024-01-00",
            "20240101",
            "+2024-01-01",
            "2024-01-01T00:00",
            "2024-01-01 ",
            "2024/01/01",
            "２０２４-01-01",
            "",
        ] {
            assert_eq!(day_number(not_a_date), None, "{not_a_date:?}");
        }
    }

    #[test]
    fn dates_and_day_numbers_are_inverse_over_the_whole_range() {
        let (first, last) = (-719_528, 2_932_896);
        assert_eq!(day_number("0000-01-01"), Some(first));
        assert_eq!(day_number("9999-12-31"), Some(last));
        assert_eq!(date_of_day(first - 1), None);
        assert_eq!(date_of_day(last + 1), None);
        assert_eq!(date_of_day(i64::MAX), None);
        assert_eq!(date_of_day(i64::MIN), None);
        // Every day from 1900 to 2100 names its own day, and later days write later dates.
        let mut previous = String::new();
        for day in -25_567..=47_846 {
            let date = date_of_day(day).expect("within 0000 to 9999");
            assert_eq!(day_number(&date), Some(day), "{date}");
            assert!(date > previous, "{date} after {previous}");
            previous = date;
        }
        // A sample of the rest.
        for day in (first..=last).step_by(97) {
            assert_eq!(
                date_of_day(day).and_then(|date| day_number(&date)),
                Some(day)
            );
        }
    }
}
