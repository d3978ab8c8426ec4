#ifndef TALLY_COUNT_H
#define TALLY_COUNT_H
#include <stdio.h>

struct tally { unsigned long lines, words, bytes; };

/* Adds what `in` holds to `t`. */
void tally_stream(FILE *in, struct tally *t);

#endif
