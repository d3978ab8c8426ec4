/* tally: counts lines, words and bytes of its files (or stdin), like a small wc. */
#include <stdio.h>
#include <string.h>
#include "count.h"

int main(int argc, char **argv)
{
	struct tally t = {0, 0, 0};
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		puts("tally 1.0");
		return 0;
	}
	if (argc < 2) {
		tally_stream(stdin, &t);
	} else {
		for (int i = 1; i < argc; i++) {
			FILE *f = fopen(argv[i], "r");
			if (!f) {
				perror(argv[i]);
				return 1;
			}
			tally_stream(f, &t);
			fclose(f);
		}
	}
	printf("lines=%lu words=%lu bytes=%lu\n", t.lines, t.words, t.bytes);
	return 0;
}
