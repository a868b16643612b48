//! A connection's outgoing queue: bounded in frames and in bytes, fed by the room without ever
//! blocking it, drained by the connection's writer task.
//!
//! Overflow rule: a connection whose queue is full is a slow consumer. It is closed with 1013
//! (try again later) and a reason; its client reconnects and resyncs, so no update is lost even
//! though the frames queued for it are dropped with the connection.
//!
//! A sync answer (a joiner's full state, already cut in pieces) is queued as one entry,
//! [`Outgoing::Answer`], that the writer takes a piece at a time as the socket drains. Its
//! pieces are the `Bytes` of the room's shared cut (no copy per joiner) and do not count in the
//! byte budget, so a board larger than `--outbox-bytes` can be joined; what is queued after it
//! (later updates) still does, so a joiner too slow to keep up is still closed.
//!
//! The outbox is also how the room tells the connection which of its updates brought nothing
//! new (see [`Outbox::judged`]), so that echoes cost no message budget.
//!
//! The socket's reader queues here too: the pongs and the close reply tungstenite makes
//! ([`ControlSender`]), so that one writer owns the socket's write half and everything leaves in
//! the order it was queued.
//!
//! The queue is a `VecDeque` under a lock, not a tokio channel: a bounded channel allocates its
//! slots 32 at a time and keeps two such blocks (about 2 KiB a connection whatever it queues),
//! where the queue holds what bursts need and gives back what a burst left past
//! [`IDLE_SLOTS`] once it is empty (BENCHMARKS.md, "Where the `rooms` run's memory goes"). The
//! lock is never held across an await, and only for a push or a pop.

use bytes::Bytes;
use funnel_protocol::wire::{CloseCode, MSG_SYNC, MSG_SYNC_STEP_2, MSG_SYNC_UPDATE, close_reason};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The queue's slots kept once it is empty again (a move and the upkeep's write, with room to
/// spare); a burst's extra capacity is given back.
pub const IDLE_SLOTS: usize = 8;

/// Limits of one connection's queue.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    pub max_frames: usize,
    pub max_bytes: usize,
}

/// Why and how a connection is being closed by the server.
#[derive(Debug, Clone)]
pub struct CloseRequest {
    pub code: CloseCode,
    pub reason: String,
}

/// What the room queues for a connection.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// One frame.
    Frame(Bytes),
    /// A sync answer in pieces, sent in order, each as its own frame (see the module's doc).
    Answer(Arc<[Bytes]>),
}

/// An entry of the queue: what the room queued, or what the socket's reader did.
#[derive(Debug)]
enum Queued {
    Frame(Bytes),
    Answer(Arc<[Bytes]>),
    /// Bytes already framed by the socket's reader (a pong, the reply to the client's close),
    /// written as they are, in order with the frames (see [`ControlSender`]).
    Control(Bytes),
}

impl From<Bytes> for Outgoing {
    fn from(frame: Bytes) -> Self {
        Outgoing::Frame(frame)
    }
}

/// The sending side, held by the room and by the connection's reader (to close it, and for
/// the refunds). Once every clone is dropped the writer closes the connection ("board closed").
pub struct Outbox {
    shared: Arc<Shared>,
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last sender: wake the writer, which finds the queue empty and no one left.
            self.shared.item_ready.notify_one();
        }
    }
}

/// Where the socket's reader puts the control frames it answers with (`socket::ReadSide`):
/// they go out through the writer, in order with everything else. Not a sender: a connection
/// whose room and reader are gone closes even though its socket's reader still holds this.
pub struct ControlSender {
    shared: Arc<Shared>,
}

impl ControlSender {
    /// Queues bytes framed by the reader. Dropped when the queue is full or the writer gone: a
    /// pong may answer only the latest ping (RFC 6455, 5.5.3), and a close reply that cannot be
    /// queued is made by the writer itself once the reader asks for the close.
    pub fn send(&self, framed: Bytes) {
        let _ = self.shared.try_push(Queued::Control(framed));
    }
}

/// The receiving side, held by the connection's writer task.
pub struct OutboxReceiver {
    shared: Arc<Shared>,
    /// The answer being sent and the index of its next piece.
    answer: Option<(Arc<[Bytes]>, usize)>,
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        self.shared.receiver_gone.store(true, Ordering::Release);
        // What is queued will never be sent: free it now, not when the room lets go.
        self.shared.queue().clear();
    }
}

struct Shared {
    /// What waits for the writer, in order; at most `max_frames` entries.
    queue: Mutex<VecDeque<Queued>>,
    max_frames: usize,
    /// Fires after each push, and when the last sender goes.
    item_ready: Notify,
    /// Live [`Outbox`] clones.
    senders: AtomicUsize,
    /// The writer is gone: nothing pushed would be sent.
    receiver_gone: AtomicBool,
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    /// The first close request wins; `closed` fires once it is set.
    close: OnceLock<CloseRequest>,
    closed: CancellationToken,
    /// The same fact as `closed`, read on every push without the token's lock (the room pushes
    /// each frame to every connection).
    closing: AtomicBool,
    /// The writer has written a sync step 2 to the socket: the answer to the client's first
    /// step 1 is out (what a join's turn waits for, `connection::JOINS_AT_ONCE`).
    answered: CancellationToken,
    /// Update frames queued for this connection that it has not echoed back yet: the most
    /// no-op updates it may be refunded (see [`Outbox::judged`]).
    echo_credit: AtomicUsize,
    /// Updates of this connection that the room has handled, and the number of them that
    /// brought nothing new and were refunded; the connection's reader takes the refunds.
    judged: AtomicU64,
    refunds: AtomicUsize,
    /// Fires after each update the room has handled.
    judged_notify: Notify,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The queue was full: the connection is now being closed as a slow consumer.
    Full,
    /// The connection was already closing.
    Closed,
}

pub fn outbox(limits: OutboxLimits) -> (Outbox, OutboxReceiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        max_frames: limits.max_frames.max(1),
        item_ready: Notify::new(),
        senders: AtomicUsize::new(1),
        receiver_gone: AtomicBool::new(false),
        queued_bytes: AtomicUsize::new(0),
        max_bytes: limits.max_bytes,
        close: OnceLock::new(),
        closed: CancellationToken::new(),
        closing: AtomicBool::new(false),
        answered: CancellationToken::new(),
        echo_credit: AtomicUsize::new(0),
        judged: AtomicU64::new(0),
        refunds: AtomicUsize::new(0),
        judged_notify: Notify::new(),
    });
    (
        Outbox {
            shared: Arc::clone(&shared),
        },
        OutboxReceiver {
            shared,
            answer: None,
        },
    )
}

/// Why an entry was not queued (before the overflow rule is applied).
enum QueueError {
    Full,
    Closed,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Queued>> {
        // A panic while the lock is held (none of its users can panic) would leave a queue
        // that is still whole: take it as it is.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn try_push(&self, item: Queued) -> Result<(), QueueError> {
        if self.receiver_gone.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        {
            let mut queue = self.queue();
            if queue.len() >= self.max_frames {
                return Err(QueueError::Full);
            }
            queue.push_back(item);
        }
        self.item_ready.notify_one();
        Ok(())
    }

    /// The next entry, if any; an emptied queue gives back what a burst grew it by.
    fn try_pop(&self) -> Option<Queued> {
        let mut queue = self.queue();
        let item = queue.pop_front();
        if queue.is_empty() && queue.capacity() > IDLE_SLOTS {
            queue.shrink_to(IDLE_SLOTS);
        }
        item
    }
}

impl Outbox {
    /// Queues a frame, or a sync answer, without waiting. On overflow the connection is closed
    /// (1013).
    pub fn push(&self, item: impl Into<Outgoing>) -> Result<(), PushError> {
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        let frame = match item.into() {
            Outgoing::Frame(frame) => frame,
            Outgoing::Answer(pieces) => return self.push_answer(pieces),
        };
        let len = frame.len();
        let queued = self.shared.queued_bytes.fetch_add(len, Ordering::Relaxed) + len;
        // A single frame larger than the byte budget still goes through on an empty queue,
        // otherwise one big (legitimate) state could never be delivered.
        if queued > self.shared.max_bytes && queued != len {
            self.shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.close_slow_consumer("bytes");
            return Err(PushError::Full);
        }
        let update = is_update(&frame);
        if let Err(e) = self.shared.try_push(Queued::Frame(frame)) {
            self.shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            if matches!(e, QueueError::Closed) {
                return Err(PushError::Closed);
            }
            self.close_slow_consumer("frames");
            return Err(PushError::Full);
        }
        if update {
            self.shared.echo_credit.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Queues a sync answer as one entry, outside the byte budget (see the module's doc).
    fn push_answer(&self, pieces: Arc<[Bytes]>) -> Result<(), PushError> {
        let updates = pieces.iter().filter(|frame| is_update(frame)).count();
        if let Err(e) = self.shared.try_push(Queued::Answer(pieces)) {
            if matches!(e, QueueError::Closed) {
                return Err(PushError::Closed);
            }
            self.close_slow_consumer("frames");
            return Err(PushError::Full);
        }
        self.shared
            .echo_credit
            .fetch_add(updates, Ordering::Relaxed);
        Ok(())
    }

    /// The room handled one of this connection's updates (a step 2 or an update). An update
    /// that brought nothing new is refunded to the connection's message budget, at most once
    /// per update frame the connection was sent: pycrdt and ypy clients send back every update
    /// they receive, and those echoes must not close them (4429) on a busy or large board, yet
    /// a client cannot make the room apply no-op updates for free forever.
    ///
    /// Why here: the budget is taken in the connection before the room sees an update (cheap,
    /// and a client over its rate never reaches the room), and only the room, which holds the
    /// document, knows whether the update was new. The refund comes back through these
    /// counters; the reader waits for them only when its budget is empty
    /// (`connection::take_budget`), so the hot path costs two relaxed atomics.
    pub fn judged(&self, nothing_new: bool) {
        let shared = &self.shared;
        if nothing_new
            && shared
                .echo_credit
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_sub(1))
                .is_ok()
        {
            shared.refunds.fetch_add(1, Ordering::Relaxed);
        }
        shared.judged.fetch_add(1, Ordering::Release);
        shared.judged_notify.notify_one();
    }

    /// Takes the refunds the room made since the last call.
    pub fn take_refunds(&self) -> usize {
        self.shared.refunds.swap(0, Ordering::Relaxed)
    }

    /// How many of this connection's updates the room has handled.
    pub fn judged_count(&self) -> u64 {
        self.shared.judged.load(Ordering::Acquire)
    }

    /// Resolves after the room has handled an update of this connection (at once if it did
    /// since the last wait).
    pub async fn next_judged(&self) {
        self.shared.judged_notify.notified().await;
    }

    fn close_slow_consumer(&self, what: &str) {
        self.close(
            CloseCode::TryAgainLater,
            &format!("slow consumer: outgoing queue full ({what}); reconnect to resync"),
        );
    }

    /// Asks the writer to close the connection with this code; the first request wins.
    pub fn close(&self, code: CloseCode, reason: &str) {
        self.shared.request_close(code, reason);
    }

    /// Resolves once a close was requested (by the room, the writer, the reader or shutdown).
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await;
    }

    /// Resolves once the writer has written a sync step 2 to the socket (at once if it did
    /// before): a sync answer ends with its step 2, so all of it has left by then.
    pub async fn answered(&self) {
        self.shared.answered.cancelled().await;
    }

    /// The handle the socket's reader queues its control frames with.
    pub fn control_sender(&self) -> ControlSender {
        ControlSender {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Whether the connection is closing or gone.
    pub fn is_closed(&self) -> bool {
        self.shared.closing.load(Ordering::Acquire)
            || self.shared.receiver_gone.load(Ordering::Acquire)
    }
}

fn is_update(frame: &[u8]) -> bool {
    matches!(frame, [MSG_SYNC, MSG_SYNC_STEP_2 | MSG_SYNC_UPDATE, ..])
}

impl Shared {
    fn request_close(&self, code: CloseCode, reason: &str) {
        let _ = self.close.set(CloseRequest {
            code,
            reason: close_reason(reason),
        });
        self.closing.store(true, Ordering::Release);
        self.closed.cancel();
    }
}

impl OutboxReceiver {
    /// The next frame to send, or the close request once the connection must close. Frames
    /// still queued when a close is requested are dropped: the client will resync.
    pub async fn next(&mut self) -> Next {
        loop {
            if self.shared.closing.load(Ordering::Acquire) {
                return Next::Close(self.close_request());
            }
            if let Some(piece) = self.next_piece() {
                return Next::Frame(piece);
            }
            if let Some(item) = self.shared.try_pop() {
                if let Some(next) = self.take(item) {
                    return next;
                }
                continue;
            }
            // The room dropped this connection without a reason: it is going away.
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return Next::Close(CloseRequest {
                    code: CloseCode::GoingAway,
                    reason: "board closed".into(),
                });
            }
            // A push (or the last sender's drop) between the pop above and this wait leaves a
            // permit, so the wait returns at once: nothing is missed, and dropping the wait
            // (this future is raced in `select!`s) loses nothing queued.
            tokio::select! {
                biased;
                () = self.shared.closed.cancelled() => return Next::Close(self.close_request()),
                () = self.shared.item_ready.notified() => {}
            }
        }
    }

    /// The next piece of the answer being sent, if any.
    fn next_piece(&mut self) -> Option<Bytes> {
        let (pieces, next) = self.answer.as_mut()?;
        let piece = pieces.get(*next).cloned();
        *next += 1;
        if *next >= pieces.len() {
            self.answer = None;
        }
        piece
    }

    /// A dequeued entry: its frame, its answer's first piece (the rest follow), or its
    /// control bytes.
    fn take(&mut self, item: Queued) -> Option<Next> {
        match item {
            Queued::Frame(frame) => {
                self.shared
                    .queued_bytes
                    .fetch_sub(frame.len(), Ordering::Relaxed);
                Some(Next::Frame(frame))
            }
            Queued::Answer(pieces) => {
                self.answer = Some((pieces, 0));
                self.next_piece().map(Next::Frame)
            }
            Queued::Control(framed) => Some(Next::Control(framed)),
        }
    }

    /// A frame (or control bytes) already queued, without waiting: never [`Next::Close`], and
    /// none once a close is requested.
    pub fn try_next(&mut self) -> Option<Next> {
        if self.shared.closing.load(Ordering::Acquire) {
            return None;
        }
        loop {
            if let Some(piece) = self.next_piece() {
                return Some(Next::Frame(piece));
            }
            let item = self.shared.try_pop()?;
            if let Some(next) = self.take(item) {
                return Some(next);
            }
        }
    }

    /// Resolves once a close was requested (by the room, the reader or shutdown).
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await;
    }

    /// The writer wrote a sync step 2 to the socket (see [`Outbox::answered`]).
    pub fn mark_answered(&self) {
        self.shared.answered.cancel();
    }

    /// The signal [`OutboxReceiver::closed`] waits on, to watch while the receiver is borrowed.
    pub fn close_signal(&self) -> CancellationToken {
        self.shared.closed.clone()
    }

    pub fn close_request(&self) -> CloseRequest {
        self.shared.close.get().cloned().unwrap_or(CloseRequest {
            code: CloseCode::GoingAway,
            reason: "closing".into(),
        })
    }

    /// Requests a close from the connection's side (bad input, shutdown).
    pub fn close(&self, code: CloseCode, reason: &str) {
        self.shared.request_close(code, reason);
    }
}

/// What the writer does next.
#[derive(Debug)]
pub enum Next {
    /// A binary frame's payload.
    Frame(Bytes),
    /// Bytes already framed (see [`ControlSender`]).
    Control(Bytes),
    Close(CloseRequest),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Bytes {
        Bytes::from(vec![0u8; len])
    }

    #[tokio::test]
    async fn a_full_queue_closes_the_connection_with_1013() {
        let (tx, mut rx) = outbox(OutboxLimits {
            max_frames: 2,
            max_bytes: 1 << 20,
        });
        tx.push(frame(1)).unwrap();
        tx.push(frame(1)).unwrap();
        assert_eq!(tx.push(frame(1)), Err(PushError::Full));
        assert!(tx.is_closed());
        assert_eq!(tx.push(frame(1)), Err(PushError::Closed));
        let Next::Close(request) = rx.next().await else {
            panic!("the close comes before queued frames")
        };
        assert_eq!(request.code, CloseCode::TryAgainLater);
        assert!(request.reason.contains("slow consumer"));
    }

    #[tokio::test]
    async fn the_byte_budget_counts_what_is_queued_not_what_was_sent() {
        let (tx, mut rx) = outbox(OutboxLimits {
            max_frames: 100,
            max_bytes: 10,
        });
        tx.push(frame(30)).unwrap(); // alone on an empty queue: allowed
        assert!(matches!(rx.next().await, Next::Frame(f) if f.len() == 30));
        tx.push(frame(6)).unwrap();
        tx.push(frame(4)).unwrap();
        assert_eq!(tx.push(frame(1)), Err(PushError::Full));
    }

    #[tokio::test]
    async fn answered_resolves_once_the_writer_marks_it_and_stays_resolved() {
        use futures_util::FutureExt;
        let (tx, rx) = outbox(OutboxLimits {
            max_frames: 4,
            max_bytes: 100,
        });
        let waiting = tx.answered();
        tokio::pin!(waiting);
        assert!((&mut waiting).now_or_never().is_none());
        rx.mark_answered();
        assert!(waiting.now_or_never().is_some());
        assert!(
            tx.answered().now_or_never().is_some(),
            "later waits resolve at once"
        );
    }

    #[tokio::test]
    async fn an_answer_larger_than_the_byte_budget_is_sent_piece_by_piece_in_order() {
        let (tx, mut rx) = outbox(OutboxLimits {
            max_frames: 4,
            max_bytes: 10,
        });
        let pieces: Arc<[Bytes]> = vec![frame(8), frame(8), frame(8)].into();
        tx.push(Outgoing::Answer(Arc::clone(&pieces))).unwrap();
        tx.push(frame(5)).unwrap();
        tx.push(frame(5)).unwrap();
        assert_eq!(
            tx.push(frame(1)),
            Err(PushError::Full),
            "what follows still counts"
        );
        let (tx, mut rx2) = outbox(OutboxLimits {
            max_frames: 4,
            max_bytes: 10,
        });
        drop(rx);
        tx.push(Outgoing::Answer(Arc::clone(&pieces))).unwrap();
        tx.push(frame(3)).unwrap();
        let mut lens = Vec::new();
        while let Some(Next::Frame(f)) = rx2.try_next() {
            lens.push(f.len());
        }
        assert_eq!(lens, [8, 8, 8, 3]);
        // The pieces are the shared ones, not copies.
        assert_eq!(Arc::strong_count(&pieces), 1);
        rx = rx2;
        tx.push(Outgoing::Answer(pieces)).unwrap();
        assert!(matches!(rx.next().await, Next::Frame(f) if f.len() == 8));
    }

    #[tokio::test]
    async fn the_first_close_reason_wins() {
        let (tx, mut rx) = outbox(OutboxLimits {
            max_frames: 4,
            max_bytes: 100,
        });
        tx.close(CloseCode::ServiceRestart, "restarting");
        rx.close(CloseCode::InvalidPayload, "bad");
        assert!(matches!(
            rx.next().await,
            Next::Close(CloseRequest {
                code: CloseCode::ServiceRestart,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn an_emptied_queue_gives_back_what_a_burst_grew_it_by() {
        let (tx, mut rx) = outbox(OutboxLimits {
            max_frames: 1024,
            max_bytes: 1 << 20,
        });
        for _ in 0..500 {
            tx.push(frame(1)).unwrap();
        }
        assert!(tx.shared.queue().capacity() >= 500);
        while rx.try_next().is_some() {}
        assert!(tx.shared.queue().capacity() <= IDLE_SLOTS);
        tx.push(frame(1)).unwrap();
        assert!(matches!(rx.next().await, Next::Frame(_)));
    }

    #[tokio::test]
    async fn the_writer_is_woken_by_a_push_and_closes_once_every_sender_is_gone() {
        let (tx, mut rx) = outbox(OutboxLimits {
            max_frames: 4,
            max_bytes: 100,
        });
        let second = tx.clone();
        let pushing = async {
            tokio::task::yield_now().await;
            second.push(frame(3)).unwrap();
        };
        let (next, ()) = tokio::join!(rx.next(), pushing);
        assert!(matches!(next, Next::Frame(f) if f.len() == 3));
        // Frames queued before the last sender went are still sent, then the close.
        tx.push(frame(2)).unwrap();
        drop(tx);
        assert!(matches!(rx.next().await, Next::Frame(f) if f.len() == 2));
        drop(second);
        let Next::Close(request) = rx.next().await else {
            panic!("no sender is left: the connection closes")
        };
        assert_eq!(request.code, CloseCode::GoingAway);
    }

    #[tokio::test]
    async fn nothing_is_queued_for_a_writer_that_is_gone() {
        let (tx, rx) = outbox(OutboxLimits {
            max_frames: 4,
            max_bytes: 100,
        });
        tx.push(frame(1)).unwrap();
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.push(frame(1)), Err(PushError::Closed));
        assert!(tx.shared.queue().is_empty());
    }

    #[tokio::test]
    async fn control_bytes_go_out_in_order_and_do_not_keep_a_connection_open() {
        let (tx, mut rx) = outbox(OutboxLimits {
            max_frames: 2,
            max_bytes: 100,
        });
        let control = tx.control_sender();
        tx.push(frame(1)).unwrap();
        control.send(Bytes::from_static(&[0x8a, 0]));
        // Full: a further pong is dropped, not queued past the limit, and closes nothing.
        control.send(Bytes::from_static(&[0x8a, 0]));
        assert!(!tx.is_closed());
        assert!(matches!(rx.try_next(), Some(Next::Frame(f)) if f.len() == 1));
        assert!(matches!(rx.try_next(), Some(Next::Control(c)) if c[..] == [0x8a, 0]));
        assert!(rx.try_next().is_none());
        drop(tx);
        let Next::Close(request) = rx.next().await else {
            panic!("the reader's control handle is not a sender")
        };
        assert_eq!(request.code, CloseCode::GoingAway);
        drop(rx);
        control.send(Bytes::from_static(&[0x8a, 0]));
    }

    #[tokio::test]
    async fn no_op_updates_are_refunded_at_most_once_per_update_sent() {
        let (tx, _rx) = outbox(OutboxLimits {
            max_frames: 8,
            max_bytes: 1 << 20,
        });
        tx.push(funnel_protocol::wire::encode_update(&[0, 0]))
            .unwrap();
        tx.push(Bytes::from_static(&[1, 0])).unwrap(); // awareness: no credit
        tx.judged(true);
        tx.judged(true);
        tx.judged(false);
        assert_eq!(tx.take_refunds(), 1);
        assert_eq!(tx.take_refunds(), 0);
        assert_eq!(tx.judged_count(), 3);
        // A permit is left: the wait returns at once.
        tx.next_judged().await;
    }
}
