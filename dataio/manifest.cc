#include "dataio/manifest.h"

#include <nlohmann/json.hpp>

#include <set>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/schema.h"

namespace instructflip {
namespace {

using nlohmann::json;

// Field accessors that name the file and JSON path in their errors.
const json& Field(const json& object, const char* key, const std::string& where,
                  const std::string& file) {
  IF_REQUIRE(object.is_object(), file, ": '", where, "' must be an object");
  auto it = object.find(key);
  IF_REQUIRE(it != object.end(), file, ": missing field '", where, ".", key, "'");
  return *it;
}

int64_t IntField(const json& object, const char* key, const std::string& where,
                 const std::string& file, int64_t min_value) {
  const json& value = Field(object, key, where, file);
  IF_REQUIRE(value.is_number_integer(), file, ": field '", where, ".", key,
             "' must be an integer, got ", value.dump());
  const int64_t v = value.get<int64_t>();
  IF_REQUIRE(v >= min_value, file, ": field '", where, ".", key, "' must be >= ", min_value,
             ", got ", v);
  return v;
}

std::string StringField(const json& object, const char* key, const std::string& where,
                        const std::string& file) {
  const json& value = Field(object, key, where, file);
  IF_REQUIRE(value.is_string(), file, ": field '", where, ".", key, "' must be a string, got ",
             value.dump());
  return value.get<std::string>();
}

}  // namespace

int64_t Manifest::num_samples() const {
  int64_t total = 0;
  for (const ShardEntry& shard : shards) total += shard.num_samples;
  return total;
}

int Manifest::FindDomain(const std::string& name) const {
  for (size_t i = 0; i < domains.size(); ++i)
    if (domains[i].name == name) return static_cast<int>(i);
  return -1;
}


std::string ManifestToJson(const Manifest& m) {
  json out;
  out["schema_version"] = m.schema_version;
  out["image_size"] = m.image_size;
  out["jpeg_quality"] = m.jpeg_quality;
  out["num_samples"] = m.num_samples();
  out["domains"] = json::array();
  for (const DomainEntry& d : m.domains) {
    json counts;
    for (int split = 0; split < 2; ++split)
      counts[kSplits.Name(static_cast<Split>(split))] = {{"live", d.counts.counts[split][0]},
                                    {"spoof", d.counts.counts[split][1]}};
    out["domains"].push_back({{"name", d.name}, {"num_samples", d.counts.total()}, {"counts", counts}});
  }
  out["shards"] = json::array();
  for (const ShardEntry& s : m.shards)
    out["shards"].push_back({{"path", s.path},
                             {"num_samples", s.num_samples},
                             {"bytes", s.bytes},
                             {"crc32c", s.crc32c}});
  out["skipped"] = json::array();
  for (const SkippedInput& s : m.skipped)
    out["skipped"].push_back({{"source", s.source}, {"reason", s.reason}});
  return out.dump(2) + "\n";
}

Manifest ManifestFromJson(const std::string& text, const std::string& file) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 9E999
    IF_FAIL(file, ": not valid JSON: ", e.what());
  }
  Manifest m;
  m.schema_version = static_cast<int>(IntField(root, "schema_version", "", file, 1));
  IF_REQUIRE(m.schema_version == kSchemaVersion, file, ": field 'schema_version' is ",
             m.schema_version, ", this build reads version ", kSchemaVersion);
  const int64_t image_size = IntField(root, "image_size", "", file, 8);
  IF_REQUIRE(image_size <= 4096, file, ": field 'image_size' must be in 8..4096 (the writer's range), got ", image_size);
  m.image_size = static_cast<int>(image_size);
  const int64_t jpeg_quality = IntField(root, "jpeg_quality", "", file, 0);
  IF_REQUIRE(jpeg_quality <= 100, file, ": field 'jpeg_quality' must be in 0..100, got ", jpeg_quality);
  m.jpeg_quality = static_cast<int>(jpeg_quality);

  const json& domains = Field(root, "domains", "", file);
  IF_REQUIRE(domains.is_array(), file, ": field 'domains' must be an array");
  std::set<std::string> names;
  for (size_t i = 0; i < domains.size(); ++i) {
    const std::string where = "domains[" + std::to_string(i) + "]";
    DomainEntry d;
    d.name = StringField(domains[i], "name", where, file);
    // Names become file names (roc_NAME.csv, explanations/NAME/): the writers' rule, checked on reading too.
    IF_REQUIRE(IsValidDomainName(d.name), file, ": field '", where, ".name' = '", d.name, "' is not a domain name ",
               kDomainNameRule);
    IF_REQUIRE(names.insert(d.name).second, file, ": field '", where, ".name' = '", d.name, "' is a duplicate");
    const json& counts = Field(domains[i], "counts", where, file);
    for (int split = 0; split < 2; ++split) {
      const std::string split_where = where + ".counts." + kSplits.Name(static_cast<Split>(split));
      const json& per_split = Field(counts, kSplits.Name(static_cast<Split>(split)), where + ".counts", file);
      d.counts.counts[split][0] = IntField(per_split, "live", split_where, file, 0);
      d.counts.counts[split][1] = IntField(per_split, "spoof", split_where, file, 0);
    }
    // Written for readers of the file; a hand edit must not make it disagree.
    if (domains[i].contains("num_samples"))
      IF_REQUIRE(IntField(domains[i], "num_samples", where, file, 0) == d.counts.total(), file, ": field '", where,
                 ".num_samples' says ", domains[i]["num_samples"].dump(), " but its counts add up to ", d.counts.total());
    m.domains.push_back(std::move(d));
  }

  const json& shards = Field(root, "shards", "", file);
  IF_REQUIRE(shards.is_array(), file, ": field 'shards' must be an array");
  std::set<std::string> paths;
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string where = "shards[" + std::to_string(i) + "]";
    ShardEntry s;
    s.path = StringField(shards[i], "path", where, file);
    IF_REQUIRE(IsConfinedRelativePath(s.path), file, ": field '", where, ".path' = '", s.path,
               "' points outside the store (shard paths must be relative, without '..')");
    IF_REQUIRE(paths.insert(s.path).second, file, ": field '", where, ".path' = '", s.path,
               "' is listed twice");
    s.num_samples = IntField(shards[i], "num_samples", where, file, 1);
    s.bytes = IntField(shards[i], "bytes", where, file, 1);
    const int64_t crc = IntField(shards[i], "crc32c", where, file, 0);
    IF_REQUIRE(crc <= 0xFFFFFFFFll, file, ": field '", where, ".crc32c' out of range: ", crc);
    s.crc32c = static_cast<uint32_t>(crc);
    m.shards.push_back(std::move(s));
  }

  if (root.contains("skipped")) {
    const json& skipped = root["skipped"];
    IF_REQUIRE(skipped.is_array(), file, ": field 'skipped' must be an array");
    for (size_t i = 0; i < skipped.size(); ++i) {
      const std::string where = "skipped[" + std::to_string(i) + "]";
      m.skipped.push_back({StringField(skipped[i], "source", where, file),
                           StringField(skipped[i], "reason", where, file)});
    }
  }

  int64_t counted = 0;
  for (const DomainEntry& d : m.domains) counted += d.counts.total();
  IF_REQUIRE(counted == m.num_samples(), file, ": domain counts add up to ", counted,
             " samples but the shards hold ", m.num_samples());
  if (root.contains("num_samples"))
    IF_REQUIRE(IntField(root, "num_samples", "", file, 0) == counted, file, ": field 'num_samples' says ",
               root["num_samples"].dump(), " but the shards hold ", counted);
  return m;
}

Manifest ReadManifest(const std::string& dir) {
  const std::string file = JoinPath(dir, "manifest.json");
  IF_REQUIRE(PathExists(dir), "store directory '", dir, "' does not exist");
  IF_REQUIRE(PathExists(file), "'", dir, "' is not a store: no manifest.json");
  return ManifestFromJson(ReadFile(file), file);
}

}  // namespace instructflip
