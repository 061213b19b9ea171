#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from proto/vectors/*.json.

Usage: scripts/fuzz_seeds.py CORPUS_DIR. Deterministic: the same vectors give the same
files. Called by scripts/fuzz.sh; the corpora are not committed.
"""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
KINDS = ["intent", "intent-withdraw", "offer", "vendor-profile", "order", "review"]
BODY_TARGET = {
    "intent": "body_intent",
    "intent-withdraw": "body_withdraw",
    "offer": "body_offer",
    "vendor-profile": "body_profile",
    "review": "body_review",
}


def head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes([major << 5 | info]) + n.to_bytes(width, "big")
    raise ValueError(n)


def cbor_bytes(b):
    return head(2, len(b)) + b


def cbor_text(s):
    b = s.encode()
    return head(3, len(b)) + b


def read_item(buf, pos):
    """One definite-length CBOR item of the envelope map (uint, bytes, text): value, end."""
    first = buf[pos]
    major, info = first >> 5, first & 0x1F
    pos += 1
    if info < 24:
        n = info
    else:
        width = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        n = int.from_bytes(buf[pos : pos + width], "big")
        pos += width
    if major == 0:
        return n, pos
    if major in (2, 3):
        data = buf[pos : pos + n]
        return (data.decode() if major == 3 else data), pos + n
    raise ValueError(f"unexpected major type {major}")


def envelope_fields(wire):
    """The fields of an envelope map, or None if the bytes are not one (some vectors)."""
    try:
        first = wire[0]
        if first >> 5 != 5:
            return None
        count, pos, fields = first & 0x1F, 1, {}
        for _ in range(count):
            key, pos = read_item(wire, pos)
            value, pos = read_item(wire, pos)
            fields[key] = value
        return fields
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def api_examples():
    yield {"category": "books", "text": "a novel"}
    yield {
        "category": "travel",
        "subcategory": "lodging",
        "text": "A quiet double room for two nights",
        "max_price": "300.00",
        "currency": "EUR",
        "place": "Lisbon",
        "dates": {"from": "2027-01-12", "to": "2027-01-14"},
        "quantity": 1,
        "terms": [{"id": "no-tracking", "required": True}, {"id": "no-resale"}],
        "expires_in_secs": 86400,
    }
    yield {"category": "books", "text": "x", "max_price": "12.5", "currency": "USD"}
    yield {"category": "books", "text": "x", "max_price": "12", "currency": None}
    yield {"category": "nope", "text": ""}
    yield {"category": "books", "text": "x", "dates": {"from": "2027-02-30", "to": "2027-01-01"}}
    yield {"category": "books", "text": "x", "quantity": 0, "expires_in_secs": 18446744073709551615}


def main():
    out = pathlib.Path(sys.argv[1])
    corpora = {}

    def seed(target, name, data):
        corpora.setdefault(target, {})[name] = data

    vectors = sorted((ROOT / "proto" / "vectors").glob("*.json"))
    wires = []
    for path in vectors:
        vector = json.loads(path.read_text())
        name = path.stem
        wire = bytes.fromhex(vector["envelope_hex"])
        wires.append(wire)
        seed("envelope_decode", name, wire)
        seed("service_protocol", "opened-" + name, b"\x03" + wire)
        fields = envelope_fields(wire)
        if fields and isinstance(fields.get("body"), bytes) and fields.get("kind") in KINDS:
            kind, body = fields["kind"], fields["body"]
            seed("signed_body", name, bytes([KINDS.index(kind)]) + body)
            if kind in BODY_TARGET:
                seed(BODY_TARGET[kind], name, body)
    # service_protocol: the first byte picks the stream (fuzz/fuzz_targets/service_protocol.rs).
    service = json.loads((ROOT / "proto" / "service-vectors.json").read_text())
    modes = {"mailbox-deposit": 0, "mailbox-fetch": 0, "mailbox-deposited": 1, "mailbox-items": 1,
             "mailbox-refused": 1, "mailbox-push": 2, "light-push-request": 4,
             "light-push-published": 5, "light-push-refused": 5, "filter-push": 4,
             "filter-subscribe": 6, "filter-subscribed": 7, "filter-refused": 7,
             "catch-up-list": 8, "catch-up-fetch": 8, "catch-up-listed": 9,
             "catch-up-messages": 9, "catch-up-refused": 9, "peers-request": 10,
             "peers-answer": 11, "peers-refused": 11}
    for message in service["messages"]:
        if message["name"] in modes:
            seed("service_protocol", message["name"],
                 bytes([modes[message["name"]]]) + bytes.fromhex(message["cbor_hex"]))
    for i, example in enumerate(api_examples()):
        seed("api_json", f"cast-{i}", json.dumps(example).encode())
    # verify_batch: a count byte, then items; mode 2 is a vector by index, the other modes
    # build envelopes from the bytes that follow (fuzz/fuzz_targets/verify_batch.rs).
    n = len(wires)
    seed("verify_batch", "all-vectors", bytes([min(n, 12) - 1]) + b"".join(bytes([2, i]) for i in range(min(n, 12))))
    for mode in range(8):
        item = bytes([mode, 1, 2, 16]) + bytes(range(16)) + bytes([3, 5, 7, 9, 11, 13, 15, 17, 19, 21])
        honest = bytes([0, 0, 0, 8]) + b"a valid!"
        seed("verify_batch", f"mode-{mode}", bytes([3]) + honest + item + honest + bytes([2, mode]))
    for target, seeds in corpora.items():
        directory = out / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (directory / f"seed-{name}").write_bytes(data)
    for target in sorted(corpora):
        print(f"{target}: {len(corpora[target])} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
