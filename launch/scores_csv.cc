#include "launch/scores_csv.h"

#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"

namespace instructflip::launch {
namespace {

std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  std::string field;
  while (std::getline(in, field, ',')) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.push_back("");
  return fields;
}

}  // namespace

std::vector<std::pair<std::string, std::vector<ScoredSample>>> ParseScoresCsv(const std::string& text,
                                                                              const std::string& path) {
  std::istringstream in(text);
  std::string line;
  IF_REQUIRE(std::getline(in, line), path, ": empty file (expected a header score,label,video_id[,domain][,sample_index][,spoof_type])");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 byte order mark, as spreadsheets save
  const std::vector<std::string> header = SplitCsvLine(line);
  std::map<std::string, int> column;
  for (size_t i = 0; i < header.size(); ++i) {
    IF_REQUIRE(header[i] == "score" || header[i] == "label" || header[i] == "video_id" || header[i] == "domain" ||
                   header[i] == "sample_index" || header[i] == "spoof_type",
               path, ":1: unknown column '", header[i],
               "' (expected score, label, video_id, domain, sample_index, spoof_type)");
    IF_REQUIRE(column.emplace(header[i], static_cast<int>(i)).second, path, ":1: column '", header[i], "' twice");
  }
  for (const char* required : {"score", "label", "video_id"})
    IF_REQUIRE(column.count(required), path, ":1: missing column '", required, "'");
  std::vector<std::pair<std::string, std::vector<ScoredSample>>> domains;
  std::map<std::string, size_t> index;
  struct Video {
    int64_t id;
    int label;
    int line;  // its first row
  };
  std::map<std::pair<std::string, std::string>, Video> videos;  // (domain, name) -> its id, label, first row
  for (int number = 2; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const std::vector<std::string> fields = SplitCsvLine(line);
    IF_REQUIRE(fields.size() == header.size(), path, ":", number, ": ", fields.size(), " fields, the header has ",
               header.size());
    ScoredSample s;
    try {
      size_t used = 0;
      const std::string& score = fields[column["score"]];
      s.score = std::stod(score, &used);
      IF_REQUIRE(used == score.size() && std::isfinite(s.score) && s.score >= 0 && s.score <= 1, path, ":", number,
                 ": score '", score, "' is not a probability in [0, 1]");
      const std::string& label = fields[column["label"]];
      IF_REQUIRE(label == "0" || label == "1", path, ":", number, ": label '", label, "' must be 0 (live) or 1 (spoof)");
      s.label = label == "1";
      if (column.count("sample_index")) {
        const std::string& sample = fields[column["sample_index"]];
        const long long value = std::stoll(sample, &used);
        IF_REQUIRE(used == sample.size() && value >= 0, path, ":", number, ": sample_index '", sample,
                   "' is not a non-negative integer");
      }
      if (column.count("spoof_type")) {
        const std::string& type = fields[column["spoof_type"]];
        const long long value = std::stoll(type, &used);
        IF_REQUIRE(used == type.size() && value >= -1 && value <= 10, path, ":", number, ": spoof_type '", type,
                   "' is not -1 (unknown) or 0..10");
      }
    } catch (const std::logic_error&) {  // stod/stoll on non-numbers
      IF_FAIL(path, ":", number, ": malformed number in '", line, "'");
    }
    const std::string domain = column.count("domain") ? fields[column["domain"]] : "all";
    const std::string& video = fields[column["video_id"]];
    IF_REQUIRE(!video.empty(), path, ":", number, ": empty video_id");
    const auto [known, first_row] =
        videos.emplace(std::make_pair(domain, video), Video{static_cast<int64_t>(videos.size()), s.label, number});
    IF_REQUIRE(known->second.label == s.label, path, ":", number, ": video '", video, "' (domain ", domain,
               ") is labelled ", s.label, " here and ", known->second.label, " at line ", known->second.line);
    s.video_id = known->second.id;
    auto [it, inserted] = index.emplace(domain, domains.size());
    if (inserted) domains.push_back({domain, {}});
    domains[it->second].second.push_back(s);
  }
  IF_REQUIRE(!domains.empty(), path, ": no scores after the header");
  return domains;
}

std::vector<std::pair<std::string, std::vector<ScoredSample>>> ReadScoresCsv(const std::string& path) {
  IF_REQUIRE(PathExists(path), "cannot open scores file '", path, "': it does not exist");
  return ParseScoresCsv(ReadFile(path), path);  // a device or FIFO is refused there
}

}  // namespace instructflip::launch
