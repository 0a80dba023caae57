#!/usr/bin/env bash
# epass2003-provision.sh: provisions a fresh virtual ePass2003 with OpenSC,
# a host stack we did not write, so tests can start from a token that has
# keys and certificates in OpenSC's pkcs15-init layout.
#
# usage: tests/integration/epass2003-provision.sh DIR [VARIANT]
#    or: . tests/integration/epass2003-provision.sh; epass2003_provision DIR [VARIANT]
#
# VARIANT is a kyso-vcard profile: epass2003 (3DES SM, the default),
# epass2003-aes or epass2003-fips. In a tests/with-card run on the new
# state file DIR/state, OpenSC does what its wiki and every public
# ePass2003 report do: pkcs15-init -E, then --create-pkcs15 with the
# pkcs15+onepin profile (OpenSC does not support an SO PIN on this card:
# "ePass2003 doesn't support SO-PIN and SO-PUK", OpenSC #1669; the PUK,
# key 02, is the SO-level key). It generates on the card RSA-2048 (id 01),
# EC P-256 (id 02) and RSA-1024 (id 03); a throwaway CA made with openssl
# certifies each returned public key, and pkcs15-init stores the
# certificates back on the token.
#
# DIR receives: state (the token: user PIN 123456, PUK 12345678), ca.pem
# and ca.key, pub-ID.pem and cert-ID.pem for ID in 01 02 03, and
# openssl.cnf (see epass2003_host_env).
#
# Environment: as tests/with-card (top_builddir, KYSO_VCARD_BIN,
# KYSO_HARNESS_DIR, ...); top_srcdir to find tests/with-card. Needs
# OpenSC's pkcs15-init and openssl: a missing tool is an error, not a skip.

epass2003_provision_keys='01:rsa/2048 02:ec/prime256v1 03:rsa/1024'
EPASS2003_PIN=123456
EPASS2003_PUK=12345678

epass2003_provision_die() {
	echo "epass2003-provision: $*" >&2
	return 1
}

# OpenSC 0.23 computes the 3DES units' retail MAC with single DES, which
# OpenSSL 3 keeps in its legacy provider: without it OpenSC's SM wrap
# fails and opensc-tool crashes (a host bug, not the card's). Writes
# DIR/openssl.cnf loading the default and legacy providers and exports
# OPENSSL_CONF for the host tools of a 3DES variant.
epass2003_host_env() {
	local dir=$1 variant=$2
	[ "$variant" = epass2003 ] || return 0
	cat >"$dir/openssl.cnf" <<-'EOF'
		openssl_conf = openssl_init
		[openssl_init]
		providers = provider_sect
		[provider_sect]
		default = default_sect
		legacy = legacy_sect
		[default_sect]
		activate = 1
		[legacy_sect]
		activate = 1
	EOF
	export OPENSSL_CONF=$dir/openssl.cnf
}

epass2003_provision_run() {
	local dir=$1
	shift
	"$@" >"$dir/.out" 2>&1 && return 0
	sed 's/^/    /' "$dir/.out" >&2
	epass2003_provision_die "failed: $*"
}

# Runs inside with-card: the token is fresh, the CA exists.
epass2003_provision_card() {
	local dir=$1 spec id alg key ku
	epass2003_provision_run "$dir" pkcs15-init -E -T || return 1
	epass2003_provision_run "$dir" pkcs15-init --create-pkcs15 -T \
		-p pkcs15+onepin --pin "$EPASS2003_PIN" \
		--puk "$EPASS2003_PUK" --label "kyso ePass2003" || return 1
	key=$(mktemp "$dir/.csrkey.XXXXXX") || return 1
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$key" 2>/dev/null ||
		epass2003_provision_die "openssl genpkey" || return 1
	for spec in $epass2003_provision_keys; do
		id=${spec%%:*} alg=${spec#*:}
		epass2003_provision_run "$dir" pkcs15-init -T --generate-key \
			"$alg" --id "$id" --auth-id 01 --pin "$EPASS2003_PIN" \
			--label "key $id" || return 1
		epass2003_provision_run "$dir" pkcs15-tool \
			--read-public-key "$id" -o "$dir/pub-$id.pem" || return 1
		case $alg in
		rsa/*) ku="digitalSignature, keyEncipherment" ;;
		*) ku="digitalSignature" ;;
		esac
		# The CSR's own key is a stand-in: -force_pubkey puts the
		# token's key into the certificate.
		openssl req -new -key "$key" -subj "/CN=kyso ePass2003 $id" \
			-out "$dir/.csr" ||
			epass2003_provision_die "openssl req" || return 1
		printf 'keyUsage=critical,%s\nbasicConstraints=CA:FALSE\n' \
			"$ku" >"$dir/.ext"
		openssl x509 -req -in "$dir/.csr" -CA "$dir/ca.pem" \
			-CAkey "$dir/ca.key" -set_serial "0x$id$RANDOM" \
			-days 30 -force_pubkey "$dir/pub-$id.pem" \
			-extfile "$dir/.ext" -out "$dir/cert-$id.pem" \
			2>/dev/null ||
			epass2003_provision_die "openssl x509 -req for $id" ||
			return 1
		epass2003_provision_run "$dir" pkcs15-init -T \
			--store-certificate "$dir/cert-$id.pem" --id "$id" \
			--auth-id 01 --pin "$EPASS2003_PIN" \
			--label "cert $id" || return 1
	done
	rm -f "$key" "$dir/.csr" "$dir/.ext" "$dir/.out"
}

epass2003_provision() {
	local dir=${1:-} variant=${2:-epass2003} src tool with_card
	[ -n "$dir" ] ||
		epass2003_provision_die "usage: epass2003_provision DIR [VARIANT]" ||
		return 1
	case $variant in
	epass2003 | epass2003-aes | epass2003-fips) ;;
	*) epass2003_provision_die "no pkcs15-init layout on '$variant'" ||
		return 1 ;;
	esac
	for tool in pkcs15-init openssl; do
		command -v "$tool" >/dev/null ||
			epass2003_provision_die "missing $tool" || return 1
	done
	src=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
	with_card=$src/tests/with-card
	[ -x "$with_card" ] ||
		epass2003_provision_die "missing $with_card" || return 1
	mkdir -p "$dir" || return 1
	dir=$(cd "$dir" && pwd)
	rm -f "$dir/state"

	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/ca.key" -out "$dir/ca.pem" -days 30 \
		-subj "/CN=kyso throwaway test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
		epass2003_provision_die "cannot make the test CA" || return 1

	"$with_card" --profile "$variant" --state "$dir/state" -- \
		bash "${BASH_SOURCE[0]}" --inside "$dir" "$variant" ||
		epass2003_provision_die "provisioning the token failed" ||
		return 1
	[ -s "$dir/state" ] ||
		epass2003_provision_die "no state file" || return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	if [ "${1:-}" = --inside ]; then
		epass2003_host_env "$2" "$3"
		epass2003_provision_card "$2"
		exit
	fi
	[ $# -ge 1 ] && [ $# -le 2 ] || {
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
		exit 2
	}
	epass2003_provision "$@"
	exit
fi
