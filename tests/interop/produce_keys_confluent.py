"""confluent-kafka (librdkafka) produces keyed records with a chosen partitioner and dumps
the delivery reports.

Reads --keys (a JSON array of base64 keys; "" is the empty key) and produces, to every
--topic, one record per key: key = the decoded key, value = the key's index (ASCII). The
producer uses --partitioner (default murmur2_random: Java-compatible murmur2 for keyed
records), acks=all. Every delivery report must succeed; each goes to --out as JSON Lines
(see record_dump.py) with the partition and offset librdkafka reported, in the order the
reports arrived.

Prints one JSON summary line; exits non-zero on any failure.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import record_dump  # noqa: E402

try:
    import confluent_kafka
    from confluent_kafka import Producer, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME
except ImportError as e:  # pragma: no cover
    common.fail("confluent-kafka is not installed in %s (%s); run scripts/setup-interop.sh"
                % (sys.executable, e))

TS_TYPES = {TIMESTAMP_CREATE_TIME: "create", TIMESTAMP_LOG_APPEND_TIME: "log_append"}
ERRORS = []


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", action="append", required=True)
    ap.add_argument("--keys", required=True, help="file with a JSON array of base64 keys")
    ap.add_argument("--partitioner", default="murmur2_random")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    with open(args.keys, encoding="ascii") as f:
        keys = [record_dump.unb64(k) for k in json.load(f)]
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "partitioner": args.partitioner,
        "acks": "all",
        "linger.ms": 5,
        "error_cb": lambda err: ERRORS.append(str(err)),
    })
    out = record_dump.Writer(args.out)
    state = {"ok": 0, "errors": []}

    def on_delivery(err, msg):
        if err is not None:
            state["errors"].append(str(err))
            return
        state["ok"] += 1
        ts_type, ts = msg.timestamp()
        out.record(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),
                   msg.headers(), ts, TS_TYPES.get(ts_type, "none"))

    t = common.Timer()
    for topic in args.topic:
        for i, key in enumerate(keys):
            while True:
                try:
                    p.produce(topic, key=key, value=str(i).encode(), on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
    remaining = p.flush(args.timeout)
    secs = t.secs()
    out.close()
    total = len(keys) * len(args.topic)
    if remaining:
        common.fail("%d messages still undelivered after flush(%ss)" % (remaining, args.timeout))
    if state["errors"] or state["ok"] != total:
        common.fail("delivery: %d ok of %d, errors %s" % (state["ok"], total, state["errors"][:5]))
    if ERRORS:
        common.fail("librdkafka reported errors: %s" % ERRORS[:10])
    common.emit({
        "client": "confluent-kafka",
        "version": confluent_kafka.version()[0],
        "librdkafka": confluent_kafka.libversion()[0],
        "partitioner": args.partitioner,
        "produced": state["ok"],
        "lines": out.lines,
        "seconds": secs,
    })


if __name__ == "__main__":
    main()
