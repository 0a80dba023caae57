#!/usr/bin/env bash
# The card shared with other PC/SC programs between kyso's calls
# (tests/hardening/sharing.c; opensc-tool and tests/hardening/pcsc-other).
. "$(dirname "$0")/lib.sh"
need opensc-tool opensc
provision
# shellcheck disable=SC2086 # $wrap is a command line
with_piv sharing -- env PCSC_OTHER="$hbin/pcsc-other" $wrap "$hbin/sharing"
echo "$me: PASS"
