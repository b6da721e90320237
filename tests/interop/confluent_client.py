"""confluent-kafka (librdkafka) against broker-lite, default settings (ApiVersions
auto-negotiation, no api.version pinning, no idempotence).

Steps (--steps): create (AdminClient.create_topics + list_topics metadata check), produce
(--count keyed messages with acks=all, every delivery report checked), consume (assign all
partitions from OFFSET_BEGINNING, no commits, verify everything; see common.verify).

Prints one JSON summary line; exits non-zero on any failure. The summary records which
request versions librdkafka sent (from its debug=protocol log) and what the broker advertised.
"""

import logging
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

try:
    import confluent_kafka
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, OFFSET_BEGINNING
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:  # pragma: no cover
    common.fail("confluent-kafka is not installed in %s (%s); run scripts/setup-interop.sh"
                % (sys.executable, e))

SENT = re.compile(r"Sent (\w+)Request \(v(\d+)")
ADVERTISED = re.compile(r"ApiKey (\w+) \((\d+)\) Versions (\d+)\.\.(\d+)")


class ProtocolLog(logging.Handler):
    """Collects request versions from librdkafka's debug=protocol log lines."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.sent = {}
        self.advertised = {}
        self.disconnects = []
        self.warnings = []

    def emit(self, record):
        msg = record.getMessage()
        if record.levelno >= logging.WARNING and len(self.warnings) < 20:
            self.warnings.append(msg)
        m = SENT.search(msg)
        if m:
            self.sent.setdefault(m.group(1), set()).add(int(m.group(2)))
            return
        m = ADVERTISED.search(msg)
        if m:
            self.advertised[m.group(1)] = "%s..%s" % (m.group(3), m.group(4))
            return
        if "Disconnected" in msg or "closed by peer" in msg:
            if len(self.disconnects) < 10:
                self.disconnects.append(msg)

    def summary(self):
        return {k: sorted(v) for k, v in sorted(self.sent.items())}


PROTO = ProtocolLog()
LOGGER = logging.getLogger("librdkafka")
LOGGER.addHandler(PROTO)
LOGGER.setLevel(logging.DEBUG)
LOGGER.propagate = False
CLIENT_ERRORS = []


def on_error(err):
    CLIENT_ERRORS.append(str(err))


def conf(args, **extra):
    c = {
        "bootstrap.servers": args.bootstrap,
        "debug": "protocol,feature",
        "logger": LOGGER,
        "error_cb": on_error,
    }
    c.update(extra)
    return c


def create(args):
    t = common.Timer()
    admin = AdminClient(conf(args))
    futures = admin.create_topics([NewTopic(args.topic, args.partitions, 1)],
                                  operation_timeout=30, request_timeout=30)
    for name, f in futures.items():
        try:
            f.result(timeout=30)
        except Exception as e:
            common.fail("create_topics(%s) failed: %s" % (name, e))
    # Metadata for every topic (librdkafka's all-topics request), then for this topic only.
    md_all = admin.list_topics(timeout=30)
    if args.topic not in md_all.topics:
        common.fail("list_topics() does not list %s: %s" % (args.topic, sorted(md_all.topics)))
    md = admin.list_topics(topic=args.topic, timeout=30)
    tm = md.topics[args.topic]
    if tm.error is not None:
        common.fail("topic %s metadata error: %s" % (args.topic, tm.error))
    parts = sorted(tm.partitions.values(), key=lambda p: p.id)
    if [p.id for p in parts] != list(range(args.partitions)):
        common.fail("expected partitions 0..%d, got %s" % (args.partitions - 1, [p.id for p in parts]))
    brokers = {b.id: "%s:%d" % (b.host, b.port) for b in md.brokers.values()}
    for p in parts:
        if p.error is not None or p.leader not in brokers:
            common.fail("partition %d: leader %s error %s (brokers %s)" % (p.id, p.leader, p.error, brokers))
    admin.poll(0)
    return {
        "partitions": len(parts),
        "leaders": sorted({p.leader for p in parts}),
        "brokers": brokers,
        "controller_id": md.controller_id,
        "cluster_id": md.cluster_id,
        "seconds": t.secs(),
    }


def produce(args):
    extra = {"acks": "all"}
    if args.compression != "none":
        extra["compression.type"] = args.compression
    if args.linger_ms is not None:
        extra["linger.ms"] = args.linger_ms
    p = Producer(conf(args, **extra))
    state = {"ok": 0, "errors": 0, "first_errors": []}
    partitions = [None] * args.count

    def on_delivery(err, msg):
        if err is not None:
            state["errors"] += 1
            if len(state["first_errors"]) < 5:
                state["first_errors"].append(str(err))
            return
        state["ok"] += 1
        partitions[int(msg.value()[2:])] = msg.partition()

    t = common.Timer()
    for i in range(args.count):
        key, value, headers = common.expected_message(i)
        while True:
            try:
                p.produce(args.topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    remaining = p.flush(args.timeout)
    secs = t.secs()
    if remaining:
        common.fail("%d messages still undelivered after flush(%ss)" % (remaining, args.timeout))
    if state["errors"] or state["ok"] != args.count:
        common.fail("delivery: %d ok, %d errors of %d (first: %s)"
                    % (state["ok"], state["errors"], args.count, state["first_errors"]))
    return {"count": args.count, "errors": state["errors"], "seconds": secs,
            "compression": args.compression, "linger_ms": args.linger_ms,
            "msgs_per_sec": int(args.count / secs) if secs else None}, partitions


def consume(args, produced_partitions):
    c = Consumer(conf(args, **{
        # librdkafka wants a group.id for a Consumer; with assign() and no commits it must not
        # need the group coordinator (broker-lite has none yet).
        "group.id": "interop-assign-" + args.topic,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
    }))
    c.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(args.partitions)])
    records = []
    eof = {}
    t = common.Timer()
    while True:
        if t.secs() > args.timeout:
            common.fail("consume timed out after %ss: %d of %d records, EOF for %s"
                        % (args.timeout, len(records), args.count, sorted(eof)))
        for m in c.consume(num_messages=10000, timeout=0.5):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    eof[m.partition()] = m.offset()
                    continue
                common.fail("consume error: %s" % err)
            eof.pop(m.partition(), None)
            records.append((m.partition(), m.offset(), m.key(), m.value(), m.headers()))
        if len(eof) == args.partitions and len(records) >= args.count:
            break
    secs = t.secs()
    # Stop fetching first: a long-polling Fetch holds the connection (requests on one
    # connection are answered in order, as in Kafka), which would delay every ListOffsets.
    c.unassign()
    high = {}
    for p in range(args.partitions):
        lo, hi = c.get_watermark_offsets(TopicPartition(args.topic, p), timeout=10)
        high[str(p)] = hi
        if lo != 0:
            common.fail("partition %d: low watermark %d" % (p, lo))
    c.close()
    result = common.verify(records, args.count, args.partitions, produced_partitions)
    if sum(high.values()) != args.count:
        common.fail("high watermarks %s sum to %d, expected %d" % (high, sum(high.values()), args.count))
    result.update({"seconds": secs, "high_watermarks": high,
                   "msgs_per_sec": int(len(records) / secs) if secs else None})
    return result


def main():
    args = common.base_args(__doc__).parse_args()
    steps = args.steps.split(",")
    summary = {
        "client": "confluent-kafka",
        "version": confluent_kafka.version()[0],
        "librdkafka": confluent_kafka.libversion()[0],
        "topic": args.topic,
    }
    produced = None
    if "create" in steps:
        summary["create"] = create(args)
    if "produce" in steps:
        summary["produce"], produced = produce(args)
    if "consume" in steps:
        summary["consume"] = consume(args, produced)
    summary["request_versions"] = PROTO.summary()
    summary["broker_advertised"] = PROTO.advertised
    summary["disconnects"] = PROTO.disconnects
    summary["client_errors"] = CLIENT_ERRORS
    summary["client_warnings"] = PROTO.warnings
    common.emit(summary)


if __name__ == "__main__":
    main()
