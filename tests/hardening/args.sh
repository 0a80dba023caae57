#!/usr/bin/env bash
# PKCS#11 argument abuse against kyso and SoftHSM2 (tests/hardening/args.c).
# SoftHSM2 gets a token of its own in a scratch directory, with an RSA 2048
# key pair of CKA_ID 01 like the PIV card's 9A.
. "$(dirname "$0")/lib.sh"
softhsm=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[ -f "$softhsm" ] || fail "missing SoftHSM2 ($softhsm; Debian: softhsm2)"
need softhsm2-util softhsm2
need pkcs11-tool opensc
mkdir -p "$work/softhsm/tokens"
cat >"$work/softhsm/conf" <<CONF
directories.tokendir = $work/softhsm/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF=$work/softhsm/conf
softhsm2-util --init-token --free --label kyso-reference --pin 123456 \
	--so-pin 12345678 >/dev/null || fail "softhsm2-util --init-token"
pkcs11-tool --module "$softhsm" --token-label kyso-reference --login \
	--pin 123456 --keypairgen --key-type rsa:2048 --id 01 \
	--label reference >/dev/null 2>&1 || fail "SoftHSM2 key pair"
provision
# shellcheck disable=SC2086 # $wrap is a command line
with_piv args -- $wrap "$hbin/args" "$module" 123456 12345678 \
	"$softhsm" 123456 12345678
echo "$me: PASS"
