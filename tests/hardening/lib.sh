# Sourced by the hardening tests (tests/hardening/*.sh): paths, a freshly
# provisioned PIV card (tests/integration/piv-provision.sh: keys in 9A 9C 9D
# 9E, PIN 123456, PUK 12345678), and a way to run a program against it.
# A missing tool is a failure, never a skip.
#
# Environment: top_srcdir, top_builddir, KYSO_MODULE (as make check sets
# them); KYSO_TEST_WRAPPER, a command put before each test program (make
# check-valgrind: valgrind).
set -euo pipefail
me=$(basename "$0" .sh)
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
module=${KYSO_MODULE:-$top_builddir/.libs/kyso-pkcs11.so}
hbin=$top_builddir/tests/hardening
with_card=$top_srcdir/tests/with-card
card_ctl=$top_srcdir/tests/card-ctl
# word splitting wanted: a command line
wrap=${KYSO_TEST_WRAPPER:-}

fail() {
	echo "$me: FAIL: $*" >&2
	exit 1
}

need() {
	command -v "$1" >/dev/null || fail "missing $1 ($2)"
}

[ -f "$module" ] || fail "module $module not built"
need openssl openssl
need yubico-piv-tool yubico-piv-tool

work=$(mktemp -d "${TMPDIR:-/tmp}/kyso-$me.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Provisions the card once per test; each run gets its own copy.
provision() {
	"$top_srcdir/tests/integration/piv-provision.sh" "$work/prov" \
		>"$work/provision.log" 2>&1 ||
		{ cat "$work/provision.log" >&2; fail "provisioning the card"; }
}

fresh_state() {
	cp "$work/prov/state" "$work/state.$1"
	echo "$work/state.$1"
}

# with_piv NAME [WITH-CARD OPTION...] -- COMMAND...: COMMAND against a fresh
# copy of the provisioned card, with what hlib.c reads in its environment.
with_piv() {
	local name=$1 opts=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	"$with_card" --profile piv --state "$(fresh_state "$name")" \
		"${opts[@]}" -- env KYSO_MODULE="$module" \
		KYSO_PROV="$work/prov" CARD_CTL="$card_ctl" "$@"
}
