#!/usr/bin/env python3
"""Writes the hand-made seed corpora of the fuzz targets under tests/fuzz/corpus/ (committed; run
again after changing the wire format or the op encoding of fuzz_policy.cpp):
  frame/      one frame of each message type, a stream of all of them cut into chunks, a malformed one
  config/     resource-config.txt, small good and bad configs
  admission/  tests/webhook/fixtures/*.json (AdmissionReviews) and a few bad bodies
  policy/     op sequences for fuzz_policy.cpp (see its header for the encoding)
  memory/     op sequences for fuzz_memory.cpp (see its header for the encoding)
Inputs that crash today never go here (CI runs from these): they are in tests/fuzz/crashes/. Seeds named
known-* (crashes since fixed, kept as regression seeds) are left in place."""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")

MAGIC, VERSION = 0x47454D31, 3
(HELLO, SETTINGS, REQUEST, GRANT, RELEASE, ERROR, RENEW, HEARTBEAT, REVOKE,
 MEM_RESERVE, MEM_RETURN, MEM_QUERY, MEM_STATE, MEM_USAGE, EVICT) = range(1, 16)


def s(text):
    b = text.encode()
    return struct.pack(">H", len(b)) + b


def frame(mtype, payload, request_id=1):
    return struct.pack(">IHHQI", MAGIC, VERSION, mtype, request_id, len(payload)) + payload


FRAMES = {
    "hello-hook": frame(HELLO, b"\x01" + s("team-a/pod-1") + s("") + struct.pack(">IB", 4242, 0) + s("")),
    "hello-pmgr-declared": frame(
        HELLO,
        b"\x02" + s("client1") + s("GPU-8a6c1d2e-0000-1111-2222-333344445555")
        + struct.pack(">IBIIQI", 77, 1, 300000, 1000000, 4 << 30, 1) + s("s3cret-of-client1")),
    "hello-memory": frame(
        HELLO, b"\x03" + s("team-a/pod-1") + s("GPU-fa4e0000-0000-0000-0000-00000000000d")
        + struct.pack(">IB", 4243, 0) + s("")),
    "settings": frame(SETTINGS, struct.pack(">IIQI", 300000, 1000000, 4 << 30, 0), 0),
    "settings-um": frame(SETTINGS, struct.pack(">IIQI", 0, 1000000, 0, 1), 0),
    "request": frame(REQUEST, struct.pack(">Q", 12000), 7),
    "grant": frame(GRANT, struct.pack(">Q", 250000), 7),
    "release": frame(RELEASE, struct.pack(">QQQQB", 180000, 9000, 5_000_000, 5_200_000, 0), 8),
    "release-again": frame(RELEASE, struct.pack(">QQQQBQ", 2**64 - 1, 2**63, 0, 2**63 + 5, 1, 2**64 - 1), 9),
    "error": frame(ERROR, struct.pack(">H", 1) + s("client 'x' is not in resource-config.txt"), 2),
    "renew": frame(RENEW, struct.pack(">QQ", 250000, 40000), 10),
    "heartbeat": frame(HEARTBEAT, b"", 0),
    "revoke": frame(REVOKE, struct.pack(">Q", 750000), 0),
    "mem-reserve": frame(MEM_RESERVE, struct.pack(">QQB", 1 << 20, 64 << 20, 0), 11),
    "mem-reserve-existing": frame(MEM_RESERVE, struct.pack(">QQB", 2**64 - 1, 2**50 + 1, 1), 12),
    "mem-return": frame(MEM_RETURN, struct.pack(">Q", 32 << 20), 13),
    "mem-query": frame(MEM_QUERY, b"", 14),
    "mem-state": frame(MEM_STATE, struct.pack(">QQQI", 4 << 30, 1 << 30, 64 << 20, 0), 11),
    "mem-state-push": frame(MEM_STATE, struct.pack(">QQQI", 2 << 30, 3 << 30, 0, 1), 0),
    "mem-usage": frame(MEM_USAGE, struct.pack(">QI", 256 << 20, 1), 0),
    "mem-usage-extreme": frame(MEM_USAGE, struct.pack(">QI", 2**64 - 1, 2**32 - 1), 0),
    "evict": frame(EVICT, b"", 0),
}


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def frame_seeds():
    # Input: k (low 4 bits), k u16 split offsets, then the stream.
    for name, fr in FRAMES.items():
        write("frame", name, b"\x00" + fr)
    stream = b"".join(FRAMES.values())
    cuts = [1, 19, 20, 21, 60, 61, 200, len(stream) - 1]
    write("frame", "all-chunked", bytes([len(cuts)]) + b"".join(struct.pack(">H", c) for c in cuts) + stream)
    write("frame", "all-bytewise-start", b"\x0f" + b"".join(struct.pack(">H", c) for c in range(1, 16)) + stream)
    bad = frame(REQUEST, struct.pack(">Q", 1) + b"\x00")  # a trailing byte
    write("frame", "malformed-after-two", b"\x02\x00\x05\x00\x2a" + FRAMES["request"] + FRAMES["grant"] + bad)


CONFIGS = {
    "three": "3\nns/a 0.2 0.5 1.5GiB\nns/b 0.3 1 0\nc 0.5 0.5 512MiB # trailing comment\n",
    "crlf-bom": "\ufeff1\r\nclient1 0 1 4Gi\r\n",
    "sum-slack": "3\na 0.1 1 0\nb 0.2 1 0\nc 0.7 1 0\n",
    "exponent": "2\nx 1e-1 2.5e-1 10KB\ny 0 0 1T\n",
    "bad-sum": "2\na 0.6 1 0\nb 0.5 1 0\n",
    "bad-dup": "2\na 0.1 1 0\na 0.1 1 0\n",
    "bad-count": "3\na 0.1 1 0\n",
    "bad-size": "1\na 0.1 1 1.5\n",
    "bad-limit": "1\na 0.5 0.4 0\n",
    "bad-nan": "1\na nan 1 0\n",
    "bad-id": "1\nbad$id 0 1 0\n",
    "bad-fields": "1\na 0.1\n",
    "empty": "# nothing\n\n",
}


def config_seeds():
    shutil.copyfile(os.path.join(ROOT, "resource-config.txt"), os.path.join(CORPUS, "config", "resource-config.txt"))
    for name, text in CONFIGS.items():
        write("config", name, text.encode())


def admission_seeds():
    fixtures = os.path.join(ROOT, "tests", "webhook", "fixtures")
    for name in sorted(os.listdir(fixtures)):
        if name.endswith(".json"):
            with open(os.path.join(fixtures, name), "rb") as f:
                write("admission", name, f.read())
    write("admission", "not-json", b"{\"kind\": ")
    write("admission", "deep", b"[" * 70 + b"]" * 70)
    write("admission", "no-uid", b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}')


# fuzz_policy.cpp ops
SET, REQ, REL, RENEW_, DISC, SCHED, ADV, ADV_BIG, ADV_EVENT = range(9)
GRANTED, TAKE, GIVE, LOST, FINISH, RESET, GIVE_NOW, FINISH_RELEASE = range(9, 17)
A, B, C, D, UNKNOWN = range(5)


def u64(v):
    return struct.pack(">Q", v % 2**64)


def header(opts, start):
    return bytes([opts]) + struct.pack(">I", start)


def set_clients(*shares):
    mask = 0
    body = b""
    for i, (r, l) in enumerate(shares):
        if r is None:
            continue
        mask |= 1 << i
        body += bytes([r, l])
    return bytes([SET, mask]) + body


def policy_seeds():
    two = set_clients((77, 255), (255, 255))  # a: 0.3 / 1, b: the rest / 1
    cycle = (bytes([REQ, A]) + u64(0) + bytes([REQ, B]) + u64(30000) + bytes([SCHED, ADV]) + struct.pack(">H", 50000)
             + bytes([REL, A]) + u64(40000) + u64(20000) + b"\x01" + bytes([SCHED, ADV_EVENT, SCHED]))
    write("policy", "two-clients", header(0, 1000000) + two + cycle * 4)
    write("policy", "renew", header(1, 5) + set_clients((0, 128)) + bytes([REQ, A]) + u64(500) + bytes([SCHED])
          + bytes([ADV_BIG]) + u64(1000) + bytes([RENEW_, A]) + u64(1000) + u64(700) + bytes([DISC, A, SCHED]))
    write("policy", "limit-wait", header(2, 0) + set_clients((0, 40), (0, 255)) + (bytes([REQ, A]) + u64(2)
          + bytes([SCHED, ADV_EVENT, SCHED, ADV]) + b"\x00\x09") * 6)
    write("policy", "wire-extremes", header(0, 123456) + set_clients((0, 255), (1, 2)) + bytes([REQ, A]) + u64(-1)
          + bytes([SCHED, REL, A]) + u64(2**63) + u64(-5) + b"\x00" + bytes([REQ, B]) + u64(2**63 - 1)
          + bytes([SCHED, RENEW_, B]) + u64(-1) + u64(-1) + bytes([ADV_BIG]) + u64(-1) + bytes([SCHED, DISC, UNKNOWN]))
    write("policy", "reconfig", header(0, 99) + set_clients((100, 200), (50, 255), (20, 20)) + bytes([REQ, C]) + u64(0)
          + bytes([SCHED]) + set_clients((None, 0), (50, 255)) + bytes([SCHED]) + set_clients((255, 255)))
    token = (bytes([GRANTED]) + u64(250000) + bytes([TAKE, 0, TAKE, 1, ADV]) + b"\x10\x00"
             + bytes([GIVE_NOW, 0]) + struct.pack(">IHI", 3000, 100, 800) + bytes([GIVE_NOW, 1])
             + struct.pack(">IHI", 4000, 0, 900) + bytes([ADV]) + b"\x00\x10")
    write("policy", "token-share", header(0, 10**9) + token + bytes([FINISH]) + token + bytes([TAKE, 2, LOST, 2, RESET]))
    write("policy", "pmgr-to-schd", header(0, 10**9) + two + bytes([REQ, A]) + u64(0) + bytes([SCHED]) + token
          + bytes([FINISH_RELEASE, A, SCHED]))
    write("policy", "give-back-wire", header(1, 10**6) + bytes([GRANTED]) + u64(1000) + bytes([TAKE, 3, GIVE, 3])
          + u64(500) + u64(10**6 + 400) + u64(100) + bytes([FINISH]))


# fuzz_memory.cpp ops
(M_HELLO, M_LIMIT, M_RESERVE, M_RETURN, M_QUERY, M_GONE, M_USAGE, M_CONFIGURE, M_GRANT, M_FORGET,
 M_TICK) = range(11)
MIB = 1 << 20


def memory_seeds():
    def reserve(h, need, want, existing=0):
        return bytes([M_RESERVE, h]) + u64(need) + u64(want) + bytes([existing])

    limit = bytes([M_LIMIT]) + u64(256 * MIB) + b"\x00"
    # Issue 21: 2^64-1 declared as held, and 20 made-up UUIDs x 256 MiB, against GPU_MEM 256 MiB.
    write("memory", "existing-max", bytes([M_HELLO, 0, 0, M_HELLO, 1, 1]) + limit + reserve(0, 100 * MIB, 100 * MIB)
          + reserve(1, 2**64 - 1, 2**64 - 1, 1) + reserve(1, 1, 1, 1) + bytes([M_RETURN, 1]) + u64(2**64 - 1))
    many = b"".join(bytes([M_HELLO, h, h]) for h in range(6))
    write("memory", "many-uuids", many + limit + b"".join(reserve(h, 256 * MIB, 256 * MIB) for h in range(6))
          + bytes([M_GONE, 2]) + reserve(3, 64 * MIB, 64 * MIB))
    write("memory", "deferred", bytes([M_HELLO, 0, 0]) + reserve(0, MIB, 64 * MIB) + bytes([M_QUERY, 0, M_TICK, 1, 0])
          + limit + bytes([M_LIMIT]) + u64(64 * MIB) + b"\x01")
    usage = (bytes([M_USAGE, 0]) + u64(2**64 - 1) + b"\x01" + u64(256 * MIB)
             + bytes([M_USAGE, 1]) + u64(256 * MIB) + b"\x00" + u64(256 * MIB)
             + bytes([M_USAGE, 2]) + u64(3 << 30) + b"\x01" + u64(0))
    write("memory", "residency", usage + bytes([M_GRANT, 1, M_GRANT, 2, M_GRANT, 0]) + bytes([M_CONFIGURE, 1]) + u64(0)
          + b"\x01" + bytes([M_GRANT, 0, M_FORGET, 2, M_GRANT, 3]))


def main():
    # Seeds named known-* are fixed crashes added by hand (docs/fuzzing.md): kept.
    for t in ("frame", "config", "admission", "policy", "memory"):
        d = os.path.join(CORPUS, t)
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            if not name.startswith("known-"):
                os.remove(os.path.join(d, name))
    frame_seeds()
    config_seeds()
    admission_seeds()
    policy_seeds()
    memory_seeds()


if __name__ == "__main__":
    main()
