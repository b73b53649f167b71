# cython: language_level=3
"""Kraken checksum building blocks in C: mantissa digits and CRC-32.

A level contributes ``digits(price) + digits(qty)`` where ``digits(m)`` is the decimal text of
the mantissa (nothing for 0): that *is* "render at precision, drop '.', strip leading zeros".
The CRC is standard CRC-32 (reflected 0xEDB88320, init and final xor 0xFFFFFFFF), as zlib's,
done slicing-by-8 so no system zlib is needed.
"""

from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

cdef uint32_t TABLE[8][256]
cdef char PAIRS[200]


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
    for i in range(100):
        PAIRS[2 * i] = <char>(48 + i // 10)
        PAIRS[2 * i + 1] = <char>(48 + i % 10)


_build_tables()


cdef uint32_t crc32_update(uint32_t crc, const unsigned char* data, size_t length) noexcept nogil:
    """Continue a CRC-32 (pass 0 to start); returns the final, unsigned value."""
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


cdef char* write_digits(char* out, int64_t value) noexcept nogil:
    """Write the decimal digits of ``value`` >= 0 (nothing for 0); return the end."""
    cdef char buffer[20]
    cdef int i = 20, n
    cdef uint64_t v = <uint64_t>value
    while v >= 100:
        i -= 2
        memcpy(buffer + i, PAIRS + 2 * (v % 100), 2)
        v //= 100
    if v >= 10:
        i -= 2
        memcpy(buffer + i, PAIRS + 2 * v, 2)
    elif v > 0:
        i -= 1
        buffer[i] = <char>(48 + v)
    n = 20 - i
    memcpy(out, buffer + i, n)
    return out + n


def crc32(data: bytes) -> int:
    """CRC-32 of ``data`` (same as ``zlib.crc32``); exposed for tests."""
    return crc32_update(0, <const unsigned char*>data, len(data))


def digits(value: int) -> bytes:
    """The checksum digits of a mantissa; exposed for tests."""
    cdef char buffer[24]
    cdef char* end = write_digits(buffer, value)
    return buffer[:end - buffer]
