#!/usr/bin/env bash
# kyso(1), the token manager, against virtual PIV cards in a private pcscd:
# every subcommand, in English and in Vietnamese, and the error cases (exit
# codes and their one-line messages). Signatures and certificate requests
# are checked with openssl; PINs typed at a terminal go through a pseudo-
# terminal (tests/tool/pty-run.py) to see prompts and that nothing echoes.
# The catalog, the man page and the --pin-fd paths are checked too.
#
# Needs openssl, yubico-piv-tool (provisioning), certutil and modutil
# (libnss3-tools), localedef (locales), msgfmt/xgettext/msgmerge (gettext),
# man (man-db) and python3: a missing tool is a failure, not a skip.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
module=${KYSO_MODULE:-$top_builddir/.libs/kyso-pkcs11.so}
kyso=$top_builddir/src/tool/kyso
with_card=$top_srcdir/tests/with-card
card_ctl=$top_srcdir/tests/card-ctl
pty_run=$top_srcdir/tests/tool/pty-run.py
export KYSO_MODULE=$module KYSO_LOCALEDIR=$top_builddir/po
unset LANGUAGE LC_ALL LC_MESSAGES
export LANG=C.UTF-8
PIN=123456 PUK=12345678
MGMT=010203040506070801020304050607080102030405060708

n=0 fails=0
T=
rc=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)) fails=$((fails + 1))
	echo "not ok $n - $1"
	if [ -n "$T" ] && [ -f "$T/out" ]; then
		echo "#   exit $rc; stdout:"
		sed 's/^/#     /' "$T/out" | head -n 30
		echo "#   stderr:"
		sed 's/^/#     /' "$T/err" | head -n 30
	fi
}
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# k ARGS...: runs kyso; $rc, $T/out, $T/err.
k() {
	# shellcheck disable=SC2086 # the wrapper is a command line
	${KYSO_TEST_WRAPPER:-} "$kyso" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}
# A run as a person at a terminal: kp SCRIPT ARGS... ($T/out: transcript).
kp() {
	local script=$1
	shift
	printf '%b' "$script" >"$T/pty-script"
	# shellcheck disable=SC2086 # the wrapper is a command line
	python3 "$pty_run" "$T/pty-script" -- ${KYSO_TEST_WRAPPER:-} "$kyso" "$@" \
		>"$T/out" 2>"$T/err"
	rc=$?
}
rc_is() { [ "$rc" -eq "$1" ]; }
out_has() { grep -qE -- "$1" "$T/out"; }
out_lacks() { ! grep -qE -- "$1" "$T/out"; }
err_has() { grep -qE -- "$1" "$T/err"; }
# One line on stderr, "kyso: ...", matching REGEX, and exit code CODE.
fails_with() {
	rc_is "$1" && [ "$(wc -l <"$T/err")" -eq 1 ] &&
		grep -q '^kyso: ' "$T/err" && grep -qE -- "$2" "$T/err"
}
succeeds() { rc_is 0; }
stat_of() { sed -n "s/^$1=//p" "${2:-$KYSO_VCARD_STATS}"; }
cms_ok() { # cms_ok FILE SIG: openssl accepts the signature
	openssl cms -verify -binary -inform DER -in "$2" -content "$1" \
		-CAfile "$W/ca.pem" -out /dev/null 2>/dev/null
}
req_ok() { openssl req -in "$1" -verify -noout 2>/dev/null; }

# ---------------------------------------------------------------------------
# Inside tests/with-card: reader 0 holds the provisioned card (state $W/state),
# reader 1 a fresh one ($W/fresh).
inside() {
	W=$1
	T=$W/t
	mkdir -p "$T"
	local P0=(--token "kyso test 9a") P1 before after atr serial
	local doc=$W/doc.txt
	echo "a document to sign, $(date -u +%F)" >"$doc"

	echo "# list: both readers, the token, keys and certificates"
	k list
	check "list succeeds" succeeds
	check "list names both readers" \
		eval 'out_has "Reader \"kyso vcard 00 00\"" && out_has "Reader \"kyso vcard 00 01\""'
	check "list shows the token label, card type and serial" \
		eval 'out_has "Token: +kyso test 9a" && out_has "Card type: +PIV PIV II" && out_has "Serial: +[0-9a-f]{16}"'
	check "list shows subject, issuer, serial and validity with days left" \
		eval 'out_has "Subject: +CN=kyso test 9c" && out_has "Issuer: +CN=kyso throwaway test CA" && out_has "Serial: +0?9C[0-9]+" && out_has "Valid: +[0-9-]{10} to [0-9-]{10} \(3[01] days left\)"'
	check "list shows key types and sizes" \
		eval 'out_has "Key: +RSA 2048" && out_has "Key: +EC P-256" && out_has "Key: +EC P-384"'
	check "list shows the keys by id and label" \
		eval 'out_has "Key 01 \"PIV AUTH key\"" && out_has "Key 02 \"SIGN key\"" && out_has "Key 03 \"KEY MAN key\"" && out_has "Key 04 \"CARD AUTH key\""'
	check "list warns about certificates expiring within 30 days" \
		eval '[ "$(grep -c "Warning: this certificate expires in 3[01] days" "$T/out")" -eq 4 ]'
	serial=$(sed -n 's/^  Serial: *//p' "$T/out" | head -n 1)
	P1=(--slot "$(sed -n 's/^Reader "kyso vcard 00 01" (slot \([0-9]*\))$/\1/p' "$T/out")")
	# A module with the vendor interface (include/kyso/vendor.h) tells the
	# tries left as a number; the token flags alone only say "few" and
	# "last try", which the checks further down look for either way.
	vendor=0
	if out_has "PIN: +3 tries left"; then vendor=1; fi
	if [ $vendor = 1 ]; then
		kp 'expect PIN: 3 tries left\\.\nexpect PIN: $\nsend '"$PIN"'\n' sign "$doc" "${P0[@]}" --out "$T/first.p7s"
		check "the tries left are shown at the terminal before the PIN is asked" succeeds
	fi

	echo "# choosing the token"
	k sign "$doc" --pin-fd 3 3<<<"$PIN"
	check "two tokens and no --token: one line, exit 2" fails_with 2 "2 tokens are present"
	k list --token nosuchtoken
	check "list --token with an unknown token still lists readers" succeeds
	k cert export --key 01 --token nosuchtoken
	check "an unknown --token: exit 4" fails_with 4 'no token "nosuchtoken" found'
	k cert export --key 01 --token "$serial" --out "$T/c01.pem"
	check "--token takes the serial too" succeeds

	echo "# cert export"
	k cert export --key 01 "${P0[@]}"
	check "cert export writes the PEM certificate of key 01" \
		eval 'succeeds && [ "$(openssl x509 -in "$T/out" -noout -fingerprint)" = "$(openssl x509 -in "$W/cert-9a.pem" -noout -fingerprint)" ]'
	k cert export --key "SIGN key" --der --out "$T/c02.der" "${P0[@]}"
	check "cert export --der --out, by label" \
		eval 'succeeds && [ "$(openssl x509 -inform DER -in "$T/c02.der" -noout -fingerprint)" = "$(openssl x509 -in "$W/cert-9c.pem" -noout -fingerprint)" ]'
	k cert export --key 0a "${P0[@]}"
	check "cert export of a key that is not there: exit 7" fails_with 7 'no key "0a" on the token'

	echo "# sign and verify"
	before=$(stat_of verify_fail)
	k sign "$doc" --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "sign with the default key (the 9C signature key, PIN always)" \
		eval 'succeeds && out_has "as CN=kyso test 9c \(key 02\)"'
	check "openssl cms -verify accepts the ECDSA signature" cms_ok "$doc" "$doc.p7s"
	k sign "$doc" --key 01 --out "$T/rsa.p7s" --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "sign with the RSA key 01 (PKCS #1 v1.5)" eval 'succeeds && cms_ok "$doc" "$T/rsa.p7s"'
	k sign "$doc" --key 01 --pss --hash sha384 --out "$T/pss.p7s" --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "sign --pss --hash sha384: RSASSA-PSS that openssl accepts" \
		eval 'succeeds && cms_ok "$doc" "$T/pss.p7s" && openssl cms -cmsout -print -inform DER -in "$T/pss.p7s" | grep -q rsassaPss'
	check "the PSS signature uses SHA-384" \
		eval 'openssl cms -cmsout -print -inform DER -in "$T/pss.p7s" | grep -q sha384'
	k sign "$doc" --key 02 --pss --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "sign --pss with an EC key: exit 2" fails_with 2 "--pss is for RSA keys"
	k sign "$W/nosuchfile" --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "sign of a missing file: exit 2" fails_with 2 "cannot read .*nosuchfile"
	after=$(stat_of verify_fail)
	check "no wrong PIN reached the card so far" [ "$before" = "$after" ]

	k verify "$doc" --ca "$W/ca.pem"
	check "verify --ca: good signature, trusted" \
		eval 'succeeds && out_has "Good signature by CN=kyso test 9c, made [0-9-]{10} [0-9:]{8} UTC; the certificate is trusted"'
	k verify "$doc" "$T/pss.p7s"
	check "verify without --ca says the certificate was not checked" \
		eval 'succeeds && out_has "Good signature by CN=kyso test 9a" && out_has "NOT checked"'
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/other.key" -out "$T/other.pem" -days 2 -subj "/CN=other CA" 2>/dev/null
	k verify "$doc" --ca "$T/other.pem"
	check "verify against another CA: exit 8, not trusted" fails_with 8 "not trusted by"
	cp "$doc" "$T/changed.txt"
	echo "one more line" >>"$T/changed.txt"
	k verify "$T/changed.txt" "$doc.p7s" --ca "$W/ca.pem"
	check "verify of a changed file: exit 8, BAD signature" fails_with 8 "BAD signature"
	k verify "$doc" "$doc"
	check "verify of something that is not a signature: exit 2" fails_with 2 "not a CMS signature"
	k verify "$doc" "$T/nosuchfile.p7s"
	check "verify with a missing signature file: exit 2, one message: it cannot be read" \
		fails_with 2 "cannot read .*nosuchfile.p7s"

	echo "# csr"
	k csr --key 01 --subject "/C=VN/O=Sở Tài chính/CN=Nguyễn Văn A" --out "$T/r01.pem" --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "csr for key 01 with a Vietnamese subject" eval 'succeeds && req_ok "$T/r01.pem"'
	check "the request carries the subject in UTF-8" \
		eval 'openssl req -in "$T/r01.pem" -noout -subject -nameopt utf8,sep_comma_plus | grep -q "C=VN,O=Sở Tài chính,CN=Nguyễn Văn A"'
	check "the request carries key 01's public key" \
		eval '[ "$(openssl req -in "$T/r01.pem" -noout -pubkey)" = "$(cat "$W/pub-9a.pem")" ]'
	k csr --key 02 --subject "/CN=sign" --der --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "csr --der on stdout for the EC key 02 (PIN always)" \
		eval 'succeeds && openssl req -inform DER -in "$T/out" -verify -noout 2>/dev/null'
	k csr --key 01 --pss --subject "/CN=pss" --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "csr --pss: an RSASSA-PSS request that verifies" \
		eval 'succeeds && req_ok "$T/out" && openssl req -in "$T/out" -noout -text | grep -q rsassaPss'
	k csr --key 03 --subject "/CN=x" --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "csr with the key-management key (cannot sign): exit 1" fails_with 1 "not allowed"
	k csr --key 01 --subject "CN=x" "${P0[@]}"
	check "csr with a malformed subject: exit 2, no PIN asked" fails_with 2 "must look like /C=VN"
	k csr --key 01 --subject "/XYZ=1" "${P0[@]}"
	check "csr with an unknown name part: exit 2" fails_with 2 "XYZ=1 is not valid"
	k csr --subject "/CN=x"
	check "csr without --key: exit 2, one line" fails_with 2 "csr needs --key"

	echo "# certificates: expired, long-lived, replaced, deleted"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/dummy.key" -subj "/CN=dummy" -out "$T/dummy.csr" 2>/dev/null
	openssl x509 -req -in "$T/dummy.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" \
		-force_pubkey "$W/pub-9d.pem" -days -1 -subj "/CN=expired 9d" \
		-out "$T/exp9d.pem" 2>/dev/null
	openssl x509 -req -in "$T/dummy.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" \
		-force_pubkey "$W/pub-9e.pem" -days 400 -subj "/CN=long 9e" \
		-out "$T/long9e.pem" 2>/dev/null
	k cert import "$T/exp9d.pem" --pin-fd 3 "${P0[@]}" 3<<<"$MGMT"
	check "cert import without --key replaces after a confirmation only" \
		fails_with 2 "Confirm with --yes"
	k cert import "$T/exp9d.pem" --yes --pin-fd 3 "${P0[@]}" 3<<<"$MGMT"
	check "cert import finds key 03 by the certificate's public key" \
		eval 'succeeds && out_has "stored next to key 03"'
	k cert import "$T/long9e.pem" --key 04 --yes --pin-fd 3 "${P0[@]}" 3<<<"0102030405060708010203040506070801020304050607FF"
	check "a wrong management key: exit 5, one line" fails_with 5 "wrong management key"
	k cert import "$T/long9e.pem" --key 04 --yes --pin-fd 3 "${P0[@]}" 3<<<"$MGMT"
	check "cert import --key 04" succeeds
	k cert import "$T/long9e.pem" --pin-fd 3 "${P0[@]}" 3</dev/null
	check "importing the same certificate again changes nothing (no key asked)" \
		eval 'succeeds && out_has "already on the token \(key 04\)"'
	k cert import "$T/long9e.pem" --key 01 --yes --pin-fd 3 "${P0[@]}" 3<<<"$MGMT"
	check "cert import of a certificate for another key: exit 2" fails_with 2 "not for key 01"
	k cert import "$T/dummy.csr" --pin-fd 3 "${P0[@]}" 3<<<"$MGMT"
	check "cert import of a file that is no certificate: exit 2" fails_with 2 "not a certificate"
	k cert import "$T/nosuchcert.pem" --pin-fd 3 "${P0[@]}" 3<<<"$MGMT"
	check "cert import of a missing file: exit 2, one message: it cannot be read" \
		fails_with 2 "cannot read .*nosuchcert.pem"
	k list "${P0[@]}"
	check "list: an expired certificate gets its warning" \
		eval 'out_has "CN=expired 9d" && out_has "\(expired\)" && out_has "Warning: this certificate has EXPIRED"'
	check "list: a certificate valid for 400 days gets none" \
		eval 'sed -n "/Key 04/,/^Reader/p" "$T/out" | grep -q "days left" && ! sed -n "/Key 04/,/^Reader/p" "$T/out" | grep -q Warning'
	k sign "$doc" --key 03 --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "sign with an expired certificate is refused before the PIN" \
		fails_with 1 "the certificate expired on"
	k cert delete --key 04 --pin-fd 3 "${P0[@]}" 3<<<"$MGMT"
	check "cert delete without a terminal needs --yes: exit 2" fails_with 2 "Confirm with --yes"
	kp 'expect Go on\\? \\[y/N\\]\nsend n\n' cert delete --key 04 "${P0[@]}"
	check "cert delete: answering no at the terminal cancels (exit 10)" \
		eval 'rc_is 10 && out_has "cancelled; nothing was changed"'
	kp 'expect Go on\\? \\[y/N\\]\nsend y\nexpect Management key\nsend '"$MGMT"'\n' cert delete --key 04 "${P0[@]}"
	check "cert delete: yes, then the management key, without echo" \
		eval 'succeeds && out_has "certificate of key 04 was deleted" && out_lacks "$MGMT"'
	k list "${P0[@]}"
	check "the deleted certificate is gone from the listing" out_lacks "CN=long 9e"
	k cert delete --key 04 --yes --pin-fd 3 "${P0[@]}" 3<<<"$MGMT"
	check "deleting a certificate that is not there: exit 7" fails_with 7 "no key \"04\"|has no certificate"

	echo "# keygen and issuance on the fresh card"
	k keygen --key 01 --type ed448 "${P1[@]}"
	check "keygen with an unknown type: exit 2" fails_with 2 'unknown key type "ed448"'
	k keygen --key 9z --type p256 "${P1[@]}"
	check "keygen wants a hex id" fails_with 2 "wants the key's id in hex"
	k keygen --key 01 --type p256 --pin-fd 3 "${P1[@]}" 3<<<"${MGMT%??}00"
	check "keygen with a wrong management key: exit 5" fails_with 5 "wrong management key"
	k keygen --key 01 --type p256 --pin-fd 3 "${P1[@]}" 3<<<"$PUK"
	check "keygen with the PUK instead of the management key: exit 1" \
		fails_with 1 "management key"
	"$card_ctl" -r 1 delay apdu 1500 >/dev/null
	k keygen --key 01 --type rsa2048 --subject "/CN=Lê Văn C" --out "$T/k01.csr" \
		--pin-fd 3 "${P1[@]}" 3< <(printf '%s\n%s\n' "$MGMT" "$PIN")
	"$card_ctl" -r 1 delay apdu 0 >/dev/null
	check "keygen rsa2048 with --subject makes the key and the request" \
		eval 'succeeds && out_has "New RSA 2048 key 01 made on the card" && req_ok "$T/k01.csr"'
	check "keygen shows that the card works (a dot a second on stderr)" \
		err_has "The card is making the key.*token\. \.+$"
	check "the request holds an RSA 2048 key" \
		eval 'openssl req -in "$T/k01.csr" -noout -text | grep -q "Public-Key: (2048 bit)"'
	k keygen --key 02 --type rsa3072 --subject "/CN=ký số" --out "$T/k02.csr" \
		--pin-fd 3 "${P1[@]}" 3< <(printf '%s\n%s\n' "$MGMT" "$PIN")
	check "keygen rsa3072 into 02 (the PIN-always slot) with its request" \
		eval 'succeeds && req_ok "$T/k02.csr" && openssl req -in "$T/k02.csr" -noout -text | grep -q "Public-Key: (3072 bit)"'
	check "the card generated into the 9C slot" grep -q "^> 0047009C" "$KYSO_VCARD_LOG1"
	"$card_ctl" -r 1 delay apdu 1500 >/dev/null
	kp 'expect Management key\nsend '"$MGMT"'\n' keygen --key 03 --type p256 "${P1[@]}"
	"$card_ctl" -r 1 delay apdu 0 >/dev/null
	check "keygen at a terminal: a spinner with the seconds, the key made" \
		eval 'succeeds && out_has "\| working\.\.\. [0-9]+ s|/ working\.\.\. [0-9]+ s" && out_has "New EC P-256 key 03"'
	k keygen --key 04 --type p256 --subject "/CN=p256" --out "$T/k04.csr" \
		--pin-fd 3 "${P1[@]}" 3< <(printf '%s\n%s\n' "$MGMT" "$PIN")
	check "keygen p256 into 04 with its request" \
		eval 'succeeds && req_ok "$T/k04.csr" && openssl req -in "$T/k04.csr" -noout -text | grep -q "prime256v1"'
	openssl x509 -req -in "$T/k01.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" \
		-days 365 -out "$T/k01.pem" 2>/dev/null
	k cert import "$T/k01.pem" --pin-fd 3 "${P1[@]}" 3<<<"$MGMT"
	check "a new key the card cannot show yet needs --key: exit 7 with the hint" \
		fails_with 7 "give the key's id with --key"
	k cert import "$T/k01.pem" --key 01 --pin-fd 3 "${P1[@]}" 3<<<"$MGMT"
	check "cert import --key 01 stores the issued certificate" \
		eval 'succeeds && out_has "Certificate for CN=Lê Văn C stored next to key 01"'
	k list "${P1[@]}"
	check "list shows the new certificate" \
		eval 'out_has "Token: +Lê Văn C" && out_has "Subject: +CN=Lê Văn C" && out_has "Key: +RSA 2048"'
	k sign "$doc" --key 01 --out "$T/new.p7s" --pin-fd 3 "${P1[@]}" 3<<<"$PIN"
	check "sign with the new key; openssl accepts it" eval 'succeeds && cms_ok "$doc" "$T/new.p7s"'
	k keygen --key 01 --type p256 --pin-fd 3 "${P1[@]}" 3<<<"$MGMT"
	check "keygen over a key with a certificate needs a confirmation" fails_with 2 "Confirm with --yes"
	k keygen --key 01 --type p256 --yes --subject "/CN=renewed" --out "$T/ren.csr" \
		--pin-fd 3 "${P1[@]}" 3< <(printf '%s\n%s\n' "$MGMT" "$PIN")
	check "renewal: keygen --yes over key 01, the request has the new key" \
		eval 'succeeds && req_ok "$T/ren.csr" && openssl req -in "$T/ren.csr" -noout -text | grep -q prime256v1 && out_has "belongs to the old key"'

	echo "# PINs: change, wrong, locked, unblock"
	k pin change "$PIN" 654321 "${P0[@]}"
	check "a PIN on the command line is refused: exit 2" fails_with 2 "never taken from the command line"
	before=$(stat_of verify_fail)
	k sign "$doc" --pin-fd 3 "${P0[@]}" 3<<<"12"
	check "a PIN of the wrong length: exit 2, the card is not asked" \
		eval 'fails_with 2 "no try was spent" && [ "$(stat_of verify_fail)" = "$before" ]'
	k pin change --pin-fd 3 "${P0[@]}" 3< <(printf '%s\n%s\n' "$PIN" 12)
	check "a new PIN of the wrong length: exit 2" fails_with 2 "must have 6 to 8 characters"
	k pin change --pin-fd 3 "${P0[@]}" 3< <(printf '%s\n' "$PIN")
	check "pin change with the new PIN missing on the descriptor: exit 2" fails_with 2 "gave no line"
	kp 'expect Current PIN:\nsend '"$PIN"'\nexpect New PIN:\nsend 24681357\nexpect New PIN again:\nsend 24681358\n' pin change "${P0[@]}"
	check "pin change at the terminal: new PINs that differ cancel (exit 10)" \
		eval 'rc_is 10 && out_has "the two new PINs differ"'
	check "PINs typed at the terminal are not echoed" \
		eval 'out_lacks "$PIN" && out_lacks 2468135'
	kp 'expect Current PIN:\nsend '"$PIN"'\nexpect New PIN:\nsend 24681357\nexpect New PIN again:\nsend 24681357\n' pin change "${P0[@]}"
	check "pin change at the terminal" eval 'succeeds && out_has "The PIN was changed"'
	k pin change --pin-fd 3 "${P0[@]}" 3< <(printf '%s\n%s\n' 24681357 "$PIN")
	check "pin change from a descriptor, back to the first PIN" succeeds
	before=$(stat_of verify_fail)
	k sign "$doc" --pin-fd 3 "${P0[@]}" 3<<<"999999"
	check "a wrong PIN: exit 5, one line" fails_with 5 "^kyso: wrong PIN"
	check "a wrong PIN costs exactly one try (never retried)" \
		[ "$(stat_of verify_fail)" -eq $((before + 1)) ]
	if [ $vendor = 1 ]; then
		check "the message tells the tries left" err_has "wrong PIN: 2 tries left"
		k list "${P0[@]}"
		check "list shows the tries left" out_has "PIN: +2 tries left"
	fi
	kp 'expect PIN: $\nsend 999999\n' sign "$doc" "${P0[@]}"
	check "the second wrong PIN, at the terminal: the last try is announced" \
		eval 'rc_is 5 && out_has "1 try left: one more wrong entry locks it"'
	kp 'expect 1 try left[^\\n]*\\n[^\\n]*PIN: $\nsend 999999\n' sign "$doc" "${P0[@]}"
	check "before the last try the tries are shown, then the PIN is locked: exit 6" \
		eval 'rc_is 6 && out_has "locked"'
	before=$(stat_of verify_fail)
	k sign "$doc" --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "a locked PIN: exit 6, one line, and the card is not asked" \
		eval 'fails_with 6 "PIN is locked.*kyso pin unblock" && [ "$(stat_of verify_fail)" = "$before" ]'
	k list "${P0[@]}"
	check "list shows the PIN locked" out_has "PIN: +locked"
	k pin unblock --pin-fd 3 "${P0[@]}" 3< <(printf '%s\n%s\n' 87654321 "$PIN")
	check "pin unblock with a wrong PUK: exit 5" fails_with 5 "^kyso: wrong PUK"
	kp 'expect PUK: $\nsend '"$PUK"'\nexpect New PIN:\nsend '"$PIN"'\nexpect New PIN again:\nsend '"$PIN"'\n' pin unblock "${P0[@]}"
	check "pin unblock at the terminal with the PUK" \
		eval 'succeeds && out_has "unblocked" && out_lacks "$PUK"'
	k sign "$doc" --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "the new PIN signs" succeeds
	k sign "$doc" "${P0[@]}" </dev/null
	check "no terminal and no --pin-fd: exit 2" fails_with 2 "no terminal to ask"

	echo "# Vietnamese"
	LANG=vi_VN.UTF-8 k list "${P0[@]}"
	check "LANG=vi_VN.UTF-8 (locale not generated): the listing in Vietnamese" \
		eval 'succeeds && out_has "Đầu đọc \"kyso vcard 00 00\"" && out_has "Chủ thể: +CN=kyso test 9c" && out_has "Hiệu lực: +từ [0-9-]{10} đến [0-9-]{10} \(còn 3[01] ngày\)"'
	check "... with the expiry warning in Vietnamese" out_has "Cảnh báo: chứng thư số này"
	LOCPATH=$W/locale LANG=vi_VN.UTF-8 k sign "$doc" --pin-fd 3 "${P0[@]}" 3<<<"999999"
	check "with the generated vi_VN.UTF-8 locale: a wrong PIN in Vietnamese, exit 5" \
		fails_with 5 "^kyso: sai mã PIN"
	LANG=vi_VN.UTF-8 k sign "$doc" --pin-fd 3 "${P0[@]}" 3<<<"$PIN"
	check "sign in Vietnamese" eval 'succeeds && out_has "^Đã ký .* với danh nghĩa CN=kyso test 9c \(khóa 02\)"'
	LANG=vi_VN.UTF-8 k verify "$doc" --ca "$W/ca.pem"
	check "verify in Vietnamese" eval 'succeeds && out_has "^Chữ ký hợp lệ của CN=kyso test 9c"'
	LANG=vi_VN.UTF-8 k verify "$T/changed.txt" "$doc.p7s"
	check "a bad signature in Vietnamese: exit 8" fails_with 8 "chữ ký KHÔNG HỢP LỆ"
	LANG=vi_VN.UTF-8 k cert export --key 0a "${P0[@]}"
	check "no such key in Vietnamese: exit 7" fails_with 7 "trên token không có khóa \"0a\""
	LANG=vi_VN.UTF-8 k sign "$doc" --pin-fd 3 3<<<"$PIN"
	check "two tokens in Vietnamese: exit 2" fails_with 2 "đang có 2 token"
	LANG=vi_VN.UTF-8 kp 'expect Mã PIN: $\nsend '"$PIN"'\n' sign "$doc" "${P0[@]}"
	check "the PIN prompt in Vietnamese" succeeds
	LANG=vi_VN.UTF-8 k doctor
	check "doctor in Vietnamese" \
		eval 'out_has "báo cáo gửi bộ phận hỗ trợ" && out_has "Dịch vụ thẻ thông minh \(pcscd\) đang chạy"'

	echo "# doctor"
	k doctor --out "$T/report.txt"
	check "doctor --out writes the report" \
		eval '[ -s "$T/report.txt" ] && out_has "Report written to"'
	cp "$T/report.txt" "$T/out"
	atr=$("$KYSO_HARNESS_DIR/pcsc-wait" atr 0 | tr -d ' :' | tr a-f A-F)
	check "the report gives the reader's ATR" \
		eval '[ -n "$atr" ] && sed -n "s/.*kyso vcard 00 00\": card present, ATR //p" "$T/out" | tr -d " " | grep -qx "$atr"'
	check "the report says which card was recognised, and the certificates" \
		eval 'out_has "\[ok\] +Recognised: PIV PIV II, token \"kyso test 9a\"" && out_has "Certificate CN=kyso test 9c \(key 02\) expires on"'
	check "the report flags the expired certificate" \
		out_has "\[!!\] +Certificate CN=expired 9d \(key 03\) EXPIRED"
	check "the report checks pcscd, p11-kit, Firefox and LibreOffice" \
		eval 'out_has "pcscd\) runs" && out_has "p11-kit: kyso is" && out_has "Firefox" && out_has "LibreOffice"'
	check "the report holds no PIN, PUK or management key" \
		eval 'out_lacks "$PIN" && out_lacks "$PUK" && out_lacks "$MGMT"'
	check "the report ends with a count of problems" out_has "problems? found"
	k doctor
	check "doctor exits with the first problem's code (the expired certificate: 1)" rc_is 1

	echo "# register / unregister (Firefox profiles and LibreOffice, in a scratch HOME)"
	local H=$W/home prof=$W/home/.mozilla/firefox/abcd.default-esr lo
	mkdir -p "$prof" "$H/.config/libreoffice/4/user"
	certutil -N -d "sql:$prof" --empty-password
	printf '[Profile0]\nName=default-esr\nIsRelative=1\nPath=abcd.default-esr\nDefault=1\n\n[General]\nStartWithLastProfile=1\nVersion=2\n' \
		>"$H/.mozilla/firefox/profiles.ini"
	lo=$H/.config/libreoffice/4/user/registrymodifications.xcu
	printf '<?xml version="1.0" encoding="UTF-8"?>\n<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="FirstRun" oor:op="fuse"><value>false</value></prop></item>\n</oor:items>\n' >"$lo"
	HOME=$H XDG_CONFIG_HOME= XDG_DATA_HOME= k register --firefox
	check "register --firefox adds the module to the profile" \
		eval 'succeeds && out_has "profile abcd.default-esr: kyso registered" && grep -qx "library=$(readlink -f "$module")" "$prof/pkcs11.txt"'
	check "modutil lists it" eval 'modutil -dbdir "sql:$prof" -list 2>/dev/null | grep -q "kyso"'
	HOME=$H XDG_CONFIG_HOME= XDG_DATA_HOME= k register --firefox
	check "register again: already registered, nothing changes" \
		eval 'succeeds && out_has "already registered" && [ "$(grep -c "^library=.*kyso-pkcs11.so" "$prof/pkcs11.txt")" -eq 1 ]'
	HOME=$H XDG_CONFIG_HOME= XDG_DATA_HOME= k register --libreoffice
	check "register --libreoffice: LibreOffice uses the Firefox profile" \
		eval 'succeeds && out_has "LibreOffice \(Firefox profile abcd.default-esr\): kyso is already registered"'
	HOME=$H XDG_CONFIG_HOME= XDG_DATA_HOME= k doctor
	check "doctor sees the registrations" \
		eval 'out_has "\[ok\] Firefox, profile abcd.default-esr: kyso is registered" && out_has "\[ok\] LibreOffice: kyso is registered in the Firefox profile"'
	HOME=$H XDG_CONFIG_HOME= XDG_DATA_HOME= k unregister
	check "unregister removes it" \
		eval 'succeeds && out_has "kyso removed" && ! grep -q "kyso-pkcs11" "$prof/pkcs11.txt"'
	HOME=$H XDG_CONFIG_HOME= XDG_DATA_HOME= k unregister
	check "unregister again: not registered, exit 0" eval 'succeeds && out_has "kyso is not registered"'
	HOME=$H XDG_CONFIG_HOME= XDG_DATA_HOME= k doctor
	check "doctor flags the missing registration with what to do" \
		out_has '\[!!\] Firefox, profile abcd.default-esr: kyso is not registered. Close Firefox and run "kyso register --firefox"'
	rm -rf "$H/.mozilla"
	HOME=$H XDG_CONFIG_HOME= XDG_DATA_HOME= k register --firefox
	check "register --firefox without a profile: exit 7" fails_with 7 "no profile found"
	HOME=$H XDG_CONFIG_HOME= XDG_DATA_HOME= k register --libreoffice
	check "register --libreoffice without any profile: its own database, Certificate Path set" \
		eval 'succeeds && grep -q "<prop oor:name=\"CertDir\" oor:op=\"fuse\"><value>$H/.local/share/kyso/nssdb</value>" "$lo" && grep -q "kyso-pkcs11" "$H/.local/share/kyso/nssdb/pkcs11.txt"'
	HOME=$H XDG_CONFIG_HOME= XDG_DATA_HOME= k register --libreoffice
	check "... and again: already registered, the settings written once" \
		eval 'succeeds && out_has "Certificate Path .*already registered" && [ "$(grep -c CertDir "$lo")" -eq 1 ]'
	HOME=$H XDG_CONFIG_HOME= XDG_DATA_HOME= LANG=vi_VN.UTF-8 k unregister --libreoffice
	check "unregister --libreoffice, in Vietnamese" eval 'succeeds && out_has "đã gỡ kyso"'

	echo "# the card goes away"
	"$card_ctl" remove 1 >/dev/null
	"$card_ctl" remove 0 >/dev/null
	k list
	check "list with empty readers: exit 0, no card" \
		eval 'succeeds && [ "$(grep -c "^  no card$" "$T/out")" -eq 2 ]'
	k sign "$doc" --pin-fd 3 3<<<"$PIN"
	check "sign without a token: exit 4, one line" fails_with 4 "no token found: insert your token"
	LANG=vi_VN.UTF-8 k sign "$doc" --pin-fd 3 3<<<"$PIN"
	check "... in Vietnamese" fails_with 4 "không tìm thấy token"
	k doctor
	check "doctor without a card: exit 4, says to insert it" \
		eval 'rc_is 4 && out_has "\[!!\] No card in any reader"'
	[ $fails -eq 0 ]
}

# A card kyso does not know (the blank profile).
inside_blank() {
	W=$1
	T=$W/t
	mkdir -p "$T"
	echo "# a card kyso does not know"
	k list
	check "list names it as unknown" \
		eval 'succeeds && out_has "a card kyso does not know"'
	k sign /etc/hostname --pin-fd 3 3<<<"$PIN"
	check "sign: exit 4, one line pointing to kyso doctor" \
		fails_with 4 "not one kyso knows; run \"kyso doctor\""
	k doctor
	check "doctor: exit 4, the card's answers for the developers" \
		eval 'rc_is 4 && out_has "\[!!\] +kyso does not know this card" && out_has "SELECT PIV: 6A82" && out_has "GET DATA CPLC: [0-9A-F]{4}"'
	[ $fails -eq 0 ]
}

if [ "${1:-}" = --inside ]; then
	inside "$2"
	exit
fi
if [ "${1:-}" = --inside-blank ]; then
	inside_blank "$2"
	exit
fi

# ---------------------------------------------------------------------------
missing=
for tool in openssl yubico-piv-tool certutil modutil localedef msgfmt \
	xgettext msgmerge man python3; do
	command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
	echo "FAIL: missing tools:$missing (see .ci/install-deps)"
	exit 1
fi
[ -x "$kyso" ] || { echo "FAIL: $kyso not built"; exit 1; }
[ -f "$module" ] || { echo "FAIL: module $module not built"; exit 1; }
[ -f "$KYSO_LOCALEDIR/vi/LC_MESSAGES/kyso.mo" ] ||
	{ echo "FAIL: the Vietnamese catalog is not built"; exit 1; }

W=$(mktemp -d)
T=$W/t
mkdir -p "$T"
trap 'rm -rf "$W"' EXIT

echo "# the command line"
k
check "no command: exit 2, one line" fails_with 2 "no command given"
k frobnicate
check "an unknown command: exit 2, one line" fails_with 2 'unknown command "frobnicate".*kyso --help'
k list --frob
check "an unknown option: exit 2, one line" fails_with 2 "unknown option.*--frob"
k pin
check "pin without what to do: exit 2" fails_with 2 'say what to do'
k pin reset
check "pin with an unknown action: exit 2" fails_with 2 'unknown command "pin reset"'
k cert
check "cert without what to do: exit 2" fails_with 2 'say what to do'
k --slot x list
check "--slot with no number: exit 2" fails_with 2 "--slot wants a number"
k --help
help_ok() {
	local c
	succeeds || return 1
	for c in list "pin change" keygen csr "cert import" sign verify doctor \
		register unregister; do
		out_has "kyso $c" || return 1
	done
}
check "--help lists every command" help_ok
k sign --help
check "sign --help shows its usage" eval 'succeeds && out_has "^usage: kyso sign FILE"'
k --version
check "--version" eval 'succeeds && out_has "^kyso [0-9]"'
LANG=vi_VN.UTF-8 k frobnicate
check "an unknown command in Vietnamese: exit 2" fails_with 2 'không có lệnh "frobnicate"'

echo "# no pcscd, no module"
PCSCLITE_CSOCK_NAME=$W/no-pcscd.sock k list
check "no reader (pcscd not reachable): exit 3, one line" fails_with 3 "no card reader found"
PCSCLITE_CSOCK_NAME=$W/no-pcscd.sock LANG=vi_VN.UTF-8 k sign /etc/hostname
check "... in Vietnamese" fails_with 3 "không tìm thấy đầu đọc thẻ"
PCSCLITE_CSOCK_NAME=$W/no-pcscd.sock HOME=$W/empty k doctor
check "doctor without pcscd: exit 3, and what to do" \
	eval 'rc_is 3 && out_has "\[!!\] The smart-card service \(pcscd\) is not running"'
k list --module "$W/nosuch.so"
check "a module that cannot be loaded: exit 9, one line" fails_with 9 "cannot load the PKCS#11 module"

echo "# the Vietnamese catalog is complete, the man page renders"
xgettext --from-code=UTF-8 --language=C --keyword=_ --keyword=N_ \
	-o "$W/kyso.pot" $(sed "s|#.*||; s|^src|$top_srcdir/src|" "$top_srcdir/po/POTFILES") 2>/dev/null
msgmerge --quiet -o "$W/vi.po" "$top_srcdir/po/vi.po" "$W/kyso.pot" 2>/dev/null
stats=$(msgfmt --statistics -c -o /dev/null "$W/vi.po" 2>&1)
check "every message has a Vietnamese translation ($stats)" \
	eval '[ -n "$stats" ] && ! grep -qE "fuzzy|untranslated" <<<"$stats"'
for loc in C C.UTF-8; do
	# without a preloaded sanitizer (make check-sanitize): man's seccomp
	# sandbox stops the runtime from writing its report file
	warn=$(LC_ALL=$loc MANWIDTH=80 env -u LD_PRELOAD man --warnings -l "$top_srcdir/man/kyso.1" 2>&1 >"$T/man.txt")
	check "man -l kyso.1 renders without warnings ($loc)" \
		eval '[ -z "$warn" ] && grep -q "EXIT STATUS" "$T/man.txt"'
done

echo "# provisioning two virtual PIV cards"
. "$top_srcdir/tests/integration/piv-provision.sh"
piv_provision "$W" || { echo "FAIL: provisioning"; exit 1; }
mkdir -p "$W/locale"
localedef -i vi_VN -f UTF-8 "$W/locale/vi_VN.UTF-8" ||
	{ echo "FAIL: localedef vi_VN.UTF-8"; exit 1; }
rm -f "$W/fresh"
"$with_card" --readers 2 --profile piv --state "$W/state" \
	--profile2 piv --state2 "$W/fresh" -- bash "$0" --inside "$W"
r1=$?
"$with_card" --profile blank -- bash "$0" --inside-blank "$W"
r2=$?
# The inner runs printed their own results.
if [ $fails -eq 0 ] && [ $r1 -eq 0 ] && [ $r2 -eq 0 ]; then
	echo PASS
	exit 0
fi
echo "FAIL"
exit 1
