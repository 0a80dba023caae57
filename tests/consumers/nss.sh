#!/usr/bin/env bash
# NSS (what Firefox, Thunderbird and LibreOffice use): the module added with
# modutil to a fresh database; certutil lists the token's certificates and
# keys; cmsutil signs with the RSA key and with the ECDSA key that wants the
# PIN before each use, and verifies (status GoodSignature: cmsutil -D exits
# 0 even on a bad signature); openssl verifies the same signatures; a
# tampered message is not GoodSignature; a wrong PIN is refused.
. "$(dirname "$0")/lib.sh"
cons_main nss "$@"

cons_need certutil modutil cmsutil openssl
db=sql:$W/db
mkdir -p "$W/db"
printf '%s\n' "$PIN" >"$W/pin"
printf '000000\n' >"$W/badpin"

cons_step "fresh database, modutil -add"
cons_run "$W/certutil-N.log" certutil -N -d "$db" --empty-password
cons_run "$W/modutil-add.log" modutil -dbdir "$db" -add kyso -libfile "$MODULE" -force
# (exits 1 on kyso's empty second reader: "Unable to get information
# about token", C_GetTokenInfo being CKR_TOKEN_NOT_PRESENT there)
modutil -dbdir "$db" -list kyso >"$W/modutil-list.log" 2>&1
cons_grep "Library file: $MODULE" "$W/modutil-list.log" "modutil: module not listed"
cons_grep "Token Name: $TOKEN" "$W/modutil-list.log" "modutil: token not listed"
cons_run "$W/certutil-A.log" certutil -A -d "$db" -n "Test CA" -t CT,C,C -i "$CA"

cons_step "certutil -L -h all"
cons_run "$W/certutil-L.log" certutil -L -h all -d "$db"
for label in "PIV AUTH key" "SIGN key" "KEY MAN key" "CARD AUTH key"; do
	cons_grep "^$TOKEN:$label " "$W/certutil-L.log" \
		"certutil -L: no certificate '$TOKEN:$label'"
done
cons_step "certutil -K (logs in)"
cons_run "$W/certutil-K.log" certutil -K -h "$TOKEN" -d "$db" -f "$W/pin"
cons_grep "rsa +01 +PIV AUTH key" "$W/certutil-K.log" "certutil -K: 9A key missing"
cons_grep "ec +02 +SIGN key" "$W/certutil-K.log" "certutil -K: 9C key missing"
cons_grep "rsa +03 +KEY MAN key" "$W/certutil-K.log" "certutil -K: 9D key missing"
cons_grep "ec +04 +CARD AUTH key" "$W/certutil-K.log" "certutil -K: 9E key missing"

cons_step "certutil -K with a wrong PIN fails, the card counts one try"
before=$(cons_verify_failures)
cons_run_fails "$W/certutil-K-bad.log" certutil -K -h "$TOKEN" -d "$db" -f "$W/badpin"
cons_grep "SEC_ERROR_BAD_PASSWORD|Incorrect password|could not authenticate" \
	"$W/certutil-K-bad.log" "certutil -K: wrong PIN not reported as such"
cons_expect_verify_failures "$before" 1 "certutil -K"

printf 'kyso consumer test: NSS %s\n' "$(date -u +%FT%T)" >"$W/data.txt"

# cms NAME CERT-LABEL CERT: sign, verify with NSS and openssl, tamper.
cms() {
	local name=$1 label=$2 cert=$3
	cons_step "cmsutil -S with '$label', cmsutil -D"
	cons_run "$W/cms-S-$name.log" cmsutil -S -N "$TOKEN:$label" -d "$db" \
		-f "$W/pin" -i "$W/data.txt" -o "$W/$name.p7s"
	# -h 1: the signer's status, then the content, all to -o.
	cons_run "$W/cms-D-$name.log" cmsutil -D -d "$db" -f "$W/pin" -h 1 \
		-i "$W/$name.p7s" -o "$W/$name.out"
	cons_grep "signer0.status=GoodSignature" "$W/$name.out" \
		"cmsutil -D: $name signature not good"
	[ "$(tail -n 1 "$W/$name.out")" = "$(cat "$W/data.txt")" ] ||
		cons_fail "cmsutil -D: $name content differs"
	cons_run "$W/openssl-cms-$name.log" openssl cms -verify -inform DER \
		-in "$W/$name.p7s" -CAfile "$CA" -binary -purpose any -out /dev/null
	openssl cms -cmsout -inform DER -in "$W/$name.p7s" -print -noout \
		>"$W/cms-print-$name.log" 2>&1
	openssl x509 -in "$cert" -noout -serial |
		sed 's/^serial=//' >"$W/serial-$name"
	# The signer is the token's certificate (serial as openssl prints it).
	grep -qi "serialNumber: 0x$(cat "$W/serial-$name")" "$W/cms-print-$name.log" ||
		grep -qi "serialNumber: $((16#$(cat "$W/serial-$name")))" "$W/cms-print-$name.log" ||
		cons_fail "cmsutil: $name signer is not $cert"
	"$CONS_PY" - "$W/$name.p7s" "$W/$name-bad.p7s" <<-'EOF'
		import sys
		d = bytearray(open(sys.argv[1], "rb").read())
		i = d.find(b"kyso consumer test")
		assert i > 0
		d[i] ^= 1
		open(sys.argv[2], "wb").write(d)
	EOF
	cmsutil -D -d "$db" -f "$W/pin" -h 1 -i "$W/$name-bad.p7s" \
		-o "$W/$name-bad.out" >"$W/cms-D-bad-$name.log" 2>&1
	cons_grep "signer0.status=" "$W/$name-bad.out" \
		"cmsutil -D: tampered $name message gave no status"
	cons_nogrep "GoodSignature" "$W/$name-bad.out" \
		"cmsutil -D: tampered $name message reported good"
}

cons_check "cmsutil RSA" cms rsa "PIV AUTH key" "$CERT_9A"
cons_check "cmsutil ECDSA (PIN before each use)" cms ecdsa "SIGN key" "$CERT_9C"
cons_done
