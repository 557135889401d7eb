//! The NATS messaging backend: core NATS for publish, request and plain or
//! queue-group subscriptions; a JetStream durable pull consumer when a
//! subscription names a stream, so unhandled messages are delivered again.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull, stream};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::{Acknowledge, Deliveries, Delivery, Message, MessagingBackend, Subscription};
use crate::plugin::BackendError;
use crate::plugin::nats::{confirm, connect};

/// How long JetStream waits for an ack before delivering again.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// Pause before a nak'ed message is offered again.
const REDELIVERY_DELAY: Duration = Duration::from_millis(500);

/// Messaging over a NATS server.
pub struct NatsMessaging {
    url: String,
    client: async_nats::Client,
}

impl NatsMessaging {
    /// Connects to the NATS server at `url`.
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        Ok(Self::with_client(url, connect(url).await?))
    }

    /// Uses an existing connection.
    pub fn with_client(url: &str, client: async_nats::Client) -> Self {
        Self {
            url: url.to_string(),
            client,
        }
    }

    async fn core(&self, subscription: Subscription) -> Result<Deliveries, BackendError> {
        let mut streams = Vec::new();
        for subject in &subscription.subjects {
            let subscriber = match &subscription.queue_group {
                Some(group) => {
                    self.client
                        .queue_subscribe(subject.clone(), group.clone())
                        .await
                }
                None => self.client.subscribe(subject.clone()).await,
            }
            .map_err(|e| BackendError::new(format!("NATS subscribe to `{subject}`"), e))?;
            streams.push(subscriber.map(|m| Delivery {
                message: Message {
                    subject: m.subject.to_string(),
                    body: m.payload,
                    reply_to: m.reply.map(|r| r.to_string()),
                },
                acknowledge: None,
            }));
        }
        // The workload is reported started only once the server routes to it.
        confirm(&self.client).await?;
        Ok(Box::pin(futures::stream::select_all(streams)))
    }

    async fn durable(
        &self,
        subjects: Vec<String>,
        stream_name: String,
        consumer_name: String,
    ) -> Result<Deliveries, BackendError> {
        let jetstream = jetstream::new(self.client.clone());
        let stream = jetstream
            .get_or_create_stream(stream::Config {
                name: stream_name.clone(),
                subjects: subjects.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| BackendError::new(format!("JetStream stream `{stream_name}`"), e))?;
        let consumer = stream
            .get_or_create_consumer(
                &consumer_name,
                pull::Config {
                    durable_name: Some(consumer_name.clone()),
                    filter_subjects: subjects,
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| BackendError::new(format!("JetStream consumer `{consumer_name}`"), e))?;
        // Re-open the message stream whenever it breaks (e.g. the server
        // restarted): the durable consumer resumes where it was.
        let deliveries = futures::stream::unfold(
            (consumer, None::<pull::Stream>),
            |(consumer, mut messages)| async move {
                loop {
                    let current = match messages.as_mut() {
                        Some(current) => current,
                        None => match consumer.messages().await {
                            Ok(opened) => messages.insert(opened),
                            Err(e) => {
                                tracing::warn!("JetStream consumer unavailable ({e}); retrying");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                continue;
                            }
                        },
                    };
                    match current.next().await {
                        Some(Ok(message)) => {
                            let delivery = Delivery {
                                message: Message {
                                    subject: message.subject.to_string(),
                                    body: message.payload.clone(),
                                    reply_to: None,
                                },
                                acknowledge: Some(Box::new(JetStreamAck(message))),
                            };
                            return Some((delivery, (consumer, messages)));
                        }
                        Some(Err(e)) => {
                            tracing::debug!("JetStream message stream error ({e}); reopening");
                            messages = None;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        None => messages = None,
                    }
                }
            },
        );
        Ok(Box::pin(deliveries))
    }
}

struct JetStreamAck(jetstream::Message);

impl Acknowledge for JetStreamAck {
    fn ack(self: Box<Self>) -> BoxFuture<'static, ()> {
        async move {
            if let Err(e) = self.0.ack().await {
                tracing::warn!("JetStream ack failed: {e}");
            }
        }
        .boxed()
    }

    fn nak(self: Box<Self>) -> BoxFuture<'static, ()> {
        async move {
            if let Err(e) = self.0.ack_with(AckKind::Nak(Some(REDELIVERY_DELAY))).await {
                tracing::warn!("JetStream nak failed: {e}");
            }
        }
        .boxed()
    }
}

impl MessagingBackend for NatsMessaging {
    fn describe(&self) -> String {
        format!("NATS at {}", self.url)
    }

    fn publish(&self, message: Message) -> BoxFuture<'_, Result<(), BackendError>> {
        async move {
            let result = match message.reply_to {
                Some(reply) => {
                    self.client
                        .publish_with_reply(message.subject, reply, message.body)
                        .await
                }
                None => self.client.publish(message.subject, message.body).await,
            };
            result.map_err(|e| BackendError::new("NATS publish", e))?;
            // Surface a broken connection now rather than on a later call.
            self.client
                .flush()
                .await
                .map_err(|e| BackendError::new("NATS publish", e))
        }
        .boxed()
    }

    fn request(
        &self,
        subject: String,
        body: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Message, BackendError>> {
        async move {
            let reply = tokio::time::timeout(timeout, self.client.request(subject.clone(), body))
                .await
                .map_err(|_| {
                    BackendError::message(format!(
                        "request to `{subject}` timed out after {timeout:?}"
                    ))
                })?
                .map_err(|e| BackendError::new(format!("NATS request to `{subject}`"), e))?;
            Ok(Message {
                subject: reply.subject.to_string(),
                body: reply.payload,
                reply_to: reply.reply.map(|r| r.to_string()),
            })
        }
        .boxed()
    }

    fn subscribe(
        &self,
        subscription: Subscription,
    ) -> BoxFuture<'_, Result<Deliveries, BackendError>> {
        async move {
            match subscription.durable.clone() {
                Some((stream, consumer)) => {
                    self.durable(subscription.subjects, stream, consumer).await
                }
                None => self.core(subscription).await,
            }
        }
        .boxed()
    }
}
