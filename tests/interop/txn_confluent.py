"""confluent-kafka (librdkafka) with transactions, for tests/tests/client_txn_interop.rs.

Two modes:

  produce  A transactional producer (--transactional-id) runs --transactions transactions
           of --per-txn records each on --topic (--partitions partitions, records spread
           round-robin with explicit partitions). Transaction t commits unless t % 3 == 2,
           which is flushed (its records delivered), then aborted. Record values are
           "t<t>-r<r>" (keys "k<r>"); every record of a committed transaction is delivered
           before commit_transaction returns. Summary:
           {"committed": [values...], "aborted": [values...]}.

  read     A consumer with isolation.level=--isolation assigns every partition of --topic
           from the beginning and reads until end of partition on all of them (for
           read_committed librdkafka stops at the last stable offset). Summary:
           {"values": [values in partition/offset order], "per_partition": {...}}.

Prints one JSON summary line; exits non-zero on any failure (see common.py).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

try:
    import confluent_kafka
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, OFFSET_BEGINNING
except ImportError as e:  # pragma: no cover
    common.fail("confluent-kafka is not installed in %s (%s); run scripts/setup-interop.sh"
                % (sys.executable, e))

ERRORS = []


def produce(args):
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "transactional.id": args.transactional_id,
        "transaction.timeout.ms": 60000,
        "linger.ms": 5,
        "error_cb": lambda err: ERRORS.append(str(err)),
    })
    p.init_transactions(30)
    committed, aborted = [], []
    failures = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append(str(err))

    n = 0
    for t in range(args.transactions):
        p.begin_transaction()
        values = []
        for r in range(args.per_txn):
            value = "t%d-r%d" % (t, r)
            p.produce(args.topic, key=("k%d" % r).encode(), value=value.encode(),
                      partition=n % args.partitions, on_delivery=on_delivery)
            n += 1
            values.append(value)
        if t % 3 == 2:
            # Deliver first, so the aborted records are in the log (abort_transaction alone
            # would purge those not sent yet): read_uncommitted readers must see them.
            p.flush(30)
            p.abort_transaction(30)
            aborted.extend(values)
        else:
            p.commit_transaction(30)
            committed.extend(values)
    p.flush(10)
    if failures:
        common.fail("delivery failures in committed transactions: %s" % failures[:10])
    fatal = [e for e in ERRORS if "FATAL" in e.upper()]
    if fatal:
        common.fail("librdkafka reported fatal errors: %s" % fatal[:10])
    common.emit({
        "client": "confluent-kafka",
        "librdkafka": confluent_kafka.libversion()[0],
        "committed": committed,
        "aborted": aborted,
    })


def read(args):
    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "txn-interop-reader",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "isolation.level": args.isolation,
        "auto.offset.reset": "error",
        "error_cb": lambda err: ERRORS.append(str(err)),
    })
    c.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(args.partitions)])
    eof = set()
    records = []
    t = common.Timer()
    while len(eof) < args.partitions:
        if t.secs() > args.timeout:
            common.fail("read timed out after %ss: %d records, EOF on %s"
                        % (args.timeout, len(records), sorted(eof)))
        for m in c.consume(num_messages=10000, timeout=0.5):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                common.fail("consume error: %s" % err)
            eof.discard(m.partition())
            records.append((m.partition(), m.offset(), m.value().decode()))
    # Anything arriving now would be beyond the end (for read_committed: beyond the LSO).
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        for m in c.consume(num_messages=10000, timeout=0.1):
            if m.error() is None:
                records.append((m.partition(), m.offset(), m.value().decode()))
    c.close()
    if ERRORS:
        common.fail("librdkafka reported errors: %s" % ERRORS[:10])
    records.sort()
    per_partition = {}
    for p, _, _ in records:
        per_partition[str(p)] = per_partition.get(str(p), 0) + 1
    common.emit({
        "client": "confluent-kafka",
        "librdkafka": confluent_kafka.libversion()[0],
        "values": [v for _, _, v in records],
        "per_partition": per_partition,
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("mode", choices=["produce", "read"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--transactional-id", default="confluent-txn")
    ap.add_argument("--transactions", type=int, default=6)
    ap.add_argument("--per-txn", type=int, default=50)
    ap.add_argument("--isolation", default="read_committed",
                    choices=["read_committed", "read_uncommitted"])
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    if args.mode == "produce":
        produce(args)
    else:
        read(args)


if __name__ == "__main__":
    main()
