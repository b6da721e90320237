#!/usr/bin/env python3
"""Capture golden Kafka protocol vectors from real third-party clients.

    scripts/setup-interop.sh && .venv/bin/python scripts/capture_golden.py

How it works
------------
1. (If root and `unshare` is available) re-executes itself inside a private
   network namespace, so the loopback interface carries nothing but our own
   traffic. Use --no-netns to capture on the host's loopback instead (frames
   are then filtered by the mock/stub broker ports).
2. Starts `tcpdump -i lo` writing a pcap.
3. Runs scripts/golden_scenarios.py with the venv Python: it starts
   librdkafka's in-process mock cluster (confluent-kafka client configured
   with test.mock.num.brokers=3; its listening addresses are read from the
   `debug=mock` log line "Mock cluster ... bootstrap.servers=..."), then
   drives confluent-kafka and kafka-python (twice: api_version pinned to
   (2, 3) -> mostly non-flexible versions, and negotiated -> flexible
   versions) through producer/consumer-group/transaction scenarios. A tiny
   stub broker receives CreateTopics/DeleteTopics requests, which the mock
   cluster does not implement (only those *requests* are kept as vectors).
4. Stops tcpdump, reassembles every TCP connection to the mock/stub brokers
   (pure-Python pcap parser, see golden_pcap.py), splits the streams into
   size-prefixed frames, pairs requests and responses per connection
   (in order, and checks that the correlation ids match), decodes every frame
   with a spec-driven codec (golden_codec.py) to verify it is complete and
   re-encodes byte-for-byte, dedupes, and writes:

     protocol/tests/golden/<client>-<seq:04>-<ApiName>-v<ver>-<dir>.bin
     protocol/tests/golden/MANIFEST.json
     protocol/tests/golden/README.md
     protocol/tests/golden/batches/<codec>-<client>.bin + EXPECTED.json

   and prints a summary table.
"""

import argparse
import collections
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import golden_codec  # noqa: E402
import golden_pcap  # noqa: E402
import golden_records  # noqa: E402

NETNS_ENV = "GOLDEN_CAPTURE_IN_NETNS"
KEEP_STUB_REQUESTS = {19, 20}  # CreateTopics, DeleteTopics


def info(msg):
    print("[capture-golden] " + msg, flush=True)


# --------------------------------------------------------------------------
# network namespace + capture


def maybe_enter_netns(args):
    if args.no_netns or os.environ.get(NETNS_ENV):
        return
    if os.geteuid() != 0 or not shutil.which("unshare"):
        info("not root or no unshare(1): capturing on the host loopback")
        return
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        info("unshare --net not permitted here: capturing on the host loopback")
        return
    env = dict(os.environ, **{NETNS_ENV: "1"})
    info("re-executing inside a private network namespace (unshare --net)")
    os.execvpe("unshare", ["unshare", "--net", sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


def bring_up_loopback():
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, ifr)[:18])[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))
    finally:
        s.close()


class Tcpdump:
    def __init__(self, pcap_path, log_path):
        self.pcap = pcap_path
        self.log_path = log_path
        self.proc = None

    def start(self):
        tcpdump = shutil.which("tcpdump") or "/usr/sbin/tcpdump"
        if not os.path.exists(tcpdump):
            raise SystemExit("tcpdump not found: run scripts/setup-interop.sh first")
        self.logf = open(self.log_path, "w+")
        self.proc = subprocess.Popen(
            [tcpdump, "-i", "lo", "-n", "-s", "0", "-B", "16384", "-U", "-w", self.pcap, "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=self.logf,
        )
        deadline = time.time() + 15
        while time.time() < deadline:
            self.logf.seek(0)
            if "listening on" in self.logf.read():
                time.sleep(0.3)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.logf.seek(0)
        raise SystemExit("tcpdump failed to start:\n" + self.logf.read())

    def stop(self):
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.seek(0)
        text = self.logf.read()
        self.logf.close()
        for line in text.splitlines():
            if "dropped by kernel" in line and not line.strip().startswith("0 "):
                raise SystemExit("tcpdump dropped packets: " + line)
        return text


# --------------------------------------------------------------------------
# analysis


class Frame:
    __slots__ = (
        "conn", "direction", "payload", "ts", "api_key", "api_version", "corr", "client_id",
        "label", "mode", "scenario", "server_kind", "peer", "decoded", "decode_error",
        "roundtrip_ok", "variant", "note", "file", "keep", "seq", "index",
    )

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


def analyze(pcap, report, specs):
    mock_ports = set(report["mock_ports"])
    stub_ports = set(report.get("stub_ports", []))
    conns = golden_pcap.reassemble(pcap, server_ports=mock_ports | stub_ports)
    clients = report["clients"]
    pairs = []  # (request Frame, response Frame or None)
    problems = []
    stats = collections.Counter()
    for ci, c in enumerate(conns):
        server_kind = "mock" if c["server"][1] in mock_ports else "stub"
        reqs, left_req = golden_pcap.split_frames(c["c2s"])
        resps, left_resp = golden_pcap.split_frames(c["s2c"])
        stats["connections"] += 1
        if left_req or left_resp:
            problems.append("conn %d: %d/%d trailing bytes of an incomplete frame" % (ci, left_req, left_resp))
        conn_client = None
        req_frames = []
        for off, payload in reqs:
            api_key, ver, corr = struct.unpack_from(">hhi", payload)
            (cid_len,) = struct.unpack_from(">h", payload, 8)
            client_id = payload[10 : 10 + cid_len].decode("utf-8", "replace") if cid_len >= 0 else None
            meta = clients.get(client_id) or {}
            conn_client = conn_client or client_id
            label = meta.get("label") or ("librdkafka" if (client_id or "").startswith("golden-librdkafka") else
                                          "kafka-python" if (client_id or "").startswith("golden-kafka-python") else None)
            if label is None:
                problems.append("conn %d: unknown client id %r" % (ci, client_id))
                continue
            req_frames.append(
                Frame(conn=ci, direction="request", payload=payload, ts=golden_pcap.ts_at(c["c2s_marks"], off),
                      api_key=api_key, api_version=ver, corr=corr, client_id=client_id, label=label,
                      mode=meta.get("mode", "default"), scenario=meta.get("scenario", "?"),
                      server_kind=server_kind, peer="%s:%d" % c["server"])
            )
        # Kafka answers requests in order on a connection (no acks=0 produce here)
        for i, rq in enumerate(req_frames):
            if i < len(resps):
                off, payload = resps[i]
                (corr,) = struct.unpack_from(">i", payload)
                if corr != rq.corr:
                    problems.append("conn %d: response #%d correlation id %d != request %d"
                                    % (ci, i, corr, rq.corr))
                rs = Frame(conn=ci, direction="response", payload=payload,
                           ts=golden_pcap.ts_at(c["s2c_marks"], off), api_key=rq.api_key,
                           api_version=rq.api_version, corr=corr, client_id=rq.client_id, label=rq.label,
                           mode=rq.mode, scenario=rq.scenario, server_kind=server_kind, peer=rq.peer)
                pairs.append((rq, rs))
            else:
                pairs.append((rq, None))
                stats["unanswered"] += 1
        if len(resps) > len(req_frames):
            problems.append("conn %d: %d responses for %d requests" % (ci, len(resps), len(req_frames)))
    stats["frames"] = sum(1 + (r is not None) for _, r in pairs)
    return pairs, problems, stats


def decode_and_verify(fr, specs):
    """Decode with the spec-driven codec; sets fr.decoded, fr.decode_error,
    fr.roundtrip_ok. Trailing bytes after a complete body are tolerated here
    (and reported): the mock cluster emits one after flexible Metadata bodies."""
    fr.decoded, fr.decode_error, fr.roundtrip_ok = None, None, False
    try:
        d = golden_codec.decode_frame(specs, fr.direction, fr.payload, fr.api_key, fr.api_version,
                                      allow_trailing=True)
    except (golden_codec.DecodeError, KeyError, struct.error, ValueError) as e:
        fr.decode_error = "%s: %s" % (type(e).__name__, e)
        return
    fr.decoded = d
    body_len = len(fr.payload) - d["trailing"]
    if d["trailing"]:
        fr.decode_error = "%d unexpected trailing byte(s) after the body: %s" % (
            d["trailing"], fr.payload[body_len:].hex())
    try:
        again = golden_codec.encode_frame(specs, fr.direction, d["header"], d["header_version"],
                                          fr.api_key, fr.api_version, d["body"])
        fr.roundtrip_ok = again == fr.payload[:body_len]
        if not fr.roundtrip_ok:
            fr.decode_error = (fr.decode_error + "; " if fr.decode_error else "") + "re-encode differs"
    except Exception as e:  # noqa: BLE001
        fr.decode_error = (fr.decode_error + "; " if fr.decode_error else "") + "re-encode failed: %s" % e


def iter_records_fields(api_key, direction, body):
    """Yield (topic, partition, records_bytes) of Produce requests / Fetch responses."""
    if api_key == 0 and direction == "request":
        for t in body.get("TopicData") or []:
            for p in t.get("PartitionData") or []:
                yield t.get("Name") or t.get("TopicId"), p["Index"], p.get("Records")
    elif api_key == 1 and direction == "response":
        for t in body.get("Responses") or []:
            for p in t.get("Partitions") or []:
                yield t.get("Topic") or t.get("TopicId"), p["PartitionIndex"], p.get("Records")


def batch_summary(fr):
    """(variant, description) from the record batches in a frame."""
    if fr.decoded is None:
        return "", ""
    parts = []
    codecs = set()
    flags = set()
    nrec = 0
    nbatch = 0
    for topic, part, recs in iter_records_fields(fr.api_key, fr.direction, fr.decoded["body"]):
        if not recs:
            continue
        try:
            batches = golden_records.parse_batches(recs)
        except Exception as e:  # noqa: BLE001
            parts.append("%s[%d]: unparsable records (%s)" % (topic, part, e))
            codecs.add("?")
            continue
        for b in batches:
            nbatch += 1
            nrec += b["records_count"]
            codecs.add(b["compression"])
            if b["is_control"]:
                flags.add("control")
            if b["is_transactional"]:
                flags.add("txn")
            elif b["producer_id"] >= 0:
                flags.add("idempotent")
        parts.append("%s[%d]" % (topic, part))
    if fr.api_key == 0:
        variant = "+".join(sorted(codecs) + sorted(flags))
    else:
        variant = "+".join(sorted(codecs) + sorted(flags)) if codecs else "empty"
    if not nbatch:
        return variant, ""
    desc = "%d record batch(es) [%s], %d records in %s" % (
        nbatch, ",".join(sorted(codecs) + sorted(flags)), nrec, ", ".join(parts))
    return variant, desc


def describe_frame(fr, specs):
    name = specs.api_name(fr.api_key)
    bits = []
    if fr.server_kind == "stub":
        bits.append("request sent to a stub broker (librdkafka mock cluster has no %s); "
                    "no response vector" % name)
    else:
        bits.append("against librdkafka mock cluster")
    bits.append("scenario %s" % fr.scenario)
    if fr.label == "kafka-python":
        bits.append("kafka-python api_version %s" % ("pinned (2, 3)" if fr.mode == "pinned" else
                                                      "negotiated via ApiVersions v2"))
    if fr.decoded is not None:
        body = fr.decoded["body"]
        if fr.api_key == 18 and fr.direction == "response" and fr.api_version >= 3:
            bits.append("ApiVersions responses always use response header v0")
        if fr.api_key == 0 and fr.direction == "request":
            bits.append("acks=%d transactional_id=%r" % (body["Acks"], body.get("TransactionalId")))
        ec = body.get("ErrorCode")
        if ec:
            bits.append("error_code=%d" % ec)
    _, desc = batch_summary(fr)
    if desc:
        bits.append(desc)
    msg = specs.by_key.get((fr.api_key, fr.direction))
    if msg is not None and fr.api_version not in msg.valid:
        bits.append("NOTE: v%d is outside the local spec's validVersions %d-%d"
                    % (fr.api_version, msg.valid.lo, msg.valid.hi))
    if fr.decode_error:
        bits.append("NOT SPEC-CONFORMANT: %s" % fr.decode_error)
        known = known_quirk(fr)
        if known:
            bits.append(known)
    return "; ".join(bits)


def known_quirk(fr):
    if fr.direction != "response" or fr.server_kind != "mock":
        return None
    if fr.api_key == 3 and fr.decoded is not None and fr.decoded["trailing"] == 1:
        return ("known librdkafka mock cluster quirk: its flexible Metadata responses end with one "
                "extra 0x00 byte (the top-level tagged-field section is written twice); real brokers "
                "do not send it and librdkafka ignores it. The body decodes fully without that byte")
    if fr.api_key == 13 and fr.api_version >= 3 and fr.decoded is None:
        return ("known librdkafka mock cluster quirk: it only implements LeaveGroup v0-v2 bodies; "
                "for v3+ it omits the Members array (and answers UNKNOWN_MEMBER_ID), which "
                "kafka-python cannot parse either")
    if fr.api_key == 18 and fr.api_version >= 3 and (fr.decoded is None or fr.decoded["trailing"]):
        return ("known librdkafka mock cluster quirk: its UNSUPPORTED_VERSION answer to an ApiVersions "
                "v3 request is neither a valid v0 nor v3 body (1-byte array count, no tagged fields); "
                "librdkafka then retries with ApiVersions v0")
    return None


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "protocol", "tests", "golden"))
    ap.add_argument("--work", default=os.path.join(REPO, ".interop", "capture"))
    ap.add_argument("--specs", default=golden_codec.default_spec_dir())
    ap.add_argument("--max-per-key", type=int, default=3,
                    help="keep at most N request/response pairs per (client, api, version, variant)")
    ap.add_argument("--no-netns", action="store_true", help="capture on the host loopback")
    ap.add_argument("--brokers", type=int, default=3, help="mock cluster size")
    ap.add_argument("--mock-setup", choices=["auto", "ctypes", "config"], default="auto",
                    help="how to start the mock cluster (see golden_scenarios.py)")
    ap.add_argument("--allow-scenario-errors", action="store_true",
                    help="write vectors even if some client scenarios failed")
    ap.add_argument("--analyze-only", action="store_true",
                    help="re-run the analysis on the pcap+report left in --work")
    args = ap.parse_args()

    os.makedirs(args.work, exist_ok=True)
    pcap = os.path.join(args.work, "capture.pcap")
    report_path = os.path.join(args.work, "scenarios.json")
    t0 = time.time()

    if not args.analyze_only:
        maybe_enter_netns(args)
        if os.environ.get(NETNS_ENV):
            bring_up_loopback()
        td = Tcpdump(pcap, os.path.join(args.work, "tcpdump.log"))
        td.start()
        info("tcpdump capturing on lo -> %s" % pcap)
        driver_log = os.path.join(args.work, "scenarios.log")
        try:
            with open(driver_log, "w") as lf:
                rc = subprocess.run(
                    [sys.executable, os.path.join(HERE, "golden_scenarios.py"), "--report", report_path,
                     "--brokers", str(args.brokers), "--specs", args.specs,
                     "--mock-setup", args.mock_setup],
                    stdout=lf, stderr=subprocess.STDOUT, timeout=900,
                ).returncode
        finally:
            td.stop()
        if rc != 0:
            raise SystemExit("scenario driver failed (rc=%d), see %s" % (rc, driver_log))
        with open(report_path) as f:
            rep = json.load(f)
        rep["netns"] = bool(os.environ.get(NETNS_ENV))
        rep["captured_on"] = datetime.date.today().isoformat()
        with open(report_path, "w") as f:
            json.dump(rep, f, indent=2)
        info("scenarios done in %.1fs (log: %s)" % (time.time() - t0, driver_log))

    with open(report_path) as f:
        report = json.load(f)
    global _SPECS
    specs = _SPECS = golden_codec.Specs(args.specs)
    v = report["versions"]
    client_names = {
        "librdkafka": "librdkafka %s via confluent-kafka %s" % (v["librdkafka"], v["confluent_kafka"]),
        "kafka-python": "kafka-python %s" % v["kafka_python"],
    }
    for e in report["errors"]:
        info("scenario error: " + e)
    if report["errors"] and not args.allow_scenario_errors:
        raise SystemExit("scenario errors (see %s); output left untouched. Re-run, or pass "
                         "--allow-scenario-errors to write what was captured."
                         % os.path.join(args.work, "scenarios.log"))

    pairs, problems, stats = analyze(pcap, report, specs)
    info("reassembled %d connections, %d frames, %d unanswered requests"
         % (stats["connections"], stats["frames"], stats["unanswered"]))

    unanswered = collections.Counter(
        (rq.label, specs.api_name(rq.api_key), rq.api_version, rq.server_kind) for rq, rs in pairs if rs is None)
    for (label, api, ver, kind), n in sorted(unanswered.items()):
        info("unanswered (connection closed first): %dx %s %s v%d -> %s" % (n, label, api, ver, kind))

    # decode + verify everything
    for rq, rs in pairs:
        decode_and_verify(rq, specs)
        if rs is not None:
            decode_and_verify(rs, specs)

    # ---------------- selection / dedupe
    kept = []
    groups = collections.defaultdict(list)
    seen_content = set()
    answered_keys = {(rq.label, rq.api_key, rq.api_version) for rq, rs in pairs if rs is not None}
    for rq, rs in sorted(pairs, key=lambda p: p[0].ts):
        if rq.server_kind == "stub":
            if rq.api_key not in KEEP_STUB_REQUESTS:
                continue
            rs = None  # synthetic stub responses are not golden
        elif rs is None and (rq.label, rq.api_key, rq.api_version) in answered_keys:
            continue  # e.g. a Fetch still in flight when the consumer closed
        variant = ""
        if rq.api_key == 0:
            variant = batch_summary(rq)[0]
        elif rq.api_key == 1 and rs is not None:
            variant = batch_summary(rs)[0]
        key = (rq.label, rq.api_key, rq.api_version, variant)
        # content identity ignoring the correlation id
        h = hashlib.sha256()
        h.update(rq.payload[:4] + rq.payload[8:])
        if rs is not None:
            h.update(b"|" + rs.payload[4:])
        digest = (rq.label, h.hexdigest())
        if digest in seen_content:
            continue
        if len(groups[key]) >= args.max_per_key:
            continue
        seen_content.add(digest)
        groups[key].append((rq, rs))
        kept.append((rq, rs))

    # ---------------- naming
    frames = []
    for rq, rs in kept:
        frames.append(rq)
        if rs is not None:
            frames.append(rs)
    frames.sort(key=lambda f: (f.ts, 0 if f.direction == "request" else 1))
    seqs = collections.Counter()
    for fr in frames:
        seqs[fr.label] += 1
        fr.seq = seqs[fr.label]
        fr.file = "%s-%04d-%s-v%d-%s.bin" % (fr.label, fr.seq, specs.api_name(fr.api_key),
                                             fr.api_version, fr.direction)

    # ---------------- write
    os.makedirs(args.out, exist_ok=True)
    for fn in os.listdir(args.out):
        if fn.endswith(".bin"):
            os.remove(os.path.join(args.out, fn))
    pair_of = {}
    for rq, rs in kept:
        if rs is not None:
            pair_of[id(rq)] = rs.file
            pair_of[id(rs)] = rq.file
    manifest = []
    total = 0
    for fr in frames:
        with open(os.path.join(args.out, fr.file), "wb") as f:
            f.write(fr.payload)
        total += len(fr.payload)
        d = fr.decoded
        msg = specs.by_key.get((fr.api_key, fr.direction))
        manifest.append(
            {
                "file": fr.file,
                "client": client_names[fr.label],
                "direction": fr.direction,
                "api_key": fr.api_key,
                "api_name": specs.api_name(fr.api_key),
                "api_version": fr.api_version,
                "correlation_id": fr.corr,
                "header_version": (specs.request_header_version(fr.api_key, fr.api_version)
                                   if fr.direction == "request"
                                   else specs.response_header_version(fr.api_key, fr.api_version)),
                "flexible": bool(msg and fr.api_version in msg.flexible),
                "size": len(fr.payload),
                "paired_with": pair_of.get(id(fr)),
                "client_id": fr.client_id,
                "connection": fr.conn,
                "broker": fr.server_kind,
                "in_spec_valid_versions": bool(msg and fr.api_version in msg.valid),
                "decodes_per_spec": d is not None and not d["trailing"],
                "trailing_bytes": d["trailing"] if d is not None else None,
                "reencodes_identically": bool(fr.roundtrip_ok),
                "spec_conformant": bool(d is not None and not d["trailing"] and fr.roundtrip_ok
                                        and msg and fr.api_version in msg.valid),
                "note": describe_frame(fr, specs),
            }
        )
    with open(os.path.join(args.out, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")

    batch_files = write_batches(args.out, kept, report, client_names)
    write_readme(args.out, report, client_names, manifest, batch_files, args.max_per_key)

    # ---------------- verify what was written + summary
    errors = list(problems)
    errors += verify_written(args.out, manifest)
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        if "%s-librdkafka.bin" % codec not in batch_files:
            errors.append("no librdkafka %s Produce batch captured" % codec)
    bad = [m for m in manifest if not m["spec_conformant"]]
    summary = collections.Counter(
        (m["api_name"], m["api_version"], m["direction"], m["client"].split(" via ")[0].split(" ")[0])
        for m in manifest)
    print()
    print("%-22s %4s %-9s %-13s %5s" % ("api", "ver", "direction", "client", "count"))
    print("-" * 58)
    for (api, ver, direction, client), n in sorted(summary.items()):
        print("%-22s %4d %-9s %-13s %5d" % (api, ver, direction, client, n))
    print("-" * 58)
    apis = sorted({m["api_name"] for m in manifest})
    print("%d files, %d bytes (+ batches), %d distinct APIs: %s"
          % (len(manifest), total, len(apis), ", ".join(apis)))
    print("flexible versions: %d files, non-flexible: %d files"
          % (sum(m["flexible"] for m in manifest), sum(not m["flexible"] for m in manifest)))
    for m in bad:
        print("NOTE: %s is not spec-conformant: %s" % (m["file"], m["note"]))
    if errors:
        for e in errors:
            print("ERROR: " + e)
        raise SystemExit(1)
    info("ok: wrote %s in %.1fs" % (args.out, time.time() - t0))


def verify_written(out, manifest):
    errs = []
    by_file = {m["file"]: m for m in manifest}
    for m in manifest:
        data = open(os.path.join(out, m["file"]), "rb").read()
        if len(data) != m["size"]:
            errs.append("%s: size mismatch" % m["file"])
        (corr,) = struct.unpack_from(">i", data, 4 if m["direction"] == "request" else 0)
        if corr != m["correlation_id"]:
            errs.append("%s: correlation id in bytes %d != manifest %d" % (m["file"], corr, m["correlation_id"]))
        if m["direction"] == "request":
            k, v = struct.unpack_from(">hh", data)
            if (k, v) != (m["api_key"], m["api_version"]):
                errs.append("%s: header api key/version mismatch" % m["file"])
        p = m["paired_with"]
        if p:
            o = by_file[p]
            if (o["correlation_id"], o["api_key"], o["api_version"], o["connection"]) != (
                    m["correlation_id"], m["api_key"], m["api_version"], m["connection"]):
                errs.append("%s <-> %s: pair mismatch" % (m["file"], p))
    total = sum(os.path.getsize(os.path.join(out, m["file"])) for m in manifest)
    if total > 2 * 1024 * 1024:
        errs.append("golden vectors too large: %d bytes" % total)
    return errs


def write_batches(out, kept, report, client_names):
    """Save the records field of one partition of selected Produce requests."""
    bdir = os.path.join(out, "batches")
    os.makedirs(bdir, exist_ok=True)
    for fn in os.listdir(bdir):
        if fn.endswith(".bin"):
            os.remove(os.path.join(bdir, fn))
    produced = {(p["client_id"], p["topic"], p["partition"]): p for p in report["produced"]}
    expected = {}
    for rq, _rs in kept:
        if rq.api_key != 0 or rq.decoded is None:
            continue
        for topic, part, recs in iter_records_fields(0, "request", rq.decoded["body"]):
            p = produced.get((rq.client_id, topic, part))
            if p is None or not recs:
                continue
            tag = p["codec"]
            if p.get("idempotent"):
                tag += "-idempotent"
            if p.get("transactional"):
                tag += "-transactional"
            if rq.label == "kafka-python":
                client_tag = "kafka-python-" + rq.mode
            else:
                client_tag = rq.label
            fn = "%s-%s.bin" % (tag, client_tag)
            if fn in expected:
                continue
            batches = golden_records.parse_batches(recs)
            check_against_produced(fn, batches, p)
            with open(os.path.join(bdir, fn), "wb") as f:
                f.write(recs)
            expected[fn] = {
                "source_frame": rq.file,
                "client": client_names[rq.label],
                "topic": topic,
                "partition": part,
                "compression": p["codec"],
                "size": len(recs),
                "batches": [
                    {
                        k: b[k]
                        for k in ("base_offset", "batch_length", "partition_leader_epoch", "magic", "crc",
                                  "attributes", "compression", "snappy_framing", "timestamp_type",
                                  "is_transactional", "is_control", "last_offset_delta",
                                  "base_timestamp", "max_timestamp", "producer_id", "producer_epoch",
                                  "base_sequence", "records_count", "compressed_size", "uncompressed_size")
                        if not (k == "snappy_framing" and b[k] is None)
                    }
                    | {
                        "records": [
                            {
                                "offset_delta": r["offset_delta"],
                                "timestamp_delta": r["timestamp_delta"],
                                "attributes": r["attributes"],
                                "key": golden_records.text_or_hex(r["key"]),
                                "value": golden_records.text_or_hex(r["value"]),
                                "headers": [
                                    {"key": hk, "value": golden_records.text_or_hex(hv)}
                                    for hk, hv in r["headers"]
                                ],
                            }
                            for r in b["records"]
                        ]
                    }
                    for b in batches
                ],
            }
    with open(os.path.join(bdir, "EXPECTED.json"), "w") as f:
        json.dump(expected, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return expected


def check_against_produced(fn, batches, p):
    recs = [r for b in batches for r in b["records"]]
    want = p["messages"]
    if len(recs) != len(want):
        raise SystemExit("%s: %d records in batch, %d produced" % (fn, len(recs), len(want)))
    for i, (r, w) in enumerate(zip(recs, want)):
        def hx(b):
            return None if b is None else b.hex()
        got = (hx(r["key"]), hx(r["value"]), [[k, hx(v)] for k, v in r["headers"]])
        exp = (w["key"], w["value"], w["headers"])
        if got != exp:
            raise SystemExit("%s record %d: got %r, produced %r" % (fn, i, got, exp))
    codecs = {b["compression"] for b in batches}
    if codecs != {p["codec"]}:
        raise SystemExit("%s: batch compression %s, expected %s" % (fn, codecs, p["codec"]))


def specs_name(api_key):
    return _SPECS.api_name(api_key) if _SPECS else "api %d" % api_key


_SPECS = None


def write_readme(out, report, client_names, manifest, batch_files, max_per_key):
    v = report["versions"]
    today = report.get("captured_on") or datetime.date.today().isoformat()
    if report.get("netns", True):
        where = "inside a private network namespace (`unshare --net`)"
    else:
        where = "on the host loopback (filtered by the mock/stub broker ports)"
    rows = collections.Counter((m["api_name"], m["api_version"], m["direction"],
                                m["client"].split(" via ")[0].split(" ")[0]) for m in manifest)
    table = "\n".join("| %s | %d | %s | %s | %d |" % (a, ver, d, c, n) for (a, ver, d, c), n in sorted(rows.items()))
    pinned = report.get("kafka_python_pinned_api_version") or [2, 3]
    odd = [m for m in manifest if not m["spec_conformant"]]
    odd_txt = ""
    if odd:
        odd_txt = ("\n### Frames that are not spec-conformant (`spec_conformant: false`)\n\n"
                   "These are real bytes, but the librdkafka mock cluster deviates from the Kafka "
                   "protocol in them; tests should expect a decode failure or exactly "
                   "`trailing_bytes` unread bytes.\n\n") + "\n".join(
            "- `%s`: %s" % (m["file"], m["note"]) for m in odd) + "\n"
    if report.get("mock_setup") == "ctypes":
        caps = "; ".join("%s capped to v%d-v%d (%s)" % (specs_name(int(k)), lo, hi, why.split(": ", 1)[-1])
                         for k, (lo, hi, why) in sorted(report.get("mock_api_caps", {}).items(),
                                                         key=lambda kv: int(kv[0])))
        mock_txt = ("It is the same mock that a confluent-kafka client starts when configured with "
                    "`test.mock.num.brokers`, but created through librdkafka's mock C API "
                    "(`rd_kafka_mock_cluster_new`, called via ctypes on the librdkafka bundled in the "
                    "confluent-kafka wheel) so that the script can create the topics (1 partition "
                    "each, keeping Fetch responses small), get the listener addresses "
                    "(`rd_kafka_mock_cluster_bootstraps`) and cap API versions with "
                    "`rd_kafka_mock_set_apiversion`: " + caps + ".")
    else:
        mock_txt = ("It was started by a confluent-kafka client configured with "
                    "`test.mock.num.brokers`; its listener addresses come from the `debug=mock` log "
                    "line `Mock cluster ... bootstrap.servers=...`.")
    text = f"""# Golden protocol vectors

Real bytes exchanged between third-party Kafka clients and librdkafka's mock
cluster, captured on {today} for byte-for-byte decode/re-encode tests of
`kafka-wire`. Generated by `scripts/capture_golden.py`; do not edit by hand.

## Source

- **{client_names['librdkafka']}** (the confluent-kafka wheel bundles
  librdkafka), Python {v['python']}.
- **{client_names['kafka-python']}**, run twice: with `api_version`
  pinned to {tuple(pinned)} (mostly non-flexible request versions, selected
  from kafka-python's built-in version table), and with versions negotiated
  from the broker's ApiVersions (flexible versions). For the negotiated run
  kafka-python's first ApiVersions request is sent as v2 instead of v3+ (a
  one-line monkeypatch in `scripts/golden_scenarios.py`): the mock cluster
  only supports ApiVersions v0-v2 and answers v3+ with a non-standard error
  response kafka-python cannot parse (see below); v2 is what kafka-python
  would retry with after a well-formed UNSUPPORTED_VERSION answer.
- **Broker**: librdkafka {v['librdkafka']}'s in-process mock cluster
  ({report.get('mock_brokers', 3)} brokers). {mock_txt} All
  responses (`*-response.bin`) were written by the mock cluster. The mock does
  not implement CreateTopics/DeleteTopics, so those **requests** were sent
  to a tiny stub broker in `scripts/golden_scenarios.py` and have no response
  vector (`paired_with: null`).
- **Capture**: `tcpdump -i lo` {where}, TCP streams
  reassembled in Python (`scripts/golden_pcap.py`), split into size-prefixed
  frames; requests and responses are paired per TCP connection in order and
  their correlation ids are checked. Every frame is decoded with a
  spec-driven Python codec (`scripts/golden_codec.py`, Kafka JSON specs from
  `../shared/kafka-message-specs`) that must consume all bytes and re-encode
  identically (`decodes_per_spec`, `reencodes_identically` in the manifest).

## Regenerate

```sh
scripts/setup-interop.sh && .venv/bin/python scripts/capture_golden.py
```

Needs root (tcpdump, `unshare --net`); `--no-netns` captures on the host's
loopback instead. Record timestamps are fixed, but producer ids, session
ids, generation/member ids, client-chosen correlation ids etc. differ between
runs, so regenerating changes the bytes.

## Files

- `<client>-<seq:04>-<ApiName>-v<version>-<request|response>.bin`: one frame
  **without** the 4-byte size prefix, i.e. request header + body or response
  header + body. `<client>` is `librdkafka` or `kafka-python`; `<seq>`
  orders the frames of that client by capture time. `ApiName` is the spec's
  message name without `Request`/`Response`.
- `MANIFEST.json`: one entry per file: `file`, `client` (exact versions),
  `direction`, `api_key`, `api_version` (responses carry those of the request
  they answer), `correlation_id`, `note`, plus `api_name`, `header_version`
  (request header v1/v2, response header v0/v1; ApiVersions responses are
  always header v0), `flexible`, `size`, `paired_with` (the other half of the
  exchange), `client_id`, `connection` (TCP connection index), `broker`
  (`mock` or `stub`), `in_spec_valid_versions` (the version is within the
  local spec's `validVersions`), `decodes_per_spec` (decodes and consumes
  every byte), `trailing_bytes` (bytes left after a complete body),
  `reencodes_identically` (re-encoding the decoded body reproduces the bytes,
  minus trailing bytes), `spec_conformant` (all of the above hold).
- `batches/<codec>[-idempotent|-transactional]-<client>.bin`: the `records`
  field of one partition of a Produce request (one or more v2 record
  batches). `batches/EXPECTED.json` gives, per file, the batch header fields
  and the records (offset delta, timestamp delta, key, value, headers; byte
  strings as `{{"utf8": ...}}` or `{{"hex": ...}}`, `null` for null). The
  records were checked against what the capture script produced.

At most {max_per_key} request/response pairs are kept per (client, API, version,
record-batch variant); identical exchanges (ignoring the correlation id) are
kept once.
{odd_txt}
## Not covered (and why)

- Spec-conformant responses for CreateTopics/DeleteTopics (the mock has no
  such APIs; only the requests are kept), ApiVersions v3 (the mock supports
  v0-v2 only and its UNSUPPORTED_VERSION answer to v3 is malformed),
  flexible JoinGroup v6+/SyncGroup v4+ (the mock cannot parse them, so they
  are capped and kafka-python falls back to v5/v3) and LeaveGroup v3+ (the
  mock's reply lacks the Members array).
- Spec-conformant flexible Metadata responses: every flexible (v9+)
  Metadata response of the mock carries one extra trailing byte (see above);
  the non-flexible kafka-python Metadata v8 responses are clean.
- Metadata v13 (newer than the local specs; capped to v12).
- Control (transaction marker) batches: the mock does not write commit
  markers, so read_committed Fetch responses carry only the data batches.
- Produce with acks=0 (no response frame), SASL, DescribeGroups/ListGroups,
  OffsetForLeaderEpoch and other APIs the mock does not implement or the
  scenarios do not trigger.

## Contents

| API | version | direction | client | files |
|---|---|---|---|---|
{table}
"""
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
