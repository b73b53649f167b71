# Kraken CRC32 building blocks: digit rendering of mantissas and CRC-32 (PCLMUL fold or tables).

from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef uint32_t crc32_update(uint32_t crc, const unsigned char* data, size_t length) noexcept nogil
cdef uint32_t crc32_tables(uint32_t crc, const unsigned char* data, size_t length) noexcept nogil
cdef char* write_digits(char* out, int64_t value) noexcept nogil
