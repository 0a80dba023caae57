#!/usr/bin/env bash
# epass2003-kyso.sh: kyso-pkcs11.so against the virtual Feitian ePass2003,
# driven by OpenSC's pkcs11-tool, every signature checked by openssl with
# the certificate's key. Variants (kyso-vcard profiles):
#   epass2003, epass2003-aes, epass2003-fips  3DES / AES / FIPS secure
#       messaging, the token erased, initialised and provisioned by OpenSC
#       (epass2003-provision.sh: RSA-2048 id 01, EC P-256 id 02, RSA-1024
#       id 03, user PIN 123456, PUK 12345678), i.e. OpenSC's pkcs15-init
#       layout, which kyso reads as PKCS#15;
#   epass2003-espk  the CA-issued ENTERSAFE-ESPK layout. OpenSC cannot read
#       it (OpenSC #3834), so the token is the fixture espk-build makes from
#       the layout description of OpenSC PR #3835 (two RSA-2048 containers,
#       the second an "older" one without ids; user PIN 12345678).
# Checks, per variant: the token and its objects before and after login;
# signatures with each key and mechanism (PKCS#1 v1.5 and PSS with every
# SHA-2 hash, raw RSA over a DigestInfo, ECDSA with hashing and over a
# given hash); a wrong PIN costs exactly one try in the card's own counter
# (state file) and the right one restores it; the PIN changed and used;
# the token pulled and put back between two programs; APDUs of one
# signing process. ESPK: RSA decryption, and the token left as it was
# (no file changes, key generation and certificate writing refused).
#
# One line per check, then "N passed, M failed"; a missing tool or build
# product is a failure, never a skip.
#
# usage: tests/integration/epass2003-kyso.sh [VARIANT...]
# Environment: top_srcdir, top_builddir, KYSO_MODULE (default
# $top_builddir/.libs/kyso-pkcs11.so), and what tests/with-card reads.

# shellcheck disable=SC2016

set -u -o pipefail

me=epass2003-kyso
self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
here=$(dirname "$self")
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
module=${KYSO_MODULE:-$top_builddir/.libs/kyso-pkcs11.so}
espk_build=$top_builddir/tests/fixtures/epass2003/espk-build
export top_srcdir top_builddir KYSO_MODULE=$module

results=${EP_KYSO_RESULTS:-}

pass() {
	echo "PASS: $variant: $*"
	echo "PASS" >>"$results"
}

fail() {
	echo "FAIL: $variant: $*"
	echo "FAIL" >>"$results"
}

# check NAME COMMAND...: one check; COMMAND's output is shown on failure.
check() {
	local name=$1 out
	shift
	out=$(mktemp "${KYSO_TEST_TMP:-${TMPDIR:-/tmp}}/check.XXXXXX")
	if "$@" >"$out" 2>&1; then
		pass "$name"
	else
		fail "$name"
		tail -n 25 "$out" | sed 's/^/    | /'
	fi
	rm -f "$out"
}

# KYSO_TEST_WRAPPER (make check-valgrind) goes before every program that
# loads the module.
p11() {
	# shellcheck disable=SC2086 # the wrapper is a command line
	${KYSO_TEST_WRAPPER:-} pkcs11-tool --module "$module" "$@" </dev/null
}

# The card's own try counter of the user PIN (kid 1 of the PIN's DF).
tries() {
	sed -n "s/^k\.$pindf\.01\.tries=//p" "$KYSO_VCARD_STATE"
}

stat_value() {
	sed -n "s/^$1=//p" "$KYSO_VCARD_STATS"
}

# --- inside a card session -------------------------------------------------

# verify PUB SIG IN DGST-OPTS...: openssl checks a signature of IN.
verify() {
	local pub=$1 sig=$2 in=$3
	shift 3
	openssl dgst "$@" -verify "$pub" -signature "$sig" "$in"
}

t_token() {
	p11 -L >"$tmp/list" 2>&1 || return 1
	grep -q "token model *: ePass2003" "$tmp/list" &&
		grep -q "token label *: $label\$" "$tmp/list" &&
		grep -q "token manufacturer *: Feitian" "$tmp/list"
}

t_objects() {
	local n
	p11 -O >"$tmp/pub" 2>&1 || return 1
	n=$(grep -c "^Certificate Object" "$tmp/pub")
	[ "$n" = "$ncerts" ] || { echo "certificates: $n"; return 1; }
	grep -q "^Private Key Object" "$tmp/pub" &&
		{ echo "private keys before login"; return 1; }
	p11 --login --pin "$pin" -O >"$tmp/all" 2>&1 || return 1
	n=$(grep -c "^Private Key Object" "$tmp/all")
	[ "$n" = "$ncerts" ] || { echo "private keys: $n"; return 1; }
}

# sign_verify ID MECH HASH [PSS]: pkcs11-tool signs data, openssl verifies.
t_sign() {
	local id=$1 mech=$2 hash=$3 pss=${4:-} sig=$tmp/sig.$1.$2
	p11 --login --pin "$pin" --sign -m "$mech" --id "$id" \
		-i "$data" -o "$sig" || return 1
	if [ -n "$pss" ]; then
		verify "$tmp/pub-$id.pem" "$sig" "$data" -"$hash" \
			-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1
	else
		verify "$tmp/pub-$id.pem" "$sig" "$data" -"$hash"
	fi
}

t_sign_ec() {
	local id=$1 mech=$2 hash=$3 sig=$tmp/sig.$1.$2
	p11 --login --pin "$pin" --sign -m "$mech" --id "$id" \
		--signature-format openssl -i "$data" -o "$sig" || return 1
	verify "$tmp/pub-$id.pem" "$sig" "$data" -"$hash"
}

# ECDSA over a hash the caller made (P-256 takes 32 bytes).
t_sign_ec_raw() {
	local id=$1 sig=$tmp/sig.$1.raw
	openssl dgst -sha256 -binary "$data" >"$tmp/h256"
	p11 --login --pin "$pin" --sign -m ECDSA --id "$id" \
		--signature-format openssl -i "$tmp/h256" -o "$sig" || return 1
	openssl pkeyutl -verify -pubin -inkey "$tmp/pub-$id.pem" \
		-in "$tmp/h256" -sigfile "$sig"
}

# CKM_RSA_PKCS over a DigestInfo: what a CMS library hands the token.
t_sign_rsa_raw() {
	local id=$1 sig=$tmp/sig.$1.rawpkcs
	{
		printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'
		openssl dgst -sha256 -binary "$data"
	} >"$tmp/di"
	p11 --login --pin "$pin" --sign -m RSA-PKCS --id "$id" \
		-i "$tmp/di" -o "$sig" || return 1
	verify "$tmp/pub-$id.pem" "$sig" "$data" -sha256
}

t_decrypt() {
	local id=$1
	openssl rand 32 >"$tmp/secret"
	openssl pkeyutl -encrypt -pubin -inkey "$tmp/pub-$id.pem" \
		-in "$tmp/secret" -out "$tmp/ct" || return 1
	p11 --login --pin "$pin" --decrypt -m RSA-PKCS --id "$id" \
		-i "$tmp/ct" -o "$tmp/pt" || return 1
	cmp "$tmp/secret" "$tmp/pt"
}

t_wrong_pin() {
	local before after out
	before=$(tries)
	out=$(p11 --login --pin 999999 -O 2>&1) && return 1
	echo "$out" | grep -q CKR_PIN_INCORRECT || { echo "$out"; return 1; }
	after=$(tries)
	echo "card counter $before -> $after"
	[ "$after" = $((before - 1)) ]
}

t_right_pin_restores() {
	local max
	max=$(sed -n "s/^k\.$pindf\.01\.max=//p" "$KYSO_VCARD_STATE")
	p11 --login --pin "$pin" -O >/dev/null || return 1
	[ "$(tries)" = "$max" ]
}

t_change_pin() {
	local new=24681357 sig=$tmp/sig.changed
	p11 --login --pin "$pin" --change-pin --new-pin "$new" || return 1
	p11 --login --pin "$pin" -O >/dev/null 2>&1 && {
		echo "the old PIN still works"
		return 1
	}
	p11 --login --pin "$new" --sign -m SHA256-RSA-PKCS --id "$rsa_id" \
		-i "$data" -o "$sig" || return 1
	verify "$tmp/pub-$rsa_id.pem" "$sig" "$data" -sha256 || return 1
	p11 --login --pin "$new" --change-pin --new-pin "$pin"
}

t_removal() {
	local sig=$tmp/sig.removal
	"$top_srcdir/tests/card-ctl" remove || return 1
	p11 -L | grep -q "token label" && { echo "token still listed"; return 1; }
	"$top_srcdir/tests/card-ctl" insert || return 1
	p11 --login --pin "$pin" --sign -m SHA256-RSA-PKCS --id "$rsa_id" \
		-i "$data" -o "$sig" || return 1
	verify "$tmp/pub-$rsa_id.pem" "$sig" "$data" -sha256
}

# Another program (OpenSC) opens its own secure messaging session while a
# kyso session is logged in and waiting to sign: kyso's next command meets
# a token that no longer knows its keys; kyso authenticates again, signs,
# and sends no PIN of its own accord.
t_other_program() {
	local fifo=$tmp/in.fifo sig=$tmp/sig.other before vf
	before=$(tries)
	vf=$(stat_value verify_fail)
	rm -f "$fifo"
	mkfifo "$fifo" || return 1
	# shellcheck disable=SC2086 # the wrapper is a command line
	KYSO_DEBUG=2 ${KYSO_TEST_WRAPPER:-} pkcs11-tool --module "$module" \
		--login --pin "$pin" \
		--sign -m SHA256-RSA-PKCS --id "$rsa_id" -i "$fifo" \
		-o "$sig" >"$tmp/other.log" 2>&1 </dev/null &
	local pid=$!
	# the module is bound and logged in once pkcs11-tool waits for input
	for _ in $(seq 50); do
		grep -q "C_Login(1): 0x0" "$tmp/other.log" && break
		sleep 0.1
	done
	opensc-tool -n >/dev/null 2>&1 || { echo "opensc-tool failed"; return 1; }
	cat "$data" >"$fifo"
	wait $pid || { tail -20 "$tmp/other.log"; return 1; }
	grep -q "session lost; authenticating again" "$tmp/other.log" || {
		echo "kyso did not notice the other session"
		return 1
	}
	verify "$tmp/pub-$rsa_id.pem" "$sig" "$data" -sha256 || return 1
	[ "$(tries)" = "$before" ] && [ "$(stat_value verify_fail)" = "$vf" ]
}

t_apdus() {
	local a b
	a=$(stat_value apdus)
	p11 --login --pin "$pin" --sign -m SHA256-RSA-PKCS --id "$rsa_id" \
		-i "$data" -o "$tmp/sig.count" || return 1
	b=$(stat_value apdus)
	echo "# $variant: one pkcs11-tool signature process (bind, login, sign): $((b - a)) APDUs" >>"$results.counts"
	echo "$((b - a))" >"$tmp/apdus"
}

# Key pairs made on the token, a certificate written for one, each key
# signing; OpenSC reads the same public keys and the certificate back (a
# host stack we did not write), and the certificate is deleted again.
t_keygen() {
	local a b
	a=$(stat_value apdus)
	p11 --login --pin "$pin" --keypairgen --key-type rsa:2048 --id 44 \
		--label "kyso rsa" || return 1
	b=$(stat_value apdus)
	echo "# $variant: one RSA-2048 key generation process: $((b - a)) APDUs" >>"$results.counts"
	p11 --login --pin "$pin" --keypairgen --key-type EC:prime256v1 \
		--id 45 --label "kyso ec" || return 1
	# The public keys through GnuTLS's p11tool: pkcs11-tool 0.23's
	# --read-object writes no EC key when a sanitizer runtime is preloaded
	# (make check-sanitize), whichever module it reads.
	for id in 44 45; do
		# shellcheck disable=SC2086 # the wrapper is a command line
		GNUTLS_PIN=$pin ${KYSO_TEST_WRAPPER:-} p11tool \
			--provider "$module" --login \
			--export-pubkey "pkcs11:id=%$id;type=public" \
			--outfile "$tmp/pub-$id.pem" </dev/null &&
			openssl pkey -pubin -in "$tmp/pub-$id.pem" -outform DER \
				-out "$tmp/gen$id.der" || return 1
		pkcs15-tool --read-public-key $id 2>/dev/null |
			openssl pkey -pubin -outform DER |
			cmp - "$tmp/gen$id.der" || {
			echo "OpenSC reads another public key for $id"
			return 1
		}
	done
	openssl req -new -key "$work/ca.key" -subj "/CN=kyso generated" \
		-out "$tmp/gen.csr" 2>/dev/null &&
		openssl x509 -req -in "$tmp/gen.csr" -CA "$work/ca.pem" \
			-CAkey "$work/ca.key" -force_pubkey "$tmp/pub-44.pem" \
			-days 3 -outform DER -out "$tmp/gen44.crt" 2>/dev/null ||
		return 1
	p11 --login --pin "$pin" --write-object "$tmp/gen44.crt" --type cert \
		--id 44 || return 1
	pkcs15-tool --read-certificate 44 2>/dev/null |
		openssl x509 -outform DER | cmp - "$tmp/gen44.crt" || {
		echo "OpenSC reads another certificate"
		return 1
	}
	t_sign 44 SHA256-RSA-PKCS sha256 || return 1
	t_sign 44 SHA256-RSA-PKCS-PSS sha256 pss || return 1
	t_sign_ec 45 ECDSA-SHA256 sha256 || return 1
	t_decrypt 44 || return 1
	p11 --login --pin "$pin" --delete-object --type cert --id 44 ||
		return 1
	cert_ids | grep -qx 44 && { echo "kyso still lists it"; return 1; }
	! pkcs15-tool --read-certificate 44 >/dev/null 2>&1
}

# The user PIN blocked by wrong PINs, then set anew under the PUK (the
# SO-level key of pkcs15-init's layout): pkcs11-tool's C_Login(CKU_SO) and
# C_InitPIN. The card's counter goes to 0, then back to its maximum.
t_unblock() {
	local max out n=0 new=11223344
	max=$(sed -n "s/^k\.$pindf\.01\.max=//p" "$KYSO_VCARD_STATE")
	while [ "$(tries)" -gt 0 ] && [ $n -lt 20 ]; do
		p11 --login --pin 999999 -O >/dev/null 2>&1
		n=$((n + 1))
	done
	[ "$(tries)" = 0 ] || { echo "counter $(tries) after $n tries"; return 1; }
	out=$(p11 --login --pin "$pin" -O 2>&1) && return 1
	echo "$out" | grep -q CKR_PIN_LOCKED || { echo "$out"; return 1; }
	p11 --login --login-type so --so-pin "$PUK" --init-pin \
		--new-pin "$new" || return 1
	[ "$(tries)" = "$max" ] || { echo "counter $(tries), max $max"; return 1; }
	p11 --login --pin "$new" --sign -m SHA256-RSA-PKCS --id "$rsa_id" \
		-i "$data" -o "$tmp/sig.unblocked" || return 1
	verify "$tmp/pub-$rsa_id.pem" "$tmp/sig.unblocked" "$data" -sha256 ||
		return 1
	p11 --login --pin "$new" --change-pin --new-pin "$pin"
}

# ESPK: nothing but the PIN key changes on the token.
t_read_only() {
	local before after
	before=$(grep '^f\.' "$KYSO_VCARD_STATE" | sha256sum)
	p11 --login --pin "$pin" --keypairgen --key-type rsa:2048 \
		--id 77 --label new >/dev/null 2>&1 && {
		echo "key generation accepted"
		return 1
	}
	p11 --login --pin "$pin" --write-object "$tmp/cert-$rsa_id.der" \
		--type cert --id 78 >/dev/null 2>&1 && {
		echo "certificate writing accepted"
		return 1
	}
	after=$(grep '^f\.' "$KYSO_VCARD_STATE" | sha256sum)
	[ "$before" = "$after" ]
}

# The CKA_IDs of the certificates kyso lists.
cert_ids() {
	p11 -O 2>/dev/null | awk '
		/^Certificate Object/ { c = 1; next }
		/^[A-Z]/ { c = 0 }
		c && /ID:/ { print $2 }'
}

# The CKA_ID of the certificate whose subject is "kyso ESPK N".
espk_id() {
	p11 -O 2>/dev/null | awk -v cn="CN=kyso ESPK $1" '
		/^Certificate Object/ { c = 1; s = 0; next }
		/^[A-Z]/ { c = 0 }
		c && /subject:/ && index($0, cn) { s = 1 }
		c && s && /ID:/ { print $2; exit }'
}

inside() {
	local n id
	tmp=$KYSO_TEST_TMP
	for n in 1 2; do
		case $rsa_id$rsa2_id in
		*@$n*)
			id=$(espk_id "$n")
			[ -n "$id" ] || { fail "certificate $n found"; continue; }
			cp "$work/pub-$n.pem" "$work/pub-$id.pem"
			cp "$work/cert-$n.pem" "$work/cert-$id.pem"
			[ "$rsa_id" = "@$n" ] && rsa_id=$id
			[ "$rsa2_id" = "@$n" ] && rsa2_id=$id
			;;
		esac
	done
	data=$tmp/data
	printf 'kyso signs with a virtual ePass2003 (%s), %s\n' "$variant" \
		"$(date -u +%FT%T)" >"$data"
	for f in "$work"/pub-*.pem; do
		cp "$f" "$tmp/"
	done
	for f in "$work"/cert-*.pem; do
		id=$(basename "$f" .pem)
		id=${id#cert-}
		openssl x509 -in "$f" -outform DER -out "$tmp/cert-$id.der"
	done

	check "the token is listed as a Feitian ePass2003" t_token
	check "$ncerts certificates, and as many private keys after login" \
		t_objects
	for h in sha1 sha256 sha384 sha512; do
		H=$(echo "$h" | tr "[:lower:]" "[:upper:]")
		check "RSA-2048 ${H}-RSA-PKCS verifies" \
			t_sign "$rsa_id" "$H-RSA-PKCS" "$h"
	done
	for h in sha256 sha384 sha512; do
		H=$(echo "$h" | tr "[:lower:]" "[:upper:]")
		check "RSA-2048 ${H}-RSA-PKCS-PSS verifies" \
			t_sign "$rsa_id" "$H-RSA-PKCS-PSS" "$h" pss
	done
	check "RSA-2048 RSA-PKCS over a DigestInfo verifies" \
		t_sign_rsa_raw "$rsa_id"
	if [ -n "$rsa2_id" ]; then
		check "second RSA key SHA256-RSA-PKCS verifies" \
			t_sign "$rsa2_id" SHA256-RSA-PKCS sha256
		check "second RSA key SHA256-RSA-PKCS-PSS verifies" \
			t_sign "$rsa2_id" SHA256-RSA-PKCS-PSS sha256 pss
	fi
	if [ -n "$ec_id" ]; then
		for h in sha1 sha256 sha384 sha512; do
			H=$(echo "$h" | tr "[:lower:]" "[:upper:]")
			check "P-256 ECDSA-$H verifies" \
				t_sign_ec "$ec_id" "ECDSA-$H" "$h"
		done
		check "P-256 ECDSA over a given hash verifies" \
			t_sign_ec_raw "$ec_id"
	fi
	if [ "$variant" = epass2003-espk ]; then
		check "RSA-PKCS decryption gives the secret back" \
			t_decrypt "$rsa_id"
	fi
	check "a wrong PIN costs exactly one try on the card" t_wrong_pin
	check "the right PIN restores the card's counter" t_right_pin_restores
	check "the PIN is changed, the old one refused, the new one signs" \
		t_change_pin
	check "pulled and put back, the token signs again" t_removal
	if [ "$variant" != epass2003-espk ]; then
		check "after another program's session kyso authenticates again and signs" \
			t_other_program
	fi
	check "APDUs of one signing process are counted" t_apdus
	if [ "$variant" = epass2003-espk ]; then
		check "the ESPK token is left as it was (read only)" t_read_only
	else
		check "generated keys sign, a certificate is written and deleted, OpenSC reads the same" \
			t_keygen
		check "a blocked PIN is set anew under the PUK (SO login, C_InitPIN)" \
			t_unblock
	fi
	echo "DONE" >>"$results.done"
}

if [ "${1:-}" = --inside ]; then
	variant=$2 work=$3 pin=$4 label=$5 ncerts=$6 rsa_id=$7 rsa2_id=$8
	ec_id=$9 pindf=${10}
	PUK=12345678
	# shellcheck source=tests/integration/epass2003-provision.sh
	. "$here/epass2003-provision.sh"
	# OpenSC's 3DES secure messaging needs OpenSSL's legacy provider
	epass2003_host_env "$KYSO_TEST_TMP" "$variant"
	inside
	exit 0
fi

# --- outside: provisioning and one card session per variant ---------------

for tool in pkcs11-tool openssl pkcs15-init pkcs15-tool opensc-tool p11tool \
	sha256sum; do
	command -v "$tool" >/dev/null || {
		echo "$me: missing $tool" >&2
		exit 1
	}
done
for f in "$module" "$espk_build"; do
	[ -e "$f" ] || {
		echo "$me: missing $f (built?)" >&2
		exit 1
	}
done
# shellcheck source=tests/integration/epass2003-provision.sh
. "$here/epass2003-provision.sh"

base=${TMPDIR:-/tmp}
top=$(mktemp -d "$base/kyso-epk.XXXXXX") || exit 1
trap '[ -n "${KYSO_KEEP_TMP:-}" ] && echo "$me: kept $top" >&2 || rm -rf "$top"' EXIT
results=$top/results
: >"$results"
: >"$results.counts"
export EP_KYSO_RESULTS=$results
start=$SECONDS

variants=${*:-epass2003 epass2003-aes epass2003-fips epass2003-espk}
for variant in $variants; do
	work=$top/$variant
	mkdir -p "$work"
	: >"$results.done"
	if [ "$variant" = epass2003-espk ]; then
		ok=1
		for i in 1 2; do
			openssl genpkey -algorithm RSA \
				-pkeyopt rsa_keygen_bits:2048 \
				-out "$work/key$i.pem" 2>/dev/null &&
				openssl req -x509 -key "$work/key$i.pem" -days 30 \
					-subj "/CN=kyso ESPK $i" \
					-out "$work/cert-$i.pem" &&
				openssl x509 -in "$work/cert-$i.pem" -pubkey \
					-noout >"$work/pub-$i.pem" || ok=0
		done
		if [ $ok != 1 ] || ! "$espk_build" "$work/state" 12345678 \
			87654321 "KYSO TEST TOKEN" "$work/key1.pem" \
			"$work/cert-1.pem" "$work/key2.pem" "$work/cert-2.pem"; then
			fail "the ESPK fixture is built"
			continue
		fi
		pass "the ESPK fixture is built (espk-build)"
		# keys are found by the certificate's subject inside (container
		# 1 has its own CKA_ID, container 2 none: kyso pairs it)
		args=("$work" 12345678 "KYSO TEST TOKEN" 2 @1 @2 "" 3F002003)
	else
		if epass2003_provision "$work" "$variant" >"$work/provision.log" 2>&1 ||
			{ [ "$variant" = epass2003-fips ] &&
				epass2003_provision "$work" "$variant" \
					>"$work/provision.log" 2>&1; }; then
			pass "OpenSC provisioned the token"
		else
			fail "OpenSC provisioned the token"
			sed 's/^/    | /' "$work/provision.log"
			continue
		fi
		args=("$work" "$EPASS2003_PIN" "kyso ePass2003" 3 01 03 02 3F005015)
	fi
	cp "$work/state" "$work/state.run"
	"$top_srcdir/tests/with-card" --profile "$variant" \
		--state "$work/state.run" --timeout 600 -- \
		bash "$self" --inside "$variant" "${args[@]}"
	rc=$?
	grep -q DONE "$results.done" ||
		fail "the checks ran to their end (with-card exited $rc)"
done

npass=$(grep -c '^PASS' "$results")
nfail=$(grep -c '^FAIL' "$results")
cat "$results.counts"
echo "# $((SECONDS - start)) s"
echo "$npass passed, $nfail failed"
[ "$nfail" = 0 ] && [ "$npass" -gt 0 ]
