// Strict reading of YAML mappings into option structs: every key must be known
// (a typo is an error, not a silently ignored setting) and every value must
// have the right type; errors name the file, the dotted key and the value.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "dataio/base/choices.h"

namespace instructflip::launch {

class YamlSection {
 public:
  YamlSection(YAML::Node node, std::string file, std::string path);
  // From now on every Read also writes the value in force, given or default,
  // into `effective` under the same key (sections nest): the resolved
  // configuration holds every key, hidden defaults included, each written by
  // the call that reads it.
  void RecordInto(YAML::Node effective);
  // Sub-mapping `key` (empty section if absent); recorded under `key` too.
  YamlSection Section(const std::string& key);
  // Reads `key` into *out when present (keeps the default otherwise).
  void Read(const std::string& key, int* out);
  void Read(const std::string& key, int64_t* out);
  void Read(const std::string& key, uint64_t* out);  // seeds: all 64 bits, never negative
  void Read(const std::string& key, double* out);
  void Read(const std::string& key, bool* out);
  void Read(const std::string& key, std::string* out);
  void Read(const std::string& key, std::vector<std::string>* out);  // a list of strings
  // A name among `choices` (dataio/base/choices.h), recorded as that name:
  // "FILE: 'eval.style_question' must be uniform, ensemble, ... , got 'x'".
  template <typename E>
  void Read(const std::string& key, E* out, const Choices<E>& choices) {
    std::string name = choices.Name(*out);
    Read(key, &name);
    *out = choices.Parse(name, file_ + ": '" + Where(key) + "'");
  }
  // The raw node under `key` (undefined if absent), for values of several shapes.
  YAML::Node Raw(const std::string& key);
  // Errors if the mapping has a key that no Read/Section asked for.
  void RejectUnknownKeys() const;

 private:
  template <typename T>
  void ReadScalar(const std::string& key, T* out, const char* type);
  std::string Where(const std::string& key) const;

  template <typename T>
  void Record(const std::string& key, const T& value);

  YAML::Node node_;
  std::string file_, path_;
  std::set<std::string> known_;
  bool recording_ = false;
  YAML::Node effective_;
};

// The fewest significant digits that read back as exactly `value` ("0.001",
// "1e-07", never "0.0010000000000000000208").
std::string ShortestNumberText(double value);
// A number as YAML writes it back exactly (ShortestNumberText; a whole number
// keeps a ".0" so that it reads back as a float).
YAML::Node YamlNumber(double value);

// A list whose items must differ (domains: one listed twice would be trained
// on or scored twice): an Error naming `what` and the repeated item.
void RequireNoRepeats(const std::vector<std::string>& items, const std::string& what);

// Loads a YAML file whose root must be a mapping (error names the file).
YAML::Node LoadYamlFile(const std::string& path);

}  // namespace instructflip::launch
