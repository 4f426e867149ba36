// LoRA adapters: the merge math on a hand-made adapter, the WeightStore overlay,
// and validation errors naming the file and tensor.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/adapter.h"
#include "core/weight_store.h"
#include "test_utils.h"

namespace nle::test {

namespace {

struct NamedTensor {
  std::string name;
  Shape shape;
  std::vector<float> values;
};

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& t : tensors) {
    const size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(float));
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  std::string h = header.dump();
  std::string out(8, '\0');
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += h + data;
  std::ofstream(path, std::ios::binary).write(out.data(), static_cast<std::streamsize>(out.size()));
}

std::string make_dir(const std::string& name) {
  const std::string dir = temp_path(name);
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

// out = 3, in = 2, r = 2, lora_alpha = 4 -> scaling 2.
const std::vector<float> kW = {1, 2, 3, 4, 5, 6};   // (3, 2)
const std::vector<float> kA = {1, 0, 0, 1};         // (2, 2) identity
const std::vector<float> kB = {1, 2, 3, 4, 5, 6};   // (3, 2)
const std::string kModule = "encoder.layer.0.attention.self.query";

void write_base(const std::string& dir) {
  write_safetensors(dir + "/model.safetensors",
                    {{kModule + ".weight", {3, 2}, kW}, {kModule + ".bias", {3}, {0, 0, 0}}});
}

void write_adapter(const std::string& dir, nlohmann::json config, const std::vector<NamedTensor>& tensors) {
  std::ofstream(dir + "/adapter_config.json") << config.dump();
  write_safetensors(dir + "/adapter_model.safetensors", tensors);
}

nlohmann::json good_config() {
  return {{"peft_type", "LORA"}, {"r", 2}, {"lora_alpha", 4}, {"target_modules", {"query", "value"}},
          {"bias", "none"}, {"task_type", "TOKEN_CLS"}};
}

std::vector<NamedTensor> good_tensors() {
  return {{"base_model.model." + kModule + ".lora_A.weight", {2, 2}, kA},
          {"base_model.model." + kModule + ".lora_B.weight", {3, 2}, kB},
          {"base_model.model.classifier.weight", {1, 2}, {7, 8}}};
}

std::vector<float> values(const Tensor& t) {
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

void expect_error(const std::string& dir, const std::string& base, const std::vector<std::string>& fragments) {
  try {
    WeightStore store = WeightStore::open_directory(base);
    LoraAdapter::open_directory(dir).apply(store, "bert.");
    FAIL() << "expected ModelError";
  } catch (const ModelError& e) {
    const std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
}

}  // namespace

TEST(AdapterTest, MergeWeightMath) {
  // W + s * B·A against a naive loop, for shapes whose rows are shorter than, a multiple of
  // and not a multiple of the 32-column blocks of ops/low_rank_update.h.
  for (const auto& [out, in, r] : std::vector<std::array<int64_t, 3>>{{5, 7, 3}, {37, 100, 16}, {64, 384, 8}}) {
    const auto w = random_floats(out * in, 1), a = random_floats(r * in, 2), b = random_floats(out * r, 3);
    Tensor tw(DType::F32, {out, in}), ta(DType::F32, {r, in}), tb(DType::F32, {out, r});
    std::memcpy(tw.data<float>(), w.data(), tw.nbytes());
    std::memcpy(ta.data<float>(), a.data(), ta.nbytes());
    std::memcpy(tb.data<float>(), b.data(), tb.nbytes());
    const Tensor merged = merge_lora_weight(tw, ta, tb, 0.75f);
    std::vector<float> expected(w);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        double acc = 0;
        for (int64_t k = 0; k < r; ++k) acc += b[o * r + k] * a[k * in + i];
        expected[o * in + i] += static_cast<float>(0.75 * acc);
      }
    EXPECT_LT(max_abs_diff(values(merged), expected), 1e-5f) << out << "x" << in << " rank " << r;
    EXPECT_EQ(values(tw), w);  // the base weight is untouched
  }
}

TEST(AdapterTest, AppliesHandMadeAdapter) {
  const std::string base = make_dir("adapter_base"), dir = make_dir("adapter_good");
  write_base(base);
  write_adapter(dir, good_config(), good_tensors());
  WeightStore store = WeightStore::open_directory(base);
  const Tensor before = store.get(kModule + ".weight");
  const LoraAdapter adapter = LoraAdapter::open_directory(dir);
  EXPECT_EQ(adapter.rank(), 2);
  EXPECT_DOUBLE_EQ(adapter.scaling(), 2.0);
  EXPECT_EQ(adapter.task_type(), "TOKEN_CLS");
  adapter.apply(store, "bert.");
  // W + 2 * B·I = W + 2B
  EXPECT_EQ(values(store.get(kModule + ".weight")), (std::vector<float>{3, 6, 9, 12, 15, 18}));
  EXPECT_EQ(values(before), kW);  // the mapped view still holds the base values
  EXPECT_FALSE(store.is_overridden(kModule + ".bias"));
  ASSERT_TRUE(store.contains("classifier.weight"));
  EXPECT_EQ(values(store.get("classifier.weight")), (std::vector<float>{7, 8}));
  EXPECT_EQ(store.file_for("classifier.weight"), dir + "/adapter_model.safetensors");
}

TEST(AdapterTest, RsLoraScaling) {
  const std::string dir = make_dir("adapter_rslora");
  auto config = good_config();
  config["use_rslora"] = true;
  write_adapter(dir, config, good_tensors());
  EXPECT_NEAR(LoraAdapter::open_directory(dir).scaling(), 4.0 / std::sqrt(2.0), 1e-12);
}

TEST(AdapterTest, RejectsBadAdapters) {
  const std::string base = make_dir("adapter_bad_base");
  write_base(base);
  const std::string weights = "/adapter_model.safetensors";
  const std::string a_name = "base_model.model." + kModule + ".lora_A.weight";
  const std::string b_name = "base_model.model." + kModule + ".lora_B.weight";
  {
    const std::string dir = make_dir("adapter_bad_r");
    auto config = good_config();
    config["r"] = 4;
    write_adapter(dir, config, good_tensors());
    expect_error(dir, base, {dir + weights, a_name, "r=4"});
  }
  {
    const std::string dir = make_dir("adapter_bad_type");
    auto config = good_config();
    config["peft_type"] = "IA3";
    write_adapter(dir, config, good_tensors());
    expect_error(dir, base, {dir + "/adapter_config.json", "peft_type"});
  }
  {
    const std::string dir = make_dir("adapter_dora");
    auto config = good_config();
    config["use_dora"] = true;
    write_adapter(dir, config, good_tensors());
    expect_error(dir, base, {dir + "/adapter_config.json", "use_dora"});
  }
  {
    const std::string dir = make_dir("adapter_no_b");
    auto tensors = good_tensors();
    tensors.erase(tensors.begin() + 1);
    write_adapter(dir, good_config(), tensors);
    expect_error(dir, base, {dir + weights, "missing tensor", b_name});
  }
  {
    const std::string dir = make_dir("adapter_shape");
    auto tensors = good_tensors();
    tensors[1] = {b_name, {2, 2}, {1, 2, 3, 4}};
    write_adapter(dir, good_config(), tensors);
    expect_error(dir, base, {dir + weights, b_name, "[2, 2]", "[3, 2]"});
  }
  {
    const std::string dir = make_dir("adapter_unknown");
    const std::string other = "base_model.model.encoder.layer.9.attention.self.value";
    write_adapter(dir, good_config(),
                  {{other + ".lora_A.weight", {2, 2}, kA}, {other + ".lora_B.weight", {3, 2}, kB}});
    expect_error(dir, base, {dir + weights, other + ".lora_A.weight", "unknown target"});
  }
  {
    const std::string dir = make_dir("adapter_untargeted");
    auto config = good_config();
    config["target_modules"] = {"value"};
    write_adapter(dir, config, good_tensors());
    expect_error(dir, base, {dir + weights, a_name, "target_modules"});
  }
}

}  // namespace nle::test
