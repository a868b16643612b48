//! When a failed delivery is tried again: the Standard Webhooks specification's schedule
//! (immediately, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h), each delay stretched
//! or shrunk by up to a tenth at random (jitter, so that the retries of one outage do not all
//! land at once), and scaled by `--webhook-retry-scale` (tests shrink it).

use std::time::Duration;

/// The delay before each attempt, the first one included: 8 attempts in all, over about 28 h.
pub const SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(5 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
];

/// The attempts a delivery gets before it is failed.
pub const ATTEMPTS: u32 = SCHEDULE.len() as u32;

/// How much of a delay the jitter may add or take away.
const JITTER: f64 = 0.1;

/// The wait before the next attempt once `made` attempts failed, or `None` after the last one.
/// `unit` is a random number in [0, 1): 0.5 keeps the delay as scheduled.
pub fn next_delay(made: u32, scale: f64, unit: f64) -> Option<Duration> {
    let scheduled = SCHEDULE.get(usize::try_from(made).ok()?)?;
    let factor = scale * (1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0));
    Some(scheduled.mul_f64(factor.max(0.0)))
}

/// A random number in [0, 1) from the system's random source (0.5, no jitter, if it fails).
pub fn random_unit() -> f64 {
    getrandom::u32().map_or(0.5, |n| f64::from(n) / (f64::from(u32::MAX) + 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_the_specifications() {
        let secs: Vec<u64> = (1..ATTEMPTS)
            .map(|made| next_delay(made, 1.0, 0.5).map_or(0, |d| d.as_secs()))
            .collect();
        assert_eq!(secs, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(next_delay(ATTEMPTS, 1.0, 0.5), None, "then it has failed");
    }

    #[test]
    fn jitter_stays_within_a_tenth_and_scale_shrinks() {
        for unit in [0.0, 0.25, 0.5, 0.999] {
            let Some(delay) = next_delay(2, 1.0, unit) else {
                panic!("a third attempt is scheduled");
            };
            assert!(delay >= Duration::from_secs(270) && delay <= Duration::from_secs(330));
        }
        assert_eq!(
            next_delay(1, 0.001, 0.5),
            Some(Duration::from_millis(5)),
            "5 s at a thousandth"
        );
        let unit = random_unit();
        assert!((0.0..1.0).contains(&unit), "{unit}");
    }
}
