//! Unit tests of the transactional state machine: every step without sockets or clocks
//! (`now` passed in), responses fed by hand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_wire::ErrorCode;

use super::*;

const BACKOFF: Duration = Duration::from_millis(100);

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition {
        topic: Arc::from(topic),
        partition: p,
    }
}

fn node(id: i32) -> CoordinatorNode {
    CoordinatorNode {
        node_id: id,
        host: "localhost".into(),
        port: 9000 + id,
    }
}

fn pid(id: i64, epoch: i16) -> ProducerIdAndEpoch {
    ProducerIdAndEpoch {
        producer_id: id,
        epoch,
    }
}

fn group() -> ConsumerGroupMetadata {
    ConsumerGroupMetadata {
        group_id: "g".into(),
        generation_id: 3,
        member_id: "m-1".into(),
        group_instance_id: Some("i-1".into()),
    }
}

fn mgr() -> TransactionManager {
    TransactionManager::new_transactional("tx".into(), 60_000, BACKOFF)
}

#[track_caller]
fn expect_send(m: &mut TransactionManager, now: Instant, incomplete: bool) -> TxnRequest {
    match m.next_request(now, incomplete) {
        TxnNext::Send(r) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

#[track_caller]
/// Expects the next request to be EndTxn(`commit`) and answers it with `error`.
fn answer_end_txn(m: &mut TransactionManager, now: Instant, commit: bool, error: ErrorCode) {
    let req = expect_send(m, now, false);
    assert!(
        matches!(req.body, TxnRequestBody::EndTxn { commit: c, .. } if c == commit),
        "expected EndTxn(commit={commit}), got {:?}",
        req.body
    );
    m.handle_response(req.id, TxnResponse::EndTxn { error }, now);
}

fn answer_find(m: &mut TransactionManager, now: Instant, expect: CoordinatorType, n: i32) {
    let r = expect_send(m, now, false);
    match &r.body {
        TxnRequestBody::FindCoordinator { key_type, .. } => assert_eq!(*key_type, expect),
        other => panic!("expected FindCoordinator, got {other:?}"),
    }
    assert_eq!(r.target, None, "FindCoordinator goes to any broker");
    m.handle_response(
        r.id,
        TxnResponse::FindCoordinator {
            error: ErrorCode::None,
            message: None,
            coordinator: node(n),
        },
        now,
    );
}

fn state(m: &TransactionManager) -> State {
    m.state().expect("transactional")
}

/// Initialized with producer id 5, epoch 0, against a coordinator that can bump epochs.
fn initialized(now: Instant) -> TransactionManager {
    let mut m = mgr();
    let r = m.initialize_transactions().expect("init");
    assert_eq!(state(&m), State::Initializing);
    answer_find(&mut m, now, CoordinatorType::Transaction, 1);
    let req = expect_send(&mut m, now, false);
    assert_eq!(req.target, Some(node(1)));
    assert_eq!(req.coordinator_type, Some(CoordinatorType::Transaction));
    assert_eq!(
        req.body,
        TxnRequestBody::InitProducerId {
            transactional_id: "tx".into(),
            transaction_timeout_ms: 60_000,
            producer: ProducerIdAndEpoch::NONE,
        }
    );
    m.handle_coordinator_ready(true);
    m.handle_response(
        req.id,
        TxnResponse::InitProducerId {
            error: ErrorCode::None,
            producer: pid(5, 0),
        },
        now,
    );
    assert_eq!(r.outcome(), Some(Ok(())));
    assert_eq!(state(&m), State::Ready);
    assert_eq!(m.producer_id_and_epoch(), pid(5, 0));
    m
}

/// In a transaction, `partitions` asked for: the AddPartitionsToTxn request, not answered.
#[track_caller]
fn adding(now: Instant, partitions: &[TopicPartition]) -> (TransactionManager, TxnRequest) {
    let mut m = initialized(now);
    m.begin_transaction().expect("begin");
    for p in partitions {
        m.maybe_add_partition(p);
    }
    let req = expect_send(&mut m, now, true);
    let TxnRequestBody::AddPartitionsToTxn { partitions: ps, .. } = &req.body else {
        panic!("expected AddPartitionsToTxn, got {:?}", req.body);
    };
    let mut asked = partitions.to_vec();
    asked.sort();
    asked.dedup();
    assert_eq!(ps, &asked, "every partition asked for, in one request");
    (m, req)
}

/// Answers AddPartitionsToTxn request `id` with `errors`.
fn answer_add(
    m: &mut TransactionManager,
    id: u64,
    now: Instant,
    errors: &[(&TopicPartition, ErrorCode)],
) {
    let errors = errors.iter().map(|(p, e)| ((*p).clone(), *e)).collect();
    m.handle_response(id, TxnResponse::AddPartitionsToTxn { errors }, now);
}

/// In a transaction whose partitions were added.
fn in_txn_with(now: Instant, partitions: &[TopicPartition]) -> TransactionManager {
    if partitions.is_empty() {
        let mut m = initialized(now);
        m.begin_transaction().expect("begin");
        return m;
    }
    let (mut m, req) = adding(now, partitions);
    let errors: Vec<_> = partitions.iter().map(|p| (p, ErrorCode::None)).collect();
    answer_add(&mut m, req.id, now, &errors);
    for p in partitions {
        assert!(m.transaction_contains_partition(p));
    }
    m
}

/// In a transaction, offsets of group `g` sent: the AddOffsetsToTxn request, not answered.
fn adding_offsets(now: Instant) -> (TransactionManager, TxnResult, TxnRequest) {
    let mut m = initialized(now);
    m.begin_transaction().unwrap();
    let r = m
        .send_offsets_to_transaction(vec![(tp("in", 0), OffsetAndMetadata::new(1))], group())
        .unwrap();
    let req = expect_send(&mut m, now, false);
    assert!(
        matches!(req.body, TxnRequestBody::AddOffsetsToTxn { .. }),
        "{req:?}"
    );
    (m, r, req)
}

/// The Kafka error code a completed call failed with.
fn failed_with(r: &TxnResult) -> Option<ErrorCode> {
    r.outcome().and_then(|o| o.err()).and_then(|e| e.code())
}

#[test]
fn transitions_are_javas() {
    use State::*;
    let all = [
        Uninitialized,
        Initializing,
        Ready,
        InTransaction,
        CommittingTransaction,
        AbortingTransaction,
        AbortableError,
        FatalError,
    ];
    let valid_sources = |target: State| -> Vec<State> {
        match target {
            Uninitialized => vec![Ready],
            Initializing => vec![Uninitialized, AbortingTransaction],
            Ready => vec![Initializing, CommittingTransaction, AbortingTransaction],
            InTransaction => vec![Ready],
            CommittingTransaction => vec![InTransaction],
            AbortingTransaction => vec![InTransaction, AbortableError],
            AbortableError => vec![InTransaction, CommittingTransaction, AbortableError],
            FatalError => all.to_vec(),
        }
    };
    for target in all {
        for source in all {
            assert_eq!(
                source.is_transition_valid(target),
                valid_sources(target).contains(&source),
                "{source} -> {target}"
            );
        }
    }
}

#[test]
fn transactional_methods_need_a_transactional_id() {
    let mut m = TransactionManager::new();
    assert!(matches!(
        m.initialize_transactions(),
        Err(Error::IllegalState(_))
    ));
    assert!(matches!(m.begin_transaction(), Err(Error::IllegalState(_))));
    assert!(matches!(m.begin_commit(), Err(Error::IllegalState(_))));
    // An idempotent producer sends to every partition.
    m.set_producer_id_and_epoch(pid(1, 0));
    assert!(m.is_send_to_partition_allowed(&tp("t", 0)));
    assert!(!m.should_stop_drain(&tp("t", 0), 1, false));
    assert!(m.fail_if_not_ready_for_send().is_ok());
}

#[test]
fn nothing_is_drained_or_sent_before_init() {
    let now = Instant::now();
    let mut m = mgr();
    assert!(!m.needs_init(), "no idempotent InitProducerId");
    assert!(m.should_stop_drain(&tp("t", 0), 1, false));
    assert_eq!(m.next_request(now, false), TxnNext::Idle);
    match m.fail_if_not_ready_for_send() {
        Err(Error::IllegalState(msg)) => assert!(msg.contains("initTransactions"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn init_is_reused_while_pending_and_refused_once_done() {
    let now = Instant::now();
    let mut m = mgr();
    let a = m.initialize_transactions().unwrap();
    let b = m.initialize_transactions().unwrap();
    assert!(
        a.same(&b),
        "a call after a timeout waits for the same InitProducerId"
    );
    assert!(m.has_pending_requests());
    answer_find(&mut m, now, CoordinatorType::Transaction, 1);
    let req = expect_send(&mut m, now, false);
    m.handle_response(
        req.id,
        TxnResponse::InitProducerId {
            error: ErrorCode::None,
            producer: pid(9, 2),
        },
        now,
    );
    assert_eq!(b.outcome(), Some(Ok(())));
    assert!(matches!(
        m.initialize_transactions(),
        Err(Error::IllegalState(_))
    ));
}

#[test]
fn init_retries_and_finds_the_coordinator_again() {
    let now = Instant::now();
    let mut m = mgr();
    let r = m.initialize_transactions().unwrap();
    answer_find(&mut m, now, CoordinatorType::Transaction, 1);
    // NOT_COORDINATOR: FindCoordinator again, then InitProducerId after its backoff.
    let req = expect_send(&mut m, now, false);
    m.handle_response(
        req.id,
        TxnResponse::InitProducerId {
            error: ErrorCode::NotCoordinator,
            producer: ProducerIdAndEpoch::NONE,
        },
        now,
    );
    answer_find(&mut m, now, CoordinatorType::Transaction, 2);
    assert_eq!(m.next_request(now, false), TxnNext::Backoff(now + BACKOFF));
    let later = now + BACKOFF;
    let req = expect_send(&mut m, later, false);
    assert_eq!(req.target, Some(node(2)));
    // Loading, then a previous instance's transaction completing: retried with backoff.
    for code in [
        ErrorCode::CoordinatorLoadInProgress,
        ErrorCode::ConcurrentTransactions,
    ] {
        let req_now = later;
        m.handle_response(
            req.id,
            TxnResponse::InitProducerId {
                error: code,
                producer: ProducerIdAndEpoch::NONE,
            },
            req_now,
        );
        assert!(matches!(
            m.next_request(req_now, false),
            TxnNext::Backoff(_)
        ));
        let _ = expect_send(&mut m, req_now + BACKOFF, false);
        // The id of the retried request stays the same.
    }
    assert!(!r.is_completed());
    assert_eq!(state(&m), State::Initializing);
}

#[test]
fn find_coordinator_not_available_is_retried() {
    let now = Instant::now();
    let mut m = mgr();
    m.initialize_transactions().unwrap();
    let r = expect_send(&mut m, now, false);
    m.handle_response(
        r.id,
        TxnResponse::FindCoordinator {
            error: ErrorCode::CoordinatorNotAvailable,
            message: None,
            coordinator: node(-1),
        },
        now,
    );
    assert_eq!(m.next_request(now, false), TxnNext::Backoff(now + BACKOFF));
    answer_find(&mut m, now + BACKOFF, CoordinatorType::Transaction, 1);
}

#[test]
fn init_fatal_errors() {
    for (code, expected) in [
        (
            ErrorCode::TransactionalIdAuthorizationFailed,
            ErrorCode::TransactionalIdAuthorizationFailed,
        ),
        (
            ErrorCode::ClusterAuthorizationFailed,
            ErrorCode::ClusterAuthorizationFailed,
        ),
        (ErrorCode::ProducerFenced, ErrorCode::ProducerFenced),
        (ErrorCode::InvalidProducerEpoch, ErrorCode::ProducerFenced),
        (ErrorCode::InvalidRequest, ErrorCode::InvalidRequest),
    ] {
        let now = Instant::now();
        let mut m = mgr();
        let r = m.initialize_transactions().unwrap();
        answer_find(&mut m, now, CoordinatorType::Transaction, 1);
        let req = expect_send(&mut m, now, false);
        m.handle_response(
            req.id,
            TxnResponse::InitProducerId {
                error: code,
                producer: ProducerIdAndEpoch::NONE,
            },
            now,
        );
        assert_eq!(state(&m), State::FatalError, "{code:?}");
        assert_eq!(failed_with(&r), Some(expected));
        assert_eq!(m.fatal_error().and_then(|e| e.code()), Some(expected));
    }
}

#[test]
fn send_is_only_allowed_inside_a_transaction() {
    let now = Instant::now();
    let mut m = initialized(now);
    match m.fail_if_not_ready_for_send() {
        Err(Error::IllegalState(msg)) => assert_eq!(msg, "Cannot call send in state READY"),
        other => panic!("{other:?}"),
    }
    m.begin_transaction().unwrap();
    assert!(m.fail_if_not_ready_for_send().is_ok());
    assert!(matches!(m.begin_transaction(), Err(Error::IllegalState(_))));
}

#[test]
fn partitions_are_added_in_one_request_and_gate_the_drain() {
    let now = Instant::now();
    let mut m = initialized(now);
    m.begin_transaction().unwrap();
    let (a, b, c) = (tp("t", 0), tp("t", 1), tp("u", 0));
    m.maybe_add_partition(&a);
    m.maybe_add_partition(&b);
    m.maybe_add_partition(&a);
    assert!(m.is_partition_pending_add(&a));
    assert!(!m.is_send_to_partition_allowed(&a));
    assert!(
        m.should_stop_drain(&a, 1, false),
        "not drained before it is added"
    );
    let req = expect_send(&mut m, now, true);
    assert_eq!(req.target, Some(node(1)));
    assert_eq!(
        req.body,
        TxnRequestBody::AddPartitionsToTxn {
            transactional_id: "tx".into(),
            producer: pid(5, 0),
            partitions: vec![a.clone(), b.clone()],
        }
    );
    // One transactional request in flight at a time.
    m.maybe_add_partition(&c);
    assert_eq!(m.next_request(now, true), TxnNext::Idle);
    answer_add(
        &mut m,
        req.id,
        now,
        &[(&a, ErrorCode::None), (&b, ErrorCode::None)],
    );
    assert!(m.is_send_to_partition_allowed(&a));
    assert!(!m.should_stop_drain(&a, 1, false));
    assert!(!m.is_send_to_partition_allowed(&c));
    let req = expect_send(&mut m, now, true);
    let TxnRequestBody::AddPartitionsToTxn { partitions, .. } = &req.body else {
        panic!("{req:?}");
    };
    assert_eq!(partitions, &vec![c.clone()]);
}

#[test]
fn add_partitions_retries() {
    let now = Instant::now();
    let a = tp("t", 0);
    let (mut m, req) = adding(now, std::slice::from_ref(&a));
    // The previous transaction is still completing: a short backoff for the first add.
    answer_add(
        &mut m,
        req.id,
        now,
        &[(&a, ErrorCode::ConcurrentTransactions)],
    );
    assert_eq!(
        m.next_request(now, true),
        TxnNext::Backoff(now + ADD_PARTITIONS_RETRY_BACKOFF)
    );
    let req = expect_send(&mut m, now + ADD_PARTITIONS_RETRY_BACKOFF, true);
    // Loading and unknown partitions (Java retries those too).
    for code in [
        ErrorCode::CoordinatorLoadInProgress,
        ErrorCode::UnknownTopicOrPartition,
    ] {
        answer_add(&mut m, req.id, now, &[(&a, code)]);
        assert_eq!(m.next_request(now, true), TxnNext::Backoff(now + BACKOFF));
        assert_eq!(expect_send(&mut m, now + BACKOFF, true).id, req.id);
    }
    // Coordinator moved: find it, then retry.
    answer_add(&mut m, req.id, now, &[(&a, ErrorCode::NotCoordinator)]);
    answer_find(&mut m, now, CoordinatorType::Transaction, 3);
    let retry = expect_send(&mut m, now + BACKOFF, true);
    assert_eq!(retry.target, Some(node(3)));
    answer_add(&mut m, retry.id, now, &[(&a, ErrorCode::None)]);
    assert!(m.transaction_contains_partition(&a));
    // With partitions in the transaction, CONCURRENT_TRANSACTIONS waits the full backoff.
    let b = tp("t", 1);
    m.maybe_add_partition(&b);
    let req = expect_send(&mut m, now, true);
    answer_add(
        &mut m,
        req.id,
        now,
        &[(&b, ErrorCode::ConcurrentTransactions)],
    );
    assert_eq!(m.next_request(now, true), TxnNext::Backoff(now + BACKOFF));
}

#[test]
fn add_partitions_fatal_errors() {
    for (code, expected) in [
        (ErrorCode::InvalidProducerEpoch, ErrorCode::ProducerFenced),
        (ErrorCode::ProducerFenced, ErrorCode::ProducerFenced),
        (
            ErrorCode::TransactionalIdAuthorizationFailed,
            ErrorCode::TransactionalIdAuthorizationFailed,
        ),
        (ErrorCode::InvalidTxnState, ErrorCode::InvalidTxnState),
    ] {
        let now = Instant::now();
        let a = tp("t", 0);
        let (mut m, req) = adding(now, std::slice::from_ref(&a));
        answer_add(&mut m, req.id, now, &[(&a, code)]);
        assert_eq!(state(&m), State::FatalError, "{code:?}");
        assert_eq!(m.fatal_error().and_then(|e| e.code()), Some(expected));
        assert!(!m.is_send_to_partition_allowed(&a));
    }
}

#[test]
fn add_partitions_abortable_errors() {
    let now = Instant::now();
    let (a, b) = (tp("t", 0), tp("secret", 0));
    let (mut m, req) = adding(now, &[a.clone(), b.clone()]);
    answer_add(
        &mut m,
        req.id,
        now,
        &[
            (&a, ErrorCode::OperationNotAttempted),
            (&b, ErrorCode::TopicAuthorizationFailed),
        ],
    );
    assert_eq!(state(&m), State::AbortableError);
    assert!(!m.is_partition_pending_add(&a), "no longer pending");
    assert!(!m.is_send_to_partition_allowed(&a));
    let e = m.fail_if_not_ready_for_send().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TopicAuthorizationFailed));
    // Commit fails with it; abort is the way out.
    assert_eq!(
        m.begin_commit().unwrap_err().code(),
        Some(ErrorCode::TopicAuthorizationFailed)
    );
    let abort = m.begin_abort().unwrap();
    assert_eq!(state(&m), State::AbortingTransaction);
    // Nothing was added: no EndTxn.
    assert_eq!(m.next_request(now, false), TxnNext::Idle);
    assert_eq!(abort.outcome(), Some(Ok(())));
    assert_eq!(state(&m), State::Ready);
    m.begin_transaction().unwrap();

    // OPERATION_NOT_ATTEMPTED alone (another partition had an unexpected error).
    let (mut m, req) = adding(now, std::slice::from_ref(&a));
    answer_add(
        &mut m,
        req.id,
        now,
        &[(&a, ErrorCode::OperationNotAttempted)],
    );
    assert_eq!(state(&m), State::AbortableError);
}

#[test]
fn unknown_producer_id_on_add_partitions_needs_an_epoch_bump_or_is_fatal() {
    let now = Instant::now();
    let a = tp("t", 0);
    let (mut m, req) = adding(now, std::slice::from_ref(&a));
    answer_add(&mut m, req.id, now, &[(&a, ErrorCode::UnknownProducerId)]);
    assert_eq!(state(&m), State::AbortableError);
    assert!(m.epoch_bump_required());

    // A coordinator without InitProducerId v3 cannot bump: fatal.
    let (mut m, req) = adding(now, std::slice::from_ref(&a));
    m.handle_coordinator_ready(false);
    answer_add(&mut m, req.id, now, &[(&a, ErrorCode::UnknownProducerId)]);
    assert_eq!(state(&m), State::FatalError);
}

#[test]
fn commit_waits_for_batches_then_ends_the_transaction() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    let r = m.begin_commit().unwrap();
    assert!(m.is_completing());
    assert!(
        m.begin_commit().unwrap().same(&r),
        "same commit when called again"
    );
    assert_eq!(
        m.next_request(now, true),
        TxnNext::Idle,
        "EndTxn waits for the batches"
    );
    let req = expect_send(&mut m, now, false);
    assert_eq!(
        req.body,
        TxnRequestBody::EndTxn {
            transactional_id: "tx".into(),
            producer: pid(5, 0),
            commit: true,
        }
    );
    m.handle_response(
        req.id,
        TxnResponse::EndTxn {
            error: ErrorCode::None,
        },
        now,
    );
    assert_eq!(r.outcome(), Some(Ok(())));
    assert_eq!(state(&m), State::Ready);
    assert!(!m.transaction_contains_partition(&a));
    // The next transaction adds its partitions again.
    m.begin_transaction().unwrap();
    m.maybe_add_partition(&a);
    assert!(m.is_partition_pending_add(&a));
}

#[test]
fn an_empty_transaction_sends_no_end_txn() {
    let now = Instant::now();
    for commit in [true, false] {
        let mut m = initialized(now);
        m.begin_transaction().unwrap();
        let r = if commit {
            m.begin_commit().unwrap()
        } else {
            m.begin_abort().unwrap()
        };
        assert_eq!(m.next_request(now, false), TxnNext::Idle);
        assert_eq!(r.outcome(), Some(Ok(())));
        assert_eq!(state(&m), State::Ready);
    }
}

#[test]
fn end_txn_errors() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    let r = m.begin_commit().unwrap();
    answer_end_txn(&mut m, now, true, ErrorCode::ConcurrentTransactions);
    // Each retry goes out after its backoff (the answers come at `now`).
    let req = expect_send(&mut m, now + BACKOFF, false);
    let not_available = TxnResponse::EndTxn {
        error: ErrorCode::CoordinatorNotAvailable,
    };
    m.handle_response(req.id, not_available, now);
    answer_find(&mut m, now, CoordinatorType::Transaction, 1);
    let req = expect_send(&mut m, now + BACKOFF, false);
    assert!(matches!(
        req.body,
        TxnRequestBody::EndTxn { commit: true, .. }
    ));
    let fenced = TxnResponse::EndTxn {
        error: ErrorCode::ProducerFenced,
    };
    m.handle_response(req.id, fenced, now);
    assert_eq!(state(&m), State::FatalError);
    assert_eq!(failed_with(&r), Some(ErrorCode::ProducerFenced));

    for (code, expected) in [
        (ErrorCode::InvalidProducerEpoch, ErrorCode::ProducerFenced),
        (ErrorCode::InvalidTxnState, ErrorCode::InvalidTxnState),
        (
            ErrorCode::TransactionalIdAuthorizationFailed,
            ErrorCode::TransactionalIdAuthorizationFailed,
        ),
    ] {
        let mut m = in_txn_with(now, std::slice::from_ref(&a));
        m.begin_abort().unwrap();
        answer_end_txn(&mut m, now, false, code);
        assert_eq!(m.fatal_error().and_then(|e| e.code()), Some(expected));
    }
}

#[test]
fn a_failed_batch_makes_the_transaction_abortable_and_the_abort_bumps_the_epoch() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    assert_eq!(m.assign(&a, 1, 3).base_sequence, 0);
    assert_eq!(m.assign(&a, 2, 2).base_sequence, 3);
    let err = Error::kafka(ErrorCode::CorruptMessage);
    m.handle_failed_batch(&a, 1, &err, Some(ErrorCode::CorruptMessage), false, true);
    assert_eq!(state(&m), State::AbortableError);
    assert!(m.epoch_bump_required());
    // No local bump for a transactional producer.
    m.bump_epoch_if_needed();
    assert_eq!(m.producer_id_and_epoch(), pid(5, 0));
    // Later sends and the commit fail with the batch's error.
    assert_eq!(m.fail_if_not_ready_for_send().unwrap_err(), err);
    assert_eq!(m.begin_commit().unwrap_err(), err);
    assert!(matches!(m.begin_transaction(), Err(e) if e == err));
    // Abort: EndTxn(abort) once batch 2 completes, then InitProducerId with the current id
    // and epoch to bump it (KIP-360); the abort completes with the bump.
    let abort = m.begin_abort().unwrap();
    assert_eq!(m.next_request(now, true), TxnNext::Idle);
    m.handle_completed_batch(&a, 2, pid(5, 0), 10);
    let req = expect_send(&mut m, now, false);
    assert!(
        matches!(req.body, TxnRequestBody::EndTxn { commit: false, producer, .. } if producer == pid(5, 0))
    );
    m.handle_response(
        req.id,
        TxnResponse::EndTxn {
            error: ErrorCode::None,
        },
        now,
    );
    assert_eq!(state(&m), State::Initializing);
    assert!(!abort.is_completed());
    let req = expect_send(&mut m, now, false);
    assert_eq!(
        req.body,
        TxnRequestBody::InitProducerId {
            transactional_id: "tx".into(),
            transaction_timeout_ms: 60_000,
            producer: pid(5, 0),
        }
    );
    m.handle_response(
        req.id,
        TxnResponse::InitProducerId {
            error: ErrorCode::None,
            producer: pid(5, 1),
        },
        now,
    );
    assert_eq!(abort.outcome(), Some(Ok(())));
    assert_eq!(state(&m), State::Ready);
    assert_eq!(m.producer_id_and_epoch(), pid(5, 1));
    assert!(!m.epoch_bump_required());
    // Sequences start again at 0 under the new epoch.
    m.begin_transaction().unwrap();
    m.maybe_add_partition(&a);
    let req = expect_send(&mut m, now, true);
    answer_add(&mut m, req.id, now, &[(&a, ErrorCode::None)]);
    let s = m.assign(&a, 3, 1);
    assert_eq!((s.producer, s.base_sequence), (pid(5, 1), 0));
}

#[test]
fn an_abort_without_epoch_bump_support_just_ends_the_transaction() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    m.handle_coordinator_ready(false);
    m.assign(&a, 1, 1);
    let err = Error::kafka(ErrorCode::RecordListTooLarge);
    m.handle_failed_batch(
        &a,
        1,
        &err,
        Some(ErrorCode::RecordListTooLarge),
        false,
        true,
    );
    assert!(!m.epoch_bump_required());
    let abort = m.begin_abort().unwrap();
    answer_end_txn(&mut m, now, false, ErrorCode::None);
    assert_eq!(abort.outcome(), Some(Ok(())));
    assert_eq!(state(&m), State::Ready);
    assert_eq!(m.producer_id_and_epoch(), pid(5, 0));
}

#[test]
fn sequence_errors_fail_the_batch_without_a_local_bump() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    m.assign(&a, 1, 1);
    // OUT_OF_ORDER for the next expected sequence is not retried (idempotent producers bump).
    assert!(!m.can_retry(&a, 1, 0, ErrorCode::OutOfOrderSequenceNumber, 0));
    // UNKNOWN_PRODUCER_ID with the log head intact: not retried either.
    m.handle_completed_batch(&a, 1, pid(5, 0), 100);
    m.assign(&a, 2, 1);
    assert!(!m.can_retry(&a, 2, 1, ErrorCode::UnknownProducerId, 50));
    // ... but after retention removed our records the sequences restart and it is retried.
    assert!(m.can_retry(&a, 2, 1, ErrorCode::UnknownProducerId, 500));
    let s = m.assign(&a, 2, 1);
    assert_eq!((s.base_sequence, s.reset), (0, true));
    m.bump_epoch_if_needed();
    assert_eq!(m.producer_id_and_epoch(), pid(5, 0));
}

#[test]
fn a_rejected_batch_shifts_the_later_sequences() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    m.assign(&a, 1, 2); // 0..1
    m.assign(&a, 2, 3); // 2..4
    m.assign(&a, 3, 1); // 5
    let err = Error::kafka(ErrorCode::InvalidRecord);
    m.handle_failed_batch(&a, 2, &err, Some(ErrorCode::InvalidRecord), false, true);
    assert_eq!(m.assign(&a, 3, 1).base_sequence, 2);
    assert_eq!(m.next_sequence(&a), 3);
}

#[test]
fn fencing_in_produce_is_fatal_and_sticky() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    m.assign(&a, 1, 1);
    let fenced = Error::kafka(ErrorCode::ProducerFenced);
    m.handle_failed_batch(&a, 1, &fenced, Some(ErrorCode::ProducerFenced), false, true);
    assert_eq!(state(&m), State::FatalError);
    assert!(!m.is_send_to_partition_allowed(&a));
    assert!(m.should_stop_drain(&a, 2, false));
    let code = |r: Result<(), Error>| r.unwrap_err().code();
    assert_eq!(
        code(m.fail_if_not_ready_for_send()),
        Some(ErrorCode::ProducerFenced)
    );
    assert_eq!(code(m.begin_transaction()), Some(ErrorCode::ProducerFenced));
    assert_eq!(
        code(m.begin_commit().map(|_| ())),
        Some(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        code(m.begin_abort().map(|_| ())),
        Some(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        code(m.initialize_transactions().map(|_| ())),
        Some(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        code(
            m.send_offsets_to_transaction(Vec::new(), group())
                .map(|_| ())
        ),
        Some(ErrorCode::ProducerFenced)
    );
    // Another failure, even a fatal one, does not change the fatal error.
    m.handle_failed_batch(&a, 9, &Error::Closed, None, false, false);
    m.maybe_transition_to_error_state(&Error::kafka(ErrorCode::ClusterAuthorizationFailed));
    assert_eq!(m.fatal_error(), Some(fenced));
    assert_eq!(m.next_request(now, false), TxnNext::Idle);
}

#[test]
fn an_old_epoch_in_produce_is_abortable() {
    // KIP-588: the produce path's INVALID_PRODUCER_EPOCH (the coordinator bumped the epoch,
    // e.g. after a transaction timeout) is abortable; the abort then learns whether the
    // producer was fenced.
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    m.assign(&a, 1, 1);
    let e = Error::kafka(ErrorCode::InvalidProducerEpoch);
    m.handle_failed_batch(
        &a,
        1,
        &e,
        Some(ErrorCode::InvalidProducerEpoch),
        false,
        true,
    );
    assert_eq!(state(&m), State::AbortableError);
    assert_eq!(
        m.begin_commit().unwrap_err().code(),
        Some(ErrorCode::InvalidProducerEpoch)
    );
    let abort = m.begin_abort().unwrap();
    answer_end_txn(&mut m, now, false, ErrorCode::ProducerFenced);
    assert_eq!(failed_with(&abort), Some(ErrorCode::ProducerFenced));
    assert!(m.has_fatal_error());
}

#[test]
fn a_failure_during_commit_fails_the_commit() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    m.assign(&a, 1, 1);
    let commit = m.begin_commit().unwrap();
    let err = Error::Timeout("expired".into());
    m.handle_failed_batch(&a, 1, &err, None, false, false);
    assert_eq!(state(&m), State::AbortableError);
    assert!(
        !m.epoch_bump_required(),
        "no bump requested while completing"
    );
    // The queued EndTxn(commit) is failed, not sent.
    assert_eq!(m.next_request(now, false), TxnNext::Idle);
    assert_eq!(commit.outcome(), Some(Err(err.clone())));
    // Abort after a failed commit.
    let abort = m.begin_abort().unwrap();
    answer_end_txn(&mut m, now, false, ErrorCode::None);
    assert_eq!(abort.outcome(), Some(Ok(())));
}

#[test]
fn an_abort_drops_a_commit_that_failed_before_its_end_txn_was_sent() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    m.assign(&a, 1, 1);
    m.assign(&a, 2, 1);
    let commit = m.begin_commit().unwrap();
    let err = Error::kafka(ErrorCode::InvalidRecord);
    m.handle_failed_batch(&a, 1, &err, Some(ErrorCode::InvalidRecord), false, true);
    // Batch 2 still in flight: EndTxn(commit) not dequeued yet; the user aborts.
    let abort = m.begin_abort().unwrap();
    assert!(commit.is_completed());
    m.handle_completed_batch(&a, 2, pid(5, 0), 0);
    let req = expect_send(&mut m, now, false);
    assert!(matches!(
        req.body,
        TxnRequestBody::EndTxn { commit: false, .. }
    ));
    let _ = abort;
}

#[test]
fn offsets_go_through_add_offsets_then_txn_offset_commit() {
    let now = Instant::now();
    let mut m = initialized(now);
    assert!(matches!(
        m.send_offsets_to_transaction(Vec::new(), group()),
        Err(Error::IllegalState(_))
    ));
    m.begin_transaction().unwrap();
    let offsets = vec![
        (tp("in", 0), OffsetAndMetadata::new(10)),
        (
            tp("in", 1),
            OffsetAndMetadata {
                offset: 20,
                leader_epoch: Some(4),
                metadata: "m".into(),
            },
        ),
    ];
    let r = m
        .send_offsets_to_transaction(offsets.clone(), group())
        .unwrap();
    let req = expect_send(&mut m, now, false);
    assert_eq!(req.target, Some(node(1)));
    assert_eq!(
        req.body,
        TxnRequestBody::AddOffsetsToTxn {
            transactional_id: "tx".into(),
            producer: pid(5, 0),
            group_id: "g".into(),
        }
    );
    m.handle_response(
        req.id,
        TxnResponse::AddOffsetsToTxn {
            error: ErrorCode::None,
        },
        now,
    );
    assert!(!r.is_completed(), "complete only once TxnOffsetCommit is");
    // The group coordinator is found first.
    answer_find(&mut m, now, CoordinatorType::Group, 7);
    let req = expect_send(&mut m, now + BACKOFF, false);
    assert_eq!(req.target, Some(node(7)));
    assert_eq!(req.coordinator_type, Some(CoordinatorType::Group));
    assert_eq!(
        req.body,
        TxnRequestBody::TxnOffsetCommit {
            transactional_id: "tx".into(),
            producer: pid(5, 0),
            group: group(),
            offsets: offsets.clone(),
        }
    );
    // One partition's coordinator is loading: only that one is sent again.
    m.handle_response(
        req.id,
        TxnResponse::TxnOffsetCommit {
            errors: vec![
                (tp("in", 0), ErrorCode::None),
                (tp("in", 1), ErrorCode::CoordinatorLoadInProgress),
            ],
        },
        now,
    );
    let req = expect_send(&mut m, now + BACKOFF, false);
    let TxnRequestBody::TxnOffsetCommit { offsets: left, .. } = &req.body else {
        panic!("{req:?}");
    };
    assert_eq!(left, &offsets[1..].to_vec());
    // Coordinator moved: found again, then retried.
    m.handle_response(
        req.id,
        TxnResponse::TxnOffsetCommit {
            errors: vec![(tp("in", 1), ErrorCode::NotCoordinator)],
        },
        now,
    );
    answer_find(&mut m, now, CoordinatorType::Group, 8);
    let req = expect_send(&mut m, now + BACKOFF, false);
    assert_eq!(req.target, Some(node(8)));
    m.handle_response(
        req.id,
        TxnResponse::TxnOffsetCommit {
            errors: vec![(tp("in", 1), ErrorCode::None)],
        },
        now,
    );
    assert_eq!(r.outcome(), Some(Ok(())));
    // Offsets alone start the transaction: the commit sends EndTxn.
    let commit = m.begin_commit().unwrap();
    answer_end_txn(&mut m, now, true, ErrorCode::None);
    assert_eq!(commit.outcome(), Some(Ok(())));
}

#[test]
fn txn_offset_commit_errors() {
    let now = Instant::now();
    let run = |code: ErrorCode| -> (TransactionManager, TxnResult) {
        let (mut m, r, req) = adding_offsets(now);
        m.handle_response(
            req.id,
            TxnResponse::AddOffsetsToTxn {
                error: ErrorCode::None,
            },
            now,
        );
        answer_find(&mut m, now, CoordinatorType::Group, 7);
        let req = expect_send(&mut m, now + BACKOFF, false);
        m.handle_response(
            req.id,
            TxnResponse::TxnOffsetCommit {
                errors: vec![(tp("in", 0), code)],
            },
            now,
        );
        (m, r)
    };
    for code in [
        ErrorCode::UnknownMemberId,
        ErrorCode::IllegalGeneration,
        ErrorCode::FencedInstanceId,
        ErrorCode::GroupAuthorizationFailed,
    ] {
        let (m, r) = run(code);
        assert_eq!(state(&m), State::AbortableError, "{code:?}");
        assert_eq!(failed_with(&r), Some(code));
    }
    for code in [
        ErrorCode::ProducerFenced,
        ErrorCode::InvalidProducerEpoch,
        ErrorCode::TransactionalIdAuthorizationFailed,
        ErrorCode::UnsupportedForMessageFormat,
    ] {
        let (m, _) = run(code);
        assert_eq!(state(&m), State::FatalError, "{code:?}");
    }
    for code in [
        ErrorCode::ConcurrentTransactions,
        ErrorCode::UnknownTopicOrPartition,
        ErrorCode::CoordinatorLoadInProgress,
    ] {
        let (mut m, r) = run(code);
        assert!(!r.is_completed());
        assert!(matches!(
            expect_send(&mut m, now + 2 * BACKOFF, false).body,
            TxnRequestBody::TxnOffsetCommit { .. }
        ));
    }
}

#[test]
fn add_offsets_errors() {
    let now = Instant::now();
    let run = |code: ErrorCode| -> (TransactionManager, TxnResult) {
        let (mut m, r, req) = adding_offsets(now);
        m.handle_response(req.id, TxnResponse::AddOffsetsToTxn { error: code }, now);
        (m, r)
    };
    let (m, r) = run(ErrorCode::GroupAuthorizationFailed);
    assert_eq!(state(&m), State::AbortableError);
    assert!(r.is_completed());
    let (m, _) = run(ErrorCode::UnknownProducerId);
    assert_eq!(state(&m), State::AbortableError);
    assert!(m.epoch_bump_required());
    let (m, _) = run(ErrorCode::ProducerFenced);
    assert_eq!(
        m.fatal_error().and_then(|e| e.code()),
        Some(ErrorCode::ProducerFenced)
    );
    let (mut m, r) = run(ErrorCode::ConcurrentTransactions);
    assert!(!r.is_completed());
    assert!(matches!(
        expect_send(&mut m, now + BACKOFF, false).body,
        TxnRequestBody::AddOffsetsToTxn { .. }
    ));
    let (mut m, _) = run(ErrorCode::NotCoordinator);
    answer_find(&mut m, now, CoordinatorType::Transaction, 1);
}

#[test]
fn a_disconnect_finds_the_coordinator_again() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    let r = m.begin_commit().unwrap();
    let req = expect_send(&mut m, now, false);
    m.handle_disconnect(req.id, now);
    answer_find(&mut m, now, CoordinatorType::Transaction, 2);
    let req = expect_send(&mut m, now + BACKOFF, false);
    assert_eq!(req.target, Some(node(2)));
    // A stale outcome (wrong id) is ignored.
    m.handle_response(
        req.id + 1000,
        TxnResponse::EndTxn {
            error: ErrorCode::None,
        },
        now,
    );
    assert!(!r.is_completed());
    m.handle_response(
        req.id,
        TxnResponse::EndTxn {
            error: ErrorCode::None,
        },
        now,
    );
    assert_eq!(r.outcome(), Some(Ok(())));
}

#[test]
fn an_unsupported_version_is_fatal() {
    let now = Instant::now();
    let mut m = mgr();
    let r = m.initialize_transactions().unwrap();
    let req = expect_send(&mut m, now, false);
    m.handle_request_error(req.id, Error::UnsupportedVersion("FindCoordinator".into()));
    assert!(m.has_fatal_error());
    assert!(matches!(
        r.outcome(),
        Some(Err(Error::UnsupportedVersion(_)))
    ));
}

#[test]
fn expired_unacknowledged_batches_make_the_transaction_abortable() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    m.assign(&a, 1, 1);
    // Sent, then expired: outcome unknown.
    let e = Error::Timeout("expired".into());
    m.handle_failed_batch(&a, 1, &e, None, true, false);
    m.bump_epoch_if_needed();
    assert_eq!(state(&m), State::AbortableError);
    assert!(m.epoch_bump_required());
    assert_eq!(m.producer_id_and_epoch(), pid(5, 0));
}

#[test]
fn close_fails_every_pending_operation() {
    let now = Instant::now();
    let a = tp("t", 0);
    let mut m = in_txn_with(now, std::slice::from_ref(&a));
    let commit = m.begin_commit().unwrap();
    let _ = expect_send(&mut m, now, false);
    m.close();
    assert_eq!(commit.outcome(), Some(Err(Error::Closed)));
}

#[test]
fn ongoing_transaction_states() {
    let now = Instant::now();
    let mut m = initialized(now);
    assert!(!m.has_ongoing_transaction());
    m.begin_transaction().unwrap();
    assert!(m.has_ongoing_transaction());
    m.begin_abort().unwrap();
    assert!(m.has_ongoing_transaction() && m.is_aborting() && m.is_completing());
    assert_eq!(m.next_request(now, false), TxnNext::Idle);
    assert!(!m.has_ongoing_transaction());
}

#[tokio::test]
async fn a_result_is_waited_for_by_every_caller() {
    let r = TxnResult::new();
    let r2 = r.clone();
    let waiter = tokio::spawn(async move { r2.wait().await });
    tokio::task::yield_now().await;
    r.fail(Error::TransactionAborted);
    r.done(); // completed once
    assert_eq!(waiter.await.unwrap(), Err(Error::TransactionAborted));
    assert_eq!(r.wait().await, Err(Error::TransactionAborted));
}
