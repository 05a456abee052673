/* Every GGUF metadata key and tensor name the engine reads, in one table.
 * Architecture-specific keys are "%s.<suffix>" with the architecture name as
 * prefix; per-layer tensors are "blk.%d.<name>". */
#ifndef TINYLLM_NAMES_H
#define TINYLLM_NAMES_H

/* general */
#define KEY_ARCHITECTURE "general.architecture"
#define KEY_NAME "general.name"
#define KEY_FILE_TYPE "general.file_type"

/* per architecture (prefix with the architecture name) */
#define KEYF_CONTEXT_LENGTH "%s.context_length"
#define KEYF_EMBEDDING_LENGTH "%s.embedding_length"
#define KEYF_BLOCK_COUNT "%s.block_count"
#define KEYF_FEED_FORWARD_LENGTH "%s.feed_forward_length"
#define KEYF_HEAD_COUNT "%s.attention.head_count"
#define KEYF_HEAD_COUNT_KV "%s.attention.head_count_kv"
#define KEYF_RMS_EPS "%s.attention.layer_norm_rms_epsilon"
#define KEYF_NORM_EPS "%s.attention.layer_norm_epsilon"
#define KEYF_ROPE_DIMS "%s.rope.dimension_count"
#define KEYF_ROPE_FREQ_BASE "%s.rope.freq_base"

/* the project's own keys */
#define KEY_POSITION_ENCODING "tinyllm.position_encoding" /* "learned" | "sinusoidal" */
#define KEY_GELU "tinyllm.gelu"                          /* gpt2: "tanh" (default, GPT-2's) | "erf" (exact) */
#define KEY_SP_MODEL "tinyllm.tokenizer.sentencepiece_model" /* u8 array: the .model bytes */

/* tokenizer */
#define KEY_TOK_MODEL "tokenizer.ggml.model"
#define KEY_TOK_TOKENS "tokenizer.ggml.tokens"
#define KEY_TOK_SCORES "tokenizer.ggml.scores"
#define KEY_TOK_TYPES "tokenizer.ggml.token_type"
#define KEY_TOK_MERGES "tokenizer.ggml.merges"
#define KEY_TOK_PRE "tokenizer.ggml.pre"
#define KEY_TOK_ADD_EOS "tokenizer.ggml.add_eos_token"
#define KEY_TOK_BOS "tokenizer.ggml.bos_token_id"
#define KEY_TOK_EOS "tokenizer.ggml.eos_token_id"
#define KEY_TOK_UNK "tokenizer.ggml.unknown_token_id"
#define KEY_TOK_PAD "tokenizer.ggml.padding_token_id"
#define KEY_TOK_ADD_BOS "tokenizer.ggml.add_bos_token"
#define KEY_TOK_ADD_SPACE_PREFIX "tokenizer.ggml.add_space_prefix"

/* tensors */
#define TN_TOKEN_EMBD "token_embd.weight"
#define TN_POS_EMBD "position_embd.weight"
#define TN_OUTPUT_NORM "output_norm.weight"
#define TN_OUTPUT_NORM_B "output_norm.bias"
#define TN_OUTPUT "output.weight"
#define TN_ATTN_NORM "blk.%d.attn_norm.weight"
#define TN_ATTN_NORM_B "blk.%d.attn_norm.bias"
#define TN_ATTN_Q "blk.%d.attn_q.weight"
#define TN_ATTN_K "blk.%d.attn_k.weight"
#define TN_ATTN_V "blk.%d.attn_v.weight"
#define TN_ATTN_Q_B "blk.%d.attn_q.bias"
#define TN_ATTN_K_B "blk.%d.attn_k.bias"
#define TN_ATTN_V_B "blk.%d.attn_v.bias"
#define TN_ATTN_QKV "blk.%d.attn_qkv.weight"
#define TN_ATTN_QKV_B "blk.%d.attn_qkv.bias"
#define TN_ATTN_OUT "blk.%d.attn_output.weight"
#define TN_ATTN_OUT_B "blk.%d.attn_output.bias"
#define TN_FFN_NORM "blk.%d.ffn_norm.weight"
#define TN_FFN_NORM_B "blk.%d.ffn_norm.bias"
#define TN_FFN_GATE "blk.%d.ffn_gate.weight"
#define TN_FFN_UP "blk.%d.ffn_up.weight"
#define TN_FFN_UP_B "blk.%d.ffn_up.bias"
#define TN_FFN_DOWN "blk.%d.ffn_down.weight"
#define TN_FFN_DOWN_B "blk.%d.ffn_down.bias"

#endif
