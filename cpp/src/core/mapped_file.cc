#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "nlpengine/errors.h"

namespace nle {

namespace {
struct Mapping {
  size_t size;
  int fd;
  const std::string* path;
};
// The live mappings: start -> what is mapped there.
std::mutex& mappings_mutex() {
  static std::mutex m;
  return m;
}
std::map<const uint8_t*, Mapping>& mappings() {
  static std::map<const uint8_t*, Mapping> m;
  return m;
}

// The live mapping holding [begin, begin + bytes), or null (call with the mutex held).
const std::pair<const uint8_t* const, Mapping>* find_mapping(const uint8_t* begin, size_t bytes) {
  auto it = mappings().upper_bound(begin);  // the first mapping starting after begin ...
  if (it == mappings().begin()) return nullptr;
  --it;  // ... so this one is the last starting at or before it
  if (begin + bytes > it->first + it->second.size) return nullptr;
  return &*it;
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
    fd_ = fd;
    const std::lock_guard<std::mutex> lock(mappings_mutex());
    mappings()[data_] = Mapping{size_, fd_, &path_};
  } else {
    ::close(fd);
  }
}

MappedFile::~MappedFile() {
  if (!data_) return;
  const std::lock_guard<std::mutex> lock(mappings_mutex());
  mappings().erase(data_);
  ::munmap(const_cast<uint8_t*>(data_), size_);
  ::close(fd_);
}

bool release_mapped_pages(const void* data, size_t bytes) {
  const auto* begin = static_cast<const uint8_t*>(data);
  const std::lock_guard<std::mutex> lock(mappings_mutex());
  if (!find_mapping(begin, bytes)) return false;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
  const uintptr_t last = (reinterpret_cast<uintptr_t>(begin) + bytes) / page * page;
  if (last <= first) return false;
  // A private, read-only file mapping: dropped pages read back from the file.
  return ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) == 0;
}

bool in_mapped_file(const void* data, size_t bytes) {
  const std::lock_guard<std::mutex> lock(mappings_mutex());
  return find_mapping(static_cast<const uint8_t*>(data), bytes) != nullptr;
}

bool read_mapped_rows(void* dst, const void* table, size_t table_bytes, size_t row_bytes, const int64_t* ids,
                      int64_t n) {
  const auto* begin = static_cast<const uint8_t*>(table);
  Mapping mapping{};
  off_t table_offset = 0;
  {
    const std::lock_guard<std::mutex> lock(mappings_mutex());
    const auto* found = find_mapping(begin, table_bytes);
    if (!found) return false;
    mapping = found->second;
    table_offset = static_cast<off_t>(begin - found->first);
  }
  // The caller holds the table, so the file stays mapped (and its descriptor open).
  auto* out = static_cast<uint8_t*>(dst);
  bool failed = false;
#pragma omp parallel for schedule(static) if (n >= 256)
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* row = out + i * row_bytes;
    off_t at = table_offset + static_cast<off_t>(ids[i]) * static_cast<off_t>(row_bytes);
    size_t left = row_bytes;
    while (left > 0) {
      const ssize_t got = ::pread(mapping.fd, row, left, at);
      if (got <= 0) {
        if (got < 0 && errno == EINTR) continue;
#pragma omp atomic write
        failed = true;
        break;
      }
      row += got;
      at += got;
      left -= static_cast<size_t>(got);
    }
  }
  if (failed)
    throw ModelError(*mapping.path + ": cannot read an embedding row (was the file changed after loading?)");
  return true;
}

}  // namespace nle
