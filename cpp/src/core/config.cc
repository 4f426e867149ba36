#include "core/config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "nlpengine/errors.h"

namespace nle {

bool json_to_int64(const nlohmann::json& value, int64_t* out) {
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (value.is_number_integer()) {
    *out = value.get<int64_t>();
    return true;
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    // [-2^63, 2^63): every double in it converts exactly.
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != std::trunc(d)) return false;
    *out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

Config Config::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(path + ": cannot open config file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(path + ": not valid JSON: " + e.what());
  }
  if (!json.is_object()) throw ModelError(path + ": expected a JSON object at the top level");
  return Config(std::move(json), path);
}

Config::Config(nlohmann::json json, std::string path) : json_(std::move(json)), path_(std::move(path)) {}

bool Config::has(const std::string& key) const {
  const auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

const nlohmann::json& Config::require(const std::string& key) const {
  const auto it = json_.find(key);
  if (it == json_.end() || it->is_null())
    throw ModelError(path_ + ": missing required key '" + key + "'");
  return *it;
}

void Config::wrong_type(const std::string& key, const char* expected) const {
  throw ModelError(path_ + ": key '" + key + "' must be " + expected + ", got " +
                   json_.at(key).dump());
}

int64_t Config::get_int(const std::string& key) const {
  int64_t value;
  if (json_to_int64(require(key), &value)) return value;
  wrong_type(key, "an integer");
}

int64_t Config::get_int(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}

double Config::get_float(const std::string& key) const {
  const auto& v = require(key);
  if (!v.is_number()) wrong_type(key, "a number");
  return v.get<double>();
}

double Config::get_float(const std::string& key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}

std::string Config::get_string(const std::string& key) const {
  const auto& v = require(key);
  if (!v.is_string()) wrong_type(key, "a string");
  return v.get<std::string>();
}

std::string Config::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

bool Config::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = json_.at(key);
  if (!v.is_boolean()) wrong_type(key, "true or false");
  return v.get<bool>();
}

}  // namespace nle
