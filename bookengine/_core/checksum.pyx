# cython: language_level=3
"""Kraken checksum building blocks in C: mantissa digits and CRC-32.

A level contributes ``digits(price) + digits(qty)`` where ``digits(m)`` is the decimal text of
the mantissa (nothing for 0): that *is* "render at precision, drop '.', strip leading zeros".
The CRC is standard CRC-32 (reflected 0xEDB88320, init and final xor 0xFFFFFFFF), as zlib's,
with no system zlib: runs of 64 bytes or more are folded with carry-less multiplication
(PCLMULQDQ) when the CPU has it, everything else goes through slicing-by-8 tables. Both books
(L2 and L3) hash through ``crc32_update``. The digit writers are inline C in checksum.pxd, so
each book compiles them into its own render loops.
"""

from libc.stdint cimport uint32_t
from libc.string cimport memcpy

cdef extern from *:
    """
    /* CRC-32 (zlib's: reflected 0xEDB88320) by carry-less multiplication, after V. Gopal,
       E. Ozturk et al., "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ
       Instruction", Intel, 2009: fold 64-byte blocks four lanes at a time, then to 128 and 64
       bits, then a Barrett reduction; the constants are the paper's for this polynomial
       (also used by zlib-ng and Chromium's zlib). Takes and returns the raw (inverted) CRC
       register; len >= 64 and a multiple of 16. Compiled for PCLMUL only in this function,
       used only when the CPU reports it (be_have_clmul). */
    #include <stddef.h>
    #include <stdint.h>
    #if defined(__GNUC__) && defined(__x86_64__)
    #include <immintrin.h>
    __attribute__((target("pclmul,sse4.1")))
    static uint32_t be_crc32_fold(uint32_t crc, const unsigned char *buf, size_t len) {
        const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596LL, 0x0154442bd4LL);
        const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009eLL, 0x01751997d0LL);
        const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124LL);
        const __m128i poly = _mm_set_epi64x(0x01f7011641LL, 0x01db710641LL);
        const __m128i low32 = _mm_setr_epi32(~0, 0, ~0, 0);
        __m128i x1, x2, x3, x4, x5, x6, x7, x8;
        x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
        x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
        x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
        x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
        x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
        buf += 64;
        len -= 64;
        while (len >= 64) {
            x5 = _mm_clmulepi64_si128(x1, k1k2, 0x00);
            x6 = _mm_clmulepi64_si128(x2, k1k2, 0x00);
            x7 = _mm_clmulepi64_si128(x3, k1k2, 0x00);
            x8 = _mm_clmulepi64_si128(x4, k1k2, 0x00);
            x1 = _mm_clmulepi64_si128(x1, k1k2, 0x11);
            x2 = _mm_clmulepi64_si128(x2, k1k2, 0x11);
            x3 = _mm_clmulepi64_si128(x3, k1k2, 0x11);
            x4 = _mm_clmulepi64_si128(x4, k1k2, 0x11);
            x1 = _mm_xor_si128(_mm_xor_si128(x1, x5),
                               _mm_loadu_si128((const __m128i *)(buf + 0x00)));
            x2 = _mm_xor_si128(_mm_xor_si128(x2, x6),
                               _mm_loadu_si128((const __m128i *)(buf + 0x10)));
            x3 = _mm_xor_si128(_mm_xor_si128(x3, x7),
                               _mm_loadu_si128((const __m128i *)(buf + 0x20)));
            x4 = _mm_xor_si128(_mm_xor_si128(x4, x8),
                               _mm_loadu_si128((const __m128i *)(buf + 0x30)));
            buf += 64;
            len -= 64;
        }
        x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x2), x5);
        x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x3), x5);
        x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x4), x5);
        while (len >= 16) {
            x2 = _mm_loadu_si128((const __m128i *)buf);
            x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
            x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x2), x5);
            buf += 16;
            len -= 16;
        }
        x2 = _mm_clmulepi64_si128(x1, k3k4, 0x10);
        x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
        x2 = _mm_srli_si128(x1, 4);
        x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, low32), k5k0, 0x00), x2);
        x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), poly, 0x10);
        x2 = _mm_clmulepi64_si128(_mm_and_si128(x2, low32), poly, 0x00);
        x1 = _mm_xor_si128(x1, x2);
        return (uint32_t)_mm_extract_epi32(x1, 1);
    }
    static int be_have_clmul(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    }
    #else
    static uint32_t be_crc32_fold(uint32_t crc, const unsigned char *buf, size_t len) {
        (void)buf; (void)len; return crc;
    }
    static int be_have_clmul(void) { return 0; }
    #endif
    """
    uint32_t be_crc32_fold(uint32_t crc, const unsigned char* buf, size_t length) noexcept nogil
    int be_have_clmul() noexcept nogil


cdef uint32_t TABLE[8][256]


cdef void _build_tables() noexcept:
    cdef uint32_t crc
    cdef int i, j, _
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
        TABLE[0][i] = crc
    for i in range(256):
        for j in range(1, 8):
            TABLE[j][i] = (TABLE[j - 1][i] >> 8) ^ TABLE[0][TABLE[j - 1][i] & 0xFF]


_build_tables()


cdef bint HAVE_CLMUL = be_have_clmul()


cdef uint32_t crc32_update(uint32_t crc, const unsigned char* data, size_t length) noexcept nogil:
    """Continue a CRC-32 (pass 0 to start); returns the final, unsigned value.

    The longest multiple of 16 bytes (when 64 or more) is folded by PCLMUL when the CPU has it,
    the rest goes through the tables: the same value as ``zlib.crc32`` either way.
    """
    cdef size_t chunk
    if HAVE_CLMUL and length >= 64:
        chunk = length & ~(<size_t>15)
        crc = ~be_crc32_fold(~crc, data, chunk)
        data += chunk
        length -= chunk
    return crc32_tables(crc, data, length)


cdef uint32_t crc32_tables(uint32_t crc, const unsigned char* data, size_t length) noexcept nogil:
    """``crc32_update`` by the slicing-by-8 tables only (the fallback without PCLMUL)."""
    cdef uint32_t lo, hi
    crc = ~crc
    while length >= 8:
        memcpy(&lo, data, 4)  # little-endian hosts (x86-64, aarch64)
        memcpy(&hi, data + 4, 4)
        lo ^= crc
        crc = (TABLE[7][lo & 0xFF] ^ TABLE[6][(lo >> 8) & 0xFF]
               ^ TABLE[5][(lo >> 16) & 0xFF] ^ TABLE[4][lo >> 24]
               ^ TABLE[3][hi & 0xFF] ^ TABLE[2][(hi >> 8) & 0xFF]
               ^ TABLE[1][(hi >> 16) & 0xFF] ^ TABLE[0][hi >> 24])
        data += 8
        length -= 8
    while length:
        crc = (crc >> 8) ^ TABLE[0][(crc ^ data[0]) & 0xFF]
        data += 1
        length -= 1
    return ~crc


def crc32(data, uint32_t value=0, bint fold=True):
    """CRC-32 of ``data`` continued from ``value`` (as ``zlib.crc32``); exposed for tests.

    Args:
        data: any contiguous bytes-like object.
        value: the CRC of the bytes before ``data`` (0 to start).
        fold: False to use the slicing tables only (else PCLMUL folds long runs when the CPU
            has it).
    """
    cdef const unsigned char[::1] view = data
    if view.shape[0] == 0:
        return value
    if fold:
        return crc32_update(value, &view[0], view.shape[0])
    return crc32_tables(value, &view[0], view.shape[0])


def clmul_available():
    """True when long runs are folded with PCLMULQDQ (else only the slicing tables are used)."""
    return bool(HAVE_CLMUL)


def digits(value: int) -> bytes:
    """The checksum digits of a mantissa; exposed for tests."""
    cdef char buffer[24]
    cdef char* end = write_digits(buffer, value)
    return buffer[:end - buffer]
