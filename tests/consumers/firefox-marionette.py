#!/usr/bin/python3
# firefox-marionette.py: drives a headless Firefox started with --marionette
# (stdlib sockets only) to load one page whose TLS handshake may ask the
# token's PIN.
#
# usage: firefox-marionette.py MARIONETTE_PORT URL PIN TIMEOUT_S
#
# Before navigating it adds, in the chrome context, an observer of
# "common-dialog-loaded": the first dialog (NSS's "Password Required")
# gets PIN and is accepted; any later dialog is cancelled, so a wrong PIN
# fails fast instead of prompting forever. (While a modal dialog is open
# every Marionette command waits, so this cannot be done after navigating.)
# Then it polls the page until it loaded, turned into an error page, or
# TIMEOUT_S passed, and prints one JSON object:
#   {"outcome": "page"|"error"|"timeout", "uri":..., "title":...,
#    "text":..., "prompts": [{"title":..., "action": "pin"|"cancel"}],
#    "seconds": ...}
# Exit status: 0 when it could drive Firefox at all (whatever the
# outcome), 2 when Marionette could not be reached or failed.
import json
import socket
import sys
import time

OBSERVER = r"""
const pin = arguments[0];
const log = [];
// Each script runs in its own sandbox: the log goes to a pref.
const save = () => Services.prefs.setStringPref("kyso.test.prompts",
                                                JSON.stringify(log));
save();
const observer = {
  observe(win, topic) {
    const doc = win.document;
    const dialog = doc.getElementById("commonDialog") ||
                   doc.querySelector("dialog");
    const entry = {title: doc.title || "", text: ""};
    const info = doc.getElementById("infoBody");
    if (info) entry.text = info.textContent;
    log.push(entry);
    save();
    const first = log.length === 1;
    const box = doc.getElementById("password1Textbox");
    if (first && box && dialog) {
      entry.action = "pin";
      box.value = pin;
      save();
      dialog.acceptDialog();
    } else if (dialog) {
      entry.action = "cancel";
      save();
      dialog.cancelDialog();
    } else {
      entry.action = "none";
      save();
      win.close();
    }
  },
};
Services.obs.addObserver(observer, "common-dialog-loaded");
return true;
"""

STATE = r"""
return {
  uri: document.documentURI,
  title: document.title,
  ready: document.readyState,
  text: document.body ? document.body.textContent : "",
};
"""


class Marionette:
    def __init__(self, port, deadline):
        last = None
        while time.time() < deadline:
            try:
                self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError as e:
                last = e
                time.sleep(0.1)
        else:
            raise RuntimeError("cannot connect to Marionette on %d: %s" % (port, last))
        self.s.settimeout(60)
        self.buf = b""
        self.id = 0
        hello = self._read()
        if hello.get("marionetteProtocol") != 3:
            raise RuntimeError("unexpected Marionette greeting %r" % hello)

    def _read(self):
        while b":" not in self.buf:
            self._fill()
        n, rest = self.buf.split(b":", 1)
        n = int(n)
        while len(rest) < n:
            more = self.s.recv(65536)
            if not more:
                raise RuntimeError("Marionette closed the connection")
            rest += more
        self.buf = rest[n:]
        return json.loads(rest[:n])

    def _fill(self):
        more = self.s.recv(65536)
        if not more:
            raise RuntimeError("Marionette closed the connection")
        self.buf += more

    def cmd(self, name, params=None):
        self.id += 1
        data = json.dumps([0, self.id, name, params or {}]).encode()
        self.s.sendall(b"%d:%s" % (len(data), data))
        while True:
            msg = self._read()
            if isinstance(msg, list) and msg[0] == 1 and msg[1] == self.id:
                break
        if msg[2]:
            raise RuntimeError("%s: %s" % (name, msg[2]))
        res = msg[3]
        if isinstance(res, dict) and set(res) == {"value"}:
            return res["value"]
        return res


def main():
    port, url, pin, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    start = time.time()
    deadline = start + timeout
    try:
        m = Marionette(port, deadline)
        m.cmd("WebDriver:NewSession", {"capabilities": {"pageLoadStrategy": "none"}})
        m.cmd("Marionette:SetContext", {"value": "chrome"})
        m.cmd("WebDriver:ExecuteScript", {"script": OBSERVER, "args": [pin]})
        m.cmd("Marionette:SetContext", {"value": "content"})
        nav = time.time()
        outcome, state, errors = "timeout", {}, []
        try:
            m.cmd("WebDriver:Navigate", {"url": url})
        except RuntimeError as e:
            # A handshake that fails at once ends the navigation itself.
            if "Reached error page" not in str(e):
                raise
            errors.append(str(e)[:300])
        while time.time() < deadline:
            try:
                state = m.cmd("WebDriver:ExecuteScript",
                              {"script": STATE, "args": []}) or {}
            except RuntimeError as e:
                # a document being replaced answers with an error: poll on
                errors.append(str(e))
                state = {}
            uri = state.get("uri") or ""
            if uri.startswith("about:neterror") or uri.startswith("about:certerror"):
                outcome = "error"
                break
            if uri.startswith(url) and state.get("ready") == "complete":
                outcome = "page"
                break
            time.sleep(0.1)
        seconds = time.time() - nav
        m.cmd("Marionette:SetContext", {"value": "chrome"})
        prompts = m.cmd("WebDriver:ExecuteScript",
                        {"script": 'return Services.prefs.getStringPref("kyso.test.prompts", "null");',
                         "args": []})
        prompts = json.loads(prompts)
        try:
            m.cmd("Marionette:Quit", {"flags": ["eForceQuit"]})
        except Exception:
            pass
    except Exception as e:
        print(json.dumps({"outcome": "marionette-failed", "error": str(e)}))
        return 2
    print(json.dumps({"outcome": outcome, "uri": state.get("uri"),
                      "title": state.get("title"),
                      "text": (state.get("text") or "").strip()[:200],
                      "prompts": prompts, "seconds": round(seconds, 2),
                      "poll_errors": errors[-3:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
