/* libFuzzer target: the golden-file reader (tools/tinyllm/golden.c) on
 * arbitrary bytes. Every input parses or fails with a one-line message;
 * nothing reads past the buffer, nothing leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned char *raw = malloc(size ? size : 1); /* the golden owns it from here on */
    if (!raw) return 0;
    memcpy(raw, data, size);
    golden g;
    char msg[512];
    if (golden_parse(raw, size, "fuzz.tlg", &g, msg, sizeof msg) == 0) {
        for (int i = 0; i < g.n_taps; i++) /* touch every value the reader promised */
            for (int64_t j = 0; j < g.taps[i].n; j++) msg[0] ^= (char)(g.taps[i].data[j] > 0);
        golden_free(&g);
    } else if (!memchr(msg, 0, sizeof msg) || strchr(msg, '\n')) {
        abort(); /* messages are one NUL-terminated line */
    }
    return 0;
}
