/* sockact: hands a daemon a listening Unix socket the systemd way, so a
 * private pcscd serves a socket of our choosing (pcscd ignores
 * PCSCLITE_CSOCK_NAME for its own socket but honours LISTEN_FDS).
 *
 * usage: sockact SOCKET-PATH COMMAND [ARG...]
 * Binds and listens on SOCKET-PATH, puts it on fd 3, sets LISTEN_FDS=1 and
 * LISTEN_PID to our own pid (exec keeps it), then execs COMMAND. The
 * socket file is left behind for the caller to delete. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* setenv, unsetenv under -std=c11 */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* sd_listen_fds(3): passed sockets start right after stderr. */
#define LISTEN_FD 3

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	char pid[32];
	int fd;

	if (argc < 3) {
		fprintf(stderr,
			"usage: sockact SOCKET-PATH COMMAND [ARG...]\n");
		return 2;
	}
	if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr,
			"sockact: socket path longer than %zu bytes: %s\n",
			sizeof(sa.sun_path) - 1, argv[1]);
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);

	/* A stale socket from a killed run would make bind() fail; anything
	 * that is not a socket is someone else's file and stays. */
	if (lstat(argv[1], &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(argv[1]);

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0) {
		perror("sockact: socket");
		return 1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "sockact: bind %s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		perror("sockact: listen");
		return 1;
	}
	/* dup2() also clears close-on-exec on the new descriptor. */
	if (fd != LISTEN_FD) {
		if (dup2(fd, LISTEN_FD) < 0) {
			perror("sockact: dup2");
			return 1;
		}
		close(fd);
	}

	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	if (setenv("LISTEN_FDS", "1", 1) < 0 ||
	    setenv("LISTEN_PID", pid, 1) < 0) {
		perror("sockact: setenv");
		return 1;
	}
	/* Names from an outer activation would not describe our one fd. */
	unsetenv("LISTEN_FDNAMES");

	execvp(argv[2], argv + 2);
	fprintf(stderr, "sockact: exec %s: %s\n", argv[2], strerror(errno));
	return 127;
}
