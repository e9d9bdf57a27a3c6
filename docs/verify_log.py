#!/usr/bin/env python3
"""Verify an agentriage decision log's hash chain by hand (see docs/audit.md).

    python3 verify_log.py decisions-000001.jsonl decisions-000002.jsonl ...

Checks, for every record in order: its hash (sha256 over the canonical
encoding of the record without its "hash" member), its "prev" (the previous
record's hash) and its "seq" (one more than the previous). Checkpoint
signatures are checked too when the `cryptography` package is installed.
Standard library only otherwise.
"""
import decimal
import hashlib
import json
import sys


def number(x):
    """ECMAScript Number.prototype.toString of a float (RFC 8785)."""
    if x == 0:
        return "0"
    sign, digits, exp = decimal.Decimal(repr(abs(x))).normalize().as_tuple()
    d = "".join(map(str, digits))
    k, n = len(d), exp + len(d)
    if k <= n <= 21:
        s = d + "0" * (n - k)
    elif 0 < n <= 21:
        s = d[:n] + "." + d[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * -n + d
    else:
        s = d[0] + ("." + d[1:] if k > 1 else "") + "e" + ("+" if n > 0 else "-") + str(abs(n - 1))
    return ("-" if x < 0 else "") + s


def canon(v):
    """RFC 8785 canonical JSON; integers keep their exact digits."""
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(canon(k) + ":" + canon(v[k]) for k in keys) + "}"
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return number(v)
    return json.dumps(v, ensure_ascii=False)


def check_signature(record):
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return None
    body = {k: v for k, v in record.items() if k not in ("hash", "signature")}
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(record["public_key"]))
    try:
        key.verify(bytes.fromhex(record["signature"]), canon(body).encode())
        return True
    except Exception:
        return False


def main(paths):
    prev, seq = "sha256:" + "0" * 64, 0
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        for n, line in enumerate(lines[:-1], 1):
            where = f"{path} line {n}"
            record = json.loads(line)
            body = {k: v for k, v in record.items() if k != "hash"}
            digest = "sha256:" + hashlib.sha256(canon(body).encode()).hexdigest()
            if digest != record["hash"]:
                return f"{where}: the record does not match its hash"
            if record["prev"] != prev or record["seq"] != seq:
                return f"{where}: the chain breaks (prev or seq)"
            if record["kind"] == "checkpoint" and check_signature(record) is False:
                return f"{where}: the checkpoint signature does not verify"
            prev, seq = record["hash"], seq + 1
        if lines[-1]:
            print(f"{path}: torn last line ({len(lines[-1])} bytes)")
    print(f"OK: {seq} records, last hash {prev}")
    return None


if __name__ == "__main__":
    problem = main(sys.argv[1:])
    if problem:
        print(problem)
        sys.exit(1)
