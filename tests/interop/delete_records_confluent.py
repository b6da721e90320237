"""confluent-kafka (librdkafka) AdminClient.delete_records against broker-lite (KIP-107).

Creates --topic (2 partitions), produces --count records ("v-<i>") to partition 0, then:

* delete_records(partition 0 before --count // 2): the low watermark is that offset, the
  consumer's get_watermark_offsets answers (offset, count) and a consumer reading from the
  beginning gets the records from that offset on, nothing below;
* deleting before an earlier offset answers the same low watermark (no move backwards);
* OFFSET_END (-1, "the high watermark"): the low watermark is --count;
* an offset beyond the high watermark fails with OFFSET_OUT_OF_RANGE, an unknown partition
  with librdkafka's local _UNKNOWN_PARTITION, a compacted topic with POLICY_VIOLATION, each without
  disturbing the others of the same request.

Prints one JSON summary line; exits non-zero on any failure.
"""

import argparse
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

try:
    from confluent_kafka import (Consumer, KafkaError, KafkaException, OFFSET_END, Producer,
                                 TopicPartition)
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:  # pragma: no cover
    common.fail("confluent-kafka is not installed in %s (%s); run scripts/setup-interop.sh"
                % (sys.executable, e))


def delete(admin, partitions, timeout):
    """delete_records of `partitions`: {(topic, partition): low watermark or KafkaError code}."""
    futures = admin.delete_records(partitions, request_timeout=timeout,
                                   operation_timeout=timeout)
    out = {}
    for tp, fut in futures.items():
        try:
            out[(tp.topic, tp.partition)] = fut.result(timeout).low_watermark
        except KafkaException as e:
            out[(tp.topic, tp.partition)] = e.args[0].code()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="delrec-" + uuid.uuid4().hex[:8])
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    topic, compacted, count = args.topic, args.topic + "-compacted", args.count
    cut = count // 2
    t = common.Timer()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    created = admin.create_topics([
        NewTopic(topic, num_partitions=2, replication_factor=1),
        NewTopic(compacted, num_partitions=1, replication_factor=1,
                 config={"cleanup.policy": "compact"}),
    ], operation_timeout=args.timeout)
    for fut in created.values():
        fut.result(args.timeout)

    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all"})
    for i in range(count):
        p.produce(topic, value=("v-%d" % i).encode(), partition=0)
    p.produce(compacted, key=b"k", value=b"x", partition=0)
    if p.flush(args.timeout):
        common.fail("records still undelivered after flush")

    common.expect("delete before %d" % cut, delete(admin, [TopicPartition(topic, 0, cut)],
                                                    args.timeout), {(topic, 0): cut})
    common.expect("delete backwards", delete(admin, [TopicPartition(topic, 0, 1)], args.timeout),
                  {(topic, 0): cut})

    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "delrec-" + topic,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    common.expect("watermarks", c.get_watermark_offsets(TopicPartition(topic, 0),
                                                        timeout=args.timeout), (cut, count))
    c.assign([TopicPartition(topic, 0)])
    seen = []
    deadline = common.Timer()
    while len(seen) < count - cut and deadline.secs() < args.timeout:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            common.fail("consume: %s" % m.error())
        seen.append((m.offset(), m.value().decode()))
    c.close()
    common.expect("records read from the beginning", seen,
                  [(i, "v-%d" % i) for i in range(cut, count)])

    got = delete(admin, [TopicPartition(topic, 0, count + 5), TopicPartition(topic, 1, 0),
                         TopicPartition(topic, 7, 0), TopicPartition(compacted, 0, 1)],
                 args.timeout)
    common.expect("mixed request", got, {
        (topic, 0): KafkaError.OFFSET_OUT_OF_RANGE,
        (topic, 1): 0,
        # librdkafka finds no leader for it in the metadata: it never reaches the broker.
        (topic, 7): KafkaError._UNKNOWN_PARTITION,
        (compacted, 0): KafkaError.POLICY_VIOLATION,
    })
    common.expect("delete up to the high watermark",
                  delete(admin, [TopicPartition(topic, 0, OFFSET_END)], args.timeout),
                  {(topic, 0): count})

    common.emit({"client": "confluent-kafka", "topic": topic, "count": count,
                 "low_watermark": count, "secs": t.secs()})


if __name__ == "__main__":
    main()
