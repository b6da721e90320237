"""Kafka record batch (magic v2) parsing for golden-vector checks.

Parses the bytes of a `records` field (one or more v2 record batches),
verifies each batch's CRC-32C, decompresses (gzip, snappy incl. xerial
framing, lz4 frame, zstd) and decodes the records.
"""

import gzip
import struct

from golden_codec import Reader, DecodeError, read_varint

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

# ---------------------------------------------------------------- CRC-32C

_CRC32C_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    tbl = _CRC32C_TABLE
    for b in data:
        crc = tbl[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------- codecs

_XERIAL_MAGIC = b"\x82SNAPPY\x00"


def decompress(codec, data):
    if codec == 0:
        return data
    if codec == 1:
        return gzip.decompress(data)
    if codec == 2:
        import cramjam

        if data.startswith(_XERIAL_MAGIC):
            # xerial snappy-java framing: 16-byte header, then
            # (int32 length, raw snappy block)*
            out = bytearray()
            pos = 16
            while pos < len(data):
                (n,) = struct.unpack_from(">i", data, pos)
                pos += 4
                out += bytes(cramjam.snappy.decompress_raw(data[pos : pos + n]))
                pos += n
            return bytes(out)
        return bytes(cramjam.snappy.decompress_raw(data))
    if codec == 3:
        import lz4.frame

        return lz4.frame.decompress(data)
    if codec == 4:
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise DecodeError("unknown compression codec %d" % codec)


def snappy_framing(data):
    return "xerial" if data.startswith(_XERIAL_MAGIC) else "raw"


# ---------------------------------------------------------------- records


def _varbytes(r):
    n = read_varint(r)
    if n < 0:
        return None
    return bytes(r.take(n))


def parse_records(data, count):
    r = Reader(data)
    out = []
    for _ in range(count):
        length = read_varint(r)
        end = r.pos + length
        sub = Reader(data, r.pos, end)
        attrs = sub.take(1)[0]
        ts_delta = read_varint(sub)
        off_delta = read_varint(sub)
        key = _varbytes(sub)
        value = _varbytes(sub)
        nh = read_varint(sub)
        headers = []
        for _ in range(nh):
            hk = _varbytes(sub)
            hv = _varbytes(sub)
            headers.append((hk.decode("utf-8"), hv))
        if sub.pos != end:
            raise DecodeError("record has %d trailing bytes" % (end - sub.pos))
        r.pos = end
        out.append(
            {
                "attributes": attrs,
                "timestamp_delta": ts_delta,
                "offset_delta": off_delta,
                "key": key,
                "value": value,
                "headers": headers,
            }
        )
    if r.remaining():
        raise DecodeError("%d trailing bytes after %d records" % (r.remaining(), count))
    return out


def parse_batches(data):
    """Parse a records field into a list of batch dicts (magic 2 only)."""
    batches = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 17:
            raise DecodeError("truncated batch header at %d" % pos)
        base_offset, batch_len, _ple, magic = struct.unpack_from(">qiib", data, pos)
        if magic != 2:
            raise DecodeError("record batch magic %d (only v2 supported)" % magic)
        end = pos + 12 + batch_len
        if end > len(data):
            raise DecodeError("truncated batch at %d (len %d)" % (pos, batch_len))
        (crc,) = struct.unpack_from(">I", data, pos + 17)
        crc_calc = crc32c(data[pos + 21 : end])
        if crc != crc_calc:
            raise DecodeError("batch CRC mismatch: 0x%08x != 0x%08x" % (crc, crc_calc))
        (attrs, last_off_delta, base_ts, max_ts, pid, epoch, base_seq, count) = struct.unpack_from(
            ">hiqqqhii", data, pos + 21
        )
        codec = attrs & 0x7
        payload = data[pos + 61 : end]
        raw = decompress(codec, payload)
        records = parse_records(raw, count)
        batches.append(
            {
                "base_offset": base_offset,
                "batch_length": batch_len,
                "partition_leader_epoch": _ple,
                "magic": magic,
                "crc": crc,
                "attributes": attrs,
                "compression": CODECS.get(codec, str(codec)),
                "snappy_framing": snappy_framing(payload) if codec == 2 else None,
                "timestamp_type": "log_append" if attrs & 0x8 else "create",
                "is_transactional": bool(attrs & 0x10),
                "is_control": bool(attrs & 0x20),
                "last_offset_delta": last_off_delta,
                "base_timestamp": base_ts,
                "max_timestamp": max_ts,
                "producer_id": pid,
                "producer_epoch": epoch,
                "base_sequence": base_seq,
                "records_count": count,
                "records": records,
                "compressed_size": len(payload),
                "uncompressed_size": len(raw),
            }
        )
        pos = end
    return batches


def text_or_hex(b):
    """JSON-friendly representation of a key/value/header value."""
    if b is None:
        return None
    try:
        s = b.decode("utf-8")
        if all(c.isprintable() or c in "\n\t" for c in s):
            return {"utf8": s}
    except UnicodeDecodeError:
        pass
    return {"hex": b.hex()}
