#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace nle {

// A JSON number as int64: integers in int64's range, and floats with a whole value in it
// (some configs write 512.0). False for anything else (2**64 - 1, 1e300, 1.5, NaN), which
// a plain conversion would wrap or leave undefined.
bool json_to_int64(const nlohmann::json& value, int64_t* out);

// A JSON configuration file (config.json). Getters throw ModelError naming the
// file and the key when a key is missing or has the wrong type; a JSON null
// counts as missing, as transformers treats it.
class Config {
 public:
  static Config from_file(const std::string& path);
  Config(nlohmann::json json, std::string path);

  const std::string& path() const { return path_; }
  const nlohmann::json& json() const { return json_; }
  bool has(const std::string& key) const;

  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key) const;
  double get_float(const std::string& key, double fallback) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;

 private:
  const nlohmann::json& require(const std::string& key) const;
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const;

  nlohmann::json json_;
  std::string path_;
};

}  // namespace nle
