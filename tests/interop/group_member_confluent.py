"""A confluent-kafka (librdkafka) member of a consumer group shared with kafka-client's
Consumer (tests/tests/client_group_interop.rs).

Subscribes to --topic in --group with partition.assignment.strategy=--strategy (range,
roundrobin or cooperative-sticky), auto-commit off, and consumes at-least-once: each poll's
records are processed (reported on stdout) and then committed synchronously; the revocation
callback commits too. On "stop" (stdin) it commits, reports its committed offsets and closes,
leaving the group. See group_member_common.py for the output protocol.
"""

import sys
import time

from group_member_common import StopSignal, args, emit, log

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def main():
    a = args(__doc__)
    stop = StopSignal()
    errors = []
    consumer = Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "client.id": a.client_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "partition.assignment.strategy": a.strategy,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 200,
        "max.poll.interval.ms": 30000,
        "fetch.wait.max.ms": 100,
        "topic.metadata.refresh.interval.ms": 1000,
    })

    def parts(ps):
        return sorted(p.partition for p in ps)

    def commit(why):
        try:
            consumer.commit(asynchronous=False)
            return True
        except KafkaException as e:
            err = e.args[0]
            if err.code() == KafkaError._NO_OFFSET:
                return True  # nothing consumed since the last commit
            emit({"event": "commit", "ok": False, "why": why, "error": str(err)})
            return False

    def on_assign(c, ps):
        # The wrapper assigns (incrementally for cooperative-sticky) after this returns.
        full = sorted(set(parts(c.assignment())) | set(parts(ps)))
        emit({"event": "assigned", "partitions": parts(ps), "assignment": full})

    def on_revoke(c, ps):
        ok = commit("revoke")
        emit({"event": "revoked", "partitions": parts(ps), "committed": ok})

    def on_lost(c, ps):
        emit({"event": "lost", "partitions": parts(ps)})

    consumer.subscribe([a.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    read = 0
    deadline = time.time() + a.timeout
    while not stop.is_set() and time.time() < deadline:
        msgs = consumer.consume(num_messages=20, timeout=0.1)
        batch = []
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    errors.append(str(m.error()))
                continue
            if a.delay_ms:
                time.sleep(a.delay_ms / 1000.0)
            batch.append([m.partition(), m.offset()])
        if batch:
            read += len(batch)
            emit({"event": "records", "records": batch})
            commit("after processing")
    if not stop.is_set():
        errors.append("timed out after %.0fs without a stop" % a.timeout)
    commit("stop")
    assignment = consumer.assignment()
    committed = {}
    if assignment:
        for tp in consumer.committed(assignment, timeout=10):
            committed[str(tp.partition)] = tp.offset
    emit({"event": "summary", "committed": committed, "read": read, "errors": errors,
          "assignment": parts(assignment)})
    consumer.close()
    log("closed")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        sys.stderr.write("INTEROP FAILURE: %r\n" % (e,))
        sys.exit(1)
