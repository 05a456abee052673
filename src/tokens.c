/* The tokenizer as the API offers it: every function takes the model and
 * works on its tokenizer (tokenizer.c), which knows nothing of models. */
#include "error.h"
#include "model.h"
#include "tokenizer.h"

int tinyllm_token_bos(const tinyllm_model *m) { return m ? tokenizer_bos(m->tok) : -1; }
int tinyllm_token_eos(const tinyllm_model *m) { return m ? tokenizer_eos(m->tok) : -1; }
const char *tinyllm_tokenizer_source(const tinyllm_model *m) { return m ? tokenizer_source(m->tok) : "none"; }
const char *tinyllm_token_piece(const tinyllm_model *m, int token) { return m ? tokenizer_piece(m->tok, token) : NULL; }
int tinyllm_token_bytes(const tinyllm_model *m, int token, char *out, size_t cap) {
    return m ? tokenizer_token_bytes(m->tok, token, out, cap) : -1;
}

tinyllm_status tinyllm_tokenize(const tinyllm_model *m, const char *text, size_t len, int add_bos, int *tokens,
                                int cap, int *n_out, tinyllm_error *err) {
    if (!m) return set_error(err, TINYLLM_ERR_ARG, "tinyllm_tokenize: NULL or negative argument");
    return tokenizer_tokenize(m->tok, text, len, add_bos, tokens, cap, n_out, err);
}

tinyllm_status tinyllm_detokenize(const tinyllm_model *m, const int *tokens, int n, char *out, size_t cap,
                                  size_t *len_out, tinyllm_error *err) {
    if (!m) return set_error(err, TINYLLM_ERR_ARG, "tinyllm_detokenize: NULL or out-of-range argument");
    return tokenizer_detokenize(m->tok, tokens, n, out, cap, len_out, err);
}

int tinyllm_detok_push(const tinyllm_model *m, tinyllm_detok *d, int token, char *out, size_t cap,
                       tinyllm_error *err) {
    if (!m) {
        set_error(err, TINYLLM_ERR_ARG, "detok_push: NULL model, state or buffer, or a zero-size buffer");
        return -1;
    }
    return tokenizer_detok_push(m->tok, d, token, out, cap, err);
}
