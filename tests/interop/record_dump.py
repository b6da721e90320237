"""Shared helpers for the scripts that dump what a third-party client read or wrote, for
tests/tests/client_interop.rs (kafka-client against confluent-kafka and kafka-python).

Records go to the --out file as JSON Lines, one record per line, bytes as base64 (null stays
null):

    [topic, partition, offset, key_b64, value_b64, [[header_key, value_b64], ...],
     timestamp_ms, timestamp_type]

timestamp_type is "create", "log_append" or "none". The scripts still print exactly one JSON
summary line on stdout and exit non-zero with a message on failure (see common.py).
"""

import base64
import json


def b64(data):
    if data is None:
        return None
    return base64.b64encode(bytes(data)).decode("ascii")


def unb64(text):
    if text is None:
        return None
    return base64.b64decode(text)


def parse_topics(specs):
    """--topic NAME:PARTITIONS:COUNT (repeatable) -> [(name, partitions, count)]."""
    out = []
    for spec in specs:
        name, partitions, count = spec.rsplit(":", 2)
        out.append((name, int(partitions), int(count)))
    return out


class Writer:
    def __init__(self, path):
        self.f = open(path, "w", encoding="utf-8")
        self.lines = 0

    def record(self, topic, partition, offset, key, value, headers, timestamp, ts_type):
        hs = [[k, b64(v)] for k, v in (headers or [])]
        self.f.write(json.dumps([topic, partition, offset, b64(key), b64(value), hs,
                                 timestamp, ts_type], ensure_ascii=False))
        self.f.write("\n")
        self.lines += 1

    def close(self):
        self.f.close()
