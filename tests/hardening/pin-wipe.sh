#!/usr/bin/env bash
# PIN buffers are wiped (tests/hardening/pin-wipe.c: a unit test over a
# scripted card, no reader needed).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$(cd "$here/../.." && pwd)}
# shellcheck disable=SC2086 # the wrapper is a command line
exec ${KYSO_TEST_WRAPPER:-} "$top_builddir/tests/hardening/pin-wipe"
