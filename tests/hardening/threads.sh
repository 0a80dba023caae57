#!/usr/bin/env bash
# Threads (tests/hardening/threads.c): 8 threads x 4 sessions signing,
# searching, reading and digesting at once, with OS locking and with the
# application's mutex callbacks; C_Finalize while a thread waits in
# C_WaitForSlotEvent; OpenSC's pkcs11-tool --test-threads with 8 threads.
# Then both again under helgrind, which must report nothing (suppressions,
# each with its reason: tests/hardening/helgrind.supp).
. "$(dirname "$0")/lib.sh"
need pkcs11-tool opensc
need valgrind valgrind
threads=${KYSO_THREADS:-8}
iters=${KYSO_THREAD_ITERS:-20}
provision

tt=()
for ((i = 0; i < threads; i++)); do
	tt+=(--test-threads ILGISLT0)
done
cat >"$work/tool-threads" <<INNER
#!/usr/bin/env bash
# pkcs11-tool's own thread test; every thread must end with rv 0
out=\$("\$@" pkcs11-tool --module "\$KYSO_MODULE" ${tt[*]} -L 2>&1) || {
	echo "\$out" >&2; echo "pkcs11-tool --test-threads failed" >&2; exit 1; }
n=\$(grep -c "returning rv = 0\$" <<<"\$out" || true)
bad=\$(grep "returning rv = " <<<"\$out" | grep -vc "rv = 0\$" || true)
[ "\$n" -eq $threads ] && [ "\$bad" -eq 0 ] || {
	echo "\$out" >&2
	echo "pkcs11-tool --test-threads: \$n of $threads threads ended well" >&2
	exit 1; }
echo "pkcs11-tool --test-threads: $threads threads, all returned rv 0"
INNER
chmod +x "$work/tool-threads"

# shellcheck disable=SC2086 # $wrap is a command line
with_piv native -- $wrap "$hbin/threads" --threads "$threads" \
	--iters "$iters"
# shellcheck disable=SC2086
with_piv applocks -- $wrap "$hbin/threads" --threads "$threads" \
	--iters 5 --app-locks
with_piv tool -- "$work/tool-threads"

if [ -n "${KYSO_NO_VALGRIND:-}" ]; then
	# make check-sanitize: valgrind cannot run sanitized programs; the
	# helgrind part runs in make check-hardening
	echo "$me: PASS (helgrind part left to the plain build)"
	exit 0
fi
hg=(valgrind --tool=helgrind -q --error-exitcode=99
	--suppressions="$here/helgrind.supp")
with_piv helgrind -- "${hg[@]}" "$hbin/threads" --threads "$threads" \
	--sessions 2 --iters 3 ||
	fail "helgrind reported races (or the test failed) in threads"
with_piv helgrind-tool -- "$work/tool-threads" "${hg[@]}" ||
	fail "helgrind reported races (or the test failed) under pkcs11-tool"
echo "$me: PASS"
