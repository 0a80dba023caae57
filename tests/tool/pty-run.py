#!/usr/bin/env python3
"""Runs a command on a new pseudo-terminal (its controlling terminal, as a
user's shell would give it) and answers its prompts, so that tests can see
what a person at the terminal sees: prompts, echo (or none), messages.

usage: pty-run.py SCRIPT -- COMMAND [ARG...]

SCRIPT holds one step a line:
    expect REGEX   wait (20 s at most) until the output so far matches
    send TEXT      type TEXT and Enter
    sleep SECONDS  wait
The whole transcript goes to standard output once the command has ended.
Exit status: the command's; 97 if an expect timed out (the transcript
then ends with the step that failed), 98 on a bad script."""
import os
import pty
import re
import select
import sys
import time


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.stderr.write(__doc__)
        return 98
    steps = []
    with open(sys.argv[1], encoding="utf-8", newline="\n") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            word, _, arg = line.partition(" ")
            if word not in ("expect", "send", "sleep"):
                sys.stderr.write("pty-run: bad step: %s\n" % line)
                return 98
            steps.append((word, arg))
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(sys.argv[3], sys.argv[3:])
        finally:
            os._exit(127)
    out = b""
    pos = 0
    status = None

    def pump(timeout):
        nonlocal out
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return True
        try:
            data = os.read(fd, 4096)
        except OSError:
            return False
        if not data:
            return False
        out += data
        return True

    for word, arg in steps:
        if word == "sleep":
            time.sleep(float(arg))
        elif word == "send":
            os.write(fd, arg.encode("utf-8") + b"\r")
        else:
            rx = re.compile(arg.encode("utf-8"))
            deadline = time.time() + 20
            while True:
                m = rx.search(out, pos)
                if m:
                    pos = m.end()
                    break
                if time.time() > deadline or not pump(0.2):
                    if not rx.search(out, pos):
                        os.kill(pid, 9)
                        os.waitpid(pid, 0)
                        sys.stdout.write(out.decode("utf-8", "replace"))
                        sys.stdout.write("\n[pty-run: timed out on: expect %s]\n" % arg)
                        return 97
    while pump(20):
        pass
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode("utf-8", "replace"))
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main())
