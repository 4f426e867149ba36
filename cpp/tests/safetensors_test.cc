// The safetensors reader on a good file and on every kind of corrupt one: each
// must raise ModelError naming the file (and the tensor), never crash.
#include "core/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/weight_store.h"
#include "test_utils.h"

namespace nle::test {

namespace {

std::string encode_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string path = temp_path(name);
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Two tensors: "a" F32 [2, 3] = 0..5 and "b" I64 [2] = {7, -1}.
std::string good_bytes() {
  std::string data(24 + 16, '\0');
  for (int i = 0; i < 6; ++i) {
    const float v = static_cast<float>(i);
    std::memcpy(&data[4 * i], &v, 4);
  }
  const int64_t b[2] = {7, -1};
  std::memcpy(&data[24], b, 16);
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("b":{"dtype":"I64","shape":[2],"data_offsets":[24,40]}})";
  return encode_file(header, data);
}

void expect_model_error(const std::string& path, const std::string& fragment) {
  try {
    SafetensorsFile file(path);
    FAIL() << "expected ModelError for " << path;
  } catch (const ModelError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  }
}

}  // namespace

TEST(SafetensorsTest, ReadsTensorsWithoutCopying) {
  const std::string path = write_file("good.safetensors", good_bytes());
  SafetensorsFile file(path);
  EXPECT_TRUE(file.contains("a"));
  EXPECT_EQ(file.metadata().at("format"), "pt");
  const Tensor a = file.get("a");
  EXPECT_EQ(a.dtype(), DType::F32);
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(a.data<float>()[5], 5.f);
  const Tensor b = file.get("b");
  EXPECT_EQ(b.data<int64_t>()[0], 7);
  EXPECT_EQ(b.data<int64_t>()[1], -1);
  std::remove(path.c_str());
}

TEST(SafetensorsTest, ViewsOutliveTheFileObject) {
  const std::string path = write_file("outlive.safetensors", good_bytes());
  Tensor a;
  {
    SafetensorsFile file(path);
    a = file.get("a");
  }
  EXPECT_EQ(a.data<float>()[4], 4.f);
}

TEST(SafetensorsTest, MissingTensorIsNamed) {
  const std::string path = write_file("missing.safetensors", good_bytes());
  SafetensorsFile file(path);
  try {
    file.get("encoder.layer.0.attention.self.query.weight");
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.layer.0.attention.self.query.weight"), std::string::npos);
  }
}

TEST(SafetensorsTest, EmptyFile) { expect_model_error(write_file("empty.safetensors", ""), "truncated"); }

TEST(SafetensorsTest, TruncatedInsideLengthPrefix) {
  expect_model_error(write_file("t1.safetensors", good_bytes().substr(0, 5)), "truncated");
}

TEST(SafetensorsTest, TruncatedInsideHeader) {
  expect_model_error(write_file("t2.safetensors", good_bytes().substr(0, 40)), "truncated");
}

TEST(SafetensorsTest, TruncatedInsideData) {
  const std::string bytes = good_bytes();
  expect_model_error(write_file("t3.safetensors", bytes.substr(0, bytes.size() - 10)), "'b'");
}

TEST(SafetensorsTest, HeaderIsNotJson) {
  expect_model_error(write_file("notjson.safetensors", encode_file("{not json at all", std::string(8, '\0'))),
                     "not valid JSON");
}

TEST(SafetensorsTest, HeaderIsNotAnObject) {
  expect_model_error(write_file("array.safetensors", encode_file("[1, 2]", "")), "not a JSON object");
}

TEST(SafetensorsTest, HugeHeaderLength) {
  std::string bytes = good_bytes();
  for (int i = 0; i < 8; ++i) bytes[i] = '\xff';
  expect_model_error(write_file("huge.safetensors", bytes), "header length");
}

TEST(SafetensorsTest, OffsetsOutsideTheFile) {
  const std::string header = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[1000,1016]}})";
  expect_model_error(write_file("range.safetensors", encode_file(header, std::string(16, '\0'))), "'w'");
}

TEST(SafetensorsTest, OffsetsDisagreeWithShape) {
  const std::string header = R"({"w":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}})";
  expect_model_error(write_file("size.safetensors", encode_file(header, std::string(16, '\0'))), "need 20");
}

TEST(SafetensorsTest, ReversedOffsets) {
  const std::string header = R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}})";
  expect_model_error(write_file("rev.safetensors", encode_file(header, std::string(16, '\0'))), "reversed");
}

TEST(SafetensorsTest, UnknownDtype) {
  const std::string header = R"({"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})";
  expect_model_error(write_file("dtype.safetensors", encode_file(header, std::string(16, '\0'))), "F128");
}

TEST(SafetensorsTest, NegativeShapeAndBadOffsetTypes) {
  expect_model_error(write_file("neg.safetensors",
                                encode_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                                            std::string(4, '\0'))),
                     "shape");
  expect_model_error(write_file("str.safetensors",
                                encode_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":["0",4]}})",
                                            std::string(4, '\0'))),
                     "data_offsets");
  expect_model_error(write_file("noshape.safetensors",
                                encode_file(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", std::string(4, '\0'))),
                     "shape");
}

TEST(SafetensorsTest, ShapeOverflow) {
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})";
  expect_model_error(write_file("overflow.safetensors", encode_file(header, std::string(4, '\0'))), "'w'");
}

TEST(SafetensorsTest, MissingFile) { expect_model_error(temp_path("does_not_exist.safetensors"), "cannot open"); }

// A mapped range's pages can be given back and read again from the file; memory that
// is not a mapping is never touched.
TEST(MappedFileTest, ReleasedPagesReadBackFromTheFile) {
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::string bytes(5 * page + 123, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 31 % 251);
  const std::string path = write_file("pages.bin", bytes);
  MappedFile file(path);
  ASSERT_EQ(std::memcmp(file.data(), bytes.data(), bytes.size()), 0);
  EXPECT_TRUE(release_mapped_pages(file.data() + 100, 3 * page));        // two whole pages inside
  EXPECT_FALSE(release_mapped_pages(file.data() + 100, 200));            // no whole page inside
  EXPECT_FALSE(release_mapped_pages(file.data() + page, bytes.size()));  // runs past the end
  EXPECT_TRUE(release_mapped_pages(file.data(), bytes.size()));
  EXPECT_EQ(std::memcmp(file.data(), bytes.data(), bytes.size()), 0);
  std::vector<char> heap(bytes.begin(), bytes.end());
  EXPECT_FALSE(release_mapped_pages(heap.data(), heap.size()));
  EXPECT_EQ(std::memcmp(heap.data(), bytes.data(), bytes.size()), 0);
}

// Rows of a mapped table read from the file equal the mapped rows; other memory is not
// read; a file cut short after mapping gives a ModelError naming it, where reading the
// mapping past its end would kill the process (SIGBUS).
TEST(MappedFileTest, ReadsRowsFromTheFile) {
  const int64_t rows = 300, dim = 37;  // rows of 148 bytes: not page-aligned
  std::vector<float> table(static_cast<size_t>(rows * dim));
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<float>(i) * 0.5f - 7.f;
  const std::string head(40, 'h');  // the table at an offset in the file
  std::string bytes = head + std::string(reinterpret_cast<const char*>(table.data()), table.size() * 4);
  const std::string path = write_file("rows.bin", bytes);
  MappedFile file(path);
  const uint8_t* mapped = file.data() + head.size();
  const std::vector<int64_t> ids = {0, 299, 5, 5, 123, 1, 298};
  std::vector<float> out(ids.size() * dim, -1.f);
  ASSERT_TRUE(read_mapped_rows(out.data(), mapped, table.size() * 4, dim * 4, ids.data(),
                               static_cast<int64_t>(ids.size())));
  for (size_t i = 0; i < ids.size(); ++i)
    EXPECT_EQ(std::memcmp(out.data() + i * dim, table.data() + ids[i] * dim, dim * 4), 0) << "row " << i;
  // 600 rows: the parallel reads.
  std::vector<int64_t> many(600);
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int64_t>((i * 7) % rows);
  std::vector<float> all(many.size() * dim);
  ASSERT_TRUE(read_mapped_rows(all.data(), mapped, table.size() * 4, dim * 4, many.data(), 600));
  for (size_t i = 0; i < many.size(); ++i)
    ASSERT_EQ(std::memcmp(all.data() + i * dim, table.data() + many[i] * dim, dim * 4), 0) << "row " << i;
  EXPECT_FALSE(read_mapped_rows(out.data(), table.data(), table.size() * 4, dim * 4, ids.data(), 1));
  EXPECT_FALSE(read_mapped_rows(out.data(), mapped, table.size() * 4 + 4096, dim * 4, ids.data(), 1));

  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(head.size() + 10 * dim * 4)), 0);
  const int64_t past_the_end = 200;
  try {
    read_mapped_rows(out.data(), mapped, table.size() * 4, dim * 4, &past_the_end, 1);
    FAIL() << "no error for a row past the end of the file";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("rows.bin"), std::string::npos) << e.what();
  }
}

TEST(WeightStoreTest, DirectoryWithoutWeights) {
  try {
    WeightStore::open_directory("/");
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos);
  }
}

}  // namespace nle::test
