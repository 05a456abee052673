/* How fast this machine reads a model's bytes (readrate.c): the decode
 * bandwidth bound `tinyllm bench` reports beside its speeds. */
#ifndef TINYLLM_CLI_READRATE_H
#define TINYLLM_CLI_READRATE_H

/* GB/s at which `threads` threads read the whole file at path, mapped as the
 * model maps it (its pages are the page cache's, the same memory in-place
 * weights are read from; a file that fits in the caches is read from them,
 * as its weights are in a decode loop): the best of `passes` passes after a
 * warm one. -1 when the file cannot be mapped or a thread not started. */
double file_read_gb_s(const char *path, int threads, int passes);

#endif
