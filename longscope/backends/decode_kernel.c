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

static inline __attribute__((always_inline)) float dot(const float *restrict w, const float *restrict x, int n) {
    /* Eight independent sums: the compiler keeps them in vector registers. */
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += w[i + j] * x[i + j];
    float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) total += w[i] * x[i];
    return total;
}

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
    float n = __builtin_roundf(x * 1.44269504089f);
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

/* Floats of scratch the step needs for `chunks` attention chunks per key head. */
long ls_scratch_floats(const Model *m, int chunks) {
    long q = (long)m->heads * m->head_dim, kv = (long)m->kv_heads * m->head_dim;
    long partial = (long)m->kv_heads * chunks * (m->heads / m->kv_heads) * (m->head_dim + 2);
    return 2L * m->hidden + q + 2 * kv + q + 2L * m->inter + m->inter + partial;
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

/* One key head's chunk of positions [start, stop) for its `group` query heads: the chunk's maximum score, the
 * sum of exp(score - max) and the weighted values, per query head, written to `out` (head_dim + 2 each). */
static void attend_chunk(const float *q, const float *keys, const float *values, int start, int stop, int group,
                         int dim, float scaling, float *out) {
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
        for (int p = 0; p < count; p++) {
            const float *key = keys + (long)(first + p) * dim;
            for (int g = 0; g < group; g++) scores[g][p] = dot(q + g * dim, key, dim) * scaling;
        }
        for (int g = 0; g < group; g++) {
            float top = best[g];
            for (int p = 0; p < count; p++) top = scores[g][p] > top ? scores[g][p] : top;
            float shrink = expf(best[g] - top); /* 0 on the first block: best is -inf */
            total[g] *= shrink;
            for (int d = 0; d < dim; d++) acc[g][d] *= shrink;
#pragma omp simd
            for (int p = 0; p < count; p++) scores[g][p] = exp_fast(scores[g][p] - top);
            for (int p = 0; p < count; p++) total[g] += scores[g][p];
            accumulate(acc[g], values + (long)first * dim, scores[g], count, dim);
            best[g] = top;
        }
    }
    for (int g = 0; g < group; g++) {
        float *slot = out + (long)g * (dim + 2);
        slot[0] = best[g];
        slot[1] = total[g];
        for (int d = 0; d < dim; d++) slot[2 + d] = acc[g][d];
    }
}

int ls_decode(const Model *m, const float *embedding, const float *cos_, const float *sin_, float *const *keys,
              float *const *values, const long *head_stride, int pos, int threads, int chunks, float *logits,
              float *scratch) {
    const int hidden = m->hidden, dim = m->head_dim, heads = m->heads, kv_heads = m->kv_heads;
    const int group = heads / kv_heads, inter = m->inter;
    const int q_rows = heads * dim, kv_rows = kv_heads * dim, qkv_rows = q_rows + 2 * kv_rows;
    float *x = scratch, *h = x + hidden, *q = h + hidden, *k = q + q_rows, *v = k + kv_rows;
    float *attended = v + kv_rows, *gate_up = attended + q_rows, *act = gate_up + 2 * inter;
    float *partial = act + inter;
    const int length = pos + 1;
    if (group > MAX_GROUP || dim > MAX_HEAD_DIM || chunks < 1) return 1;
    for (int i = 0; i < hidden; i++) x[i] = embedding[i];

#pragma omp parallel num_threads(threads)
    for (int layer = 0; layer < m->layers; layer++) {
#pragma omp single
        rms_norm(x, m->input_norm[layer], m->eps, hidden, h);

#pragma omp for schedule(static)
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

#pragma omp single
        {
            for (int head = 0; head < heads; head++) rotate(q + head * dim, cos_, sin_, dim);
            for (int head = 0; head < kv_heads; head++) {
                rotate(k + head * dim, cos_, sin_, dim);
                float *key_slot = keys[layer] + head * head_stride[layer] + (long)pos * dim;
                float *value_slot = values[layer] + head * head_stride[layer] + (long)pos * dim;
                for (int d = 0; d < dim; d++) {
                    key_slot[d] = k[head * dim + d];
                    value_slot[d] = v[head * dim + d];
                }
            }
        }

        /* Each task: one key head over one chunk of positions, for all the query heads that share it. */
        int per_chunk = (length + chunks - 1) / chunks;
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
            attend_chunk(q + (long)head * group * dim, keys[layer] + head * head_stride[layer],
                         values[layer] + head * head_stride[layer], start, stop, group, dim, m->scaling, out);
        }

#pragma omp for schedule(static)
        for (int qh = 0; qh < heads; qh++) {
            int head = qh / group, g = qh % group;
            float top = -INFINITY, total = 0.0f;
            for (int c = 0; c < chunks; c++) {
                float b = partial[((long)(head * chunks + c) * group + g) * (dim + 2)];
                top = b > top ? b : top;
            }
            float *result = attended + qh * dim;
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

#pragma omp for schedule(static)
        for (int r = 0; r < hidden; r++) x[r] += dot(m->wo[layer] + (long)r * q_rows, attended, q_rows);

#pragma omp single
        rms_norm(x, m->post_norm[layer], m->eps, hidden, h);

#pragma omp for schedule(static)
        for (int r = 0; r < 2 * inter; r++) {
            const float *row = r < inter ? m->wg[layer] + (long)r * hidden : m->wu[layer] + (long)(r - inter) * hidden;
            gate_up[r] = dot(row, h, hidden);
        }

#pragma omp for schedule(static)
        for (int i = 0; i < inter; i++) {
            float g = gate_up[i];
            act[i] = g / (1.0f + expf(-g)) * gate_up[inter + i];
        }

#pragma omp for schedule(static)
        for (int r = 0; r < hidden; r++) x[r] += dot(m->wd[layer] + (long)r * inter, act, inter);
    }

    rms_norm(x, m->final_norm, m->eps, hidden, h);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int r = 0; r < m->vocab; r++)
        logits[r] = dot(m->lm_head + (long)r * hidden, h, hidden) + (m->lm_bias ? m->lm_bias[r] : 0.0f);
    return 0;
}
