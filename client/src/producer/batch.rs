//! `ProducerBatch` (a batch of records for one partition, built in place) and the shared
//! result its records' delivery futures wait on (Java's `ProduceRequestResult` and
//! `FutureRecordMetadata`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_wire::records::{RecordBatchBuilder, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE};

use crate::error::Error;
use crate::record::RecordMetadata;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition index.
    pub partition: i32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Where a split batch's record went: the new batch's result and the record's index in it.
#[derive(Debug, Clone)]
pub(crate) struct Redirect {
    pub(crate) result: Arc<BatchResult>,
    pub(crate) index: u32,
}

/// How a batch ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Written: the base offset (-1 with acks=0) and the log append time (-1 for CreateTime).
    Done {
        base_offset: i64,
        log_append_time: i64,
    },
    /// Failed; every record gets this error.
    Failed(Error),
    /// Split after MESSAGE_TOO_LARGE: record `i` now lives at `redirects[i]`.
    Split(Arc<Vec<Redirect>>),
}

#[derive(Debug, Default)]
struct ResultState {
    outcome: Option<Outcome>,
    wakers: Vec<Option<Waker>>,
}

/// The result shared by every record of a batch (Java's `ProduceRequestResult`).
#[derive(Debug, Default)]
pub(crate) struct BatchResult {
    state: Mutex<ResultState>,
}

impl BatchResult {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(BatchResult::default())
    }

    /// Completes the result once; later calls are ignored. Wakes every waiter.
    pub(crate) fn complete(&self, outcome: Outcome) {
        let wakers = {
            let mut st = lock(&self.state);
            if st.outcome.is_some() {
                return;
            }
            st.outcome = Some(outcome);
            std::mem::take(&mut st.wakers)
        };
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        lock(&self.state).outcome.is_some()
    }

    /// The outcome, or registers `cx`'s waker in `slot`.
    fn poll_outcome(&self, cx: &mut Context<'_>, slot: &mut Option<usize>) -> Poll<Outcome> {
        let mut st = lock(&self.state);
        if let Some(o) = &st.outcome {
            return Poll::Ready(o.clone());
        }
        match slot {
            Some(i) if *i < st.wakers.len() => {
                let w = &mut st.wakers[*i];
                if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *w = Some(cx.waker().clone());
                }
            }
            _ => {
                *slot = Some(st.wakers.len());
                st.wakers.push(Some(cx.waker().clone()));
            }
        }
        Poll::Pending
    }

    /// Waits until the batch (and, after a split, the batches it became) has completed.
    pub(crate) async fn wait(self: Arc<Self>) {
        let mut pending = vec![self];
        while let Some(r) = pending.pop() {
            let mut slot = None;
            let outcome = std::future::poll_fn(|cx| r.poll_outcome(cx, &mut slot)).await;
            if let Outcome::Split(redirects) = outcome {
                let mut seen: Vec<*const BatchResult> = Vec::new();
                for rd in redirects.iter() {
                    let p = Arc::as_ptr(&rd.result);
                    if !seen.contains(&p) {
                        seen.push(p);
                        pending.push(rd.result.clone());
                    }
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Per-record facts needed to build its [`RecordMetadata`].
#[derive(Debug, Clone)]
pub(crate) struct RecordInfo {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) timestamp: i64,
    pub(crate) key_size: i32,
    pub(crate) value_size: i32,
}

impl RecordInfo {
    pub(crate) fn metadata(
        &self,
        base_offset: i64,
        index: u32,
        log_append_time: i64,
    ) -> RecordMetadata {
        RecordMetadata {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: if base_offset < 0 {
                -1
            } else {
                base_offset + i64::from(index)
            },
            timestamp: if log_append_time >= 0 {
                log_append_time
            } else {
                self.timestamp
            },
            serialized_key_size: self.key_size,
            serialized_value_size: self.value_size,
        }
    }
}

/// Resolves to the [`RecordMetadata`] of a sent record once the broker acknowledged it, or to
/// the error that made its delivery fail. Returned by `Producer::send`.
///
/// Dropping it does not cancel the delivery.
///
/// # Cancel safety
/// Cancel safe: the record is delivered whether or not the future is polled.
#[derive(Debug)]
#[must_use = "the future reports whether the record was delivered"]
pub struct DeliveryFuture {
    result: Arc<BatchResult>,
    index: u32,
    info: RecordInfo,
    slot: Option<usize>,
}

impl DeliveryFuture {
    pub(crate) fn new(result: Arc<BatchResult>, index: u32, info: RecordInfo) -> Self {
        DeliveryFuture {
            result,
            index,
            info,
            slot: None,
        }
    }

    /// The partition the record was appended to.
    pub fn partition(&self) -> i32 {
        self.info.partition
    }

    /// Whether the outcome is known (polling would return `Ready`).
    pub fn is_done(&self) -> bool {
        self.result.is_done()
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            let outcome = match this.result.poll_outcome(cx, &mut this.slot) {
                Poll::Ready(o) => o,
                Poll::Pending => return Poll::Pending,
            };
            match outcome {
                Outcome::Done {
                    base_offset,
                    log_append_time,
                } => {
                    return Poll::Ready(Ok(this.info.metadata(
                        base_offset,
                        this.index,
                        log_append_time,
                    )))
                }
                Outcome::Failed(e) => return Poll::Ready(Err(e)),
                Outcome::Split(redirects) => match redirects.get(this.index as usize) {
                    Some(rd) => {
                        this.result = rd.result.clone();
                        this.index = rd.index;
                        this.slot = None;
                    }
                    None => {
                        return Poll::Ready(Err(Error::Protocol(
                            "record lost while splitting its batch".into(),
                        )))
                    }
                },
            }
        }
    }
}

/// A user callback for one record's delivery.
pub(crate) type Callback = Box<dyn FnOnce(Result<RecordMetadata, Error>) + Send>;

/// Receives every acknowledgement (the producer's interceptor chain, type-erased).
pub(crate) trait Acknowledge: Send + Sync {
    fn on_acknowledgement(&self, metadata: &RecordMetadata, error: Option<&Error>);
}

/// What runs when a record's delivery completes: the interceptors' `on_acknowledgement`,
/// then the user's callback (Java's `InterceptorCallback`).
pub(crate) struct Thunk {
    /// Set by the accumulator when the record is appended.
    pub(crate) info: Option<RecordInfo>,
    pub(crate) interceptors: Option<Arc<dyn Acknowledge>>,
    pub(crate) callback: Option<Callback>,
}

impl Thunk {
    fn run(self, metadata: RecordMetadata, error: Option<&Error>) {
        if let Some(i) = &self.interceptors {
            i.on_acknowledgement(&metadata, error);
        }
        if let Some(cb) = self.callback {
            cb(match error {
                None => Ok(metadata),
                Some(e) => Err(e.clone()),
            });
        }
    }
}

/// Producer id and epoch (KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerIdAndEpoch {
    /// Producer id, -1 when none.
    pub producer_id: i64,
    /// Epoch, -1 when none.
    pub epoch: i16,
}

impl ProducerIdAndEpoch {
    /// No producer id.
    pub const NONE: ProducerIdAndEpoch = ProducerIdAndEpoch {
        producer_id: NO_PRODUCER_ID,
        epoch: NO_PRODUCER_EPOCH,
    };

    /// Whether this is a real producer id.
    pub fn is_valid(&self) -> bool {
        self.producer_id >= 0
    }
}

/// A record kept to re-append it when a batch is split.
#[derive(Debug, Clone)]
pub(crate) struct SplitRecord {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
}

/// A batch of records for one partition: open (being appended to) until drained, then closed
/// into its wire form. Java's `ProducerBatch`.
pub(crate) struct ProducerBatch {
    /// Unique id (for the idempotence bookkeeping).
    pub(crate) id: u64,
    pub(crate) tp: TopicPartition,
    builder: Option<RecordBatchBuilder>,
    /// The finished batch once closed.
    built: Option<Bytes>,
    /// The pooled buffer left over when the batch was compressed into a new one.
    spare: Option<BytesMut>,
    pub(crate) record_count: u32,
    /// Bytes accounted in the BufferPool for this batch.
    pub(crate) pool_size: usize,
    pub(crate) batch_size_limit: usize,
    pub(crate) created: Instant,
    pub(crate) last_attempt: Instant,
    pub(crate) attempts: u32,
    /// Whether the batch has been sent at least once (so it may already be on the broker).
    pub(crate) sent: bool,
    pub(crate) result: Arc<BatchResult>,
    pub(crate) thunks: Vec<(u32, Thunk)>,
    /// Producer state written into the batch, if any.
    pub(crate) producer: ProducerIdAndEpoch,
    pub(crate) base_sequence: i32,
    /// Set when the sequences were rewritten after an epoch bump (Java's
    /// `sequenceHasBeenReset`).
    pub(crate) sequence_reset: bool,
    pub(crate) is_transactional: bool,
}

impl std::fmt::Debug for ProducerBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBatch")
            .field("id", &self.id)
            .field("tp", &self.tp)
            .field("record_count", &self.record_count)
            .field("attempts", &self.attempts)
            .field("base_sequence", &self.base_sequence)
            .finish_non_exhaustive()
    }
}

/// A batch dropped before completing (the producer was closed forcefully, or the runtime
/// shut down) fails its records rather than leaving their futures pending forever.
impl Drop for ProducerBatch {
    fn drop(&mut self) {
        if !self.result.is_done() {
            self.complete(Outcome::Failed(Error::Closed));
        }
    }
}

impl ProducerBatch {
    pub(crate) fn new(
        id: u64,
        tp: TopicPartition,
        builder: RecordBatchBuilder,
        pool_size: usize,
        batch_size_limit: usize,
        now: Instant,
    ) -> Self {
        ProducerBatch {
            id,
            tp,
            builder: Some(builder),
            built: None,
            spare: None,
            record_count: 0,
            pool_size,
            batch_size_limit,
            created: now,
            last_attempt: now,
            attempts: 0,
            sent: false,
            result: BatchResult::new(),
            thunks: Vec::new(),
            producer: ProducerIdAndEpoch::NONE,
            base_sequence: NO_SEQUENCE,
            sequence_reset: false,
            is_transactional: false,
        }
    }

    /// Whether the batch is still open for appends.
    pub(crate) fn is_open(&self) -> bool {
        self.builder.is_some()
    }

    /// Appends the record (the caller checked it fits). Returns its index, or `None` when
    /// the batch is closed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn try_append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        thunk: Option<Thunk>,
    ) -> Result<Option<u32>, Error> {
        let Some(b) = self.builder.as_mut() else {
            return Ok(None);
        };
        let index = b.append(timestamp, key, value, headers)? as u32;
        self.record_count += 1;
        if let Some(t) = thunk {
            self.thunks.push((index, t));
        }
        Ok(Some(index))
    }

    /// The batch's estimated size if this record were appended (`usize::MAX` once closed).
    pub(crate) fn size_if_appended(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        match &self.builder {
            Some(b) => b.size_in_bytes_if_appended(timestamp, key, value, headers),
            None => usize::MAX,
        }
    }

    /// Whether the batch is full (no further record of typical size fits).
    pub(crate) fn is_full(&self) -> bool {
        match &self.builder {
            Some(b) => b.estimated_size() >= self.batch_size_limit,
            None => true,
        }
    }

    /// Size of the open batch if it were written uncompressed (0 once closed).
    pub(crate) fn uncompressed_size(&self) -> usize {
        self.builder.as_ref().map_or(0, |b| b.uncompressed_size())
    }

    /// Estimated size in bytes (exact once closed).
    pub(crate) fn estimated_size(&self) -> usize {
        match (&self.builder, &self.built) {
            (Some(b), _) => b.estimated_size(),
            (None, Some(bytes)) => bytes.len(),
            (None, None) => 0,
        }
    }

    /// Writes the producer state into the open builder (before [`close`](Self::close)).
    pub(crate) fn set_producer_state(
        &mut self,
        producer: ProducerIdAndEpoch,
        base_sequence: i32,
        is_transactional: bool,
    ) {
        self.producer = producer;
        self.base_sequence = base_sequence;
        self.is_transactional = is_transactional;
        if let Some(b) = self.builder.as_mut() {
            b.set_producer_state(producer.producer_id, producer.epoch, base_sequence);
            b.set_transactional(is_transactional);
        } else if let Some(bytes) = self.built.take() {
            let mut m = bytes
                .try_into_mut()
                .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
            // The batch was produced by our own builder; patching cannot fail.
            let _ = kafka_wire::records::set_producer_state(
                &mut m,
                producer.producer_id,
                producer.epoch,
                base_sequence,
            );
            self.built = Some(m.freeze());
        }
    }

    /// Closes the batch: builds its wire form (compressing once). Idempotent.
    pub(crate) fn close(&mut self) -> Result<(), Error> {
        let Some(b) = self.builder.take() else {
            return Ok(());
        };
        let (bytes, spare) = b.finish_and_recycle()?;
        self.built = Some(bytes);
        self.spare = spare;
        Ok(())
    }

    /// The wire form (after [`close`](Self::close)).
    pub(crate) fn bytes(&self) -> Option<&Bytes> {
        self.built.as_ref()
    }

    /// Takes the buffer back for the pool, once nothing else references it.
    pub(crate) fn take_buffer(&mut self) -> Option<BytesMut> {
        if let Some(b) = self.builder.take() {
            return b.finish_and_recycle().ok().and_then(|(_, spare)| spare);
        }
        if let Some(spare) = self.spare.take() {
            self.built = None;
            return Some(spare);
        }
        self.built.take().and_then(|b| b.try_into_mut().ok())
    }

    /// Completes every record with `outcome` and runs the callbacks.
    pub(crate) fn complete(&mut self, outcome: Outcome) {
        match &outcome {
            Outcome::Done {
                base_offset,
                log_append_time,
            } => {
                for (i, thunk) in self.thunks.drain(..) {
                    if let Some(info) = &thunk.info {
                        let md = info.metadata(*base_offset, i, *log_append_time);
                        thunk.run(md, None);
                    }
                }
            }
            Outcome::Failed(e) => {
                for (i, thunk) in self.thunks.drain(..) {
                    if let Some(info) = &thunk.info {
                        let md = info.metadata(-1, i, -1);
                        thunk.run(md, Some(e));
                    }
                }
            }
            Outcome::Split(_) => {}
        }
        self.result.complete(outcome);
    }

    /// The records of the closed batch, to re-append them into smaller batches.
    pub(crate) fn records_for_split(
        &self,
        max_decompressed: usize,
    ) -> Result<Vec<SplitRecord>, Error> {
        let Some(bytes) = self.built.clone() else {
            return Ok(Vec::new());
        };
        let batch = kafka_wire::records::RecordBatch::from_bytes(bytes)?;
        let mut out = Vec::with_capacity(self.record_count as usize);
        for r in batch.records(max_decompressed)? {
            let r = r?;
            out.push(SplitRecord {
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r.headers.into_iter().map(|h| (h.key, h.value)).collect(),
            });
        }
        Ok(out)
    }

    /// Takes the per-record callbacks (to move them to split batches), keyed by index.
    pub(crate) fn take_thunks(&mut self) -> Vec<(u32, Thunk)> {
        std::mem::take(&mut self.thunks)
    }
}
