#!/usr/bin/env bash
# Regenerate the DEVELOPMENT certificate authority and server certificate used
# by mxdesk's tests and local TLS. Nothing here is a production secret.
#
# Produces, next to this script:
#   ca.pem       development CA certificate (trust anchor for tests)
#   ca.key       development CA private key (PKCS#8 PEM, ECDSA P-256)
#   server.pem   server certificate chain: leaf certificate, then ca.pem
#   server.key   server private key (PKCS#8 PEM, ECDSA P-256)
#
# Both certificates are X.509 v3 and valid for 10 years. The leaf carries
# SANs DNS:localhost, DNS:mx.desk.test, IP:127.0.0.1, IP:::1 and the
# serverAuth extended key usage, as rustls/webpki requires.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

DAYS=3650
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/ca.ext" <<'EOF'
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF

cat >"$work/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, DNS:mx.desk.test, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF

echo "certs: generating development CA"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key"
openssl req -new -key "$work/ca.key" -subj "/O=mxdesk development/CN=mxdesk development CA" \
    -out "$work/ca.csr"
openssl x509 -req -in "$work/ca.csr" -signkey "$work/ca.key" -days "$DAYS" -sha256 \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$work/ca.ext" -out "$work/ca.pem" 2>/dev/null

echo "certs: generating server certificate (localhost, mx.desk.test, 127.0.0.1, ::1)"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/server.key"
openssl req -new -key "$work/server.key" -subj "/O=mxdesk development/CN=mx.desk.test" \
    -out "$work/server.csr"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -days "$DAYS" -sha256 -set_serial "0x$(openssl rand -hex 16)" \
    -extfile "$work/server.ext" -out "$work/leaf.pem" 2>/dev/null

openssl verify -CAfile "$work/ca.pem" -purpose sslserver "$work/leaf.pem" >/dev/null

cat "$work/leaf.pem" "$work/ca.pem" >"$work/server.pem"
chmod 644 "$work/ca.key" "$work/server.key"  # development keys, not secret
mv -f "$work/ca.key" "$work/ca.pem" "$work/server.key" "$work/server.pem" .

echo "certs: wrote ca.pem ca.key server.pem server.key in $(pwd)"
