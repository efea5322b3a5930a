//! The pool's NATS JetStream, typed: three KV buckets and one work-queue stream (see
//! [`super`]). Every call is bounded by [`CALL_TIMEOUT`], so a NATS that went away costs a
//! caller two seconds at most, never a hang.
//!
//! May call: `record`.

use super::record::{ClusterMatch, NodeInfo, WorkItem};
use async_nats::jetstream::{self, consumer::pull, kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use std::time::Duration;

/// The longest any one call to NATS may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node keeps an item without a heartbeat before NATS gives it to another node.
pub const ACK_WAIT: Duration = Duration::from_secs(5);

const MATCHES: &str = "swarmpack-matches";
const IDEMPOTENCY: &str = "swarmpack-idempotency";
const NODES: &str = "swarmpack-nodes";
const EVENTS: &str = "swarmpack-events";
const WORK: &str = "swarmpack-work";
const WORKERS: &str = "nodes";

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// `url` is [`redacted`].
    #[error("cannot reach NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("NATS JetStream: {what}")]
    Call {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("NATS JetStream: {what}: no answer within {CALL_TIMEOUT:?}")]
    TimedOut { what: String },
    #[error("{what}: the stored JSON does not parse")]
    Corrupt {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The answer of a create-if-absent.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Yes(u64),
    AlreadyThere,
}

/// A value and the revision an update must name.
pub struct Versioned<T> {
    pub value: T,
    pub revision: u64,
}

/// The pool's JetStream.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    matches: kv::Store,
    idempotency: kv::Store,
    nodes: kv::Store,
    events: kv::Store,
    workers: jetstream::consumer::Consumer<pull::Config>,
    js: jetstream::Context,
}

async fn bounded<T, E>(
    what: impl Into<String>,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BusError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let what = what.into();
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(BusError::Call {
            what,
            source: e.into(),
        }),
        Err(_) => Err(BusError::TimedOut { what }),
    }
}

fn json<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, BusError> {
    serde_json::from_slice(bytes).map_err(|source| BusError::Corrupt {
        what: what.to_string(),
        source,
    })
}

fn bytes_of<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("a record serialises"))
}

async fn bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
) -> Result<kv::Store, BusError> {
    if let Ok(Ok(store)) = tokio::time::timeout(CALL_TIMEOUT, js.get_key_value(name)).await {
        return Ok(store);
    }
    let config = |num_replicas| kv::Config {
        bucket: name.to_string(),
        history: 1,
        max_age,
        num_replicas,
        ..Default::default()
    };
    match bounded(
        format!("KV bucket {name}"),
        js.create_key_value(config(REPLICAS)),
    )
    .await
    {
        Ok(store) => Ok(store),
        // A single server (no NATS cluster) keeps one copy.
        Err(_) => bounded(format!("KV bucket {name}"), js.create_key_value(config(1))).await,
    }
}

/// Copies of each bucket and of the stream when NATS is a cluster (a single server keeps
/// one): losing one NATS machine of three loses nothing.
const REPLICAS: usize = 3;

async fn work_stream(js: &jetstream::Context) -> Result<stream::Stream, BusError> {
    if let Ok(Ok(s)) = tokio::time::timeout(CALL_TIMEOUT, js.get_stream(WORK)).await {
        return Ok(s);
    }
    let config = |num_replicas| stream::Config {
        name: WORK.to_string(),
        subjects: vec!["swarmpack.work.>".to_string()],
        retention: stream::RetentionPolicy::WorkQueue,
        duplicate_window: Duration::from_secs(120),
        num_replicas,
        ..Default::default()
    };
    match bounded("work stream", js.create_stream(config(REPLICAS))).await {
        Ok(s) => Ok(s),
        Err(_) => bounded("work stream", js.create_stream(config(1))).await,
    }
}

impl Bus {
    /// Connects and makes (or opens) the buckets and the stream. An unreachable NATS is an
    /// error at once, not a wait.
    pub async fn connect(url: &str, node: &str) -> Result<Bus, BusError> {
        let servers = servers(url).map_err(|source| BusError::Connect {
            url: redacted(url),
            source: source.into(),
        })?;
        let client = async_nats::ConnectOptions::new()
            .name(format!("swarmpack-control-{node}"))
            .connection_timeout(CALL_TIMEOUT)
            .connect(servers)
            .await
            .map_err(|source| BusError::Connect {
                url: redacted(url),
                source,
            })?;
        let js = jetstream::new(client.clone());
        let day = Duration::from_secs(24 * 3600);
        let matches = bucket(&js, MATCHES, Duration::ZERO).await?;
        let idempotency = bucket(&js, IDEMPOTENCY, day).await?;
        let nodes = bucket(&js, NODES, Duration::from_secs(60)).await?;
        let events = bucket(&js, EVENTS, day).await?;
        let work = work_stream(&js).await?;
        let workers = bounded(
            "work consumer",
            work.get_or_create_consumer(
                WORKERS,
                pull::Config {
                    durable_name: Some(WORKERS.to_string()),
                    ack_wait: ACK_WAIT,
                    ..Default::default()
                },
            ),
        )
        .await?;
        Ok(Bus {
            client,
            matches,
            idempotency,
            nodes,
            events,
            workers,
            js,
        })
    }

    /// Whether the connection is up now (writes are refused while it is not).
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    async fn create(store: &kv::Store, key: &str, value: Bytes) -> Result<Created, BusError> {
        match tokio::time::timeout(CALL_TIMEOUT, store.create(key, value)).await {
            Ok(Ok(rev)) => Ok(Created::Yes(rev)),
            Ok(Err(e)) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                Ok(Created::AlreadyThere)
            }
            Ok(Err(e)) => Err(BusError::Call {
                what: format!("create {key}"),
                source: Box::new(e),
            }),
            Err(_) => Err(BusError::TimedOut {
                what: format!("create {key}"),
            }),
        }
    }

    async fn entry<T: serde::de::DeserializeOwned>(
        store: &kv::Store,
        key: &str,
    ) -> Result<Option<Versioned<T>>, BusError> {
        let entry = bounded(format!("read {key}"), store.entry(key)).await?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => Ok(Some(Versioned {
                value: json(key, &e.value)?,
                revision: e.revision,
            })),
            _ => Ok(None),
        }
    }

    /// Creates the match's record, unless one is there.
    pub async fn create_match(&self, m: &ClusterMatch) -> Result<Created, BusError> {
        Bus::create(&self.matches, &m.record.spec.match_id, bytes_of(m)).await
    }

    pub async fn get_match(&self, id: &str) -> Result<Option<Versioned<ClusterMatch>>, BusError> {
        Bus::entry(&self.matches, id).await
    }

    /// Replaces the record if it is still at `revision`: `Ok(None)` when another node changed
    /// it first (read it again and retry).
    pub async fn update_match(
        &self,
        m: &ClusterMatch,
        revision: u64,
    ) -> Result<Option<u64>, BusError> {
        let key = &m.record.spec.match_id;
        match tokio::time::timeout(
            CALL_TIMEOUT,
            self.matches.update(key, bytes_of(m), revision),
        )
        .await
        {
            Ok(Ok(rev)) => Ok(Some(rev)),
            Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Ok(Err(e)) => Err(BusError::Call {
                what: format!("update {key}"),
                source: Box::new(e),
            }),
            Err(_) => Err(BusError::TimedOut {
                what: format!("update {key}"),
            }),
        }
    }

    /// Changes the record with `change` (which returns false to leave it as it is), retrying
    /// on a concurrent update; the record as it is now.
    pub async fn change_match(
        &self,
        id: &str,
        mut change: impl FnMut(&mut ClusterMatch) -> bool,
    ) -> Result<Option<ClusterMatch>, BusError> {
        for _ in 0..20 {
            let Some(Versioned {
                mut value,
                revision,
            }) = self.get_match(id).await?
            else {
                return Ok(None);
            };
            if !change(&mut value) {
                return Ok(Some(value));
            }
            if self.update_match(&value, revision).await?.is_some() {
                return Ok(Some(value));
            }
        }
        Err(BusError::TimedOut {
            what: format!("update {id} (changed by others 20 times in a row)"),
        })
    }

    /// Every match record.
    pub async fn all_matches(&self) -> Result<Vec<ClusterMatch>, BusError> {
        let keys: Vec<String> = match bounded("list matches", self.matches.keys()).await {
            Ok(keys) => keys.filter_map(|k| async { k.ok() }).collect().await,
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for key in keys {
            if let Some(v) = self.get_match(&key).await? {
                out.push(v.value);
            }
        }
        Ok(out)
    }

    /// Claims an idempotency key (stored under its SHA-256) with `placeholder`.
    pub async fn claim_key(&self, key: &str, placeholder: &[u8]) -> Result<Created, BusError> {
        Bus::create(
            &self.idempotency,
            &idempotency_key(key),
            Bytes::copy_from_slice(placeholder),
        )
        .await
    }

    pub async fn key_answer<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, BusError> {
        Ok(Bus::entry(&self.idempotency, &idempotency_key(key))
            .await?
            .map(|v| v.value))
    }

    pub async fn set_key_answer(&self, key: &str, answer: &[u8]) -> Result<(), BusError> {
        bounded(
            "idempotency answer",
            self.idempotency
                .put(idempotency_key(key), Bytes::copy_from_slice(answer)),
        )
        .await
        .map(drop)
    }

    /// Frees a claimed key whose request failed, so a retry is not stuck behind it.
    pub async fn release_key(&self, key: &str) -> Result<(), BusError> {
        bounded(
            "idempotency release",
            self.idempotency.delete(idempotency_key(key)),
        )
        .await
    }

    /// Lets one node through with event `id`: true for the first to ask.
    pub async fn claim_event(&self, id: &str, node: &str) -> Result<bool, BusError> {
        Ok(
            Bus::create(&self.events, &kv_safe(id), Bytes::from(node.to_string())).await?
                != Created::AlreadyThere,
        )
    }

    /// Puts a work item on the queue (a retry of the same `dedupe` id within two minutes is
    /// one item).
    pub async fn publish_work(&self, item: &WorkItem, dedupe: &str) -> Result<(), BusError> {
        let publish = jetstream::context::Publish::build()
            .payload(bytes_of(item))
            .message_id(dedupe);
        let ack = bounded(
            format!("queue {}", item.subject()),
            self.js.send_publish(item.subject(), publish),
        )
        .await?;
        bounded(
            format!("queue {}", item.subject()),
            std::future::IntoFuture::into_future(ack),
        )
        .await?;
        Ok(())
    }

    /// At most one item, waiting up to `wait` for it.
    pub async fn fetch_work(
        &self,
        wait: Duration,
    ) -> Result<Option<(WorkItem, jetstream::Message)>, BusError> {
        let mut batch = bounded(
            "fetch work",
            self.workers
                .fetch()
                .max_messages(1)
                .expires(wait)
                .messages(),
        )
        .await?;
        match tokio::time::timeout(wait + CALL_TIMEOUT, batch.next()).await {
            Ok(Some(Ok(msg))) => match serde_json::from_slice::<WorkItem>(&msg.payload) {
                Ok(item) => Ok(Some((item, msg))),
                Err(e) => {
                    tracing::error!("a work item that does not parse, dropped: {e}");
                    let _ = msg.ack_with(jetstream::AckKind::Term).await;
                    Ok(None)
                }
            },
            Ok(Some(Err(e))) => Err(BusError::Call {
                what: "fetch work".into(),
                source: e,
            }),
            Ok(None) | Err(_) => Ok(None),
        }
    }

    /// Writes this node's entry.
    pub async fn put_node(&self, info: &NodeInfo) -> Result<(), BusError> {
        bounded("node entry", self.nodes.put(&info.node, bytes_of(info)))
            .await
            .map(drop)
    }

    /// Removes this node's entry (a clean stop).
    pub async fn remove_node(&self, node: &str) -> Result<(), BusError> {
        bounded("node entry", self.nodes.delete(node)).await
    }

    /// Every node entry still kept (dead ones included, for an hour).
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, BusError> {
        let keys: Vec<String> = bounded("list nodes", self.nodes.keys())
            .await?
            .filter_map(|k| async { k.ok() })
            .collect()
            .await;
        let mut out = Vec::new();
        for key in keys {
            if let Some(v) = Bus::entry::<NodeInfo>(&self.nodes, &key).await? {
                out.push(v.value);
            }
        }
        Ok(out)
    }
}

/// Heartbeats, releases and acknowledgements of a held item; failures are for the caller to
/// log (NATS may be away; the item then comes back to some node after [`ACK_WAIT`]).
pub async fn ack(msg: &jetstream::Message, kind: jetstream::AckKind) -> Result<(), BusError> {
    bounded("acknowledge a work item", msg.ack_with(kind)).await
}

/// The servers of `--cluster`: one NATS URL, or several separated by commas (the machines
/// of a NATS cluster).
pub fn servers(url: &str) -> Result<Vec<async_nats::ServerAddr>, std::io::Error> {
    url.split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>())
        .collect()
}

/// `--cluster` for logs and errors: a user, password or token in a server's URL is hidden.
pub fn redacted(url: &str) -> String {
    url.split(',')
        .map(|u| match u.trim().split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://(hidden)@{host}"),
                None => u.trim().to_string(),
            },
            None => u.trim().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A role's dedupe id on the work stream.
pub fn dedupe_id(item: &WorkItem, generation: u32) -> String {
    format!(
        "{}-{}-{}-{generation}",
        item.match_id,
        item.created_ms,
        item.role.name()
    )
}

/// Idempotency keys are any visible ASCII: stored under their SHA-256.
fn idempotency_key(key: &str) -> String {
    crate::hex::encode(&crate::hex::sha256(key.as_bytes()))
}

/// KV keys allow `[-/_=.a-zA-Z0-9]`; event ids are letters, digits, '_' and '-' already, and
/// anything else is hashed.
fn kv_safe(id: &str) -> String {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        id.to_string()
    } else {
        crate::hex::encode(&crate::hex::sha256(id.as_bytes()))
    }
}
