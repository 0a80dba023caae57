#!/usr/bin/env bash
# The main job, end to end: a virtual PIV card is provisioned with host tools
# we did not write (yubico-piv-tool, openssl), then kyso signs a file with the
# card's 9A key through PKCS#11 and openssl verifies the signature against
# the certificate read from the card by kyso.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
module=${KYSO_MODULE:-$top_builddir/.libs/kyso-pkcs11.so}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== provisioning a virtual PIV card (yubico-piv-tool + a test CA)"
"$top_srcdir/tests/integration/piv-provision.sh" "$work" >/dev/null
echo "document signed by kyso on $(date -u +%F)" >"$work/document.txt"

echo "== signing document.txt with kyso-pkcs11.so (PIN 123456, key 9A)"
"$top_srcdir/tests/with-card" --profile piv --state "$work/state" -- bash -c '
	set -e
	m=$1 w=$2
	pkcs11-tool --module "$m" -L | sed -n "/token label/p"
	pkcs11-tool --module "$m" --read-object --type cert --id 01 -o "$w/cert.der" >/dev/null
	pkcs11-tool --module "$m" --login --pin 123456 --id 01 --sign -m SHA256-RSA-PKCS \
		-i "$w/document.txt" -o "$w/document.sig"
' _ "$module" "$work"

echo "== verifying with openssl against the certificate kyso read from the card"
openssl x509 -inform DER -in "$work/cert.der" -noout -subject
openssl x509 -inform DER -in "$work/cert.der" -pubkey -noout >"$work/pub.pem"
openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/document.sig" "$work/document.txt"
openssl verify -CAfile "$work/ca.pem" <(openssl x509 -inform DER -in "$work/cert.der")
