"""Consumer groups with confluent-kafka (librdkafka) against broker-lite.

Creates a topic with --partitions partitions, produces --count records, then runs two
consumers of one group (subscribe, classic protocol, range assignor) until every record was
read once, commits synchronously from each consumer, and reads the committed offsets back
with a third consumer of the same group. Prints one JSON summary line.
"""

import argparse
import json
import sys
import threading
import time

from common import fail

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(args.topic, args.partitions, 1)])[args.topic].result(30)
    producer = Producer({"bootstrap.servers": args.bootstrap})
    for i in range(args.count):
        producer.produce(args.topic, key=str(i).encode(), value=str(i).encode())
    if producer.flush(30) != 0:
        fail("produce did not complete")

    lock = threading.Lock()
    seen = {0: [], 1: []}
    assigned = {0: [], 1: []}
    errors = []
    stop_at = time.time() + args.timeout

    def total():
        with lock:
            return len(seen[0]) + len(seen[1])

    def run(n):
        c = Consumer({
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500,
            "partition.assignment.strategy": "range",
        })

        def on_assign(consumer, partitions):
            with lock:
                assigned[n] = sorted(p.partition for p in partitions)

        c.subscribe([args.topic], on_assign=on_assign)
        try:
            while time.time() < stop_at and total() < args.count:
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    errors.append(str(m.error()))
                    continue
                with lock:
                    seen[n].append(int(m.value()))
            c.commit(asynchronous=False)
        except Exception as e:  # noqa: BLE001 - reported in the summary
            errors.append("consumer %d: %r" % (n, e))
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in (0, 1)]
    threads[0].start()
    time.sleep(0.5)
    threads[1].start()
    for t in threads:
        t.join()

    reader = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group})
    committed = reader.committed(
        [TopicPartition(args.topic, p) for p in range(args.partitions)], timeout=30
    )
    reader.close()
    everything = seen[0] + seen[1]
    print(json.dumps({
        "counts": [len(seen[0]), len(seen[1])],
        "distinct": len(set(everything)),
        "assigned": [assigned[0], assigned[1]],
        "committed": [tp.offset for tp in committed],
        "errors": errors,
    }))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        fail(repr(e))
        sys.exit(1)
