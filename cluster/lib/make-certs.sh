#!/usr/bin/env bash
# Makes a throwaway development PKI for the local cluster (cluster/start.sh
# --tls) with openssl, once: a CA, a certificate per node naming it (DNS:nX,
# DNS:localhost, IP:127.0.0.1; server and client use, for both ports), an
# operator client certificate (CN and URI SAN "admin"), a client certificate
# for service "demo" (CN "demo"), and an authorization policy granting them.
# Never use these outside a laptop: the CA key sits beside them.
#
#   cluster/lib/make-certs.sh DIR
set -euo pipefail
dir="${1:?usage: make-certs.sh DIR}"
mkdir -p "$dir"
cd "$dir"
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl; }

key() { openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$1"; }

if [ ! -s ca.pem ]; then
    key ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 365 -subj "/CN=gc-sidecar dev CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
fi

# issue NAME CN SANS USAGE
issue() {
    local name="$1" cn="$2" sans="$3" usage="$4"
    [ -s "$name.pem" ] && return 0
    key "$name.key"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' "$usage" "$sans" >"$name.ext"
    openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -sha256 \
        -extfile "$name.ext" -out "$name.pem" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

for node in n1 n2 n3; do
    issue "$node" "$node" "DNS:$node,DNS:localhost,IP:127.0.0.1" "serverAuth,clientAuth"
done
issue admin admin "URI:admin" clientAuth
issue demo demo "DNS:demo" clientAuth
if [ ! -s policy.yaml ]; then
    cat >policy.yaml <<'POLICY'
# Development policy (cluster/start.sh --tls): "admin" may do everything,
# "demo" may hold leases of service "demo" only.
identities:
  admin: { roles: [operator] }
  demo:  { services: [demo] }
POLICY
fi
chmod 600 ./*.key
echo "make-certs.sh: development PKI in $dir" >&2
