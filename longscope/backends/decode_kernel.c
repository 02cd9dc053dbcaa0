/* One decode step of a Llama-style model in fp32 on a CPU, in one parallel region: every weight is read once,
 * as one contiguous block of rows per thread, and the small per-layer operations run between the products
 * without leaving C. Built and loaded by decode_kernel.py; the Python step it replaces is the reference the
 * tests hold it to.
 *
 * Weights are the model's own [out, in] rows (no copy). The cache is the caller's: per layer a key and a value
 * buffer of [kv_heads, capacity, head_dim] floats; this step writes position `pos` and attends over 0..pos.
 */
#include <math.h>
#include <stddef.h>
#include <omp.h>

#define MAX_GROUP 16
#define MAX_HEAD_DIM 256
#define BLOCK 64

typedef struct {
    int layers, hidden, heads, kv_heads, head_dim, inter, vocab;
    float eps, scaling;
    const float *const *input_norm, *const *post_norm;
    const float *const *wq, *const *wk, *const *wv;
    const float *const *bq, *const *bk, *const *bv; /* entries may be NULL */
    const float *const *wo, *const *wg, *const *wu, *const *wd;
    const float *final_norm, *lm_head, *lm_bias; /* lm_bias may be NULL */
} Model;

#if defined(__AVX512F__)
#include <immintrin.h>

/* w . x in four vectors of sixteen sums, sixty-four floats a pass. Written out because the compiler's own code
 * for the loop below uses half-width vectors on this CPU: twice the instructions per byte, and with the memory
 * fast (55 GB/s for a plain read on two threads) the products then read at 48 where these read at 52. */
static inline __attribute__((always_inline)) float dot(const float *restrict w, const float *restrict x, int n) {
    __m512 a = _mm512_setzero_ps(), b = a, c = a, d = a;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        a = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a);
        b = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), b);
        c = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(x + i + 32), c);
        d = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(x + i + 48), d);
    }
    for (; i + 16 <= n; i += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a);
    if (i < n) {
        __mmask16 rest = (__mmask16)((1u << (n - i)) - 1u);
        b = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(rest, w + i), _mm512_maskz_loadu_ps(rest, x + i), b);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
}
#else
/* w . x in thirty-two independent sums (four vectors of eight): with one vector of sums each row's products
 * wait on the previous one's latency, which held a thread to ~23 GB/s where four keep it at the memory's pace. */
static inline __attribute__((always_inline)) float dot(const float *restrict w, const float *restrict x, int n) {
    float s[32] = {0};
    int i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 32; j++) s[j] += w[i + j] * x[i + j];
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += w[i + j] * x[i + j];
    for (int j = 8; j < 32; j++) s[j & 7] += s[j];
    float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) total += w[i] * x[i];
    return total;
}
#endif

static void rms_norm(const float *x, const float *weight, float eps, int n, float *out) {
    double squares = 0.0;
    for (int i = 0; i < n; i++) squares += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(squares / n) + eps);
    for (int i = 0; i < n; i++) out[i] = weight[i] * (x[i] * scale);
}

/* exp(x) as 2^n * e^r, |r| <= ln2/2, with a degree-6 polynomial for e^r: within 2 ulp of expf over the
 * softmax's range, and branch-free so the compiler vectorises the loops that call it (glibc's expf is a call
 * per element; at 4k context the step made over a million). Inputs below -87 give ~1e-38 instead of 0: every
 * such weight multiplies sums that are still zero, or is negligible beside the maximum's exp(0) = 1. */
static inline float exp_fast(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* Round to nearest by adding and removing 1.5 * 2^23 (no -ffast-math, so the compiler keeps both): roundf
     * is a library call the loop cannot vectorise, and it was a third of the attention's time at 4k. */
    float n = (x * 1.44269504089f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666667f + r * (0.041666668f + r * (0.008333334f
              + r * 0.0013888889f)))));
    union { float f; int i; } scale;
    scale.i = ((int)n + 127) << 23;
    return p * scale.f;
}

/* x' = x cos + rotate_half(x) sin, rotate_half(x) = (-x[half:], x[:half]). */
static void rotate(float *x, const float *cos_, const float *sin_, int dim) {
    int half = dim / 2;
    for (int i = 0; i < half; i++) {
        float a = x[i], b = x[i + half];
        x[i] = a * cos_[i] - b * sin_[i];
        x[i + half] = b * cos_[i + half] + a * sin_[i + half];
    }
}

int ls_limits(int *max_group, int *max_head_dim) {
    *max_group = MAX_GROUP;
    *max_head_dim = MAX_HEAD_DIM;
    return 0;
}

/* Floats of scratch the step needs for `threads` threads and `chunks` attention chunks per key head: the shared
 * vectors, the partial attention sums, and each thread's own normed input and attention output. */
long ls_scratch_floats(const Model *m, int threads, int chunks) {
    long q = (long)m->heads * m->head_dim, kv = (long)m->kv_heads * m->head_dim;
    long partial = (long)m->kv_heads * chunks * (m->heads / m->kv_heads) * (m->head_dim + 2);
    return m->hidden + q + 2 * kv + m->inter + partial + (long)threads * (m->hidden + q);
}

/* acc[0:dim] += sum over p of weights[p] * values[p, 0:dim]. With the width known at compile time the sums
 * live in registers across positions (a variable width kept them in memory: twice the attention's time). */
#define ACCUMULATE_FIXED(WIDTH)                                                                                  \
    static void accumulate_##WIDTH(float *restrict acc, const float *restrict values, const float *weights,       \
                                   int count) {                                                                \
        float sums[WIDTH];                                                                                     \
        for (int d = 0; d < WIDTH; d++) sums[d] = acc[d];                                                      \
        for (int p = 0; p < count; p++)                                                                        \
            for (int d = 0; d < WIDTH; d++) sums[d] += weights[p] * values[(long)p * WIDTH + d];               \
        for (int d = 0; d < WIDTH; d++) acc[d] = sums[d];                                                      \
    }
ACCUMULATE_FIXED(64)
ACCUMULATE_FIXED(128)

static void accumulate(float *acc, const float *values, const float *weights, int count, int dim) {
    if (dim == 64) {
        accumulate_64(acc, values, weights, count);
    } else if (dim == 128) {
        accumulate_128(acc, values, weights, count);
    } else {
        for (int p = 0; p < count; p++)
            for (int d = 0; d < dim; d++) acc[d] += weights[p] * values[(long)p * dim + d];
    }
}

/* The four parts of one block of `count` positions that depend on the width: the scaled scores of its keys for
 * the `group` query heads, the largest of a head's scores (from `top`), their sum after exp, and the values
 * weighed by them added to each head's sums. Any width here; 64 and 128 have vector versions below. */
static inline void block_scores_any(const float *q, const float *keys, int count, int group, int dim, float scaling,
                                    float (*scores)[BLOCK]) {
    for (int p = 0; p < count; p++) {
        const float *key = keys + (long)p * dim;
        for (int g = 0; g < group; g++) scores[g][p] = dot(q + g * dim, key, dim) * scaling;
    }
}

static inline float block_max_any(const float *scores, int count, float top) {
    for (int p = 0; p < count; p++) top = scores[p] > top ? scores[p] : top;
    return top;
}

static inline float block_sum_any(const float *scores, int count) {
    float sum = 0.0f;
    for (int p = 0; p < count; p++) sum += scores[p];
    return sum;
}

static inline void block_values_any(float (*acc)[MAX_HEAD_DIM], float (*scores)[BLOCK], const float *values, int count,
                                    int group, int dim) {
    for (int g = 0; g < group; g++) accumulate(acc[g], values, scores[g], count, dim);
}

#if defined(__AVX512F__)
/* Sixteen vectors to one: lane i holds the sum of v[i]'s sixteen lanes (a transpose folded into the adds, 15
 * shuffle-and-add steps for sixteen sums instead of a horizontal reduction each). */
static inline __attribute__((always_inline)) __m512 lane_sums(const __m512 *v) {
    __m512 a[8], b[4], c[2];
    for (int i = 0; i < 8; i++)
        a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++) {
        __m512d x = _mm512_castps_pd(a[2 * i]), y = _mm512_castps_pd(a[2 * i + 1]);
        b[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    for (int i = 0; i < 2; i++)
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Scores sixteen keys at a time: each key's products summed in one vector, the sixteen vectors reduced together. */
static inline __attribute__((always_inline)) void block_scores_wide(const float *q, const float *keys, int count,
                                                                    int group, int width, float scaling,
                                                                    float (*scores)[BLOCK]) {
    const int rows = width / 16;
    for (int sub = 0; sub < count; sub += 16) {
        int n = count - sub < 16 ? count - sub : 16;
        for (int g = 0; g < group; g++) {
            __m512 query[8], part[16];
            for (int r = 0; r < rows; r++) query[r] = _mm512_loadu_ps(q + g * width + 16 * r);
            for (int p = 0; p < 16; p++) {
                __m512 s = _mm512_setzero_ps();
                const float *key = keys + (long)(sub + p) * width;
                if (p < n)
                    for (int r = 0; r < rows; r++) s = _mm512_fmadd_ps(query[r], _mm512_loadu_ps(key + 16 * r), s);
                part[p] = s;
            }
            _mm512_storeu_ps(scores[g] + sub, _mm512_mul_ps(lane_sums(part), _mm512_set1_ps(scaling)));
        }
    }
}

static inline __attribute__((always_inline)) float block_max_wide(const float *scores, int count, float top) {
    int p = 0;
    __m512 m = _mm512_set1_ps(top);
    for (; p + 16 <= count; p += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(scores + p));
    return block_max_any(scores + p, count - p, _mm512_reduce_max_ps(m));
}

static inline __attribute__((always_inline)) float block_sum_wide(const float *scores, int count) {
    int p = 0;
    __m512 t = _mm512_setzero_ps();
    for (; p + 16 <= count; p += 16) t = _mm512_add_ps(t, _mm512_loadu_ps(scores + p));
    float sum = _mm512_reduce_add_ps(t);
    for (; p < count; p++) sum += scores[p];
    return sum;
}

/* acc[g] += sum over p of weights[g][p] * values[p] for `pack` query heads at once: each value row is loaded
 * once for all of them, and the sums stay in registers across the block. */
static inline __attribute__((always_inline)) void weigh_values(float (*acc)[MAX_HEAD_DIM], float (*weights)[BLOCK],
                                                               const float *values, int count, int width, int pack) {
    const int rows = width / 16;
    __m512 sums[4][8];
    for (int g = 0; g < pack; g++)
        for (int r = 0; r < rows; r++) sums[g][r] = _mm512_loadu_ps(acc[g] + 16 * r);
    for (int p = 0; p < count; p++) {
        __m512 row[8];
        for (int r = 0; r < rows; r++) row[r] = _mm512_loadu_ps(values + (long)p * width + 16 * r);
        for (int g = 0; g < pack; g++) {
            __m512 w = _mm512_set1_ps(weights[g][p]);
            for (int r = 0; r < rows; r++) sums[g][r] = _mm512_fmadd_ps(w, row[r], sums[g][r]);
        }
    }
    for (int g = 0; g < pack; g++)
        for (int r = 0; r < rows; r++) _mm512_storeu_ps(acc[g] + 16 * r, sums[g][r]);
}

static inline __attribute__((always_inline)) void block_values_wide(float (*acc)[MAX_HEAD_DIM], float (*scores)[BLOCK],
                                                                    const float *values, int count, int group,
                                                                    int width) {
    const int most = width == 64 ? 4 : 2; /* query heads per pass: their sums and one value row in registers */
    for (int g = 0; g < group; g += most) {
        switch (group - g < most ? group - g : most) {
        case 1: weigh_values(acc + g, scores + g, values, count, width, 1); break;
        case 2: weigh_values(acc + g, scores + g, values, count, width, 2); break;
        case 3: weigh_values(acc + g, scores + g, values, count, width, 3); break;
        default: weigh_values(acc + g, scores + g, values, count, width, 4); break;
        }
    }
}
#else
/* Without AVX-512 every width takes the scalar parts (attend() never asks for the vector ones then). */
#define block_scores_wide block_scores_any
#define block_max_wide block_max_any
#define block_sum_wide block_sum_any
#define block_values_wide block_values_any
#endif

/* One key head's chunk of positions [start, stop) for its `group` query heads, in blocks of BLOCK positions
 * with a running maximum: the chunk's maximum score, the sum of exp(score - max) and the weighted values, per
 * query head, written to `out` (head_dim + 2 each). `wide` takes the vector parts (widths 64 and 128 only); it
 * and the width are constants once inlined into attend(), so each width gets its own compiled loop. */
static inline __attribute__((always_inline)) void attend_span(const float *q, const float *keys, const float *values,
                                                              int start, int stop, int group, int dim, float scaling,
                                                              float *out, int wide) {
    float best[MAX_GROUP], total[MAX_GROUP];
    float acc[MAX_GROUP][MAX_HEAD_DIM];
    float scores[MAX_GROUP][BLOCK];
    for (int g = 0; g < group; g++) {
        best[g] = -INFINITY;
        total[g] = 0.0f;
        for (int d = 0; d < dim; d++) acc[g][d] = 0.0f;
    }
    for (int first = start; first < stop; first += BLOCK) {
        int count = stop - first < BLOCK ? stop - first : BLOCK;
        const float *block_keys = keys + (long)first * dim, *block_values = values + (long)first * dim;
        if (wide)
            block_scores_wide(q, block_keys, count, group, dim, scaling, scores);
        else
            block_scores_any(q, block_keys, count, group, dim, scaling, scores);
        for (int g = 0; g < group; g++) {
            float top = wide ? block_max_wide(scores[g], count, best[g]) : block_max_any(scores[g], count, best[g]);
            float shrink = expf(best[g] - top); /* 0 on the first block: best is -inf */
            for (int d = 0; d < dim; d++) acc[g][d] *= shrink;
#pragma omp simd
            for (int p = 0; p < count; p++) scores[g][p] = exp_fast(scores[g][p] - top);
            float sum = wide ? block_sum_wide(scores[g], count) : block_sum_any(scores[g], count);
            total[g] = total[g] * shrink + sum;
            best[g] = top;
        }
        if (wide)
            block_values_wide(acc, scores, block_values, count, group, dim);
        else
            block_values_any(acc, scores, block_values, count, group, dim);
    }
    for (int g = 0; g < group; g++) {
        float *slot = out + (long)g * (dim + 2);
        slot[0] = best[g];
        slot[1] = total[g];
        for (int d = 0; d < dim; d++) slot[2 + d] = acc[g][d];
    }
}

/* The widths with a vector version take it where the compiler targets AVX-512; any other the scalar one. The
 * vector version reads the cache at most of the memory's pace at 4k, the scalar one at about half. */
static void attend(const float *q, const float *keys, const float *values, int start, int stop, int group, int dim,
                   float scaling, float *out) {
#if defined(__AVX512F__)
    if (dim == 64) return attend_span(q, keys, values, start, stop, group, 64, scaling, out, 1);
    if (dim == 128) return attend_span(q, keys, values, start, stop, group, 128, scaling, out, 1);
#endif
    attend_span(q, keys, values, start, stop, group, dim, scaling, out, 0);
}

/* Each query head's output from its key head's chunks: their sums rescaled to the largest chunk maximum. */
static void merge_chunks(const float *partial, int heads, int group, int chunks, int dim, float *attended) {
    for (int qh = 0; qh < heads; qh++) {
        int head = qh / group, g = qh % group;
        float top = -INFINITY, total = 0.0f;
        for (int c = 0; c < chunks; c++) {
            float b = partial[((long)(head * chunks + c) * group + g) * (dim + 2)];
            top = b > top ? b : top;
        }
        float *result = attended + (long)qh * dim;
        for (int d = 0; d < dim; d++) result[d] = 0.0f;
        for (int c = 0; c < chunks; c++) {
            const float *slot = partial + ((long)(head * chunks + c) * group + g) * (dim + 2);
            if (slot[1] == 0.0f) continue;
            float scale = expf(slot[0] - top);
            total += slot[1] * scale;
            for (int d = 0; d < dim; d++) result[d] += slot[2 + d] * scale;
        }
        for (int d = 0; d < dim; d++) result[d] /= total;
    }
}

/* One token through the model. The threads meet five times a layer, after each step whose output every thread
 * then reads (q/k/v, the attention's partial sums, o, the activations, down): the norms and the merging of the
 * attention chunks are small enough that each thread computes its own copy rather than wait for one.
 * The products hand out their rows guided (half, then shrinking pieces to whichever thread is free) rather
 * than in equal halves: the memory does not serve two threads equally, and with equal halves the faster one
 * waited at each of the 150 meetings; the slower's share now shrinks to fit (4-6 % more tokens a second at
 * 1k and 4k, same tokens: each row is still one thread's whole dot product). */
int ls_decode(const Model *m, const float *embedding, const float *cos_, const float *sin_, float *const *keys,
              float *const *values, const long *head_stride, int pos, int threads, int chunks, float *logits,
              float *scratch) {
    const int hidden = m->hidden, dim = m->head_dim, heads = m->heads, kv_heads = m->kv_heads;
    const int group = heads / kv_heads, inter = m->inter;
    const int q_rows = heads * dim, kv_rows = kv_heads * dim, qkv_rows = q_rows + 2 * kv_rows;
    float *x = scratch, *q = x + hidden, *k = q + q_rows, *v = k + kv_rows, *act = v + kv_rows;
    float *partial = act + inter, *own = partial + (long)kv_heads * chunks * group * (dim + 2);
    const int length = pos + 1, per_chunk = (length + chunks - 1) / chunks, last = pos / per_chunk;
    if (group > MAX_GROUP || dim > MAX_HEAD_DIM || chunks < 1 || threads < 1) return 1;
    for (int i = 0; i < hidden; i++) x[i] = embedding[i];

#pragma omp parallel num_threads(threads)
    {
        float *h = own + (long)omp_get_thread_num() * (hidden + q_rows), *attended = h + hidden;
        for (int layer = 0; layer < m->layers; layer++) {
            rms_norm(x, m->input_norm[layer], m->eps, hidden, h);

#pragma omp for schedule(guided, 8)
            for (int r = 0; r < qkv_rows; r++) {
                if (r < q_rows) {
                    q[r] = dot(m->wq[layer] + (long)r * hidden, h, hidden) + (m->bq[layer] ? m->bq[layer][r] : 0.0f);
                } else if (r < q_rows + kv_rows) {
                    int i = r - q_rows;
                    k[i] = dot(m->wk[layer] + (long)i * hidden, h, hidden) + (m->bk[layer] ? m->bk[layer][i] : 0.0f);
                } else {
                    int i = r - q_rows - kv_rows;
                    v[i] = dot(m->wv[layer] + (long)i * hidden, h, hidden) + (m->bv[layer] ? m->bv[layer][i] : 0.0f);
                }
            }

            /* Each task: one key head over one chunk of positions, for all the query heads that share it. It
             * rotates its own copy of their queries; the task holding position `pos` rotates the new key and
             * writes it and the value into the cache first (no other task reads that position). */
#pragma omp for schedule(static)
            for (int task = 0; task < kv_heads * chunks; task++) {
                int head = task / chunks, chunk = task % chunks;
                int start = chunk * per_chunk, stop = start + per_chunk < length ? start + per_chunk : length;
                float *out = partial + (long)task * group * (dim + 2);
                if (start >= stop) {
                    for (int g = 0; g < group; g++) {
                        out[(long)g * (dim + 2)] = -INFINITY;
                        out[(long)g * (dim + 2) + 1] = 0.0f;
                    }
                    continue;
                }
                float *head_keys = keys[layer] + head * head_stride[layer];
                float *head_values = values[layer] + head * head_stride[layer];
                if (chunk == last) {
                    float *key_slot = head_keys + (long)pos * dim, *value_slot = head_values + (long)pos * dim;
                    for (int d = 0; d < dim; d++) {
                        key_slot[d] = k[head * dim + d];
                        value_slot[d] = v[head * dim + d];
                    }
                    rotate(key_slot, cos_, sin_, dim);
                }
                float queries[MAX_GROUP * MAX_HEAD_DIM];
                for (int i = 0; i < group * dim; i++) queries[i] = q[(long)head * group * dim + i];
                for (int g = 0; g < group; g++) rotate(queries + g * dim, cos_, sin_, dim);
                attend(queries, head_keys, head_values, start, stop, group, dim, m->scaling, out);
            }

            merge_chunks(partial, heads, group, chunks, dim, attended);
#pragma omp for schedule(guided, 8)
            for (int r = 0; r < hidden; r++) x[r] += dot(m->wo[layer] + (long)r * q_rows, attended, q_rows);

            rms_norm(x, m->post_norm[layer], m->eps, hidden, h);
            /* Gate and up rows side by side, so each activation is ready where both were read. */
#pragma omp for schedule(guided, 8)
            for (int i = 0; i < inter; i++) {
                float g = dot(m->wg[layer] + (long)i * hidden, h, hidden);
                act[i] = g / (1.0f + expf(-g)) * dot(m->wu[layer] + (long)i * hidden, h, hidden);
            }

#pragma omp for schedule(guided, 8)
            for (int r = 0; r < hidden; r++) x[r] += dot(m->wd[layer] + (long)r * inter, act, inter);
        }

        rms_norm(x, m->final_norm, m->eps, hidden, h);
#pragma omp for schedule(guided, 8)
        for (int r = 0; r < m->vocab; r++)
            logits[r] = dot(m->lm_head + (long)r * hidden, h, hidden) + (m->lm_bias ? m->lm_bias[r] : 0.0f);
    }
    return 0;
}
