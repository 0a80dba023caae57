#!/usr/bin/env bash
# Firefox ESR, headless: TLS client-certificate login with the token to a
# local HTTPS server that requires a certificate from the test CA and echoes
# the client certificate's subject. The module is added to the profile's
# NSS database with modutil (what a user does in Settings > Security
# Devices); the PIN is typed into NSS's "Password Required" dialog by a
# Marionette client. Also the failures: a wrong PIN fails fast (the second
# prompt is cancelled, the card counts one wrong try) and with no card in
# the reader the page fails at once without asking for a PIN.
. "$(dirname "$0")/lib.sh"
cons_main firefox "$@"

cons_need firefox-esr certutil modutil openssl
[ -x "$CONS_PY" ] || cons_fail "missing $CONS_PY"
ff_timeout=${CONS_FIREFOX_TIMEOUT:-45}

cons_server_cert
cons_step "HTTPS server (CERT_REQUIRED, test CA) on 127.0.0.1"
cons_bg "$W/https.log" "$CONS_PY" "$cons_here/https-echo.py" "$W/srv.pem" \
	"$W/srv.key" "$CA" "$W/https.port"
https_pid=$cons_bg_pid
cons_wait_log "^listening on" "$W/https.log" "$https_pid" 10 ||
	{ cat "$W/https.log" >&2; cons_fail "HTTPS server did not start"; }
url="https://127.0.0.1:$(cat "$W/https.port")/"

# profile DIR MARIONETTE-PORT: a fresh profile whose NSS database holds
# the module and trusts the test CA.
profile() {
	local p=$1 port=$2
	mkdir -p "$p"
	cons_run "$W/ff-certutil-N.log" certutil -N -d "sql:$p" --empty-password
	cons_run "$W/ff-modutil.log" modutil -dbdir "sql:$p" -add kyso \
		-libfile "$MODULE" -force
	cons_run "$W/ff-certutil-A.log" certutil -A -d "sql:$p" -n "kyso test CA" \
		-t CT,C,C -i "$CA"
	cat >"$p/user.js" <<-EOF
		user_pref("security.default_personal_cert", "Select Automatically");
		user_pref("marionette.port", $port);
		user_pref("browser.shell.checkDefaultBrowser", false);
		user_pref("browser.startup.page", 0);
		user_pref("browser.startup.homepage_override.mstone", "ignore");
		user_pref("browser.aboutwelcome.enabled", false);
		user_pref("datareporting.policy.dataSubmissionEnabled", false);
		user_pref("datareporting.healthreport.uploadEnabled", false);
		user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
		user_pref("app.update.auto", false);
		user_pref("app.update.disabledForTesting", true);
		user_pref("extensions.update.enabled", false);
		user_pref("network.captive-portal-service.enabled", false);
		user_pref("network.connectivity-service.enabled", false);
		user_pref("browser.safebrowsing.malware.enabled", false);
		user_pref("browser.safebrowsing.phishing.enabled", false);
		user_pref("browser.safebrowsing.downloads.enabled", false);
		user_pref("security.enterprise_roots.enabled", false);
		user_pref("network.proxy.type", 0);
	EOF
}

# browse NAME PIN: starts Firefox on a fresh profile, loads the page,
# leaves the Marionette client's JSON answer in $W/NAME.json.
browse() {
	local name=$1 pin=$2 port prof=$W/profile-$1 ff
	port=$(cons_free_port)
	profile "$prof" "$port"
	mkdir -p "$W/home-$name"
	cons_bg "$W/firefox-$name.log" env HOME="$W/home-$name" MOZ_HEADLESS=1 \
		MOZ_CRASHREPORTER_DISABLE=1 MOZ_DISABLE_AUTO_SAFE_MODE=1 \
		firefox-esr --headless --marionette -remote-allow-system-access \
		--no-remote --profile "$prof"
	ff=$cons_bg_pid
	"$CONS_PY" "$cons_here/firefox-marionette.py" "$port" "$url" "$pin" \
		"$ff_timeout" >"$W/$name.json" 2>"$W/marionette-$name.log"
	local rc=$?
	cons_kill_group "$ff"
	if [ "$rc" -ne 0 ]; then
		sed 's/^/    | /' "$W/$name.json" "$W/marionette-$name.log" \
			"$W/firefox-$name.log" | tail -n 40 >&2
		cons_fail "$name: could not drive Firefox"
	fi
	"$CONS_PY" -c 'import json, sys
r = json.load(open(sys.argv[1]))
print("    outcome=%s after %ss, PIN prompts: %s, page: %s" % (r["outcome"],
      r["seconds"], [p["action"] for p in r["prompts"]],
      r["text"] if r["outcome"] == "page" else r["uri"][:40]))' "$W/$name.json"
}

# field NAME PYTHON-EXPR: evaluates EXPR on the JSON answer r.
field() {
	"$CONS_PY" -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$W/$1.json" "$2"
}

# https_since N: the server's log after its first N lines
https_since() {
	tail -n "+$(($1 + 1))" "$W/https.log"
}

cons_step "client-certificate login with the right PIN"
mark=$(wc -l <"$W/https.log")
browse login "$PIN"
[ "$(field login 'r["outcome"]')" = page ] ||
	cons_fail "login: the page did not load ($(field login 'r.get("uri")'))"
subject=$(field login 'r["text"]')
case $subject in
"CN=kyso test 9a" | "CN=kyso test 9c" | "CN=kyso test 9e") ;;
*) cons_fail "login: the server saw subject '$subject', not a token certificate" ;;
esac
https_since "$mark" | grep -qx "client: $subject" ||
	cons_fail "login: the server's log does not show '$subject'"
[ "$(field login 'len(r["prompts"])')" = 1 ] ||
	cons_fail "login: expected one PIN prompt, saw $(field login 'r["prompts"]')"
[ "$(field login 'r["prompts"][0]["action"]')" = pin ] ||
	cons_fail "login: the prompt was not a PIN prompt: $(field login 'r["prompts"]')"
cons_step "  the server saw '$subject'"

cons_step "a wrong PIN fails fast"
mark=$(wc -l <"$W/https.log")
before=$(cons_verify_failures)
browse wrong-pin 000000
[ "$(field wrong-pin 'r["outcome"]')" = error ] ||
	cons_fail "wrong PIN: expected an error page, got $(field wrong-pin 'r["outcome"]')"
[ "$(field wrong-pin 'int(r["seconds"] < 15)')" = 1 ] ||
	cons_fail "wrong PIN: took $(field wrong-pin 'r["seconds"]') s"
[ "$(field wrong-pin 'r["prompts"][0]["action"]')" = pin ] ||
	cons_fail "wrong PIN: no PIN prompt: $(field wrong-pin 'r["prompts"]')"
# NSS asks again after CKR_PIN_INCORRECT (once or twice: it may retry the
# handshake); every later prompt was cancelled.
[ "$(field wrong-pin 'len(r["prompts"]) > 1 and all(p["action"] == "cancel" for p in r["prompts"][1:])')" = True ] ||
	cons_fail "wrong PIN: expected re-prompts, all cancelled: $(field wrong-pin 'r["prompts"]')"
https_since "$mark" | grep -q "^client:" &&
	cons_fail "wrong PIN: the server let a client in"
https_since "$mark" | grep -q "^handshake failed" ||
	cons_fail "wrong PIN: the server saw no failed handshake"
cons_expect_verify_failures "$before" 1 "wrong PIN"

cons_step "no card: the page fails cleanly, no PIN prompt"
cons_card_remove
mark=$(wc -l <"$W/https.log")
browse no-card "$PIN"
cons_card_insert
[ "$(field no-card 'r["outcome"]')" = error ] ||
	cons_fail "no card: expected an error page, got $(field no-card 'r["outcome"]')"
[ "$(field no-card 'len(r["prompts"])')" = 0 ] ||
	cons_fail "no card: Firefox asked: $(field no-card 'r["prompts"]')"
[ "$(field no-card 'int(r["seconds"] < 15)')" = 1 ] ||
	cons_fail "no card: took $(field no-card 'r["seconds"]') s"
https_since "$mark" | grep -q "^client:" &&
	cons_fail "no card: the server let a client in"
https_since "$mark" | grep -q "^handshake failed.*did not return a certificate" ||
	cons_fail "no card: the server did not see a handshake without certificate"
exit 0
