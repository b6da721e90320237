//! Request handling: one module per API (franz-go kfake style), each beginning with the
//! versions it serves and the behaviour it implements, and [`handle`], which decodes a frame,
//! dispatches it and encodes the response.
//!
//! Errors follow Kafka's broker: an unknown API key, an API we do not serve, an unsupported
//! version (except ApiVersions) or a body that does not parse closes the connection, as
//! Kafka's `SocketServer` does (bytes after a complete body are ignored, as Kafka does);
//! request-level problems get the error codes Kafka returns.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_wire::frame::{decode_request_lenient, encode_response, peek_request_prefix};
use kafka_wire::{ApiKey, RequestBody, ResponseBody, VersionRange};
use tracing::warn;

use crate::state::BrokerState;

mod api_versions;
mod configs;
mod create_partitions;
mod create_topics;
mod delete_topics;
mod describe_cluster;
mod fetch;
mod find_coordinator;
mod list_offsets;
mod metadata;
mod produce;

/// What the connection does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Keep serving.
    Continue,
    /// Close the connection (after writing what is buffered).
    Close,
}

/// The APIs broker-lite serves and the versions it advertises: exactly what is implemented.
pub fn supported_versions(api: ApiKey) -> Option<VersionRange> {
    let spec = api.valid_versions();
    let from = |min: i16| {
        Some(VersionRange {
            min: min.max(spec.min),
            max: spec.max,
        })
    };
    match api {
        ApiKey::ApiVersions
        | ApiKey::Metadata
        | ApiKey::CreatePartitions
        | ApiKey::IncrementalAlterConfigs
        | ApiKey::DescribeCluster
        | ApiKey::FindCoordinator => from(spec.min),
        // Record format v2 only: Produce v3+ and Fetch v4+ (as Kafka 4.0).
        ApiKey::Produce => from(3),
        ApiKey::Fetch => from(4),
        ApiKey::ListOffsets => from(1),
        ApiKey::CreateTopics => from(2),
        ApiKey::DeleteTopics => from(1),
        ApiKey::DescribeConfigs => from(1),
        _ => None,
    }
}

/// Handles one request frame, appending the size-prefixed response (if any) to `out`.
pub(crate) async fn handle(
    state: &Arc<BrokerState>,
    frame: Bytes,
    peer: SocketAddr,
    out: &mut BytesMut,
) -> Outcome {
    let prefix = match peek_request_prefix(&frame) {
        Ok(p) => p,
        Err(e) => {
            warn!(%peer, error = %e, "closing connection: unreadable request header");
            return Outcome::Close;
        }
    };
    let Some(api) = ApiKey::from_i16(prefix.api_key) else {
        warn!(%peer, api_key = prefix.api_key, "closing connection: unknown API key");
        return Outcome::Close;
    };
    let Some(range) = supported_versions(api) else {
        warn!(%peer, api = api.name(), "closing connection: API not served by broker-lite");
        return Outcome::Close;
    };
    let version = prefix.api_version;
    if !range.contains(version) {
        if api == ApiKey::ApiVersions {
            // KIP-511: answer an unknown ApiVersions version with a v0 response carrying
            // UNSUPPORTED_VERSION and our ranges, so the client can retry with one we know.
            let body = api_versions::unsupported_version_response().into();
            return write_response(out, prefix.correlation_id, 0, &body, peer);
        }
        warn!(%peer, api = api.name(), version, "closing connection: unsupported version");
        return Outcome::Close;
    }
    let body = match decode_request_lenient(frame) {
        Ok((request, trailing)) => {
            if trailing > 0 {
                tracing::debug!(%peer, api = api.name(), version, trailing, "ignoring bytes after the request body, as Kafka does");
            }
            request.body
        }
        Err(e) => {
            warn!(%peer, api = api.name(), version, error = %e, "closing connection: malformed request");
            return Outcome::Close;
        }
    };
    let response: Option<ResponseBody> = match body {
        RequestBody::ApiVersions(r) => Some(api_versions::handle(&r, version).into()),
        RequestBody::Metadata(r) => Some(metadata::handle(state, r, version).await.into()),
        RequestBody::Produce(r) => match produce::handle(state, r, version).await {
            produce::ProduceOutcome::Respond(resp) => Some(resp.into()),
            produce::ProduceOutcome::Silent => None,
            produce::ProduceOutcome::CloseConnection => {
                warn!(%peer, "closing connection: acks=0 produce failed");
                return Outcome::Close;
            }
        },
        RequestBody::Fetch(r) => Some(fetch::handle(state, r, version).await.into()),
        RequestBody::ListOffsets(r) => Some(list_offsets::handle(state, r, version).await.into()),
        RequestBody::FindCoordinator(r) => {
            Some(find_coordinator::handle(state, &r, version).into())
        }
        RequestBody::DescribeCluster(r) => Some(describe_cluster::handle(state, &r).into()),
        RequestBody::CreateTopics(r) => Some(create_topics::handle(state, r, version).await.into()),
        RequestBody::DeleteTopics(r) => Some(delete_topics::handle(state, r, version).await.into()),
        RequestBody::CreatePartitions(r) => Some(create_partitions::handle(state, r).await.into()),
        RequestBody::DescribeConfigs(r) => Some(configs::describe(state, r, version).into()),
        RequestBody::IncrementalAlterConfigs(r) => {
            Some(configs::incremental_alter(state, r).await.into())
        }
        other => {
            warn!(%peer, api = other.api_key().name(), "closing connection: no handler");
            return Outcome::Close;
        }
    };
    match response {
        Some(body) => {
            let outcome = write_response(out, prefix.correlation_id, version, &body, peer);
            if let ResponseBody::Fetch(fetch) = body {
                // The records were copied into `out`: their read buffers can be reused.
                for topic in fetch.responses {
                    for partition in topic.partitions {
                        if let Some(records) = partition.records {
                            crate::storage::recycle_read_buffer(records);
                        }
                    }
                }
            }
            outcome
        }
        None => Outcome::Continue,
    }
}

fn write_response(
    out: &mut BytesMut,
    correlation_id: i32,
    version: i16,
    body: &ResponseBody,
    peer: SocketAddr,
) -> Outcome {
    let mark = out.len();
    match encode_response(out, correlation_id, version, body) {
        Ok(()) => Outcome::Continue,
        Err(e) => {
            out.truncate(mark);
            warn!(%peer, api = body.api_key().name(), version, error = %e, "closing connection: response not encodable");
            Outcome::Close
        }
    }
}

/// Runs blocking storage work (file I/O) off the async worker threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
