#!/usr/bin/env bash
# run.sh (make check-consumers): every consumer test against kyso (virtual
# PIV card in a private pcscd) and against SoftHSM2, then a table of
# consumer x module -> PASS/FAIL. A failure against SoftHSM2 means a broken
# test; against kyso only, a kyso bug.
#
# Environment: KYSO_TEST_MODULE=kyso|softhsm runs one variant only;
# CONSUMERS="openssl nss ..." a subset; KYSO_CONSUMERS_LOGDIR where the logs
# go (default $top_builddir/tests/consumers); and what lib.sh reads.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir

consumers=${CONSUMERS:-openssl nss gnutls p11kit firefox libreoffice}
modules=${KYSO_TEST_MODULE:-kyso softhsm}
logdir=${KYSO_CONSUMERS_LOGDIR:-$top_builddir/tests/consumers}
mkdir -p "$logdir" || exit 1

fx=$(mktemp -d "${TMPDIR:-/tmp}/kyso-cons-fx.XXXXXX") || exit 1
trap 'rm -rf "$fx"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(now)
echo "check-consumers: provisioning the virtual PIV card and the SoftHSM2 token"
if ! bash "$here/lib.sh" fixture "$fx/fixture" >"$logdir/fixture.log" 2>&1; then
	cat "$logdir/fixture.log" >&2
	echo "check-consumers: FAIL: could not make the fixture" >&2
	exit 1
fi
echo "check-consumers: fixture ready in $(secs "$t0" "$(now)") s"
export KYSO_CONSUMERS_FIXTURE=$fx/fixture

declare -A result took
failed=0
for c in $consumers; do
	[ -f "$here/$c.sh" ] || { echo "check-consumers: no test '$c'" >&2; exit 2; }
	for m in $modules; do
		log=$logdir/$c-$m.log
		t=$(now)
		KYSO_TEST_MODULE=$m bash "$here/$c.sh" >"$log" 2>&1
		rc=$?
		took[$c.$m]=$(secs "$t" "$(now)")
		if [ "$rc" -eq 0 ]; then
			result[$c.$m]=PASS
		else
			result[$c.$m]=FAIL
			failed=1
		fi
		printf 'check-consumers: %-5s %-12s %-8s %6s s  (%s)\n' \
			"${result[$c.$m]}" "$c" "$m" "${took[$c.$m]}" "$log"
		if [ "$rc" -ne 0 ]; then
			sed 's/^/    | /' "$log" | tail -n 25
		fi
	done
done

echo
printf '%-12s' consumer
for m in $modules; do printf ' %-14s' "$m"; done
echo
for c in $consumers; do
	printf '%-12s' "$c"
	for m in $modules; do
		printf ' %-14s' "${result[$c.$m]} ${took[$c.$m]}s"
	done
	echo
done
echo "check-consumers: $(secs "$t0" "$(now)") s in all"
if [ "$failed" -ne 0 ]; then
	echo "check-consumers: FAIL (a test failing on softhsm is broken; on kyso only, a kyso bug)"
	exit 1
fi
echo "check-consumers: PASS"
