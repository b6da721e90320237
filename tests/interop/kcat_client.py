"""kcat (the librdkafka CLI) against broker-lite.

1. Creates --topic with --partitions partitions (confluent-kafka AdminClient; kcat cannot).
2. `kcat -b ADDR -L -J`: JSON metadata must list the broker and the topic with its
   partitions, each led by that broker.
3. `kcat -b ADDR -P -t T -K:` produces --count "key:value" lines (stdin).
4. `kcat -b ADDR -C -t T -o beginning -e` consumes them back (all partitions, no group) and
   every line must come back exactly once, with its key, in per-partition order.

Prints one JSON summary line; exits non-zero on any failure.
"""

import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

try:
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:  # pragma: no cover
    common.fail("confluent-kafka is not installed in %s (%s); run scripts/setup-interop.sh"
                % (sys.executable, e))


def run(cmd, stdin=None, timeout=60):
    try:
        p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        common.fail("%s timed out after %ss; stderr: %s" % (" ".join(cmd), timeout,
                                                              (e.stderr or b"").decode(errors="replace")))
    if p.returncode != 0:
        common.fail("%s exited %d; stderr: %s" % (" ".join(cmd), p.returncode,
                                                  p.stderr.decode(errors="replace")))
    return p.stdout.decode(), p.stderr.decode()


def main():
    ap = common.base_args(__doc__)
    args = ap.parse_args()
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat is None:
        common.fail("kcat is not installed; run scripts/setup-interop.sh")
    version = subprocess.run([kcat, "-V"], capture_output=True).stdout.decode().splitlines()
    version = next((l.strip() for l in version if l.startswith("Version")), "unknown")
    summary = {"client": "kcat", "version": version, "topic": args.topic}
    sent = {}

    def kcat_run(cmd, stdin=None):
        # -d protocol: librdkafka logs every request it sends with its version (stderr).
        out, err = run([kcat, "-b", args.bootstrap, "-d", "protocol"] + cmd, stdin=stdin)
        for m in re.finditer(r"Sent (\w+)Request \(v(\d+)", err):
            sent.setdefault(m.group(1), set()).add(int(m.group(2)))
        return out, err

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for name, f in admin.create_topics([NewTopic(args.topic, args.partitions, 1)]).items():
        try:
            f.result(timeout=30)
        except Exception as e:
            common.fail("create_topics(%s): %s" % (name, e))

    # -L -J: metadata as JSON.
    out, _ = kcat_run(["-L", "-J"])
    try:
        md = json.loads(out)
    except ValueError as e:
        common.fail("kcat -L -J printed no JSON (%s): %r" % (e, out[:500]))
    brokers = {b["id"]: b["name"] for b in md.get("brokers", [])}
    if len(brokers) != 1:
        common.fail("kcat -L -J brokers: %s" % md.get("brokers"))
    (broker_id, broker_name), = brokers.items()
    if broker_name != args.bootstrap:
        common.fail("broker advertised as %s, bootstrap was %s" % (broker_name, args.bootstrap))
    topics = {t["topic"]: t for t in md.get("topics", [])}
    if args.topic not in topics:
        common.fail("kcat -L -J does not list %s: %s" % (args.topic, sorted(topics)))
    t = topics[args.topic]
    parts = sorted(t["partitions"], key=lambda p: p["partition"])
    if [p["partition"] for p in parts] != list(range(args.partitions)):
        common.fail("kcat -L -J partitions of %s: %s" % (args.topic, parts))
    for p in parts:
        if p["leader"] != broker_id or p.get("error"):
            common.fail("kcat -L -J partition: %s" % p)
    summary["metadata"] = {
        "brokers": {str(k): v for k, v in brokers.items()},
        "controllerid": md.get("controllerid"),
        "topics": {name: len(tt["partitions"]) for name, tt in sorted(topics.items())},
    }

    # -P: produce key:value lines.
    lines = ["k-%d:line-%d" % (i % 10, i) for i in range(args.count)]
    kcat_run(["-P", "-t", args.topic, "-K:"],
             stdin=("\n".join(lines) + "\n").encode())

    # -C: consume everything back and exit at the end of every partition.
    out, err = kcat_run(["-C", "-t", args.topic, "-o", "beginning", "-e",
                         "-f", "%p\t%o\t%k\t%s\n"])
    got = [l.split("\t") for l in out.splitlines() if l]
    seen = {}
    per_partition = {}
    key_partition = {}
    for p, o, k, v in got:
        p, o = int(p), int(o)
        if v in seen:
            common.fail("%s consumed twice" % v)
        seen[v] = k
        per_partition.setdefault(p, []).append((o, int(v.split("-")[1])))
        if key_partition.setdefault(k, p) != p:
            common.fail("key %s in two partitions" % k)
    expected = {l.split(":", 1)[1]: l.split(":", 1)[0] for l in lines}
    if seen != expected:
        missing = sorted(set(expected) - set(seen))[:10]
        common.fail("kcat -C got %d lines, expected %d (missing %s); stderr: %s"
                    % (len(seen), len(expected), missing, err[-500:]))
    for p, recs in per_partition.items():
        if [o for o, _ in recs] != list(range(len(recs))):
            common.fail("partition %d offsets not contiguous: %s" % (p, recs[:10]))
        idx = [i for _, i in recs]
        if idx != sorted(idx):
            common.fail("partition %d out of produce order: %s" % (p, idx[:20]))
    summary["produced"] = len(lines)
    summary["consumed"] = len(got)
    summary["per_partition"] = {str(p): len(r) for p, r in sorted(per_partition.items())}
    summary["request_versions"] = {k: sorted(v) for k, v in sorted(sent.items())}
    common.emit(summary)


if __name__ == "__main__":
    main()
