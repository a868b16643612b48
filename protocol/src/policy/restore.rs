//! What parts of a board held before a client's update, and the server transaction that puts
//! them back: how the room takes back what a role may not write without refusing the whole
//! update (docs/security.md, "How an update is judged").
//!
//! A [`Snapshot`] is a plain copy of some roots, Y types kept apart from plain values so that a
//! restored entry has the same shape as before (a stage is a `Y.Map`, a display form a
//! `Y.Array`). [`restore_map`] writes only the entries that differ: a new write on a map key
//! comes after the client's in causal order, so it wins on every replica.

use crate::board;
use crate::schema::{StageKind, root, stage};
use std::collections::BTreeMap;
use yrs::{Any, Array, ArrayPrelim, In, Map, MapPrelim, MapRef, Out, ReadTxn, TransactionMut};

/// One value of a document, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Any(Any),
    Map(BTreeMap<String, Value>),
    Array(Vec<Value>),
    /// A type the board schema never holds (text, XML, a sub-document): compared equal to
    /// itself, never written back.
    Other,
}

/// The entries of some root maps at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    roots: BTreeMap<&'static str, BTreeMap<String, Value>>,
}

impl Snapshot {
    /// Copies the roots named in `roots` (a missing root is held as empty).
    pub fn capture<T: ReadTxn>(txn: &T, roots: &[&'static str]) -> Self {
        let roots = roots
            .iter()
            .map(|name| {
                let entries = txn
                    .get_map(*name)
                    .map(|map| read_map(txn, &map))
                    .unwrap_or_default();
                (*name, entries)
            })
            .collect();
        Self { roots }
    }

    /// The root's entries, if this snapshot holds it.
    pub fn root(&self, name: &str) -> Option<&BTreeMap<String, Value>> {
        self.roots.get(name)
    }

    /// Whether root `name` holds now what it held in this snapshot, leaving out entry `except`.
    /// `false` when the snapshot does not hold the root.
    pub fn unchanged<T: ReadTxn>(&self, txn: &T, name: &str, except: Option<&str>) -> bool {
        let Some(before) = self.roots.get(name) else {
            return false;
        };
        let now = txn
            .get_map(name)
            .map(|map| read_map(txn, &map))
            .unwrap_or_default();
        let without = |entries: &BTreeMap<String, Value>| -> Vec<(String, Value)> {
            entries
                .iter()
                .filter(|(key, _)| Some(key.as_str()) != except)
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        };
        without(before) == without(&now)
    }
}

fn read_map<T: ReadTxn>(txn: &T, map: &MapRef) -> BTreeMap<String, Value> {
    map.iter(txn)
        .map(|(key, value)| (key.to_owned(), read_value(txn, value)))
        .collect()
}

fn read_value<T: ReadTxn>(txn: &T, value: Out) -> Value {
    match value {
        Out::Any(any) => Value::Any(any),
        Out::YMap(map) => Value::Map(read_map(txn, &map)),
        Out::YArray(array) => {
            Value::Array(array.iter(txn).map(|item| read_value(txn, item)).collect())
        }
        _ => Value::Other,
    }
}

fn to_prelim(value: &Value) -> Option<In> {
    Some(match value {
        Value::Any(any) => In::Any(any.clone()),
        Value::Map(entries) => In::Map(
            entries
                .iter()
                .filter_map(|(key, value)| Some((key.as_str(), to_prelim(value)?)))
                .collect::<MapPrelim>(),
        ),
        Value::Array(items) => {
            In::Array(items.iter().filter_map(to_prelim).collect::<ArrayPrelim>())
        }
        Value::Other => return None,
    })
}

/// Writes `map` back to `before`, entry by entry, leaving entry `keep` as it is: entries added
/// since are removed, entries removed or changed are written again (a nested map is restored
/// key by key, anything else whole). Writes nothing where they already agree.
pub fn restore_map(
    txn: &mut TransactionMut,
    map: &MapRef,
    before: &BTreeMap<String, Value>,
    keep: Option<&str>,
) {
    let added: Vec<String> = map
        .keys(txn)
        .filter(|key| Some(*key) != keep && !before.contains_key(*key))
        .map(str::to_owned)
        .collect();
    for key in added {
        map.remove(txn, &key);
    }
    for (key, value) in before {
        if Some(key.as_str()) == keep {
            continue;
        }
        let current = map.get(txn, key);
        if let (Value::Map(entries), Some(Out::YMap(nested))) = (value, &current) {
            restore_map(txn, nested, entries, None);
            continue;
        }
        if current.map(|out| read_value(txn, out)).as_ref() == Some(value) {
            continue;
        }
        if let Some(prelim) = to_prelim(value) {
            map.insert(txn, key.as_str(), prelim);
        }
    }
}

/// Mends the stage invariants a merge of two copies can break, the same way on every server:
/// of several initial stages the first in board order stays initial and the others become
/// progress stages; of several success stages the first stays and the others become failure
/// stages (they stay final). Cards keep their stage. Whatever else is broken is left to the
/// caller (see [`super::repair_or_restore_stages`]).
pub fn demote_duplicate_stages(txn: &mut TransactionMut) {
    let stages = board::stages(txn);
    let Some(map) = txn.get_map(root::STAGES) else {
        return;
    };
    let extras = |kind: StageKind| -> Vec<String> {
        stages
            .iter()
            .filter(|s| s.kind == kind)
            .skip(1)
            .map(|s| s.id.clone())
            .collect()
    };
    let demotions = [
        (extras(StageKind::Initial), StageKind::Progress),
        (extras(StageKind::Success), StageKind::Failure),
    ];
    for (ids, kind) in demotions {
        for id in ids {
            if let Some(Out::YMap(stage_map)) = map.get(txn, &id) {
                stage_map.insert(txn, stage::KIND, kind.as_str());
            }
        }
    }
}
