/* Deterministic RNG: xoshiro256** (Blackman & Vigna) with the 256-bit state filled by
 * splitmix64. State: ff_rng (4 x uint64). Outputs:
 *   next: 64 bits; uniform: float in [0,1) from the top 24 bits; uniform_double: top 53;
 *   below(bound): Lemire's multiply-shift with rejection (unbiased) on the top 32 bits;
 *   fill_uniform (len floats in [lo, hi)) / fill_normal (len floats, Box-Muller);
 *   permutation (len int32, Fisher-Yates).
 * Only integer arithmetic and correctly rounded float operations are used, except
 * log/cos/sin in Box-Muller, so every machine produces the same stream. */
#include "ff_internal.h"

#include <math.h>

/* Same rounding everywhere: a*b+c must not be fused on machines that have FMA. */
#pragma STDC FP_CONTRACT OFF

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ff_rng_seed(ff_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    /* The all-zero state is a fixed point of xoshiro; splitmix64 never yields four zeros
     * in a row, but keep the guarantee explicit. */
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
}

void ff_rng_seed_stream(ff_rng *r, uint64_t seed, uint64_t stream) {
    /* Hash seed and stream separately, then combine asymmetrically, so (seed, stream)
     * and (stream, seed) differ and neighbouring streams share no splitmix sequence. */
    uint64_t a = seed, b = stream ^ 0x6A09E667F3BCC909ull;
    uint64_t hs = splitmix64(&a);
    uint64_t ht = splitmix64(&b);
    ff_rng_seed(r, hs ^ rotl(ht, 23) ^ 0xBB67AE8584CAA73Bull);
}

uint64_t ff_rng_next(ff_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float ff_rng_uniform(ff_rng *r) {
    return (float)(ff_rng_next(r) >> 40) * 0x1.0p-24f;
}

double ff_rng_uniform_double(ff_rng *r) {
    return (double)(ff_rng_next(r) >> 11) * 0x1.0p-53;
}

uint32_t ff_rng_below(ff_rng *r, uint32_t bound) {
    if (bound <= 1) return 0;
    uint64_t m = (ff_rng_next(r) >> 32) * (uint64_t)bound;
    uint32_t low = (uint32_t)m;
    if (low < bound) {
        /* 2^32 mod bound: products whose low half falls below it are the biased ones. */
        uint32_t thresh = (uint32_t)(-bound) % bound;
        while (low < thresh) {
            m = (ff_rng_next(r) >> 32) * (uint64_t)bound;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void ff_rng_fill_uniform(ff_rng *r, size_t len, float *out, float lo, float hi) {
    float span = hi - lo;
    /* Rounding of lo + span*u can reach hi; keep the interval half-open. */
    float top = hi > lo ? nextafterf(hi, lo) : hi;
    for (size_t i = 0; i < len; i++) {
        float v = lo + span * ff_rng_uniform(r);
        out[i] = v < hi ? v : top;
    }
}

void ff_rng_fill_normal(ff_rng *r, size_t len, float *out, float mean, float std) {
    const double two_pi = 6.283185307179586476925286766559;
    for (size_t i = 0; i < len; i += 2) {
        /* 1 - u lies in (0, 1], so the log is finite. */
        double u1 = 1.0 - ff_rng_uniform_double(r);
        double u2 = ff_rng_uniform_double(r);
        double rad = sqrt(-2.0 * log(u1));
        double theta = two_pi * u2;
        out[i] = (float)((double)mean + (double)std * (rad * cos(theta)));
        if (i + 1 < len) out[i + 1] = (float)((double)mean + (double)std * (rad * sin(theta)));
    }
}

void ff_rng_permutation(ff_rng *r, size_t len, int32_t *out) {
    for (size_t i = 0; i < len; i++) out[i] = (int32_t)i;
    for (size_t i = len; i > 1; i--) {
        size_t j = ff_rng_below(r, (uint32_t)i);
        int32_t t = out[i - 1];
        out[i - 1] = out[j];
        out[j] = t;
    }
}
