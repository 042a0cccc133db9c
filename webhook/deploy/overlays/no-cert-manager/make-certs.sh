#!/usr/bin/env bash
# Makes the webhook's serving certificate for overlays/no-cert-manager with openssl: a CA (made
# once, kept for renewals: tls/ca.crt, tls/ca.key) and a certificate signed by it for the Service's
# DNS names gem-webhook.NAMESPACE.svc and gem-webhook.NAMESPACE.svc.cluster.local (tls/tls.crt,
# tls/tls.key). kustomization.yaml turns tls/ into the Secret gem-webhook-tls and the CA into the
# webhook configuration's caBundle. NAMESPACE is this overlay's `namespace:` unless --namespace says.
#   ./make-certs.sh [--namespace NS] [--days 365] [--dir DIR]
# tls/ holds private keys: keep it out of version control (the repository's .gitignore does).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DIR="$HERE/tls"
DAYS=365
NS=""
die() { echo "make-certs.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) NS="${2:-}"; shift 2 ;;
    --days) DAYS="${2:-}"; shift 2 ;;
    --dir) DIR="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
command -v openssl >/dev/null || die "openssl not found"
if [ -z "$NS" ]; then
  NS="$(sed -n 's/^namespace:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$HERE/kustomization.yaml" | head -n1)"
  [ -n "$NS" ] || die "no namespace: line in $HERE/kustomization.yaml; pass --namespace"
fi
# A DNS label (RFC 1123), as Kubernetes requires of namespace names.
[[ "$NS" =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "\"$NS\" is not a valid namespace name"
[[ "$DAYS" =~ ^[1-9][0-9]{0,4}$ ]] || die "--days wants a whole number of days, got \"$DAYS\""

mkdir -p "$DIR"
chmod 0700 "$DIR"
umask 077
if [ ! -f "$DIR/ca.crt" ] || [ ! -f "$DIR/ca.key" ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=gemini-webhook-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null || die "openssl could not make the CA"
  echo "make-certs.sh: made a CA in $DIR (valid 10 years; kept for renewals)" >&2
else
  echo "make-certs.sh: reusing the CA in $DIR" >&2
fi
SAN="DNS:gem-webhook.$NS.svc,DNS:gem-webhook.$NS.svc.cluster.local"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=gem-webhook.$NS.svc" \
  -keyout "$TMP/tls.key" -out "$TMP/tls.csr" 2>/dev/null || die "openssl could not make the key"
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n' \
  "$SAN" > "$TMP/ext"
openssl x509 -req -in "$TMP/tls.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
  -CAserial "$TMP/ca.srl" -days "$DAYS" -extfile "$TMP/ext" -out "$TMP/tls.crt" 2>/dev/null \
  || die "openssl could not sign the certificate"
openssl verify -CAfile "$DIR/ca.crt" "$TMP/tls.crt" >/dev/null || die "the new certificate does not verify"
# Key first, then certificate, each by rename: never a certificate without its key.
mv -f "$TMP/tls.key" "$DIR/tls.key"
mv -f "$TMP/tls.crt" "$DIR/tls.crt"
chmod 0644 "$DIR/ca.crt" "$DIR/tls.crt"
echo "make-certs.sh: $DIR/tls.crt for $SAN, valid $DAYS days" >&2
