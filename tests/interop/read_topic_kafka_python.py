"""kafka-python reads topics from the beginning and dumps every record.

For each --topic NAME:PARTITIONS:COUNT, assigns every partition and seeks to the beginning
(no group, no commits), consumes until it has COUNT records of that topic, then polls once
more for strays. Every record goes to --out as JSON Lines (see record_dump.py), in the order
kafka-python delivered it. Compressed batches need the codec modules (gzip is built in;
snappy: python-snappy, lz4: lz4, zstd: zstandard), which scripts/setup-interop.sh installs:
a missing one fails the script up front.

Prints one JSON summary line; exits non-zero on any failure.
"""

import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import record_dump  # noqa: E402

try:
    import kafka
    from kafka import KafkaConsumer, TopicPartition
    from kafka.codec import has_lz4, has_snappy, has_zstd
except ImportError as e:  # pragma: no cover
    common.fail("kafka-python is not installed in %s (%s); run scripts/setup-interop.sh"
                % (sys.executable, e))

WARNINGS = []


class WarningLog(logging.Handler):
    def emit(self, record):
        msg = record.getMessage()
        if "blocking the event loop" in msg:
            return  # kafka-python's own CPU watchdog, nothing the broker did
        if len(WARNINGS) < 20:
            WARNINGS.append("%s: %s" % (record.levelname, msg))


logging.getLogger("kafka").addHandler(WarningLog(logging.WARNING))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", action="append", required=True, help="NAME:PARTITIONS:COUNT")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    missing = [name for name, ok in (("snappy", has_snappy()), ("lz4", has_lz4()),
                                     ("zstd", has_zstd())) if not ok]
    if missing:
        common.fail("kafka-python cannot decompress %s in %s; run scripts/setup-interop.sh"
                    % (missing, sys.executable))
    topics = record_dump.parse_topics(args.topic)
    expected = {name: count for name, _, count in topics}
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="none",
                             client_id="client-interop-reader")
    consumer.assign([TopicPartition(name, p)
                     for name, partitions, _ in topics for p in range(partitions)])
    consumer.seek_to_beginning()
    out = record_dump.Writer(args.out)
    got = {name: 0 for name in expected}
    ts_types = {0: "create", 1: "log_append"}
    t = common.Timer()

    def take(polled):
        for _tp, recs in polled.items():
            for r in recs:
                out.record(r.topic, r.partition, r.offset, r.key, r.value, r.headers,
                           r.timestamp, ts_types.get(r.timestamp_type, "none"))
                got[r.topic] += 1

    while not all(got[n] >= expected[n] for n in expected):
        if t.secs() > args.timeout:
            common.fail("consume timed out after %ss: got %s of %s"
                        % (args.timeout, got, expected))
        take(consumer.poll(timeout_ms=500, max_records=10000))
    # Anything arriving now is a duplicate or a stray record.
    take(consumer.poll(timeout_ms=300))
    secs = t.secs()
    consumer.close()
    out.close()
    if WARNINGS:
        common.fail("kafka-python logged warnings: %s" % WARNINGS)
    common.emit({
        "client": "kafka-python",
        "version": kafka.__version__,
        "consumed": got,
        "lines": out.lines,
        "seconds": secs,
    })


if __name__ == "__main__":
    main()
