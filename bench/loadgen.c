// Fixed-rate load for the sensor benchmark: execs, opens of a watched path, or connects.
// usage: loadgen exec|open|connect RATE SECONDS [PATH|PORT]
// Paced in 10 ms ticks; prints how many actions it did. Compiled by bench/sensor.py with cc.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void one(const char *mode, const char *target)
{
	if (strcmp(mode, "exec") == 0) {
		pid_t pid = vfork();

		if (pid == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	} else if (strcmp(mode, "open") == 0) {
		int fd = open(target, O_RDONLY);

		if (fd >= 0)
			close(fd);
	} else {
		struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(target))};
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		connect(fd, (struct sockaddr *)&address, sizeof(address)); /* refused: no listener */
		close(fd);
	}
}

int main(int argc, char **argv)
{
	const char *mode, *target;
	double rate, seconds, start, tick = 0.01;
	long done = 0, due;

	if (argc < 4) {
		fprintf(stderr, "usage: loadgen exec|open|connect RATE SECONDS [PATH|PORT]\n");
		return 2;
	}
	mode = argv[1];
	rate = atof(argv[2]);
	seconds = atof(argv[3]);
	target = argc > 4 ? argv[4] : "/etc/shadow";
	start = now();
	while (now() - start < seconds) {
		due = (long)((now() - start + tick) * rate);
		while (done < due) {
			one(mode, target);
			done++;
		}
		usleep((useconds_t)(tick * 1e6 / 2));
	}
	printf("%ld\n", done);
	return 0;
}
