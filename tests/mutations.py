#!/usr/bin/python3
"""Mutation check: applies one-line bugs to a copy of the tree, one at a time,
and expects `make test` to fail on each. It guards the suite's teeth: a
tolerance loosened too far, or a boundary left unpinned, shows up here as a
mutation that survives. Run it after changing tolerances (`make mutations`);
each mutated run stops at the first failing suite (FAIL_FAST), so a caught
mutation costs a build and the suites before it; a survivor costs a whole
`make test`.

Usage: tests/mutations.py [NAME_SUBSTRING ...]   (exit 1 if any survives)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, file, text, replacement): text must occur in the file; the first
# occurrence is replaced.
MUTATIONS = [
    ("attention_scale", "src/attention.c", "{1.0f / sqrtf((float)head_dim), ATT_MASK_CAUSAL, 0}",
     "{1.0f / (float)head_dim, ATT_MASK_CAUSAL, 0}"),
    ("decode_attention_off_by_one", "src/attention.c", "int L = pos0 + T; /* visible keys",
     "int L = pos0 + T - 1; /* visible keys"),
    ("rope_frequency", "src/kernels.c", "pow((double)theta, -(double)i / head_dim)",
     "pow((double)theta, -(double)(i + 1) / head_dim)"),
    ("rmsnorm_eps_dropped", "src/kernels.c", "sqrt(ss / C + eps)", "sqrt(ss / C)"),
    ("layernorm_variance", "src/kernels.c", "var /= C;", "var /= C - 1;"),
    ("gelu_constant", "src/kernels_isa.c", "0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)))",
     "0.5f * v * (1.0f + tanhf(k * (v + 0.04715f * v * v * v)))"),
    ("gelu_constant_vector", "src/kernels_isa.c", "v_fmadd(v_set1(0.044715f), v3, v)",
     "v_fmadd(v_set1(0.04715f), v3, v)"),
    ("sinusoidal_sin_cos_swapped", "src/kernels.c", "out[(size_t)p * dim + i] = (float)sin(angle);",
     "out[(size_t)p * dim + i] = (float)cos(angle);"),
    ("stream_tail_dropped", "src/kernels_isa.c", "for (; c < C; c++) s += load1_w(w, r + c, kind) * x[c];",
     "for (; c < C - 1; c++) s += load1_w(w, r + c, kind) * x[c];"),
    ("dots_lane_dropped", "src/kernels_isa.c", "for (; c < C; c++) d += q[c] * r[c];",
     "for (; c < C - 1; c++) d += q[c] * r[c];"),
    ("softmax_without_max", "src/kernels_isa.c", "x[i] = expf(x[i] - max);", "x[i] = expf(x[i]);"),
    ("f16_subnormal", "src/half.c", "exp = 113;", "exp = 112;"),
    ("thread_split_rounding", "src/steps.c", "per = (per + j->align - 1) / j->align * j->align;",
     "per = per / j->align * j->align;"),
    ("top_k_count", "src/sampler.c", "keep = p->top_k;", "keep = p->top_k + 1;"),
    ("top_p_cut", "src/sampler.c", "if (cum >= p->top_p) {", "if (cum > p->top_p) {"),
    ("temperature", "src/sampler.c", "expf((w[i] - max) / p->temperature)", "expf((w[i] - max) * p->temperature)"),
    ("min_p_boundary", "src/sampler.c", "if (s->cands[i].p >= floor_p)", "if (s->cands[i].p > 1.5f * floor_p)"),
    ("repeat_window_late", "src/sampler.c", "n_history - p->repeat_last_n : 0;",
     "n_history - p->repeat_last_n + 1 : 0;"),
    ("context_shift_position", "src/forward.c", "    ctx->n_past = n_keep;\n", "    ctx->n_past = n_keep + 1;\n"),
    ("perplexity_offset", "tools/tinyllm/cmd_perplexity.c", "tinyllm_context_logits_at(ctx, t - start - 1)",
     "tinyllm_context_logits_at(ctx, t - start)"),
    ("hf_rope_permutation", "tools/convert_hf_llama.py",
     "    return w.reshape(n_heads, 2, d // 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)\n",
     "    return w.reshape(n_heads, d // 2, 2, cols).reshape(rows, cols)\n"),
    ("exact_gelu_ignored", "src/model.c", 'if (gelu) m->act = ACT_GELU_ERF, h->activation = "GELU (erf)";',
     'if (gelu) h->activation = "GELU (erf)";'),
    ("nanogpt_gelu_default", "tools/convert_nanogpt.py", 'choices=["erf", "tanh"], default="erf"',
     'choices=["erf", "tanh"], default="tanh"'),
    ("torch_checkpoint_strides", "tools/torch_checkpoint.py", "[s * flat.itemsize for s in self.stride]",
     "[s * flat.itemsize for s in sorted(self.stride, reverse=True)]"),
    ("q4_0x8_high_nibbles", "src/kernels_isa.c", "bx_hi = broadcast4(xq[i] + b * QK + 16 + 4 * m);",
     "bx_hi = broadcast4(xq[i] + b * QK + 4 * m);"),
    ("q8_act_rounding", "src/kernels_isa.c", "float inv = amax > 0.0f ? 127.0f / amax : 0.0f;",
     "float inv = amax > 0.0f ? 126.0f / amax : 0.0f;"),
    ("char_vocabulary_unk_outside", "src/tokenizer.c", "        if (ids[i] < t->n_vocab) continue;",
     "        if (ids[i] <= t->n_vocab) continue;"),
    # the explorer: the page's data (C) and what the page computes from it (JS, tested in chromium)
    ("explore_attention_offset", "tools/tinyllm/explore/explore.js",
     "run.attn[(li * H + h) * TRI + q * (q + 1) / 2 + k];", "run.attn[(li * H + h) * TRI + q * (q + 1) / 2 + k + 1];"),
    ("explore_temperature_ignored", "tools/tinyllm/explore/explore.js", "Math.exp((r.logit - best.logit) / T)",
     "Math.exp(r.logit - best.logit)"),
    ("explore_top_p_one_short", "tools/tinyllm/explore/explore.js", "if (cum >= topP) { keep = i + 1; break; }",
     "if (cum >= topP) { keep = i; break; }"),
    ("explore_click_ignored", "tools/tinyllm/explore/explore.js", 't.addEventListener("click", () => select(i));',
     't.addEventListener("click", () => select(N - 1));'),
    ("half_rounding", "src/half.c", "    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;",
     "    if (rest > 0x1000 && (h & 1)) h++;"),
    ("explore_head_stride", "tools/tinyllm/cmd_explore.c",
     "*o++ = row ? f32_to_f16(row[(size_t)h * (q + 1) + k]) : 0;", "*o++ = row ? f32_to_f16(row[(size_t)h * q + k]) : 0;"),
    ("x8_row_lane", "src/formats.c", "int r = (int)(row % X8_ROWS);", "int r = (int)((row + 1) % X8_ROWS);"),
    ("vnni_q4_0x8_high_chain", "src/kernels_isa.c",
     "p[CH - 1][i] = _mm256_dpbusd_epi32(p[CH - 1][i], hi, bx_hi);",
     "p[CH - 1][i] = _mm256_dpbusd_epi32(p[0][i], hi, bx_hi);"),
    ("vnni_q8_0x8_offset", "src/kernels_isa.c", "p[0][i] = _mm256_set1_epi32((q8 ? -128 : -8) * xs[i][b]);",
     "p[0][i] = _mm256_set1_epi32((q8 ? -127 : -8) * xs[i][b]);"),
    # the repacked GEMM: a tile's rows, and the blocks/chunks of a prefill
    ("tile_row_offset", "src/kernels_isa.c", "xq[i] = x->q + (size_t)(t + i) * x->C,",
     "xq[i] = x->q + (size_t)(t + (i & 3)) * x->C,"),
    ("q8_prefill_chunk_end", "src/kernels.c", "gemm(out, x, w.data, bias, t0, t0 + chunk < T ? t0 + chunk : T, OC, b0, b1);",
     "gemm(out, x, w.data, bias, t0, t0 + chunk < T ? t0 + chunk - 1 : T, OC, b0, b1);"),
    ("x8_padding_dropped", "src/formats.c", "for (long g = 0; g < (rows + X8_ROWS - 1) / X8_ROWS; g++)",
     "for (long g = 0; g < rows / X8_ROWS; g++)"),
    ("quantize_rows_split", "src/steps.c", "matmul_quantize(ctx->model->kern, &x, a->in, a->in_stride, t0, t1);",
     "matmul_quantize(ctx->model->kern, &x, a->in, a->in_stride, t0, t1 - (t1 < a->T));"),
    ("radix_sort_key_halves", "src/sampler.c", "uint32_t half = pass < 4 ? (uint32_t)c->id : ~bits;",
     "uint32_t half = pass < 4 ? ~bits : (uint32_t)c->id;"),
    ("quantize_nan_dropped", "src/kernels_isa.c", "    float amax = _mm256_movemask_ps(nan) ? NAN : v_hmax(m);",
     "    float amax = v_hmax(m);"),
    # experiments: each changes what it claims, no more
    ("experiment_mask_after_softmax", "src/attention.c",
     "int from = rule->mask == ATT_MASK_AFTER_SOFTMAX ? past : visible;", "int from = visible;"),
    ("experiment_no_norm_ignored", "src/forward.c", "if (ctx->exp.flags & TINYLLM_EXP_NO_NORM) {", "if (0) {"),
    # the six the hostile-input hunt of issue 23 found surviving
    ("sampler_seed_unmixed", "src/sampler.c", "s->rng = splitmix64(p.seed);", "s->rng = p.seed;"),
    ("escape_hex_advance", "tools/tinyllm/textio.c", "            s += 2;\n", "            s += 1;\n"),
    ("stop_prefix_as_suffix", "tools/tinyllm/textio.c", "if (!memcmp(f->held + f->n_held - k, f->stops[i], k)) {",
     "if (!memcmp(f->held + f->n_held - k, f->stops[i] + m - k, k)) {"),
    ("explore_lens_first_row_embed", "tools/tinyllm/cmd_explore.c",
     'taps[rows++] = tap_index(st, "pos") >= 0 ? tap_index(st, "pos") : tap_index(st, "embed");',
     'taps[rows++] = tap_index(st, "embed");'),
    ("step_entropy_nats", "tools/tinyllm/step_views.c", "if (p[j] > 0) entropy -= p[j] * log2(p[j]);",
     "if (p[j] > 0) entropy -= p[j] * log(p[j]);"),
    # the K-quants' activations share one scale per super-block, as their kernels assume
    ("k_quant_activation_groups", "src/kernels.c", "f->block == QK_K ? QK_K : QK_LEGACY", "QK_LEGACY"),
    ("q6_k_block_sum_lane", "src/dots_isa.c", "_mm256_add_epi32(_mm256_add_epi32(p[4], p[5]), _mm256_add_epi32(p[6], p[7]))",
     "_mm256_add_epi32(_mm256_add_epi32(p[4], p[5]), p[6])"),
    ("k_gemm_q6_offset", "src/dots_isa.c", "u->e = 32.0f * u->d;", "u->e = 31.0f * u->d;"),
    ("k_min_pairs", "src/dots_isa.c", "_mm256_setr_epi16(8, 8, 9, 9, 10, 10,", "_mm256_setr_epi16(8, 9, 9, 9, 10, 10,"),
    ("k_nibble_pair_fifth_bit", "src/dots_isa.c", "_mm256_set1_epi8((char)(1 << (2 * c + 1))), 1);",
     "_mm256_set1_epi8((char)(1 << (2 * c))), 1);"),
    ("q3_k_gemm_high_bit", "src/dots_isa.c", "u->q[c] = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(hm, bit), q, _mm512_set1_epi8(4));",
     "u->q[c] = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(hm, bit), q, _mm512_set1_epi8(2));"),
    ("bench_segment_reads", "tools/tinyllm/cmd_bench.c", "reads[n_shares] = 0.5 * (before + after);",
     "reads[n_shares] = 0.5 * (before + after) * (p0 > 0 ? 1e3 : 1);"),
    ("weighted_sum_last_odd_row", "src/kernels_isa.c", "for (int k = 0; k < 4; k++) e[k] = v_fmadd(p0, v_load(r0 + k * VW), e[k]);",
     "for (int k = 0; k < 3; k++) e[k] = v_fmadd(p0, v_load(r0 + k * VW), e[k]);"),
    ("x8_512_offset_twice", "src/kernels_isa.c", "_mm512_maskz_set1_epi32(0x00ff, (q8 ? -128 : -8) * xs[b])",
     "_mm512_maskz_set1_epi32(0xffff, (q8 ? -128 : -8) * xs[b])"),
    ("q4_0_x8_512_high_shift", "src/kernels_isa.c", "sum = _mm512_add_epi32(p0, _mm512_srai_epi32(p1, 4));",
     "sum = _mm512_add_epi32(p0, _mm512_srai_epi32(p1, 3));"),
    ("bf16_gemm_tail_mask", "src/kernels_isa.c", "(__mmask32)((1u << (C - c)) - 1);", "(__mmask32)((1u << (C - c - 1)) - 1);"),
    ("bf16_stream_widen", "src/isa.h", "_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))), 16))",
     "_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))), 15))"),
    ("q3_k_x8_third_bit", "src/kernels_isa.c", "g3->hmask[m]), 2 - (4 * h + p), 0x04);",
     "g3->hmask[m]), 1 - (4 * h + p), 0x04);"),
    ("q3_k_x8_top_scale_bits", "src/kernels_isa.c", "_mm256_and_si256(_mm256_slli_epi16(top, 2), bits45)),",
     "_mm256_and_si256(_mm256_slli_epi16(top, 3), bits45)),"),
    ("q2_k_x8_min_offset", "src/kernels_isa.c", "acc[i] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(off), _mm256_mul_ps(dmin, dx), acc[i]);",
     "acc[i] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(off), _mm256_mul_ps(d, dx), acc[i]);"),
    ("q3_k_x8_rows_scales", "src/formats.c", "for (int j = 0; j < 12; j++) blk.scales[j] = g[b].scales[j][r];",
     "for (int j = 0; j < 11; j++) blk.scales[j] = g[b].scales[j][r];"),
    ("q4_k_x8_min_pair", "src/kernels_isa.c", "_mm_loadl_epi64((const __m128i *)g->mins[2 * p + 1])));",
     "_mm_loadl_epi64((const __m128i *)g->mins[2 * p])));"),
    ("q4_k_x8_high_scale", "src/kernels_isa.c", "_mm_loadl_epi64((const __m128i *)g->sc[2 * c + 1]));",
     "_mm_loadl_epi64((const __m128i *)g->sc[2 * c]));"),
    ("q4_k_x8_repack_rows", "src/formats.c", "memcpy(qs[c][m][r], codes + 32 * c + 4 * m, 4);",
     "memcpy(qs[c][m][r], codes + 32 * c + 4 * (m ^ 1), 4);"),
    ("q5_k_x8_fifth_bit", "src/kernels_isa.c", "hi = with_top_bits(hi, top, 3 - 2 * c, 0x10);",
     "hi = with_top_bits(hi, top, 4 - 2 * c, 0x10);"),
    ("q6_k_x8_top_bits", "src/kernels_isa.c", "top, -2 * p, 0x30);", "top, -2 * p, 0x10);"),
    ("decode_matrices_no_down", "src/model.c", "{w->w_gate, ff * d}, {w->w_down, d * ff}};", "{w->w_gate, ff * d}};"),
    ("shift_memmove_off_by_one", "tools/tinyllm/generation.c", "memmove(g->cache + g->n_keep, g->cache + g->n_keep + discard,",
     "memmove(g->cache + g->n_keep, g->cache + g->n_keep + discard + 1,"),
]


def main():
    only = sys.argv[1:]
    shared = os.path.abspath(os.environ.get("SHARED", os.path.join(ROOT, "..", "shared")))
    work = tempfile.mkdtemp(prefix="tinyllm-mutations-")
    tree = os.path.join(work, "tree")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        os.makedirs(os.path.dirname(os.path.join(tree, f)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), os.path.join(tree, f))
    env = dict(os.environ, SHARED=shared)
    base = subprocess.run(["make", "-s", "test"], cwd=tree, env=env, capture_output=True, text=True)
    if base.returncode != 0:
        print("the unmutated tree fails its tests:\n" + base.stdout[-2000:])
        return 1
    survived = []
    for name, path, old, new in MUTATIONS:
        if only and not any(o in name for o in only):
            continue
        target = os.path.join(tree, path)
        with open(target) as f:
            src = f.read()
        if old not in src:
            print(f"STALE {name}: '{old}' is no longer in {path}")
            survived.append(name)
            continue
        t0 = time.time()
        with open(target, "w") as f:
            f.write(src.replace(old, new, 1))
        r = subprocess.run(["make", "-s", "test"], cwd=tree, env=dict(env, FAIL_FAST="1", TINYLLM_MUTANT=name), capture_output=True,
                           text=True)
        with open(target, "w") as f:
            f.write(src)
        os.utime(target)  # rebuild the original next time
        fails = [ln for ln in r.stdout.splitlines() if ln.startswith("FAIL ")]
        if r.returncode == 0:
            print(f"SURVIVED {name} ({time.time() - t0:.0f} s)", flush=True)
            survived.append(name)
        else:
            print(f"caught {name}: {len(fails)} failing, first {fails[0][5:][:150] if fails else r.stderr[-150:]}"
                  f" ({time.time() - t0:.0f} s)", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{len(survived)} of the mutations survived" + (": " + ", ".join(survived) if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
