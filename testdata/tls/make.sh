#!/usr/bin/env bash
# Regenerates the test certificate authority and server certificates the
# HTTPS bundle delivery tests use (core/tests/delivery.rs, the Python and
# Node delivery tests). Test material only: the private keys are public.
#
#   ca.pem / ca.key          a certificate authority (ECDSA P-256)
#   server.pem / server.key  signed by it, for `localhost` and 127.0.0.1
#   wrong-name.pem / .key    signed by it, for `elsewhere.invalid` only
#
# Valid for 100 years, so the tests do not expire. Run from anywhere:
#   bash testdata/tls/make.sh
set -euo pipefail
cd "$(dirname "$0")"
days=36500
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=agentriage test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem
leaf() {
  local name=$1 san=$2
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key"
  openssl req -new -key "$name.key" -subj "/CN=$name" -out "$name.csr"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=$san" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -sha256 -days "$days" -extfile "$name.ext" -out "$name.pem"
  rm -f "$name.csr" "$name.ext"
}
leaf server "DNS:localhost,IP:127.0.0.1"
leaf wrong-name "DNS:elsewhere.invalid"
rm -f ca.srl
