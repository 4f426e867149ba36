#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "nlpengine/errors.h"

namespace nle {

namespace {
// The live mappings: start -> size.
std::mutex& mappings_mutex() {
  static std::mutex m;
  return m;
}
std::map<const uint8_t*, size_t>& mappings() {
  static std::map<const uint8_t*, size_t> m;
  return m;
}
}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ModelError(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw ModelError(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ModelError(path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw ModelError(path + ": cannot map into memory: " + std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
    const std::lock_guard<std::mutex> lock(mappings_mutex());
    mappings()[data_] = size_;
  }
  ::close(fd);  // the mapping stays valid after the descriptor is closed
}

MappedFile::~MappedFile() {
  if (!data_) return;
  const std::lock_guard<std::mutex> lock(mappings_mutex());
  mappings().erase(data_);
  ::munmap(const_cast<uint8_t*>(data_), size_);
}

bool release_mapped_pages(const void* data, size_t bytes) {
  const auto* begin = static_cast<const uint8_t*>(data);
  const std::lock_guard<std::mutex> lock(mappings_mutex());
  auto it = mappings().upper_bound(begin);  // the first mapping starting after begin ...
  if (it == mappings().begin()) return false;
  --it;  // ... so this one is the last starting at or before it
  if (begin + bytes > it->first + it->second) return false;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
  const uintptr_t last = (reinterpret_cast<uintptr_t>(begin) + bytes) / page * page;
  if (last <= first) return false;
  // A private, read-only file mapping: dropped pages read back from the file.
  return ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) == 0;
}

}  // namespace nle
