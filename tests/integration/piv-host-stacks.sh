#!/usr/bin/env bash
# piv-host-stacks.sh: kyso-vcard's PIV card driven end to end by host stacks
# we did not write. yubico-piv-tool provisions it (piv-provision.sh: keys in
# 9A 9C 9D 9E, certificates from a throwaway CA), changes the PIN, counts a
# wrong PIN down to blocked and unblocks it with the PUK; OpenSC
# (pkcs15-tool, pkcs11-tool on opensc-pkcs11.so) lists the card, signs with
# 9A, 9C and 9E and decrypts with 9D, and openssl checks every result
# against the public key in the certificate on the card.
#
# A missing tool is a failure, never a skip.

set -euo pipefail

me=piv-host-stacks
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${top_srcdir:-$(cd "$here/../.." && pwd)}
opensc_module=${OPENSC_PKCS11:-/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so}

fail() {
	echo "$me: FAIL: $*" >&2
	exit 1
}

step() {
	echo "$me: $*"
}

# A tool's output goes to a file, shown only when it matters.
run() {
	local out=$1
	shift
	"$@" >"$out" 2>&1
}

show_fail() {
	local out=$1
	shift
	echo "$me: output of the failed step:" >&2
	sed 's/^/    /' "$out" >&2
	fail "$*"
}

state_value() {
	sed -n "s/^$1=//p" "$KYSO_VCARD_STATE"
}

stat_value() {
	sed -n "s/^$1=//p" "$KYSO_VCARD_STATS"
}

expect_state() {
	local got
	got=$(state_value "$1")
	[ "$got" = "$2" ] || fail "state $1 is '$got', expected '$2' ($3)"
}

ykpiv() {
	yubico-piv-tool -r "$KYSO_READER" "$@"
}

p11() {
	pkcs11-tool --module "$opensc_module" "$@"
}

# ---------------------------------------------------------------------------
# inside the card session

pin_and_puk() {
	local out=$KYSO_TEST_TMP/out i

	step "yubico-piv-tool: change PIN 123456 -> 654321"
	run "$out" ykpiv -a change-pin -P 123456 -N 654321 ||
		show_fail "$out" "change-pin"
	expect_state pin 363534333231FFFF "after change-pin"
	run "$out" ykpiv -a verify-pin -P 654321 ||
		show_fail "$out" "verify-pin with the new PIN"
	if run "$out" ykpiv -a verify-pin -P 123456; then
		fail "the old PIN still verifies"
	fi
	run "$out" ykpiv -a verify-pin -P 654321 ||
		show_fail "$out" "verify-pin after one wrong PIN"
	expect_state pin_tries 3 "a right PIN resets the counter"

	step "yubico-piv-tool: wrong PINs count down to blocked"
	for i in 2 1 0; do
		if run "$out" ykpiv -a verify-pin -P 000000; then
			fail "a wrong PIN verified"
		fi
		expect_state pin_tries $i "after a wrong PIN"
		run "$out" ykpiv -a status || show_fail "$out" "status"
		grep -q "PIN tries left:[[:space:]]*$i\$" "$out" ||
			show_fail "$out" "status does not report $i PIN tries"
	done
	if run "$out" ykpiv -a verify-pin -P 654321; then
		fail "the right PIN verified on a blocked card"
	fi
	grep -qi "blocked" "$out" ||
		show_fail "$out" "verify-pin on a blocked PIN does not say blocked"
	expect_state pin_tries 0 "blocked"

	step "yubico-piv-tool: unblock with the PUK"
	if run "$out" ykpiv -a unblock-pin -P 87654321 -N 111111; then
		fail "a wrong PUK unblocked the PIN"
	fi
	expect_state puk_tries 2 "after a wrong PUK"
	expect_state pin_tries 0 "a wrong PUK leaves the PIN blocked"
	run "$out" ykpiv -a unblock-pin -P 12345678 -N 654321 ||
		show_fail "$out" "unblock-pin"
	expect_state pin_tries 3 "after unblock"
	expect_state puk_tries 3 "after unblock"
	run "$out" ykpiv -a verify-pin -P 654321 ||
		show_fail "$out" "verify-pin after unblock"
	[ "$(stat_value verify_fail)" = 5 ] ||
		fail "card counted $(stat_value verify_fail) failed VERIFYs, expected 5"
}

opensc_lists() {
	local out=$KYSO_TEST_TMP/out card=$1 id slot label
	local -A labels=([9a]="Certificate for PIV Authentication"
		[9c]="Certificate for Digital Signature"
		[9d]="Certificate for Key Management"
		[9e]="Certificate for Card Authentication")
	local -A ids=([9a]=01 [9c]=02 [9d]=03 [9e]=04)

	step "opensc-tool: the card is a PIV card"
	run "$out" opensc-tool -r "$KYSO_READER" -n || show_fail "$out" "opensc-tool -n"
	grep -q "Personal Identity Verification Card" "$out" ||
		show_fail "$out" "OpenSC did not take it for a PIV card"

	step "pkcs15-tool -D: four keys, four certificates"
	run "$out" pkcs15-tool -r "$KYSO_READER" -D || show_fail "$out" "pkcs15-tool -D"
	for slot in 9a 9c 9d 9e; do
		label=${labels[$slot]}
		grep -q "X.509 Certificate \[$label\]" "$out" ||
			show_fail "$out" "pkcs15-tool does not list '$label'"
	done
	if [ "$(grep -c '^Private RSA Key' "$out")" != 2 ] ||
		[ "$(grep -c '^Private EC Key' "$out")" != 2 ]; then
		show_fail "$out" "pkcs15-tool does not list 2 RSA and 2 EC keys"
	fi

	step "pkcs15-tool: certificates read back as imported"
	for slot in 9a 9c 9d 9e; do
		id=${ids[$slot]}
		run "$KYSO_TEST_TMP/cert-$slot.pem" pkcs15-tool -r "$KYSO_READER" \
			--read-certificate "$id" ||
			show_fail "$KYSO_TEST_TMP/cert-$slot.pem" "read certificate $id"
		[ "$(openssl x509 -in "$KYSO_TEST_TMP/cert-$slot.pem" -noout -fingerprint -sha256)" = \
			"$(openssl x509 -in "$card/cert-$slot.pem" -noout -fingerprint -sha256)" ] ||
			fail "certificate $id read back differs from cert-$slot.pem"
		openssl verify -CAfile "$card/ca.pem" "$KYSO_TEST_TMP/cert-$slot.pem" \
			>"$out" 2>&1 || show_fail "$out" "certificate $id does not chain to the test CA"
		openssl x509 -in "$KYSO_TEST_TMP/cert-$slot.pem" -pubkey -noout \
			>"$KYSO_TEST_TMP/pub-$slot.pem"
	done

	step "pkcs11-tool -O: objects through opensc-pkcs11.so"
	run "$out" p11 -O || show_fail "$out" "pkcs11-tool -O"
	for slot in 9a 9c 9d 9e; do
		grep -q "subject:.*CN=kyso test $slot" "$out" ||
			show_fail "$out" "pkcs11-tool does not list the $slot certificate"
	done
}

opensc_signs() {
	local out=$KYSO_TEST_TMP/out t=$KYSO_TEST_TMP before after

	printf 'kyso signs with a virtual PIV card\n' >"$t/data"
	openssl dgst -sha256 -binary "$t/data" >"$t/h256"
	openssl dgst -sha384 -binary "$t/data" >"$t/h384"
	# DigestInfo for SHA-256: RSA-PKCS signs it as given.
	{
		printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'
		cat "$t/h256"
	} >"$t/di256"

	step "pkcs11-tool: 9A RSA-PKCS"
	before=$(stat_value apdus)
	run "$out" p11 --login --pin 654321 --sign -m RSA-PKCS --id 01 \
		-i "$t/di256" -o "$t/sig9a" || show_fail "$out" "sign with 9A"
	after=$(stat_value apdus)
	openssl dgst -sha256 -verify "$t/pub-9a.pem" -signature "$t/sig9a" \
		"$t/data" >"$out" 2>&1 || show_fail "$out" "9A signature does not verify"
	step "one pkcs11-tool signature through OpenSC (load, bind, login, sign): $((after - before)) APDUs"

	step "pkcs11-tool: 9A SHA256-RSA-PKCS-PSS (OpenSC pads, the card does raw RSA)"
	run "$out" p11 --login --pin 654321 --sign -m SHA256-RSA-PKCS-PSS \
		--mgf MGF1-SHA256 --salt-len 32 --id 01 \
		-i "$t/data" -o "$t/sig9a-pss" || show_fail "$out" "PSS sign with 9A"
	openssl dgst -sha256 -sigopt rsa_padding_mode:pss \
		-sigopt rsa_pss_saltlen:32 -verify "$t/pub-9a.pem" \
		-signature "$t/sig9a-pss" "$t/data" >"$out" 2>&1 ||
		show_fail "$out" "9A PSS signature does not verify"

	step "pkcs11-tool: 9C ECDSA P-256 (PIN always: a context-specific login)"
	run "$out" p11 --login --pin 654321 --sign -m ECDSA --id 02 \
		--signature-format openssl -i "$t/h256" -o "$t/sig9c" ||
		show_fail "$out" "sign with 9C"
	openssl dgst -sha256 -verify "$t/pub-9c.pem" -signature "$t/sig9c" \
		"$t/data" >"$out" 2>&1 || show_fail "$out" "9C signature does not verify"

	step "pkcs11-tool: 9E ECDSA P-384"
	run "$out" p11 --login --pin 654321 --sign -m ECDSA --id 04 \
		--signature-format openssl -i "$t/h384" -o "$t/sig9e" ||
		show_fail "$out" "sign with 9E"
	openssl dgst -sha384 -verify "$t/pub-9e.pem" -signature "$t/sig9e" \
		"$t/data" >"$out" 2>&1 || show_fail "$out" "9E signature does not verify"

	step "pkcs11-tool: 9D RSA-PKCS decryption"
	openssl pkeyutl -encrypt -pubin -inkey "$t/pub-9d.pem" -in "$t/data" \
		-out "$t/ct9d"
	run "$out" p11 --login --pin 654321 --decrypt -m RSA-PKCS --id 03 \
		-i "$t/ct9d" -o "$t/pt9d" || show_fail "$out" "decrypt with 9D"
	cmp -s "$t/pt9d" "$t/data" || fail "9D decrypted something else"

	[ "$(stat_value privops)" -ge 5 ] ||
		fail "card counted $(stat_value privops) private-key operations, expected 5"
}

# The card's own access rules, through opensc-tool's raw APDUs: 9E signs
# with no PIN; 9C only right after a VERIFY ("PIN always"): once, and not
# after another key was used in between. Reads in between (OpenSC reads the
# Discovery object before each command here) do not count.
card_rules() {
	local out=$KYSO_TEST_TMP/out h32 h48 got want
	local sel=00:A4:04:00:05:A0:00:00:03:08
	local verify=00:20:00:80:08:36:35:34:33:32:31:FF:FF
	local disco=00:CB:3F:FF:03:5C:01:7E:00
	local sign9c sign9e

	step "opensc-tool: 9E needs no PIN, 9C a VERIFY right before each use"
	h32=$(od -An -tx1 -v "$KYSO_TEST_TMP/h256" | tr -s ' \n' ':' | sed 's/^://;s/:$//')
	h48=$(od -An -tx1 -v "$KYSO_TEST_TMP/h384" | tr -s ' \n' ':' | sed 's/^://;s/:$//')
	sign9c=00:87:11:9C:26:7C:24:82:00:81:20:$h32:00
	sign9e=00:87:14:9E:36:7C:34:82:00:81:30:$h48:00
	run "$out" opensc-tool -r "$KYSO_READER" -s "$sel" -s "$sign9c" \
		-s "$sign9e" -s "$verify" -s "$sign9c" -s "$sign9c" \
		-s "$verify" -s "$disco" -s "$sign9c" \
		-s "$verify" -s "$sign9e" -s "$sign9c" ||
		show_fail "$out" "opensc-tool"
	got=$(sed -n 's/.*(SW1=0x\(..\), SW2=0x\(..\)).*/\1\2/p' "$out" | tr '\n' ' ')
	want="9000 6982 9000 9000 9000 6982 9000 9000 9000 9000 9000 6982 "
	[ "$got" = "$want" ] ||
		show_fail "$out" "status words '$got', expected '$want'"
}

inside() {
	local card=$1
	pin_and_puk
	opensc_lists "$card"
	opensc_signs
	card_rules
	step "all host-stack checks passed"
}

if [ "${1:-}" = --inside ]; then
	inside "$2"
	exit 0
fi

# ---------------------------------------------------------------------------
# outside: tools, provisioning, the card session

for tool in yubico-piv-tool opensc-tool pkcs15-tool pkcs11-tool openssl od; do
	command -v "$tool" >/dev/null || fail "missing $tool"
done
[ -r "$opensc_module" ] ||
	fail "missing $opensc_module (opensc-pkcs11; or set OPENSC_PKCS11)"

work=$(mktemp -d "${TMPDIR:-/tmp}/$me.XXXXXX")
trap 'rm -rf "$work"' EXIT

# shellcheck source=tests/integration/piv-provision.sh
. "$src/tests/integration/piv-provision.sh"
step "provisioning a fresh card (yubico-piv-tool + throwaway CA)"
piv_provision "$work/card" || fail "provisioning"

# A second session on the same state file: the card kept its keys.
"$src/tests/with-card" --profile piv --state "$work/card/state" -- \
	bash "$here/$(basename "${BASH_SOURCE[0]}")" --inside "$work/card" ||
	fail "host-stack checks"
