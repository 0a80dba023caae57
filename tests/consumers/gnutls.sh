#!/usr/bin/env bash
# GnuTLS: p11tool --provider lists the token and its certificates and
# test-signs with each signing key (RSA PKCS#1 v1.5 and PSS, ECDSA P-256 with
# a PIN before each use, ECDSA P-384), checking each signature itself;
# gnutls-cli logs in to a local TLS server with pkcs11: URIs for the
# certificate and the key, and the server sees the token's certificate.
. "$(dirname "$0")/lib.sh"
cons_main gnutls "$@"

cons_need p11tool gnutls-cli openssl
export GNUTLS_PIN=$PIN
tok="pkcs11:token=${TOKEN// /%20}"
p11=(p11tool --provider "$MODULE")

cons_step "p11tool --list-tokens"
cons_run "$W/list-tokens.log" "${p11[@]}" --list-tokens
cons_grep "Label: $TOKEN\$" "$W/list-tokens.log" "p11tool: token not listed"
cons_grep "URL: pkcs11:.*token=${TOKEN// /%20}" "$W/list-tokens.log" \
	"p11tool: no token URL"

cons_step "p11tool --list-all-certs"
cons_run "$W/list-certs.log" "${p11[@]}" --list-all-certs "$tok"
n=$(grep -c "Type: X.509 Certificate" "$W/list-certs.log")
[ "$n" -eq 4 ] || cons_fail "p11tool: $n certificates, expected 4"
for spec in "%01;object=PIV%20AUTH%20key:RSA-2048" \
	"%02;object=SIGN%20key:EC/ECDSA-SECP256R1" \
	"%03;object=KEY%20MAN%20key:RSA-2048" \
	"%04;object=CARD%20AUTH%20key:EC/ECDSA-SECP384R1"; do
	uri=${spec%%:*} type=${spec#*:}
	grep -A1 -F "id=$uri;type=cert" "$W/list-certs.log" |
		grep -qF "($type)" ||
		cons_fail "p11tool: no $type certificate with id=$uri"
done
cons_run "$W/export-9a.log" "${p11[@]}" --export "$tok;id=%01;type=cert"
openssl x509 -in "$W/export-9a.log" -noout -fingerprint -sha256 >"$W/fp-tok" &&
	openssl x509 -in "$CERT_9A" -noout -fingerprint -sha256 >"$W/fp-9a" ||
	cons_fail "p11tool --export gave no certificate"
cmp -s "$W/fp-tok" "$W/fp-9a" || cons_fail "p11tool --export: not the 9A certificate"

# test_sign NAME URI [ARGS...]
test_sign() {
	local name=$1 uri=$2
	shift 2
	cons_step "p11tool --test-sign: $name"
	cons_run "$W/test-sign-$name.log" "${p11[@]}" --login --test-sign "$@" "$uri"
	cons_grep "^Signing using .*\.\.\. ok" "$W/test-sign-$name.log" "$name: sign"
	cons_grep "^Verifying against public key in the token\.\.\. ok" \
		"$W/test-sign-$name.log" "$name: verify"
	case $name in
	*-pss) cons_grep "Signing using RSA-PSS" "$W/test-sign-$name.log" "$name: not PSS" ;;
	esac
}

cons_check "--test-sign RSA PKCS#1" test_sign rsa-pkcs1 "$tok;object=PIV%20AUTH%20key;type=private"
cons_check "--test-sign RSA-PSS" test_sign rsa-pss "$tok;id=%01;type=private" \
	--sign-params RSA-PSS
cons_check "--test-sign ECDSA P-256" test_sign ecdsa-p256 "$tok;object=SIGN%20key;type=private"
cons_check "--test-sign ECDSA P-384" test_sign ecdsa-p384 "$tok;id=%04;type=private"

cons_step "p11tool --test-sign with a wrong PIN fails"
before=$(cons_verify_failures)
GNUTLS_PIN=000000 cons_run_fails "$W/test-sign-badpin.log" "${p11[@]}" --login \
	--test-sign "$tok;id=%01;type=private"
cons_expect_verify_failures "$before" 1 "p11tool"

cons_server_cert

# tls NAME CN ID: gnutls-cli with the token's certificate and key ID.
tls() {
	local name=$1 cn=$2 id=$3 srv
	cons_step "gnutls-cli client authentication: $name"
	cons_s_server "$W/s_server-$name.log"
	srv=$cons_bg_pid
	printf 'GET / HTTP/1.0\r\n\r\n' |
		gnutls-cli --provider "$MODULE" --x509cafile "$CA" \
			--verify-hostname localhost \
			--x509certfile "$tok;id=%$id;type=cert" \
			--x509keyfile "$tok;id=%$id;type=private" \
			-p "$cons_port" 127.0.0.1 >"$W/gnutls-cli-$name.log" 2>&1 ||
		{
			sed 's/^/    | /' "$W/gnutls-cli-$name.log" "$W/s_server-$name.log" >&2
			cons_fail "gnutls-cli $name"
		}
	cons_reap "$srv" 5
	cons_grep "Handshake was completed" "$W/gnutls-cli-$name.log" "$name: no handshake"
	cons_grep "HTTP/1.0 200 ok" "$W/gnutls-cli-$name.log" "$name: no page"
	sed -n '/^Client certificate/,$p' "$W/gnutls-cli-$name.log" >"$W/page-$name"
	cons_grep "Subject: CN ?= ?$cn\$" "$W/page-$name" \
		"$name: the server did not see the token's certificate"
	cons_grep "^depth=0 CN ?= ?$cn\$" "$W/s_server-$name.log" \
		"$name: s_server did not verify the client certificate"
}

cons_check "gnutls-cli RSA" tls rsa "kyso test 9a" 01
cons_check "gnutls-cli ECDSA P-384" tls ecdsa-p384 "kyso test 9e" 04
cons_done
