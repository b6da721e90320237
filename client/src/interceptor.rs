//! Producer interceptors: Java's `ProducerInterceptor` (KIP-42) and the `ProducerInterceptors`
//! chain that runs them.
//!
//! An interceptor sees every record before it is serialized and partitioned
//! ([`ProducerInterceptor::on_send`], which may change it), and every outcome
//! ([`ProducerInterceptor::on_acknowledgement`]), for example to add tracing headers or
//! count deliveries. The producer runs the configured interceptors, in order, through
//! [`ProducerInterceptors`]. As in Java, a failing interceptor never fails the send: its error
//! or panic is logged and the chain goes on.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::Error;
use crate::record::{ProducerRecord, RecordMetadata};

/// Intercepts the records a producer sends: Java's
/// `org.apache.kafka.clients.producer.ProducerInterceptor`.
///
/// Interceptors run on the sending tasks and threads, and on the task that completes requests,
/// hence `Send + Sync`. They should be quick: `on_send` runs in the caller's `send`, and
/// `on_acknowledgement` on the I/O path.
pub trait ProducerInterceptor<K, V>: Send + Sync {
    /// Called for every record passed to `send`, before its key and value are serialized and
    /// before its partition is chosen. The interceptor may change the record (add headers, set
    /// a partition, replace the value, ...); the next interceptor sees the changed record.
    ///
    /// An `Err` (or a panic) is logged and ignored; the record is still sent. See
    /// [`ProducerInterceptors::on_send`] for what happens to changes made before the failure.
    fn on_send(&self, record: &mut ProducerRecord<K, V>) -> Result<(), Error>;

    /// Called once per record when the send completed: acknowledged by the broker (`error` is
    /// `None`), or failed (`error` is the reason), including failures before the record left
    /// the client (serialization, unknown topic, buffer full, ...).
    ///
    /// `metadata` is always given, as Java's 3.x clients do: for a failure it carries the
    /// topic, the partition if known (else -1) and -1 for the offset, timestamp and sizes.
    fn on_acknowledgement(&self, metadata: &RecordMetadata, error: Option<&Error>);

    /// Called once when the producer closes. Does nothing by default.
    fn close(&self) {}
}

/// The configured interceptors, in order: Java's `ProducerInterceptors`. Runs each callback on
/// every interceptor and isolates their failures.
///
/// Cheap to clone (the interceptors are shared).
pub struct ProducerInterceptors<K, V> {
    interceptors: Vec<Arc<dyn ProducerInterceptor<K, V>>>,
}

impl<K, V> ProducerInterceptors<K, V> {
    /// A chain of `interceptors`, run in this order.
    pub fn new(interceptors: Vec<Arc<dyn ProducerInterceptor<K, V>>>) -> Self {
        ProducerInterceptors { interceptors }
    }

    /// Whether there are no interceptors (the producer can then skip the calls).
    pub fn is_empty(&self) -> bool {
        self.interceptors.is_empty()
    }

    /// The number of interceptors.
    pub fn len(&self) -> usize {
        self.interceptors.len()
    }

    /// Runs [`ProducerInterceptor::on_send`] of every interceptor, in order, on `record`.
    ///
    /// Never fails. An interceptor that returns an error or panics is logged (`tracing::warn!`)
    /// and skipped; the next one is still called.
    ///
    /// Difference from Java: a Java interceptor returns a new record, so one that throws leaves
    /// the record as the previous interceptor returned it. Here interceptors change the record
    /// in place, and changes made before an error or a panic stay (taking a snapshot would need
    /// `K: Clone, V: Clone`). Use [`on_send_with_rollback`](Self::on_send_with_rollback) for
    /// Java's behaviour when the key and value types can be cloned.
    pub fn on_send(&self, record: &mut ProducerRecord<K, V>) {
        for interceptor in &self.interceptors {
            match catch_unwind(AssertUnwindSafe(|| interceptor.on_send(record))) {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(
                    topic = %record.topic,
                    partition = ?record.partition,
                    %error,
                    "error executing interceptor on_send callback"
                ),
                Err(panic) => tracing::warn!(
                    topic = %record.topic,
                    partition = ?record.partition,
                    panic = panic_message(panic.as_ref()),
                    "interceptor on_send callback panicked"
                ),
            }
        }
    }

    /// Like [`on_send`](Self::on_send), with Java's semantics for failures: the record is
    /// copied before each interceptor, and restored when the interceptor returns an error or
    /// panics, so the next interceptor sees the record as the previous successful one left it.
    /// Costs one clone of the record per interceptor.
    pub fn on_send_with_rollback(&self, record: &mut ProducerRecord<K, V>)
    where
        K: Clone,
        V: Clone,
    {
        for interceptor in &self.interceptors {
            let before = record.clone();
            let failure = match catch_unwind(AssertUnwindSafe(|| interceptor.on_send(record))) {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(panic) => Some(format!("panic: {}", panic_message(panic.as_ref()))),
            };
            if let Some(failure) = failure {
                *record = before;
                tracing::warn!(
                    topic = %record.topic,
                    partition = ?record.partition,
                    error = %failure,
                    "error executing interceptor on_send callback; record left unchanged"
                );
            }
        }
    }

    /// Runs [`ProducerInterceptor::on_acknowledgement`] of every interceptor, in order. A panic
    /// is logged and the next interceptor is still called.
    pub fn on_acknowledgement(&self, metadata: &RecordMetadata, error: Option<&Error>) {
        for interceptor in &self.interceptors {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
                interceptor.on_acknowledgement(metadata, error)
            })) {
                tracing::warn!(
                    topic = %metadata.topic,
                    partition = metadata.partition,
                    panic = panic_message(panic.as_ref()),
                    "interceptor on_acknowledgement callback panicked"
                );
            }
        }
    }

    /// Reports a send that failed before the broker acknowledged it (Java's `onSendError`):
    /// calls [`on_acknowledgement`](Self::on_acknowledgement) with `error` and metadata built
    /// as Java builds it: the topic, the partition or -1 when none was chosen yet, and -1 for
    /// the offset, the timestamp and both serialized sizes.
    pub fn on_send_error(&self, topic: &str, partition: Option<i32>, error: &Error) {
        if self.interceptors.is_empty() {
            return;
        }
        let metadata = RecordMetadata {
            topic: topic.to_owned(),
            partition: partition.unwrap_or(-1),
            offset: -1,
            timestamp: -1,
            serialized_key_size: -1,
            serialized_value_size: -1,
        };
        self.on_acknowledgement(&metadata, Some(error));
    }

    /// Closes every interceptor, in order. A panic is logged and the next interceptor is still
    /// closed.
    pub fn close(&self) {
        for interceptor in &self.interceptors {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| interceptor.close())) {
                tracing::error!(
                    panic = panic_message(panic.as_ref()),
                    "failed to close producer interceptor"
                );
            }
        }
    }
}

impl<K, V> Clone for ProducerInterceptors<K, V> {
    fn clone(&self) -> Self {
        ProducerInterceptors {
            interceptors: self.interceptors.clone(),
        }
    }
}

impl<K, V> Default for ProducerInterceptors<K, V> {
    /// No interceptors.
    fn default() -> Self {
        ProducerInterceptors {
            interceptors: Vec::new(),
        }
    }
}

impl<K, V> fmt::Debug for ProducerInterceptors<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerInterceptors")
            .field("len", &self.interceptors.len())
            .finish()
    }
}

/// The message of a panic payload, when it is a string (as `panic!` with a message makes it).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use kafka_wire::ErrorCode;

    use super::*;

    type Log = Arc<Mutex<Vec<String>>>;

    /// Appends its name to the value and records every call.
    struct Appender {
        name: &'static str,
        log: Log,
    }

    impl ProducerInterceptor<String, String> for Appender {
        fn on_send(&self, record: &mut ProducerRecord<String, String>) -> Result<(), Error> {
            self.log.lock().unwrap().push(format!("send {}", self.name));
            if let Some(v) = record.value.as_mut() {
                v.push_str(self.name);
            }
            Ok(())
        }

        fn on_acknowledgement(&self, metadata: &RecordMetadata, error: Option<&Error>) {
            self.log.lock().unwrap().push(format!(
                "ack {} {}/{}@{} {}",
                self.name,
                metadata.topic,
                metadata.partition,
                metadata.offset,
                error.map_or("ok".to_owned(), |e| e.to_string())
            ));
        }

        fn close(&self) {
            self.log
                .lock()
                .unwrap()
                .push(format!("close {}", self.name));
        }
    }

    /// Changes the record, then fails (with an error, or a panic).
    struct Failing {
        panic: bool,
        log: Log,
    }

    impl ProducerInterceptor<String, String> for Failing {
        fn on_send(&self, record: &mut ProducerRecord<String, String>) -> Result<(), Error> {
            self.log.lock().unwrap().push("send failing".to_owned());
            record.value = Some("clobbered-".to_owned());
            record.headers.push(crate::Header::new("partial", "yes"));
            if self.panic {
                panic!("interceptor bug");
            }
            Err(Error::InvalidArgument("interceptor refused".into()))
        }

        fn on_acknowledgement(&self, _: &RecordMetadata, _: Option<&Error>) {
            self.log.lock().unwrap().push("ack failing".to_owned());
            if self.panic {
                panic!("ack bug");
            }
        }

        fn close(&self) {
            self.log.lock().unwrap().push("close failing".to_owned());
            if self.panic {
                panic!("close bug");
            }
        }
    }

    fn appender(name: &'static str, log: &Log) -> Arc<dyn ProducerInterceptor<String, String>> {
        Arc::new(Appender {
            name,
            log: log.clone(),
        })
    }

    fn failing(panic: bool, log: &Log) -> Arc<dyn ProducerInterceptor<String, String>> {
        Arc::new(Failing {
            panic,
            log: log.clone(),
        })
    }

    fn record() -> ProducerRecord<String, String> {
        ProducerRecord::new("events", "v-")
    }

    fn metadata() -> RecordMetadata {
        RecordMetadata {
            topic: "events".into(),
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            serialized_key_size: -1,
            serialized_value_size: 3,
        }
    }

    #[test]
    fn on_send_applies_interceptors_in_order() {
        let log = Log::default();
        let chain = ProducerInterceptors::new(vec![appender("a", &log), appender("b", &log)]);
        assert_eq!((chain.len(), chain.is_empty()), (2, false));
        let mut r = record();
        chain.on_send(&mut r);
        assert_eq!(r.value.as_deref(), Some("v-ab"));
        assert_eq!(*log.lock().unwrap(), ["send a", "send b"]);
    }

    #[test]
    fn failing_and_panicking_interceptors_do_not_stop_the_chain() {
        for panic in [false, true] {
            let log = Log::default();
            let chain = ProducerInterceptors::new(vec![
                appender("a", &log),
                failing(panic, &log),
                appender("b", &log),
            ]);
            let mut r = record();
            chain.on_send(&mut r);
            assert_eq!(
                *log.lock().unwrap(),
                ["send a", "send failing", "send b"],
                "panic: {panic}"
            );
            // Without rollback, the failing interceptor's changes stay (documented).
            assert_eq!(r.value.as_deref(), Some("clobbered-b"));
            assert_eq!(r.headers.len(), 1);
        }
    }

    #[test]
    fn rollback_restores_the_record_of_a_failing_interceptor() {
        for panic in [false, true] {
            let log = Log::default();
            let chain = ProducerInterceptors::new(vec![
                appender("a", &log),
                failing(panic, &log),
                appender("b", &log),
            ]);
            let mut r = record().with_header("h", "1");
            chain.on_send_with_rollback(&mut r);
            assert_eq!(r.value.as_deref(), Some("v-ab"), "panic: {panic}");
            assert_eq!(r.headers, [crate::Header::new("h", "1")]);
            assert_eq!(*log.lock().unwrap(), ["send a", "send failing", "send b"]);
        }
    }

    #[test]
    fn acknowledgements_run_in_order_and_survive_panics() {
        let log = Log::default();
        let chain = ProducerInterceptors::new(vec![
            appender("a", &log),
            failing(true, &log),
            appender("b", &log),
        ]);
        chain.on_acknowledgement(&metadata(), None);
        assert_eq!(
            *log.lock().unwrap(),
            [
                "ack a events/2@41 ok",
                "ack failing",
                "ack b events/2@41 ok"
            ]
        );
    }

    #[test]
    fn on_send_error_builds_java_metadata() {
        struct Capture(Mutex<Vec<(RecordMetadata, Option<Error>)>>);
        impl ProducerInterceptor<Bytes, Bytes> for Capture {
            fn on_send(&self, _: &mut ProducerRecord) -> Result<(), Error> {
                Ok(())
            }
            fn on_acknowledgement(&self, metadata: &RecordMetadata, error: Option<&Error>) {
                self.0
                    .lock()
                    .unwrap()
                    .push((metadata.clone(), error.cloned()));
            }
        }
        let capture = Arc::new(Capture(Mutex::new(Vec::new())));
        let chain: ProducerInterceptors<Bytes, Bytes> =
            ProducerInterceptors::new(vec![capture.clone()]);
        let error = Error::kafka(ErrorCode::UnknownTopicOrPartition);
        chain.on_send_error("events", None, &error);
        chain.on_send_error("events", Some(3), &Error::BufferFull);
        let calls = capture.0.lock().unwrap();
        let unknown = |partition| RecordMetadata {
            topic: "events".into(),
            partition,
            offset: -1,
            timestamp: -1,
            serialized_key_size: -1,
            serialized_value_size: -1,
        };
        assert_eq!(calls[0], (unknown(-1), Some(error)));
        assert_eq!(calls[1], (unknown(3), Some(Error::BufferFull)));
    }

    #[test]
    fn errors_are_passed_to_acknowledgements() {
        let log = Log::default();
        let chain = ProducerInterceptors::new(vec![appender("a", &log)]);
        chain.on_send_error(
            "events",
            Some(1),
            &Error::Timeout("delivery.timeout.ms".into()),
        );
        assert_eq!(
            *log.lock().unwrap(),
            ["ack a events/1@-1 timed out: delivery.timeout.ms"]
        );
    }

    #[test]
    fn close_closes_every_interceptor_despite_panics() {
        let log = Log::default();
        let chain = ProducerInterceptors::new(vec![
            appender("a", &log),
            failing(true, &log),
            appender("b", &log),
        ]);
        chain.close();
        assert_eq!(
            *log.lock().unwrap(),
            ["close a", "close failing", "close b"]
        );
    }

    #[test]
    fn empty_clone_debug() {
        let chain: ProducerInterceptors<String, String> = ProducerInterceptors::default();
        assert!(chain.is_empty());
        let mut r = record();
        chain.on_send(&mut r);
        chain.on_acknowledgement(&metadata(), None);
        chain.on_send_error("events", None, &Error::Closed);
        chain.close();
        assert_eq!(r, record());

        let log = Log::default();
        let chain = ProducerInterceptors::new(vec![appender("a", &log)]);
        let copy = chain.clone();
        assert_eq!(copy.len(), 1);
        assert_eq!(format!("{chain:?}"), "ProducerInterceptors { len: 1 }");
        fn send_sync<T: Send + Sync>(_: &T) {}
        send_sync(&copy);
    }
}
