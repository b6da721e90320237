"""Shared plumbing of the group-member scripts (group_member_confluent.py,
group_member_kafka_python.py), driven by tests/tests/client_group_interop.rs.

A member joins a consumer group next to kafka-client's Consumer and reports what happens as
JSON lines on stdout (one object per line, flushed at once):

    {"event": "assigned", "partitions": [...], "assignment": [...]}   after a rebalance
    {"event": "revoked", "partitions": [...]}                         before one (or on close)
    {"event": "lost", "partitions": [...]}
    {"event": "records", "records": [[partition, offset], ...]}       one line per processed
                                                                      poll, before its commit
    {"event": "commit", "ok": bool, "error": "..."}                   failures only, plus the
                                                                      commits on revocation
    {"event": "summary", "committed": {"<partition>": offset}, "read": n, "errors": [...]}
                                                                      last line, after "stop"

It stops when a line "stop" (or EOF) arrives on stdin, or at --timeout: then it commits what
it processed, prints its committed offsets in the summary and closes (leaving the group).
"""

import argparse
import json
import sys
import threading
import time


def args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--strategy", default="range",
                    help="partition.assignment.strategy: range, roundrobin or cooperative-sticky")
    ap.add_argument("--client-id", default="python-member")
    ap.add_argument("--delay-ms", type=float, default=0.0,
                    help="processing time per record (so a member can stop mid-stream)")
    ap.add_argument("--timeout", type=float, default=90.0)
    return ap.parse_args()


_out_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj, sort_keys=True)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class StopSignal:
    """Set when stdin says "stop" or closes."""

    def __init__(self):
        self.event = threading.Event()
        t = threading.Thread(target=self._watch, daemon=True)
        t.start()

    def _watch(self):
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        self.event.set()

    def is_set(self):
        return self.event.is_set()
