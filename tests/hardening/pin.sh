#!/usr/bin/env bash
# PIN safety through the module, counted by the card and searched for in
# the KYSO_DEBUG=3 log (tests/hardening/pin.c).
. "$(dirname "$0")/lib.sh"
provision
# shellcheck disable=SC2086 # $wrap is a command line
with_piv pin -- env KYSO_DEBUG=3 KYSO_LOG="$work/kyso.log" \
	$wrap "$hbin/pin"
echo "$me: PASS"
