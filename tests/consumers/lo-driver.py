#!/usr/bin/python3
# lo-driver.py: drives a headless soffice (listening on a UNO socket, with
# lo-macro.py installed as the user macro kyso_lo.py) through one signing
# session, and prints what LibreOffice says about each result as JSON.
#
# usage: lo-driver.py UNO_PORT MODULE TOKEN PIN SUBJECT DIR TIMEOUT_S
#
# In DIR it writes: doc.odt and plain.pdf (unsigned), signed.odt (ODF
# signature), exported.pdf (PDF export with a signature), existing.pdf
# (plain.pdf signed afterwards), and tampered copies tampered.odt and
# tampered.pdf. It prints {"steps": {...}, "verify": {FILE: [signatures]}}.
# Exit status: 0 if every step ran (the verdicts are for the caller to
# judge), 1 if a step failed, 2 if soffice could not be reached.
import json
import os
import shutil
import sys
import time
import zipfile

import uno

MACRO = "vnd.sun.star.script:kyso_lo.py$%s?language=Python&location=user"


def connect(port, deadline):
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext(
        "com.sun.star.bridge.UnoUrlResolver", local)
    url = "uno:socket,host=127.0.0.1,port=%d;urp;StarOffice.ComponentContext" % port
    last = None
    while time.time() < deadline:
        try:
            return resolver.resolve(url)
        except Exception as e:  # NoConnectException until soffice listens
            last = e
            time.sleep(0.2)
    raise RuntimeError("cannot reach soffice on port %d: %s" % (port, last))


def tamper_odt(src, dst):
    """Copies src with one character of content.xml's text changed."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "content.xml":
                assert b"kyso" in data
                data = data.replace(b"kyso", b"KYSO", 1)
            zout.writestr(item, data)


def tamper_pdf(src, dst):
    """Copies src with one byte inside the first signed range changed: a
    digit of the first object's number of a content stream length, in
    plain text, so the file still parses."""
    data = bytearray(open(src, "rb").read())
    i = data.find(b"%PDF-")
    j = data.find(b"\n", i)
    # The header's minor version: signed, harmless to a parser.
    assert data[j - 1:j] in (b"4", b"5", b"6", b"7")
    data[j - 1] = ord("3") if data[j - 1] != ord("3") else ord("4")
    open(dst, "wb").write(bytes(data))


def main():
    port, module, token, pin, subject, d, timeout = sys.argv[1:8]
    deadline = time.time() + float(timeout)
    try:
        ctx = connect(int(port), deadline)
    except Exception as e:
        print(json.dumps({"error": str(e)}))
        return 2
    smgr = ctx.ServiceManager
    provider = smgr.createInstanceWithContext(
        "com.sun.star.script.provider.MasterScriptProviderFactory",
        ctx).createScriptProvider("")

    def call(name, *args):
        res = provider.getScript(MACRO % name).invoke(args, (), ())[0]
        return json.loads(res)

    p = lambda name: os.path.join(d, name)
    out = {"steps": {}, "verify": {}}

    def step(name, fn, *args):
        r = fn(*args)
        out["steps"][name] = r
        if isinstance(r, dict) and "error" in r:
            raise RuntimeError("%s: %s" % (name, r["error"]))
        return r

    try:
        step("login", call, "login", module, token, pin)
        step("certificates", call, "certificates")
        step("make_documents", call, "make_documents", p("doc.odt"),
             p("plain.pdf"), "Văn bản ký số bởi kyso: consumer test")
        shutil.copy(p("doc.odt"), p("signed.odt"))
        step("sign_odf", call, "sign_odf", p("signed.odt"), subject)
        step("export_signed_pdf", call, "export_signed_pdf", p("doc.odt"),
             p("exported.pdf"), subject)
        shutil.copy(p("plain.pdf"), p("existing.pdf"))
        step("sign_pdf", call, "sign_pdf", p("existing.pdf"), subject)
        tamper_odt(p("signed.odt"), p("tampered.odt"))
        tamper_pdf(p("exported.pdf"), p("tampered.pdf"))
        for f in ("doc.odt", "signed.odt", "tampered.odt", "plain.pdf",
                  "exported.pdf", "existing.pdf", "tampered.pdf"):
            r = step("verify " + f, call, "verify", p(f))
            out["verify"][f] = r["signatures"]
    except Exception as e:
        out["error"] = str(e)
        print(json.dumps(out, ensure_ascii=False))
        return 1
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
