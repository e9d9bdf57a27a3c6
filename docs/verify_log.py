#!/usr/bin/env python3
"""Verify an agentriage decision log by hand (see docs/audit.md).

    python3 verify_log.py --key PUBHEX decisions-000001.jsonl decisions-000002.jsonl ...
    python3 verify_log.py --key PUBHEX --allow-unsigned-tail decisions-*.jsonl
    python3 verify_log.py --chain-only decisions-*.jsonl

Checks, for every record in order: that no object repeats a member name,
its hash (sha256 over the canonical encoding of the record without its
"hash" member), its "prev" (the previous record's hash) and its "seq" (one
more than the previous). With --key (needs the `cryptography` package):
every checkpoint is signed by that key, every file but the last ends with a
checkpoint, and every record is covered by a checkpoint (records after the
last one only with --allow-unsigned-tail, and only when there is one).
Without --key the chain is checked but integrity is unproven: exit 3,
unless --chain-only. Exit codes: 0 intact, 1 a problem, 2 usage, 3 unproven.
Standard library only otherwise.
"""
import argparse
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


def check_signature(record, key):
    """Whether the checkpoint is signed by `key` (hex), or by the key it
    names when `key` is None; None when `cryptography` is missing."""
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return None
    if key is not None and record["public_key"].lower() != key.lower():
        return False
    body = {k: v for k, v in record.items() if k not in ("hash", "signature")}
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(record["public_key"]))
    try:
        public.verify(bytes.fromhex(record["signature"]), canon(body).encode())
        return True
    except Exception:
        return False


def unique(pairs):
    """json.loads hook refusing a repeated member name."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"repeated member `{k}`")
        out[k] = v
    return out


def main(paths, key=None, allow_unsigned_tail=False, chain_only=False):
    """Returns (exit code, message)."""
    if key is not None:
        try:
            import cryptography  # noqa: F401
        except ImportError:
            return 2, "--key needs the `cryptography` package to check signatures"
        if len(key) != 64 or any(c not in "0123456789abcdefABCDEF" for c in key):
            return 2, "--key: a public key is 64 hex digits"
    prev, seq = "sha256:" + "0" * 64, 0
    checkpoints, tail, tail_start, last_kind = 0, 0, None, None
    for i, path in enumerate(paths):
        with open(path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        for n, line in enumerate(lines[:-1], 1):
            where = f"{path} line {n}"
            try:
                record = json.loads(line, object_pairs_hook=unique)
            except ValueError as e:
                return 1, f"{where}: {e}"
            body = {k: v for k, v in record.items() if k != "hash"}
            digest = "sha256:" + hashlib.sha256(canon(body).encode()).hexdigest()
            if digest != record["hash"]:
                return 1, f"{where}: the record does not match its hash"
            if record["prev"] != prev or record["seq"] != seq:
                return 1, f"{where}: the chain breaks (prev or seq)"
            if record["kind"] == "checkpoint":
                if check_signature(record, key) is False:
                    return 1, f"{where}: the checkpoint signature does not verify with the key"
                checkpoints, tail = checkpoints + 1, 0
            else:
                if tail == 0:
                    tail_start = (where, seq)
                tail += 1
            last_kind = record["kind"]
            prev, seq = record["hash"], seq + 1
        if lines[-1]:
            print(f"{path}: torn last line ({len(lines[-1])} bytes)")
        if key is not None and i + 1 < len(paths) and last_kind != "checkpoint":
            return 1, f"{path}: unsigned segment: the file does not end with a signed checkpoint"
    summary = f"{seq} records, {checkpoints} checkpoints, last hash {prev}"
    if key is None:
        if chain_only:
            return 0, f"CHAIN OK (integrity unproven: no --key): {summary}"
        return 3, f"UNPROVEN: the chain links up but integrity is unproven without --key: {summary}"
    if tail:
        where, first = tail_start
        span = f"{tail} records (seq {first} to {seq - 1}) after the last checkpoint"
        if checkpoints == 0:
            return 1, f"{where}: unsigned tail: no checkpoint signed by the key covers any of the {span}"
        if not allow_unsigned_tail:
            return 1, f"{where}: unsigned tail: {span} are not covered by a signature"
        return 0, f"OK except the accepted unsigned tail of {span}: {summary}"
    return 0, f"OK: every record is covered by a checkpoint signed by the key: {summary}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Verify an agentriage decision log.")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--key", help="the host's public key, 64 hex digits")
    parser.add_argument("--allow-unsigned-tail", action="store_true")
    parser.add_argument("--chain-only", action="store_true")
    args = parser.parse_args()
    if args.allow_unsigned_tail and args.key is None:
        parser.error("--allow-unsigned-tail needs --key")
    if args.chain_only and args.key is not None:
        parser.error("--chain-only and --key exclude each other")
    code, message = main(args.files, args.key, args.allow_unsigned_tail, args.chain_only)
    print(message)
    sys.exit(code)
