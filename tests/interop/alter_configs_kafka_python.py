"""kafka-python KafkaAdminClient.alter_configs(incremental=False) against broker-lite: the
legacy, non-incremental AlterConfigs (key 33, KIP-133).

Creates --topic with cleanup.policy=compact and retention.ms=1000, then:

* alter_configs(incremental=False) of retention.ms and max.message.bytes: kafka-python first
  reads the topic's modified configs (DescribeConfigs) and re-sends those it was not given,
  since the legacy request replaces the whole set; afterwards DescribeConfigs shows all three
  overrides as DYNAMIC_TOPIC_CONFIG, and a produce of a record over max.message.bytes fails
  with MessageSizeTooLargeError from the broker;
* the bare legacy request (kafka-python's own request path without that read-modify-write)
  listing only retention.ms: every other override reverts to its default (DEFAULT_CONFIG),
  and the large record is accepted again;
* validate_only changes nothing; an unknown topic, an unknown config name and an invalid
  value come back as UnknownTopicOrPartitionError / InvalidConfigurationError.

Prints one JSON summary line; exits non-zero on any failure.
"""

import argparse
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

try:
    from kafka import KafkaProducer
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
    from kafka.errors import MessageSizeTooLargeError
except ImportError as e:  # pragma: no cover
    common.fail("kafka-python is not installed in %s (%s); run scripts/setup-interop.sh"
                % (sys.executable, e))

KEYS = ("cleanup.policy", "retention.ms", "max.message.bytes")


def topic_resource(topic, configs=None):
    return ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)


def described(admin, topic):
    """{key: (value, source)} of KEYS, from DescribeConfigs (every config, not only modified)."""
    got = admin.describe_configs([topic_resource(topic)], config_filter="all")
    configs = got["topic"][topic]
    return {k: (configs[k]["value"], configs[k]["config_source"]) for k in KEYS}


def legacy_alter(admin, topic, configs, validate_only=False, raise_on_unknown=True):
    """alter_configs(incremental=False); returns kafka-python's result for the topic."""
    r = admin.alter_configs([topic_resource(topic, configs)], validate_only=validate_only,
                            raise_on_unknown=raise_on_unknown, incremental=False)
    return r["topic"][topic]


def bare_legacy_alter(admin, topic, configs):
    """The legacy AlterConfigs request exactly as given, without alter_configs' read-modify-
    write (kafka-python's internal send path; the version is pinned by setup-interop.sh)."""
    r = admin._manager.run(admin._send_alter_configs_requests,
                           [topic_resource(topic, configs)], False, False)
    return r["topic"][topic]


def produce_big(bootstrap, topic, size, timeout):
    """Produces one record with a `size`-byte value; returns None or the error's class name."""
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0,
                      max_request_size=4 * size)
    try:
        p.send(topic, value=b"x" * size, partition=0).get(timeout=timeout)
        return None
    except MessageSizeTooLargeError as e:
        return type(e).__name__
    finally:
        p.close(timeout=timeout)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="altcfg-" + uuid.uuid4().hex[:8])
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    topic = args.topic
    t = common.Timer()

    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap,
                             request_timeout_ms=int(args.timeout * 1000))
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs={
        "cleanup.policy": "compact", "retention.ms": "1000"})])

    common.expect("alter_configs(incremental=False)",
                  legacy_alter(admin, topic,
                               {"retention.ms": "60000", "max.message.bytes": "5000"}),
                  "OK")
    common.expect("after alter_configs", described(admin, topic), {
        "cleanup.policy": ("compact", "DYNAMIC_TOPIC_CONFIG"),
        "retention.ms": ("60000", "DYNAMIC_TOPIC_CONFIG"),
        "max.message.bytes": ("5000", "DYNAMIC_TOPIC_CONFIG"),
    })
    common.expect("8000-byte record over max.message.bytes=5000",
                  produce_big(args.bootstrap, topic, 8000, args.timeout),
                  "MessageSizeTooLargeError")

    common.expect("bare legacy AlterConfigs",
                  bare_legacy_alter(admin, topic, {"retention.ms": "120000"}), "OK")
    common.expect("after the bare request", described(admin, topic), {
        "cleanup.policy": ("delete", "DEFAULT_CONFIG"),
        "retention.ms": ("120000", "DYNAMIC_TOPIC_CONFIG"),
        "max.message.bytes": ("1048588", "DEFAULT_CONFIG"),
    })
    common.expect("8000-byte record at the default max.message.bytes",
                  produce_big(args.bootstrap, topic, 8000, args.timeout), None)

    common.expect("validate_only", legacy_alter(admin, topic, {"retention.ms": "5"},
                                                validate_only=True), "OK")
    common.expect("after validate_only", described(admin, topic)["retention.ms"],
                  ("120000", "DYNAMIC_TOPIC_CONFIG"))

    errors = {
        "unknown topic": bare_legacy_alter(admin, topic + "-ghost", {"retention.ms": "1"}),
        "unknown config": legacy_alter(admin, topic, {"no.such.config": "1"},
                                       raise_on_unknown=False),
        "invalid value": legacy_alter(admin, topic, {"retention.ms": "soon"}),
    }
    for what, prefix in [("unknown topic", "[Error 3] UnknownTopicOrPartitionError"),
                         ("unknown config", "[Error 40] InvalidConfigurationError"),
                         ("invalid value", "[Error 40] InvalidConfigurationError")]:
        if not str(errors[what]).startswith(prefix):
            common.fail("%s: got %r, want %s..." % (what, errors[what], prefix))
    common.expect("after the errors", described(admin, topic)["retention.ms"],
                  ("120000", "DYNAMIC_TOPIC_CONFIG"))
    admin.close()

    common.emit({"client": "kafka-python", "topic": topic, "errors": errors,
                 "secs": t.secs()})


if __name__ == "__main__":
    main()
