#!/usr/bin/env bash
# The card pulled mid-signature, KYSO_REMOVAL_LOOPS times each way (default
# 100; tests/hardening/removal.c), then the reader going away (the private
# pcscd stopped) with sessions open.
. "$(dirname "$0")/lib.sh"
loops=${KYSO_REMOVAL_LOOPS:-100}
provision
# shellcheck disable=SC2086 # $wrap is a command line
with_piv removal -- $wrap "$hbin/removal" --loops "$loops"

# The reader: pcscd is the child of tests/with-card, whose child is
# timeout(1), whose child is this inner shell.
cat >"$work/unplug" <<'INNER'
#!/usr/bin/env bash
# bash and /proc only: no outside tool, so nothing preloaded can get in
ppid_of() {
	local s
	s=$(<"/proc/$1/stat") || return 1
	s=${s##*) }
	set -- $s
	echo "$2"
}
wc=$(ppid_of "$PPID")
pid=
for d in /proc/[0-9]*; do
	s=$(<"$d/stat") 2>/dev/null || continue
	comm=${s#*(}
	comm=${comm%%)*}
	[ "$comm" = pcscd ] && [ "$(ppid_of "${d#/proc/}")" = "$wc" ] &&
		pid=${d#/proc/}
done
[ -n "$pid" ] || { echo "unplug: no pcscd under with-card ($wc)" >&2; exit 1; }
KYSO_UNPLUG_CMD="kill -TERM $pid" exec "$@"
INNER
chmod +x "$work/unplug"
# shellcheck disable=SC2086
with_piv unplug -- "$work/unplug" $wrap "$hbin/removal" --unplug
echo "$me: PASS"
