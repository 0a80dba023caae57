#!/usr/bin/env bash
# fork() with sessions open (tests/hardening/fork.c).
. "$(dirname "$0")/lib.sh"
provision
# shellcheck disable=SC2086 # $wrap is a command line
with_piv fork -- $wrap "$hbin/fork"
echo "$me: PASS"
