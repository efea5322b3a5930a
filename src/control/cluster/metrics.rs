//! A node's own figures, at `GET /metrics` on its API (OpenMetrics text, every series
//! labelled with the node's name).
//!
//! May call: nothing of the crate.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::borrow::Cow;

pub struct NodeMetrics {
    registry: Registry,
    load: Gauge,
    roles: Gauge,
    connected: Gauge,
    takeovers: Counter,
    sent_elsewhere: Counter,
}

impl NodeMetrics {
    pub fn new(node: &str, capacity: u32) -> NodeMetrics {
        let labels = [(Cow::Borrowed("node"), Cow::Owned(node.to_string()))];
        let mut registry = Registry::with_prefix_and_labels("swarmpack_node", labels.into_iter());
        let capacity_gauge = Gauge::<i64>::default();
        capacity_gauge.set(i64::from(capacity));
        let m = NodeMetrics {
            load: Gauge::default(),
            roles: Gauge::default(),
            connected: Gauge::default(),
            takeovers: Counter::default(),
            sent_elsewhere: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "capacity_units",
            "Capacity units this node offers (--capacity)",
            capacity_gauge,
        );
        registry.register(
            "load_units",
            "Capacity units of the match roles this node holds",
            m.load.clone(),
        );
        registry.register(
            "roles",
            "Match roles (primary or standby runs) this node holds",
            m.roles.clone(),
        );
        registry.register(
            "nats_connected",
            "1 while this node is connected to NATS",
            m.connected.clone(),
        );
        registry.register(
            "takeovers",
            "Match roles this node took over from a node that died or left",
            m.takeovers.clone(),
        );
        registry.register(
            "events_sent_elsewhere",
            "Events this node's runs saw that another node sent as webhooks",
            m.sent_elsewhere.clone(),
        );
        NodeMetrics { registry, ..m }
    }

    pub fn set_load(&self, units: u32, roles: usize) {
        self.load.set(i64::from(units));
        self.roles.set(roles as i64);
    }

    pub fn set_connected(&self, up: bool) {
        self.connected.set(i64::from(up));
    }

    pub fn took_over(&self) {
        self.takeovers.inc();
    }

    pub fn event_sent_elsewhere(&self) {
        self.sent_elsewhere.inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
