//! Markers that travel inside document updates, so that every receiver — one holding a yrs
//! document or one that only counts bytes — learns who sent a move, when, and which seed batch
//! it just got, without decoding the update.
//!
//! A move is what the contract says (one transaction that sets the card's `stage` and `pos`)
//! stamped with its send time: one extra field of the moved card in the same transaction,
//! `moveStamp`, the string `ltm1:<sender>:<seq>:<sent_us>;` where `sent_us` is microseconds
//! since the epoch. Nothing else: every field a move writes stays in every replica's document
//! as an item and, once overwritten, a tombstone, so fields beyond the stamp would make the
//! server's documents (and every frame) bigger than a real client's moves make them. The seeding client writes `lts1:<batch>:<last>;`
//! into `board.loadtestSeed` with every seed batch.
//!
//! Why a string scan and not a document: lib0 v1 encodes a string value as its length followed
//! by its UTF-8 bytes, so a stamp appears verbatim in every update that carries it. A byte-only
//! client finds it with a substring search — no document, no decoding, memory of a socket and
//! a few counters — and a frame that merges several moves yields several stamps, so merged
//! frames count as several moves. The cost: it relies on the v1 encoding (which y-websocket
//! uses) and on nobody else writing the marker into a board; a false match needs the marker
//! text inside user content, which the load tester never writes. Doc-holding clients use the
//! same scan, so both kinds count moves the same way, and also apply every update to their
//! document for the convergence check.

/// Prefix of a move stamp.
pub const MOVE_MARKER: &[u8] = b"ltm1:";
/// Prefix of a seed batch marker.
pub const SEED_MARKER: &[u8] = b"lts1:";

/// The card fields a move writes besides `stage` and `pos`.
pub mod field {
    pub const MOVE_STAMP: &str = "moveStamp";
    /// In the `board` root map.
    pub const SEED: &str = "loadtestSeed";
}

/// Who sent a move, its number among that sender's moves, and when (µs since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveStamp {
    pub sender: u32,
    pub seq: u32,
    pub sent_us: u64,
}

impl MoveStamp {
    pub fn encode(&self) -> String {
        format!("ltm1:{}:{}:{};", self.sender, self.seq, self.sent_us)
    }
}

/// A seed batch marker: batch `batch` of `0..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedMark {
    pub batch: u32,
    pub last: u32,
}

impl SeedMark {
    pub fn encode(&self) -> String {
        format!("lts1:{}:{};", self.batch, self.last)
    }
}

/// Every move stamp in `bytes`, in the order they appear.
pub fn scan_moves(bytes: &[u8], out: &mut Vec<MoveStamp>) {
    for fields in scan(bytes, MOVE_MARKER) {
        if let [sender, seq, sent_us] = fields[..]
            && let (Ok(sender), Ok(seq)) = (u32::try_from(sender), u32::try_from(seq))
        {
            out.push(MoveStamp {
                sender,
                seq,
                sent_us,
            });
        }
    }
}

/// The seed marks in `bytes`.
pub fn scan_seeds(bytes: &[u8]) -> impl Iterator<Item = SeedMark> + '_ {
    scan(bytes, SEED_MARKER).filter_map(|fields| match fields[..] {
        [batch, last] => Some(SeedMark {
            batch: u32::try_from(batch).ok()?,
            last: u32::try_from(last).ok()?,
        }),
        _ => None,
    })
}

/// Finds `marker` followed by `:`-separated decimal numbers ended by `;`; yields the numbers.
/// At most four numbers are read; anything malformed is skipped.
fn scan<'a>(bytes: &'a [u8], marker: &'static [u8]) -> impl Iterator<Item = Vec<u64>> + 'a {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at + marker.len() <= bytes.len() {
            let found = bytes[at..]
                .windows(marker.len())
                .position(|w| w == marker)?;
            let start = at + found + marker.len();
            at = start;
            if let Some(numbers) = parse_numbers(&bytes[start..]) {
                return Some(numbers);
            }
        }
        None
    })
}

fn parse_numbers(bytes: &[u8]) -> Option<Vec<u64>> {
    let mut numbers = Vec::with_capacity(3);
    let mut current: Option<u64> = None;
    for &b in bytes.iter().take(64) {
        match b {
            b'0'..=b'9' => {
                let digit = u64::from(b - b'0');
                current = Some(current.unwrap_or(0).checked_mul(10)?.checked_add(digit)?);
            }
            b':' | b';' => {
                numbers.push(current.take()?);
                if b == b';' {
                    return Some(numbers);
                }
                if numbers.len() == 4 {
                    return None;
                }
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_found_among_other_bytes_and_merged_frames_yield_each() {
        let a = MoveStamp {
            sender: 7,
            seq: 3,
            sent_us: 1_700_000_000_123_456,
        };
        let b = MoveStamp {
            sender: 9,
            seq: 0,
            sent_us: 5,
        };
        let mut frame = vec![0, 2, 119, 30];
        frame.extend_from_slice(a.encode().as_bytes());
        frame.extend_from_slice(b"ltm1:12:x;garbage ltm1:");
        frame.extend_from_slice(b.encode().as_bytes());
        let mut found = Vec::new();
        scan_moves(&frame, &mut found);
        assert_eq!(found, vec![a, b]);
    }

    #[test]
    fn seed_marks_round_trip() {
        let mark = SeedMark { batch: 2, last: 4 };
        let text = format!("xx{}yy", mark.encode());
        assert_eq!(scan_seeds(text.as_bytes()).collect::<Vec<_>>(), vec![mark]);
    }
}
