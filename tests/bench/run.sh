#!/usr/bin/env bash
# run.sh: kyso against OpenSC on the same virtual PIV card, with a token's
# latency injected; prints a table of APDUs, bytes and time per scenario and
# module next to the PIV protocol minimum (see the top of tests/bench/bench.c
# for the scenarios and how the minimum is counted). `make bench` runs it.
#
# usage: tests/bench/run.sh [--apdu-delay-ms N] [--privop-delay-ms N]
#                           [--signatures N] [--polls N]
#                           [--scenarios "cold poll ..."] [--keep DIR]
#   --apdu-delay-ms N     latency the card adds to every APDU (default 10)
#   --privop-delay-ms N   and to every private-key operation (default 150)
#   --signatures N        per signing scenario (default 100; the threads
#                         scenario signs 4 x N/4)
#   --polls N             polling rounds (default 1000)
#   --scenarios LIST      a subset of: cold poll sign-rsa sign-pss sign-ecdsa
#                         sign-p384 threads readers (default: all)
#   --keep DIR            keep the card's APDU log of every run in DIR
#                         (a failed run's logs are always kept; the path
#                         is printed)
#
# Each measurement is its own process in its own tests/with-card run, on a
# fresh copy of one provisioned card (tests/integration/piv-provision.sh), so
# every module starts from the same cold card. OpenSC runs with OPENSC_CONF
# pointing at a generated opensc.conf: file cache off (its default, pinned
# here so a local /etc/opensc/opensc.conf cannot warm it). Scenario 1 has an
# extra row, "opensc+cache", with OpenSC's public file cache primed by one
# earlier run on the same card: what an OpenSC user who enabled the cache gets.
#
# Environment: top_srcdir, top_builddir (as tests/with-card), KYSO_MODULE
# (default $top_builddir/.libs/kyso-pkcs11.so), OPENSC_MODULE (default
# Debian's opensc-pkcs11.so), BENCH (the bench program, default
# $top_builddir/tests/bench/bench), BENCH_APDU_DELAY_MS,
# BENCH_PRIVOP_DELAY_MS, BENCH_SIGNATURES, BENCH_POLLS, BENCH_SCENARIOS
# (defaults for the options above), BENCH_MODULES (default "kyso opensc").
# Exit status 1 if any run failed (a wrong signature is a failure).

set -u
me=bench
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
bench=${BENCH:-$top_builddir/tests/bench/bench}
kyso_module=${KYSO_MODULE:-$top_builddir/.libs/kyso-pkcs11.so}
opensc_module=${OPENSC_MODULE:-/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so}
with_card=$top_srcdir/tests/with-card

apdu_delay=${BENCH_APDU_DELAY_MS:-10}
privop_delay=${BENCH_PRIVOP_DELAY_MS:-150}
signatures=${BENCH_SIGNATURES:-100}
polls=${BENCH_POLLS:-1000}
all_scenarios="cold poll sign-rsa sign-pss sign-ecdsa sign-p384 threads readers"
scenario_list=${BENCH_SCENARIOS:-$all_scenarios}
modules=${BENCH_MODULES:-kyso opensc}
keep=''

usage() {
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

die() {
	echo "$me: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--apdu-delay-ms) apdu_delay=${2:?} ;;
	--privop-delay-ms) privop_delay=${2:?} ;;
	--signatures) signatures=${2:?} ;;
	--polls) polls=${2:?} ;;
	--scenarios) scenario_list=${2:?} ;;
	--keep) keep=${2:?} ;;
	*) usage ;;
	esac
	shift 2 || usage
done
for n in "$apdu_delay" "$privop_delay" "$signatures" "$polls"; do
	case $n in '' | *[!0-9]*) die "not a number: '$n'" ;; esac
done
for sc in $scenario_list; do
	case " $all_scenarios " in *" $sc "*) ;; *) die "no scenario '$sc'" ;; esac
done
[ -x "$bench" ] || die "no bench program at $bench (make bench builds it)"
[ -x "$with_card" ] || die "no $with_card"
for m in $modules; do
	case $m in
	kyso) [ -e "$kyso_module" ] || die "no kyso module at $kyso_module" ;;
	opensc) [ -e "$opensc_module" ] ||
		die "no OpenSC module at $opensc_module (apt install opensc-pkcs11)" ;;
	*) die "no module '$m' (kyso, opensc)" ;;
	esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kyso-bench.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
if [ -n "$keep" ]; then
	mkdir -p "$keep" || exit 1
	keep=$(cd "$keep" && pwd)
fi

# OpenSC's configuration: nothing but the file cache setting.
opensc_conf() { # FILE CACHE(no|public) DIR
	cat >"$1" <<-EOF
		app default {
			framework pkcs15 {
				use_file_caching = $2;
				file_cache_dir = $3;
			}
		}
	EOF
}
mkdir -p "$work/opensc-cache"
opensc_conf "$work/opensc-nocache.conf" no "$work/opensc-cache"
opensc_conf "$work/opensc-cache.conf" public "$work/opensc-cache"

echo "$me: provisioning a virtual PIV card..." >&2
"$top_srcdir/tests/integration/piv-provision.sh" "$work/card" >/dev/null ||
	die "provisioning failed"

# One measurement: MODULE-NAME SCENARIO [record]. Prints the RESULT line
# (or a FAILED one) to $work/results when asked to record.
measure() {
	local name=$1 sc=$2 record=${3:-record} module conf count state out
	local logs fail
	local -a card_opts=(--profile piv --apdu-delay-ms "$apdu_delay"
		--privop-delay-ms "$privop_delay")

	case $name in
	kyso) module=$kyso_module conf=$work/opensc-nocache.conf ;;
	opensc) module=$opensc_module conf=$work/opensc-nocache.conf ;;
	opensc+cache) module=$opensc_module conf=$work/opensc-cache.conf ;;
	esac
	case $sc in
	poll) count=$polls ;;
	*) count=$signatures ;;
	esac
	[ "$sc" = readers ] && card_opts+=(--readers 2 --no-card2)
	state=$work/state.$sc.$name
	cp "$work/card/state" "$state" || return 1
	out=$work/out.$sc.$name
	logs=$work/logs.$sc.$name
	mkdir -p "$logs"
	# The card's APDU log and pcscd's log live in with-card's temp dir:
	# copied out before it goes, kept on failure or with --keep. kyso logs
	# errors only (KYSO_DEBUG=1): nothing in a good run.
	# shellcheck disable=SC2016 # expanded by the inner shell
	"$with_card" "${card_opts[@]}" --state "$state" -- bash -c '
		logs=$1 conf=$2
		shift 2
		OPENSC_CONF=$conf KYSO_DEBUG=1 KYSO_LOG=$logs/kyso.log "$@"
		rc=$?
		cp "$KYSO_VCARD_LOG" "$logs/apdu.log"
		cp "$(dirname "$KYSO_TEST_TMP")/pcscd.log" "$logs/" 2>/dev/null
		exit $rc' _ "$logs" "$conf" "$bench" --name "$name" \
		--pubdir "$work/card" --count "$count" \
		--threads 4 --per-thread $(((count + 3) / 4)) \
		--apdu-delay-ms "$apdu_delay" --privop-delay-ms "$privop_delay" \
		"$module" "$sc" >"$out" 2>"$out.err"
	local rc=$?
	if [ -n "$keep" ] && [ -s "$logs/apdu.log" ]; then
		cp "$logs/apdu.log" "$keep/apdu.$sc.$name.log"
	fi
	[ "$record" = record ] || return $rc
	if [ $rc -eq 0 ] && grep -q '^RESULT ' "$out"; then
		grep '^RESULT ' "$out" >>"$work/results"
	else
		echo "$me: $sc with $name failed (exit $rc):" >&2
		sed 's/^/    /' "$out.err" >&2
		fail=$(mktemp -d "${TMPDIR:-/tmp}/kyso-bench-failed.XXXXXX")
		cp -r "$logs/." "$out" "$out.err" "$fail/" 2>/dev/null
		echo "$me: logs of that run kept in $fail" >&2
		echo "RESULT scenario=$sc module=$name failed=1" >>"$work/results"
	fi
	return $rc
}

status=0
: >"$work/results"
for sc in $scenario_list; do
	for m in $modules; do
		echo "$me: $sc with $m..." >&2
		measure "$m" "$sc" || status=1
	done
	if [ "$sc" = cold ] && [[ " $modules " == *" opensc "* ]]; then
		echo "$me: cold with opensc+cache (priming, then measuring)..." >&2
		measure opensc+cache cold prime >/dev/null 2>&1 ||
			echo "$me: priming OpenSC's cache failed" >&2
		measure opensc+cache cold || status=1
	fi
done

# --- the table ------------------------------------------------------------
awk -v apdu_delay="$apdu_delay" -v privop_delay="$privop_delay" \
	-v sigs="$signatures" -v polls="$polls" '
function get(line, key,    i, n, kv) {
	n = split(line, kv, " ")
	for (i = 1; i <= n; i++)
		if (index(kv[i], key "=") == 1)
			return substr(kv[i], length(key) + 2)
	return ""
}
function fmt_ms(ms) {
	if (ms == "") return "-"
	ms += 0
	if (ms == 0) return "0"
	if (ms >= 10000) return sprintf("%.1f s", ms / 1000)
	if (ms >= 1000) return sprintf("%.2f s", ms / 1000)
	if (ms >= 10) return sprintf("%.0f ms", ms)
	return sprintf("%.1f ms", ms)
}
BEGIN {
	label["cold"] = "1 cold start to first signature"
	label["poll"] = "2 polling, " polls " x 3 calls"
	label["sign-rsa"] = "3a " sigs " x RSA-2048 PKCS#1 (9A)"
	label["sign-pss"] = "3b " sigs " x RSA-2048 PSS (9A)"
	label["sign-ecdsa"] = "3c " sigs " x ECDSA P-256 (9C, PIN each)"
	label["sign-p384"] = "3d " sigs " x ECDSA P-384 (9E, no PIN)"
	label["threads"] = "4 4 threads x " int((sigs + 3) / 4) " RSA-2048"
	label["readers"] = "5 init + slot list, 2 readers"
}
{
	sc = get($0, "scenario"); m = get($0, "module")
	rows[++n] = $0
	if (get($0, "failed") == "") {
		apdus[sc, m] = get($0, "apdus"); ms[sc, m] = get($0, "ms")
		minv[sc, m] = get($0, "min_apdus")
		if (!((sc) in seen)) { order[++ns] = sc; seen[sc] = 1 }
	}
}
END {
	printf "Latency injected: %d ms per APDU, %d ms per private-key operation.\n", apdu_delay, privop_delay
	printf "APDUs and bytes counted by the card; bytes out = host to card, in = card to host.\n"
	printf "Min = the fewest APDUs the protocol allows on a card shared with other programs\n"
	printf "(a PIN entry is SELECT + VERIFY: see the top of tests/bench/bench.c).\n"
	printf "Floor = that minimum and the private-key operations at that latency.\n\n"
	printf "| scenario | module | APDUs | min | bytes out | bytes in | time | floor |\n"
	printf "|---|---|--:|--:|--:|--:|--:|--:|\n"
	for (i = 1; i <= n; i++) {
		r = rows[i]; sc = get(r, "scenario"); m = get(r, "module")
		if (get(r, "failed") != "") {
			printf "| %s | %s | FAILED | | | | | |\n", label[sc], m
			continue
		}
		printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", label[sc], m,
			get(r, "apdus"), get(r, "min_apdus"), get(r, "cmd_bytes"),
			get(r, "resp_bytes"), fmt_ms(get(r, "ms")),
			fmt_ms(get(r, "min_ms"))
	}
	printf "\nEvery signature was checked with openssl against the key the card generated.\n"
	if (("cold", "kyso") in apdus && ("cold", "opensc") in apdus &&
	    apdus["cold", "opensc"] > 0 && ms["cold", "opensc"] > 0)
		printf "Scenario 1, kyso / OpenSC: %.2f x the APDUs, %.2f x the time.\n",
			apdus["cold", "kyso"] / apdus["cold", "opensc"],
			ms["cold", "kyso"] / ms["cold", "opensc"]
	line = ""
	for (i = 1; i <= ns; i++)
		if ((order[i], "kyso") in apdus)
			line = line sprintf("%s %s %+d", line == "" ? "" : ",", order[i],
				apdus[order[i], "kyso"] - minv[order[i], "kyso"])
	if (line != "")
		printf "APDUs kyso sent over the minimum:%s.\n", line
}' "$work/results"

[ -n "$keep" ] && echo "$me: APDU logs in $keep" >&2
exit $status
