"""Shared helpers for the interop scripts run by broker-lite/tests/interop.rs.

Every script prints exactly one JSON summary line on stdout when it succeeds, and exits
non-zero with a message on stderr when it fails. Messages are deterministic so that one client
can verify what another produced:

    message i (0 <= i < count): key   b"k-<i % 1000>"
                                value b"v-<i>"
                                headers (when i % 7 == 0): ("idx", b"<i>"), ("src", b"interop"),
                                                           ("empty", b"")
"""

import argparse
import json
import sys
import time

KEY_SPACE = 1000


def fail(msg):
    sys.stderr.write("INTEROP FAILURE: %s\n" % msg)
    sys.stderr.flush()
    sys.exit(1)


def expect(what, got, want):
    """Fails unless `got == want`."""
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))


def expected_message(i):
    key = ("k-%d" % (i % KEY_SPACE)).encode()
    value = ("v-%d" % i).encode()
    headers = None
    if i % 7 == 0:
        headers = [("idx", str(i).encode()), ("src", b"interop"), ("empty", b"")]
    return key, value, headers


def normalize_headers(headers):
    """Both clients give a list of (str, bytes) or None/empty; compare as a list of tuples."""
    if not headers:
        return []
    return [(k, b"" if v is None else bytes(v)) for k, v in headers]


def verify(records, count, partitions, produced_partitions=None):
    """Checks consumed `records` (partition, offset, key, value, headers) against the
    deterministic messages 0..count.

    * every message arrived exactly once, key/value/headers intact;
    * per partition, offsets are contiguous from 0 and values are in produce order;
    * each key always landed in the same partition (and, when given, in the partition the
      producer's delivery report named).
    Returns a dict for the summary; calls fail() on any mismatch.
    """
    problems = []

    def problem(msg):
        if len(problems) < 20:
            problems.append(msg)

    seen = [False] * count
    per_partition = {}
    key_partition = {}
    for (p, off, key, value, headers) in records:
        per_partition.setdefault(p, []).append((off, key, value, headers))
    for p, recs in sorted(per_partition.items()):
        if not 0 <= p < partitions:
            problem("record in unexpected partition %d" % p)
        last_i = -1
        for n, (off, key, value, headers) in enumerate(recs):
            if off != n:
                problem("partition %d: record #%d has offset %d (not contiguous from 0)" % (p, n, off))
            try:
                sval = value.decode()
                assert sval.startswith("v-")
                i = int(sval[2:])
                assert 0 <= i < count
            except Exception:
                problem("partition %d offset %d: unexpected value %r" % (p, off, value))
                continue
            if seen[i]:
                problem("message %d received twice (partition %d offset %d)" % (i, p, off))
            seen[i] = True
            if i <= last_i:
                problem("partition %d offset %d: message %d after %d (not in produce order)" % (p, off, i, last_i))
            last_i = i
            ekey, evalue, eheaders = expected_message(i)
            if key != ekey:
                problem("message %d: key %r, expected %r" % (i, key, ekey))
            if normalize_headers(headers) != normalize_headers(eheaders):
                problem("message %d: headers %r, expected %r" % (i, headers, eheaders))
            kp = key_partition.setdefault(key, p)
            if kp != p:
                problem("key %r in partitions %d and %d" % (key, kp, p))
            if produced_partitions is not None and produced_partitions[i] != p:
                problem("message %d: delivery report said partition %d, consumed from %d"
                        % (i, produced_partitions[i], p))
    missing = seen.count(False)
    if missing:
        first = [i for i, s in enumerate(seen) if not s][:10]
        problem("%d messages never arrived (first: %s)" % (missing, first))
    if problems:
        fail("verification failed:\n  " + "\n  ".join(problems))
    return {
        "consumed": len(records),
        "per_partition": {str(p): len(r) for p, r in sorted(per_partition.items())},
        "distinct_keys": len(key_partition),
        "with_headers": sum(1 for i in range(count) if expected_message(i)[2]),
    }


def base_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--compression", default="none")
    ap.add_argument("--linger-ms", type=int, default=None)
    ap.add_argument("--steps", default="create,produce,consume",
                    help="comma-separated subset of create,produce,consume")
    ap.add_argument("--timeout", type=float, default=120.0)
    return ap


class Timer:
    def __init__(self):
        self.t0 = time.monotonic()

    def secs(self):
        return round(time.monotonic() - self.t0, 3)


def emit(summary):
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    sys.stdout.flush()
