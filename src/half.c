/* IEEE half precision <-> float (half.h). */
#include "half.h"

#include <string.h>

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 113;
            while (!(man & 1024)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 1023) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_f16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint16_t sign = (uint16_t)(u >> 16 & 0x8000);
    uint32_t exp = u >> 23 & 0xff, mant = u & 0x7fffff;
    if (exp == 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); /* inf, NaN (quiet) */
    int e = (int)exp - 127 + 15;                             /* the half's biased exponent */
    if (e >= 31) return sign | 0x7c00;                       /* too large: inf */
    if (e <= 0) {                                            /* a half subnormal, or zero */
        if (e < -10) return sign;
        mant |= 0x800000;                                    /* the implicit bit */
        int shift = 14 - e;                                  /* 24-bit significand to 10 bits >> (1 - e) */
        uint32_t h = mant >> shift, rest = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (h & 1))) h++;
        return sign | (uint16_t)h;                            /* a carry into the exponent is right */
    }
    uint32_t h = (uint32_t)e << 10 | mant >> 13, rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;     /* may carry up to inf: right */
    return sign | (uint16_t)h;
}


