#include <ctype.h>
#include "count.h"

void tally_stream(FILE *in, struct tally *t)
{
	int c, inword = 0;
	while ((c = getc(in)) != EOF) {
		t->bytes++;
		if (c == '\n')
			t->lines++;
		if (isspace(c))
			inword = 0;
		else if (!inword) {
			inword = 1;
			t->words++;
		}
	}
}
