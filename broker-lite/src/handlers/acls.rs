//! DescribeAcls (key 29), CreateAcls (key 30) and DeleteAcls (key 31), versions 0-3 each (v1
//! adds the resource pattern type, KIP-290; v2+ flexible), KIP-140.
//!
//! broker-lite has no authorizer, and answers as a Kafka broker without
//! `authorizer.class.name` does (`AclApis`; the KRaft broker answers DescribeAcls itself and
//! forwards CreateAcls and DeleteAcls to the controller, whose `AclApis` answers the same way).
//! Kafka advertises the three APIs all the same (they are in the broker listener's API set
//! whatever the configuration), so clients get an answer, not a closed connection:
//!
//! * DescribeAcls: the top-level error SECURITY_DISABLED with the message "No Authorizer is
//!   configured on the broker", no resources (the response is built by hand in
//!   `handleDescribeAcls`).
//! * CreateAcls: one result per creation, in request order, each SECURITY_DISABLED with the
//!   message "No Authorizer is configured." (`CreateAclsRequest.getErrorResponse` of a
//!   `SecurityDisabledException`).
//! * DeleteAcls: one filter result per filter, each SECURITY_DISABLED with the message "No
//!   Authorizer is configured.", no matching ACLs (`DeleteAclsRequest.getErrorResponse`).
//!
//! Nothing is stored or checked: the filters and bindings are not looked at.

use kafka_wire::messages::create_acls_response::AclCreationResult;
use kafka_wire::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_wire::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_wire::ErrorCode;

/// DescribeAcls' message without an authorizer (`AclApis.handleDescribeAcls`).
const DESCRIBE_NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";
/// CreateAcls' and DeleteAcls' message: their `SecurityDisabledException`'s.
const ALTER_NO_AUTHORIZER: &str = "No Authorizer is configured.";

pub(super) fn describe(_req: &DescribeAclsRequest) -> DescribeAclsResponse {
    DescribeAclsResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::SecurityDisabled.code(),
        error_message: Some(DESCRIBE_NO_AUTHORIZER.into()),
        resources: Vec::new(),
        ..Default::default()
    }
}

pub(super) fn create(req: &CreateAclsRequest) -> CreateAclsResponse {
    CreateAclsResponse {
        throttle_time_ms: 0,
        results: req
            .creations
            .iter()
            .map(|_| AclCreationResult {
                error_code: ErrorCode::SecurityDisabled.code(),
                error_message: Some(ALTER_NO_AUTHORIZER.into()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub(super) fn delete(req: &DeleteAclsRequest) -> DeleteAclsResponse {
    DeleteAclsResponse {
        throttle_time_ms: 0,
        filter_results: req
            .filters
            .iter()
            .map(|_| DeleteAclsFilterResult {
                error_code: ErrorCode::SecurityDisabled.code(),
                error_message: Some(ALTER_NO_AUTHORIZER.into()),
                matching_acls: Vec::new(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::create_acls_request::AclCreation;
    use kafka_wire::messages::delete_acls_request::DeleteAclsFilter;

    use super::*;

    #[test]
    fn describe_is_security_disabled_at_the_top() {
        let r = describe(&DescribeAclsRequest {
            resource_type_filter: 1,
            operation: 1,
            permission_type: 1,
            ..Default::default()
        });
        assert_eq!(r.throttle_time_ms, 0);
        assert_eq!(r.error_code, 54);
        assert_eq!(
            r.error_message.as_deref(),
            Some("No Authorizer is configured on the broker")
        );
        assert!(r.resources.is_empty());
    }

    #[test]
    fn create_and_delete_answer_each_entry() {
        let r = create(&CreateAclsRequest {
            creations: vec![AclCreation::default(); 3],
            ..Default::default()
        });
        assert_eq!(r.results.len(), 3);
        for res in &r.results {
            assert_eq!(res.error_code, 54);
            assert_eq!(
                res.error_message.as_deref(),
                Some("No Authorizer is configured.")
            );
        }
        assert!(create(&CreateAclsRequest::default()).results.is_empty());

        let r = delete(&DeleteAclsRequest {
            filters: vec![DeleteAclsFilter::default(); 2],
            ..Default::default()
        });
        assert_eq!(r.filter_results.len(), 2);
        for res in &r.filter_results {
            assert_eq!(res.error_code, 54);
            assert_eq!(
                res.error_message.as_deref(),
                Some("No Authorizer is configured.")
            );
            assert!(res.matching_acls.is_empty());
        }
    }
}
