/* tinyhttpd: answers every GET with one line; port from argv[1] (8080 by default). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char body[] = "Hello from a static C server in scratch\n";

static void serve(int c)
{
	char req[2048], head[256];
	ssize_t n = read(c, req, sizeof req - 1);
	if (n <= 0)
		return;
	req[n] = 0;
	int ok = strncmp(req, "GET ", 4) == 0;
	int len = snprintf(head, sizeof head,
		"HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		ok ? "200 OK" : "405 Method Not Allowed", ok ? sizeof body - 1 : (size_t)0);
	if (write(c, head, len) != len)
		return;
	if (ok && write(c, body, sizeof body - 1) < 0)
		return;
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 8080;
	signal(SIGPIPE, SIG_IGN);
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) {
		perror("tinyhttpd");
		return 1;
	}
	fprintf(stderr, "listening on %d\n", port);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0)
			continue;
		serve(c);
		close(c);
	}
}
