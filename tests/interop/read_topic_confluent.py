"""confluent-kafka (librdkafka) reads topics from the beginning and dumps every record.

For each --topic NAME:PARTITIONS:COUNT, assigns every partition at OFFSET_BEGINNING (no
group, no commits) and consumes until it has COUNT records of that topic and reached the end
of every partition, then polls once more for strays. Every record goes to --out as JSON Lines
(see record_dump.py), in the order librdkafka delivered it. Fails when a topic does not reach
its count in time or the consumer reports an error.

Prints one JSON summary line; exits non-zero on any failure.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import record_dump  # noqa: E402

try:
    import confluent_kafka
    from confluent_kafka import (Consumer, KafkaError, TopicPartition, OFFSET_BEGINNING,
                                 TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME)
except ImportError as e:  # pragma: no cover
    common.fail("confluent-kafka is not installed in %s (%s); run scripts/setup-interop.sh"
                % (sys.executable, e))

TS_TYPES = {TIMESTAMP_CREATE_TIME: "create", TIMESTAMP_LOG_APPEND_TIME: "log_append"}
ERRORS = []


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", action="append", required=True, help="NAME:PARTITIONS:COUNT")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    topics = record_dump.parse_topics(args.topic)
    expected = {name: count for name, _, count in topics}
    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        # librdkafka wants a group.id for a Consumer; with assign() and no commits the group
        # coordinator is never used.
        "group.id": "client-interop-reader",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        "error_cb": lambda err: ERRORS.append(str(err)),
    })
    c.assign([TopicPartition(name, p, OFFSET_BEGINNING)
              for name, partitions, _ in topics for p in range(partitions)])
    all_partitions = {(name, p) for name, partitions, _ in topics for p in range(partitions)}
    out = record_dump.Writer(args.out)
    got = {name: 0 for name in expected}
    eof = set()
    t = common.Timer()

    def take(msgs):
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    eof.add((m.topic(), m.partition()))
                    continue
                common.fail("consume error: %s" % err)
            eof.discard((m.topic(), m.partition()))
            ts_type, ts = m.timestamp()
            out.record(m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers(),
                       ts, TS_TYPES.get(ts_type, "none"))
            got[m.topic()] += 1

    while True:
        if t.secs() > args.timeout:
            common.fail("consume timed out after %ss: got %s of %s; EOF for %d of %d partitions"
                        % (args.timeout, got, expected, len(eof), len(all_partitions)))
        take(c.consume(num_messages=10000, timeout=0.5))
        if eof == all_partitions and all(got[n] >= expected[n] for n in expected):
            break
    # Anything arriving now is a duplicate or a stray record.
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        take(c.consume(num_messages=10000, timeout=0.1))
    secs = t.secs()
    c.unassign()
    c.close()
    out.close()
    if ERRORS:
        common.fail("librdkafka reported errors: %s" % ERRORS[:10])
    common.emit({
        "client": "confluent-kafka",
        "version": confluent_kafka.version()[0],
        "librdkafka": confluent_kafka.libversion()[0],
        "consumed": got,
        "lines": out.lines,
        "seconds": secs,
    })


if __name__ == "__main__":
    main()
