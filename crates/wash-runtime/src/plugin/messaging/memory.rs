//! The in-process messaging backend: a bus inside the host with NATS
//! subject semantics (wildcards, queue groups, request/reply inboxes).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::{Deliveries, Delivery, Message, MessagingBackend, Subscription, subject_matches};
use crate::plugin::BackendError;

/// A message bus within this process.
#[derive(Default)]
pub struct InMemoryMessaging {
    subscribers: Mutex<Vec<Subscriber>>,
    next_inbox: AtomicU64,
    turn: AtomicUsize,
}

struct Subscriber {
    pattern: String,
    queue_group: Option<String>,
    sender: mpsc::UnboundedSender<Message>,
}

impl InMemoryMessaging {
    fn subscribers(&self) -> MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(
        &self,
        pattern: &str,
        queue_group: Option<String>,
        sender: mpsc::UnboundedSender<Message>,
    ) {
        self.subscribers().push(Subscriber {
            pattern: pattern.to_string(),
            queue_group,
            sender,
        });
    }

    /// Delivers to every plain subscriber and one member of each queue
    /// group; returns how many received it.
    fn deliver(&self, message: &Message) -> usize {
        let mut subscribers = self.subscribers();
        subscribers.retain(|s| !s.sender.is_closed());
        let matching: Vec<&Subscriber> = subscribers
            .iter()
            .filter(|s| subject_matches(&s.pattern, &message.subject))
            .collect();
        let mut groups: Vec<(&str, Vec<&Subscriber>)> = Vec::new();
        let mut received = 0;
        for subscriber in matching {
            match &subscriber.queue_group {
                None => {
                    received += usize::from(subscriber.sender.send(message.clone()).is_ok());
                }
                Some(group) => match groups.iter_mut().find(|(g, _)| g == group) {
                    Some((_, members)) => members.push(subscriber),
                    None => groups.push((group, vec![subscriber])),
                },
            }
        }
        for (_, members) in groups {
            let pick = self.turn.fetch_add(1, Ordering::Relaxed) % members.len();
            received += usize::from(members[pick].sender.send(message.clone()).is_ok());
        }
        received
    }
}

impl MessagingBackend for InMemoryMessaging {
    fn describe(&self) -> String {
        "in-process bus".into()
    }

    fn publish(&self, message: Message) -> BoxFuture<'_, Result<(), BackendError>> {
        self.deliver(&message);
        futures::future::ready(Ok(())).boxed()
    }

    fn request(
        &self,
        subject: String,
        body: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Message, BackendError>> {
        async move {
            let inbox = format!("_INBOX.{}", self.next_inbox.fetch_add(1, Ordering::Relaxed));
            let (sender, mut replies) = mpsc::unbounded_channel();
            self.add(&inbox, None, sender);
            let received = self.deliver(&Message {
                subject: subject.clone(),
                body,
                reply_to: Some(inbox),
            });
            // As NATS does: a request nobody subscribes to fails at once.
            if received == 0 {
                return Err(BackendError::message(format!(
                    "no responders on `{subject}`"
                )));
            }
            // Dropping `replies` when done unsubscribes the inbox.
            match tokio::time::timeout(timeout, replies.recv()).await {
                Ok(Some(reply)) => Ok(reply),
                Ok(None) => Err(BackendError::message(format!(
                    "no responders on `{subject}`"
                ))),
                Err(_) => Err(BackendError::message(format!(
                    "request to `{subject}` timed out after {timeout:?}"
                ))),
            }
        }
        .boxed()
    }

    fn subscribe(
        &self,
        subscription: Subscription,
    ) -> BoxFuture<'_, Result<Deliveries, BackendError>> {
        let (sender, receiver) = mpsc::unbounded_channel();
        for subject in &subscription.subjects {
            self.add(subject, subscription.queue_group.clone(), sender.clone());
        }
        let deliveries: Deliveries = Box::pin(UnboundedReceiverStream::new(receiver).map(
            |message| Delivery {
                message,
                acknowledge: None,
            },
        ));
        futures::future::ready(Ok(deliveries)).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queue_groups_share_and_plain_subscribers_all_receive() {
        let bus = InMemoryMessaging::default();
        let group = |g: &str| Subscription {
            subjects: vec!["work.>".into()],
            queue_group: Some(g.into()),
            durable: None,
        };
        let mut a = bus.subscribe(group("q")).await.unwrap();
        let mut b = bus.subscribe(group("q")).await.unwrap();
        let mut all = bus
            .subscribe(Subscription {
                subjects: vec!["work.*".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        for i in 0..10 {
            bus.publish(Message {
                subject: format!("work.{i}"),
                body: Bytes::new(),
                reply_to: None,
            })
            .await
            .unwrap();
        }
        let count = |s: &mut Deliveries| {
            let mut n = 0;
            while let Some(Some(_)) = s.next().now_or_never() {
                n += 1;
            }
            n
        };
        let (na, nb) = (count(&mut a), count(&mut b));
        assert_eq!(na + nb, 10);
        assert!(na > 0 && nb > 0, "{na} / {nb}");
        assert_eq!(count(&mut all), 10);
    }
}
