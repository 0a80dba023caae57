# lo-macro.py: LibreOffice Python macros for the consumer test, installed by
# libreoffice.sh as kyso_lo.py in the test profile's user Scripts/python
# folder and called through the script provider by lo-driver.py. They run
# inside soffice, as a user's signing does.
#
# login: headless LibreOffice cannot answer NSS's password prompt. So the
#   macro first has LibreOffice create its NSS security context (which
#   loads the modules of the NSS database named by
#   MOZILLA_CERTIFICATE_FOLDER), then opens the very same PKCS#11 module
#   with ctypes and calls C_Login on a session it keeps open. Login state
#   belongs to the process and the token, so NSS's sessions are logged in.
# The others sign and verify the way LibreOffice's own code does
# (sfx2/source/doc/DocumentSigner.cxx), with a certificate taken from
# getPersonalCertificates() (one built from PEM would write an empty
# signature and still report success).
#
# Every function returns a JSON string; errors are {"error": "..."}.
import ctypes
import json
import re
import traceback
import zipfile

import uno
from com.sun.star.beans import PropertyValue
from com.sun.star.embed.ElementModes import READ, READWRITE

_kept = {}

CKR_OK = 0
CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191
CKR_USER_ALREADY_LOGGED_IN = 0x100
CKF_SERIAL_SESSION = 4
CKU_USER = 1

# Positions in CK_FUNCTION_LIST (after CK_VERSION, padded to a pointer).
F_INITIALIZE, F_GET_SLOT_LIST, F_GET_TOKEN_INFO = 0, 4, 6
F_OPEN_SESSION, F_LOGIN = 12, 18

ulong = ctypes.c_ulong
ptr = ctypes.c_void_p


def _json(fn):
    def wrapped(*args):
        try:
            return json.dumps(fn(*args))
        except Exception:
            return json.dumps({"error": traceback.format_exc()})
    wrapped.__name__ = fn.__name__
    return wrapped


def _pv(name, value):
    p = PropertyValue()
    p.Name = name
    p.Value = value
    return p


def _ctx():
    ctx = uno.getComponentContext()
    return ctx, ctx.ServiceManager


def _url(path):
    return uno.systemPathToFileUrl(path)


def _fn(flist, index, *argtypes):
    addr = ctypes.cast(flist + ctypes.sizeof(ptr) * (index + 1),
                       ctypes.POINTER(ptr))[0]
    return ctypes.CFUNCTYPE(ulong, *argtypes)(addr)


def _security_context():
    if "sec" not in _kept:
        ctx, smgr = _ctx()
        sei = smgr.createInstanceWithContext(
            "com.sun.star.xml.crypto.SEInitializer", ctx)
        _kept["sec"] = sei.createSecurityContext("")
    return _kept["sec"]


def _cert(subject):
    env = _security_context().getSecurityEnvironment()
    names = []
    for c in env.getPersonalCertificates():
        names.append(c.SubjectName)
        if c.SubjectName == subject:
            return c
    raise RuntimeError("no personal certificate %r among %r" % (subject, names))


@_json
def login(module, token, pin):
    if _security_context() is None:
        return {"error": "no NSS security context"}
    lib = ctypes.CDLL(module)
    flist = ptr()
    rv = lib.C_GetFunctionList(ctypes.byref(flist))
    if rv != CKR_OK:
        return {"error": "C_GetFunctionList 0x%x" % rv}
    flist = flist.value
    rv = _fn(flist, F_INITIALIZE, ptr)(None)
    if rv not in (CKR_OK, CKR_CRYPTOKI_ALREADY_INITIALIZED):
        return {"error": "C_Initialize 0x%x" % rv}
    count = ulong(0)
    get_slots = _fn(flist, F_GET_SLOT_LIST, ctypes.c_ubyte, ptr,
                    ctypes.POINTER(ulong))
    rv = get_slots(1, None, ctypes.byref(count))
    if rv != CKR_OK:
        return {"error": "C_GetSlotList 0x%x" % rv}
    slots = (ulong * max(count.value, 1))()
    rv = get_slots(1, ctypes.cast(slots, ptr), ctypes.byref(count))
    if rv != CKR_OK:
        return {"error": "C_GetSlotList 0x%x" % rv}
    info = ctypes.create_string_buffer(1024)
    get_token = _fn(flist, F_GET_TOKEN_INFO, ulong, ptr)
    labels = []
    for slot in slots[:count.value]:
        if get_token(slot, ctypes.cast(info, ptr)) != CKR_OK:
            continue
        label = info.raw[:32].decode("utf-8", "replace").rstrip()
        labels.append(label)
        if label != token:
            continue
        session = ulong(0)
        rv = _fn(flist, F_OPEN_SESSION, ulong, ulong, ptr, ptr,
                 ctypes.POINTER(ulong))(slot, CKF_SERIAL_SESSION, None, None,
                                        ctypes.byref(session))
        if rv != CKR_OK:
            return {"error": "C_OpenSession 0x%x" % rv}
        raw = pin.encode()
        rv = _fn(flist, F_LOGIN, ulong, ulong, ctypes.c_char_p, ulong)(
            session.value, CKU_USER, raw, len(raw))
        if rv not in (CKR_OK, CKR_USER_ALREADY_LOGGED_IN):
            return {"error": "C_Login 0x%x" % rv}
        # The session (and so the login) lives as long as soffice.
        _kept["session"] = session.value
        _kept["lib"] = lib
        return {"ok": "logged in to %s (slot %d)" % (token, slot)}
    return {"error": "no token %r among %r" % (token, labels)}


@_json
def certificates():
    env = _security_context().getSecurityEnvironment()
    return {"subjects": [c.SubjectName for c in env.getPersonalCertificates()]}


@_json
def make_documents(odt, pdf, text):
    """A Writer document saved as ODF (odt) and exported unsigned (pdf)."""
    ctx, smgr = _ctx()
    desktop = smgr.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    doc = desktop.loadComponentFromURL("private:factory/swriter", "_blank", 0,
                                       (_pv("Hidden", True),))
    try:
        doc.Text.setString(text)
        doc.storeToURL(_url(odt), (_pv("FilterName", "writer8"),))
        doc.storeToURL(_url(pdf), (_pv("FilterName", "writer_pdf_Export"),))
    finally:
        doc.close(True)
    return {"ok": True}


@_json
def export_signed_pdf(odt, pdf, subject):
    """Opens odt and exports it as a PDF signed with subject's key."""
    ctx, smgr = _ctx()
    cert = _cert(subject)
    desktop = smgr.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    doc = desktop.loadComponentFromURL(_url(odt), "_blank", 0,
                                       (_pv("Hidden", True),))
    try:
        data = uno.Any("[]com.sun.star.beans.PropertyValue", (
            _pv("SignPDF", True),
            _pv("SignatureCertificate", cert),
            _pv("SignatureReason", "kyso consumer test"),
        ))
        filt = (_pv("FilterName", "writer_pdf_Export"), _pv("FilterData", data))
        uno.invoke(doc, "storeToURL", (_url(pdf), filt))
    finally:
        doc.close(True)
    return {"ok": True}


def _signer(version):
    ctx, smgr = _ctx()
    return smgr.createInstanceWithArgumentsAndContext(
        "com.sun.star.security.DocumentDigitalSignatures", (version, True), ctx)


def _odf_version(path):
    m = re.search(rb'manifest:version="([^"]+)"',
                  zipfile.ZipFile(path).read("META-INF/manifest.xml"))
    return m.group(1).decode() if m else ""


def _zip_storage(xstream, mode):
    ctx, smgr = _ctx()
    factory = smgr.createInstanceWithContext("com.sun.star.embed.StorageFactory", ctx)
    fmt = uno.Any("[]com.sun.star.beans.PropertyValue",
                  (_pv("StorageFormat", "ZipFormat"),))
    return uno.invoke(factory, "createInstanceWithArguments", ((xstream, mode, fmt),))


def _file_stream(path, write):
    ctx, smgr = _ctx()
    sfa = smgr.createInstanceWithContext("com.sun.star.ucb.SimpleFileAccess", ctx)
    if write:
        return sfa.openFileReadWrite(_url(path))
    return sfa.openFileRead(_url(path))


@_json
def sign_odf(path, subject):
    cert = _cert(subject)
    signer = _signer(_odf_version(path))
    xstream = _file_stream(path, True)
    store = _zip_storage(xstream, READWRITE)
    meta = store.openStorageElement("META-INF", READWRITE)
    view = _zip_storage(xstream, READWRITE)
    sig = meta.openStreamElement(
        signer.getDocumentContentSignatureDefaultStreamName(), READWRITE)
    ok = signer.signDocumentWithCertificate(cert, view, sig)
    if ok:
        meta.commit()
        store.commit()
    xstream.getOutputStream().closeOutput()
    return {"ok": bool(ok)}


@_json
def sign_pdf(path, subject):
    cert = _cert(subject)
    xstream = _file_stream(path, True)
    ok = _signer("").signDocumentWithCertificate(cert, None, xstream)
    xstream.getOutputStream().closeOutput()
    return {"ok": bool(ok)}


def _infos(infos):
    return [{"valid": bool(i.SignatureIsValid),
             "certificate_status": int(i.CertificateStatus),
             "signer": i.Signer.SubjectName if i.Signer else None}
            for i in infos]


@_json
def verify(path):
    """LibreOffice's verdict on the document's content signatures."""
    if path.endswith(".pdf"):
        xin = _file_stream(path, False)
        infos = _signer("").verifyDocumentContentSignatures(None, xin)
        xin.closeInput()
        return {"signatures": _infos(infos)}
    signer = _signer(_odf_version(path))
    # Zip format: in the (default) package format META-INF is hidden.
    xin = _file_stream(path, False)
    store = _zip_storage(xin, READ)
    name = signer.getDocumentContentSignatureDefaultStreamName()
    meta = store.openStorageElement("META-INF", READ) \
        if store.hasByName("META-INF") else None
    if meta is None or not meta.hasByName(name):
        return {"signatures": []}
    sig = meta.openStreamElement(name, READ)
    infos = signer.verifyDocumentContentSignatures(store, sig.getInputStream())
    store.dispose()
    xin.closeInput()
    return {"signatures": _infos(infos)}


g_exportedScripts = (login, certificates, make_documents, export_signed_pdf,
                     sign_odf, sign_pdf, verify)
