"""A kafka-python member of a consumer group shared with kafka-client's Consumer
(tests/tests/client_group_interop.rs).

Subscribes to --topic (as the pattern "^<topic>$", see below) in --group with the range
assignor (--strategy range), roundrobin or cooperative-sticky, and consumes at-least-once:
each poll's records are processed (reported on stdout) and then committed synchronously.

Committing on revocation: kafka-python 3 runs rebalance listeners on its IO thread and
refuses blocking calls (commit) from a synchronous listener, so the listener only reports;
instead `enable_auto_commit` is on with an interval of an hour, which makes the consumer
itself commit the consumed offsets before every rebalance and on close (its
`_on_join_prepare`), and never on the interval during a test. On "stop" (stdin) it commits, reports its committed offsets and closes, leaving
the group. See group_member_common.py for the output protocol.
"""

import logging
import os
import re
import sys
import time

from group_member_common import StopSignal, args, emit, log

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError


def main():
    a = args(__doc__)
    if os.environ.get("INTEROP_LOG"):
        logging.basicConfig(level=getattr(logging, os.environ["INTEROP_LOG"].upper()),
                            filename=os.environ.get("INTEROP_LOG_FILE"),
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = StopSignal()
    errors = []
    if a.strategy == "range":
        assignors = [RangePartitionAssignor]
    elif a.strategy == "roundrobin":
        from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
        assignors = [RoundRobinPartitionAssignor]
    elif a.strategy == "cooperative-sticky":
        from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
        assignors = [CooperativeStickyAssignor]
    else:
        raise SystemExit("unsupported --strategy %s" % a.strategy)
    consumer = KafkaConsumer(
        bootstrap_servers=a.bootstrap,
        group_id=a.group,
        client_id=a.client_id,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        auto_commit_interval_ms=3_600_000,
        partition_assignment_strategy=assignors,
        session_timeout_ms=6000,
        heartbeat_interval_ms=200,
        max_poll_interval_ms=30000,
        fetch_max_wait_ms=100,
        metadata_max_age_ms=1000,
    )

    def parts(ps):
        return sorted(p.partition for p in ps)

    def commit(why):
        try:
            consumer.commit()
            return True
        except KafkaError as e:
            emit({"event": "commit", "ok": False, "why": why, "error": repr(e)})
            return False

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            # The consumer committed the consumed offsets just before (auto-commit).
            emit({"event": "revoked", "partitions": parts(revoked)})

        def on_partitions_assigned(self, assigned):
            emit({"event": "assigned", "partitions": parts(assigned),
                  "assignment": parts(consumer.assignment())})

        def on_partitions_lost(self, lost):
            emit({"event": "lost", "partitions": parts(lost)})

    # Know the topic before joining: a leader without its metadata assigns nothing and rejoins
    # at once, and kafka-python 3.0.12 sometimes never applies the assignment of that quick
    # second rebalance (SyncGroup answered, listener never called: seen against broker-lite,
    # whose responses were correct).
    deadline = time.time() + 30
    while not consumer.partitions_for_topic(a.topic):
        if time.time() > deadline:
            raise SystemExit("no metadata for %s" % a.topic)
        time.sleep(0.05)
    # Knowing the topic is not enough: the coordinator remembers the subscribed topics'
    # partitions as of its last metadata update *while subscribed*, and none came between
    # subscribe() and the first join, so the leader's assignment was recorded against an
    # empty snapshot and every member rebalanced a second time (and so could hang as above).
    # A pattern subscription makes the coordinator wait for a metadata update before it joins
    # (KAFKA-3949 in kafka-python's ConsumerCoordinator.poll); "^topic$" matches only it.
    consumer.subscribe(pattern="^%s$" % re.escape(a.topic), listener=Listener())
    read = 0
    deadline = time.time() + a.timeout
    while not stop.is_set() and time.time() < deadline:
        polled = consumer.poll(timeout_ms=100, max_records=20)
        batch = []
        for records in polled.values():
            for m in records:
                if a.delay_ms:
                    time.sleep(a.delay_ms / 1000.0)
                batch.append([m.partition, m.offset])
        if batch:
            read += len(batch)
            emit({"event": "records", "records": batch})
            commit("after processing")
    if not stop.is_set():
        errors.append("timed out after %.0fs without a stop" % a.timeout)
    commit("stop")
    assignment = sorted(consumer.assignment(), key=lambda tp: tp.partition)
    committed = {}
    for tp in assignment:
        off = consumer.committed(tp)
        if off is not None:
            committed[str(tp.partition)] = off
    emit({"event": "summary", "committed": committed, "read": read, "errors": errors,
          "assignment": parts(assignment)})
    consumer.close(autocommit=False)
    log("closed")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        sys.stderr.write("INTEROP FAILURE: %r\n" % (e,))
        sys.exit(1)
