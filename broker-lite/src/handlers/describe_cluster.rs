//! DescribeCluster (key 60), versions 0-1.
//!
//! One broker, which is also the controller. v1's `EndpointType` 1 (brokers) is answered;
//! asking for controller endpoints (2) gets UNSUPPORTED_ENDPOINT_TYPE, as a broker does.

use std::sync::Arc;

use kafka_wire::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_wire::messages::{DescribeClusterRequest, DescribeClusterResponse};
use kafka_wire::ErrorCode;

use super::metadata::ALL_CLUSTER_OPERATIONS;
use crate::state::BrokerState;

pub(super) fn handle(
    state: &Arc<BrokerState>,
    req: &DescribeClusterRequest,
) -> DescribeClusterResponse {
    if req.endpoint_type != 1 {
        return DescribeClusterResponse {
            error_code: ErrorCode::UnsupportedEndpointType.code(),
            error_message: Some("broker-lite only lists broker endpoints".into()),
            endpoint_type: req.endpoint_type,
            cluster_id: state.cluster_id.clone(),
            controller_id: -1,
            ..Default::default()
        };
    }
    DescribeClusterResponse {
        endpoint_type: 1,
        cluster_id: state.cluster_id.clone(),
        controller_id: state.config.node_id,
        brokers: vec![DescribeClusterBroker {
            broker_id: state.config.node_id,
            host: state.advertised_host.clone(),
            port: state.advertised_port,
            rack: None,
            ..Default::default()
        }],
        cluster_authorized_operations: if req.include_cluster_authorized_operations {
            ALL_CLUSTER_OPERATIONS
        } else {
            i32::MIN
        },
        ..Default::default()
    }
}
