#!/usr/bin/env bash
# Slots over a real (private) pcscd with a virtual card: slot-events checks
# presence, removal, reinsertion and C_WaitForSlotEvent; OpenSC's pkcs11-tool
# (a consumer we did not write) lists the module's slots.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_builddir
module=${KYSO_MODULE:-$top_builddir/.libs/kyso-pkcs11.so}
with_card=$top_srcdir/tests/with-card

command -v pkcs11-tool >/dev/null || { echo "FAIL: pkcs11-tool (opensc) missing"; exit 1; }
[ -f "$module" ] || { echo "FAIL: module $module not built"; exit 1; }

echo "# card no driver knows: present, not recognized; pull and reinsert"
"$with_card" --profile blank -- env KYSO_MODULE="$module" \
	CARD_CTL="$top_srcdir/tests/card-ctl" ${KYSO_TEST_WRAPPER:-} \
	"$top_builddir/tests/integration/slot-events"

echo "# pkcs11-tool -I -L through kyso"
out=$("$with_card" --profile blank --readers 2 --no-card2 -- \
	${KYSO_TEST_WRAPPER:-} pkcs11-tool --module "$module" -I -L 2>&1) || true
echo "$out"
grep -q "kyso PKCS#11 module" <<<"$out" || { echo "FAIL: -I did not show kyso"; exit 1; }
grep -q "kyso vcard 00 00" <<<"$out" || { echo "FAIL: reader 0 not listed"; exit 1; }
grep -q "kyso vcard 00 01" <<<"$out" || { echo "FAIL: reader 1 not listed"; exit 1; }
n=$(grep -c "^Slot " <<<"$out" || true)
[ "$n" -eq 2 ] || { echo "FAIL: expected 2 slots, saw $n"; exit 1; }
echo "PASS"
