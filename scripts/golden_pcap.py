"""Tiny pcap reader + TCP stream reassembly (pure Python, no dependencies).

Reads a classic libpcap file (as written by `tcpdump -w`), extracts TCP
segments over IPv4/IPv6 and reassembles both directions of every connection
by sequence number (duplicates/retransmissions are tolerated, holes are
reported). Good enough for loopback captures.
"""

import struct

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276


class PcapError(Exception):
    pass


def read_pcap(path):
    """Yield (timestamp_float, linktype, packet_bytes, orig_len)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise PcapError("pcap file too short (%d bytes)" % len(data))
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise PcapError("not a classic pcap file (pcapng is not supported)")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    _vmaj, _vmin, _tz, _sig, _snap, linktype = struct.unpack_from(endian + "HHiIII", data, 4)
    linktype &= 0x0FFFFFFF
    pos = 24
    div = 1e9 if nano else 1e6
    while pos + 16 <= len(data):
        ts_s, ts_frac, incl, orig = struct.unpack_from(endian + "IIII", data, pos)
        pos += 16
        pkt = data[pos : pos + incl]
        pos += incl
        if len(pkt) < incl:
            break  # truncated trailing record (capture stopped mid-write)
        yield ts_s + ts_frac / div, linktype, pkt, orig


def _l3(linktype, pkt):
    """Return (ethertype, l3_bytes)."""
    if linktype == LINKTYPE_ETHERNET:
        et = struct.unpack_from(">H", pkt, 12)[0]
        off = 14
        while et in (0x8100, 0x88A8):
            et = struct.unpack_from(">H", pkt, off + 2)[0]
            off += 4
        return et, pkt[off:]
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.unpack_from(">H", pkt, 14)[0], pkt[16:]
    if linktype == LINKTYPE_LINUX_SLL2:
        return struct.unpack_from(">H", pkt, 0)[0], pkt[20:]
    if linktype == LINKTYPE_NULL:
        fam = struct.unpack_from("<I", pkt, 0)[0]
        if fam > 0xFFFF:
            fam = struct.unpack_from(">I", pkt, 0)[0]
        return (0x0800 if fam == 2 else 0x86DD), pkt[4:]
    if linktype == LINKTYPE_RAW:
        v = pkt[0] >> 4
        return (0x0800 if v == 4 else 0x86DD), pkt
    raise PcapError("unsupported linktype %d" % linktype)


def tcp_segments(path):
    """Yield dicts: ts, src, dst (ip, port), seq, flags, payload."""
    import ipaddress

    for ts, linktype, pkt, orig in read_pcap(path):
        if len(pkt) < orig:
            raise PcapError("packet truncated by snaplen (%d < %d); capture with -s 0" % (len(pkt), orig))
        et, l3 = _l3(linktype, pkt)
        if et == 0x0800:
            ihl = (l3[0] & 0x0F) * 4
            total = struct.unpack_from(">H", l3, 2)[0]
            proto = l3[9]
            src_ip = str(ipaddress.IPv4Address(l3[12:16]))
            dst_ip = str(ipaddress.IPv4Address(l3[16:20]))
            if total == 0:  # TSO/GSO on some captures: use the captured length
                total = len(l3)
            l4 = l3[ihl:total]
        elif et == 0x86DD:
            plen = struct.unpack_from(">H", l3, 4)[0]
            proto = l3[6]
            src_ip = str(ipaddress.IPv6Address(l3[8:24]))
            dst_ip = str(ipaddress.IPv6Address(l3[24:40]))
            l4 = l3[40 : 40 + plen] if plen else l3[40:]
            # (extension headers are not expected on loopback)
        else:
            continue
        if proto != 6:
            continue
        sport, dport, seq, _ack, off_flags = struct.unpack_from(">HHIIH", l4, 0)
        doff = (off_flags >> 12) * 4
        flags = off_flags & 0x1FF
        yield {
            "ts": ts,
            "src": (src_ip, sport),
            "dst": (dst_ip, dport),
            "seq": seq,
            "flags": flags,
            "payload": bytes(l4[doff:]),
        }


SYN, FIN, RST = 0x02, 0x01, 0x04


class HalfStream:
    """One direction of a TCP connection."""

    def __init__(self):
        self.isn = None
        self.chunks = {}  # relative offset -> (bytes, ts)
        self.fin = False
        self.rst = False

    def add(self, seg):
        if seg["flags"] & SYN:
            self.isn = seg["seq"]
        if seg["flags"] & FIN:
            self.fin = True
        if seg["flags"] & RST:
            self.rst = True
        if seg["payload"]:
            if self.isn is None:
                raise PcapError("payload before SYN (capture started mid-connection)")
            rel = (seg["seq"] - self.isn - 1) & 0xFFFFFFFF
            prev = self.chunks.get(rel)
            if prev is None or len(prev[0]) < len(seg["payload"]):
                self.chunks[rel] = (seg["payload"], seg["ts"] if prev is None else prev[1])

    def assemble(self):
        """Return (bytes, [(offset, ts)...]) or raise on holes."""
        data = bytearray()
        marks = []
        for rel in sorted(self.chunks):
            payload, ts = self.chunks[rel]
            if rel > len(data):
                raise PcapError("hole in TCP stream at offset %d (missing %d bytes)" % (len(data), rel - len(data)))
            overlap = len(data) - rel
            if overlap >= len(payload):
                continue  # pure retransmission
            if data[rel:] != payload[:overlap]:
                raise PcapError("retransmitted bytes differ at offset %d" % rel)
            marks.append((len(data), ts))
            data += payload[overlap:]
        return bytes(data), marks


def reassemble(path, server_ports=None):
    """Return a list of connections (in order of SYN):
    {client: (ip,port), server: (ip,port), c2s: bytes, s2c: bytes,
     c2s_marks, s2c_marks, start_ts, closed}
    A connection's server is the side that received the SYN.
    Only connections whose server port is in server_ports (if given)."""
    conns = {}
    order = []
    for seg in tcp_segments(path):
        key = frozenset((seg["src"], seg["dst"]))
        c = conns.get(key)
        if seg["flags"] & SYN and not seg["flags"] & 0x10:  # SYN without ACK
            if server_ports is not None and seg["dst"][1] not in server_ports:
                continue
            if c is not None:
                # port reuse: retire the old connection under a unique key
                conns[(key, len(order))] = c
            c = {
                "client": seg["src"],
                "server": seg["dst"],
                "c2s_h": HalfStream(),
                "s2c_h": HalfStream(),
                "start_ts": seg["ts"],
            }
            conns[key] = c
            order.append(c)
        if c is None:
            continue
        half = c["c2s_h"] if seg["src"] == c["client"] else c["s2c_h"]
        half.add(seg)
    out = []
    for c in order:
        c2s, c2s_marks = c["c2s_h"].assemble()
        s2c, s2c_marks = c["s2c_h"].assemble()
        out.append(
            {
                "client": c["client"],
                "server": c["server"],
                "c2s": c2s,
                "s2c": s2c,
                "c2s_marks": c2s_marks,
                "s2c_marks": s2c_marks,
                "start_ts": c["start_ts"],
                "closed": c["c2s_h"].fin or c["s2c_h"].fin or c["c2s_h"].rst or c["s2c_h"].rst,
            }
        )
    return out


def ts_at(marks, offset):
    """Timestamp of the segment that carried byte `offset`."""
    best = None
    for off, ts in marks:
        if off <= offset:
            best = ts
        else:
            break
    return best


def split_frames(data):
    """Split a Kafka stream into size-prefixed frames.
    Returns (frames [(offset_of_payload, payload)], leftover_bytes)."""
    frames = []
    pos = 0
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from(">i", data, pos)
        if n < 0 or pos + 4 + n > len(data):
            break
        frames.append((pos + 4, data[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return frames, len(data) - pos
