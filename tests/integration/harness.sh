#!/usr/bin/env bash
# The test fixture itself, so that other tests can trust it: with-card brings
# up a private pcscd with kyso-vcard's blank card, the card answers, counts
# and logs APDUs, can be pulled and reinserted, injects faults and latency;
# two fixtures run at once; every way out (normal, timeout, signal) leaves no
# process and no file behind. Run by `make check`, or directly.
#
# A missing tool or program is a failure, never a skip: this test is what
# tells that the machine can run the integration tests at all.

# The inside_* functions are called by name from the command line.
# shellcheck disable=SC2317
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
with_card=$top_srcdir/tests/with-card
card_ctl=$top_srcdir/tests/card-ctl
pcsc_wait=${KYSO_HARNESS_DIR:-$top_builddir/tests/harness}/pcsc-wait

BLANK_ATR=3B8880014B59534F424C4E4B0C

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ok() {
	echo "ok - $*"
}

# expect WHAT WANT GOT
expect() {
	[ "$2" = "$3" ] || fail "$1: wanted '$2', got '$3'"
}

now_ms() {
	local t
	t=$(date +%s%N)
	echo $((t / 1000000))
}

stat_of() {
	sed -n "s/^$1=//p" "$KYSO_VCARD_STATS"
}

apdu() {
	"$pcsc_wait" apdu 0 "$1"
}

# Writes where this fixture lives (temp dir, pcscd and card pids) to
# $HARNESS_OUT, for the outer test to check they are gone afterwards.
record_fixture() {
	local d p cmd
	d=$(dirname "$KYSO_TEST_TMP")
	echo "tmp $d" >"$HARNESS_OUT"
	for p in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		case $cmd in
		*"$d/"*) echo "pid ${p#/proc/} $(cat 2>/dev/null "$p/comm")" >>"$HARNESS_OUT" ;;
		esac
	done
}

# --- inside a fixture ----------------------------------------------------------

inside_blank() {
	local a0 r t0 t1 us n

	record_fixture
	expect "pcscd and one card run" 2 "$(grep -c '^pid' "$HARNESS_OUT")"

	expect "ATR through PC/SC" "$BLANK_ATR" "$("$pcsc_wait" atr 0 2)"
	# A second, independent host stack sees the same card.
	r=$(opensc-tool -r 0 -a) || fail "opensc-tool -a failed"
	r=$(echo "$r" | tr -d ':\r' | tr a-f A-F)
	expect "ATR through OpenSC" "$BLANK_ATR" "$r"
	ok "the blank card is present with its ATR"

	a0=$(stat_of apdus)
	expect "SELECT AID" 6A82 "$(apdu 00A4040007A0000003080000)"
	expect "APDU count after one APDU" $((a0 + 1)) "$(stat_of apdus)"
	expect "last logged command" "> 00A4040007A0000003080000" \
		"$(grep '^>' "$KYSO_VCARD_LOG" | tail -n 1)"
	expect "last logged response" "< 6A82" \
		"$(grep '^<' "$KYSO_VCARD_LOG" | tail -n 1)"
	ok "one APDU counts once and is logged with its answer"

	a0=$(stat_of apdus)
	r=$(opensc-tool -r 0 -s 00:A4:04:00:00 2>&1) ||
		fail "opensc-tool -s failed: $r"
	case $r in
	*"SW1=0x6A, SW2=0x82"*) ;;
	*) fail "opensc-tool -s: no 6A82 in: $r" ;;
	esac
	[ "$(stat_of apdus)" -gt "$a0" ] || fail "OpenSC's APDUs not counted"
	grep -q '^> 00A4040000$' "$KYSO_VCARD_LOG" ||
		fail "OpenSC's SELECT not in the log"
	ok "APDUs from OpenSC are answered and counted"

	expect "unknown INS" 6D00 "$(apdu 00CA010100)"
	expect "proprietary CLA" 6E00 "$(apdu 80CA010100)"
	expect "CLA FF" 6E00 "$(apdu FFCA000000)"
	expect "GET RESPONSE, nothing pending" 6985 "$(apdu 00C0000000)"
	expect "SELECT MF" 6A82 "$(apdu 00A40000023F00)"
	ok "the blank card knows no application and no instruction"

	t0=$(now_ms)
	"$card_ctl" remove || fail "card-ctl remove"
	t1=$(now_ms)
	"$pcsc_wait" absent 0 0 || fail "slot not empty after remove"
	"$pcsc_wait" present 0 0 2>/dev/null && fail "card present after remove"
	apdu 00A4040000 >/dev/null 2>&1 && fail "APDU answered with card out"
	"$card_ctl" insert || fail "card-ctl insert"
	"$pcsc_wait" present 0 0 || fail "card not present after insert"
	expect "ATR after reinsertion" "$BLANK_ATR" "$("$pcsc_wait" atr 0 0)"
	expect "SELECT after reinsertion" 6A82 "$(apdu 00A4040000)"
	ok "remove ($((t1 - t0)) ms) and insert ($(($(now_ms) - t1)) ms) are seen by pcscd"

	"$card_ctl" fault sw 6A88 || fail "card-ctl fault sw"
	expect "fault sw" 6A88 "$(apdu 00A4040000)"
	expect "after fault sw" 6A82 "$(apdu 00A4040000)"
	"$card_ctl" fault sw 9000 ins A4
	expect "fault for another INS" 6D00 "$(apdu 00CA010100)"
	expect "fault sw ins A4" 9000 "$(apdu 00A4040000)"
	"$card_ctl" fault truncate
	expect "fault truncate" 6A "$(apdu 00A4040000)"
	"$card_ctl" fault garbage
	r=$(apdu 00A4040000)
	expect "length of garbage" 4 "${#r}"
	grep -q '^\* fault garbage$' "$KYSO_VCARD_LOG" ||
		fail "garbage not logged"
	"$card_ctl" fault drop
	# vpcd 0.8 turns a connection dropped mid-APDU into a "successful"
	# empty response; a later APDU fails as removed.
	r=$(apdu 00A4040000 2>/dev/null)
	expect "response to a dropped APDU" "" "$r"
	"$pcsc_wait" absent 0 5 || fail "card not out after fault drop"
	"$card_ctl" insert || fail "insert after fault drop"
	expect "SELECT after drop and insert" 6A82 "$(apdu 00A4040000)"
	ok "faults sw, sw for one INS, truncate, garbage and drop"

	"$card_ctl" fault sw 63C2 ins 20
	"$card_ctl" fault sw 63C1 ins 20
	expect "VERIFY status query" 63C2 "$(apdu 0020008000)"
	expect "failed VERIFY counted only with data" 0 "$(stat_of verify_fail)"
	expect "wrong PIN" 63C1 "$(apdu 00200080083132333435363738)"
	expect "failed VERIFY" 1 "$(stat_of verify_fail)"
	expect "logged VERIFY and answer" \
		"> 00200080083132333435363738|< 63C1" \
		"$(grep '^[<>]' "$KYSO_VCARD_LOG" | tail -n 2 | paste -sd'|')"
	ok "a failed VERIFY is counted and logged in order"

	"$card_ctl" delay apdu 40
	t0=$(now_ms)
	"$pcsc_wait" apdu 0 00A4040000 5 >/dev/null 2>&1 || fail "delayed APDUs"
	t1=$(now_ms)
	"$card_ctl" delay apdu 0
	[ $((t1 - t0)) -ge 200 ] || fail "5 APDUs at 40 ms took $((t1 - t0)) ms"
	ok "APDU latency is added at run time ($((t1 - t0)) ms for 5 at 40 ms)"

	n=2000
	r=$("$pcsc_wait" apdu 0 00A4040007A0000003080000 "$n" 2>&1 >/dev/null) ||
		fail "round trips: $r"
	us=$(echo "$r" | sed -n 's/.*: \([0-9]*\)\.[0-9]* us per APDU/\1/p')
	[ -n "$us" ] || fail "no timing in '$r'"
	# A missed TCP_QUICKACK shows as ~40 ms per APDU; anything near
	# that is a regression, whatever the machine.
	[ "$us" -lt 5000 ] || fail "round trip $us us per APDU"
	ok "round trip through pcscd: $us us per APDU ($n APDUs)"
}

# Two fixtures wait for each other, so they surely overlap.
inside_concurrent() {
	local i
	record_fixture
	touch "$HARNESS_OUT.up"
	for ((i = 0; i < 200; i++)); do
		[ -e "$HARNESS_PEER.up" ] && break
		sleep 0.05
	done
	[ -e "$HARNESS_PEER.up" ] || fail "the other fixture never came up"
	expect "ATR" "$BLANK_ATR" "$("$pcsc_wait" atr 0 2)"
	"$pcsc_wait" apdu 0 00A4040000 500 >/dev/null 2>&1 || fail "APDUs"
	expect "APDUs counted by this card alone" 500 "$(stat_of apdus)"
	"$card_ctl" remove || fail "remove"
	"$card_ctl" insert || fail "insert"
	expect "SELECT" 6A82 "$(apdu 00A4040000)"
	# Keep running until the peer is done too.
	touch "$HARNESS_OUT.done"
	for ((i = 0; i < 200; i++)); do
		[ -e "$HARNESS_PEER.done" ] && break
		sleep 0.05
	done
}

inside_sleep() {
	record_fixture
	touch "$HARNESS_OUT.up"
	sleep 60
}

if [ "${1:-}" = --inside ]; then
	"inside_$2"
	exit $?
fi

# --- outside: drive the fixtures -------------------------------------------------

for t in "$with_card" "$card_ctl" "$pcsc_wait" \
	"$top_builddir/tests/harness/sockact" \
	"${KYSO_VCARD_BIN:-$top_builddir/tests/vcard/kyso-vcard}"; do
	[ -x "$t" ] || fail "missing $t (not built?)"
done
command -v opensc-tool >/dev/null || fail "missing opensc-tool (opensc)"

work=$(mktemp -d "${TMPDIR:-/tmp}/kyso-harness.XXXXXX") ||
	fail "no temp dir"
trap 'rm -rf "$work"' EXIT

# Every pcscd and card a fixture ran, and its temp dir, must be gone.
check_gone() {
	local what=$1 out=$2 kind pid comm
	[ -s "$out" ] || fail "$what: fixture did not report itself"
	while read -r kind pid comm; do
		case $kind in
		tmp) [ ! -e "$pid" ] || fail "$what: $pid left behind" ;;
		pid) [ ! -e "/proc/$pid" ] ||
			fail "$what: $comm ($pid) left behind: $(cat "/proc/$pid/stat")" ;;
		esac
	done <"$out"
}

HARNESS_OUT=$work/blank "$with_card" --profile blank -- \
	"$self" --inside blank
rc=$?
[ $rc -eq 0 ] || fail "blank card checks (status $rc)"
check_gone "blank card run" "$work/blank"
ok "the fixture is gone after the run"

"$with_card" -- sh -c 'exit 3'
expect "with-card's status is COMMAND's" 3 $?
# shellcheck disable=SC2016 # for the inner shell
"$with_card" --readers 2 --no-card2 -- sh -c \
	'"$0" present 0 0 && "$0" absent 1 0' "$pcsc_wait" ||
	fail "--readers 2 --no-card2: reader 1 not empty"
"$with_card" --readers 2 -- "$pcsc_wait" present all 0 ||
	fail "--readers 2: second card not present"
ok "exit status, a second reader with and without a card"

t0=$(now_ms)
HARNESS_OUT=$work/c1 HARNESS_PEER=$work/c2 "$with_card" -- \
	"$self" --inside concurrent >"$work/c1.log" 2>&1 &
p1=$!
HARNESS_OUT=$work/c2 HARNESS_PEER=$work/c1 "$with_card" -- \
	"$self" --inside concurrent >"$work/c2.log" 2>&1 &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
[ $r1 -eq 0 ] || fail "first concurrent fixture: $(cat "$work/c1.log")"
[ $r2 -eq 0 ] || fail "second concurrent fixture: $(cat "$work/c2.log")"
[ "$(head -n 1 "$work/c1")" != "$(head -n 1 "$work/c2")" ] ||
	fail "concurrent fixtures shared a temp dir"
check_gone "concurrent run 1" "$work/c1"
check_gone "concurrent run 2" "$work/c2"
ok "two fixtures run at once ($(($(now_ms) - t0)) ms) and both go away"

t0=$(now_ms)
HARNESS_OUT=$work/to "$with_card" --timeout 2 -- "$self" --inside sleep \
	2>/dev/null
expect "status after --timeout" 124 $?
t1=$(now_ms)
[ $((t1 - t0)) -lt 20000 ] || fail "--timeout 2 took $((t1 - t0)) ms"
check_gone "timed-out run" "$work/to"
ok "--timeout stops the command and tears down ($((t1 - t0)) ms)"

HARNESS_OUT=$work/sig "$with_card" -- "$self" --inside sleep 2>/dev/null &
p1=$!
for ((i = 0; i < 400; i++)); do
	[ -e "$work/sig.up" ] && break
	sleep 0.05
done
[ -e "$work/sig.up" ] || fail "fixture for the signal test never came up"
kill -TERM $p1
t0=$(now_ms)
wait $p1
expect "status after SIGTERM" 143 $?
t1=$(now_ms)
[ $((t1 - t0)) -lt 10000 ] || fail "SIGTERM teardown took $((t1 - t0)) ms"
check_gone "signalled run" "$work/sig"
ok "SIGTERM tears the fixture down ($((t1 - t0)) ms)"

if [ "${KYSO_NO_VALGRIND:-}" = 1 ]; then
	# make check-sanitize: kyso-vcard is itself built with ASan+UBSan there,
	# and valgrind cannot run a sanitized program.
	echo "note: KYSO_NO_VALGRIND=1, kyso-vcard runs under the sanitizers instead"
else
	command -v valgrind >/dev/null ||
		fail "valgrind not installed (.ci/install-deps installs it)"
	# shellcheck disable=SC2016 # for the inner shell
	KYSO_VCARD_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all" \
		"$with_card" -- sh -c '"$0" apdu 0 00A4040000 50 >/dev/null 2>&1 &&
			"$1" fault garbage && "$0" apdu 0 00A4040000 >/dev/null &&
			"$1" remove && "$1" insert' "$pcsc_wait" "$card_ctl" ||
		fail "kyso-vcard under valgrind"
	ok "kyso-vcard is clean under valgrind"
fi

echo "PASS: harness"
exit 0
