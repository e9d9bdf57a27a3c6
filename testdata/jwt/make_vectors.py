#!/usr/bin/env python3
"""Writes testdata/jwt/vectors.json: JSON Web Tokens made by PyJWT and
`cryptography`, and what the real OPA engine answers for each call of
`io.jwt.*` and `crypto.*` on them.

Run with a Python that has `pyjwt`, `cryptography` and
`opa-golib-python-bindings` (module `opa_bindings`):

    python testdata/jwt/make_vectors.py > testdata/jwt/vectors.json

Each case is `{"name", "call", "args", "opa"}`: `call` is the builtin,
`args` its arguments, `opa` the value OPA returns, or the string
`"<error>"` when OPA's call fails (agentriage then fails the evaluation, so
the decision fails closed). A case with an `agentriage` member is one where
agentriage knowingly answers otherwise; that answer is always `"<error>"`.
"""

import base64
import datetime
import json
import sys

import jwt
import opa_bindings
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

T0 = 1_800_000_000  # seconds; the `time` constraint is given in nanoseconds
NS = 1_000_000_000
SECRET = "a-shared-secret-of-at-least-32-bytes!"


def pem_public(key):
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def pem_cert(key, sign_with):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agentriage test")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1234567)
        .not_valid_before(datetime.datetime(2020, 1, 1))
        .not_valid_after(datetime.datetime(2040, 1, 1))
    )
    algorithm = None if isinstance(sign_with, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(sign_with, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def jwk(algorithm, key, **extra):
    d = json.loads(algorithm.to_jwk(key.public_key()))
    d.update(extra)
    return json.dumps(d)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tamper(token):
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}.{b64(bytes(raw))}"


def swap_payload(token, claims):
    head, _, sig = token.split(".")
    return f"{head}.{b64(json.dumps(claims).encode())}.{sig}"


ed = ed25519.Ed25519PrivateKey.generate()
ed_other = ed25519.Ed25519PrivateKey.generate()
p256 = ec.generate_private_key(ec.SECP256R1())
p256_other = ec.generate_private_key(ec.SECP256R1())
p384 = ec.generate_private_key(ec.SECP384R1())
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

keys = {
    "EdDSA": (ed, ed_other, OKPAlgorithm),
    "ES256": (p256, p256_other, ECAlgorithm(ECAlgorithm.SHA256)),
    "ES384": (p384, p256_other, ECAlgorithm(ECAlgorithm.SHA384)),
    "RS256": (rsa_key, rsa_other, RSAAlgorithm(RSAAlgorithm.SHA256)),
    "RS384": (rsa_key, rsa_other, RSAAlgorithm(RSAAlgorithm.SHA384)),
    "RS512": (rsa_key, rsa_other, RSAAlgorithm(RSAAlgorithm.SHA512)),
    "PS256": (rsa_key, rsa_other, RSAAlgorithm(RSAAlgorithm.SHA256)),
    "PS384": (rsa_key, rsa_other, RSAAlgorithm(RSAAlgorithm.SHA384)),
    "PS512": (rsa_key, rsa_other, RSAAlgorithm(RSAAlgorithm.SHA512)),
}

claims = {"iss": "spiffe://acme.example/spire", "sub": "router", "aud": "pdp", "exp": T0 + 600, "nbf": T0 - 600, "n": 7}
base = {"iss": "spiffe://acme.example/spire", "aud": "pdp", "time": T0 * NS}

cases = []


def case(name, call, *args):
    cases.append({"name": name, "call": call, "args": list(args)})


for alg, (key, other, algo) in keys.items():
    token = jwt.encode(claims, key, algorithm=alg, headers={"kid": "k1"})
    pem = pem_public(key)
    low = alg.lower()
    case(f"{alg} valid, PEM public key", "io.jwt.decode_verify", token, {**base, "cert": pem})
    case(f"{alg} valid, JWK", "io.jwt.decode_verify", token, {**base, "cert": jwk(algo, key)})
    case(
        f"{alg} valid, JWKS whose second key matches the kid",
        "io.jwt.decode_verify",
        token,
        {**base, "cert": json.dumps({"keys": [json.loads(jwk(algo, other, kid="k0")), json.loads(jwk(algo, key, kid="k1"))]})},
    )
    case(f"{alg} valid, certificate", "io.jwt.decode_verify", token, {**base, "cert": pem_cert(key, key)})
    case(f"{alg} bad signature", "io.jwt.decode_verify", tamper(token), {**base, "cert": pem})
    case(f"{alg} other key", "io.jwt.decode_verify", token, {**base, "cert": pem_public(other)})
    case(f"{alg} payload swapped", "io.jwt.decode_verify", swap_payload(token, {**claims, "n": 8}), {**base, "cert": pem})
    case(f"{alg} alg constraint matches", "io.jwt.decode_verify", token, {**base, "cert": pem, "alg": alg})
    case(f"{alg} alg constraint differs", "io.jwt.decode_verify", token, {**base, "cert": pem, "alg": "HS256"})
    case(f"{alg} verified with a secret", "io.jwt.decode_verify", token, {**base, "secret": SECRET})
    verify = f"io.jwt.verify_{'eddsa' if alg == 'EdDSA' else low}"
    case(f"{verify} valid, PEM", verify, token, pem)
    case(f"{verify} valid, JWK", verify, token, jwk(algo, key))
    case(f"{verify} valid, certificate", verify, token, pem_cert(key, key))
    case(f"{verify} bad signature", verify, tamper(token), pem)
    case(f"{verify} other key", verify, token, pem_public(other))
    case(f"{verify} malformed key", verify, token, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    case(f"{verify} not a key", verify, token, "hello")

# PEM text as OPA (Go's PEM decoder) reads it.
ed_pem_text = pem_public(ed)
ed_signed = jwt.encode(claims, ed, algorithm="EdDSA")
for name, text in [
    ("two trailing newlines", ed_pem_text + "\n"),
    ("trailing spaces", ed_pem_text + "   "),
    ("no final newline", ed_pem_text.rstrip("\n")),
    ("leading newlines", "\n\n" + ed_pem_text),
    ("leading text", "a key:\n" + ed_pem_text),
    ("indented", "  " + ed_pem_text),
    ("CRLF line ends", ed_pem_text.replace("\n", "\r\n")),
    ("two blocks", ed_pem_text + ed_pem_text),
]:
    case(f"verify_eddsa, PEM with {name}", "io.jwt.verify_eddsa", ed_signed, text)

rs_token = jwt.encode(claims, rsa_key, algorithm="RS256")
rs_pem = pem_public(rsa_key)
ed_token = jwt.encode(claims, ed, algorithm="EdDSA")
ed_pem = pem_public(ed)
es_token = jwt.encode(claims, p256, algorithm="ES256")

for alg in ["HS256", "HS384", "HS512"]:
    token = jwt.encode(claims, SECRET, algorithm=alg)
    low = alg.lower()
    case(f"{alg} valid", "io.jwt.decode_verify", token, {**base, "secret": SECRET})
    case(f"{alg} wrong secret", "io.jwt.decode_verify", token, {**base, "secret": SECRET + "x"})
    case(f"{alg} bad signature", "io.jwt.decode_verify", tamper(token), {**base, "secret": SECRET})
    case(f"{alg} verified with a public key", "io.jwt.decode_verify", token, {**base, "cert": rs_pem})
    case(f"io.jwt.verify_{low} valid", f"io.jwt.verify_{low}", token, SECRET)
    case(f"io.jwt.verify_{low} wrong secret", f"io.jwt.verify_{low}", token, "other")
    case(f"io.jwt.verify_{low} bad signature", f"io.jwt.verify_{low}", tamper(token), SECRET)

# Algorithm confusion: an HMAC token keyed with the text of the public key.
confused = jwt.api_jws.PyJWS(algorithms=["HS256"])
confused._algorithms["HS256"].prepare_key = lambda k: k  # PyJWT refuses PEM as an HMAC key
hs_with_pem = confused.encode(json.dumps(claims).encode(), rs_pem.encode(), algorithm="HS256")
case("HS256 keyed with the public key's PEM, verified with cert", "io.jwt.decode_verify", hs_with_pem, {**base, "cert": rs_pem})
case("HS256 keyed with the public key's PEM, verify_rs256", "io.jwt.verify_rs256", hs_with_pem, rs_pem)
case("HS256 keyed with the public key's PEM, verify_hs256 with the PEM", "io.jwt.verify_hs256", hs_with_pem, rs_pem)
case("RS256 token, verify_es256", "io.jwt.verify_es256", rs_token, rs_pem)
case("ES256 token, verify_eddsa", "io.jwt.verify_eddsa", es_token, ed_pem)

case("ES256 token, decode_verify with an RSA key", "io.jwt.decode_verify", es_token, {**base, "cert": rs_pem})
case("EdDSA token, decode_verify with a P-256 JWK", "io.jwt.decode_verify", ed_token, {**base, "cert": jwk(ECAlgorithm(ECAlgorithm.SHA256), p256)})
case("no time constraint: the clock decides", "io.jwt.decode_verify", jwt.encode({"iss": base["iss"], "aud": "pdp", "exp": 4_102_444_800}, ed, algorithm="EdDSA"), {"cert": ed_pem, "iss": base["iss"], "aud": "pdp"})
case("no time constraint, expired long ago", "io.jwt.decode_verify", jwt.encode({"iss": base["iss"], "aud": "pdp", "exp": 1_000_000_000}, ed, algorithm="EdDSA"), {"cert": ed_pem, "iss": base["iss"], "aud": "pdp"})

# Where agentriage knowingly answers differently: always an error (the
# decision fails closed), never a more permissive value.
p521 = ec.generate_private_key(ec.SECP521R1())
es512 = jwt.encode(claims, p521, algorithm="ES512")
case("ES512 (P-521), which ring cannot verify", "io.jwt.decode_verify", es512, {**base, "cert": pem_public(p521)})
cases[-1]["agentriage"] = "<error>"
rsa_small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
case("RS256 with a 1024-bit key", "io.jwt.decode_verify", jwt.encode(claims, rsa_small, algorithm="RS256"), {**base, "cert": pem_public(rsa_small)})
cases[-1]["agentriage"] = "<error>"

# Time, audience, issuer.
def claims_case(name, payload, constraints):
    # PyJWS signs any payload (PyJWT's encode checks claim types).
    token = jwt.api_jws.encode(json.dumps(payload).encode(), ed, algorithm="EdDSA")
    case(name, "io.jwt.decode_verify", token, {"cert": ed_pem, **constraints})


claims_case("expired", {**claims, "exp": T0 - 1}, base)
claims_case("exp equals time", {**claims, "exp": T0}, base)
claims_case("exp one second after time", {**claims, "exp": T0 + 1}, base)
claims_case("exp fractional, just after time", {**claims, "exp": T0 + 0.5}, base)
claims_case("exp as a string", {**claims, "exp": str(T0 + 600)}, base)
claims_case("nbf in the future", {**claims, "nbf": T0 + 1}, base)
claims_case("nbf equals time", {**claims, "nbf": T0}, base)
claims_case("nbf as a string", {**claims, "nbf": "x"}, base)
claims_case("no exp, no nbf", {"iss": claims["iss"], "aud": "pdp"}, base)
claims_case("time given as a float", claims, {**base, "time": float(T0 * NS)})
claims_case("time given as a string", claims, {**base, "time": str(T0 * NS)})
claims_case("wrong aud", {**claims, "aud": "other"}, base)
claims_case("aud list holding the audience", {**claims, "aud": ["x", "pdp"]}, base)
claims_case("aud list without the audience", {**claims, "aud": ["x", "y"]}, base)
claims_case("aud list with a non-string", {**claims, "aud": [1, "pdp"]}, base)
claims_case("aud in token, no aud constraint", claims, {"iss": base["iss"], "time": base["time"]})
claims_case("aud constraint, no aud in token", {k: v for k, v in claims.items() if k != "aud"}, base)
claims_case("aud is a number", {**claims, "aud": 5}, base)
claims_case("wrong iss", {**claims, "iss": "spiffe://evil.example/spire"}, base)
claims_case("iss constraint, no iss in token", {k: v for k, v in claims.items() if k != "iss"}, base)
claims_case("iss is a number", {**claims, "iss": 5}, base)
claims_case("no iss constraint", claims, {"aud": "pdp", "time": base["time"]})
claims_case("unknown constraint", claims, {**base, "colour": "red"})
claims_case("cert and secret", claims, {**base, "secret": SECRET})
claims_case("aud constraint not a string", claims, {**base, "aud": 5})
claims_case("iss constraint not a string", claims, {**base, "iss": 5})
claims_case("alg constraint not a string", claims, {**base, "alg": 5})
claims_case("cert not a string", claims, {**base, "cert": 5})
case("no key constraint", "io.jwt.decode_verify", ed_token, base)
case("constraints not an object", "io.jwt.decode_verify", ed_token, "x")
case("cert is an empty JWKS", "io.jwt.decode_verify", ed_token, {**base, "cert": '{"keys": []}'})
case("cert is garbage", "io.jwt.decode_verify", ed_token, {**base, "cert": "garbage"})

# Headers.
def raw_token(header, payload, key=ed):
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    sig = key.sign(signing_input.encode()) if key is not None else b""
    return f"{signing_input}.{b64(sig)}"


case("alg none", "io.jwt.decode_verify", raw_token({"alg": "none"}, claims, None), {**base, "cert": ed_pem})
case("alg none, with secret", "io.jwt.decode_verify", raw_token({"alg": "none"}, claims, None), {**base, "secret": SECRET})
case("no alg header", "io.jwt.decode_verify", raw_token({"typ": "JWT"}, claims), {**base, "cert": ed_pem})
case("unknown alg", "io.jwt.decode_verify", raw_token({"alg": "XX1"}, claims), {**base, "cert": ed_pem})
case("alg not a string", "io.jwt.decode_verify", raw_token({"alg": 5}, claims), {**base, "cert": ed_pem})
case("unknown crit header", "io.jwt.decode_verify", raw_token({"alg": "EdDSA", "crit": ["exp2"], "exp2": 1}, claims), {**base, "cert": ed_pem})
case("typ header other than JWT", "io.jwt.decode_verify", raw_token({"alg": "EdDSA", "typ": "at+jwt"}, claims), {**base, "cert": ed_pem})
case("payload is an array", "io.jwt.decode_verify", raw_token({"alg": "EdDSA"}, [1, 2]), {**base, "cert": ed_pem})
case("header is an array", "io.jwt.decode_verify", raw_token([1], claims), {**base, "cert": ed_pem})
inner = jwt.encode(claims, ed, algorithm="EdDSA")
outer_input = f"{b64(json.dumps({'alg': 'EdDSA', 'cty': 'JWT'}).encode())}.{b64(inner.encode())}"
nested = f"{outer_input}.{b64(ed.sign(outer_input.encode()))}"
case("nested JWT, both signed", "io.jwt.decode_verify", nested, {**base, "cert": ed_pem})
bad_inner = tamper(inner)
outer_input2 = f"{b64(json.dumps({'alg': 'EdDSA', 'cty': 'JWT'}).encode())}.{b64(bad_inner.encode())}"
nested_bad = f"{outer_input2}.{b64(ed.sign(outer_input2.encode()))}"
case("nested JWT, inner signature bad", "io.jwt.decode_verify", nested_bad, {**base, "cert": ed_pem})

malformed = {
    "two parts": "eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ",
    "four parts": ed_token + ".x",
    "empty": "",
    "header not base64url": "%%%." + ed_token.split(".", 1)[1],
    "header not JSON": b64(b"nope") + "." + ed_token.split(".", 1)[1],
    "payload not JSON": ed_token.split(".")[0] + "." + b64(b"nope") + "." + ed_token.split(".")[2],
    "signature not base64url": ed_token.rsplit(".", 1)[0] + ".%%%",
    "padded base64url": ".".join(p + "=" * (-len(p) % 4) for p in ed_token.split(".")),
    "standard base64 alphabet": ".".join(p.replace("-", "+").replace("_", "/") for p in ed_token.split(".")),
}
for name, token in malformed.items():
    case(f"decode_verify, {name}", "io.jwt.decode_verify", token, {**base, "cert": ed_pem})
    case(f"decode, {name}", "io.jwt.decode", token)
    case(f"verify_eddsa, {name}", "io.jwt.verify_eddsa", token, ed_pem)

case("decode, EdDSA token", "io.jwt.decode", ed_token)
case("decode, RS256 token", "io.jwt.decode", rs_token)
case("decode, HS256 token", "io.jwt.decode", jwt.encode({"a": [1, {"b": None}], "f": 1.5}, SECRET, algorithm="HS256", headers={"kid": "x"}))
case("decode, nested JWT", "io.jwt.decode", nested)
case("decode, header with enc (JWE)", "io.jwt.decode", raw_token({"alg": "RSA-OAEP", "enc": "A256GCM"}, claims))
case("decode, payload is an array", "io.jwt.decode", raw_token({"alg": "EdDSA"}, [1, 2]))
case("decode, empty signature", "io.jwt.decode", raw_token({"alg": "none"}, claims, None))
case("decode, not a string", "io.jwt.decode", 5)

for text in ["", "abc", "agentriage \u00e9\u00e8 \U0001F600"]:
    for fn in ["crypto.sha256", "crypto.sha1"]:
        case(f"{fn} of {text!r}", fn, text)
    for fn in ["crypto.hmac.sha256", "crypto.hmac.sha512", "crypto.hmac.sha1"]:
        case(f"{fn} of {text!r}", fn, text, "key")
case("crypto.hmac.sha256, empty key", "crypto.hmac.sha256", "abc", "")
case("crypto.hmac.sha256, long key", "crypto.hmac.sha256", "abc", "k" * 200)
case("crypto.sha256 of a number", "crypto.sha256", 5)
case("crypto.hmac.sha256 of a number", "crypto.hmac.sha256", 5, "k")
case("crypto.hmac.equal, equal", "crypto.hmac.equal", "abc", "abc")
case("crypto.hmac.equal, different", "crypto.hmac.equal", "abc", "abd")
case("crypto.hmac.equal, different length", "crypto.hmac.equal", "abc", "abcd")
case("crypto.hmac.equal, empty", "crypto.hmac.equal", "", "")
case("crypto.hmac.equal, not a string", "crypto.hmac.equal", "abc", 5)


def opa_answer(call, args):
    engine = opa_bindings.OpaEngine()
    params = ", ".join(f"input.args[{i}]" for i in range(len(args)))
    engine.add_policy("p.rego", f"package p\nimport rego.v1\nr := {call}({params})\n")
    try:
        doc = engine.eval_document("p", input={"args": args})
    except opa_bindings.OpaError as e:
        return "<error>", str(e)
    if "r" not in doc:
        return "<error>", "undefined"
    return doc["r"], None


for c in cases:
    c["opa"], note = opa_answer(c["call"], c["args"])
    if note:
        c["opa_note"] = note
json.dump({"cases": cases}, sys.stdout, indent=1, ensure_ascii=False)
sys.stdout.write("\n")
