//! The bus within one process: a [`MemoryHub`] stands for Redis, and each [`MemoryBus`] made from
//! it for one instance. Used by tests (several "instances" in one process) and by a single
//! instance, where it costs nothing and delivers to nobody.
//!
//! Delivery is immediate and never loses a message unless a subscriber's queue is full (then that
//! subscriber gets a [`BusEvent::Gap`](super::BusEvent::Gap), as with Redis).

use super::{Bus, BusMessage, BusPayload, BusStatus, Fanout, InstanceId, Subscription};
use crate::metrics::Metrics;
use async_trait::async_trait;
use funnel_protocol::BoardId;
use std::sync::Arc;

/// What the instances of one process share: every subscription of every bus made from it.
#[derive(Clone)]
pub struct MemoryHub {
    fanout: Arc<Fanout>,
}

impl Default for MemoryHub {
    fn default() -> Self {
        Self {
            fanout: Arc::new(Fanout::new(true)),
        }
    }
}

impl MemoryHub {
    /// A bus for a new instance on this hub.
    pub fn bus(&self, metrics: Metrics) -> MemoryBus {
        MemoryBus {
            instance: InstanceId::random(),
            fanout: Arc::clone(&self.fanout),
            metrics,
        }
    }
}

/// One instance's bus on a [`MemoryHub`].
pub struct MemoryBus {
    instance: InstanceId,
    fanout: Arc<Fanout>,
    metrics: Metrics,
}

#[async_trait]
impl Bus for MemoryBus {
    fn instance(&self) -> InstanceId {
        self.instance
    }

    fn publish(&self, board: &BoardId, payload: BusPayload) {
        let message = BusMessage {
            origin: self.instance,
            sent_at_ms: super::wall_clock_ms(),
            board: board.clone(),
            payload,
        };
        self.metrics.bus_published.inc();
        let outcome = self.fanout.deliver(&message);
        self.metrics.bus_received.inc_by(outcome.delivered as u64);
        if outcome.dropped > 0 {
            self.metrics.bus_dropped.inc_by(outcome.dropped as u64);
            tracing::debug!(
                board = %board,
                subscribers = outcome.dropped,
                "bus subscribers behind: message dropped, they catch up from storage"
            );
        }
    }

    async fn subscribe(&self, board: &BoardId) -> Subscription {
        self.fanout.register(board, self.instance).0
    }

    fn status(&self) -> BusStatus {
        BusStatus::Up
    }
}
