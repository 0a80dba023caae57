# lib.sh: sourced by every tests/consumers/*.sh. A consumer test runs the
# same steps against one of two PKCS#11 modules, chosen by KYSO_TEST_MODULE:
#
#   kyso     (default) kyso-pkcs11.so -> private pcscd -> kyso-vcard's PIV
#            card, provisioned by tests/integration/piv-provision.sh
#   softhsm  SoftHSM2 with a token holding the same kind of keys (same
#            labels, ids, key types, certificate subjects, test CA)
#
# A test that fails against SoftHSM2 is a broken test, not a kyso bug.
#
# A test script does:
#     . "$(dirname "$0")/lib.sh"
#     cons_main NAME "$@"          # sets up the fixture, re-runs the script
#                                  # inside it, exits with its status
#     ... steps (only run inside the fixture) ...
#
# Inside, these are set:
#   MODULE        the PKCS#11 module (.so) under test
#   MODULE_KIND   kyso | softhsm
#   TOKEN         token label ("kyso test 9a" for both)
#   PIN           user PIN (123456)
#   CA            the test CA certificate (PEM); CA_KEY its key
#   CERT_9A ...   PEM certificates of the four keys (9A 9C 9D 9E):
#                 id 01 "PIV AUTH key" RSA-2048, id 02 "SIGN key" P-256
#                 (CKA_ALWAYS_AUTHENTICATE), id 03 "KEY MAN key" RSA-2048,
#                 id 04 "CARD AUTH key" P-384
#   W             this test's scratch directory (removed afterwards)
#
# Environment read: top_srcdir, top_builddir, KYSO_MODULE, KYSO_TEST_MODULE,
# KYSO_CONSUMERS_FIXTURE (a directory made by `lib.sh fixture DIR`, shared
# by the tests of one run; made on the fly when unset), SOFTHSM2_MODULE,
# KYSO_CONSUMERS_KEEP=1 (keep the scratch directory), CONS_TIMEOUT (s).
#
# Every missing tool is a failure, never a skip.

cons_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$cons_here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
CONS_PY=/usr/bin/python3
SOFTHSM2_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
export SOFTHSM2_MODULE

cons_me=consumers

cons_fail() {
	echo "$cons_me: FAIL: $*" >&2
	exit 1
}

cons_step() {
	echo "$cons_me: $*"
}

cons_need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 ||
			cons_fail "missing $t (install the packages in .ci/install-deps)"
	done
}

# cons_run LOG CMD...: runs CMD with its output in LOG; on failure shows
# the log and fails the test.
cons_run() {
	local log=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		echo "$cons_me: command failed: $*" >&2
		sed 's/^/    | /' "$log" | tail -n 40 >&2
		cons_fail "$(basename "$log" .log)"
	fi
}

# cons_run_fails LOG CMD...: CMD must fail.
cons_run_fails() {
	local log=$1
	shift
	if "$@" >"$log" 2>&1; then
		sed 's/^/    | /' "$log" | tail -n 40 >&2
		cons_fail "expected to fail: $*"
	fi
	return 0
}

# cons_grep PATTERN FILE WHAT: FILE must match the extended regexp.
cons_grep() {
	grep -Eq -- "$1" "$2" && return 0
	echo "$cons_me: '$1' not found in $2:" >&2
	sed 's/^/    | /' "$2" | tail -n 40 >&2
	cons_fail "$3"
}

cons_nogrep() {
	grep -Eq -- "$1" "$2" || return 0
	echo "$cons_me: '$1' unexpectedly found in $2:" >&2
	sed 's/^/    | /' "$2" | tail -n 40 >&2
	cons_fail "$3"
}

# cons_check WHAT CMD...: runs CMD (usually a function of the test) in a
# subshell with its own clean-up; if it fails, the failure is recorded and
# the test goes on with its next check. cons_done ends the test with the
# verdict, so one failure does not hide the others.
cons_failed=()
cons_check() {
	local what=$1
	shift
	(
		cons_pgids=()
		trap 'cons_cleanup' EXIT
		"$@"
	) || cons_failed+=("$what")
}

cons_done() {
	[ ${#cons_failed[@]} -eq 0 ] && exit 0
	local f
	for f in "${cons_failed[@]}"; do
		echo "$cons_me: FAILED: $f" >&2
	done
	cons_fail "${#cons_failed[@]} check(s) failed"
}

# A free TCP port on 127.0.0.1 (the kernel's pick; a server that can bind
# port 0 itself should do so instead).
cons_free_port() {
	"$CONS_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Waits until FILE matches the extended regexp (at most S seconds); fails
# if the process PID died first.
cons_wait_log() {
	local re=$1 file=$2 pid=$3 s=${4:-10} i
	for ((i = 0; i < s * 20; i++)); do
		grep -Eq -- "$re" "$file" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# --- background processes: each in its own process group ------------------

cons_pgids=()

# cons_bg LOG CMD...: starts CMD in a new session (so in its own process
# group, whatever it forks); sets cons_bg_pid. Killed by cons_cleanup.
cons_bg() {
	local log=$1
	shift
	setsid "$@" </dev/null >"$log" 2>&1 &
	cons_bg_pid=$!
	cons_pgids+=("$cons_bg_pid")
}

# Ends the process group led by PID: TERM, KILL after 3 s; reaps the leader.
cons_kill_group() {
	local pid=$1 i
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 60; i++)); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# cons_reap PID S: gives the process group led by PID S seconds to end on
# its own (a server that served its one connection), then ends it.
cons_reap() {
	local pid=$1 s=${2:-5} i
	for ((i = 0; i < s * 20; i++)); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.05
	done
	cons_kill_group "$pid"
}

cons_cleanup_hooks=()

cons_cleanup() {
	local p h
	trap '' INT TERM HUP
	for h in "${cons_cleanup_hooks[@]}"; do
		eval "$h" || true
	done
	for p in "${cons_pgids[@]}"; do
		cons_kill_group "$p"
	done
	cons_pgids=()
}

# --- a local TLS server that wants a client certificate --------------------

# $W/srv.pem and $W/srv.key: a certificate for "localhost" from the test CA.
cons_server_cert() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$W/srv.key" -out "$W/srv.req" -subj "/CN=localhost" \
		2>/dev/null &&
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$W/srv.ext" &&
		openssl x509 -req -in "$W/srv.req" -CA "$CA" -CAkey "$CA_KEY" \
			-set_serial 7 -days 1 -extfile "$W/srv.ext" \
			-out "$W/srv.pem" 2>/dev/null ||
		cons_fail "cannot make the server certificate"
}

# cons_s_server LOG: openssl s_server -www on 127.0.0.1 (cons_port), for one
# connection, which must present a client certificate the test CA
# verifies; its page shows the client certificate, its log the verified
# chain ("depth=0 CN = ..."). Sets cons_bg_pid and cons_port.
cons_s_server() {
	local log=$1 i
	for ((i = 0; i < 5; i++)); do
		cons_port=$(cons_free_port)
		cons_bg "$log" openssl s_server -accept "127.0.0.1:$cons_port" \
			-cert "$W/srv.pem" -key "$W/srv.key" -CAfile "$CA" \
			-Verify 1 -verify_return_error -naccept 1 -www
		# (not a probe connection: it would use up -naccept 1)
		cons_wait_log '^ACCEPT' "$log" "$cons_bg_pid" 10 && return 0
		grep -q "Address already in use" "$log" || break
	done
	cat "$log" >&2
	cons_fail "s_server did not start"
}

# --- card presence (kyso: pull the virtual card; softhsm: hide the tokens) --

cons_card_remove() {
	if [ "$MODULE_KIND" = kyso ]; then
		"$top_srcdir/tests/card-ctl" remove >/dev/null ||
			cons_fail "card-ctl remove"
	else
		mv "$CONS_SOFTHSM_TOKENS" "$CONS_SOFTHSM_TOKENS.out" &&
			mkdir "$CONS_SOFTHSM_TOKENS" || cons_fail "hiding SoftHSM tokens"
	fi
}

cons_card_insert() {
	if [ "$MODULE_KIND" = kyso ]; then
		"$top_srcdir/tests/card-ctl" insert >/dev/null ||
			cons_fail "card-ctl insert"
	else
		rmdir "$CONS_SOFTHSM_TOKENS" &&
			mv "$CONS_SOFTHSM_TOKENS.out" "$CONS_SOFTHSM_TOKENS" ||
			cons_fail "restoring SoftHSM tokens"
	fi
}

# Wrong-PIN tries the card counted so far (kyso only; empty for SoftHSM).
cons_verify_failures() {
	[ "$MODULE_KIND" = kyso ] || return 0
	sed -n 's/^verify_fail=//p' "$KYSO_VCARD_STATS"
}

# cons_expect_verify_failures BEFORE N WHAT: the card counted exactly N
# wrong-PIN tries since BEFORE (kyso only). The card rewrites its counters
# just after it answered, so the host can be done before they are: wait
# for them, then a little longer for any try too many.
cons_expect_verify_failures() {
	local before=$1 n=$2 what=$3 now i
	[ "$MODULE_KIND" = kyso ] || return 0
	for ((i = 0; i < 40; i++)); do
		now=$(cons_verify_failures)
		[ "$((now - before))" -ge "$n" ] && break
		sleep 0.05
	done
	sleep 0.2
	now=$(cons_verify_failures)
	[ "$((now - before))" -eq "$n" ] ||
		cons_fail "$what: the card counted $((now - before)) wrong PIN tries, expected $n"
}

# --- the shared fixture: provisioned card + SoftHSM2 token template -------

cons_key_spec='9a:01:PIV AUTH key:rsa
9c:02:SIGN key:p256
9d:03:KEY MAN key:rsa
9e:04:CARD AUTH key:p384'

cons_ku() {
	case $1 in
	9a) echo "digitalSignature, keyEncipherment" ;;
	9c) echo "digitalSignature, nonRepudiation" ;;
	9d) echo "keyEncipherment, dataEncipherment, keyAgreement" ;;
	9e) echo "digitalSignature" ;;
	esac
}

# A SoftHSM2 token "kyso test 9a" with keys and certificates shaped like
# the PIV card's, certified by the same test CA; in DIR/softhsm.
cons_softhsm_template() {
	local dir=$1 d=$1/softhsm slot id label alg p11
	mkdir -p "$d/tokens"
	cons_softhsm_conf "$d/softhsm2.conf" "$d/tokens"
	export SOFTHSM2_CONF=$d/softhsm2.conf
	softhsm2-util --init-token --free --label "kyso test 9a" \
		--pin 123456 --so-pin 12345678 >"$d/init.log" 2>&1 ||
		{ cat "$d/init.log" >&2; return 1; }
	p11=(pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label "kyso test 9a"
		--login --pin 123456)
	while IFS=: read -r slot id label alg <&3; do
		case $alg in
		rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
			-out "$d/key-$slot.pem" 2>/dev/null ;;
		p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
			-out "$d/key-$slot.pem" 2>/dev/null ;;
		p384) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 \
			-out "$d/key-$slot.pem" 2>/dev/null ;;
		esac || return 1
		printf 'keyUsage=critical,%s\nbasicConstraints=CA:FALSE\n' \
			"$(cons_ku "$slot")" >"$d/ext"
		openssl req -new -key "$d/key-$slot.pem" -subj "/CN=kyso test $slot" \
			-out "$d/csr" 2>/dev/null &&
			openssl x509 -req -in "$d/csr" -CA "$dir/ca.pem" \
				-CAkey "$dir/ca.key" -set_serial "0x$slot$RANDOM" \
				-days 30 -extfile "$d/ext" -out "$d/cert-$slot.pem" \
				2>/dev/null &&
			openssl x509 -in "$d/cert-$slot.pem" -outform DER \
				-out "$d/cert-$slot.der" &&
			openssl pkey -in "$d/key-$slot.pem" -pubout \
				-out "$d/pub-$slot.pem" || return 1
		local usage=(--usage-sign)
		[ "$slot" = 9a ] && usage+=(--usage-decrypt)
		[ "$slot" = 9d ] && usage=(--usage-decrypt)
		# Like PIV: 9C wants the PIN before each use; 9E needs no PIN
		# at all (not a private object), the others need a login.
		local always=(--private)
		[ "$slot" = 9c ] && always+=(--always-auth)
		[ "$slot" = 9e ] && always=()
		"${p11[@]}" --write-object "$d/key-$slot.pem" --type privkey \
			--id "$id" --label "$label" "${usage[@]}" "${always[@]}" \
			--sensitive >"$d/import.log" 2>&1 &&
			"${p11[@]}" --write-object "$d/pub-$slot.pem" --type pubkey \
				--id "$id" --label "$label" "${usage[@]}" \
				>>"$d/import.log" 2>&1 &&
			"${p11[@]}" --write-object "$d/cert-$slot.der" --type cert \
				--id "$id" --label "$label" >>"$d/import.log" 2>&1 ||
			{ cat "$d/import.log" >&2; return 1; }
	done 3<<<"$cons_key_spec"
	rm -f "$d/csr" "$d/ext" "$d"/key-*.pem
}

cons_softhsm_conf() {
	cat >"$1" <<-EOF
		directories.tokendir = $2
		objectstore.backend = file
		log.level = ERROR
		slots.removable = false
	EOF
}

# lib.sh fixture DIR: the card state (DIR/state, DIR/ca.pem, ...) and the
# SoftHSM2 template (DIR/softhsm).
cons_make_fixture() {
	local dir=$1
	cons_need openssl yubico-piv-tool pkcs11-tool softhsm2-util
	[ -r "$SOFTHSM2_MODULE" ] || cons_fail "missing $SOFTHSM2_MODULE (softhsm2)"
	mkdir -p "$dir"
	"$top_srcdir/tests/integration/piv-provision.sh" "$dir" >"$dir/provision.log" 2>&1 ||
		{ cat "$dir/provision.log" >&2; cons_fail "provisioning the virtual PIV card"; }
	(cons_softhsm_template "$dir") || cons_fail "making the SoftHSM2 token"
	touch "$dir/.complete"
}

# --- entry point -----------------------------------------------------------

cons_main() {
	cons_me=$1
	shift
	if [ "${1:-}" = --inside ]; then
		cons_inside
		return 0
	fi
	cons_outside "$@"
	exit $?
}

cons_outside() {
	local kind=${KYSO_TEST_MODULE:-kyso} fx work rc script
	script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
	case $kind in
	kyso | softhsm) ;;
	*) cons_fail "KYSO_TEST_MODULE is kyso or softhsm, not '$kind'" ;;
	esac
	cons_me="${cons_me}[$kind]"
	work=$(mktemp -d "${TMPDIR:-/tmp}/kyso-cons.XXXXXX") || cons_fail "mktemp"
	fx=${KYSO_CONSUMERS_FIXTURE:-}
	if [ -z "$fx" ]; then
		fx=$work/fixture
		cons_make_fixture "$fx"
	fi
	[ -e "$fx/.complete" ] || cons_fail "fixture $fx is incomplete"
	export CONS_FIXTURE=$fx CONS_WORK=$work MODULE_KIND=$kind
	if [ "$kind" = kyso ]; then
		local module=${KYSO_MODULE:-$top_builddir/.libs/kyso-pkcs11.so}
		[ -r "$module" ] || cons_fail "module $module not built"
		cp "$fx/state" "$work/state"
		MODULE=$module "$top_srcdir/tests/with-card" --profile piv \
			--state "$work/state" --timeout "${CONS_TIMEOUT:-300}" -- \
			bash "$script" --inside
		rc=$?
	else
		[ -r "$SOFTHSM2_MODULE" ] || cons_fail "missing $SOFTHSM2_MODULE (softhsm2)"
		cp -a "$fx/softhsm/tokens" "$work/tokens"
		cons_softhsm_conf "$work/softhsm2.conf" "$work/tokens"
		SOFTHSM2_CONF=$work/softhsm2.conf MODULE=$SOFTHSM2_MODULE \
			CONS_SOFTHSM_TOKENS=$work/tokens \
			timeout -k 10 "${CONS_TIMEOUT:-300}" bash "$script" --inside
		rc=$?
	fi
	if [ -n "${KYSO_CONSUMERS_KEEP:-}" ]; then
		echo "$cons_me: kept $work" >&2
	else
		rm -rf "$work"
	fi
	if [ "$rc" -eq 0 ]; then
		echo "$cons_me: PASS"
	else
		echo "$cons_me: FAIL (exit $rc)"
	fi
	return "$rc"
}

cons_inside() {
	set -uo pipefail
	cons_me="${cons_me}[$MODULE_KIND]"
	W=$CONS_WORK/w
	mkdir -p "$W"
	TOKEN="kyso test 9a"
	PIN=123456
	CA=$CONS_FIXTURE/ca.pem
	CA_KEY=$CONS_FIXTURE/ca.key
	local certs=$CONS_FIXTURE
	[ "$MODULE_KIND" = softhsm ] && certs=$CONS_FIXTURE/softhsm
	CERT_9A=$certs/cert-9a.pem CERT_9C=$certs/cert-9c.pem
	CERT_9D=$certs/cert-9d.pem CERT_9E=$certs/cert-9e.pem
	export W TOKEN PIN CA CA_KEY CERT_9A CERT_9C CERT_9D CERT_9E
	trap 'cons_cleanup' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	# The token must be there before any consumer looks for it.
	cons_run "$W/token-check.log" pkcs11-tool --module "$MODULE" -L
	cons_grep "token label +: $TOKEN" "$W/token-check.log" \
		"token '$TOKEN' not listed by pkcs11-tool"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	case ${1:-} in
	fixture)
		[ $# -eq 2 ] || { echo "usage: lib.sh fixture DIR" >&2; exit 2; }
		cons_make_fixture "$2"
		;;
	*) echo "usage: lib.sh fixture DIR" >&2 && exit 2 ;;
	esac
fi
