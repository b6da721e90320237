//! Request handling: one module per API (franz-go kfake style), each beginning with the
//! versions it serves and the behaviour it implements, and [`handle`], which decodes a frame,
//! dispatches it and encodes the response.
//!
//! Errors follow Kafka's broker: an unknown API key, an API we do not serve, an unsupported
//! version (except ApiVersions) or a body that does not parse closes the connection, as
//! Kafka's `SocketServer` does (bytes after a complete body are ignored, as Kafka does);
//! request-level problems get the error codes Kafka returns.
//!
//! Faults injected by tests ([`crate::faults`]) are taken once a request is decoded: a
//! whole-request error replaces processing, partition errors are passed to the Produce, Fetch
//! and ListOffsets handlers, and delays and dropped connections apply to the response.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_wire::frame::{decode_request_lenient, peek_request_prefix, SpliceMark, SplicedBuf};
use kafka_wire::{ApiKey, RequestBody, ResponseBody, VersionRange};
use tracing::warn;

use crate::faults::{self, PartitionFaults, RequestFaults};
use crate::state::BrokerState;

mod acls;
mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod api_versions;
mod configs;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_transactions;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod produce;
mod sync_group;
#[cfg(test)]
mod test_support;
mod txn_offset_commit;

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
        | ApiKey::FindCoordinator
        | ApiKey::InitProducerId
        // The classic group coordinator: every version.
        | ApiKey::JoinGroup
        | ApiKey::SyncGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::OffsetCommit
        | ApiKey::OffsetFetch
        | ApiKey::ListGroups
        | ApiKey::DescribeGroups
        | ApiKey::DeleteGroups
        | ApiKey::OffsetDelete
        // The transaction coordinator (KIP-98, KIP-664): every version the spec offers (EndTxn
        // v5, KIP-890's per-transaction epoch bump, is unstable and not offered).
        | ApiKey::AddOffsetsToTxn
        | ApiKey::EndTxn
        | ApiKey::TxnOffsetCommit
        | ApiKey::DescribeTransactions
        | ApiKey::ListTransactions => from(spec.min),
        // v4-5 are the brokers' batched / verify-only form (KIP-890): the client form only.
        ApiKey::AddPartitionsToTxn => Some(VersionRange {
            min: spec.min,
            max: spec.max.min(3),
        }),
        // Record format v2 only: Produce v3+ and Fetch v4+ (as Kafka 4.0).
        ApiKey::Produce => from(3),
        ApiKey::Fetch => from(4),
        ApiKey::ListOffsets => from(1),
        ApiKey::CreateTopics => from(2),
        ApiKey::DeleteTopics => from(1),
        // KIP-107: every version (v2 flexible).
        ApiKey::DeleteRecords => from(spec.min),
        ApiKey::DescribeConfigs => from(1),
        // The legacy, non-incremental AlterConfigs: every version (topic resources).
        ApiKey::AlterConfigs => from(spec.min),
        // KIP-113 (v3 top-level error, v4 volume bytes): every version, one log directory.
        ApiKey::DescribeLogDirs => from(spec.min),
        // KIP-664: the producers in each partition's producer state.
        ApiKey::DescribeProducers => from(spec.min),
        // KIP-140: no authorizer, SECURITY_DISABLED, advertised as Kafka does.
        ApiKey::DescribeAcls | ApiKey::CreateAcls | ApiKey::DeleteAcls => from(spec.min),
        _ => None,
    }
}

/// Handles one request frame, appending the size-prefixed response (if any) to `out`.
pub(crate) async fn handle(
    state: &Arc<BrokerState>,
    frame: Bytes,
    peer: SocketAddr,
    out: &mut SplicedBuf,
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
    let (body, client_id) = match decode_request_lenient(frame) {
        Ok((request, trailing)) => {
            if trailing > 0 {
                tracing::debug!(%peer, api = api.name(), version, trailing, "ignoring bytes after the request body, as Kafka does");
            }
            (request.body, request.header.client_id.unwrap_or_default())
        }
        Err(e) => {
            warn!(%peer, api = api.name(), version, error = %e, "closing connection: malformed request");
            return Outcome::Close;
        }
    };
    // Injected faults (tests): one atomic load when there are none.
    let injected = state
        .faults()
        .take(api, || request_partitions(state, &body, version));
    let mark = out.mark();
    let outcome = match injected.error {
        Some(code) => {
            respond_with_injected_error(&body, version, code, prefix.correlation_id, peer, out)
        }
        None => {
            let ctx = RequestContext {
                version,
                correlation_id: prefix.correlation_id,
                peer,
                client_id,
            };
            dispatch(state, body, ctx, out, &injected.partitions).await
        }
    };
    finish_with_faults(&injected, api, peer, out, mark, outcome).await
}

/// Applies the delay and connection drop of `injected` to a handled request whose response
/// (if any) was written to `out` from `mark`.
async fn finish_with_faults(
    injected: &RequestFaults,
    api: ApiKey,
    peer: SocketAddr,
    out: &mut SplicedBuf,
    mark: SpliceMark,
    outcome: Outcome,
) -> Outcome {
    if let Some(delay) = injected.delay {
        tokio::time::sleep(delay).await;
    }
    if injected.drop_connection {
        // Earlier pipelined responses (before `mark`) are still written.
        out.truncate(mark);
        tracing::info!(%peer, api = api.name(), "closing connection without a response: injected fault");
        return Outcome::Close;
    }
    outcome
}

/// Answers a request with an injected error, without processing it.
fn respond_with_injected_error(
    body: &RequestBody,
    version: i16,
    code: kafka_wire::ErrorCode,
    correlation_id: i32,
    peer: SocketAddr,
    out: &mut SplicedBuf,
) -> Outcome {
    let api = body.api_key();
    tracing::info!(%peer, api = api.name(), error = code.name(), "answering with an injected error");
    if let RequestBody::Produce(r) = body {
        if r.acks == 0 {
            // No response exists for acks=0: report the failure as Kafka does.
            warn!(%peer, "closing connection: injected error on an acks=0 produce");
            return Outcome::Close;
        }
    }
    match faults::error_response(body, version, code) {
        Some(response) => write_response(out, correlation_id, version, &response, peer),
        None => {
            warn!(%peer, api = api.name(), "closing connection: no error response for an injected error");
            Outcome::Close
        }
    }
}

/// The `(topic, partition)` pairs of a Produce, Fetch or ListOffsets request (Fetch v13+
/// names topics by id: known ids are resolved to names), for partition faults.
fn request_partitions(state: &BrokerState, body: &RequestBody, version: i16) -> Vec<(String, i32)> {
    match body {
        RequestBody::Produce(r) => r
            .topic_data
            .iter()
            .flat_map(|t| t.partition_data.iter().map(|p| (t.name.clone(), p.index)))
            .collect(),
        RequestBody::Fetch(r) => r
            .topics
            .iter()
            .flat_map(|t| {
                let name = if version >= 13 {
                    state.topic_by_id(&t.topic_id).map(|t| t.name.clone())
                } else {
                    Some(t.topic.clone())
                };
                name.into_iter()
                    .flat_map(move |n| t.partitions.iter().map(move |p| (n.clone(), p.partition)))
            })
            .collect(),
        RequestBody::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// What a handler may need besides the body.
struct RequestContext {
    version: i16,
    correlation_id: i32,
    peer: SocketAddr,
    client_id: String,
}

/// Processes a decoded request and writes its response (if any) to `out`.
async fn dispatch(
    state: &Arc<BrokerState>,
    body: RequestBody,
    ctx: RequestContext,
    out: &mut SplicedBuf,
    partition_faults: &PartitionFaults,
) -> Outcome {
    let RequestContext {
        version,
        correlation_id,
        peer,
        client_id,
    } = ctx;
    let response: Option<ResponseBody> = match body {
        RequestBody::ApiVersions(r) => Some(api_versions::handle(&r, version).into()),
        RequestBody::Metadata(r) => Some(metadata::handle(state, r, version).await.into()),
        RequestBody::Produce(r) => match produce::handle(state, r, version, partition_faults).await
        {
            produce::ProduceOutcome::Respond(resp) => Some(resp.into()),
            produce::ProduceOutcome::Silent => None,
            produce::ProduceOutcome::CloseConnection => {
                warn!(%peer, "closing connection: acks=0 produce failed");
                return Outcome::Close;
            }
        },
        RequestBody::Fetch(r) => Some(
            fetch::handle(state, r, version, partition_faults)
                .await
                .into(),
        ),
        RequestBody::ListOffsets(r) => Some(
            list_offsets::handle(state, r, version, partition_faults)
                .await
                .into(),
        ),
        RequestBody::FindCoordinator(r) => {
            Some(find_coordinator::handle(state, &r, version).await.into())
        }
        RequestBody::InitProducerId(r) => {
            Some(init_producer_id::handle(state, &r, version).await.into())
        }
        RequestBody::AddPartitionsToTxn(r) => Some(
            add_partitions_to_txn::handle(state, r, version)
                .await
                .into(),
        ),
        RequestBody::AddOffsetsToTxn(r) => {
            Some(add_offsets_to_txn::handle(state, r, version).await.into())
        }
        RequestBody::EndTxn(r) => Some(end_txn::handle(state, r, version).await.into()),
        RequestBody::TxnOffsetCommit(r) => {
            Some(txn_offset_commit::handle(state, r, version).await.into())
        }
        RequestBody::DescribeTransactions(r) => {
            Some(describe_transactions::handle(state, r).await.into())
        }
        RequestBody::ListTransactions(r) => {
            Some(list_transactions::handle(state, r, version).await.into())
        }
        RequestBody::DescribeCluster(r) => Some(describe_cluster::handle(state, &r).into()),
        RequestBody::CreateTopics(r) => Some(create_topics::handle(state, r, version).await.into()),
        RequestBody::DeleteTopics(r) => Some(delete_topics::handle(state, r, version).await.into()),
        RequestBody::DeleteRecords(r) => Some(delete_records::handle(state, r).await.into()),
        RequestBody::CreatePartitions(r) => Some(create_partitions::handle(state, r).await.into()),
        RequestBody::DescribeConfigs(r) => Some(configs::describe(state, r, version).into()),
        RequestBody::IncrementalAlterConfigs(r) => {
            Some(configs::incremental_alter(state, r).await.into())
        }
        RequestBody::AlterConfigs(r) => Some(configs::alter(state, r).await.into()),
        RequestBody::DescribeLogDirs(r) => Some(describe_log_dirs::handle(state, r).await.into()),
        RequestBody::DescribeProducers(r) => {
            Some(describe_producers::handle(state, r).await.into())
        }
        RequestBody::DescribeAcls(r) => Some(acls::describe(&r).into()),
        RequestBody::CreateAcls(r) => Some(acls::create(&r).into()),
        RequestBody::DeleteAcls(r) => Some(acls::delete(&r).into()),
        RequestBody::JoinGroup(r) => Some(
            join_group::handle(state, r, version, client_id, peer)
                .await
                .into(),
        ),
        RequestBody::SyncGroup(r) => Some(sync_group::handle(state, r, version).await.into()),
        RequestBody::Heartbeat(r) => Some(heartbeat::handle(state, r).await.into()),
        RequestBody::LeaveGroup(r) => Some(leave_group::handle(state, r, version).await.into()),
        RequestBody::OffsetCommit(r) => Some(offset_commit::handle(state, r, version).await.into()),
        RequestBody::OffsetFetch(r) => Some(offset_fetch::handle(state, r, version).await.into()),
        RequestBody::ListGroups(r) => Some(list_groups::handle(state, &r).into()),
        RequestBody::DescribeGroups(r) => Some(describe_groups::handle(state, &r, version).into()),
        RequestBody::DeleteGroups(r) => Some(delete_groups::handle(state, r).await.into()),
        RequestBody::OffsetDelete(r) => Some(offset_delete::handle(state, r).await.into()),
        other => {
            warn!(%peer, api = other.api_key().name(), "closing connection: no handler");
            return Outcome::Close;
        }
    };
    match response {
        Some(body) => {
            let outcome = write_response(out, correlation_id, version, &body, peer);
            if let ResponseBody::Fetch(fetch) = body {
                // Records below MIN_SPLICE were copied into `out`: their read buffers can be
                // reused now (the spliced ones are still shared with `out`, so they are left
                // alone here and recycled by the connection once written).
                fetch::recycle(fetch.responses.into_iter().flat_map(|t| t.partitions));
            }
            outcome
        }
        None => Outcome::Continue,
    }
}

/// Records fields of at least this many bytes are sent from their read buffers by vectored
/// writes instead of being copied into the connection's write buffer (smaller ones are
/// cheaper to copy than to send as a separate slice).
const MIN_SPLICE: usize = 8 * 1024;

fn write_response(
    out: &mut SplicedBuf,
    correlation_id: i32,
    version: i16,
    body: &ResponseBody,
    peer: SocketAddr,
) -> Outcome {
    match out.encode_response(correlation_id, version, body, MIN_SPLICE) {
        Ok(()) => Outcome::Continue,
        Err(e) => {
            warn!(%peer, api = body.api_key().name(), version, error = %e, "closing connection: response not encodable");
            Outcome::Close
        }
    }
}

/// Runs blocking storage work (file I/O) off the async worker threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: the runtime is shutting down and is about to drop this task too.
        Err(_) => std::future::pending().await,
    }
}
