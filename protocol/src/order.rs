//! Order keys (`pos`): base-62 fractional keys over `0-9A-Za-z`, compared as bytes (ASCII order
//! is digit order), so a key strictly between any two keys always exists and a move rewrites one
//! card's key, never its neighbours'.
//!
//! This is a port of the npm package `fractional-indexing` (rocicorp, 3.x and 4.x, default
//! alphabet), which the browser client uses: for the same neighbours both sides make the same
//! key, byte for byte. `protocol/vectors/order-keys.json`, written by that package, keeps the two
//! honest. Do not "improve" the algorithm here without changing the client the same way.
//!
//! # Key format
//! A key is an integer part and a fraction. The integer part is a head letter that says how many
//! digits follow it (`a` one, `b` two, … `z` 26; `Z` one, `Y` two, … `A` 26, for the integers
//! below zero), then those digits. The fraction is any run of digits that does not end in `0`
//! (a trailing zero would give a second spelling of the same value). The first key is `"a0"`; an
//! append increments the integer part (`a0`, `a1`, … `az`, `b00`), a prepend decrements it (`Zz`,
//! `Zy`, … `Z0`, `Yzz`), and only an insert between two keys uses the fraction. The smallest
//! integer, `A` followed by 26 zeros, is reserved so that a key below every key exists.
//!
//! # Length bound
//! Every key this module makes is at most one character longer than the longer of its
//! neighbours (an open end counts as one character): [`key_between`] only ever
//! appends one digit after a shared prefix, bumps the integer part by one, or, when the digits
//! are consecutive, copies the lower neighbour and adds one digit. For the three ways a column
//! actually grows the bound is much tighter:
//! - **N appends at the end** (or N prepends at the start) of an empty column make integers only,
//!   and the integer part gains a digit each time the previous width runs out: keys are 2
//!   characters for N ≤ 62, 3 for N ≤ 3,906, 4 for N ≤ 242,234 and 5 for N ≤ 15,018,570 (the
//!   width-`w` integers are 62^w of them). After any key whose integer part has `L` characters,
//!   N appends (or prepends) stay within `L + 1 + ⌊log62 N⌋` characters. (Only the 27-character
//!   integers at the very ends, 62^26 appends away, fall back on the fraction.)
//! - **N inserts into the same gap**, each new key next to the previous one, grow keys fastest:
//!   the fraction gains one character every 5 inserts when each insert lands just above the
//!   newest key (digits `V l t x z`, then `zV …`) and every 6 when it lands just below it
//!   (digits `V G 8 4 2 1`, then `0V …`). So N such inserts between `a` and `b` give keys of at
//!   most `max(len a, len b) + ⌈N / 5⌉` characters; between `a0` and `a1`, exactly `2 + ⌈N / 5⌉`
//!   and `2 + ⌈N / 6⌉`. No other order of inserts does worse: every sequence of up to 8 inserts
//!   into `a0, a1` is tried in the tests (and every sequence of 11, and a beam search to 60, were
//!   tried against the npm package once), and none beats `2 + ⌈N / 5⌉`.
//!
//! [`MAX_KEY_LEN`] is 32: dragging cards into one gap between `a0` and `a1`, each next to the
//! previous, passes it at the 151st drag; appends and prepends never do (integers stop at 27
//! characters). The tests below check every number here.
//!
//! # Rebalance
//! A column whose keys grew past [`MAX_KEY_LEN`] ([`needs_rebalance`]) is given fresh keys in
//! one transaction: [`rebalanced`]`(n)` for its `n` cards in their current order, which is
//! `"a0"`, `"a1"`, … and depends on nothing but `n`. So every replica that rebalances the same
//! column order writes the same keys, and two concurrent rebalances of the same order converge
//! to the same column whichever write wins each card. Equal keys (two replicas inserting into
//! the same gap at once make the same key; cards then sort by id) have no key between them:
//! [`key_between`] refuses them and the caller rebalances too.

/// The 62 digits, in value order (which is also their byte order).
pub const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The longest key we are content to keep: a column holding a longer one asks for a rebalance
/// ([`needs_rebalance`]). Longer keys are still valid; they only cost bytes in every update.
pub const MAX_KEY_LEN: usize = 32;

/// Why an order key, or a pair of neighbours, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("order key is empty; a key has at least two characters, such as \"a0\"")]
    Empty,
    #[error(
        "order key {key:?} starts with {head:?}; a key starts with a letter A-Z or a-z that gives \
         the length of its integer part"
    )]
    InvalidHead { key: String, head: char },
    #[error(
        "order key {key:?} has {character:?} at byte {position}; keys use only the digits 0-9, \
         A-Z and a-z"
    )]
    InvalidCharacter {
        key: String,
        character: char,
        position: usize,
    },
    #[error(
        "order key {key:?} is shorter than the {integer_len} characters its head announces; \
         complete its integer part"
    )]
    TruncatedInteger { key: String, integer_len: usize },
    #[error("order key {key:?} ends in '0'; drop the trailing zeros of its fraction")]
    TrailingZero { key: String },
    #[error(
        "order key {key:?} is the smallest integer, which is reserved so that a key below every \
         key exists; use a key above it"
    )]
    SmallestInteger { key: String },
    #[error(
        "order key {lower:?} is not below {upper:?}; pass the lower neighbour first, and \
         rebalance the column when two neighbours share a key"
    )]
    NotIncreasing { lower: String, upper: String },
}

/// Checks that `key` is an order key this module (and the client's package) accepts: a head
/// letter, the integer digits it announces, a fraction without trailing `0`, only characters of
/// [`DIGITS`], and not the reserved smallest integer. Long keys are valid ([`needs_rebalance`]
/// is what looks at the length).
pub fn validate_key(key: &str) -> Result<(), OrderError> {
    parse(key).map(|_| ())
}

/// The key for an item placed between `a` and `b`, where `a < b`; `None` is an open end (the
/// start for `a`, the end for `b`). `key_between(None, None)` is `"a0"`.
///
/// Unlike the npm package, which swaps neighbours given in the wrong order, `a >= b` is an
/// error here: a caller that has them backwards has a bug, and equal neighbours need a rebalance.
pub fn key_between(a: Option<&str>, b: Option<&str>) -> Result<String, OrderError> {
    let (a, b) = parse_neighbours(a, b)?;
    Ok(key(a, b).into_string())
}

/// `n` keys in increasing order between `a` and `b` (as in [`key_between`]), the same keys the
/// npm package's `generateNKeysBetween` makes: consecutive integers towards an open end, and
/// keys split evenly (by halving) between two keys. The neighbours are checked even when `n` is 0.
pub fn n_keys_between(
    a: Option<&str>,
    b: Option<&str>,
    n: usize,
) -> Result<Vec<String>, OrderError> {
    let (a, b) = parse_neighbours(a, b)?;
    let mut keys = Vec::new();
    push_keys_between(&mut keys, a, b, n);
    Ok(keys)
}

/// Whether a column with these keys should be given fresh ones ([`rebalanced`]): some key is
/// longer than [`MAX_KEY_LEN`] or is not a valid key at all.
pub fn needs_rebalance(keys: impl IntoIterator<Item = impl AsRef<str>>) -> bool {
    keys.into_iter().any(|key| {
        let key = key.as_ref();
        key.len() > MAX_KEY_LEN || validate_key(key).is_err()
    })
}

/// Fresh keys for `n` items, in order: `n_keys_between(None, None, n)`, that is `"a0"`, `"a1"`,
/// … `"az"`, `"b00"`, …. They depend on `n` alone, so replicas that rebalance the same column
/// order write the same keys.
pub fn rebalanced(n: usize) -> Vec<String> {
    std::iter::successors(Some(first()), |key| Some(after(key.parts())))
        .take(n)
        .map(Key::into_string)
        .collect()
}

/// A valid key split into its integer part and its fraction.
#[derive(Clone, Copy)]
struct Parts<'k> {
    integer: &'k [u8],
    fraction: &'k [u8],
}

/// A key being made, split like [`Parts`] so that it needs no second parse.
struct Key {
    integer: Vec<u8>,
    fraction: Vec<u8>,
}

impl Key {
    fn parts(&self) -> Parts<'_> {
        Parts {
            integer: &self.integer,
            fraction: &self.fraction,
        }
    }

    fn into_string(self) -> String {
        self.to_key_string()
    }

    fn to_key_string(&self) -> String {
        // Every byte is from DIGITS or a checked key, all ASCII, so this is a plain copy.
        self.integer
            .iter()
            .chain(&self.fraction)
            .map(|&byte| char::from(byte))
            .collect()
    }
}

/// Errors show at most this many characters of a key: a key comes from a peer and may be huge.
const SHOWN_KEY_CHARS: usize = 2 * MAX_KEY_LEN;

fn shown(key: &str) -> String {
    match key.char_indices().nth(SHOWN_KEY_CHARS) {
        Some((cut, _)) => format!("{}…", &key[..cut]),
        None => key.to_owned(),
    }
}

fn parse(key: &str) -> Result<Parts<'_>, OrderError> {
    let mut chars = key.char_indices();
    let Some((_, head)) = chars.next() else {
        return Err(OrderError::Empty);
    };
    let Some(integer_len) = u8::try_from(head).ok().and_then(integer_len) else {
        return Err(OrderError::InvalidHead {
            key: shown(key),
            head,
        });
    };
    if let Some((position, character)) = chars.find(|&(_, c)| !is_digit(c)) {
        return Err(OrderError::InvalidCharacter {
            key: shown(key),
            character,
            position,
        });
    }
    // Every character is ASCII from here on, so byte offsets are character offsets.
    let bytes = key.as_bytes();
    let (Some(integer), Some(fraction)) = (bytes.get(..integer_len), bytes.get(integer_len..))
    else {
        return Err(OrderError::TruncatedInteger {
            key: shown(key),
            integer_len,
        });
    };
    if fraction.last() == Some(&b'0') {
        return Err(OrderError::TrailingZero { key: shown(key) });
    }
    if fraction.is_empty() && is_smallest_integer(integer) {
        return Err(OrderError::SmallestInteger { key: shown(key) });
    }
    Ok(Parts { integer, fraction })
}

fn parse_neighbours<'k>(
    a: Option<&'k str>,
    b: Option<&'k str>,
) -> Result<(Option<Parts<'k>>, Option<Parts<'k>>), OrderError> {
    let parts = (a.map(parse).transpose()?, b.map(parse).transpose()?);
    if let (Some(lower), Some(upper)) = (a, b)
        && lower >= upper
    {
        return Err(OrderError::NotIncreasing {
            lower: shown(lower),
            upper: shown(upper),
        });
    }
    Ok(parts)
}

/// `A` and 26 zeros: no integer is below it, so no key may be it (then nothing would fit below).
fn is_smallest_integer(integer: &[u8]) -> bool {
    integer.len() == 27 && integer.starts_with(b"A") && integer[1..].iter().all(|&d| d == b'0')
}

fn is_digit(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// The value of a digit; 0 for anything else, like the npm package's lookup table (keys are
/// checked before their digits are read, so that case never decides anything).
fn value(digit: u8) -> usize {
    usize::from(match digit {
        b'0'..=b'9' => digit - b'0',
        b'A'..=b'Z' => digit - b'A' + 10,
        b'a'..=b'z' => digit - b'a' + 36,
        _ => 0,
    })
}

/// The length of the integer part announced by `head`, the head included.
fn integer_len(head: u8) -> Option<usize> {
    match head {
        b'a'..=b'z' => Some(usize::from(head - b'a') + 2),
        b'A'..=b'Z' => Some(usize::from(b'Z' - head) + 2),
        _ => None,
    }
}

/// The key between two neighbours that [`parse_neighbours`] accepted.
fn key(a: Option<Parts<'_>>, b: Option<Parts<'_>>) -> Key {
    match (a, b) {
        (None, None) => first(),
        (Some(a), None) => after(a),
        (None, Some(b)) => before(b),
        (Some(a), Some(b)) => between(a, b),
    }
}

fn first() -> Key {
    Key {
        integer: b"a0".to_vec(),
        fraction: Vec::new(),
    }
}

fn after(a: Parts<'_>) -> Key {
    match increment(a.integer) {
        Some(integer) => Key {
            integer,
            fraction: Vec::new(),
        },
        // The largest integer: only the fraction can grow.
        None => Key {
            integer: a.integer.to_vec(),
            fraction: midpoint(a.fraction, None),
        },
    }
}

fn before(b: Parts<'_>) -> Key {
    match decrement(b.integer) {
        // The smallest integer (reserved, so `b` has a fraction): only the fraction can shrink.
        None => Key {
            integer: b.integer.to_vec(),
            fraction: midpoint(&[], Some(b.fraction)),
        },
        // `b` has a fraction: its integer part alone sorts just below it.
        Some(_) if !b.fraction.is_empty() => Key {
            integer: b.integer.to_vec(),
            fraction: Vec::new(),
        },
        Some(integer) => Key {
            integer,
            fraction: Vec::new(),
        },
    }
}

/// Requires `a < b`.
fn between(a: Parts<'_>, b: Parts<'_>) -> Key {
    if a.integer == b.integer {
        return Key {
            integer: a.integer.to_vec(),
            fraction: midpoint(a.fraction, Some(b.fraction)),
        };
    }
    match increment(a.integer) {
        Some(integer) if integer.iter().lt(b.integer.iter().chain(b.fraction)) => Key {
            integer,
            fraction: Vec::new(),
        },
        // The next integer is `b`'s integer part and `b` has no fraction: grow `a`'s fraction.
        // (The npm package throws when `a`'s integer is the largest, which `a < b` rules out.)
        _ => Key {
            integer: a.integer.to_vec(),
            fraction: midpoint(a.fraction, None),
        },
    }
}

/// A fraction strictly between fractions `a` and `b` (`None`: above every fraction), where
/// `a < b` and neither ends in `0`. The npm package's `midpoint`, with its tail recursion made a
/// loop so that no key, however long, can exhaust the stack.
fn midpoint(mut a: &[u8], mut b: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(upper) = b {
        // Keep the longest common prefix, reading `a` as if padded with zeros (`b` cannot end
        // inside it, because `a < b` and `b` has no trailing zero).
        let common = upper
            .iter()
            .enumerate()
            .take_while(|&(i, &digit)| a.get(i).copied().unwrap_or(b'0') == digit)
            .count();
        let (prefix, rest) = upper.split_at(common);
        out.extend_from_slice(prefix);
        a = a.get(common..).unwrap_or_default();
        b = Some(rest);
    }
    loop {
        // The first digits differ (or `a` has run out, which reads as 0).
        let digit_a = a.first().map_or(0, |&digit| value(digit));
        let digit_b = match b {
            Some(upper) => upper.first().map_or(0, |&digit| value(digit)),
            None => DIGITS.len(),
        };
        if digit_b > digit_a + 1 {
            // JavaScript's Math.round(0.5 * (a + b)), halves rounded up; at most 61, because
            // digit_b is at most 62 and digit_a at most digit_b - 2.
            out.push(DIGITS[(digit_a + digit_b).div_ceil(2)]);
            return out;
        }
        match b {
            // Consecutive digits and `b` goes on: `b`'s first digit alone is between.
            Some(upper) if upper.len() > 1 => {
                out.push(upper[0]);
                return out;
            }
            // `b` is that one next digit, or the top: keep `a`'s digit and go above the rest
            // of `a` (digit_a is at most 61: a value).
            _ => {
                out.push(DIGITS[digit_a]);
                a = a.get(1..).unwrap_or_default();
                b = None;
            }
        }
    }
}

/// The next integer, or `None` for the largest (`z` and 26 `z`s).
fn increment(integer: &[u8]) -> Option<Vec<u8>> {
    let mut next = integer.to_vec();
    for digit in next.iter_mut().skip(1).rev() {
        let bumped = value(*digit) + 1;
        if bumped < DIGITS.len() {
            *digit = DIGITS[bumped];
            return Some(next);
        }
        *digit = b'0';
    }
    // Carried out of every digit: the head moves up, the zeros grow or shrink by one to match.
    let head = next.first_mut()?;
    match *head {
        b'Z' => Some(b"a0".to_vec()),
        b'a'..=b'y' => {
            *head += 1;
            next.push(b'0');
            Some(next)
        }
        b'A'..=b'Y' => {
            *head += 1;
            next.pop();
            Some(next)
        }
        _ => None,
    }
}

/// The previous integer, or `None` for the smallest (`A` and 26 zeros).
fn decrement(integer: &[u8]) -> Option<Vec<u8>> {
    let mut next = integer.to_vec();
    for digit in next.iter_mut().skip(1).rev() {
        let digit_value = value(*digit);
        if digit_value > 0 {
            *digit = DIGITS[digit_value - 1];
            return Some(next);
        }
        *digit = b'z';
    }
    // Borrowed out of every digit: the head moves down, the `z`s grow or shrink by one to match.
    let head = next.first_mut()?;
    match *head {
        b'a' => Some(b"Zz".to_vec()),
        b'B'..=b'Z' => {
            *head -= 1;
            next.push(b'z');
            Some(next)
        }
        b'b'..=b'z' => {
            *head -= 1;
            next.pop();
            Some(next)
        }
        _ => None,
    }
}

fn push_keys_between(keys: &mut Vec<String>, a: Option<Parts<'_>>, b: Option<Parts<'_>>, n: usize) {
    if n == 0 {
        return;
    }
    match (a, b) {
        (_, None) => {
            let mut current = key(a, None);
            for _ in 1..n {
                let next = after(current.parts());
                keys.push(std::mem::replace(&mut current, next).into_string());
            }
            keys.push(current.into_string());
        }
        (None, Some(b)) => {
            // Made downwards from `b`, then put in increasing order.
            let start = keys.len();
            let mut current = before(b);
            for _ in 1..n {
                let next = before(current.parts());
                keys.push(std::mem::replace(&mut current, next).into_string());
            }
            keys.push(current.into_string());
            keys[start..].reverse();
        }
        (Some(a), Some(b)) => {
            let middle = between(a, b);
            let below = n / 2;
            push_keys_between(keys, Some(a), Some(middle.parts()), below);
            keys.push(middle.to_key_string());
            push_keys_between(keys, Some(middle.parts()), Some(b), n - below - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn between(a: Option<&str>, b: Option<&str>) -> String {
        key_between(a, b).unwrap()
    }

    /// `ceil(n / d)`, spelled out for the bounds below.
    fn ceil_div(n: usize, d: usize) -> usize {
        n.div_ceil(d)
    }

    /// `floor(log62 n)` for `n >= 1`.
    fn log62(mut n: usize) -> usize {
        let mut log = 0;
        while n >= DIGITS.len() {
            n /= DIGITS.len();
            log += 1;
        }
        log
    }

    #[test]
    fn an_empty_column_starts_at_a0() {
        assert_eq!(between(None, None), "a0");
        assert_eq!(rebalanced(1), ["a0"]);
        assert_eq!(rebalanced(3), ["a0", "a1", "a2"]);
        assert!(rebalanced(0).is_empty());
        assert!(n_keys_between(None, None, 0).unwrap().is_empty());
    }

    #[test]
    fn appends_and_prepends_step_the_integer_part_and_roll_over_its_width() {
        for (a, b, key) in [
            (Some("a0"), None, "a1"),
            (Some("az"), None, "b00"),
            (Some("bzz"), None, "c000"),
            (Some("czzz"), None, "d0000"),
            (Some("Zz"), None, "a0"),
            (Some("Y00"), None, "Y01"),
            (Some("a0V"), None, "a1"),
            (None, Some("a0"), "Zz"),
            (None, Some("Z0"), "Yzz"),
            (None, Some("b00"), "az"),
            (None, Some("a0V"), "a0"),
        ] {
            assert_eq!(between(a, b), key, "between {a:?} and {b:?}");
        }
    }

    #[test]
    fn inserts_between_close_neighbours_use_the_fraction() {
        for (a, b, key) in [
            ("a0", "a1", "a0V"),
            ("a0", "a0V", "a0G"),
            ("a0V", "a1", "a0l"),
            ("a0", "a01", "a00V"),
            ("a0z", "a1", "a0zV"),
            ("a49", "a5", "a4a"),
            ("Zz", "a0", "ZzV"),
        ] {
            assert_eq!(between(Some(a), Some(b)), key, "between {a:?} and {b:?}");
        }
    }

    #[test]
    fn the_ends_of_the_integer_range_fall_back_on_the_fraction() {
        let largest = "z".repeat(27);
        assert_eq!(between(Some(&largest), None), format!("{largest}V"));
        let smallest = format!("A{}", "0".repeat(26));
        assert_eq!(
            between(None, Some(&format!("{smallest}1"))),
            format!("{smallest}0V")
        );
        assert_eq!(
            validate_key(&smallest),
            Err(OrderError::SmallestInteger {
                key: smallest.clone()
            })
        );
    }

    #[test]
    fn invalid_keys_are_refused_with_what_is_wrong() {
        let refused = |key: &str| validate_key(key).unwrap_err();
        assert_eq!(refused(""), OrderError::Empty);
        assert!(matches!(
            refused("!0"),
            OrderError::InvalidHead { head: '!', .. }
        ));
        assert!(matches!(
            refused("0a"),
            OrderError::InvalidHead { head: '0', .. }
        ));
        assert!(matches!(
            refused("é0"),
            OrderError::InvalidHead { head: 'é', .. }
        ));
        assert!(matches!(
            refused("a0!"),
            OrderError::InvalidCharacter {
                character: '!',
                position: 2,
                ..
            }
        ));
        assert!(matches!(
            refused("a0 "),
            OrderError::InvalidCharacter { character: ' ', .. }
        ));
        assert!(matches!(
            refused("aé"),
            OrderError::InvalidCharacter {
                character: 'é',
                position: 1,
                ..
            }
        ));
        assert!(matches!(
            refused("a"),
            OrderError::TruncatedInteger { integer_len: 2, .. }
        ));
        assert!(matches!(
            refused("b0"),
            OrderError::TruncatedInteger { integer_len: 3, .. }
        ));
        assert!(matches!(refused("a00"), OrderError::TrailingZero { .. }));
        assert!(matches!(refused("a0V0"), OrderError::TrailingZero { .. }));
        // An integer part may end in 0; only a fraction may not.
        assert_eq!(validate_key("b10"), Ok(()));
        assert_eq!(validate_key("Zz"), Ok(()));
        // Invalid neighbours are refused by every entry point.
        assert!(key_between(Some("a0"), Some("a00")).is_err());
        assert!(key_between(Some(""), None).is_err());
        assert!(n_keys_between(None, Some("a0!"), 0).is_err());
    }

    #[test]
    fn neighbours_out_of_order_or_equal_are_refused() {
        for (a, b) in [("a1", "a0"), ("a0", "a0"), ("a0V", "a0"), ("b00", "az")] {
            assert_eq!(
                key_between(Some(a), Some(b)),
                Err(OrderError::NotIncreasing {
                    lower: a.to_owned(),
                    upper: b.to_owned()
                })
            );
            assert!(n_keys_between(Some(a), Some(b), 3).is_err());
            assert!(n_keys_between(Some(a), Some(b), 0).is_err());
        }
    }

    #[test]
    fn error_messages_are_lowercase_without_a_trailing_period_and_keep_keys_short() {
        let long = format!("a0{}!", "z".repeat(10_000));
        let smallest = format!("A{}", "0".repeat(26));
        for key in ["", "!0", "é0", "a0!", "b0", "a00", &smallest, &long] {
            let message = validate_key(key).unwrap_err().to_string();
            assert!(message.starts_with(char::is_lowercase), "{message}");
            assert!(!message.ends_with('.'), "{message}");
            assert!(message.len() < 400, "{message}");
        }
        let message = key_between(Some("a1"), Some("a0")).unwrap_err().to_string();
        assert!(message.starts_with("order key"), "{message}");
    }

    #[test]
    fn long_or_invalid_keys_ask_for_a_rebalance() {
        assert!(!needs_rebalance(Vec::<String>::new()));
        assert!(!needs_rebalance(rebalanced(5000)));
        let longest = format!("a0{}", "V".repeat(MAX_KEY_LEN - 2));
        assert!(!needs_rebalance(["a0", longest.as_str()]));
        assert!(needs_rebalance([format!("{longest}V")]));
        assert!(needs_rebalance(["a0", "a00"]));
        assert!(needs_rebalance([""]));
    }

    #[test]
    fn a_hundred_thousand_character_key_neither_overflows_the_stack_nor_panics() {
        let long = format!("a0{}", "z".repeat(100_000));
        let key = between(Some(&long), Some("a1"));
        assert_eq!(key, format!("{long}V"));
        assert_eq!(between(Some("a0"), Some(&key)), "a0V");
        assert_eq!(between(Some(&long), None), "a1");
        assert!(needs_rebalance([&key]));
    }

    /// Appends make integers only; the integer part widens after 62, 62 + 62², … keys.
    #[test]
    fn appends_to_an_empty_column_stay_within_the_documented_lengths() {
        let keys = rebalanced(10_000);
        assert_eq!(keys, n_keys_between(None, None, 10_000).unwrap());
        for (index, key) in keys.iter().enumerate() {
            let n = index + 1;
            let expected = if n <= 62 {
                2
            } else if n <= 3_906 {
                3
            } else {
                4
            };
            assert_eq!(key.len(), expected, "key {n}: {key}");
            assert!(key.len() <= 2 + 1 + log62(n));
        }
        assert!(keys[..1_000].iter().all(|key| key.len() <= 3));
        assert_eq!(keys[3_905], "bzz");
        assert_eq!(keys[3_906], "c000");
        // The last 4-character key is key 242,234; the first 5-character one follows it.
        assert_eq!(62 + 62usize.pow(2) + 62usize.pow(3), 242_234);
        assert_eq!(between(Some("czzz"), None), "d0000");
        assert_eq!(242_234 + 62usize.pow(4), 15_018_570);
        assert_eq!(between(Some("dzzzz"), None), "e00000");
    }

    #[test]
    fn prepends_to_an_empty_column_stay_within_the_documented_lengths() {
        let mut keys = n_keys_between(None, Some("a0"), 9_999).unwrap();
        keys.push("a0".to_owned());
        keys.reverse();
        for (index, key) in keys.iter().enumerate() {
            let n = index + 1;
            let bound = if n <= 62 {
                2
            } else if n <= 3_906 {
                3
            } else {
                4
            };
            assert!(key.len() <= bound, "key {n}: {key}");
        }
        assert!(keys.windows(2).all(|pair| pair[0] > pair[1]));
        assert_eq!(keys[62], "Z0");
        assert_eq!(keys[63], "Yzz");
    }

    /// The worst a user can do by dragging: every insert next to the previous one, in one gap.
    #[test]
    fn inserts_into_one_gap_grow_one_character_every_five_or_six() {
        let mut lower = "a0".to_owned();
        let mut upper = "a0".to_owned();
        for n in 1..=200 {
            // Just above the newest key: the fraction walks V l t x z, then zV ….
            lower = between(Some(&lower), Some("a1"));
            assert_eq!(lower.len(), 2 + ceil_div(n, 5), "{n}: {lower}");
            // Just below the newest key: V G 8 4 2 1, then 0V ….
            upper = between(Some("a0"), Some(if n == 1 { "a1" } else { &upper }));
            assert_eq!(upper.len(), 2 + ceil_div(n, 6), "{n}: {upper}");
            // MAX_KEY_LEN is passed after 150 drags into one gap at the earliest.
            assert_eq!(lower.len() > MAX_KEY_LEN, n > 150);
        }
        assert!(lower.ends_with("zzzzz"));
        assert!(upper.starts_with("a000000"));
    }

    /// Every order of 8 inserts anywhere into the column `a0, a1` (ends included).
    #[test]
    fn no_sequence_of_inserts_grows_keys_faster_than_one_character_in_five() {
        let mut columns =
            std::collections::BTreeSet::from([vec!["a0".to_owned(), "a1".to_owned()]]);
        for n in 1..=8 {
            let mut longest = 0;
            let mut next = std::collections::BTreeSet::new();
            for column in &columns {
                for at in 0..=column.len() {
                    let lower = at.checked_sub(1).map(|i| column[i].as_str());
                    let key = between(lower, column.get(at).map(String::as_str));
                    longest = longest.max(key.len());
                    let mut grown = column.clone();
                    grown.insert(at, key);
                    next.insert(grown);
                }
            }
            assert_eq!(longest, 2 + ceil_div(n, 5), "after {n} inserts");
            columns = next;
        }
        assert_eq!(columns.len(), 11_934);
    }

    #[test]
    fn every_vector_from_the_npm_package_gives_the_same_key() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../vectors/order-keys.json")).unwrap();
        assert!(
            vectors["generator"]
                .as_str()
                .unwrap()
                .starts_with("fractional-indexing@")
        );
        let between_cases = vectors["between"].as_array().unwrap();
        assert!(between_cases.len() >= 300);
        for case in between_cases {
            let (a, b) = (case["a"].as_str(), case["b"].as_str());
            let expected = case["key"].as_str().unwrap();
            assert_eq!(key_between(a, b).as_deref(), Ok(expected), "{case}");
        }
        let n_cases = vectors["n_between"].as_array().unwrap();
        assert!(n_cases.len() >= 50);
        for case in n_cases {
            let (a, b) = (case["a"].as_str(), case["b"].as_str());
            let n = usize::try_from(case["n"].as_u64().unwrap()).unwrap();
            let expected: Vec<&str> = case["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|key| key.as_str().unwrap())
                .collect();
            assert_eq!(n_keys_between(a, b, n).unwrap(), expected, "{case}");
            if a.is_none() && b.is_none() {
                assert_eq!(rebalanced(n), expected);
            }
        }
    }

    const HEADS: &[u8; 52] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// A digit value, often 0 or 61 where carries and borrows happen.
    fn digit() -> impl Strategy<Value = usize> {
        prop_oneof![Just(0usize), Just(61usize), 0usize..62]
    }

    /// A valid key: mostly heads near `a` (as real columns have), sometimes any head.
    fn valid_key() -> impl Strategy<Value = String> {
        (
            prop_oneof![3 => 24usize..30, 1 => 0usize..52],
            prop::collection::vec(digit(), 26),
            prop::collection::vec(digit(), 0..6),
        )
            .prop_map(|(head, integer_digits, mut fraction)| {
                let head = HEADS[head];
                let integer_len = integer_len(head).unwrap();
                while fraction.last() == Some(&0) {
                    fraction.pop();
                }
                let mut key = vec![head];
                key.extend(integer_digits[..integer_len - 1].iter().map(|&d| DIGITS[d]));
                key.extend(fraction.iter().map(|&d| DIGITS[d]));
                let mut key = String::from_utf8(key).unwrap();
                if validate_key(&key).is_err() {
                    key.push('V'); // the smallest integer
                }
                key
            })
    }

    /// Two distinct valid keys in increasing order, often with one integer part.
    fn ordered_pair() -> impl Strategy<Value = (String, String)> {
        let any_two = (valid_key(), valid_key());
        let same_integer =
            (valid_key(), prop::collection::vec(digit(), 1..6)).prop_map(|(key, mut fraction)| {
                let integer_len = integer_len(key.as_bytes()[0]).unwrap();
                while fraction.last() == Some(&0) {
                    fraction.pop();
                }
                let mut other = key[..integer_len].to_owned();
                other.extend(fraction.iter().map(|&d| char::from(DIGITS[d])));
                if validate_key(&other).is_err() {
                    other.push('V');
                }
                (key, other)
            });
        prop_oneof![any_two, same_integer]
            .prop_filter("distinct keys", |(a, b)| a != b)
            .prop_map(|(a, b)| if a < b { (a, b) } else { (b, a) })
    }

    /// A neighbour's length for the one-character-longer bound; an open end counts as one.
    fn neighbour_len(key: Option<&str>) -> usize {
        key.map_or(1, str::len)
    }

    proptest! {
        #[test]
        fn a_key_between_two_keys_is_strictly_between_them_valid_and_at_most_one_longer(
            (a, b) in ordered_pair()
        ) {
            for (lower, upper) in [(Some(a.as_str()), Some(b.as_str())), (Some(&a), None), (None, Some(&b))] {
                let key = key_between(lower, upper).unwrap();
                prop_assert_eq!(validate_key(&key), Ok(()));
                prop_assert!(lower.is_none_or(|lower| lower < key.as_str()), "{lower:?} < {key}");
                prop_assert!(upper.is_none_or(|upper| key.as_str() < upper), "{key} < {upper:?}");
                prop_assert!(key.len() <= neighbour_len(lower).max(neighbour_len(upper)) + 1);
            }
            prop_assert!(key_between(Some(&b), Some(&a)).is_err());
        }

        #[test]
        fn n_keys_between_two_keys_increase_strictly_inside_them(
            (a, b) in ordered_pair(),
            n in 0usize..40,
        ) {
            for (lower, upper) in [(Some(a.as_str()), Some(b.as_str())), (Some(&a), None), (None, Some(&b)), (None, None)] {
                let keys = n_keys_between(lower, upper, n).unwrap();
                prop_assert_eq!(keys.len(), n);
                prop_assert!(keys.iter().all(|key| validate_key(key).is_ok()));
                prop_assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
                if let (Some(lower), Some(first)) = (lower, keys.first()) {
                    prop_assert!(lower < first.as_str());
                }
                if let (Some(upper), Some(last)) = (upper, keys.last()) {
                    prop_assert!(last.as_str() < upper);
                }
            }
        }

        #[test]
        fn any_input_gives_a_key_in_order_or_an_error_never_a_panic(
            a in prop_oneof![Just(None), any::<String>().prop_map(Some), "[0-9A-Za-z]{0,8}".prop_map(Some)],
            b in prop_oneof![Just(None), any::<String>().prop_map(Some), "[0-9A-Za-z]{0,8}".prop_map(Some)],
            n in 0usize..5,
        ) {
            let (a, b) = (a.as_deref(), b.as_deref());
            if let Ok(key) = key_between(a, b) {
                prop_assert!(a.is_none_or(|a| a < key.as_str()) && b.is_none_or(|b| key.as_str() < b));
            }
            if let Ok(keys) = n_keys_between(a, b, n) {
                prop_assert_eq!(keys.len(), n);
            }
            let _ = needs_rebalance(a.into_iter().chain(b));
        }
    }

    proptest! {
        // Each case makes hundreds of keys: fewer cases keep the test well under a second.
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn appends_and_prepends_after_any_key_stay_within_the_documented_length(
            key in valid_key(),
            n in 1usize..600,
        ) {
            let integer = integer_len(key.as_bytes()[0]).unwrap();
            let bound = integer + 1 + log62(n);
            let appended = n_keys_between(Some(&key), None, n).unwrap();
            prop_assert!(appended.iter().all(|k| k.len() <= bound), "{key} + {n}: {appended:?}");
            let prepended = n_keys_between(None, Some(&key), n).unwrap();
            prop_assert!(prepended.iter().all(|k| k.len() <= bound), "{n} + {key}: {prepended:?}");
        }

        #[test]
        fn inserts_next_to_the_newest_key_in_one_gap_grow_at_most_one_character_in_five(
            (a, b) in ordered_pair(),
            n in 1usize..300,
        ) {
            let longer = a.len().max(b.len());
            let (mut lower, mut upper) = (a.clone(), b.clone());
            for i in 1..=n {
                lower = between(Some(&lower), Some(&b));
                upper = between(Some(&a), Some(&upper));
                prop_assert!(lower.len() <= longer + ceil_div(i, 5), "{a} {b} {i}: {lower}");
                prop_assert!(upper.len() <= longer + ceil_div(i, 5), "{a} {b} {i}: {upper}");
            }
        }

        #[test]
        fn a_column_under_random_inserts_stays_sorted_and_valid(
            places in prop::collection::vec(any::<prop::sample::Index>(), 1..300),
        ) {
            let mut column: Vec<String> = Vec::new();
            for place in places {
                let at = place.index(column.len() + 1);
                let lower = at.checked_sub(1).map(|i| column[i].as_str());
                let upper = column.get(at).map(String::as_str);
                let key = key_between(lower, upper).unwrap();
                prop_assert!(key.len() <= neighbour_len(lower).max(neighbour_len(upper)) + 1);
                column.insert(at, key);
            }
            prop_assert!(column.windows(2).all(|pair| pair[0] < pair[1]));
            prop_assert!(column.iter().all(|key| validate_key(key).is_ok()));
        }
    }
}
