//! The producer's memory budget (`buffer.memory`): an async port of Kafka's
//! `org.apache.kafka.clients.producer.internals.BufferPool`.
//!
//! A [`BufferPool`] hands out [`BytesMut`] buffers while keeping the total number of bytes in use
//! under a fixed limit (`total_memory`, the producer's `buffer.memory`). Like the Java class it has
//! two properties:
//!
//! * **Pooling.** Buffers of exactly `poolable_size` bytes (the producer's `batch.size`) are kept
//!   in a free list when they are given back and are reused by the next allocation of that size,
//!   so steady-state batching does not allocate.
//! * **Fairness.** When memory is short, callers wait in a FIFO queue. Memory that is freed goes
//!   to the waiter at the head of the queue, which *accumulates* it until it has enough; the
//!   waiters behind it get nothing until it is served. A large request is therefore never starved
//!   by a stream of small ones, and two large requests never deadlock by each holding half.
//!
//! # Mapping from the Java class
//!
//! | Java (`BufferPool`)                                  | Rust ([`BufferPool`])                                   |
//! |------------------------------------------------------|---------------------------------------------------------|
//! | `new BufferPool(memory, poolableSize, ...)`          | [`BufferPool::new`]                                     |
//! | `allocate(size, maxTimeToBlockMs)`                   | [`BufferPool::allocate`]`(size, max_block).await`        |
//! | `IllegalArgumentException` (size > memory)           | [`Error::RecordTooLarge`] with `config: "buffer.memory"` |
//! | `BufferExhaustedException` (max block time elapsed)  | [`Error::Timeout`], same message                         |
//! | `KafkaException("Producer closed ...")`              | [`Error::Closed`]                                       |
//! | `deallocate(buffer, size)`                           | [`BufferPool::deallocate`]                              |
//! | `releaseReservedBytes(bytes)`                        | [`BufferPool::release`]                                 |
//! | `availableMemory()` / `unallocatedMemory()`          | [`BufferPool::available_memory`] / [`BufferPool::unallocated_memory`] |
//! | `queued()` / `poolableSize()` / `totalMemory()`      | [`BufferPool::queued`] / [`BufferPool::poolable_size`] / [`BufferPool::total_memory`] |
//! | `close()`                                            | [`BufferPool::close`]                                   |
//! | `free` (`Deque<ByteBuffer>`)                         | free list of `BytesMut`, each accounted as `poolable_size` bytes |
//! | `nonPooledAvailableMemory`                           | the non-pooled budget ([`BufferPool::unallocated_memory`]) |
//! | `waiters` (`Deque<Condition>`), `accumulated`        | FIFO of waiters, each with a [`tokio::sync::Notify`] and its accumulated bytes |
//! | `ReentrantLock`                                      | one `std::sync::Mutex`, never held across an `.await`   |
//!
//! [`BufferPool::try_allocate`] is new: the non-blocking variant used when the caller must not
//! wait (it fails with [`Error::BufferFull`]). Metrics (`bufferpool-wait-time`, ...) are left to
//! the caller.
//!
//! # Differences from Java
//!
//! * **Memory is granted, not grabbed.** In Java, whoever frees memory signals the head waiter,
//!   which later wakes up, re-takes the lock and grabs what it can; in between, a newly arriving
//!   thread can barge in and take that memory. Here the code that frees memory (deallocate,
//!   release, a timed-out or cancelled waiter giving back its share) hands it directly to the head
//!   waiter under the lock, moves on to the next waiter once the head is fully served, and wakes
//!   a waiter only once it has everything it asked for. Nothing is lost to barging.
//! * **No barging.** For the same reason, [`BufferPool::allocate`] queues behind existing waiters
//!   even when some memory happens to be available, and [`BufferPool::try_allocate`] fails with
//!   [`Error::BufferFull`] whenever anyone is queued.
//! * A waiter whose request was fully granted before its timeout (or [`BufferPool::close`]) was
//!   observed gets its buffer rather than an error.
//! * Pooled buffers are accepted back when their capacity is *at least* `poolable_size` (a
//!   `BytesMut` may have grown); they are still accounted as `poolable_size` bytes.
//!
//! # Accounting
//!
//! At all times `free list bytes + non-pooled available + memory held by waiters + allocated ==
//! total_memory`, where "allocated" is the memory handed out by `allocate`/`try_allocate` and not
//! yet given back with `deallocate`/`release`. Debug builds check this after every operation.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::Error;

/// A pool of [`BytesMut`] buffers kept under a memory limit; Kafka's producer `BufferPool`.
///
/// `Send + Sync`: share it through an `Arc`. See the [module documentation](self) for the
/// semantics and how they map to the Java class.
pub struct BufferPool {
    total_memory: usize,
    poolable_size: usize,
    state: Mutex<State>,
}

/// Everything guarded by the pool's lock.
struct State {
    /// Cleared buffers of (at least) `poolable_size` capacity, each accounted as
    /// `poolable_size` bytes. Allocations take from the front, deallocations push to the back,
    /// `free_up` releases from the back (as in Java).
    free: VecDeque<BytesMut>,
    /// Java's `nonPooledAvailableMemory`.
    non_pooled_available: usize,
    /// Bytes handed out to callers and not yet given back (for the invariant check).
    allocated: usize,
    /// Waiters whose request is not yet fully granted, in arrival order.
    waiters: VecDeque<Waiter>,
    /// Waiters whose request is fully granted but who have not picked it up yet.
    ready: Vec<Grant>,
    closed: bool,
    next_id: u64,
}

/// A pending [`BufferPool::allocate`] call.
struct Waiter {
    id: u64,
    size: usize,
    /// Java's `accumulated`: bytes already reserved for this waiter (`size` when it holds a
    /// pooled buffer).
    accumulated: usize,
    /// A pooled buffer taken from the free list (only when `size == poolable_size`).
    pooled: Option<BytesMut>,
    notify: Arc<Notify>,
}

/// A fully granted request, waiting for its task to pick it up.
struct Grant {
    id: u64,
    size: usize,
    pooled: Option<BytesMut>,
}

impl State {
    /// Bytes in the free list.
    fn free_bytes(&self, poolable_size: usize) -> usize {
        self.free.len() * poolable_size
    }

    /// Bytes that can be allocated right now (free list + non-pooled).
    fn available(&self, poolable_size: usize) -> usize {
        self.non_pooled_available + self.free_bytes(poolable_size)
    }

    /// Every byte of the budget, wherever it is; must equal `total_memory`.
    fn accounted(&self, poolable_size: usize) -> usize {
        let waiting: usize = self.waiters.iter().map(|w| w.accumulated).sum();
        let ready: usize = self.ready.iter().map(|g| g.size).sum();
        self.available(poolable_size) + self.allocated + waiting + ready
    }

    /// Java's `freeUp`: release pooled buffers into the non-pooled budget until it holds at least
    /// `needed` bytes or the free list is empty.
    fn free_up(
        free: &mut VecDeque<BytesMut>,
        non_pooled_available: &mut usize,
        needed: usize,
        poolable_size: usize,
    ) {
        while *non_pooled_available < needed {
            match free.pop_back() {
                Some(_) => *non_pooled_available += poolable_size,
                None => break,
            }
        }
    }

    /// Takes `size` bytes at once if they are available. `Some(Some(buffer))` is a pooled
    /// buffer, `Some(None)` means the bytes were taken from the non-pooled budget and the caller
    /// allocates the buffer (outside the lock).
    fn try_take(&mut self, size: usize, poolable_size: usize) -> Option<Option<BytesMut>> {
        if size == poolable_size {
            if let Some(buffer) = self.free.pop_front() {
                self.allocated += size;
                return Some(Some(buffer));
            }
        }
        if self.available(poolable_size) >= size {
            Self::free_up(
                &mut self.free,
                &mut self.non_pooled_available,
                size,
                poolable_size,
            );
            self.non_pooled_available -= size;
            self.allocated += size;
            return Some(None);
        }
        None
    }

    /// Gives available memory to the waiters in FIFO order: the head accumulates what there is;
    /// once fully served it is woken and the next waiter gets the rest.
    fn serve(&mut self, poolable_size: usize) {
        if self.closed {
            return;
        }
        while let Some(head) = self.waiters.front_mut() {
            if head.accumulated == 0 && head.size == poolable_size && !self.free.is_empty() {
                head.pooled = self.free.pop_front();
                head.accumulated = head.size;
            } else {
                let needed = head.size - head.accumulated;
                Self::free_up(
                    &mut self.free,
                    &mut self.non_pooled_available,
                    needed,
                    poolable_size,
                );
                let got = needed.min(self.non_pooled_available);
                self.non_pooled_available -= got;
                head.accumulated += got;
            }
            if head.accumulated < head.size {
                break;
            }
            let Some(served) = self.waiters.pop_front() else {
                break;
            };
            served.notify.notify_one();
            self.ready.push(Grant {
                id: served.id,
                size: served.size,
                pooled: served.pooled,
            });
        }
    }

    /// Gives back memory reserved for a waiter that will not use it.
    fn refund(&mut self, accumulated: usize, pooled: Option<BytesMut>) {
        match pooled {
            // The pooled buffer *is* the accumulated memory.
            Some(buffer) => self.free.push_front(buffer),
            None => self.non_pooled_available += accumulated,
        }
    }

    /// Removes a waiter (pending or granted), gives back what it holds and serves the next ones.
    fn cancel(&mut self, id: u64, poolable_size: usize) {
        if let Some(pos) = self.waiters.iter().position(|w| w.id == id) {
            if let Some(waiter) = self.waiters.remove(pos) {
                self.refund(waiter.accumulated, waiter.pooled);
            }
        } else if let Some(pos) = self.ready.iter().position(|g| g.id == id) {
            let grant = self.ready.swap_remove(pos);
            self.refund(grant.size, grant.pooled);
        }
        self.serve(poolable_size);
    }

    /// Takes a waiter's grant if its request has been fully served.
    fn take_grant(&mut self, id: u64) -> Option<Grant> {
        let pos = self.ready.iter().position(|g| g.id == id)?;
        let grant = self.ready.swap_remove(pos);
        self.allocated += grant.size;
        Some(grant)
    }

    /// Marks `size` bytes handed out earlier as given back; returns the bytes to credit (never
    /// more than what is allocated, so a double release cannot inflate the budget).
    fn give_back(&mut self, size: usize) -> usize {
        debug_assert!(
            size <= self.allocated,
            "BufferPool: giving back {size} bytes but only {} are allocated",
            self.allocated
        );
        let credited = size.min(self.allocated);
        self.allocated -= credited;
        credited
    }
}

/// Cancels its waiter when an [`BufferPool::allocate`] future is dropped before completing.
struct WaitGuard<'a> {
    pool: &'a BufferPool,
    id: u64,
    armed: bool,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.pool.lock();
            state.cancel(self.id, self.pool.poolable_size);
            self.pool.debug_check(&state);
        }
    }
}

impl BufferPool {
    /// Creates a pool of `total_memory` bytes (`buffer.memory`) that keeps buffers of
    /// `poolable_size` bytes (`batch.size`) in a free list for reuse.
    ///
    /// A `poolable_size` of 0 disables pooling.
    pub fn new(total_memory: usize, poolable_size: usize) -> Self {
        BufferPool {
            total_memory,
            poolable_size,
            state: Mutex::new(State {
                free: VecDeque::new(),
                non_pooled_available: total_memory,
                allocated: 0,
                waiters: VecDeque::new(),
                ready: Vec::new(),
                closed: false,
                next_id: 0,
            }),
        }
    }

    /// Allocates a buffer for `size` bytes, waiting up to `max_block` (`max.block.ms`) for memory
    /// to be freed.
    ///
    /// The buffer is empty (`len() == 0`) with a capacity of at least `size`. A request of exactly
    /// [`poolable_size`](Self::poolable_size) bytes reuses a pooled buffer when there is one;
    /// other requests take from the non-pooled budget, releasing pooled buffers if needed. The
    /// `size` must later be given back with [`deallocate`](Self::deallocate) or
    /// [`release`](Self::release).
    ///
    /// When memory is short (or others are already waiting) the call joins a FIFO queue. Freed
    /// memory accumulates in the waiter at the head until its request is complete; later waiters
    /// wait their turn.
    ///
    /// # Errors
    ///
    /// * [`Error::RecordTooLarge`] at once when `size` exceeds [`total_memory`](Self::total_memory)
    ///   (it could never be served);
    /// * [`Error::Timeout`] when `max_block` elapses first; the memory accumulated so far is
    ///   given back to the pool (and to the next waiter);
    /// * [`Error::Closed`] when the pool is closed before or while waiting.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. Dropping the future before it completes (for example when it
    /// loses a `tokio::select!` or is wrapped in `tokio::time::timeout`) removes its waiter from
    /// the queue, gives back every byte it had accumulated (or had been fully granted but not
    /// yet returned), and passes that memory on to the next waiter. No memory is leaked and the
    /// FIFO order of the remaining waiters is unchanged.
    pub async fn allocate(&self, size: usize, max_block: Duration) -> Result<BytesMut, Error> {
        self.check_size(size)?;
        let (id, notify) = {
            let mut state = self.lock();
            if state.closed {
                return Err(Error::Closed);
            }
            if state.waiters.is_empty() {
                if let Some(pooled) = state.try_take(size, self.poolable_size) {
                    self.debug_check(&state);
                    drop(state);
                    return Ok(pooled.unwrap_or_else(|| BytesMut::with_capacity(size)));
                }
            }
            let id = state.next_id;
            state.next_id += 1;
            let notify = Arc::new(Notify::new());
            state.waiters.push_back(Waiter {
                id,
                size,
                accumulated: 0,
                pooled: None,
                notify: Arc::clone(&notify),
            });
            state.serve(self.poolable_size);
            self.debug_check(&state);
            (id, notify)
        };
        let mut guard = WaitGuard {
            pool: self,
            id,
            armed: true,
        };
        // `None` when `max_block` is too large to represent: wait without a deadline.
        let deadline = Instant::now().checked_add(max_block);
        loop {
            let notified = notify.notified();
            let timed_out = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, notified).await.is_err(),
                None => {
                    notified.await;
                    false
                }
            };
            let mut state = self.lock();
            if let Some(grant) = state.take_grant(id) {
                guard.armed = false;
                self.debug_check(&state);
                drop(state);
                return Ok(grant
                    .pooled
                    .unwrap_or_else(|| BytesMut::with_capacity(size)));
            }
            if state.closed || timed_out {
                guard.armed = false;
                state.cancel(id, self.poolable_size);
                self.debug_check(&state);
                if state.closed {
                    return Err(Error::Closed);
                }
                return Err(Error::Timeout(format!(
                    "Failed to allocate {size} bytes within the configured max blocking time {} ms. \
                     Total memory: {} bytes. Available memory: {} bytes. Poolable size: {} bytes",
                    max_block.as_millis(),
                    self.total_memory,
                    state.available(self.poolable_size),
                    self.poolable_size,
                )));
            }
            // Woken without a grant (cannot normally happen): wait again.
        }
    }

    /// Allocates a buffer for `size` bytes if that is possible without waiting.
    ///
    /// Same as [`allocate`](Self::allocate) when memory is available. To keep the queue FIFO it
    /// also fails when other callers are already waiting, even if some memory is free.
    ///
    /// # Errors
    ///
    /// [`Error::RecordTooLarge`] when `size` exceeds the total memory, [`Error::Closed`] after
    /// [`close`](Self::close), and [`Error::BufferFull`] when the call would have to wait.
    pub fn try_allocate(&self, size: usize) -> Result<BytesMut, Error> {
        self.check_size(size)?;
        let mut state = self.lock();
        if state.closed {
            return Err(Error::Closed);
        }
        if !state.waiters.is_empty() {
            return Err(Error::BufferFull);
        }
        let taken = state.try_take(size, self.poolable_size);
        self.debug_check(&state);
        drop(state);
        match taken {
            Some(pooled) => Ok(pooled.unwrap_or_else(|| BytesMut::with_capacity(size))),
            None => Err(Error::BufferFull),
        }
    }

    /// Gives back a buffer obtained from [`allocate`](Self::allocate) or
    /// [`try_allocate`](Self::try_allocate).
    ///
    /// `size` is the size that was passed to the allocation (the accounted size), which may
    /// differ from the buffer's current capacity. When `size` is exactly
    /// [`poolable_size`](Self::poolable_size) and the buffer can still hold that many bytes, the
    /// buffer is cleared and kept in the free list for reuse; otherwise it is dropped and `size`
    /// bytes return to the non-pooled budget. The freed memory goes to the waiters, first come
    /// first served. Works after [`close`](Self::close) too.
    pub fn deallocate(&self, mut buffer: BytesMut, size: usize) {
        let mut state = self.lock();
        let credited = state.give_back(size);
        let spare = if credited == self.poolable_size
            && credited == size
            && size > 0
            && buffer.capacity() >= size
            // A buffer that grew far beyond its accounting would let real memory exceed
            // `buffer.memory` while pooled: drop it instead.
            && buffer.capacity() <= size.saturating_mul(2)
        {
            buffer.clear();
            state.free.push_back(buffer);
            None
        } else {
            state.non_pooled_available += credited;
            Some(buffer)
        };
        state.serve(self.poolable_size);
        self.debug_check(&state);
        drop(state);
        // Free the buffer's memory outside the lock.
        drop(spare);
    }

    /// Gives back `size` accounted bytes whose buffer is gone (for example frozen into
    /// [`bytes::Bytes`] shared elsewhere). The memory returns to the non-pooled budget and goes
    /// to the waiters, first come first served.
    pub fn release(&self, size: usize) {
        let mut state = self.lock();
        let credited = state.give_back(size);
        state.non_pooled_available += credited;
        state.serve(self.poolable_size);
        self.debug_check(&state);
    }

    /// The total memory managed by the pool (`buffer.memory`).
    pub fn total_memory(&self) -> usize {
        self.total_memory
    }

    /// The buffer size kept in the free list after use (`batch.size`).
    pub fn poolable_size(&self) -> usize {
        self.poolable_size
    }

    /// The memory that can be allocated right now: the free list plus the non-pooled budget.
    pub fn available_memory(&self) -> usize {
        self.lock().available(self.poolable_size)
    }

    /// The non-pooled budget: memory that is neither allocated nor in the free list.
    pub fn unallocated_memory(&self) -> usize {
        self.lock().non_pooled_available
    }

    /// The number of callers waiting for memory (whose request is not yet fully served).
    pub fn queued(&self) -> usize {
        self.lock().waiters.len()
    }

    /// Closes the pool: every current and future [`allocate`](Self::allocate) or
    /// [`try_allocate`](Self::try_allocate) fails with [`Error::Closed`] (waiters give back the
    /// memory they had accumulated). Memory can still be given back.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for waiter in &state.waiters {
            waiter.notify.notify_one();
        }
    }

    fn check_size(&self, size: usize) -> Result<(), Error> {
        if size > self.total_memory {
            return Err(Error::RecordTooLarge {
                size,
                limit: self.total_memory,
                config: "buffer.memory",
            });
        }
        Ok(())
    }

    /// Locks the state. The lock is never held while user code runs, so a poisoned lock (a
    /// panic in this module) still holds consistent state.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks the accounting invariant in debug builds.
    #[inline]
    fn debug_check(&self, state: &State) {
        if cfg!(debug_assertions) {
            let accounted = state.accounted(self.poolable_size);
            assert_eq!(
                accounted, self.total_memory,
                "BufferPool accounting broken: free list + non-pooled + waiting + allocated != total"
            );
        }
    }

    /// Checks the accounting invariant (in every build): free list + non-pooled + memory held by
    /// waiters + allocated == total, and that queued waiters are not yet served.
    #[cfg(test)]
    pub(crate) fn assert_invariants(&self) {
        let state = self.lock();
        assert_eq!(
            state.accounted(self.poolable_size),
            self.total_memory,
            "free={} non_pooled={} allocated={} waiting={:?} ready={:?}",
            state.free_bytes(self.poolable_size),
            state.non_pooled_available,
            state.allocated,
            state
                .waiters
                .iter()
                .map(|w| (w.size, w.accumulated))
                .collect::<Vec<_>>(),
            state.ready.iter().map(|g| g.size).collect::<Vec<_>>(),
        );
        assert!(state.waiters.iter().all(|w| w.accumulated < w.size));
        // Only the head accumulates memory.
        assert!(state.waiters.iter().skip(1).all(|w| w.accumulated == 0));
        assert!(state.non_pooled_available <= self.total_memory);
    }

    /// Bytes handed out and not given back.
    #[cfg(test)]
    pub(crate) fn allocated_memory(&self) -> usize {
        self.lock().allocated
    }
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("BufferPool")
            .field("total_memory", &self.total_memory)
            .field("poolable_size", &self.poolable_size)
            .field("free_buffers", &state.free.len())
            .field("non_pooled_available", &state.non_pooled_available)
            .field("allocated", &state.allocated)
            .field("queued", &state.waiters.len())
            .field("closed", &state.closed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const LONG: Duration = Duration::from_secs(60);

    /// Lets spawned tasks run until they block (current-thread runtime).
    async fn settle() {
        for _ in 0..32 {
            tokio::task::yield_now().await;
        }
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn pool_is_send_sync() {
        assert_send_sync::<BufferPool>();
        fn assert_send<T: Send>(_: &T) {}
        let pool = BufferPool::new(10, 5);
        assert_send(&pool.allocate(1, LONG));
    }

    #[tokio::test(start_paused = true)]
    async fn pooled_buffer_is_reused() {
        let pool = BufferPool::new(1024, 128);
        let mut buf = pool.allocate(128, LONG).await.unwrap();
        assert_eq!(buf.len(), 0);
        assert_eq!(buf.capacity(), 128);
        buf.extend_from_slice(b"hello");
        let (ptr, cap) = (buf.as_ptr(), buf.capacity());
        assert_eq!(pool.available_memory(), 1024 - 128);
        pool.deallocate(buf, 128);
        // Back in the free list, not in the non-pooled budget.
        assert_eq!(pool.available_memory(), 1024);
        assert_eq!(pool.unallocated_memory(), 1024 - 128);

        let again = pool.allocate(128, LONG).await.unwrap();
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!(again.capacity(), cap);
        assert!(again.is_empty(), "pooled buffers are cleared");
        pool.deallocate(again, 128);

        let again = pool.try_allocate(128).unwrap();
        assert_eq!(again.as_ptr(), ptr);
        pool.deallocate(again, 128);
        pool.assert_invariants();
        assert_eq!(pool.allocated_memory(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn non_pooled_accounting() {
        let pool = BufferPool::new(1000, 100);
        let a = pool.allocate(250, LONG).await.unwrap();
        assert!(a.capacity() >= 250);
        assert_eq!(pool.unallocated_memory(), 750);
        assert_eq!(pool.available_memory(), 750);

        // A poolable-size allocation with an empty free list comes from the non-pooled budget.
        let b = pool.allocate(100, LONG).await.unwrap();
        assert_eq!(pool.unallocated_memory(), 650);
        pool.deallocate(b, 100);
        assert_eq!(pool.unallocated_memory(), 650);
        assert_eq!(pool.available_memory(), 750);

        // Needs the pooled buffer to be released into the non-pooled budget (Java's freeUp).
        let c = pool.allocate(700, LONG).await.unwrap();
        assert_eq!(pool.unallocated_memory(), 50);
        assert_eq!(pool.available_memory(), 50);
        pool.assert_invariants();

        pool.deallocate(a, 250);
        assert_eq!(pool.unallocated_memory(), 300);

        // A poolable accounting with a too-small buffer is not pooled.
        let d = pool.allocate(100, LONG).await.unwrap();
        pool.deallocate(BytesMut::with_capacity(10), 100);
        drop(d);
        assert_eq!(pool.unallocated_memory(), 300);
        assert_eq!(pool.available_memory(), 300);

        // A non-poolable accounting is never pooled, whatever the capacity.
        drop(c);
        pool.release(700);
        assert_eq!(pool.unallocated_memory(), 1000);
        assert_eq!(pool.available_memory(), 1000);
        assert_eq!(pool.allocated_memory(), 0);
        pool.assert_invariants();

        // Zero-sized requests always succeed.
        let z = pool.allocate(0, LONG).await.unwrap();
        pool.deallocate(z, 0);
        pool.assert_invariants();
    }

    #[tokio::test(start_paused = true)]
    async fn too_large_fails_at_once() {
        let pool = BufferPool::new(1000, 100);
        let err = pool.allocate(1001, LONG).await.unwrap_err();
        assert_eq!(
            err,
            Error::RecordTooLarge {
                size: 1001,
                limit: 1000,
                config: "buffer.memory"
            }
        );
        assert!(matches!(
            pool.try_allocate(5000),
            Err(Error::RecordTooLarge { size: 5000, .. })
        ));
        // Exactly the total is fine.
        let all = pool.allocate(1000, LONG).await.unwrap();
        pool.deallocate(all, 1000);
        pool.assert_invariants();
    }

    #[tokio::test(start_paused = true)]
    async fn blocks_until_memory_is_freed() {
        let pool = Arc::new(BufferPool::new(1000, 100));
        let all = pool.allocate(1000, LONG).await.unwrap();
        let start = Instant::now();
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.allocate(300, Duration::from_secs(10)).await }
        });
        settle().await;
        assert!(!waiter.is_finished());
        assert_eq!(pool.queued(), 1);

        pool.deallocate(all, 1000);
        let buf = waiter.await.unwrap().unwrap();
        assert!(buf.capacity() >= 300);
        assert_eq!(
            Instant::now(),
            start,
            "served without waiting for the timeout"
        );
        assert_eq!(pool.queued(), 0);
        assert_eq!(pool.unallocated_memory(), 700);
        pool.assert_invariants();
    }

    #[tokio::test(start_paused = true)]
    async fn waiter_for_poolable_size_gets_a_pooled_buffer() {
        let pool = Arc::new(BufferPool::new(200, 100));
        let a = pool.allocate(100, LONG).await.unwrap();
        let b = pool.allocate(100, LONG).await.unwrap();
        let ptr = a.as_ptr();
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.allocate(100, LONG).await }
        });
        settle().await;
        assert_eq!(pool.queued(), 1);
        pool.deallocate(a, 100);
        let got = waiter.await.unwrap().unwrap();
        assert_eq!(got.as_ptr(), ptr);
        pool.deallocate(got, 100);
        pool.deallocate(b, 100);
        assert_eq!(pool.available_memory(), 200);
        pool.assert_invariants();
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_returns_accumulated_memory() {
        let pool = Arc::new(BufferPool::new(1000, 100));
        let a = pool.allocate(600, LONG).await.unwrap();
        let b = pool.allocate(400, LONG).await.unwrap();
        let start = Instant::now();
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.allocate(1000, Duration::from_secs(5)).await }
        });
        settle().await;
        pool.deallocate(b, 400);
        settle().await;
        // The head waiter accumulated the freed memory.
        assert_eq!(pool.available_memory(), 0);
        assert_eq!(pool.queued(), 1);
        pool.assert_invariants();

        let err = waiter.await.unwrap().unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        match err {
            Error::Timeout(msg) => assert!(
                msg.starts_with(
                    "Failed to allocate 1000 bytes within the configured max blocking time 5000 ms"
                ),
                "{msg}"
            ),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(pool.queued(), 0);
        assert_eq!(pool.available_memory(), 400);
        pool.deallocate(a, 600);
        assert_eq!(pool.available_memory(), 1000);
        pool.assert_invariants();
    }

    #[tokio::test(start_paused = true)]
    async fn zero_max_block_fails_at_once_when_short() {
        let pool = BufferPool::new(100, 10);
        let all = pool.allocate(100, LONG).await.unwrap();
        let err = pool.allocate(10, Duration::ZERO).await.unwrap_err();
        assert!(matches!(err, Error::Timeout(_)));
        assert_eq!(pool.queued(), 0);
        pool.deallocate(all, 100);
        pool.assert_invariants();
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_fifo_order() {
        let pool = Arc::new(BufferPool::new(1000, 100));
        let mut held = Vec::new();
        for _ in 0..10 {
            held.push(pool.allocate(100, LONG).await.unwrap());
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (name, size) in [("big", 800), ("small-1", 100), ("small-2", 100)] {
            let pool = Arc::clone(&pool);
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                let buf = pool.allocate(size, LONG).await.unwrap();
                tx.send(name).unwrap();
                buf
            }));
            settle().await;
        }
        assert_eq!(pool.queued(), 3);
        // No barging either: a poolable allocation queues behind them.
        assert_eq!(pool.try_allocate(100).unwrap_err(), Error::BufferFull);

        for freed in 1..=10 {
            pool.deallocate(held.pop().unwrap(), 100);
            settle().await;
            pool.assert_invariants();
            let done: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
            match freed {
                1..=7 => {
                    assert!(done.is_empty(), "after {freed}: {done:?}");
                    assert_eq!(pool.available_memory(), 0);
                }
                8 => assert_eq!(done, ["big"]),
                9 => assert_eq!(done, ["small-1"]),
                10 => assert_eq!(done, ["small-2"]),
                _ => unreachable!(),
            }
        }
        assert_eq!(pool.queued(), 0);
        for (task, size) in tasks.into_iter().zip([800, 100, 100]) {
            pool.deallocate(task.await.unwrap(), size);
        }
        assert_eq!(pool.available_memory(), 1000);
        pool.assert_invariants();
    }

    #[tokio::test(start_paused = true)]
    async fn memory_left_after_serving_goes_to_the_next_waiters() {
        let pool = Arc::new(BufferPool::new(1000, 100));
        let all = pool.allocate(1000, LONG).await.unwrap();
        let mut tasks = Vec::new();
        for size in [300, 300, 300] {
            let pool = Arc::clone(&pool);
            tasks.push(tokio::spawn(async move { pool.allocate(size, LONG).await }));
            settle().await;
        }
        assert_eq!(pool.queued(), 3);
        pool.deallocate(all, 1000);
        for task in tasks {
            let buf = task.await.unwrap().unwrap();
            pool.deallocate(buf, 300);
        }
        assert_eq!(pool.available_memory(), 1000);
        pool.assert_invariants();
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_waiter_releases_memory() {
        let pool = Arc::new(BufferPool::new(1000, 100));
        let a = pool.allocate(500, LONG).await.unwrap();
        let b = pool.allocate(500, LONG).await.unwrap();
        let big = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.allocate(1000, LONG).await }
        });
        settle().await;
        let small = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.allocate(400, LONG).await }
        });
        settle().await;
        pool.deallocate(a, 500);
        settle().await;
        // The big head waiter holds the freed 500 bytes; the small one waits behind it.
        assert_eq!(pool.available_memory(), 0);
        assert_eq!(pool.queued(), 2);
        assert!(!small.is_finished());

        big.abort();
        assert!(big.await.unwrap_err().is_cancelled());
        // The 500 bytes went to the next waiter.
        let buf = small.await.unwrap().unwrap();
        assert_eq!(pool.queued(), 0);
        assert_eq!(pool.available_memory(), 100);
        pool.assert_invariants();

        // Cancellation through `timeout` (the future is dropped).
        let start = Instant::now();
        let res = tokio::time::timeout(Duration::from_secs(1), pool.allocate(1000, LONG)).await;
        assert!(res.is_err());
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(pool.queued(), 0);
        assert_eq!(pool.available_memory(), 100);
        pool.assert_invariants();

        // Cancellation of a waiter that was fully served but never polled again.
        let granted = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.allocate(200, LONG).await }
        });
        settle().await;
        assert_eq!(pool.queued(), 1);
        pool.deallocate(buf, 400);
        // Served: the memory is reserved for it...
        assert_eq!(pool.queued(), 0);
        assert_eq!(pool.available_memory(), 300);
        // ...and given back when it is dropped instead of completing.
        granted.abort();
        let _ = granted.await;
        assert_eq!(pool.available_memory(), 500);
        pool.deallocate(b, 500);
        assert_eq!(pool.available_memory(), 1000);
        assert_eq!(pool.allocated_memory(), 0);
        pool.assert_invariants();
    }

    #[tokio::test(start_paused = true)]
    async fn close_fails_waiters() {
        let pool = Arc::new(BufferPool::new(1000, 100));
        let a = pool.allocate(700, LONG).await.unwrap();
        let mut waiters = Vec::new();
        for size in [600, 100] {
            let pool = Arc::clone(&pool);
            waiters.push(tokio::spawn(async move { pool.allocate(size, LONG).await }));
            settle().await;
        }
        assert_eq!(pool.queued(), 2);
        assert_eq!(pool.available_memory(), 0);

        let start = Instant::now();
        pool.close();
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap().unwrap_err(), Error::Closed);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(pool.queued(), 0);
        // The head's accumulated memory was given back.
        assert_eq!(pool.available_memory(), 300);

        assert_eq!(pool.allocate(10, LONG).await.unwrap_err(), Error::Closed);
        assert_eq!(pool.try_allocate(10).unwrap_err(), Error::Closed);
        // Memory can still be given back.
        pool.deallocate(a, 700);
        assert_eq!(pool.available_memory(), 1000);
        pool.assert_invariants();
    }

    #[tokio::test(start_paused = true)]
    async fn try_allocate_never_waits() {
        let pool = Arc::new(BufferPool::new(1000, 100));
        let a = pool.try_allocate(600).unwrap();
        assert_eq!(pool.try_allocate(500).unwrap_err(), Error::BufferFull);
        let b = pool.try_allocate(400).unwrap();
        assert_eq!(pool.try_allocate(1).unwrap_err(), Error::BufferFull);
        pool.deallocate(b, 400);

        // With a waiter queued, even a request that fits fails (FIFO).
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.allocate(1000, LONG).await }
        });
        settle().await;
        assert_eq!(pool.queued(), 1);
        assert_eq!(pool.try_allocate(0).unwrap_err(), Error::BufferFull);
        pool.deallocate(a, 600);
        let all = waiter.await.unwrap().unwrap();
        pool.deallocate(all, 1000);
        let z = pool.try_allocate(0).unwrap();
        pool.deallocate(z, 0);
        assert_eq!(pool.available_memory(), 1000);
        pool.assert_invariants();
    }

    /// Small xorshift generator: deterministic, no extra dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn stress_many_tasks() {
        const TOTAL: usize = 64 * 1024;
        const POOLABLE: usize = 4 * 1024;
        let pool = Arc::new(BufferPool::new(TOTAL, POOLABLE));
        let served = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

        let checker = tokio::spawn({
            let pool = Arc::clone(&pool);
            let stop = Arc::clone(&stop);
            async move {
                while !stop.load(Ordering::Relaxed) {
                    pool.assert_invariants();
                    tokio::task::yield_now().await;
                }
            }
        });

        let mut tasks = Vec::new();
        for t in 0..32u64 {
            let pool = Arc::clone(&pool);
            let served = Arc::clone(&served);
            let failed = Arc::clone(&failed);
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1).wrapping_mul(0x2545_F491));
                for _ in 0..300 {
                    let size = match rng.below(4) {
                        0 | 1 => POOLABLE,
                        2 => rng.below(TOTAL as u64 / 4) as usize,
                        _ => rng.below(TOTAL as u64 + 1) as usize,
                    };
                    let result = match rng.below(5) {
                        0 => pool.try_allocate(size),
                        1 => pool.allocate(size, Duration::from_millis(1)).await,
                        2 => tokio::time::timeout(
                            Duration::from_micros(rng.below(500)),
                            pool.allocate(size, LONG),
                        )
                        .await
                        .unwrap_or(Err(Error::BufferFull)),
                        _ => pool.allocate(size, LONG).await,
                    };
                    match result {
                        Ok(mut buf) => {
                            assert!(buf.capacity() >= size);
                            buf.extend_from_slice(&[t as u8; 8][..size.min(8)]);
                            served.fetch_add(1, Ordering::Relaxed);
                            for _ in 0..rng.below(3) {
                                tokio::task::yield_now().await;
                            }
                            if rng.below(8) == 0 {
                                drop(buf);
                                pool.release(size);
                            } else {
                                pool.deallocate(buf, size);
                            }
                        }
                        Err(Error::BufferFull | Error::Timeout(_)) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(other) => panic!("unexpected error {other:?}"),
                    }
                }
            }));
        }
        let all = async {
            for task in tasks {
                task.await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("all tasks finish");
        stop.store(true, Ordering::Relaxed);
        checker.await.unwrap();

        assert!(served.load(Ordering::Relaxed) > 0);
        assert_eq!(
            served.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed),
            32 * 300
        );
        assert_eq!(pool.queued(), 0);
        assert_eq!(pool.allocated_memory(), 0);
        assert_eq!(pool.available_memory(), TOTAL);
        pool.assert_invariants();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc(usize),
        AllocPoolable,
        Dealloc(usize),
        Release(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..1200).prop_map(Op::Alloc),
            Just(Op::AllocPoolable),
            any::<usize>().prop_map(Op::Dealloc),
            any::<usize>().prop_map(Op::Release),
        ]
    }

    proptest! {
        /// Without waiters, `try_allocate` succeeds exactly when the memory is available, and the
        /// accounting always adds up.
        #[test]
        fn accounting_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
            const TOTAL: usize = 1000;
            const POOLABLE: usize = 100;
            let pool = BufferPool::new(TOTAL, POOLABLE);
            let mut held: Vec<(BytesMut, usize)> = Vec::new();
            for op in ops {
                let alloc = match op {
                    Op::Alloc(size) => Some(size),
                    Op::AllocPoolable => Some(POOLABLE),
                    _ => None,
                };
                match op {
                    Op::Alloc(_) | Op::AllocPoolable => {
                        let size = alloc.unwrap_or_default();
                        let in_use: usize = held.iter().map(|(_, s)| s).sum();
                        match pool.try_allocate(size) {
                            Ok(buf) => {
                                prop_assert!(size <= TOTAL - in_use);
                                prop_assert!(buf.capacity() >= size);
                                held.push((buf, size));
                            }
                            Err(Error::BufferFull) => prop_assert!(size > TOTAL - in_use && size <= TOTAL),
                            Err(Error::RecordTooLarge { .. }) => prop_assert!(size > TOTAL),
                            Err(other) => prop_assert!(false, "unexpected {other:?}"),
                        }
                    }
                    Op::Dealloc(i) if !held.is_empty() => {
                        let (buf, size) = held.swap_remove(i % held.len());
                        pool.deallocate(buf, size);
                    }
                    Op::Release(i) if !held.is_empty() => {
                        let (_, size) = held.swap_remove(i % held.len());
                        pool.release(size);
                    }
                    Op::Dealloc(_) | Op::Release(_) => {}
                }
                let in_use: usize = held.iter().map(|(_, s)| s).sum();
                prop_assert_eq!(pool.available_memory(), TOTAL - in_use);
                prop_assert_eq!(pool.allocated_memory(), in_use);
                prop_assert!(pool.unallocated_memory() <= pool.available_memory());
                pool.assert_invariants();
            }
        }
    }
}
