#!/usr/bin/env bash
# piv-provision.sh: provisions a fresh virtual PIV card with host stacks we did
# not write, so tests can start from a card that has keys and certificates.
#
# usage: tests/integration/piv-provision.sh DIR
#    or: . tests/integration/piv-provision.sh; piv_provision DIR
#
# In a tests/with-card run on the new state file DIR/state, yubico-piv-tool
# (default management key) generates 9A RSA2048, 9C ECCP256, 9D RSA2048 and
# 9E ECCP384; a throwaway CA made with openssl certifies each returned public
# key (yubico-piv-tool's selfsign is broken under OpenSSL 3); the certificates
# go back on the card with yubico-piv-tool -a import-certificate.
#
# DIR receives: state (the card: PIN 123456, PUK 12345678, default 3DES
# management key), ca.pem and ca.key (the test CA), pub-SLOT.pem and
# cert-SLOT.pem for SLOT in 9a 9c 9d 9e.
#
# Environment: as tests/with-card (top_builddir, KYSO_VCARD_BIN,
# KYSO_HARNESS_DIR, ...); top_srcdir to find tests/with-card. Needs
# yubico-piv-tool and openssl: a missing tool is an error, not a skip.

piv_provision_slots='9a:RSA2048 9c:ECCP256 9d:RSA2048 9e:ECCP384'

piv_provision_die() {
	echo "piv-provision: $*" >&2
	return 1
}

# Key usage each slot's certificate states (SP 800-73-4 part 1, 3.3).
piv_provision_ku() {
	case $1 in
	9a) echo "digitalSignature, keyEncipherment" ;;
	9c) echo "digitalSignature, nonRepudiation" ;;
	9d) echo "keyEncipherment, dataEncipherment, keyAgreement" ;;
	9e) echo "digitalSignature" ;;
	esac
}

# Runs a tool quietly; its output is shown if it fails.
piv_provision_run() {
	local dir=$1
	shift
	"$@" >"$dir/.out" 2>&1 && return 0
	sed 's/^/    /' "$dir/.out" >&2
	piv_provision_die "failed: $*"
}

# Runs inside with-card: the card is fresh, the CA exists.
piv_provision_card() {
	local dir=$1 spec slot alg key
	key=$(mktemp "$dir/.csrkey.XXXXXX") || return 1
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$key" 2>/dev/null || piv_provision_die "openssl genpkey" ||
		return 1
	for spec in $piv_provision_slots; do
		slot=${spec%%:*} alg=${spec#*:}
		piv_provision_run "$dir" yubico-piv-tool -r '' -a generate \
			-s "$slot" -A "$alg" -o "$dir/pub-$slot.pem" || return 1
		# The CSR's own key is a stand-in: -force_pubkey puts the
		# card's key into the certificate.
		openssl req -new -key "$key" -subj "/CN=kyso test $slot" \
			-out "$dir/.csr" ||
			piv_provision_die "openssl req" || return 1
		printf 'keyUsage=critical,%s\nbasicConstraints=CA:FALSE\n' \
			"$(piv_provision_ku "$slot")" >"$dir/.ext"
		openssl x509 -req -in "$dir/.csr" -CA "$dir/ca.pem" \
			-CAkey "$dir/ca.key" -set_serial "0x$slot$RANDOM" \
			-days 30 -force_pubkey "$dir/pub-$slot.pem" \
			-extfile "$dir/.ext" -out "$dir/cert-$slot.pem" \
			2>/dev/null ||
			piv_provision_die "openssl x509 -req for $slot" ||
			return 1
		piv_provision_run "$dir" yubico-piv-tool -r '' \
			-a import-certificate -s "$slot" \
			-i "$dir/cert-$slot.pem" || return 1
	done
	rm -f "$key" "$dir/.csr" "$dir/.ext" "$dir/.out"
}

piv_provision() {
	local dir=${1:-} src tool with_card
	[ -n "$dir" ] || piv_provision_die "usage: piv_provision DIR" || return 1
	for tool in yubico-piv-tool openssl; do
		command -v "$tool" >/dev/null ||
			piv_provision_die "missing $tool" || return 1
	done
	src=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
	with_card=$src/tests/with-card
	[ -x "$with_card" ] || piv_provision_die "missing $with_card" ||
		return 1
	mkdir -p "$dir" || return 1
	dir=$(cd "$dir" && pwd)
	rm -f "$dir/state"

	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/ca.key" -out "$dir/ca.pem" -days 30 \
		-subj "/CN=kyso throwaway test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
		piv_provision_die "cannot make the test CA" || return 1

	"$with_card" --profile piv --state "$dir/state" -- \
		bash "${BASH_SOURCE[0]}" --inside "$dir" ||
		piv_provision_die "provisioning the card failed" || return 1
	[ -s "$dir/state" ] || piv_provision_die "no state file" || return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	if [ "${1:-}" = --inside ]; then
		piv_provision_card "$2"
		exit
	fi
	[ $# -eq 1 ] || {
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
		exit 2
	}
	piv_provision "$1"
	exit
fi
