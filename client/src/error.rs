//! Typed errors of the client. Kafka error codes are preserved in [`Error::Kafka`].

use kafka_wire::ErrorCode;

/// Everything that can go wrong in the client.
///
/// `Clone` so one failure can be reported to every record of a batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A broker answered with a Kafka error code.
    #[error("{code}{}", .message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        /// The error code from the response.
        code: ErrorCode,
        /// The broker's error message, when the response carries one.
        message: Option<String>,
    },
    /// A configuration key has a bad value, is unknown, or contradicts another key.
    #[error("invalid configuration `{key}`: {reason}")]
    Config {
        /// The configuration key, as Kafka spells it (for example `linger.ms`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An operation did not complete in time (`max.block.ms`, `delivery.timeout.ms`,
    /// `request.timeout.ms`, ...).
    #[error("timed out: {0}")]
    Timeout(String),
    /// A connection could not be made or broke while a request was outstanding.
    #[error("connection to {broker} failed: {reason}")]
    Connection {
        /// The broker's address (`host:port`) or node id.
        broker: String,
        /// What happened.
        reason: String,
    },
    /// The peer sent bytes we could not decode, or a request could not be encoded.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// No version of an API is supported by both the broker and this client.
    #[error("unsupported version: {0}")]
    UnsupportedVersion(String),
    /// A record is larger than a size limit.
    #[error("record of {size} bytes is larger than {limit} bytes (`{config}`)")]
    RecordTooLarge {
        /// Estimated serialized size of the record.
        size: usize,
        /// The limit.
        limit: usize,
        /// The configuration key holding the limit.
        config: &'static str,
    },
    /// The buffer (`buffer.memory`) has no room, and the caller asked not to wait.
    #[error("producer buffer is full (`buffer.memory`)")]
    BufferFull,
    /// A serializer failed.
    #[error("serialization failed: {0}")]
    Serialization(String),
    /// The producer or consumer was closed.
    #[error("client is closed")]
    Closed,
    /// The argument is not valid (unknown partition, empty topic name, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An error of the application's own, returned by a callback the client runs (a
    /// [`ConsumerRebalanceListener`](crate::consumer::ConsumerRebalanceListener) callback)
    /// and passed on to the caller unchanged.
    #[error("callback failed: {0}")]
    Callback(String),
    /// The call is not allowed in the client's current state (Java's
    /// `IllegalStateException`): a transactional method on a producer without
    /// `transactional.id`, `send` before `init_transactions` or outside a transaction,
    /// `begin_transaction` while one is open, an invalid transaction state transition.
    #[error("illegal state: {0}")]
    IllegalState(String),
    /// The record's batch was not sent because its transaction was aborted (Java's
    /// `TransactionAbortedException`).
    #[error("failing batch since transaction was aborted")]
    TransactionAborted,
}

impl Error {
    /// A [`Error::Kafka`] error without a message.
    pub fn kafka(code: ErrorCode) -> Self {
        Error::Kafka {
            code,
            message: None,
        }
    }

    /// A [`Error::Kafka`] error with the broker's message (ignored when empty).
    pub fn kafka_with_message(code: ErrorCode, message: Option<String>) -> Self {
        Error::Kafka {
            code,
            message: message.filter(|m| !m.is_empty()),
        }
    }

    /// The Kafka error code, when the error came from a broker.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying the same operation may succeed: retriable Kafka codes, timeouts and
    /// broken connections.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => code.is_retriable(),
            Error::Timeout(_) | Error::Connection { .. } => true,
            _ => false,
        }
    }
}

impl From<kafka_wire::DecodeError> for Error {
    fn from(e: kafka_wire::DecodeError) -> Self {
        Error::Protocol(e.to_string())
    }
}

impl From<kafka_wire::EncodeError> for Error {
    fn from(e: kafka_wire::EncodeError) -> Self {
        Error::Protocol(e.to_string())
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Self {
        Error::kafka(code)
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
