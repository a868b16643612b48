//! Any bytes as a client's update to a real board, the way the room takes it: decoded, refused
//! when it builds on changes the board lacks, applied in a client transaction, and judged by
//! the policy for every role. Nothing panics, and whatever the policy lets through leaves the
//! stage invariants holding.
#![no_main]

use funnel_protocol::board;
use funnel_protocol::policy::{self, CLIENT_ORIGIN, EffectRecorder, Role};
use funnel_protocol::schema::{self, Entity};
use funnel_protocol::wire::decode_update_v1;
use libfuzzer_sys::fuzz_target;
use yrs::{Doc, ReadTxn, Transact};

fuzz_target!(|data: &[u8]| {
    let Ok(update) = decode_update_v1(data) else {
        return;
    };
    let doc = Doc::with_client_id(1);
    schema::initialize_board(&mut doc.transact_mut(), &Entity::Deal, schema::Language::En, "Fuzz");
    let recorder = EffectRecorder::attach(&doc);
    let (has, roots_before) = {
        let txn = doc.transact();
        (txn.state_vector(), txn.root_refs().count())
    };
    // The room's first check: an update with a gap in an author's clocks is refused unapplied.
    if update
        .state_vector_lower()
        .iter()
        .any(|(client, clock)| *clock > has.get(client))
    {
        return;
    }
    {
        let mut txn = doc.transact_mut_with(CLIENT_ORIGIN);
        if txn.apply_update(update).is_err() || txn.has_missing_updates() {
            return;
        }
    }
    let effects = recorder.take();
    let txn = doc.transact();
    for role in [Role::Viewer, Role::Member, Role::Admin] {
        if policy::check(role, "fuzzer", &effects, &txn, roots_before).is_ok() && effects.stages {
            board::check_invariants(&txn).expect("an allowed update keeps the stage invariants");
        }
    }
});
