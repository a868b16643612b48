//! Order keys (`pos`): base-62 fractional keys over `0-9A-Za-z`, compared as bytes (ASCII order
//! is digit order). A key reads as the fraction `0.k1k2k3…` in base 62, so a key strictly between
//! any two keys always exists and a move rewrites one card's key, never its neighbours'.

/// The 62 digits, in value order (which is also their byte order).
pub const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `count` keys in increasing order, spread evenly over the key space so that later inserts
/// between and around them stay short: the keys have the fewest digits that leave a gap of at
/// least two between neighbours (one digit up to 30 keys, two up to 1,921).
pub fn spread(count: usize) -> Vec<String> {
    let mut width = 1u32;
    while DIGITS.len().pow(width) / (count + 1) < 2 {
        width += 1;
    }
    let space = DIGITS.len().pow(width);
    (1..=count)
        .map(|i| {
            let mut value = i * space / (count + 1);
            // A trailing zero digit would make a key equal in value to a shorter one; the gap of
            // two keeps the next key above it.
            if value.is_multiple_of(DIGITS.len()) {
                value += 1;
            }
            let mut key = vec![b'0'; width as usize];
            for slot in key.iter_mut().rev() {
                *slot = DIGITS[value % DIGITS.len()];
                value /= DIGITS.len();
            }
            // Every byte comes from DIGITS, which is ASCII.
            String::from_utf8_lossy(&key).into_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keys_increase_and_never_end_in_zero() {
        for count in [0, 1, 2, 7, 30, 31, 61, 62, 500, 1921, 1922, 5000] {
            let keys = spread(count);
            assert_eq!(keys.len(), count);
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "{count}: {keys:?}");
            assert!(keys.iter().all(|k| !k.ends_with('0') && !k.is_empty()));
        }
    }
}
