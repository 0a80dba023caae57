#!/usr/bin/env bash
# p11-kit: the module registered with p11-kit/kyso.module.in (as `make
# install` writes it) is listed by `p11-kit list-modules` with its token;
# p11-kit-proxy.so exposes the token to pkcs11-tool; programs that load
# p11-kit's module list find it without being told the module's path:
# p11tool without --provider, and the OpenSSL engine (which goes through
# p11-kit-proxy when PKCS11_MODULE_PATH is unset) signs with it.
#
# The registration never touches the system: as root, in a private mount
# namespace where a directory holding only kyso.module is bind-mounted
# over p11-kit's module directory (and an empty one over /etc/pkcs11);
# where that is not possible, as an unprivileged user (nobody, if we are
# root: p11-kit ignores user configuration for root) with HOME and
# XDG_CONFIG_HOME pointing at a private ~/.config/pkcs11 ("user-config:
# only"). CONS_P11KIT_MODE=namespace|user forces one way.
. "$(dirname "$0")/lib.sh"
cons_main p11kit "$@"

cons_need p11-kit pkg-config pkcs11-tool p11tool openssl
configs=$(pkg-config --variable=p11_module_configs p11-kit-1)
proxy=$(pkg-config --variable=proxy_module p11-kit-1 2>/dev/null)
[ -n "$proxy" ] || proxy=$(pkg-config --variable=libdir p11-kit-1)/p11-kit-proxy.so
[ -r "$proxy" ] || cons_fail "missing p11-kit-proxy.so ($proxy)"
modin=$top_srcdir/p11-kit/kyso.module.in
[ -r "$modin" ] || cons_fail "missing $modin"

cons_step "kyso.module documents its options"
cons_grep "^module: @MODULE_PATH@" "$modin" "kyso.module.in: no module line"
for opt in KYSO_DEBUG KYSO_LOG; do
	cons_grep "^#.*$opt" "$modin" "kyso.module.in does not document $opt"
done

mode=${CONS_P11KIT_MODE:-}
if [ -z "$mode" ]; then
	mode=user
	[ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null && mode=namespace
fi
cons_step "registering the module with p11-kit ($mode)"
mods=$W/p11-modules
mkdir -p "$mods" "$W/empty"
sed -e "s|@MODULE_PATH@|$MODULE|" "$modin" >"$mods/kyso.module"
as_user=()

case $mode in
namespace)
	# in_p11 CMD...: CMD sees only kyso.module in p11-kit's directories.
	in_p11() {
		unshare -m -- bash -c '
			mount --bind "$1" "$2" || exit 99
			if [ -d /etc/pkcs11 ]; then mount --bind "$3" /etc/pkcs11 || exit 99; fi
			shift 3
			exec "$@"' _ "$mods" "$configs" "$W/empty" "$@"
	}
	;;
user)
	home=$W/home
	mkdir -p "$home/.config/pkcs11/modules"
	printf 'user-config: only\n' >"$home/.config/pkcs11/pkcs11.conf"
	cp "$mods/kyso.module" "$home/.config/pkcs11/modules/"
	if [ "$(id -u)" -eq 0 ]; then
		# nobody must reach the module, its files and the card.
		as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
		chmod o+x "$CONS_WORK" "$W"
		chmod -R o+rX "$home" "$CONS_FIXTURE"
		if [ "$MODULE_KIND" = kyso ]; then
			chmod o+x "$(dirname "$PCSCLITE_CSOCK_NAME")"
			chmod o+rw "$PCSCLITE_CSOCK_NAME"
		else
			chmod o+rx "$CONS_WORK" && chmod o+r "$SOFTHSM2_CONF"
			chown -R nobody "$CONS_SOFTHSM_TOKENS"
		fi
		d=$(dirname "$MODULE")
		while [ "$d" != / ]; do
			[ -x "$d" ] && setpriv --reuid=nobody --regid=nogroup \
				--clear-groups test -x "$d" ||
				cons_fail "nobody cannot reach $MODULE ($d)"
			d=$(dirname "$d")
		done
	fi
	in_p11() {
		"${as_user[@]}" env HOME="$home" XDG_CONFIG_HOME="$home/.config" "$@"
	}
	;;
*) cons_fail "CONS_P11KIT_MODE is namespace or user, not '$mode'" ;;
esac

cons_step "p11-kit list-modules"
cons_run "$W/list-modules.log" in_p11 p11-kit list-modules
cons_grep "^kyso: $MODULE\$" "$W/list-modules.log" "p11-kit does not list kyso"
# the module's token, indented under it
sed -n '/^kyso: /,/^[^ ]/p' "$W/list-modules.log" >"$W/kyso-entry.log"
cons_grep "^ +token: $TOKEN\$" "$W/kyso-entry.log" "p11-kit lists kyso without its token"
if [ "$MODULE_KIND" = kyso ]; then
	cons_grep "library-description: kyso" "$W/kyso-entry.log" \
		"p11-kit: kyso's module description missing"
fi

cons_step "p11-kit-proxy.so exposes the token (pkcs11-tool -L, -O)"
cons_run "$W/proxy-L.log" in_p11 pkcs11-tool --module "$proxy" -L
cons_grep "token label +: $TOKEN\$" "$W/proxy-L.log" "p11-kit-proxy: no token"
cons_run "$W/proxy-O.log" in_p11 pkcs11-tool --module "$proxy" \
	--token-label "$TOKEN" --login --pin "$PIN" -O --type privkey
n=$(grep -c "^Private Key Object" "$W/proxy-O.log")
[ "$n" -eq 4 ] || cons_fail "p11-kit-proxy: $n private keys, expected 4"

cons_step "p11tool without --provider finds the token"
cons_run "$W/p11tool.log" in_p11 p11tool --list-tokens
cons_grep "Label: $TOKEN\$" "$W/p11tool.log" "p11tool (p11-kit's list): no token"

cons_step "OpenSSL engine through p11-kit-proxy signs (no PKCS11_MODULE_PATH)"
printf 'kyso consumer test: p11-kit\n' >"$W/data.txt"
openssl dgst -sha256 -binary "$W/data.txt" >"$W/h256"
chmod o+r "$W/h256" "$W/data.txt"
chmod o+w "$W"
cons_run "$W/pkeyutl.log" in_p11 env -u PKCS11_MODULE_PATH openssl pkeyutl \
	-engine pkcs11 -keyform engine -sign -pkeyopt digest:sha256 \
	-inkey "pkcs11:token=${TOKEN// /%20};id=%01;type=private;pin-value=$PIN" \
	-in "$W/h256" -out "$W/sig"
cons_run "$W/verify.log" openssl pkeyutl -verify -certin -inkey "$CERT_9A" \
	-in "$W/h256" -sigfile "$W/sig" -pkeyopt digest:sha256
cons_grep "Signature Verified Successfully" "$W/verify.log" "signature does not verify"
exit 0
