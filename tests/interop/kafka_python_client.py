"""kafka-python against broker-lite, default auto-negotiation (no api_version).

Steps (--steps): create (KafkaAdminClient.create_topics + describe_topics check), produce
(--count keyed messages with acks='all', every future checked after flush), consume
(KafkaConsumer with assign + seek_to_beginning, no group, verify everything; see
common.verify).

kafka-python 3.x enables idempotence by default (KafkaProducer enable_idempotence=True), which
needs InitProducerId; broker-lite does not serve it yet, so the producer is created with
enable_idempotence=False (like librdkafka's default). --idempotence default leaves it unset.

Prints one JSON summary line; exits non-zero on any failure. The summary records the request
versions kafka-python sent, the broker version it inferred and the ranges the broker advertised.
"""

import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

try:
    import kafka
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.net.connection import KafkaConnection
except ImportError as e:  # pragma: no cover
    common.fail("kafka-python is not installed in %s (%s); run scripts/setup-interop.sh"
                % (sys.executable, e))

SENT = {}
WARNINGS = []


class WarningLog(logging.Handler):
    """Collects kafka-python's own warnings and errors (protocol surprises, retries, ...)."""

    def emit(self, record):
        msg = record.getMessage()
        if "blocking the event loop" in msg:
            # kafka-python's own event-loop watchdog (CPU-bound Python on a loaded machine),
            # nothing the broker did.
            return
        if len(WARNINGS) < 20:
            WARNINGS.append("%s: %s" % (record.levelname, msg))


logging.getLogger("kafka").addHandler(WarningLog(logging.WARNING))
ADVERTISED = {}
BROKER_VERSION = []

_orig_send = KafkaConnection._send_request


def _recording_send(self, request, *args, **kwargs):
    future = _orig_send(self, request, *args, **kwargs)
    name = type(request).__name__
    if name.endswith("Request"):
        name = name[: -len("Request")]
    SENT.setdefault(name, set()).add(request.API_VERSION)
    return future


KafkaConnection._send_request = _recording_send


def record_versions(client_object):
    # Where the connection manager lives differs between KafkaAdminClient, KafkaProducer
    # (its Sender's client) and KafkaConsumer.
    manager = getattr(client_object, "_manager", None)
    if manager is None:
        client = getattr(getattr(client_object, "_sender", None), "_client", None)
        manager = getattr(client, "_manager", None)
    bvd = getattr(manager, "broker_version_data", None)
    if bvd is None:
        return
    if not BROKER_VERSION:
        BROKER_VERSION.append(".".join(map(str, bvd.broker_version)))
    for key, (lo, hi) in sorted(bvd.api_versions.items()):
        ADVERTISED[str(key)] = "%d..%d" % (lo, hi)


def create(args):
    t = common.Timer()
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id="interop-admin")
    record_versions(admin)
    resp = admin.create_topics({args.topic: {"num_partitions": args.partitions,
                                             "replication_factor": 1}})
    for topic in resp["topics"]:
        if topic["error_code"] != 0:
            common.fail("create_topics: %s" % topic)
        if topic["num_partitions"] != args.partitions:
            common.fail("create_topics answered %s partitions" % topic["num_partitions"])
    if args.topic not in admin.list_topics():
        common.fail("list_topics() does not list %s" % args.topic)
    (desc,) = admin.describe_topics([args.topic])
    if desc["error_code"] != 0:
        common.fail("describe_topics: %s" % desc)
    cluster = admin.describe_cluster()
    broker_ids = {b["broker_id"] for b in cluster["brokers"]}
    parts = sorted(desc["partitions"], key=lambda p: p["partition_index"])
    if [p["partition_index"] for p in parts] != list(range(args.partitions)):
        common.fail("expected partitions 0..%d: %s" % (args.partitions - 1, parts))
    for p in parts:
        if p["error_code"] != 0 or p["leader_id"] not in broker_ids:
            common.fail("partition without a leader: %s (brokers %s)" % (p, broker_ids))
    admin.close()
    return {
        "partitions": len(parts),
        "leaders": sorted({p["leader_id"] for p in parts}),
        "brokers": {str(b["broker_id"]): "%s:%d" % (b["host"], b["port"]) for b in cluster["brokers"]},
        "controller_id": cluster["controller_id"],
        "cluster_id": cluster["cluster_id"],
        "seconds": t.secs(),
    }


def produce(args):
    extra = {}
    if args.idempotence != "default":
        extra["enable_idempotence"] = args.idempotence == "true"
    if args.compression != "none":
        extra["compression_type"] = args.compression
    if args.linger_ms is not None:
        extra["linger_ms"] = args.linger_ms
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, acks="all",
                             client_id="interop-producer", **extra)
    record_versions(producer)
    t = common.Timer()
    futures = []
    for i in range(args.count):
        key, value, headers = common.expected_message(i)
        futures.append(producer.send(args.topic, value=value, key=key, headers=headers or []))
    producer.flush(timeout=args.timeout)
    secs = t.secs()
    errors = []
    partitions = [None] * args.count
    for i, f in enumerate(futures):
        if not f.is_done:
            errors.append("message %d: not done after flush" % i)
        elif f.failed():
            errors.append("message %d: %r" % (i, f.exception))
        else:
            partitions[i] = f.value.partition
    producer.close(timeout=10)
    if errors:
        common.fail("%d of %d sends failed (first: %s)" % (len(errors), args.count, errors[:5]))
    return {"count": args.count, "errors": 0, "seconds": secs,
            "compression": args.compression, "linger_ms": args.linger_ms,
            "idempotence": producer.config["enable_idempotence"],
            "msgs_per_sec": int(args.count / secs) if secs else None}, partitions


def consume(args, produced_partitions):
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="none",
                             client_id="interop-consumer")
    record_versions(consumer)
    tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    records = []
    t = common.Timer()
    while len(records) < args.count:
        if t.secs() > args.timeout:
            common.fail("consume timed out after %ss: %d of %d records"
                        % (args.timeout, len(records), args.count))
        for tp, recs in consumer.poll(timeout_ms=500, max_records=10000).items():
            for r in recs:
                records.append((r.partition, r.offset, r.key, r.value, r.headers))
    # One more short poll: anything beyond `count` is a duplicate or a stray.
    for tp, recs in consumer.poll(timeout_ms=200).items():
        for r in recs:
            records.append((r.partition, r.offset, r.key, r.value, r.headers))
    secs = t.secs()
    begin = consumer.beginning_offsets(tps)
    end = consumer.end_offsets(tps)
    consumer.close()
    result = common.verify(records, args.count, args.partitions, produced_partitions)
    if any(v != 0 for v in begin.values()):
        common.fail("beginning offsets %s" % begin)
    high = {str(tp.partition): off for tp, off in sorted(end.items())}
    if sum(high.values()) != args.count:
        common.fail("end offsets %s sum to %d, expected %d" % (high, sum(high.values()), args.count))
    result.update({"seconds": secs, "high_watermarks": high,
                   "msgs_per_sec": int(len(records) / secs) if secs else None})
    return result


def main():
    ap = common.base_args(__doc__)
    ap.add_argument("--idempotence", choices=["false", "true", "default"], default="false")
    args = ap.parse_args()
    steps = args.steps.split(",")
    summary = {"client": "kafka-python", "version": kafka.__version__, "topic": args.topic}
    produced = None
    if "create" in steps:
        summary["create"] = create(args)
    if "produce" in steps:
        summary["produce"], produced = produce(args)
    if "consume" in steps:
        summary["consume"] = consume(args, produced)
    summary["request_versions"] = {k: sorted(v) for k, v in sorted(SENT.items())}
    summary["broker_advertised"] = ADVERTISED
    summary["inferred_broker_version"] = BROKER_VERSION[0] if BROKER_VERSION else None
    summary["client_warnings"] = WARNINGS
    common.emit(summary)


if __name__ == "__main__":
    main()
