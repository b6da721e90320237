"""DescribeLogDirs (kafka-python) and the ACL APIs (confluent-kafka) against broker-lite.

Creates --topic (2 partitions), produces --count records to partition 0, then:

* kafka-python `KafkaAdminClient.describe_log_dirs()` (all topics) and
  `describe_log_dirs({topic: [0, 1]})`: one log directory, --data-dir's absolute path, no
  error; partition 0's size equals the bytes of its `.log` files, partition 1's is 0, offset
  lag 0, not future; the volume's total and usable bytes (DescribeLogDirs v4, KIP-827) are
  known: total > 0 and 0 <= usable <= total;
* kafka-python `describe_acls` raises SecurityDisabledError with Kafka's message "No
  Authorizer is configured on the broker"; confluent-kafka `describe_acls` returns an empty
  list (librdkafka reads the top-level error of DescribeAcls and drops it: it does the same
  with a Kafka broker), and its `create_acls` / `delete_acls` fail each binding / filter with
  SECURITY_DISABLED (a broker without an authorizer, as Kafka's `AclApis` answers).

Prints one JSON summary line; exits non-zero on any failure.
"""

import argparse
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

try:
    from confluent_kafka import KafkaError, KafkaException, Producer
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                       AclPermissionType, AdminClient, NewTopic,
                                       ResourcePatternType, ResourceType)
    from kafka import KafkaAdminClient
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, ResourcePattern)
    from kafka.admin import ResourceType as KpResourceType
    from kafka.errors import SecurityDisabledError
except ImportError as e:  # pragma: no cover
    common.fail("confluent-kafka / kafka-python missing in %s (%s); run scripts/setup-interop.sh"
                % (sys.executable, e))


def log_bytes(data_dir, topic, partition):
    d = os.path.join(data_dir, "%s-%d" % (topic, partition))
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".log"))


def partitions_of(log_dirs, topic):
    """kafka-python's describe_log_dirs answer (any version) -> ({partition: (size, lag,
    future)}, [log dir paths], [error codes], [(total bytes, usable bytes)])."""
    out, dirs, errors, space = {}, [], [], []
    for broker in log_dirs:
        results = broker.get("results") or broker.get("log_dirs") or []
        for r in results:
            dirs.append(r.get("log_dir"))
            errors.append(r.get("error_code"))
            space.append((r.get("total_bytes"), r.get("usable_bytes")))
            for t in r.get("topics", []):
                if t.get("name") != topic:
                    continue
                for p in t.get("partitions", []):
                    out[p["partition_index"]] = (p["partition_size"], p["offset_lag"],
                                                 p["is_future_key"])
    return out, dirs, errors, space


def error_code(exc):
    err = exc.args[0] if exc.args else None
    return err.code() if isinstance(err, KafkaError) else repr(exc)


def outcomes(futures, timeout):
    """Each future's error code (0: success) and the last error, as text (None: none)."""
    codes, last = [], None
    for fut in futures.values():
        try:
            fut.result(timeout)
            codes.append(0)
        except KafkaException as e:
            codes.append(error_code(e))
            last = str(e.args[0])
    return codes, last


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--data-dir", required=True,
                    help="broker-lite's --data-dir, to compare sizes")
    ap.add_argument("--topic", default="logdirs-" + uuid.uuid4().hex[:8])
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    topic = args.topic
    t = common.Timer()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for fut in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)],
                                   operation_timeout=args.timeout).values():
        fut.result(args.timeout)
    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all"})
    for i in range(args.count):
        p.produce(topic, value=("v-%d" % i).encode(), partition=0)
    if p.flush(args.timeout):
        common.fail("records still undelivered after flush")

    # kafka-python: DescribeLogDirs.
    kp = KafkaAdminClient(bootstrap_servers=args.bootstrap,
                          request_timeout_ms=int(args.timeout * 1000))
    summary = {"client": "kafka-python+confluent-kafka", "topic": topic}
    for what, query in (("all topics", None), ("named", {topic: [0, 1]})):
        parts, dirs, errors, space = partitions_of(kp.describe_log_dirs(query), topic)
        common.expect("%s: log dirs" % what, len(dirs), 1)
        common.expect("%s: log dir error" % what, errors, [0])
        total, usable = space[0]
        if not (isinstance(total, int) and isinstance(usable, int)
                and total > 0 and 0 <= usable <= total):
            common.fail("%s: total/usable bytes %r (want total > 0, 0 <= usable <= total; "
                        "kafka-python sends DescribeLogDirs v4)" % (what, space))
        summary["total_bytes"], summary["usable_bytes"] = total, usable
        common.expect("%s: log dir" % what, dirs[0], os.path.abspath(args.data_dir))
        want0 = log_bytes(args.data_dir, topic, 0)
        if want0 <= 0:
            common.fail("%s: partition 0 has no bytes: %r" % (what, parts))
        common.expect("%s: partitions" % what, parts, {0: (want0, 0, False), 1: (0, 0, False)})
        summary["partition0_bytes"] = want0
    try:
        got = kp.describe_acls(ACLFilter(
            principal=None, host="*", operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePattern(KpResourceType.TOPIC, topic,
                                             ACLResourcePatternType.LITERAL)))
        common.fail("kafka-python describe_acls succeeded: %r" % (got,))
    except SecurityDisabledError as e:
        common.expect("kafka-python describe_acls message", str(e).split(": ", 1)[-1],
                      "No Authorizer is configured on the broker")
        summary["kafka_python_describe_acls"] = str(e)
    kp.close()

    # confluent-kafka: the ACL APIs answer SECURITY_DISABLED.
    any_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    got = admin.describe_acls(any_filter, request_timeout=args.timeout).result(args.timeout)
    common.expect("confluent describe_acls (error dropped by librdkafka)", got, [])
    bindings = [AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:%s" % u,
                           "*", AclOperation.READ, AclPermissionType.ALLOW)
                for u in ("alice", "bob")]
    codes, summary["create_acls"] = outcomes(
        admin.create_acls(bindings, request_timeout=args.timeout), args.timeout)
    common.expect("create_acls errors", codes, [KafkaError.SECURITY_DISABLED] * 2)
    codes, summary["delete_acls"] = outcomes(
        admin.delete_acls([any_filter], request_timeout=args.timeout), args.timeout)
    common.expect("delete_acls errors", codes, [KafkaError.SECURITY_DISABLED])

    summary["secs"] = t.secs()
    common.emit(summary)


if __name__ == "__main__":
    main()
