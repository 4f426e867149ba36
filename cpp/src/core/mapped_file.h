#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace nle {

// A read-only memory mapping of a whole file. Pages are loaded on first touch,
// so mapping a model costs almost nothing until its weights are used.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;  // kept open for read_mapped_rows
};

// Gives back the memory of the pages wholly inside [data, data + bytes) when that range
// lies in a live MappedFile: a weight read once to make a converted or packed copy need
// not stay resident beside it (peak RSS). A later read of the range faults the pages in
// again from the file, so nothing is lost. Returns false, touching nothing, for any other
// memory.
bool release_mapped_pages(const void* data, size_t bytes);

// Whether [data, data + bytes) lies in a live MappedFile (a weight read from its file in
// place, not a copy).
bool in_mapped_file(const void* data, size_t bytes);

// dst row i = row ids[i] (each row_bytes long) of the table of table_bytes at `table`,
// read from the file where the table lies in a live MappedFile; returns false, copying
// nothing, for any other memory. For large tables read a few rows at a time (an
// embedding): a read through the mapping brings in the pages around each row as well
// (the kernel's fault-around, 64 KB), so the lookups of one batch of random token ids left
// most of bart-base's 154 MB embedding resident. Throws ModelError naming the file where a
// read fails (the file shrank since it was mapped). Indices must be in range.
bool read_mapped_rows(void* dst, const void* table, size_t table_bytes, size_t row_bytes, const int64_t* ids,
                      int64_t n);

}  // namespace nle
