#!/usr/bin/env bash
# OpenSSL 3 through libengine-pkcs11-openssl (libp11), module chosen with
# PKCS11_MODULE_PATH: pkeyutl signs with RSA PKCS#1 v1.5, RSA-PSS, ECDSA
# P-256 (a key that wants the PIN before each use) and ECDSA P-384; req
# makes a self-signed certificate with the token key; cms signs; s_client
# logs in to a local s_server -Verify 1 with the token key. openssl checks
# every signature against the certificate, and a tampered input must fail.
. "$(dirname "$0")/lib.sh"
cons_main openssl "$@"

cons_need openssl
engine_dir=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"/\1/p')
[ -r "$engine_dir/pkcs11.so" ] ||
	cons_fail "missing $engine_dir/pkcs11.so (libengine-pkcs11-openssl)"
export PKCS11_MODULE_PATH=$MODULE

tok="token=${TOKEN// /%20}"
uri_9a="pkcs11:$tok;id=%01;type=private;pin-value=$PIN"
uri_9c="pkcs11:$tok;id=%02;type=private;pin-value=$PIN"
uri_9e="pkcs11:$tok;id=%04;type=private;pin-value=$PIN"
eng=(-engine pkcs11 -keyform engine)

# For a key that wants the PIN before each use (CKA_ALWAYS_AUTHENTICATE:
# the PIV 9C key) libp11 prompts through OpenSSL's UI, which ignores
# -passin and pin-value; without a controlling terminal it reads stdin.
with_pin() {
	setsid -w "$@" <<<"$PIN"
}

printf 'kyso consumer test: OpenSSL %s\n' "$(date -u +%FT%T)" >"$W/data.txt"
openssl dgst -sha256 -binary "$W/data.txt" >"$W/h256"
openssl dgst -sha384 -binary "$W/data.txt" >"$W/h384"
printf 'tampered' >"$W/bad"
openssl dgst -sha256 -binary "$W/bad" >"$W/bad256"

# sign NAME URI CERT HASH [PKEYOPT...]: signs HASH with URI, verifies with
# CERT, and checks that the signature does not verify another hash.
sign() {
	local name=$1 uri=$2 cert=$3 hash=$4 opts=() o
	shift 4
	for o in "$@"; do opts+=(-pkeyopt "$o"); done
	cons_step "pkeyutl -sign: $name"
	cons_run "$W/sign-$name.log" with_pin openssl pkeyutl "${eng[@]}" -inkey "$uri" \
		-sign -in "$W/$hash" "${opts[@]}" -out "$W/sig-$name"
	[ -s "$W/sig-$name" ] || cons_fail "$name: empty signature"
	cons_run "$W/verify-$name.log" openssl pkeyutl -verify -certin \
		-inkey "$cert" -in "$W/$hash" -sigfile "$W/sig-$name" "${opts[@]}"
	cons_grep "Signature Verified Successfully" "$W/verify-$name.log" \
		"$name: signature does not verify"
	cons_run_fails "$W/verify-bad-$name.log" openssl pkeyutl -verify -certin \
		-inkey "$cert" -in "$W/bad256" -sigfile "$W/sig-$name" "${opts[@]}"
}

cons_check "pkeyutl RSA PKCS#1" sign rsa-pkcs1 "$uri_9a" "$CERT_9A" h256 \
	digest:sha256
cons_check "pkeyutl RSA-PSS" sign rsa-pss "$uri_9a" "$CERT_9A" h256 \
	digest:sha256 rsa_padding_mode:pss rsa_pss_saltlen:32
cons_check "pkeyutl ECDSA P-256" sign ecdsa-p256 "$uri_9c" "$CERT_9C" h256
cons_check "pkeyutl ECDSA P-384" sign ecdsa-p384 "$uri_9e" "$CERT_9E" h384

req() {
	cons_step "req -new -x509 with the token key"
	cons_run "$W/req.log" openssl req "${eng[@]}" -key "$uri_9a" -new -x509 \
		-subj "/CN=kyso self-signed" -days 1 -sha256 -out "$W/self.pem"
	cons_run "$W/self-verify.log" openssl verify -CAfile "$W/self.pem" "$W/self.pem"
	cons_grep ': OK$' "$W/self-verify.log" "self-signed certificate does not verify"
	openssl x509 -in "$W/self.pem" -noout -pubkey >"$W/self-pub.pem"
	openssl x509 -in "$CERT_9A" -noout -pubkey >"$W/9a-pub.pem"
	cmp -s "$W/self-pub.pem" "$W/9a-pub.pem" ||
		cons_fail "req: certificate's key is not the token's 9A key"
}
cons_check "req -new -x509" req

cms() {
	local name=$1 uri=$2 cert=$3
	cons_step "cms -sign with $name, cms -verify"
	cons_run "$W/cms-$name.log" with_pin openssl cms -sign "${eng[@]}" -inkey "$uri" \
		-signer "$cert" -md sha256 -nodetach -binary -in "$W/data.txt" \
		-outform DER -out "$W/data-$name.p7s"
	cons_run "$W/cms-verify-$name.log" openssl cms -verify -inform DER \
		-in "$W/data-$name.p7s" -CAfile "$CA" -binary -out "$W/out-$name.txt"
	cons_grep "Verification successful" "$W/cms-verify-$name.log" \
		"cms $name: signature does not verify"
	cmp -s "$W/data.txt" "$W/out-$name.txt" || cons_fail "cms $name: content differs"
	# Tamper with the signed content: verification must fail.
	"$CONS_PY" - "$W/data-$name.p7s" "$W/bad-$name.p7s" <<-'EOF'
		import sys
		d = bytearray(open(sys.argv[1], "rb").read())
		i = d.find(b"kyso consumer test")
		assert i > 0
		d[i] ^= 1
		open(sys.argv[2], "wb").write(d)
	EOF
	cons_run_fails "$W/cms-bad-$name.log" openssl cms -verify -inform DER \
		-in "$W/bad-$name.p7s" -CAfile "$CA" -binary -out /dev/null
}
cons_check "cms -sign RSA" cms 9a "$uri_9a" "$CERT_9A"
cons_check "cms -sign ECDSA" cms 9c "$uri_9c" "$CERT_9C"

cons_step "s_client TLS client authentication against s_server -Verify 1"
cons_server_cert

# tls NAME SUBJECT-CN S_CLIENT-ARGS...
tls() {
	local name=$1 cn=$2 srv
	shift 2
	cons_step "s_client: $name"
	cons_s_server "$W/s_server-$name.log"
	srv=$cons_bg_pid port=$cons_port
	printf 'GET / HTTP/1.0\r\n\r\n' |
		setsid -w openssl s_client -connect "127.0.0.1:$port" \
			-servername localhost -CAfile "$CA" -verify_return_error \
			-ign_eof "$@" >"$W/s_client-$name.log" 2>&1
	cons_reap "$srv" 5
	if [ -z "$cn" ]; then
		cons_nogrep "^HTTP/1.0 200" "$W/s_client-$name.log" \
			"$name: s_server answered a client without a certificate"
		cons_grep "peer did not return a certificate|certificate required" \
			"$W/s_server-$name.log" "$name: no client certificate asked for"
		return 0
	fi
	cons_grep "HTTP/1.0 200 ok" "$W/s_client-$name.log" "$name: no page"
	cons_grep "Verify return code: 0" "$W/s_client-$name.log" \
		"$name: s_client did not verify the server"
	sed -n '/^Client certificate/,$p' "$W/s_client-$name.log" >"$W/page-$name"
	cons_grep "Subject: CN ?= ?$cn\$" "$W/page-$name" \
		"$name: the server did not see the token's certificate"
	cons_grep "^depth=0 CN ?= ?$cn\$" "$W/s_server-$name.log" \
		"$name: s_server did not verify the client certificate"
	cons_nogrep "verify error" "$W/s_server-$name.log" \
		"$name: s_server reported a verify error"
}

cons_check "s_client RSA TLS 1.3" tls rsa-tls1.3 "kyso test 9a" \
	"${eng[@]}" -key "$uri_9a" -cert "$CERT_9A" -tls1_3
cons_check "s_client ECDSA TLS 1.2" tls ecdsa-tls1.2 "kyso test 9e" \
	"${eng[@]}" -key "$uri_9e" -cert "$CERT_9E" -tls1_2
# The same server refuses a client without a certificate: the check bites.
cons_check "s_server refuses no certificate" tls no-cert ""
cons_done
