#include "launch/yaml_reader.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <type_traits>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"

namespace instructflip::launch {

YamlSection::YamlSection(YAML::Node node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {
  IF_REQUIRE(!node_.IsDefined() || node_.IsNull() || node_.IsMap(), file_, ": '", path_.empty() ? "<root>" : path_,
             "' must be a mapping");
}

void YamlSection::RecordInto(YAML::Node effective) {
  recording_ = true;
  effective_ = effective;
}

template <typename T>
void YamlSection::Record(const std::string& key, const T& value) {
  if (!recording_) return;
  if constexpr (std::is_same_v<T, double>) {
    effective_[key] = YamlNumber(value);
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const std::string& item : value) list.push_back(item);
    list.SetStyle(YAML::EmitterStyle::Flow);
    effective_[key] = list;
  } else {
    effective_[key] = value;
  }
}

std::string ShortestNumberText(double value) {
  char text[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}

YAML::Node YamlNumber(double value) {
  std::string out = ShortestNumberText(value);
  // A whole number stays a float when read back ("2" would become an int field's value).
  if (out.find_first_of(".eEn") == std::string::npos) out += ".0";
  return YAML::Node(out);
}

std::string YamlSection::Where(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

YamlSection YamlSection::Section(const std::string& key) {
  known_.insert(key);
  const YAML::Node child = node_.IsMap() ? node_[key] : YAML::Node();
  YamlSection section(child, file_, Where(key));
  if (recording_) section.RecordInto(effective_[key]);
  return section;
}

template <typename T>
void YamlSection::ReadScalar(const std::string& key, T* out, const char* type) {
  known_.insert(key);
  if (node_.IsMap() && node_[key]) {
    const YAML::Node value = node_[key];
    IF_REQUIRE(value.IsScalar(), file_, ": '", Where(key), "' must be a ", type);
    try {
      *out = value.as<T>();
    } catch (const YAML::Exception&) {
      IF_FAIL(file_, ": '", Where(key), "' must be a ", type, ", got '", value.Scalar(), "'");
    }
  }
  Record(key, *out);
}

void YamlSection::Read(const std::string& key, int* out) { ReadScalar(key, out, "whole number"); }
void YamlSection::Read(const std::string& key, int64_t* out) { ReadScalar(key, out, "whole number"); }
void YamlSection::Read(const std::string& key, uint64_t* out) {
  // yaml-cpp would wrap "-1" around to 2^64 - 1.
  known_.insert(key);
  if (node_.IsMap() && node_[key] && node_[key].IsScalar() && node_[key].Scalar().rfind('-', 0) == 0)
    IF_FAIL(file_, ": '", Where(key), "' must be a non-negative whole number, got '", node_[key].Scalar(), "'");
  ReadScalar(key, out, "non-negative whole number");
}
void YamlSection::Read(const std::string& key, double* out) { ReadScalar(key, out, "number"); }
void YamlSection::Read(const std::string& key, bool* out) { ReadScalar(key, out, "boolean"); }
void YamlSection::Read(const std::string& key, std::string* out) { ReadScalar(key, out, "string"); }

void YamlSection::Read(const std::string& key, std::vector<std::string>* out) {
  known_.insert(key);
  if (node_.IsMap() && node_[key] && !node_[key].IsNull()) {
    const YAML::Node value = node_[key];
    IF_REQUIRE(value.IsSequence(), file_, ": '", Where(key), "' must be a list");
    out->clear();
    for (const auto& item : value) {
      IF_REQUIRE(item.IsScalar(), file_, ": '", Where(key), "' must be a list of strings");
      out->push_back(item.as<std::string>());
    }
  }
  Record(key, *out);
}

YAML::Node YamlSection::Raw(const std::string& key) {
  known_.insert(key);
  return node_.IsMap() ? node_[key] : YAML::Node();
}

void YamlSection::RejectUnknownKeys() const {
  if (!node_.IsMap()) return;
  for (const auto& item : node_) {
    IF_REQUIRE(item.first.IsScalar(), file_, ": '", path_.empty() ? "<root>" : path_,
               "' has a key that is not a name (empty, a list or a mapping)");
    const std::string key = item.first.as<std::string>();
    IF_REQUIRE(known_.count(key), file_, ": unknown key '", Where(key), "'");
  }
}

void RequireNoRepeats(const std::vector<std::string>& items, const std::string& what) {
  std::set<std::string> seen;
  for (const std::string& item : items) IF_REQUIRE(seen.insert(item).second, what, " lists '", item, "' twice");
}

namespace {

// Every mapping key a name, and each once: yaml-cpp accepts a list as a key
// (failing later, unnamed, where a key is read as text) and a key given twice
// (one of them silently lost). A configuration is small and shallow: aliases
// that nest without end (`x: &x [*x]`) or multiply (a "billion laughs") are
// refused by depth and by count before anything walks them.
void RequireNamedUniqueKeys(const YAML::Node& node, const std::string& where, const std::string& file,
                            int depth, int64_t* budget) {
  IF_REQUIRE(depth <= 64 && --*budget >= 0, file, ": nested deeper than 64 levels or more than a million values at '",
             where, "' (aliases that repeat?)");
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i)
      RequireNamedUniqueKeys(node[i], where + "[" + std::to_string(i) + "]", file, depth + 1, budget);
    return;
  }
  if (!node.IsMap()) return;
  std::set<std::string> keys;
  for (const auto& item : node) {
    IF_REQUIRE(item.first.IsScalar(), file, ": '", where.empty() ? "<root>" : where,
               "' has a key that is not a name (empty, a list or a mapping)");
    const std::string key = item.first.Scalar();
    const std::string path = where.empty() ? key : where + "." + key;
    IF_REQUIRE(keys.insert(key).second, file, ": key '", path, "' is given twice");
    RequireNamedUniqueKeys(item.second, path, file, depth + 1, budget);
  }
}

}  // namespace

YAML::Node LoadYamlFile(const std::string& path) {
  IF_REQUIRE(PathExists(path), "config file '", path, "' does not exist");
  IF_REQUIRE(!std::filesystem::is_directory(path), "config file '", path, "' is a directory");
  const std::string text = ReadFile(path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    IF_FAIL(path, ": not valid YAML: ", e.what());
  }
  IF_REQUIRE(root.IsMap(), path, ": the top level must be a mapping");
  int64_t budget = 1'000'000;
  RequireNamedUniqueKeys(root, "", path, 0, &budget);
  return root;
}

}  // namespace instructflip::launch
