//! `wasmcloud:messaging@0.2.0`: components publish and request through the
//! `consumer` interface; components exporting `handler` receive messages on
//! the subjects their workload subscribes them to.
//!
//! A workload configures it with a `wasmcloud:messaging` host interface
//! entry: `backend` (`memory` or `nats`), `url` (NATS), `subscriptions`
//! (comma-separated subjects, NATS wildcards allowed), `queue-group`, and,
//! for deliveries that survive failures, `stream` (a JetStream stream) with
//! an optional `durable` consumer name. A handler that returns an error or
//! traps leaves a JetStream message unacknowledged, so it is delivered
//! again; on core subjects the failure is logged.

mod bindings;
mod memory;
mod nats;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use self::bindings::types::BrokerMessage;
use self::bindings::{MessageHandlerPre, consumer};
pub use self::memory::InMemoryMessaging;
pub use self::nats::NatsMessaging;
use super::backends::BackendSet;
use super::{
    BackendChoice, BackendError, Backends, ComponentHandle, HostPlugin, ItemBind, PluginError,
    PluginFuture, ProvidedInterface, ResolvedWorkload, StoreState, WorkloadBind, split_list,
};
use crate::instance::{PluginView, Plugins};

const ID: &str = "wasmcloud-messaging";
const HANDLER: &str = "wasmcloud:messaging/handler";
/// Messages one subscription handles at once.
const CONCURRENCY: usize = 64;

/// A message on a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Subject it was published on.
    pub subject: String,
    /// Payload.
    pub body: Bytes,
    /// Where a reply goes, if the sender awaits one.
    pub reply_to: Option<String>,
}

/// Settles a delivery on backends that redeliver.
pub trait Acknowledge: Send {
    /// Handled: do not deliver again.
    fn ack(self: Box<Self>) -> BoxFuture<'static, ()>;
    /// Not handled: deliver again later.
    fn nak(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// A message handed to a subscriber.
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// Present when the backend redelivers unacknowledged messages.
    pub acknowledge: Option<Box<dyn Acknowledge>>,
}

/// What to subscribe to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// Subjects (wildcards allowed).
    pub subjects: Vec<String>,
    /// Members of one queue group share the messages.
    pub queue_group: Option<String>,
    /// JetStream stream and durable consumer, for redelivery.
    pub durable: Option<(String, String)>,
}

/// A stream of deliveries; dropping it unsubscribes.
pub type Deliveries = BoxStream<'static, Delivery>;

/// A message broker.
///
/// ```
/// # async fn demo() -> Result<(), wash_runtime::plugin::BackendError> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use futures::StreamExt;
/// use wash_runtime::plugin::messaging::{
///     InMemoryMessaging, Message, Messaging, MessagingBackend, Subscription,
/// };
///
/// let bus = Arc::new(InMemoryMessaging::default());
/// let mut orders = bus
///     .subscribe(Subscription { subjects: vec!["orders.>".into()], ..Default::default() })
///     .await?;
/// bus.publish(Message { subject: "orders.new".into(), body: "42".into(), reply_to: None })
///     .await?;
/// let delivery = orders.next().await.expect("delivered");
/// assert_eq!(delivery.message.body, "42");
///
/// // Nobody listens here: a request fails at once, as on NATS.
/// let unanswered = bus.request("billing.x".into(), "?".into(), Duration::from_secs(1)).await;
/// assert!(unanswered.is_err());
///
/// // Serve it to guests as the default backend of `wasmcloud:messaging`.
/// let plugin = Messaging::new(bus);
/// # drop(plugin);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub trait MessagingBackend: Send + Sync + 'static {
    /// Names the backend in logs and errors.
    fn describe(&self) -> String;
    /// Publishes a message.
    fn publish(&self, message: Message) -> BoxFuture<'_, Result<(), BackendError>>;
    /// Publishes a request and waits for the first reply.
    fn request(
        &self,
        subject: String,
        body: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Message, BackendError>>;
    /// Subscribes.
    fn subscribe(
        &self,
        subscription: Subscription,
    ) -> BoxFuture<'_, Result<Deliveries, BackendError>>;
}

/// What the plugin keeps for one workload: its backend, what it subscribes
/// to, and the tasks that dispatch its deliveries (aborted when this is
/// dropped, so a workload that ends by any path stops receiving).
pub struct WorkloadMessaging {
    backend: Arc<dyn MessagingBackend>,
    subscription: Option<Subscription>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for WorkloadMessaging {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct MessagingBinding {
    backend: Arc<dyn MessagingBackend>,
}

/// Provides `wasmcloud:messaging`.
pub struct Messaging {
    backends: BackendSet<dyn MessagingBackend>,
    /// Dispatch tasks running right now, across workloads.
    dispatching: Arc<AtomicUsize>,
}

impl Messaging {
    /// A plugin whose default backend is `default`.
    pub fn new(default: Arc<dyn MessagingBackend>) -> Self {
        Self {
            backends: BackendSet::new(default),
            dispatching: Arc::default(),
        }
    }

    /// A plugin with an in-process default backend.
    pub fn in_memory() -> Self {
        Self::new(Arc::new(InMemoryMessaging::default()))
    }

    /// Keeps backends built from workload config in `backends` (shared with
    /// other plugins) instead of a cache of its own.
    pub fn with_backends(mut self, backends: Backends) -> Self {
        self.backends.share(backends);
        self
    }

    /// Subscriptions delivering to handlers right now, across workloads.
    pub fn dispatchers(&self) -> usize {
        self.dispatching.load(Ordering::Relaxed)
    }
}

/// Builds the backend a workload chose.
async fn make(choice: BackendChoice) -> Result<Arc<dyn MessagingBackend>, BackendError> {
    Ok(match choice {
        BackendChoice::Nats { url } => Arc::new(NatsMessaging::connect(&url).await?),
        _ => Arc::new(InMemoryMessaging::default()),
    })
}

impl HostPlugin for Messaging {
    type WorkloadState = WorkloadMessaging;

    fn id(&self) -> &str {
        ID
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        vec![ProvidedInterface::new(
            "wasmcloud",
            "messaging",
            "0.2.0",
            &["consumer", "types"],
        )]
    }

    fn called_interfaces(&self) -> Vec<crate::types::WitInterface> {
        vec![crate::types::WitInterface {
            namespace: "wasmcloud".into(),
            package: "messaging".into(),
            interfaces: vec!["handler".into()],
            version: Some("0.2.0".into()),
            ..Default::default()
        }]
    }

    fn on_workload_bind<'a>(
        &'a self,
        workload: &'a WorkloadBind<'a>,
    ) -> PluginFuture<'a, WorkloadMessaging> {
        Box::pin(async move {
            let mut backend = self.backends.default_backend();
            let mut subscription = None;
            for entry in &workload.interfaces {
                let choice = BackendChoice::parse(
                    ID,
                    entry,
                    &["memory", "nats"],
                    &["subscriptions", "queue-group", "stream", "durable"],
                )?;
                if choice != BackendChoice::Default {
                    backend = self.backends.choose(ID, choice, make).await?;
                }
                let config = &entry.config;
                if let Some(subjects) = config.get("subscriptions") {
                    let durable = config.get("stream").map(|stream| {
                        let consumer = config.get("durable").cloned().unwrap_or_else(|| {
                            crate::plugin::nats::encode_bucket(&workload.workload.name)
                        });
                        (stream.clone(), consumer)
                    });
                    subscription = Some(Subscription {
                        subjects: split_list(subjects),
                        queue_group: config.get("queue-group").cloned(),
                        durable,
                    });
                } else if config.contains_key("stream") || config.contains_key("queue-group") {
                    return Err(PluginError::config(
                        ID,
                        "subscriptions",
                        "`stream` and `queue-group` need subjects to subscribe to",
                    ));
                }
            }
            Ok(WorkloadMessaging {
                backend,
                subscription,
                tasks: Vec::new(),
            })
        })
    }

    fn on_workload_item_bind(
        &self,
        state: &WorkloadMessaging,
        item: &mut ItemBind<'_>,
    ) -> Result<(), PluginError> {
        item.bindings.insert(MessagingBinding {
            backend: state.backend.clone(),
        });
        let view = StoreState::plugin_view;
        self::bindings::types::add_to_linker::<StoreState, Plugins>(item.linker, view)
            .map_err(|e| PluginError::link(ID, "wasmcloud:messaging/types", e))?;
        if item.imports_interface("consumer") {
            consumer::add_to_linker::<StoreState, Plugins>(item.linker, view)
                .map_err(|e| PluginError::link(ID, "wasmcloud:messaging/consumer", e))?;
        }
        Ok(())
    }

    fn on_workload_resolved<'a>(
        &'a self,
        state: &'a mut WorkloadMessaging,
        workload: &'a ResolvedWorkload<'a>,
    ) -> PluginFuture<'a, ()> {
        Box::pin(async move {
            let handlers: Vec<&ComponentHandle> = workload
                .components
                .iter()
                .filter(|c| c.exports_interface(HANDLER))
                .collect();
            let Some(subscription) = state.subscription.clone() else {
                if let Some(handler) = handlers.first() {
                    tracing::warn!(
                        workload_id = %workload.workload_id,
                        component = %handler.name(),
                        "component exports {HANDLER} but the workload subscribes it to nothing"
                    );
                }
                return Ok(());
            };
            if handlers.is_empty() {
                return Err(PluginError::config(
                    ID,
                    "subscriptions",
                    format!("no component of the workload exports {HANDLER}"),
                ));
            }
            for handler in handlers {
                let pre = MessageHandlerPre::new(handler.instance_pre().clone())
                    .map_err(|e| PluginError::link(ID, HANDLER, e))?;
                let deliveries = state
                    .backend
                    .subscribe(subscription.clone())
                    .await
                    .map_err(|e| PluginError::backend(ID, e))?;
                let live = Dispatching::new(&self.dispatching);
                state.tasks.push(tokio::spawn(dispatch(
                    deliveries,
                    handler.clone(),
                    pre,
                    live,
                )));
            }
            Ok(())
        })
    }

    fn on_workload_unbind<'a>(
        &'a self,
        _workload_id: &'a str,
        mut state: WorkloadMessaging,
    ) -> PluginFuture<'a, ()> {
        Box::pin(async move {
            // Dropping the delivery streams unsubscribes; waiting for the
            // aborted tasks means nothing is delivered once this returns.
            for task in std::mem::take(&mut state.tasks) {
                task.abort();
                let _ = task.await;
            }
            Ok(())
        })
    }
}

/// Counts a dispatch task for as long as it lives (aborted or not).
struct Dispatching(Arc<AtomicUsize>);

impl Dispatching {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for Dispatching {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Hands each delivery to a fresh instance of `handler`.
async fn dispatch(
    mut deliveries: Deliveries,
    handler: ComponentHandle,
    pre: MessageHandlerPre<StoreState>,
    _live: Dispatching,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    while let Some(delivery) = deliveries.next().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (handler, pre) = (handler.clone(), pre.clone());
        tokio::spawn(async move {
            let subject = delivery.message.subject.clone();
            let outcome = handle_one(&handler, &pre, delivery.message).await;
            let redelivers = delivery.acknowledge.is_some();
            match (&outcome, delivery.acknowledge) {
                (Ok(()), Some(acknowledge)) => acknowledge.ack().await,
                (Err(_), Some(acknowledge)) => acknowledge.nak().await,
                (_, None) => {}
            }
            if let Err(error) = outcome {
                tracing::warn!(
                    workload = %handler.workload_id(),
                    component = %handler.name(),
                    %subject,
                    "message not handled: {error}{}",
                    if redelivers { "; it will be delivered again" } else { "" }
                );
            }
            drop(permit);
        });
    }
}

async fn handle_one(
    handler: &ComponentHandle,
    pre: &MessageHandlerPre<StoreState>,
    message: Message,
) -> Result<(), String> {
    let call = async {
        let mut store = handler
            .new_store()
            .await
            .map_err(|e| crate::engine::describe_error(&e))?;
        let instance = pre
            .instantiate_async(&mut *store)
            .await
            .map_err(|e| crate::engine::describe_error(&e))?;
        let message = BrokerMessage {
            subject: message.subject,
            body: message.body.to_vec(),
            reply_to: message.reply_to,
        };
        instance
            .wasmcloud_messaging_handler()
            .call_handle_message(&mut *store, &message)
            .await
            .map_err(|e| crate::engine::describe_error(&e))?
            .map_err(|e| format!("the handler returned an error: {e}"))
    };
    match tokio::time::timeout(handler.timeout(), call).await {
        Ok(result) => result,
        Err(_) => Err(format!("deadline of {:?} exceeded", handler.timeout())),
    }
}

impl PluginView<'_> {
    fn messaging(&self) -> wasmtime::Result<Arc<dyn MessagingBackend>> {
        self.bindings
            .get::<MessagingBinding>()
            .map(|b| b.backend.clone())
            .ok_or_else(|| {
                wasmtime::format_err!("wasmcloud:messaging is not bound for this component")
            })
    }
}

impl consumer::Host for PluginView<'_> {
    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<BrokerMessage, String>> {
        let backend = self.messaging()?;
        let timeout = Duration::from_millis(u64::from(timeout_ms.max(1)));
        Ok(backend
            .request(subject, body.into(), timeout)
            .await
            .map(|reply| BrokerMessage {
                subject: reply.subject,
                body: reply.body.to_vec(),
                reply_to: reply.reply_to,
            })
            .map_err(|e| e.report()))
    }

    async fn publish(&mut self, message: BrokerMessage) -> wasmtime::Result<Result<(), String>> {
        let backend = self.messaging()?;
        Ok(backend
            .publish(Message {
                subject: message.subject,
                body: message.body.into(),
                reply_to: message.reply_to,
            })
            .await
            .map_err(|e| e.report()))
    }
}

impl self::bindings::types::Host for PluginView<'_> {}

/// NATS subject matching: `*` is one token, `>` one or more trailing ones.
pub(crate) fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for part in pattern.split('.') {
        match (part, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (literal, Some(token)) if literal == token => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn nats_wildcards() {
        assert!(subject_matches("a.b", "a.b"));
        assert!(!subject_matches("a.b", "a.b.c"));
        assert!(subject_matches("a.*", "a.b"));
        assert!(!subject_matches("a.*", "a.b.c"));
        assert!(subject_matches("a.>", "a.b.c"));
        assert!(!subject_matches("a.>", "a"));
        assert!(subject_matches("*.b.>", "x.b.y.z"));
    }
}
