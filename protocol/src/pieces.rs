//! A large update cut into pieces that, applied in order, make the same document, each piece
//! causally complete given the ones before it.
//!
//! Why: a WebSocket connection keeps the capacity of the largest frame it ever wrote
//! (tungstenite's write buffer grows to fit a frame and never shrinks), so sending a joiner a
//! board's full state as one 2.5 MB frame costs 2.5 MB for as long as that connection lives, on
//! every connection. Sent as pieces of a few KiB, the buffer stays small.
//!
//! How: a lib0 v1 update is a list of blocks per client, then a delete set; every block is
//! self-contained (it names its origins by absolute id), so runs of blocks can be copied into
//! smaller updates byte for byte. Blocks are taken in an order where each one's origins and
//! parent come first (the order yrs itself integrates them in), so that a receiver never holds a
//! block whose neighbours it lacks: yrs 0.28 must not be given such updates (see ARCHITECTURE,
//! "Known limit of yrs 0.28"). The delete set goes with the last piece.

use std::collections::HashMap;
use std::ops::Range;
use yrs::block::ItemContent;
use yrs::block::{
    BLOCK_GC_REF_NUMBER, BLOCK_SKIP_REF_NUMBER, HAS_ORIGIN, HAS_PARENT_SUB, HAS_RIGHT_ORIGIN,
};
use yrs::encoding::read::Read;
use yrs::encoding::write::Write;
use yrs::updates::decoder::Decode;
use yrs::updates::decoder::{Decoder, DecoderV1};
use yrs::{ClientID, ID, IdSet, StateVector};

/// A block of the update: where its bytes are, its clock range, and what it builds on.
#[derive(Debug)]
struct Block {
    clock: u32,
    len: u32,
    raw: Range<usize>,
    /// Origin, right origin and parent item, when present.
    deps: [Option<ID>; 3],
    /// A skip: clocks the update does not carry.
    skip: bool,
}

/// A run of consecutive blocks of one client inside a piece.
struct Run {
    client: u64,
    clock: u32,
    blocks: Vec<Range<usize>>,
}

/// Cuts `update` (lib0 v1) into pieces of about `max_piece_bytes` (a single larger block makes a
/// piece of its own). An update that fits, that does not parse, or whose blocks do not form a
/// causally complete set comes back whole, as one piece: splitting never changes what a client
/// gets, only how many frames it comes in.
pub fn split_update_v1(update: &[u8], max_piece_bytes: usize) -> Vec<Vec<u8>> {
    if update.len() <= max_piece_bytes {
        return vec![update.to_vec()];
    }
    match parse(update) {
        Some((clients, delete_set)) => order(update, clients, delete_set, max_piece_bytes)
            .unwrap_or_else(|| vec![update.to_vec()]),
        None => vec![update.to_vec()],
    }
}

type Clients = Vec<(u64, Vec<Block>)>;

fn parse(update: &[u8]) -> Option<(Clients, Range<usize>)> {
    let mut d = DecoderV1::from(update);
    let clients_len: u32 = d.read_var().ok()?;
    let mut clients = Vec::new();
    for _ in 0..clients_len {
        let blocks_len: u32 = d.read_var().ok()?;
        let client = d.read_client().ok()?;
        let mut clock: u32 = d.read_var().ok()?;
        let mut blocks = Vec::new();
        for _ in 0..blocks_len {
            let start = position(update, &mut d)?;
            let info = d.read_info().ok()?;
            let mut deps = [None, None, None];
            let len = match info {
                BLOCK_SKIP_REF_NUMBER => d.read_var::<u32>().ok()?,
                BLOCK_GC_REF_NUMBER => d.read_len().ok()?,
                info => {
                    if info & HAS_ORIGIN != 0 {
                        deps[0] = Some(d.read_left_id().ok()?);
                    }
                    if info & HAS_RIGHT_ORIGIN != 0 {
                        deps[1] = Some(d.read_right_id().ok()?);
                    }
                    if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
                        if d.read_parent_info().ok()? {
                            d.read_string().ok()?;
                        } else {
                            deps[2] = Some(d.read_left_id().ok()?);
                        }
                        if info & HAS_PARENT_SUB != 0 {
                            d.read_string().ok()?;
                        }
                    }
                    ItemContent::decode(&mut d, info).ok()?.len_utf16()
                }
            };
            let end = position(update, &mut d)?;
            // yrs skips an empty item without advancing the clock; so does this.
            if len > 0 {
                blocks.push(Block {
                    clock,
                    len,
                    raw: start..end,
                    deps,
                    skip: info == BLOCK_SKIP_REF_NUMBER,
                });
                clock = clock.checked_add(len)?;
            }
        }
        clients.push((client.get(), blocks));
    }
    let rest = position(update, &mut d)?;
    Some((clients, rest..update.len()))
}

/// Whether `update` (lib0 v1) builds on changes a document whose state vector is `has` lacks: a
/// gap in an author's clocks, an origin, right origin or parent that neither the document nor
/// the update holds, or a deletion of something neither holds. yrs 0.28 would keep such an
/// update pending, which it must never be given (ARCHITECTURE, "Known limit of yrs 0.28"): the
/// room holds it aside until what it builds on arrives. `None` when it does not parse.
pub fn depends_on_missing(update: &[u8], has: &StateVector) -> Option<bool> {
    let (clients, delete_set) = parse(update)?;
    // Per client: the end of the clocks the document and the update hold together, without a
    // gap.
    let mut held: HashMap<u64, u32> = HashMap::with_capacity(clients.len());
    for (client, blocks) in &clients {
        let mut end = has.get(&ClientID::new(*client));
        for block in blocks.iter().filter(|block| !block.skip) {
            if block.clock > end {
                return Some(true);
            }
            end = end.max(block.clock + block.len);
        }
        held.insert(*client, end);
    }
    let holds = |client: u64, clock_end: u32| {
        let end = held
            .get(&client)
            .copied()
            .unwrap_or_else(|| has.get(&ClientID::new(client)));
        clock_end <= end
    };
    let missing_dep = clients.iter().any(|(_, blocks)| {
        blocks
            .iter()
            .flat_map(|block| block.deps.iter().flatten())
            .any(|id| !holds(id.client.get(), id.clock + 1))
    });
    if missing_dep {
        return Some(true);
    }
    let deletes = IdSet::decode(&mut DecoderV1::from(&update[delete_set])).ok()?;
    let missing_delete = deletes
        .iter()
        .any(|(client, ranges)| ranges.iter().any(|range| !holds(client.get(), range.end)));
    Some(missing_delete)
}

fn position(update: &[u8], d: &mut DecoderV1) -> Option<usize> {
    Some(update.len() - d.read_to_end().ok()?.len())
}

/// Emits the blocks in an order where each block's dependencies come first, packed into pieces.
/// `None` when some block depends on one the update neither holds nor precedes (not causally
/// complete on its own).
fn order(
    update: &[u8],
    clients: Clients,
    delete_set: Range<usize>,
    max_piece_bytes: usize,
) -> Option<Vec<Vec<u8>>> {
    // Per client: the next clock to emit. What is below a client's first clock in the update,
    // and every client the update does not name, the receiver is assumed to have.
    let mut next: HashMap<u64, u32> = clients
        .iter()
        .map(|(client, blocks)| (*client, blocks.first().map_or(0, |b| b.clock)))
        .collect();
    let mut queues: Vec<(u64, std::collections::VecDeque<Block>)> = clients
        .into_iter()
        .map(|(client, blocks)| (client, blocks.into()))
        .collect();
    let ready = |block: &Block, next: &HashMap<u64, u32>| {
        block.deps.iter().flatten().all(|id| {
            next.get(&id.client.get())
                .is_none_or(|next_clock| id.clock < *next_clock)
        })
    };
    let mut pieces = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    let mut piece_bytes = 0usize;
    let mut current = 0usize;
    loop {
        if queues.iter().all(|(_, q)| q.is_empty()) {
            break;
        }
        // Stay on the current client while it can go on (long runs, fewer headers).
        let can_go = |i: usize, queues: &[(u64, std::collections::VecDeque<Block>)]| {
            queues[i].1.front().is_some_and(|b| ready(b, &next))
        };
        if !can_go(current, &queues) {
            current = (0..queues.len()).find(|i| can_go(*i, &queues))?;
        }
        let (client, queue) = &mut queues[current];
        let block = queue.pop_front()?;
        let size = block.raw.len();
        let continues = runs.last().is_some_and(|run| run.client == *client);
        let client_in_piece = runs.iter().any(|run| run.client == *client);
        if !runs.is_empty()
            && (piece_bytes + size > max_piece_bytes || (client_in_piece && !continues))
        {
            pieces.push(encode(update, std::mem::take(&mut runs), None));
            piece_bytes = 0;
        }
        match runs.last_mut() {
            Some(run) if run.client == *client => run.blocks.push(block.raw.clone()),
            _ => runs.push(Run {
                client: *client,
                clock: block.clock,
                blocks: vec![block.raw.clone()],
            }),
        }
        piece_bytes += size;
        next.insert(*client, block.clock + block.len);
    }
    pieces.push(encode(update, runs, Some(delete_set)));
    Some(pieces)
}

fn encode(update: &[u8], runs: Vec<Run>, delete_set: Option<Range<usize>>) -> Vec<u8> {
    let mut out = Vec::new();
    out.write_var(runs.len() as u64);
    for run in runs {
        out.write_var(run.blocks.len() as u64);
        out.write_var(run.client);
        out.write_var(run.clock);
        for raw in run.blocks {
            out.write_all(&update[raw]);
        }
    }
    match delete_set {
        Some(raw) => out.write_all(&update[raw]),
        // An empty delete set: no clients.
        None => out.write_var(0u64),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use yrs::types::ToJson;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, GetString, Map, ReadTxn, StateVector, Text, Transact, Update, WriteTxn};

    /// Applies `pieces` in order to a fresh document, checking that none waits for another.
    fn assemble(pieces: &[Vec<u8>]) -> Doc {
        let doc = Doc::new();
        for (i, piece) in pieces.iter().enumerate() {
            let mut txn = doc.transact_mut();
            txn.apply_update(Update::decode_v1(piece).unwrap()).unwrap();
            assert!(
                !txn.has_missing_updates(),
                "piece {i} of {} waits for another",
                pieces.len()
            );
        }
        doc
    }

    /// The test roots' content (a root is typed only once asked for by name).
    fn json(doc: &Doc) -> String {
        let t = doc.get_or_insert_text("t");
        let m = doc.get_or_insert_map("m");
        let cards = doc.get_or_insert_map(crate::schema::root::CARDS);
        let txn = doc.transact();
        // serde_json's maps are sorted: the comparison does not depend on hash order.
        let sorted = |any: yrs::Any| serde_json::to_value(any).unwrap().to_string();
        format!(
            "{} {} {}",
            t.get_string(&txn),
            sorted(m.to_json(&txn)),
            sorted(cards.to_json(&txn))
        )
    }

    fn full_state(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    fn sync(from: &Doc, to: &Doc) {
        let sv = to.transact().state_vector();
        let diff = from.transact().encode_state_as_update_v1(&sv);
        to.transact_mut()
            .apply_update(Update::decode_v1(&diff).unwrap())
            .unwrap();
    }

    #[test]
    fn a_small_update_is_one_piece() {
        let doc = Doc::new();
        doc.get_or_insert_map("m")
            .insert(&mut doc.transact_mut(), "k", "v");
        let state = full_state(&doc);
        assert_eq!(split_update_v1(&state, 1 << 16), vec![state]);
    }

    #[test]
    fn interleaved_writers_split_into_causal_pieces() {
        let a = Doc::with_client_id(1);
        let b = Doc::with_client_id(2);
        let text = a.get_or_insert_text("t");
        text.insert(&mut a.transact_mut(), 0, "hello world");
        sync(&a, &b);
        let tb = b.get_or_insert_text("t");
        tb.insert(&mut b.transact_mut(), 5, ", dear");
        sync(&b, &a);
        text.insert(&mut a.transact_mut(), 7, "my ");
        text.remove_range(&mut a.transact_mut(), 0, 2);
        {
            let mut txn = a.transact_mut();
            let cards = txn.get_or_insert_map(crate::schema::root::CARDS);
            for i in 0..50 {
                cards.insert(&mut txn, format!("card-{i}"), format!("title {i}"));
            }
        }
        let state = full_state(&a);
        let pieces = split_update_v1(&state, 64);
        assert!(pieces.len() > 5, "{} pieces", pieces.len());
        let doc = assemble(&pieces);
        assert_eq!(json(&doc), json(&a));
        assert_eq!(doc.transact().state_vector(), a.transact().state_vector());
        let t = doc.get_or_insert_text("t");
        assert_eq!(
            t.get_string(&doc.transact()),
            text.get_string(&a.transact())
        );
    }

    #[test]
    fn what_does_not_parse_comes_back_whole() {
        let junk = vec![7u8; 100];
        assert_eq!(split_update_v1(&junk, 10), vec![junk]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert { doc: usize, at: usize, text: String },
        Remove { doc: usize, at: usize, len: usize },
        Set { doc: usize, key: u8, value: u16 },
        Delete { doc: usize, key: u8 },
        Sync { from: usize, to: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3usize, 0..40usize, "[a-z]{1,6}").prop_map(|(doc, at, text)| Op::Insert {
                doc,
                at,
                text
            }),
            (0..3usize, 0..40usize, 1..5usize).prop_map(|(doc, at, len)| Op::Remove {
                doc,
                at,
                len
            }),
            (0..3usize, 0..20u8, any::<u16>()).prop_map(|(doc, key, value)| Op::Set {
                doc,
                key,
                value
            }),
            (0..3usize, 0..20u8).prop_map(|(doc, key)| Op::Delete { doc, key }),
            (0..3usize, 0..3usize).prop_map(|(from, to)| Op::Sync { from, to }),
        ]
    }

    proptest! {
        #[test]
        fn pieces_applied_in_order_rebuild_the_document(ops in prop::collection::vec(op(), 1..60), max in 8usize..400) {
            let docs: Vec<Doc> = (1..=3).map(Doc::with_client_id).collect();
            for op in ops {
                match op {
                    Op::Insert { doc, at, text } => {
                        let t = docs[doc].get_or_insert_text("t");
                        let mut txn = docs[doc].transact_mut();
                        let at = at.min(t.len(&txn) as usize) as u32;
                        t.insert(&mut txn, at, &text);
                    }
                    Op::Remove { doc, at, len } => {
                        let t = docs[doc].get_or_insert_text("t");
                        let mut txn = docs[doc].transact_mut();
                        let n = t.len(&txn) as usize;
                        if at < n {
                            t.remove_range(&mut txn, at as u32, len.min(n - at) as u32);
                        }
                    }
                    Op::Set { doc, key, value } => {
                        let m = docs[doc].get_or_insert_map("m");
                        m.insert(&mut docs[doc].transact_mut(), format!("k{key}"), u32::from(value));
                    }
                    Op::Delete { doc, key } => {
                        let m = docs[doc].get_or_insert_map("m");
                        m.remove(&mut docs[doc].transact_mut(), &format!("k{key}"));
                    }
                    Op::Sync { from, to } => sync(&docs[from], &docs[to]),
                }
            }
            sync(&docs[1], &docs[0]);
            sync(&docs[2], &docs[0]);
            let state = full_state(&docs[0]);
            let pieces = split_update_v1(&state, max);
            let doc = assemble(&pieces);
            prop_assert_eq!(json(&doc), json(&docs[0]));
            prop_assert_eq!(doc.transact().state_vector(), docs[0].transact().state_vector());
        }
    }
}
