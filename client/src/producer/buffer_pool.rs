//! BufferPool.
