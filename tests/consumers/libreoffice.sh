#!/usr/bin/env bash
# LibreOffice, headless, signing with the token through NSS: an ODF
# document signed (XAdES), a PDF exported with a signature, and an existing
# PDF signed (CAdES); each checked by LibreOffice itself, by xmlsec1 (ODF)
# and by poppler's pdfsig (PDF); a tampered ODF and a tampered PDF must be
# reported invalid by all of them.
#
# soffice finds the module through the NSS database named by
# MOZILLA_CERTIFICATE_FOLDER (what a user sets in Tools > Options >
# Security > Certificate, with the module added by modutil or Firefox).
# lo-macro.py (see there) logs the token in inside soffice, since headless
# LibreOffice cannot answer NSS's PIN prompt; lo-driver.py runs the steps.
. "$(dirname "$0")/lib.sh"
cons_main libreoffice "$@"

cons_need soffice certutil modutil xmlsec1 pdfsig unzip
[ -x "$CONS_PY" ] || cons_fail "missing $CONS_PY"
"$CONS_PY" -c 'import uno' 2>/dev/null || cons_fail "python3-uno missing ($CONS_PY cannot import uno)"
[ -r /usr/lib/libreoffice/program/pythonscript.py ] ||
	cons_fail "missing libreoffice-script-provider-python"
subject="CN=kyso test 9a"
out=$W/docs
mkdir -p "$out"

cons_step "NSS databases: one with the module, one with only the CA (pdfsig)"
db=$W/nssdb cadb=$W/cadb
mkdir -p "$db" "$cadb"
cons_run "$W/certutil-N.log" certutil -N -d "sql:$db" --empty-password
cons_run "$W/modutil.log" modutil -dbdir "sql:$db" -add kyso -libfile "$MODULE" -force
cons_run "$W/certutil-A.log" certutil -A -d "sql:$db" -n "kyso test CA" -t CT,C,C -i "$CA"
cons_run "$W/certutil-N2.log" certutil -N -d "sql:$cadb" --empty-password
cons_run "$W/certutil-A2.log" certutil -A -d "sql:$cadb" -n "kyso test CA" -t CT,C,C -i "$CA"

cons_step "soffice --headless with the test macro"
profile=$W/lo-profile
mkdir -p "$profile/user/Scripts/python" "$W/home"
cp "$cons_here/lo-macro.py" "$profile/user/Scripts/python/kyso_lo.py"
port=$(cons_free_port)
cons_bg "$W/soffice.log" env HOME="$W/home" SAL_USE_VCLPLUGIN=svp \
	MOZILLA_CERTIFICATE_FOLDER="sql:$db" \
	soffice --headless --invisible --norestore --nologo --nodefault \
	--nolockcheck "-env:UserInstallation=file://$profile" \
	"--accept=socket,host=127.0.0.1,port=$port;urp;StarOffice.ComponentContext"
soffice_pid=$cons_bg_pid

cons_step "sign ODF, export a signed PDF, sign an existing PDF; verify in LibreOffice"
"$CONS_PY" "$cons_here/lo-driver.py" "$port" "$MODULE" "$TOKEN" "$PIN" \
	"$subject" "$out" "${CONS_LO_TIMEOUT:-90}" >"$W/lo.json" 2>"$W/lo-driver.log"
rc=$?
cons_kill_group "$soffice_pid"
if [ "$rc" -ne 0 ]; then
	sed 's/^/    | /' "$W/lo.json" "$W/lo-driver.log" "$W/soffice.log" | tail -n 40 >&2
	cons_fail "the LibreOffice session failed"
fi

# lo EXPR: evaluates EXPR on the driver's JSON answer r.
lo() {
	"$CONS_PY" -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$W/lo.json" "$1"
}

# verdict FILE VALID: LibreOffice saw one signature by $subject, valid or not.
verdict() {
	local f=$1 want=$2 got
	got=$(lo "[(s['valid'], s['signer']) for s in r['verify']['$f']]")
	[ "$got" = "[($want, '$subject')]" ] ||
		cons_fail "LibreOffice on $f: $got, expected [($want, '$subject')]"
	echo "    LibreOffice: $f: $got"
}

[ "$(lo "r['verify']['doc.odt'] == [] and r['verify']['plain.pdf'] == []")" = True ] ||
	cons_fail "LibreOffice sees signatures in unsigned documents"
verdict signed.odt True
verdict exported.pdf True
verdict existing.pdf True
verdict tampered.odt False
verdict tampered.pdf False
# Valid signature and a certificate NSS trusts (CertificateValidity.VALID).
for f in signed.odt exported.pdf existing.pdf; do
	[ "$(lo "r['verify']['$f'][0]['certificate_status']")" = 0 ] ||
		cons_fail "LibreOffice on $f: certificate not valid"
done

# xmlsec ODF: the signature file at the root of the unzipped document, so
# its relative references resolve.
xmlsec() {
	local f=$1 d=$W/unzip-$1
	mkdir -p "$d"
	(cd "$d" && unzip -q "$out/$f") || cons_fail "unzip $f"
	[ -s "$d/META-INF/documentsignatures.xml" ] || cons_fail "$f: no documentsignatures.xml"
	cp "$d/META-INF/documentsignatures.xml" "$d/"
	(cd "$d" && xmlsec1 --verify --trusted-pem "$CA" documentsignatures.xml) \
		>"$W/xmlsec1-$f.log" 2>&1
}

cons_step "xmlsec1 --verify on the ODF signature"
xmlsec signed.odt || {
	sed 's/^/    | /' "$W/xmlsec1-signed.odt.log" >&2
	cons_fail "xmlsec1: signed.odt does not verify"
}
cons_grep "^OK" "$W/xmlsec1-signed.odt.log" "xmlsec1: signed.odt not OK"
grep -q "<SignatureValue[^>]*>[A-Za-z0-9+/]" "$W/unzip-signed.odt/documentsignatures.xml" ||
	cons_fail "signed.odt: empty SignatureValue"
xmlsec tampered.odt && cons_fail "xmlsec1: tampered.odt verifies"
cons_grep "failed to verify|FAIL" "$W/xmlsec1-tampered.odt.log" \
	"xmlsec1: tampered.odt not reported as failing"

cons_step "pdfsig on the PDFs (NSS database with only the CA)"
for f in exported existing; do
	cons_run "$W/pdfsig-$f.log" pdfsig -nssdir "sql:$cadb" "$out/$f.pdf"
	cons_grep "Signer full Distinguished Name: $subject\$" "$W/pdfsig-$f.log" \
		"pdfsig: $f.pdf not signed by $subject"
	cons_grep "Signature Validation: Signature is Valid" "$W/pdfsig-$f.log" \
		"pdfsig: $f.pdf signature not valid"
	cons_grep "Certificate Validation: Certificate is Trusted" "$W/pdfsig-$f.log" \
		"pdfsig: $f.pdf certificate not trusted"
	cons_grep "Total document signed" "$W/pdfsig-$f.log" \
		"pdfsig: $f.pdf not wholly signed"
done
cons_grep "Signature Type: adbe.pkcs7.detached" "$W/pdfsig-exported.log" "pdfsig: export"
cons_grep "Signature Type: ETSI.CAdES.detached" "$W/pdfsig-existing.log" "pdfsig: existing"
pdfsig -nssdir "sql:$cadb" "$out/tampered.pdf" >"$W/pdfsig-tampered.log" 2>&1
cons_grep "Signature Validation: " "$W/pdfsig-tampered.log" "pdfsig: tampered.pdf not checked"
cons_nogrep "Signature is Valid" "$W/pdfsig-tampered.log" "pdfsig: tampered.pdf valid"
exit 0
