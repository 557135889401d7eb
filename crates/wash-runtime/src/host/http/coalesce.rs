//! Small response bodies go out in one write.
//!
//! A guest hands back its response before it has written the body: the
//! head, the body bytes and the end of the stream reach hyper at three
//! different moments. Served as they come, a short body costs two or three
//! socket writes (and as many wake-ups of the client). Before the response
//! goes to hyper, [`coalesce`] gives the guest a few scheduler turns, then at
//! most [`MAX_WAIT`], to finish the body. If it does, and the body is small,
//! the whole response is sent at once, with a `content-length`. Otherwise
//! what was read is replayed and the rest streams as usual, so a slow or
//! endless body (server-sent events) only loses that short wait.
//!
//! The turns alone are not enough: a P3 guest writes its body from a task
//! that the instance's own driver runs, on whichever worker thread it lands
//! on, and it may need a few of its own wake-ups before the stream ends.
//! Four yields here can be over before that thread gets to it. The timer is
//! only armed when the turns did not suffice, so the common case costs none.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime_wasi_http::WasiBody;

/// Scheduler turns a body may take to end before it is streamed instead.
const MAX_TURNS: usize = 4;
/// After the turns, how long a body may take to end before it is streamed.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_millis(2);
/// Bodies larger than this are streamed.
const MAX_BYTES: usize = 64 * 1024;

/// Reads ahead in `response`'s body for a few scheduler turns; see the
/// module docs.
pub(crate) async fn coalesce(response: Response<WasiBody>) -> Response<WasiBody> {
    if response.body().is_end_stream() {
        return response;
    }
    let (parts, mut body) = response.into_parts();
    let mut read = Prefetched::default();
    let mut turns = 0;
    let mut deadline = None;
    let ended = loop {
        let next = match std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx)))
            .await
        {
            Poll::Ready(next) => next,
            Poll::Pending if turns < MAX_TURNS => {
                turns += 1;
                tokio::task::yield_now().await;
                continue;
            }
            Poll::Pending => {
                let deadline =
                    *deadline.get_or_insert_with(|| tokio::time::Instant::now() + MAX_WAIT);
                match tokio::time::timeout_at(deadline, body.frame()).await {
                    Ok(next) => next,
                    Err(_elapsed) => break false,
                }
            }
        };
        match next {
            None => break true,
            Some(Ok(frame)) => {
                let trailers = frame.is_trailers();
                read.push(frame);
                // Trailers end the body but cannot ride on a content-length.
                if trailers || read.bytes > MAX_BYTES {
                    break false;
                }
            }
            Some(Err(error)) => {
                read.error = Some(error);
                break true;
            }
        }
    };
    if !ended {
        read.rest = Some(body);
    }
    Response::from_parts(parts, read.boxed_unsync())
}

/// Frames read ahead, then whatever of the body is left.
#[derive(Default)]
struct Prefetched {
    frames: VecDeque<Frame<Bytes>>,
    bytes: usize,
    /// An error the body ended with, after its frames.
    error: Option<wasmtime_wasi_http::Error>,
    rest: Option<WasiBody>,
}

impl Prefetched {
    fn push(&mut self, frame: Frame<Bytes>) {
        if let Some(data) = frame.data_ref() {
            if data.is_empty() {
                return;
            }
            self.bytes += data.len();
        }
        self.frames.push_back(frame);
    }
}

impl Body for Prefetched {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(frame) = this.frames.pop_front() {
            if let Some(data) = frame.data_ref() {
                this.bytes -= data.len();
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(error) = this.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        match this.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(|rest| rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match &self.rest {
            // Fully read (trailers always leave a rest): hyper sends a
            // content-length.
            None if self.error.is_none() => SizeHint::with_exact(self.bytes as u64),
            None => SizeHint::new(),
            Some(rest) => {
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + self.bytes as u64);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + self.bytes as u64);
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    fn respond(body: WasiBody) -> Response<WasiBody> {
        Response::new(body)
    }

    fn channel_body() -> (
        futures::channel::mpsc::UnboundedSender<Result<Frame<Bytes>, wasmtime_wasi_http::Error>>,
        WasiBody,
    ) {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        (tx, StreamBody::new(rx).boxed_unsync())
    }

    #[tokio::test]
    async fn a_body_that_ends_soon_gets_an_exact_length() {
        let (tx, body) = channel_body();
        let writer = tokio::spawn(async move {
            tokio::task::yield_now().await;
            tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"hello "))))
                .unwrap();
            tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"world"))))
                .unwrap();
        });
        let response = coalesce(respond(body)).await;
        writer.await.unwrap();
        assert_eq!(response.body().size_hint().exact(), Some(11));
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello world");
    }

    #[tokio::test]
    async fn a_body_that_takes_more_than_the_turns_still_gets_a_length() {
        // As a P3 guest's body does when its driver needs several wake-ups.
        let (tx, body) = channel_body();
        let writer = tokio::spawn(async move {
            for _ in 0..MAX_TURNS * 4 {
                tokio::task::yield_now().await;
            }
            tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"late"))))
                .unwrap();
        });
        let response = coalesce(respond(body)).await;
        writer.await.unwrap();
        assert_eq!(response.body().size_hint().exact(), Some(4));
    }

    #[tokio::test]
    async fn a_body_still_open_streams_after_what_was_read() {
        let (tx, body) = channel_body();
        tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"first "))))
            .unwrap();
        let response = coalesce(respond(body)).await;
        // Not ended yet: no length promised, the first chunk kept.
        assert_eq!(response.body().size_hint().exact(), None);
        assert!(!response.body().is_end_stream());
        tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"second"))))
            .unwrap();
        drop(tx);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"first second");
    }

    #[tokio::test]
    async fn trailers_and_large_bodies_are_streamed() {
        let (tx, body) = channel_body();
        tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"x"))))
            .unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-sum", http::HeaderValue::from_static("1"));
        tx.unbounded_send(Ok(Frame::trailers(trailers))).unwrap();
        drop(tx);
        let response = coalesce(respond(body)).await;
        assert_eq!(response.body().size_hint().exact(), None);
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-sum"], "1");
        assert_eq!(&collected.to_bytes()[..], b"x");

        let big = Bytes::from(vec![7u8; MAX_BYTES + 1]);
        let body = Full::new(big.clone())
            .map_err(|never| match never {})
            .boxed_unsync();
        let response = coalesce(respond(body)).await;
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(bytes, big);
    }

    #[tokio::test]
    async fn an_error_after_data_is_kept_in_order() {
        let (tx, body) = channel_body();
        tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"partial"))))
            .unwrap();
        tx.unbounded_send(Err(wasmtime_wasi_http::Error::ConnectionTerminated))
            .unwrap();
        let mut body = coalesce(respond(body)).await.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.data_ref().unwrap(), &Bytes::from_static(b"partial"));
        assert!(body.frame().await.unwrap().is_err());
    }
}
