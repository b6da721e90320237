"""Scenario driver for capture_golden.py (run with the interop venv Python).

Starts librdkafka's in-process mock cluster (via a confluent-kafka client
configured with test.mock.num.brokers), then drives confluent-kafka and
kafka-python clients through producer / consumer-group / transaction
scenarios against it, plus a tiny stub broker that only exists to receive
CreateTopics/DeleteTopics requests (the mock cluster does not implement them).

All traffic goes over loopback; capture_golden.py records it with tcpdump.
Writes a JSON report (--report) describing endpoints, client ids and every
message produced, which capture_golden.py uses to label and verify frames.

Every client gets a client.id of the form "golden-<label>-<mode>-<scenario>"
so that capture_golden.py can attribute each TCP connection to a client.
"""

import argparse
import json
import logging
import os
import re
import socket
import struct
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import golden_codec  # noqa: E402

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
BASE_TS = 1_700_000_000_000  # fixed record timestamps -> reproducible batches

log = logging.getLogger("golden")


def messages_for(tag, null_header_value=True):
    """The records produced per codec: keys, values and headers of several
    shapes (null key, null value, binary, unicode, empty, compressible).
    kafka-python refuses null header values, so it gets b"" instead."""
    msgs = [
        {"key": b"key-0", "value": ("value-0 " + tag).encode(), "headers": [("h1", b"v1")]},
        {"key": None, "value": b"value-1 (null key)", "headers": []},
        {"key": b"key-2", "value": None, "headers": [("h1", b"a"), ("h2", None)]},
        {
            "key": b"key-3",
            "value": (b"compressible-" + tag.encode() + b"-") * 24,
            "headers": [("trace-id", bytes(range(8)))],
        },
        {"key": "ключ-4".encode(), "value": "значение-4 ✓".encode(), "headers": [("h", b"")]},
        {"key": b"\x00\xff\x10", "value": b"", "headers": [("a", b"1"), ("b", b"2"), ("c", b"3")]},
    ]
    if not null_header_value:
        for m in msgs:
            m["headers"] = [(k, b"" if v is None else v) for k, v in m["headers"]]
    return msgs


def enc(b):
    return None if b is None else b.hex()


def describe(msgs):
    return [
        {"key": enc(m["key"]), "value": enc(m["value"]), "headers": [[k, enc(v)] for k, v in m["headers"]]}
        for m in msgs
    ]


class Report:
    def __init__(self):
        self.data = {
            "clients": {},  # client_id -> {label, mode, scenario}
            "produced": [],  # {client_id, topic, partition, codec, messages, timestamps}
            "errors": [],
            "notes": [],
        }

    def client(self, client_id, label, mode, scenario):
        self.data["clients"][client_id] = {"label": label, "mode": mode, "scenario": scenario}
        return client_id

    def error(self, where, exc):
        msg = "%s: %s" % (where, "".join(traceback.format_exception_only(type(exc), exc)).strip())
        log.error(msg)
        self.data["errors"].append(msg)


def step(report, where):
    """Decorator-like helper: run fn, record but do not propagate failures."""

    def wrap(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            report.error(where, e)
            traceback.print_exc()

    return wrap


# --------------------------------------------------------------------------
# librdkafka mock cluster


# Topics created up front (1 partition each keeps Fetch responses small).
def all_topics():
    t = ["golden-%s" % c for c in CODECS] + ["golden-idempotent", "golden-txn"]
    for mode in ("pinned", "negotiated"):
        t += ["golden-kp-%s-%s" % (mode, c) for c in CODECS] + ["golden-kp-%s-idempotent" % mode]
    return t


# API version caps applied to the mock cluster (api_key: (min, max, reason)).
MOCK_API_CAPS = {
    3: (0, 12, "Metadata: the mock advertises v13, newer than the Kafka specs kafka-wire is generated from (0-12)"),
    11: (0, 5, "JoinGroup: the mock fails to parse (kafka-python's) flexible JoinGroup v6 and closes the connection"),
    14: (0, 3, "SyncGroup: the mock fails to parse (kafka-python's) flexible SyncGroup v4 (read buffer underflow)"),
}


def start_mock_ctypes(num_brokers, report):
    """Create the mock cluster through librdkafka's C mock API (the same mock
    that test.mock.num.brokers starts) using the librdkafka bundled in the
    confluent-kafka wheel, so topics can be created and versions capped."""
    import ctypes
    import glob

    import confluent_kafka
    from ctypes import c_char_p, c_int, c_int16, c_int32, c_size_t, c_void_p

    pkg = os.path.dirname(confluent_kafka.__file__)
    cands = sorted(glob.glob(os.path.join(pkg, os.pardir, "confluent_kafka.libs", "librdkafka*.so*")))
    if not cands:
        import ctypes.util

        found = ctypes.util.find_library("rdkafka")
        cands = [found] if found else []
    if not cands:
        raise RuntimeError("librdkafka shared library not found")
    lib = ctypes.CDLL(cands[0])
    lib.rd_kafka_version_str.restype = c_char_p
    libver = lib.rd_kafka_version_str().decode()
    if libver != confluent_kafka.libversion()[0]:
        raise RuntimeError("ctypes loaded librdkafka %s, confluent-kafka uses %s" % (libver, confluent_kafka.libversion()[0]))
    lib.rd_kafka_conf_new.restype = c_void_p
    lib.rd_kafka_conf_set.restype = c_int
    lib.rd_kafka_conf_set.argtypes = [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]
    lib.rd_kafka_new.restype = c_void_p
    lib.rd_kafka_new.argtypes = [c_int, c_void_p, c_char_p, c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [c_void_p, c_int]
    lib.rd_kafka_mock_cluster_bootstraps.restype = c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [c_void_p]
    lib.rd_kafka_mock_set_apiversion.restype = c_int
    lib.rd_kafka_mock_set_apiversion.argtypes = [c_void_p, c_int16, c_int16, c_int16]
    lib.rd_kafka_mock_topic_create.restype = c_int
    lib.rd_kafka_mock_topic_create.argtypes = [c_void_p, c_char_p, c_int, c_int]
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.restype = None
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [c_void_p, c_int32]

    errstr = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    # the handle only hosts the mock cluster; it never connects anywhere
    lib.rd_kafka_conf_set(conf, b"client.id", b"golden-mock-host", errstr, 512)
    if os.environ.get("GOLDEN_MOCK_DEBUG"):
        lib.rd_kafka_conf_set(conf, b"debug", os.environ["GOLDEN_MOCK_DEBUG"].encode(), errstr, 512)
    else:
        lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, 512)
    rk = lib.rd_kafka_new(0, conf, errstr, 512)
    if not rk:
        raise RuntimeError("rd_kafka_new failed: %s" % errstr.value.decode())
    mc = lib.rd_kafka_mock_cluster_new(rk, num_brokers)
    if not mc:
        raise RuntimeError("rd_kafka_mock_cluster_new failed")
    bootstrap = lib.rd_kafka_mock_cluster_bootstraps(mc).decode()
    for api_key, (lo, hi, why) in MOCK_API_CAPS.items():
        err = lib.rd_kafka_mock_set_apiversion(mc, api_key, lo, hi)
        if err:
            raise RuntimeError("rd_kafka_mock_set_apiversion(%d) failed: %d" % (api_key, err))
        report.data["notes"].append("mock API cap %d: v%d-v%d (%s)" % (api_key, lo, hi, why))
    for t in all_topics():
        err = lib.rd_kafka_mock_topic_create(mc, t.encode(), 1, min(3, num_brokers))
        if err:
            raise RuntimeError("rd_kafka_mock_topic_create(%s) failed: %d" % (t, err))
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms(mc, 200)
    report.data["mock_setup"] = "ctypes"
    report.data["mock_api_caps"] = {str(k): [lo, hi, why] for k, (lo, hi, why) in MOCK_API_CAPS.items()}
    return (lib, rk, mc), bootstrap


def start_mock_config(num_brokers, report):
    """Fallback: let a confluent-kafka client start the mock cluster
    (test.mock.num.brokers) and read its address from the debug=mock log:
    "Mock cluster <id> bootstrap.servers=<host:port,...>"."""
    from confluent_kafka import Producer

    found = []

    class H(logging.Handler):
        def emit(self, r):
            m = re.search(r"bootstrap\.servers=(\S+)", r.getMessage())
            if m:
                found.append(m.group(1))

    rdlog = logging.getLogger("librdkafka.mockowner")
    rdlog.addHandler(H())
    rdlog.setLevel(logging.DEBUG)
    rdlog.propagate = False
    cid = report.client("golden-librdkafka-mock-owner", "librdkafka", "default", "mock-owner")
    owner = Producer({"test.mock.num.brokers": num_brokers, "client.id": cid, "debug": "mock", "logger": rdlog})
    deadline = time.time() + 10
    while not found and time.time() < deadline:
        owner.poll(0.05)
    if not found:
        md = owner.list_topics(timeout=10)
        found.append(",".join("%s:%d" % (b.host, b.port) for b in md.brokers.values()))
    report.data["mock_setup"] = "test.mock.num.brokers"
    return owner, found[0]


def start_mock(num_brokers, report, mode="auto"):
    if mode in ("auto", "ctypes"):
        try:
            return start_mock_ctypes(num_brokers, report)
        except Exception as e:  # noqa: BLE001
            if mode == "ctypes":
                raise
            report.data["notes"].append("ctypes mock setup failed (%s); using test.mock.num.brokers" % e)
            log.warning("ctypes mock setup failed (%s); falling back to test.mock.num.brokers", e)
    return start_mock_config(num_brokers, report)


# --------------------------------------------------------------------------
# stub broker (CreateTopics / DeleteTopics only)


class StubBroker(threading.Thread):
    """Minimal broker that answers ApiVersions, Metadata, CreateTopics and
    DeleteTopics, so that admin clients send CreateTopics/DeleteTopics
    requests. Its responses are synthetic and are NOT golden vectors."""

    SUPPORTED = {18: (0, 3), 3: (0, 12), 19: (0, 7), 20: (0, 6)}
    # Advertised but never served (the connection is closed if used): they make
    # kafka-python infer a modern broker, so that with api_version pinned it
    # clamps to its (2, 3) table instead of using the stub's newest versions.
    ADVERTISED_ONLY = {0: (3, 11), 1: (4, 17)}

    def __init__(self, specs):
        super().__init__(daemon=True)
        self.specs = specs
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            buf = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 4:
                    (n,) = struct.unpack_from(">i", buf)
                    if len(buf) < 4 + n:
                        break
                    frame, buf = buf[4 : 4 + n], buf[4 + n :]
                    resp = self.handle(frame)
                    if resp is None:
                        conn.close()
                        return
                    conn.sendall(struct.pack(">i", len(resp)) + resp)
        except OSError:
            pass
        except Exception:  # noqa: BLE001
            log.exception("stub broker failed")
        finally:
            conn.close()

    def handle(self, frame):
        s = self.specs
        api_key, ver, corr = struct.unpack_from(">hhi", frame)
        rng = self.SUPPORTED.get(api_key)
        ok = rng is not None and rng[0] <= ver <= rng[1]
        if not ok:
            if api_key != 18:
                return None  # like a real broker: close the connection
            ver = 0  # KIP-511: answer with a v0 UNSUPPORTED_VERSION response
        req = golden_codec.decode_frame(s, "request", frame)["body"] if ok else {}
        if api_key == 18:
            body = {
                "ErrorCode": 0 if ok else 35,
                "ApiKeys": [
                    {"ApiKey": k, "MinVersion": lo, "MaxVersion": hi, "_tagged": []}
                    for k, (lo, hi) in sorted({**self.SUPPORTED, **self.ADVERTISED_ONLY}.items())
                ],
                "ThrottleTimeMs": 0,
                "_tagged": [],
            }
        elif api_key == 3:
            body = {
                "Brokers": [{"NodeId": 1, "Host": "127.0.0.1", "Port": self.port, "Rack": None}],
                "ClusterId": "golden-stub",
                "ControllerId": 1,
                "Topics": [
                    {"ErrorCode": 3, "Name": t.get("Name"), "IsInternal": False, "Partitions": []}
                    for t in (req.get("Topics") or [])
                ],
            }
        elif api_key == 19:
            body = {
                "Topics": [
                    {
                        "Name": t["Name"],
                        "TopicId": "5f1d7a3c-0000-4000-8000-%012x" % i,
                        "ErrorCode": 0,
                        "ErrorMessage": None,
                        "NumPartitions": t["NumPartitions"] if t["NumPartitions"] > 0 else 1,
                        "ReplicationFactor": t["ReplicationFactor"] if t["ReplicationFactor"] > 0 else 1,
                        "Configs": [],
                    }
                    for i, t in enumerate(req["Topics"])
                ]
            }
        elif api_key == 20:
            names = req.get("TopicNames") or [t.get("Name") for t in (req.get("Topics") or [])]
            body = {"Responses": [{"Name": n, "ErrorCode": 0, "ErrorMessage": None} for n in names]}
        hv = s.response_header_version(api_key, ver)
        return golden_codec.encode_frame(s, "response", {"CorrelationId": corr, "_tagged": []}, hv, api_key, ver, body)


# --------------------------------------------------------------------------
# confluent-kafka (librdkafka) scenarios


def rdk_scenarios(bootstrap, stub_bootstrap, report, topics_prefix="golden"):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    label = "librdkafka"
    base = {"bootstrap.servers": bootstrap}
    consumed_topics = []

    # --- producers, one per compression codec (non-idempotent) ---
    for codec in CODECS:
        topic = "%s-%s" % (topics_prefix, codec)
        cid = report.client("golden-librdkafka-producer-%s" % codec, label, "default", "produce-" + codec)

        @step(report, "librdkafka produce " + codec)
        def _():
            p = Producer(
                dict(
                    base,
                    **{
                        "client.id": cid,
                        "compression.type": codec,
                        "linger.ms": 300,
                        "acks": "all",
                        "enable.idempotence": False,
                    },
                )
            )
            msgs = messages_for(codec)
            errs = []
            for i, m in enumerate(msgs):
                p.produce(
                    topic,
                    key=m["key"],
                    value=m["value"],
                    headers=m["headers"],
                    partition=0,
                    timestamp=BASE_TS + i,
                    on_delivery=lambda err, msg: err and errs.append(str(err)),
                )
            left = p.flush(15)
            if left or errs:
                raise RuntimeError("undelivered=%d errors=%s" % (left, errs))
            report.data["produced"].append(
                {
                    "client_id": cid,
                    "topic": topic,
                    "partition": 0,
                    "codec": codec,
                    "base_timestamp": BASE_TS,
                    "messages": describe(msgs),
                }
            )
            consumed_topics.append(topic)

    # --- idempotent producer (InitProducerId) ---
    cid = report.client("golden-librdkafka-producer-idempotent", label, "default", "produce-idempotent")

    @step(report, "librdkafka idempotent producer")
    def _():
        topic = "%s-idempotent" % topics_prefix
        p = Producer(dict(base, **{"client.id": cid, "enable.idempotence": True, "linger.ms": 100}))
        msgs = messages_for("idempotent")[:3]
        for i, m in enumerate(msgs):
            p.produce(topic, key=m["key"], value=m["value"], headers=m["headers"], partition=0, timestamp=BASE_TS + i)
        if p.flush(15):
            raise RuntimeError("idempotent flush timed out")
        report.data["produced"].append(
            {"client_id": cid, "topic": topic, "partition": 0, "codec": "none",
             "base_timestamp": BASE_TS, "messages": describe(msgs), "idempotent": True}
        )
        consumed_topics.append(topic)

    # --- transactional producer: FindCoordinator(txn), InitProducerId,
    #     AddPartitionsToTxn, Produce, AddOffsetsToTxn, TxnOffsetCommit, EndTxn
    cid = report.client("golden-librdkafka-producer-txn", label, "default", "transaction")

    @step(report, "librdkafka transactional producer")
    def _():
        topic = "%s-txn" % topics_prefix
        gm_cid = report.client("golden-librdkafka-txn-group-meta", label, "default", "transaction")
        gc = Consumer(dict(base, **{"client.id": gm_cid, "group.id": "golden-txn-group"}))
        p = Producer(dict(base, **{"client.id": cid, "transactional.id": "golden-txn-1", "linger.ms": 50}))
        p.init_transactions(15)
        p.begin_transaction()
        msgs = messages_for("txn")[:2]
        for i, m in enumerate(msgs):
            p.produce(topic, key=m["key"], value=m["value"], headers=m["headers"], partition=0, timestamp=BASE_TS + i)
        p.flush(10)
        p.send_offsets_to_transaction(
            [TopicPartition("%s-none" % topics_prefix, 0, 3)], gc.consumer_group_metadata(), 15
        )
        p.commit_transaction(15)
        gc.close()
        report.data["produced"].append(
            {"client_id": cid, "topic": topic, "partition": 0, "codec": "none",
             "base_timestamp": BASE_TS, "messages": describe(msgs), "transactional": True}
        )
        consumed_topics.append(topic)  # read_committed Fetch then sees a control batch

    # --- classic consumer group: FindCoordinator, JoinGroup, SyncGroup,
    #     OffsetFetch, ListOffsets, Fetch, Heartbeat, OffsetCommit, LeaveGroup
    cid = report.client("golden-librdkafka-consumer", label, "default", "consumer-group")

    @step(report, "librdkafka consumer group")
    def _():
        c = Consumer(
            dict(
                base,
                **{
                    "client.id": cid,
                    "group.id": "golden-group",
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                    "heartbeat.interval.ms": 250,
                    "session.timeout.ms": 6000,
                    "fetch.wait.max.ms": 100,
                },
            )
        )
        topics = list(consumed_topics)
        c.subscribe(topics)
        want = sum(len(p["messages"]) for p in report.data["produced"] if p["topic"] in topics)
        got = 0
        deadline = time.time() + 30
        while got < want and time.time() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                log.warning("consumer error: %s", m.error())
                continue
            got += 1
        if got < want:
            raise RuntimeError("consumed %d/%d" % (got, want))
        c.commit(asynchronous=False)
        tps = [TopicPartition(t, 0) for t in topics]
        c.committed(tps, timeout=10)
        c.get_watermark_offsets(TopicPartition(topics[0], 0), timeout=10, cached=False)
        c.offsets_for_times([TopicPartition(topics[0], 0, BASE_TS + 3)], timeout=10)
        t_end = time.time() + 1.5  # let a few Heartbeats happen
        while time.time() < t_end:
            c.poll(0.1)
        c.close()

    # --- KIP-848 consumer group protocol (ConsumerGroupHeartbeat) ---
    cid = report.client("golden-librdkafka-consumer-kip848", label, "default", "consumer-group-kip848")

    @step(report, "librdkafka KIP-848 consumer")
    def _():
        c = Consumer(
            dict(
                base,
                **{
                    "client.id": cid,
                    "group.id": "golden-group-848",
                    "group.protocol": "consumer",
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                },
            )
        )
        c.subscribe(["%s-none" % topics_prefix])
        got = 0
        deadline = time.time() + 20
        while got < 6 and time.time() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got += 1
        if got:
            c.commit(asynchronous=False)
        c.close()
        if got < 6:
            raise RuntimeError("KIP-848 consumer got %d/6" % got)

    # --- admin: Metadata via list_topics; CreateTopics/DeleteTopics (stub) ---
    cid = report.client("golden-librdkafka-admin", label, "default", "admin")

    @step(report, "librdkafka admin list_topics")
    def _():
        a = AdminClient(dict(base, **{"client.id": cid}))
        a.list_topics(timeout=10)

    if stub_bootstrap:
        cid = report.client("golden-librdkafka-admin-stub", label, "default", "admin-stub")

        @step(report, "librdkafka admin create/delete topics (stub)")
        def _():
            a = AdminClient({"bootstrap.servers": stub_bootstrap, "client.id": cid})
            fs = a.create_topics(
                [
                    NewTopic("golden-created-1", num_partitions=3, replication_factor=1,
                             config={"cleanup.policy": "compact", "retention.ms": "86400000"}),
                    NewTopic("golden-created-2", num_partitions=1, replication_factor=1),
                ],
                operation_timeout=5,
            )
            for f in fs.values():
                f.result(10)
            fs = a.delete_topics(["golden-created-2"], operation_timeout=5)
            for f in fs.values():
                f.result(10)


# --------------------------------------------------------------------------
# kafka-python scenarios


def patch_kafka_python_initial_apiversions():
    """kafka-python starts with ApiVersions v3+; the mock cluster only
    supports v0-v2 and answers v3+ requests with a non-standard error
    response kafka-python cannot decode. Start at v2 instead, which is exactly
    what kafka-python itself does after a well-formed UNSUPPORTED_VERSION
    answer that advertises ApiVersions max v2."""
    import kafka.net.connection as kc

    if getattr(kc.KafkaConnection, "_golden_patched", False):
        return
    orig = kc.KafkaConnection.__init__

    def init(self, *a, **k):
        orig(self, *a, **k)
        if self.broker_version_data is None:
            self._api_versions_idx = min(self._api_versions_idx, 2)

    kc.KafkaConnection.__init__ = init
    kc.KafkaConnection._golden_patched = True


def kp_scenarios(bootstrap, stub_bootstrap, report, mode, api_version):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient

    label = "kafka-python"
    common = {"bootstrap_servers": bootstrap, "api_version": api_version}
    prefix = "golden-kp-%s" % mode
    produced_topics = []

    for codec in CODECS:
        topic = "%s-%s" % (prefix, codec)
        cid = report.client("golden-kafka-python-%s-producer-%s" % (mode, codec), label, mode, "produce-" + codec)

        @step(report, "kafka-python[%s] produce %s" % (mode, codec))
        def _():
            p = KafkaProducer(
                client_id=cid,
                compression_type=None if codec == "none" else codec,
                linger_ms=300,
                acks="all",
                enable_idempotence=False,
                **common,
            )
            msgs = messages_for(codec, null_header_value=False)
            futs = [
                p.send(topic, key=m["key"], value=m["value"],
                       headers=[(k, v) for k, v in m["headers"]],
                       partition=0, timestamp_ms=BASE_TS + i)
                for i, m in enumerate(msgs)
            ]
            p.flush(15)
            for f in futs:
                f.get(10)
            p.close(5)
            report.data["produced"].append(
                {"client_id": cid, "topic": topic, "partition": 0, "codec": codec,
                 "base_timestamp": BASE_TS, "messages": describe(msgs)}
            )
            produced_topics.append(topic)

    cid = report.client("golden-kafka-python-%s-producer-idempotent" % mode, label, mode, "produce-idempotent")

    @step(report, "kafka-python[%s] idempotent producer" % mode)
    def _():
        topic = "%s-idempotent" % prefix
        p = KafkaProducer(client_id=cid, enable_idempotence=True, acks="all", linger_ms=100, **common)
        msgs = messages_for("idempotent", null_header_value=False)[:3]
        futs = [p.send(topic, key=m["key"], value=m["value"], headers=m["headers"],
                       partition=0, timestamp_ms=BASE_TS + i) for i, m in enumerate(msgs)]
        p.flush(15)
        for f in futs:
            f.get(10)
        p.close(5)
        report.data["produced"].append(
            {"client_id": cid, "topic": topic, "partition": 0, "codec": "none",
             "base_timestamp": BASE_TS, "messages": describe(msgs), "idempotent": True}
        )
        produced_topics.append(topic)

    cid = report.client("golden-kafka-python-%s-consumer" % mode, label, mode, "consumer-group")

    @step(report, "kafka-python[%s] consumer group" % mode)
    def _():
        c = KafkaConsumer(
            client_id=cid,
            group_id="golden-kp-group-%s" % mode,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            heartbeat_interval_ms=250,
            session_timeout_ms=6000,
            fetch_max_wait_ms=100,
            request_timeout_ms=7000,  # don't hang 30 s on the mock's LeaveGroup v4 reply
            **common,
        )
        topics = list(produced_topics)
        c.subscribe(topics)
        want = sum(len(p["messages"]) for p in report.data["produced"] if p["topic"] in topics)
        got = 0
        deadline = time.time() + 40
        while got < want and time.time() < deadline:
            recs = c.poll(timeout_ms=200)
            got += sum(len(v) for v in recs.values())
        if got < want:
            raise RuntimeError("consumed %d/%d" % (got, want))
        c.commit()
        tps = [TopicPartition(t, 0) for t in topics]
        for tp in tps[:2]:
            c.committed(tp)
        c.end_offsets(tps[:2])
        c.beginning_offsets(tps[:1])
        c.offsets_for_times({tps[0]: BASE_TS + 3})
        t_end = time.time() + 1.5
        while time.time() < t_end:
            c.poll(timeout_ms=100)
        c.close()

    if stub_bootstrap:
        cid = report.client("golden-kafka-python-%s-admin-stub" % mode, label, mode, "admin-stub")

        @step(report, "kafka-python[%s] admin create/delete topics (stub)" % mode)
        def _():
            a = KafkaAdminClient(bootstrap_servers=stub_bootstrap, client_id=cid, api_version=api_version)
            a.create_topics(
                {
                    "golden-kp-created-1": {"num_partitions": 3, "replication_factor": 1,
                                            "configs": {"cleanup.policy": "compact"}},
                    "golden-kp-created-2": {"num_partitions": 1, "replication_factor": 1},
                },
                timeout_ms=5000,
            )
            a.delete_topics(["golden-kp-created-2"], timeout_ms=5000)
            a.close()


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", required=True)
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--specs", default=golden_codec.default_spec_dir())
    ap.add_argument("--kafka-python-pinned", default="2.3", help="api_version pinned for the non-flexible run")
    ap.add_argument("--mock-setup", choices=["auto", "ctypes", "config"], default="auto",
                    help="ctypes: librdkafka mock C API (topics + version caps); config: test.mock.num.brokers")
    ap.add_argument("--skip", default="", help="comma list of: librdkafka,kp-pinned,kp-negotiated,stub")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)

    import confluent_kafka
    import kafka

    report = Report()
    report.data["versions"] = {
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "kafka_python": kafka.__version__,
        "python": sys.version.split()[0],
    }
    owner, bootstrap = start_mock(args.brokers, report, args.mock_setup)
    report.data["mock_bootstrap"] = bootstrap
    report.data["mock_ports"] = [int(hp.rsplit(":", 1)[1]) for hp in bootstrap.split(",")]
    report.data["mock_brokers"] = args.brokers
    log.info("mock cluster: %s", bootstrap)

    stub = None
    stub_bootstrap = None
    if "stub" not in skip:
        stub = StubBroker(golden_codec.Specs(args.specs))
        stub.start()
        stub_bootstrap = "127.0.0.1:%d" % stub.port
        report.data["stub_ports"] = [stub.port]
        log.info("stub broker: %s", stub_bootstrap)
    else:
        report.data["stub_ports"] = []

    try:
        if "librdkafka" not in skip:
            rdk_scenarios(bootstrap, stub_bootstrap, report)
        pinned = tuple(int(x) for x in args.kafka_python_pinned.split("."))
        if "kp-pinned" not in skip:
            kp_scenarios(bootstrap, stub_bootstrap, report, "pinned", pinned)
            report.data["kafka_python_pinned_api_version"] = list(pinned)
        if "kp-negotiated" not in skip:
            patch_kafka_python_initial_apiversions()
            kp_scenarios(bootstrap, stub_bootstrap, report, "negotiated", None)
    finally:
        time.sleep(0.5)
        if stub:
            stub.stop = True
            stub.sock.close()
        with open(args.report, "w") as f:
            json.dump(report.data, f, indent=2)
        log.info("report written to %s (%d errors)", args.report, len(report.data["errors"]))
        del owner
    # confluent-kafka may leave background threads; exit hard.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
