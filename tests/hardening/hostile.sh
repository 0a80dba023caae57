#!/usr/bin/env bash
# A hostile card (tests/hardening/hostile.c): every fault the virtual card
# can inject, under binding, login, signing and decryption, first with
# extended-length APDUs, then with command chaining and GET RESPONSE.
. "$(dirname "$0")/lib.sh"
provision
# shellcheck disable=SC2086 # $wrap is a command line
with_piv ext -- $wrap "$hbin/hostile"
# shellcheck disable=SC2086
with_piv chain -- $wrap "$hbin/hostile" --chain
echo "$me: PASS"
