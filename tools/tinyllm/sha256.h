/* SHA-256 (FIPS 180-4) of a file, as lowercase hex: how a golden file names
 * the model it was made from. */
#ifndef TINYLLM_CLI_SHA256_H
#define TINYLLM_CLI_SHA256_H

/* Writes 64 hex digits + NUL into hex; returns 0, or -1 if the file can't be read. */
int sha256_file(const char *path, char hex[65]);

#endif
