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
};

// Gives back the memory of the pages wholly inside [data, data + bytes) when that range
// lies in a live MappedFile: a weight read once to make a converted or packed copy need
// not stay resident beside it (peak RSS). A later read of the range faults the pages in
// again from the file, so nothing is lost. Returns false, touching nothing, for any other
// memory.
bool release_mapped_pages(const void* data, size_t bytes);

}  // namespace nle
