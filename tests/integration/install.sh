#!/usr/bin/env bash
# `make install` into a scratch prefix: the module, its p11-kit config and
# the man pages land there, the installed .module names the installed .so,
# and that .so loads and answers (pkcs11-tool -I).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

make -s -C "$top_builddir" install prefix="$tmp" \
	pkcs11dir="$tmp/lib/pkcs11" p11moduledir="$tmp/share/p11-kit/modules" \
	>"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; echo "FAIL: make install"; exit 1; }
so="$tmp/lib/pkcs11/kyso-pkcs11.so"
mod="$tmp/share/p11-kit/modules/kyso.module"
[ -f "$so" ] || { echo "FAIL: $so not installed"; exit 1; }
[ -f "$mod" ] || { echo "FAIL: $mod not installed"; exit 1; }
line=$(grep '^module:' "$mod")
[ "$line" = "module: $so" ] || { echo "FAIL: '$line' does not name $so"; exit 1; }
echo "ok: $mod names $so"
ls "$tmp"/share/man/man8/kyso-pkcs11.8 >/dev/null || { echo "FAIL: man page not installed"; exit 1; }
echo "ok: man page installed"
# No pcscd here: pkcs11-tool says "No slots." and exits 1; -I still shows
# whether the module loaded.
out=$(PCSCLITE_CSOCK_NAME="$tmp/no-pcscd.sock" pkcs11-tool --module "$so" -I 2>&1 || true)
grep -q "kyso PKCS#11 module" <<<"$out" || { echo "$out"; echo "FAIL: installed module does not load"; exit 1; }
echo "ok: installed module loads"
make -s -C "$top_builddir" uninstall prefix="$tmp" \
	pkcs11dir="$tmp/lib/pkcs11" p11moduledir="$tmp/share/p11-kit/modules" >/dev/null 2>&1
[ ! -e "$so" ] && [ ! -e "$mod" ] || { echo "FAIL: uninstall left files"; exit 1; }
echo "ok: uninstall removes them"
echo PASS
