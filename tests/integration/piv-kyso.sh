#!/usr/bin/env bash
# piv-kyso.sh: kyso-pkcs11.so against a virtual PIV card, driven by programs
# we did not write. A card is provisioned by piv-provision.sh (yubico-piv-tool
# and a throwaway CA); OpenSC's pkcs11-tool then drives OUR module: objects
# before and after login, every signature mechanism with each key that may
# sign, decryption with 9D, pkcs11-tool's own --test, threads and fork, PIN
# counting down to blocked and the PUK unblock, PIN change, on-card key
# generation with certificate writing and deletion; piv-removal (C) pulls the
# card mid-session. openssl checks every signature and every decryption
# against the public keys of the certificates piv-provision.sh made, never
# against what kyso reports; PIN tries are read from the card's own counters
# (state file, stats, APDU log).
#
# Each part runs in its own tests/with-card session on a copy of the
# provisioned card, so one failure does not hide the next. One line per
# check, then 'N passed, M failed'; exit 0 only when every check passed.
# A missing tool or build product is a failure, never a skip.
#
# Environment: top_srcdir, top_builddir, KYSO_MODULE (default
# $top_builddir/.libs/kyso-pkcs11.so), and what tests/with-card reads.

# Checks are written `check NAME eval '...'`: the single-quoted body expands
# when the check runs, with the calling part's variables (bash scoping).
# shellcheck disable=SC2016,SC2034

set -u -o pipefail

me=piv-kyso
self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
here=$(dirname "$self")
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
module=${KYSO_MODULE:-$top_builddir/.libs/kyso-pkcs11.so}
removal_bin=${PIV_REMOVAL:-$top_builddir/tests/integration/piv-removal}
export top_srcdir top_builddir KYSO_MODULE=$module

PIN=123456
PUK=12345678
MGMT=010203040506070801020304050607080102030405060708
hashes="sha1 sha224 sha256 sha384 sha512"

# --- results -----------------------------------------------------------------

# Set by the outer script; the inner parts append to the same file.
results=${PIV_KYSO_RESULTS:-}

pass() {
	echo "PASS: $*"
	echo "PASS $*" >>"$results"
}

fail() {
	echo "FAIL: $*"
	echo "FAIL $*" >>"$results"
}

note() {
	echo "note: $*"
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

# --- helpers used inside the card sessions --------------------------------------

# KYSO_TEST_WRAPPER (make check-valgrind) goes before every program that
# loads the module.
p11() {
	# shellcheck disable=SC2086 # the wrapper is a command line
	${KYSO_TEST_WRAPPER:-} pkcs11-tool --module "$module" "$@" </dev/null
}

# kyso-vcard sends its answer before it rewrites its state and stats files,
# so right after a host program's last APDU they can be one command behind
# (seen in 15 of 100 failed logins). Settled: the stats count every command
# the log shows (the log line is written before the answer).
card_settled() {
	local i
	for ((i = 0; i < 300; i++)); do
		[ "$(sed -n 's/^apdus=//p' "$KYSO_VCARD_STATS")" = \
			"$(grep -c '^> ' "$KYSO_VCARD_LOG")" ] && return 0
		sleep 0.01
	done
	echo "$me: the card's stats did not catch up with its APDU log" >&2
	return 1
}

state_value() {
	card_settled
	sed -n "s/^$1=//p" "$KYSO_VCARD_STATE"
}

stat_value() {
	card_settled
	sed -n "s/^$1=//p" "$KYSO_VCARD_STATS"
}

log_lines() {
	wc -l <"$KYSO_VCARD_LOG"
}

# Commands the card got since log line $1, one "> HEX" a line.
log_since() {
	tail -n +"$(($1 + 1))" "$KYSO_VCARD_LOG" | grep '^> ' | tr -d ' >'
}

# VERIFY of the PIN with data (not the status query without data).
count_verify_data() {
	grep -c '^0020008008' || true
}

bin2hex() {
	od -An -v -tx1 | tr -d ' \n'
}

hex2bin() {
	# shellcheck disable=SC2001,SC2059 # the escapes are the point
	printf "$(sed 's/../\\x&/g' <<<"$1")"
}

upper() {
	tr '[:lower:]' '[:upper:]' <<<"$1"
}

# "sha1" -> mechanism spelling "SHA1"; hash algorithm spelling "SHA-1".
mech_hash() {
	upper "$1"
}

alg_hash() {
	if [ "$1" = sha1 ]; then echo SHA-1; else upper "$1"; fi
}

hash_len() {
	case $1 in
	sha1) echo 20 ;; sha224) echo 28 ;; sha256) echo 32 ;;
	sha384) echo 48 ;; sha512) echo 64 ;;
	esac
}

# Objects of a pkcs11-tool -O listing, one "class|id|label|header|access"
# line each (class: Certificate, Public, Private, Data).
objects() {
	awk '
	function out() { if (cls != "") print cls "|" id "|" label "|" hdr "|" acc }
	/^[A-Z][a-z]+ (Key )?[Oo]bject|^Data object/ {
		out(); cls = $1; id = ""; label = ""; acc = ""; hdr = $0; next }
	/^  label:/ { sub(/^  label: */, ""); label = $0 }
	/^  ID:/ { id = $2 }
	/^  Access:/ { sub(/^  Access: */, ""); acc = $0 }
	END { out() }' "$1"
}

count_objects() { # FILE CLASS ID
	objects "$1" | awk -F'|' -v c="$2" -v i="$3" '$1 == c && $2 == i' | wc -l
}

object_field() { # FILE CLASS ID FIELD(3 label, 4 header, 5 access)
	objects "$1" | awk -F'|' -v c="$2" -v i="$3" -v f="$4" \
		'$1 == c && $2 == i { print $f; exit }'
}

# The EC_POINT line pkcs11-tool prints for the public key object with ID id
# (the DER OCTET STRING around the point, in hex).
ec_point_of() { # FILE ID
	awk -v want="$2" '
	/^[A-Z][a-z]+ (Key )?[Oo]bject/ { pub = ($1 == "Public"); pt = "" }
	pub && /^  EC_POINT:/ { pt = $2 }
	pub && /^  ID:/ && $2 == want && pt != "" { print pt; exit }' "$1"
}

# The point of an EC public key (PEM) as pkcs11-tool prints CKA_EC_POINT.
pem_ec_point() {
	local hex n
	hex=$(openssl pkey -pubin -in "$1" -outform DER | bin2hex)
	case ${#hex} in
	182) n=65 ;;  # P-256 SPKI: 26-byte header + 65-byte point
	240) n=97 ;;  # P-384 SPKI: 23-byte header + 97-byte point
	*) return 1 ;;
	esac
	printf '04%02x%s\n' "$n" "${hex: -$((2 * n))}"
}

# A PEM public key from pkcs11-tool's EC_POINT (04 len point).
ec_point_pem() { # POINT OUT
	local pt=$1 hdr
	case ${pt:0:4} in
	0441) hdr=3059301306072a8648ce3d020106082a8648ce3d030107034200 ;;
	0461) hdr=3076301006072a8648ce3d020106052b81040022036200 ;;
	*) return 1 ;;
	esac
	hex2bin "$hdr${pt:4}" | openssl pkey -pubin -inform DER -out "$2"
}

pub_der_hex() {
	openssl pkey -pubin -in "$1" -outform DER | bin2hex
}

# --- part 1 and 8: objects -----------------------------------------------------

part_objects() {
	local w=$1 t=$KYSO_TEST_TMP id slot label
	local -A slot_of=([01]=9a [02]=9c [03]=9d [04]=9e)
	local -A type_of=([01]=RSA [02]=EC [03]=RSA [04]=EC)

	echo "# objects before and after login"
	check "pkcs11-tool -O before login" p11 -O -o /dev/null
	p11 -O >"$t/o-public" 2>&1
	p11 -O --login --pin $PIN >"$t/o-user" 2>&1
	for id in 01 02 03 04; do
		slot=${slot_of[$id]}
		check "before login: one certificate with ID $id ($slot)" \
			test "$(count_objects "$t/o-public" Certificate $id)" = 1
		check "before login: one public key with ID $id ($slot)" \
			test "$(count_objects "$t/o-public" Public $id)" = 1
	done
	for id in 01 02 03; do
		check "before login: the PIN-protected private key $id is not listed" \
			test "$(count_objects "$t/o-public" Private $id)" = 0
	done
	check "before login: the 9E private key (no PIN on the card) is listed" \
		test "$(count_objects "$t/o-public" Private 04)" = 1
	check "after login: four certificates, four public and four private keys" \
		test "$(grep -c '^Certificate Object' "$t/o-user")" = 4 -a \
		"$(grep -c '^Public Key Object' "$t/o-user")" = 4 -a \
		"$(grep -c '^Private Key Object' "$t/o-user")" = 4
	for id in 01 02 03 04; do
		slot=${slot_of[$id]}
		check "after login: one private key with ID $id ($slot), ${type_of[$id]}" \
			eval '[ "$(count_objects "$t/o-user" Private "$id")" = 1 ] &&
			object_field "$t/o-user" Private "$id" 4 |
			grep -q "^Private Key Object; ${type_of[$id]}"'
		label=$(object_field "$t/o-user" Certificate $id 3)
		check "ID $id: certificate, public and private key share the label '$label'" \
			test -n "$label" -a \
			"$(object_field "$t/o-user" Public $id 3)" = "$label" -a \
			"$(object_field "$t/o-user" Private $id 3)" = "$label"
	done
	check "9C private key is CKA_ALWAYS_AUTHENTICATE, the others are not" \
		eval 'object_field "$t/o-user" Private 02 5 | grep -q "always authenticate" &&
		! object_field "$t/o-user" Private 01 5 | grep -q "always authenticate" &&
		! object_field "$t/o-user" Private 03 5 | grep -q "always authenticate" &&
		! object_field "$t/o-user" Private 04 5 | grep -q "always authenticate"'

	for id in 01 02 03 04; do
		slot=${slot_of[$id]}
		check "certificate $id read through kyso is cert-$slot.pem" \
			eval 'p11 --read-object --type cert --id "$id" -o "$t/c.der" &&
			[ "$(openssl x509 -inform DER -in "$t/c.der" -noout -fingerprint -sha256)" = \
			"$(openssl x509 -in "$w/card/cert-$slot.pem" -noout -fingerprint -sha256)" ]'
	done
	for id in 01 03; do
		slot=${slot_of[$id]}
		check "public key $id read through kyso is the key of cert-$slot.pem" \
			eval 'p11 --read-object --type pubkey --id "$id" -o "$t/p.der" &&
			[ "$(bin2hex <"$t/p.der")" = "$(pub_der_hex "$w/in/pub-$slot.pem")" ]'
	done
	# pkcs11-tool 0.23 cannot export EC public keys ("cannot create
	# EVP_PKEY" for P-384, with OpenSC's own module too): compare the
	# CKA_EC_POINT it lists instead.
	for id in 02 04; do
		slot=${slot_of[$id]}
		check "EC public key $id listed by kyso is the key of cert-$slot.pem" \
			test "$(ec_point_of "$t/o-public" $id)" = \
			"$(pem_ec_point "$w/in/pub-$slot.pem")"
	done
}

# --- part 2: signatures ------------------------------------------------------------

# Every function signs with pkcs11-tool through kyso, then openssl verifies
# against the certificate's public key. Outputs go to the check's log.

sig_hash_pkcs1() { # HASH
	local h=$1 t=$KYSO_TEST_TMP in=$2
	rm -f "$t/sig"
	p11 --login --pin $PIN --sign -m "$(mech_hash "$h")-RSA-PKCS" --id 01 \
		-i "$in/data" -o "$t/sig" &&
		openssl dgst -"$h" -verify "$in/pub-9a.pem" -signature "$t/sig" \
			"$in/data"
}

sig_hash_pss() { # HASH MGF-HASH SALT IN
	local h=$1 mh=$2 salt=$3 in=$4 t=$KYSO_TEST_TMP
	rm -f "$t/sig"
	p11 --login --pin $PIN --sign -m "$(mech_hash "$h")-RSA-PKCS-PSS" \
		--mgf "MGF1-$(mech_hash "$mh")" --salt-len "$salt" --id 01 \
		-i "$in/data" -o "$t/sig" &&
		openssl dgst -"$h" -sigopt rsa_padding_mode:pss \
			-sigopt rsa_pss_saltlen:"$salt" -sigopt rsa_mgf1_md:"$mh" \
			-verify "$in/pub-9a.pem" -signature "$t/sig" "$in/data"
}

sig_raw_pss() { # HASH SALT IN (input: the hash itself)
	local h=$1 salt=$2 in=$3 t=$KYSO_TEST_TMP
	rm -f "$t/sig"
	p11 --login --pin $PIN --sign -m RSA-PKCS-PSS \
		--hash-algorithm "$(alg_hash "$h")" --mgf "MGF1-$(mech_hash "$h")" \
		--salt-len "$salt" --id 01 -i "$in/h-$h" -o "$t/sig" &&
		openssl pkeyutl -verify -pubin -inkey "$in/pub-9a.pem" \
			-pkeyopt rsa_padding_mode:pss -pkeyopt digest:"$h" \
			-pkeyopt rsa_mgf1_md:"$h" -pkeyopt rsa_pss_saltlen:"$salt" \
			-in "$in/h-$h" -sigfile "$t/sig"
}

sig_pkcs1_digestinfo() { # IN
	local in=$1 t=$KYSO_TEST_TMP
	rm -f "$t/sig"
	p11 --login --pin $PIN --sign -m RSA-PKCS --id 01 -i "$in/di-sha256" \
		-o "$t/sig" &&
		openssl dgst -sha256 -verify "$in/pub-9a.pem" -signature "$t/sig" \
			"$in/data"
}

sig_pkcs1_recover() { # IN: RSA-PKCS over arbitrary short data
	local in=$1 t=$KYSO_TEST_TMP
	rm -f "$t/sig" "$t/rec"
	p11 --login --pin $PIN --sign -m RSA-PKCS --id 01 -i "$in/short" \
		-o "$t/sig" &&
		openssl pkeyutl -verifyrecover -pubin -inkey "$in/pub-9a.pem" \
			-pkeyopt rsa_padding_mode:pkcs1 -in "$t/sig" -out "$t/rec" &&
		cmp "$t/rec" "$in/short"
}

sig_x509() { # IN: raw RSA over a modulus-sized block
	local in=$1 t=$KYSO_TEST_TMP
	rm -f "$t/sig" "$t/rec"
	p11 --login --pin $PIN --sign -m RSA-X-509 --id 01 -i "$in/block" \
		-o "$t/sig" &&
		openssl pkeyutl -verifyrecover -pubin -inkey "$in/pub-9a.pem" \
			-pkeyopt rsa_padding_mode:none -in "$t/sig" -out "$t/rec" &&
		cmp "$t/rec" "$in/block"
}

sig_ecdsa_hash() { # ID SLOT HASH IN
	local id=$1 slot=$2 h=$3 in=$4 t=$KYSO_TEST_TMP
	rm -f "$t/sig"
	p11 --login --pin $PIN --sign -m "ECDSA-$(mech_hash "$h")" --id "$id" \
		--signature-format openssl -i "$in/data" -o "$t/sig" &&
		openssl dgst -"$h" -verify "$in/pub-$slot.pem" -signature "$t/sig" \
			"$in/data"
}

sig_ecdsa_raw() { # ID SLOT HASH IN (input: the hash, any size)
	local id=$1 slot=$2 h=$3 in=$4 t=$KYSO_TEST_TMP
	rm -f "$t/sig"
	p11 --login --pin $PIN --sign -m ECDSA --id "$id" \
		--signature-format openssl -i "$in/h-$h" -o "$t/sig" &&
		openssl pkeyutl -verify -pubin -inkey "$in/pub-$slot.pem" \
			-in "$in/h-$h" -sigfile "$t/sig"
}

# One cold signature (new process: load, bind, login, sign) and what the
# card saw of it; prints the APDU count.
cold_sign() { # ID SLOT VERIFYS MECH... (after -m)
	local id=$1 slot=$2 nverify=$3 mech=$4 in=$5 t=$KYSO_TEST_TMP
	local a0 p0 f0 l0 a1 p1 f1 nv
	a0=$(stat_value apdus) p0=$(stat_value privops) f0=$(stat_value verify_fail)
	l0=$(log_lines)
	rm -f "$t/sig"
	if ! p11 --login --pin $PIN --sign -m "$mech" --id "$id" \
		--signature-format openssl -i "$in/data" -o "$t/sig" >"$t/cold" 2>&1; then
		fail "cold sign with $slot ($mech)"
		sed 's/^/    | /' "$t/cold"
		return
	fi
	a1=$(stat_value apdus) p1=$(stat_value privops) f1=$(stat_value verify_fail)
	nv=$(log_since "$l0" | count_verify_data)
	echo "cold sign with $slot ($mech: load, bind, login, sign): $((a1 - a0)) APDUs," \
		"$((p1 - p0)) private-key operation(s), $nv VERIFY with a PIN"
	check "cold sign with $slot: the card made exactly one private-key operation" \
		test $((p1 - p0)) = 1
	check "cold sign with $slot: the PIN went to the card $nverify time(s), never wrong" \
		test "$nv" = "$nverify" -a $((f1 - f0)) = 0
	check "cold sign with $slot: openssl verifies the signature" \
		openssl dgst -sha256 -verify "$in/pub-$slot.pem" -signature "$t/sig" \
		"$in/data"
}

part_sign() {
	local w=$1 in=$1/in h hl t=$KYSO_TEST_TMP l0 ga prev nv

	echo "# signatures through kyso, verified by openssl with the certificates' keys"
	check "RSA-PKCS (DigestInfo SHA-256) with 9A" sig_pkcs1_digestinfo "$in"
	check "RSA-PKCS (short raw data) with 9A, openssl recovers the data" \
		sig_pkcs1_recover "$in"
	check "RSA-X-509 (raw) with 9A, openssl recovers the block" sig_x509 "$in"
	for h in $hashes; do
		hl=$(hash_len "$h")
		check "$(mech_hash "$h")-RSA-PKCS with 9A" sig_hash_pkcs1 "$h" "$in"
		check "$(mech_hash "$h")-RSA-PKCS-PSS (MGF1-$(mech_hash "$h"), salt $hl) with 9A" \
			sig_hash_pss "$h" "$h" "$hl" "$in"
		check "RSA-PKCS-PSS over a $(alg_hash "$h") hash (salt $hl) with 9A" \
			sig_raw_pss "$h" "$hl" "$in"
	done
	check "SHA256-RSA-PKCS-PSS with salt 0 with 9A" sig_hash_pss sha256 sha256 0 "$in"
	check "SHA256-RSA-PKCS-PSS with MGF1-SHA1, salt 20 with 9A" \
		sig_hash_pss sha256 sha1 20 "$in"
	check "RSA-PKCS-PSS over a SHA-256 hash, salt 0 with 9A" sig_raw_pss sha256 0 "$in"
	for h in $hashes; do
		check "ECDSA-$(mech_hash "$h") with 9C (P-256)" sig_ecdsa_hash 02 9c "$h" "$in"
		check "ECDSA-$(mech_hash "$h") with 9E (P-384)" sig_ecdsa_hash 04 9e "$h" "$in"
		check "ECDSA over a $(alg_hash "$h") hash with 9C (P-256)" \
			sig_ecdsa_raw 02 9c "$h" "$in"
		check "ECDSA over a $(alg_hash "$h") hash with 9E (P-384)" \
			sig_ecdsa_raw 04 9e "$h" "$in"
	done

	echo "# 9C: the card gets the PIN again right before each use"
	l0=$(log_lines)
	check "ECDSA-SHA256 with 9C (for the APDU log)" sig_ecdsa_hash 02 9c sha256 "$in"
	ga=$(log_since "$l0" | grep -n '^0087119C' | head -n 1 | cut -d: -f1)
	prev=''
	[ -n "$ga" ] && [ "$ga" -gt 1 ] &&
		prev=$(log_since "$l0" | sed -n "$((ga - 1))p")
	nv=$(log_since "$l0" | count_verify_data)
	check "9C: the command right before GENERAL AUTHENTICATE is a VERIFY with the PIN" \
		eval '[[ "$prev" == 0020008008* ]]'
	check "9C: two VERIFYs with the PIN (login and context-specific login), saw $nv" \
		test "$nv" = 2

	echo "# APDUs of one cold signature (from the card's stats)"
	cold_sign 01 9a 1 SHA256-RSA-PKCS "$in"
	cold_sign 02 9c 2 ECDSA-SHA256 "$in"
	cold_sign 04 9e 1 ECDSA-SHA256 "$in"
}

# --- part 3: decryption with 9D ----------------------------------------------------

# openssl encrypts IN/PLAIN to cert-9d.pem's key; kyso decrypts with 9D.
decrypt_with() { # IN PLAIN OPENSSL-OPTS... -- PKCS11-OPTS...
	local in=$1 pt=$2 t=$KYSO_TEST_TMP o=() p=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do o+=("$1") && shift; done
	shift
	p=("$@")
	rm -f "$t/ct" "$t/pt"
	openssl pkeyutl -encrypt -pubin -inkey "$in/pub-9d.pem" "${o[@]}" \
		-in "$in/$pt" -out "$t/ct" &&
		p11 --login --pin $PIN --decrypt --id 03 "${p[@]}" -i "$t/ct" \
			-o "$t/pt" &&
		cmp "$t/pt" "$in/$pt"
}

part_decrypt() {
	local in=$1/in t=$KYSO_TEST_TMP

	echo "# decryption with 9D of what openssl encrypted to cert-9d.pem"
	check "RSA-PKCS (PKCS#1 v1.5) decryption with 9D" \
		decrypt_with "$in" data -- -m RSA-PKCS
	check "RSA-PKCS-OAEP SHA-1 decryption with 9D" \
		decrypt_with "$in" data -pkeyopt rsa_padding_mode:oaep \
		-pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1 -- \
		-m RSA-PKCS-OAEP --hash-algorithm SHA-1 --mgf MGF1-SHA1
	check "RSA-PKCS-OAEP SHA-256 decryption with 9D" \
		decrypt_with "$in" data -pkeyopt rsa_padding_mode:oaep \
		-pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -- \
		-m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256
	check "RSA-PKCS-OAEP SHA-384 decryption with 9D" \
		decrypt_with "$in" data -pkeyopt rsa_padding_mode:oaep \
		-pkeyopt rsa_oaep_md:sha384 -pkeyopt rsa_mgf1_md:sha384 -- \
		-m RSA-PKCS-OAEP --hash-algorithm SHA384 --mgf MGF1-SHA384
	check "RSA-X-509 (raw) decryption with 9D" \
		decrypt_with "$in" block -pkeyopt rsa_padding_mode:none -- -m RSA-X-509
	check "a ciphertext for 9A's key does not decrypt with 9D" \
		eval 'openssl pkeyutl -encrypt -pubin -inkey "$in/pub-9a.pem" \
			-in "$in/data" -out "$t/ct9a" &&
		! p11 --login --pin $PIN --decrypt --id 03 -m RSA-PKCS \
			-i "$t/ct9a" -o "$t/pt9a"'
}

# --- part 4: pkcs11-tool's own tests ----------------------------------------------

part_selftest() {
	local w=$1 in=$1/in t=$KYSO_TEST_TMP rc

	echo "# pkcs11-tool --test, --test-threads, --test-fork"
	p11 --test --login --pin $PIN >"$t/test" 2>&1
	rc=$?
	check "pkcs11-tool --test --login exits 0 and says 'No errors'" \
		eval '[ "$rc" = 0 ] && grep -q "^No errors" "$t/test" &&
		! grep -qi "failed\|ERR:" "$t/test" || { cat "$t/test"; false; }'

	# Threads call C_Initialize (plain and CKF_OS_LOCKING_OK), C_GetInfo,
	# C_GetSlotList and C_GetTokenInfo while the main thread runs --test.
	# A little APDU latency keeps the main thread the last to finish:
	# pkcs11-tool 0.23 sleeps 30 s when a thread outlives it.
	"$top_srcdir/tests/card-ctl" delay apdu 3
	p11 --test-threads IN:GI:SL:T0:GI --test-threads IL:SL:T0:GI \
		--test-threads IN:SL:T0:T0:GI --test --login --pin $PIN \
		>"$t/threads" 2>&1
	rc=$?
	"$top_srcdir/tests/card-ctl" delay apdu 0
	grep -q "waiting for 30 seconds" "$t/threads" &&
		note "a test thread outlived the main one (pkcs11-tool waited 30 s)"
	check "pkcs11-tool --test-threads: every thread ended with CKR_OK" \
		eval '[ "$rc" = 0 ] &&
		grep -q "all threads have ended with CKR_OK" "$t/threads" &&
		[ "$(grep -c "returning rv = 0" "$t/threads")" = 3 ] &&
		! grep -q "Unknown test" "$t/threads" || { cat "$t/threads"; false; }'
	check "pkcs11-tool --test-threads: the main thread's --test has no errors" \
		grep -q "^No errors" "$t/threads"

	pkcs11-tool --help >"$t/help" 2>&1
	if grep -q -- '--test-fork' "$t/help"; then
		rm -f "$t/sig"
		p11 --test-fork --login --pin $PIN --sign -m SHA256-RSA-PKCS \
			--id 01 -i "$in/data" -o "$t/sig" >"$t/fork" 2>&1
		rc=$?
		check "pkcs11-tool --test-fork: the child's C_Initialize succeeds" \
			eval '[ "$rc" = 0 ] &&
			grep -q "Calling C_Initialize in forked child" "$t/fork" &&
			! grep -q "Child process exited" "$t/fork" || { cat "$t/fork"; false; }'
		check "pkcs11-tool --test-fork: the parent signs after the child's C_Initialize" \
			openssl dgst -sha256 -verify "$in/pub-9a.pem" -signature "$t/sig" \
			"$in/data"
	else
		note "this pkcs11-tool has no --test-fork; instead two processes sign at once"
		rm -f "$t/sig1" "$t/sig2"
		p11 --login --pin $PIN --sign -m SHA256-RSA-PKCS --id 01 \
			-i "$in/data" -o "$t/sig1" >"$t/p1" 2>&1 &
		p11 --login --pin $PIN --sign -m SHA256-RSA-PKCS --id 01 \
			-i "$in/data" -o "$t/sig2" >"$t/p2" 2>&1
		wait $!
		check "two processes signing at once: both signatures verify" \
			eval 'openssl dgst -sha256 -verify "$in/pub-9a.pem" -signature "$t/sig1" "$in/data" &&
			openssl dgst -sha256 -verify "$in/pub-9a.pem" -signature "$t/sig2" "$in/data"'
	fi
}

# --- part 6: PIN counting, unblock, change ------------------------------------------

# A login with a wrong PIN and what the card saw of it.
wrong_pin() { # TRY EXPECT-CKR TRIES-AFTER
	local n=$1 want=$2 left=$3 t=$KYSO_TEST_TMP
	local tries0 vf0 l0 tries1 vf1 nv rc
	tries0=$(state_value pin_tries) vf0=$(stat_value verify_fail) l0=$(log_lines)
	p11 --login --pin 000000 -O >"$t/wrong" 2>&1
	rc=$?
	tries1=$(state_value pin_tries) vf1=$(stat_value verify_fail)
	nv=$(log_since "$l0" | count_verify_data)
	check "wrong PIN #$n: pkcs11-tool fails with $want" \
		eval '[ "$rc" != 0 ] && grep -q "C_Login failed: rv = $want" "$t/wrong" ||
		{ cat "$t/wrong"; false; }'
	check "wrong PIN #$n: the card's PIN counter went $tries0 -> $left (saw $tries1)" \
		test "$tries0" = $((left + 1)) -a "$tries1" = "$left"
	check "wrong PIN #$n: the card counted exactly one failed VERIFY (stats $vf0 -> $vf1)" \
		test $((vf1 - vf0)) = 1
	check "wrong PIN #$n: exactly one VERIFY with data reached the card (saw $nv)" \
		test "$nv" = 1
}

sign_ok() { # PIN IN
	local t=$KYSO_TEST_TMP
	rm -f "$t/sig"
	p11 --login --pin "$1" --sign -m SHA256-RSA-PKCS --id 01 -i "$2/data" \
		-o "$t/sig" &&
		openssl dgst -sha256 -verify "$2/pub-9a.pem" -signature "$t/sig" \
			"$2/data"
}

part_pin() {
	local in=$1/in t=$KYSO_TEST_TMP rc l0 p0

	echo "# PIN counting, against the card's own counters"
	check "the fresh card has 3 PIN and 3 PUK tries" \
		test "$(state_value pin_tries)" = 3 -a "$(state_value puk_tries)" = 3
	wrong_pin 1 CKR_PIN_INCORRECT 2
	wrong_pin 2 CKR_PIN_INCORRECT 1
	check "token flags after two wrong PINs: count low, final try" \
		eval 'p11 -T | grep "token flags" | grep "user PIN count low" |
		grep -q "final user PIN try"'
	wrong_pin 3 CKR_PIN_LOCKED 0
	check "token flags after three wrong PINs: user PIN locked" \
		eval 'p11 -T | grep "token flags" | grep -q "user PIN locked"'
	p0=$(stat_value privops)
	check "the right PIN on a blocked card gives CKR_PIN_LOCKED, nothing signed" \
		eval '! p11 --login --pin $PIN --sign -m SHA256-RSA-PKCS --id 01 \
			-i "$in/data" -o "$t/sig" >"$t/locked" 2>&1 &&
		grep -q "rv = CKR_PIN_LOCKED" "$t/locked" &&
		[ "$(stat_value privops)" = "$p0" ] &&
		[ "$(state_value pin_tries)" = 0 ] || { cat "$t/locked"; false; }'

	echo "# unblock with the PUK (C_Login(CKU_SO, PUK) + C_InitPIN)"
	l0=$(log_lines)
	p11 --login --login-type so --so-pin 87654321 --init-pin --new-pin $PIN \
		>"$t/badpuk" 2>&1
	rc=$?
	check "a wrong PUK: C_InitPIN fails with CKR_PIN_INCORRECT" \
		eval '[ "$rc" != 0 ] && grep -q "C_InitPIN failed: rv = CKR_PIN_INCORRECT" "$t/badpuk" ||
		{ cat "$t/badpuk"; false; }'
	check "a wrong PUK costs one PUK try (card: $(state_value puk_tries) left), PIN stays blocked" \
		test "$(state_value puk_tries)" = 2 -a "$(state_value pin_tries)" = 0
	check "a wrong PUK reached the card in exactly one RESET RETRY COUNTER" \
		test "$(log_since "$l0" | grep -c '^002C0080')" = 1
	l0=$(log_lines)
	p11 --login --login-type so --so-pin $PUK --init-pin --new-pin $PIN \
		>"$t/unblock" 2>&1
	rc=$?
	check "pkcs11-tool --login-type so --so-pin PUK --init-pin unblocks" \
		eval '[ "$rc" = 0 ] || { cat "$t/unblock"; false; }'
	check "after unblock the card has 3 PIN tries, 3 PUK tries, PIN $PIN" \
		test "$(state_value pin_tries)" = 3 -a "$(state_value puk_tries)" = 3 -a \
		"$(state_value pin)" = 313233343536FFFF
	check "the unblock was one RESET RETRY COUNTER" \
		test "$(log_since "$l0" | grep -c '^002C0080')" = 1
	check "token flags after unblock: not locked, no count low" \
		eval '! p11 -T | grep "token flags" | grep -q "locked\|count low\|final"'
	check "signing works again after unblock" sign_ok $PIN "$in"

	echo "# change the PIN and back"
	check "pkcs11-tool --change-pin $PIN -> 654321" \
		p11 --login --pin $PIN --change-pin --new-pin 654321
	check "the card holds the new PIN" \
		test "$(state_value pin)" = 363534333231FFFF
	check "signing with the new PIN" sign_ok 654321 "$in"
	check "the old PIN is refused with CKR_PIN_INCORRECT, one try spent" \
		eval '! p11 --login --pin $PIN -O >"$t/old" 2>&1 &&
		grep -q "rv = CKR_PIN_INCORRECT" "$t/old" &&
		[ "$(state_value pin_tries)" = 2 ] || { cat "$t/old"; false; }'
	check "pkcs11-tool --change-pin 654321 -> $PIN" \
		p11 --login --pin 654321 --change-pin --new-pin $PIN
	check "the card holds $PIN again, with its 3 tries" \
		test "$(state_value pin)" = 313233343536FFFF -a \
		"$(state_value pin_tries)" = 3
	check "signing with $PIN again" sign_ok $PIN "$in"
}

# --- part 5: key generation, certificate write and delete ----------------------------

# Card state lines key_9a..key_9e as "name=sha256" lines.
key_digests() {
	local k
	for k in 9a 9c 9d 9e; do
		printf '%s=%s\n' "$k" "$(state_value "key_$k" | sha256sum | cut -c1-16)"
	done
}

# IDs are the PIV slots' (src/drivers/piv.c): 01 = 9A, 02 = 9C, 04 = 9E.
# Not 03: 9D is a key-management slot, an EC key there agrees keys, it does
# not sign. A PIV card gives a public key only in GENERATE's answer and in
# the certificate, and the slot keeps its old certificate until a new one is
# written, so the generated public key is taken from the generating process:
# --read-object in the same pkcs11-tool run for RSA, the EC_POINT
# pkcs11-tool prints for EC (pkcs11-tool 0.23 cannot export a P-384 key).
part_keygen() {
	local w=$1 in=$1/in t=$KYSO_TEST_TMP spec id kt slot cont curve
	local before after pt rc gen mech h want

	echo "# on-card key generation (SO = 9B management key), certificate, delete"
	for spec in 01:rsa:2048:9a:5fc105 02:EC:prime256v1:9c:5fc10a \
		04:EC:secp384r1:9e:5fc101; do
		IFS=: read -r id kt curve slot cont <<<"$spec"
		gen=$t/gen-$id
		before=$(key_digests)
		rm -f "$gen.der" "$gen.pem"
		if [ "$kt" = rsa ]; then
			# Same process: the public key object C_GenerateKeyPair made.
			p11 --login --login-type so --so-pin $MGMT --keypairgen \
				--key-type "rsa:$curve" --id "$id" \
				--read-object --type pubkey --id "$id" -o "$gen.der" \
				>"$gen.out" 2>&1
			rc=$?
			openssl pkey -pubin -inform DER -in "$gen.der" -out "$gen.pem" \
				>/dev/null 2>&1
		else
			p11 --login --login-type so --so-pin $MGMT --keypairgen \
				--key-type "EC:$curve" --id "$id" >"$gen.out" 2>&1
			rc=$?
			# The public key object pkcs11-tool printed after generating.
			pt=$(sed -n '/^Key pair generated/,$p' "$gen.out" |
				ec_point_of /dev/stdin "$id")
			ec_point_pem "$pt" "$gen.pem" >/dev/null 2>&1
		fi
		after=$(key_digests)
		check "keypairgen $kt:$curve --id $id succeeds" \
			eval '[ "$rc" = 0 ] && grep -q "Key pair generated" "$gen.out" ||
			{ cat "$gen.out"; false; }'
		check "keypairgen --id $id: the card made a new key in $slot and only there" \
			eval 'diff <(grep -v "^$slot=" <<<"$before") <(grep -v "^$slot=" <<<"$after") &&
			[ "$(grep "^$slot=" <<<"$before")" != "$(grep "^$slot=" <<<"$after")" ]'
		case $curve in
		prime256v1) want="NIST CURVE: P-256" ;;
		secp384r1) want="NIST CURVE: P-384" ;;
		*) want="($curve bit)" ;;
		esac
		check "keypairgen --id $id: the returned public key is a $kt $curve key" \
			eval 'openssl pkey -pubin -in "$gen.pem" -noout -text | grep -qF "$want"'
		check "keypairgen --id $id: the returned public key is not the old certificate's" \
			eval '[ -s "$gen.pem" ] && [ "$(pub_der_hex "$gen.pem")" != "$(pub_der_hex "$in/pub-$slot.pem")" ]'

		# Sign in a new process, as a user; openssl checks with the key
		# that key generation returned.
		rm -f "$t/sig"
		case $curve in
		prime256v1) mech=ECDSA-SHA256 h=sha256 ;;
		secp384r1) mech=ECDSA-SHA384 h=sha384 ;;
		*) mech=SHA256-RSA-PKCS h=sha256 ;;
		esac
		check "the new key $id signs ($mech) and openssl verifies with the generated public key" \
			eval 'p11 --login --pin $PIN --sign -m "$mech" --id "$id" \
				--signature-format openssl -i "$in/data" -o "$t/sig" &&
			openssl dgst -"$h" -verify "$gen.pem" -signature "$t/sig" "$in/data"'

		# A certificate from the test CA over the generated key.
		openssl req -new -key "$in/csr.key" -subj "/CN=kyso gen $id" \
			-out "$t/csr" 2>/dev/null &&
			openssl x509 -req -in "$t/csr" -CA "$w/card/ca.pem" \
				-CAkey "$w/card/ca.key" -set_serial "0x$id$RANDOM" -days 2 \
				-force_pubkey "$gen.pem" -outform DER -out "$gen.crt" \
				>/dev/null 2>&1
		check "--write-object certificate --type cert --id $id" \
			eval '[ -s "$gen.crt" ] && p11 --login --login-type so --so-pin $MGMT \
				--write-object "$gen.crt" --type cert --id "$id"'
		p11 -O >"$t/o-$id" 2>&1
		check "-O in a new process shows the new certificate with ID $id" \
			eval 'grep -A4 "^Certificate Object" "$t/o-$id" | grep -A2 "CN=kyso gen $id" |
			grep -q "ID: *$id\$"'
		check "the certificate read back through kyso is the one written" \
			eval 'p11 --read-object --type cert --id "$id" -o "$t/rb.der" &&
			cmp "$t/rb.der" "$gen.crt"'
		if [ "$kt" = rsa ]; then
			check "-O's public key $id is now the generated key" \
				eval 'p11 --read-object --type pubkey --id "$id" -o "$t/rbp.der" &&
				[ "$(bin2hex <"$t/rbp.der")" = "$(pub_der_hex "$gen.pem")" ]'
		else
			check "-O's public key $id is now the generated key" \
				test "$(ec_point_of "$t/o-$id" "$id")" = "$(pem_ec_point "$gen.pem")"
		fi
		check "--delete-object --type cert --id $id" \
			p11 --login --login-type so --so-pin $MGMT --delete-object \
			--type cert --id "$id"
		check "-O in a new process no longer shows certificate $id" \
			eval 'p11 -O >"$t/od-$id" 2>&1 &&
			[ "$(count_objects "$t/od-$id" Certificate "$id")" = 0 ] &&
			! grep -q "CN=kyso gen $id" "$t/od-$id"'
		check "the card's container $cont no longer holds the certificate" \
			eval '[ "$(state_value "obj_$cont" | wc -c)" -lt 16 ]'
	done
}

# --- part 7: card pulled mid-session ---------------------------------------------------

part_removal() {
	local in=$1/in rdir=$1/removal line rc

	echo "# card pulled mid-session (piv-removal)"
	mkdir -p "$rdir"
	# shellcheck disable=SC2086 # the wrapper is a command line
	CARD_CTL=$top_srcdir/tests/card-ctl ${KYSO_TEST_WRAPPER:-} \
		"$removal_bin" "$rdir" >"$rdir/log" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		PASS:*) pass "${line#PASS: }" ;;
		FAIL:*) fail "${line#FAIL: }" ;;
		*) echo "$line" ;;
		esac
	done <"$rdir/log"
	check "piv-removal ran to its end and exited 0" \
		eval '[ "$rc" = 0 ] && grep -q "^piv-removal: [0-9]* passed, 0 failed" "$rdir/log"'
	check "signature before the pull verifies with cert-9a.pem" \
		openssl dgst -sha256 -verify "$in/pub-9a.pem" -signature "$rdir/sig-before" \
		"$rdir/msg"
	check "signature after reinsertion verifies with cert-9a.pem" \
		openssl dgst -sha256 -verify "$in/pub-9a.pem" -signature "$rdir/sig-after" \
		"$rdir/msg"
}

# --- inside a card session -----------------------------------------------------------

if [ "${1:-}" = --inside ]; then
	part=$2 work=$3
	"part_$part" "$work"
	echo "DONE $part" >>"$results"
	exit 0
fi

# --- outside: tools, provisioning, one card session per part --------------------------

work='' npass=0 nfail=0

summary() {
	if [ -n "$work" ] && [ -f "$work/results" ]; then
		npass=$(grep -c '^PASS ' "$work/results")
		nfail=$(grep -c '^FAIL ' "$work/results")
	fi
	echo "$npass passed, $nfail failed"
}

die() {
	echo "FAIL: $*"
	nfail=$((nfail + 1))
	[ -n "$work" ] && echo "FAIL $*" >>"$work/results"
	summary
	exit 1
}

cleanup() {
	[ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT

work=$(mktemp -d "${TMPDIR:-/tmp}/$me.XXXXXX") || die "cannot make a temp dir"
export PIV_KYSO_RESULTS=$work/results
results=$PIV_KYSO_RESULTS
: >"$results"

for tool in pkcs11-tool openssl yubico-piv-tool od cmp awk sed sha256sum diff; do
	command -v "$tool" >/dev/null || die "missing tool $tool"
done
[ -f "$module" ] || die "module $module not built"
[ -x "$removal_bin" ] || die "$removal_bin not built (make check builds it)"
[ -x "$top_srcdir/tests/with-card" ] || die "missing tests/with-card"

start=$SECONDS
# shellcheck source=tests/integration/piv-provision.sh
. "$top_srcdir/tests/integration/piv-provision.sh"
echo "# provisioning a virtual PIV card (yubico-piv-tool, throwaway CA)"
piv_provision "$work/card" >"$work/provision.log" 2>&1 || {
	sed 's/^/    | /' "$work/provision.log"
	die "provisioning the card"
}

# Inputs, and the public keys taken from the certificates piv-provision made.
in=$work/in
mkdir -p "$in"
for slot in 9a 9c 9d 9e; do
	openssl x509 -in "$work/card/cert-$slot.pem" -pubkey -noout \
		>"$in/pub-$slot.pem" || die "no public key in cert-$slot.pem"
done
printf 'kyso signs with a virtual PIV card, %s\n' "$(date -u +%FT%T)" >"$in/data"
printf 'short data' >"$in/short"
for h in $hashes; do
	openssl dgst -"$h" -binary "$in/data" >"$in/h-$h"
done
{
	printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'
	cat "$in/h-sha256"
} >"$in/di-sha256"
# A modulus-sized block below any 2048-bit modulus: leading zero byte.
{
	printf '\x00'
	openssl rand 255
} >"$in/block"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	-out "$in/csr.key" 2>/dev/null || die "openssl genpkey"

for part in objects sign decrypt selftest pin removal keygen; do
	cp "$work/card/state" "$work/state-$part"
	"$top_srcdir/tests/with-card" --profile piv --state "$work/state-$part" \
		--timeout 300 -- bash "$self" --inside "$part" "$work"
	rc=$?
	grep -q "^DONE $part\$" "$results" ||
		fail "part $part ran to its end (with-card exited $rc)"
done

echo "# $((SECONDS - start)) s"
summary
[ "$nfail" = 0 ] && [ "$npass" -gt 0 ]
