"""confluent-kafka (librdkafka) AdminClient.alter_configs (deprecated) against broker-lite: the
legacy, non-incremental AlterConfigs (key 33, KIP-133), which librdkafka sends as given.

Creates --topic with cleanup.policy=compact and retention.ms=1000, then:

* alter_configs of segment.bytes and max.message.bytes only: the two creation overrides
  revert to their defaults (DescribeConfigs: DEFAULT_CONFIG), the new ones are
  DYNAMIC_TOPIC_CONFIG, and a record over max.message.bytes is refused (MSG_SIZE_TOO_LARGE);
* validate_only changes nothing;
* an unknown topic, an unknown config name and an invalid value fail with
  UNKNOWN_TOPIC_OR_PART / INVALID_CONFIG, leaving the overrides as they were.

Prints one JSON summary line; exits non-zero on any failure.
"""

import argparse
import os
import sys
import uuid
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

try:
    from confluent_kafka import KafkaError, KafkaException, Producer
    from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic
except ImportError as e:  # pragma: no cover
    common.fail("confluent-kafka is not installed in %s (%s); run scripts/setup-interop.sh"
                % (sys.executable, e))

KEYS = ("cleanup.policy", "retention.ms", "segment.bytes", "max.message.bytes")
TOPIC_OVERRIDE = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
DEFAULT = ConfigSource.DEFAULT_CONFIG.value


def alter(admin, topic, configs, timeout, validate_only=False):
    """Legacy alter_configs of one topic: None on success, else the KafkaError code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        futures = admin.alter_configs([ConfigResource("topic", topic, set_config=configs)],
                                      validate_only=validate_only, request_timeout=timeout)
    for fut in futures.values():
        try:
            fut.result(timeout)
            return None
        except KafkaException as e:
            return e.args[0].code()
    common.fail("alter_configs returned no future")


def described(admin, topic, timeout):
    """{key: (value, source)} of KEYS."""
    for fut in admin.describe_configs([ConfigResource("topic", topic)],
                                      request_timeout=timeout).values():
        configs = fut.result(timeout)
        return {k: (configs[k].value, configs[k].source) for k in KEYS}
    common.fail("describe_configs returned no future")


def produce(bootstrap, topic, size, timeout):
    """One record with a `size`-byte value: None if stored, else the KafkaError code."""
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0,
                  "message.max.bytes": 4 * size})
    p.produce(topic, value=b"x" * size, partition=0,
              on_delivery=lambda err, _msg: errors.append(err))
    if p.flush(timeout):
        common.fail("record still undelivered after flush")
    return errors[0].code() if errors and errors[0] is not None else None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="altcfg-ck-" + uuid.uuid4().hex[:8])
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    topic, timeout = args.topic, args.timeout
    t = common.Timer()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for fut in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                             config={"cleanup.policy": "compact",
                                                     "retention.ms": "1000"})],
                                   operation_timeout=timeout).values():
        fut.result(timeout)

    common.expect("alter_configs",
                  alter(admin, topic, {"segment.bytes": "8192", "max.message.bytes": "5000"},
                        timeout),
                  None)
    replaced = {
        "cleanup.policy": ("delete", DEFAULT),
        "retention.ms": ("604800000", DEFAULT),
        "segment.bytes": ("8192", TOPIC_OVERRIDE),
        "max.message.bytes": ("5000", TOPIC_OVERRIDE),
    }
    common.expect("after alter_configs", described(admin, topic, timeout), replaced)
    common.expect("8000-byte record over max.message.bytes=5000",
                  produce(args.bootstrap, topic, 8000, timeout), KafkaError.MSG_SIZE_TOO_LARGE)
    common.expect("1000-byte record", produce(args.bootstrap, topic, 1000, timeout), None)

    common.expect("validate_only", alter(admin, topic, {"retention.ms": "5"}, timeout,
                                         validate_only=True), None)
    common.expect("after validate_only", described(admin, topic, timeout), replaced)

    errors = {
        "unknown topic": alter(admin, topic + "-ghost", {"retention.ms": "1"}, timeout),
        "unknown config": alter(admin, topic, {"no.such.config": "1"}, timeout),
        "invalid value": alter(admin, topic, {"retention.ms": "soon"}, timeout),
    }
    common.expect("errors", errors, {
        "unknown topic": KafkaError.UNKNOWN_TOPIC_OR_PART,
        "unknown config": KafkaError.INVALID_CONFIG,
        "invalid value": KafkaError.INVALID_CONFIG,
    })
    common.expect("after the errors", described(admin, topic, timeout), replaced)

    common.emit({"client": "confluent-kafka", "topic": topic,
                 "errors": {k: KafkaError(v).name() for k, v in errors.items()},
                 "secs": t.secs()})


if __name__ == "__main__":
    main()
