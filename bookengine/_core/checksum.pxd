# Kraken CRC32 building blocks: digit rendering of mantissas and CRC-32 (PCLMUL fold or tables).

from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef extern from *:
    """
    /* Decimal digits of mantissas, inlined into each book: the checksum renders one or two
       per order it hashes. */
    #include <stdint.h>
    #include <string.h>
    static const char be_digit_pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "4041424344454647484950515253545556575859606162636465666768697071727374757677787980"
        "81828384858687888990919293949596979899";
    static inline int be_digit_count(uint64_t v) {
        static const uint64_t powers[20] = {
            1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
            100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
            10000000000000ULL, 100000000000000ULL, 1000000000000000ULL,
            10000000000000000ULL, 100000000000000000ULL, 1000000000000000000ULL,
            10000000000000000000ULL};
        int guess;
        if (v == 0)
            return 0;
    #if defined(__GNUC__)
        /* floor(log10(2**bits)) by 1233/4096, then one comparison */
        guess = ((64 - __builtin_clzll(v)) * 1233) >> 12;
    #else
        for (guess = 0; guess < 19 && v >= powers[guess + 1]; guess++) {}
    #endif
        return guess + (v >= powers[guess]);
    }
    static inline char *be_write_digits(char *out, uint64_t v) {
        int n = be_digit_count(v);
        char *p = out + n;
        uint64_t q;
        while (v >= 100) {
            q = v / 100;
            p -= 2;
            memcpy(p, be_digit_pairs + 2 * (v - 100 * q), 2);
            v = q;
        }
        if (v >= 10) {
            p -= 2;
            memcpy(p, be_digit_pairs + 2 * v, 2);
        } else if (v > 0) {
            p[-1] = (char)('0' + v);
        }
        return out + n;
    }
    """
    int be_digit_count(uint64_t value) noexcept nogil
    char* be_write_digits(char* out, uint64_t value) noexcept nogil

cdef uint32_t crc32_update(uint32_t crc, const unsigned char* data, size_t length) noexcept nogil
cdef uint32_t crc32_tables(uint32_t crc, const unsigned char* data, size_t length) noexcept nogil


cdef inline char* write_digits(char* out, int64_t value) noexcept nogil:
    """Write the decimal digits of ``value`` >= 0 (nothing for 0); return the end."""
    return be_write_digits(out, <uint64_t>value)


cdef inline int digit_count(int64_t value) noexcept nogil:
    """How many digits write_digits writes for ``value`` >= 0 (none for 0)."""
    return be_digit_count(<uint64_t>value)
