// Ingest: raw FAS datasets (CelebA-Spoof labels, list files, CSV) -> store.
//
// Two phases, so that bad input never touches the store:
//   1. Plan: read the label/list/CSV file and turn every line into an Entry
//      (resolved path + validated SampleAttributes). Any malformed line or
//      label throws here, naming file:line (or file and key) and the value.
//      Video ids are assigned at the end of this phase (they depend on all
//      lines of a domain).
//   2. Run: worker threads read, decode, crop, resize and JPEG-encode entries;
//      the calling thread hands the results to StoreWriter strictly in input
//      order (RunInOrder), so the store's bytes do not depend on scheduling.
//      A bounded window of results in flight keeps memory flat for datasets
//      of hundreds of thousands of images. Unreadable inputs become manifest
//      "skipped" records, not errors. Commit() at the end is the only point at
//      which the store changes.
//
// JPEG files are decoded with TurboJPEG (DecodeJpeg) even when OpenCV is
// available: libjpeg inside cv::imdecode returns a truncated file as a
// half-grey image with only a warning, DecodeJpeg rejects it. (EXIF rotation is
// therefore not applied; FAS frames do not carry it.) OpenCV handles the other
// image formats, videos and resizing; without it (INSTRUCTFLIP_HAVE_OPENCV=0)
// only JPEG images are accepted, checked in phase 1, and resizing uses a small
// area-averaging resampler.
#include "dataio/producers/ingest.h"

#ifndef INSTRUCTFLIP_HAVE_OPENCV
#error "the build must define INSTRUCTFLIP_HAVE_OPENCV to 0 or 1"
#endif

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#if INSTRUCTFLIP_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

#include "dataio/base/check.h"
#include "dataio/base/ordered_parallel.h"
#include "dataio/base/file_util.h"
#include "dataio/image_codec.h"
#include "dataio/jpeg_codec.h"
#include "dataio/schema.h"
#include "dataio/store_writer.h"

namespace instructflip {
namespace {

namespace fs = std::filesystem;

#if INSTRUCTFLIP_HAVE_OPENCV
// Why a file is skipped is its one reason (the manifest, predict's error cell):
// OpenCV's own warnings would add lines per bad file on stderr, and its
// exception texts span lines.
void QuietOpenCv() {
  static const bool quiet = [] {
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
    return true;
  }();
  (void)quiet;
}

std::string OneLine(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}
#endif

// ---------------------------------------------------------------------------
// Phase 1: plan
// ---------------------------------------------------------------------------

// One input file, fully labelled, before any pixel is read.
struct Entry {
  std::string path;      // file to open (source resolved against the root)
  std::string box_path;  // CelebA-Spoof face box file; "" = none expected
  bool is_video = false;
  int domain = 0;               // index into Plan::domains
  std::string video_key;        // group for an automatic video id; "" = id already set
  SampleAttributes attributes;  // source = the path as written in the input
  std::string where;            // file:line (or file and key) that listed it
};

struct Plan {
  std::vector<std::string> domains;  // new domains, in order of first appearance
  std::vector<Entry> entries;        // input order = store order
};

// A list/CSV line without an attack type still needs one: the schema has no
// "unknown attack" code. ingest.h documents the choice.
// A spoof without a type column: unknown (no content ground truth), not a guess.
constexpr int kDefaultSpoofType = kUnknownSpoofType;

constexpr std::array<const char*, 10> kCsvColumns = {
    "path",           "label",    "spoof_type", "illumination", "environment",
    "camera_quality", "video_id", "subject_id", "domain",       "split"};

bool ParseInt(const std::string& text, int64_t* value) {
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, *value);
  return !text.empty() && result.ec == std::errc() && result.ptr == end;
}

int64_t ParseIntField(const std::string& text, const std::string& where, const char* field,
                      int64_t lo, int64_t hi) {
  int64_t value = 0;
  IF_REQUIRE(ParseInt(text, &value) && value >= lo && value <= hi, where, ": field '", field,
             "' must be an integer in ", lo, "..", hi, ", got '", text, "'");
  return value;
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool HasVideoExtension(const std::string& path) {
  const std::string ext = Lower(fs::path(path).extension().string());
  return ext == ".avi" || ext == ".mp4" || ext == ".mov" || ext == ".mkv";
}

// Index of `name` in plan->domains, adding it on first use.
int DomainIndex(Plan* plan, const std::string& name, const std::string& where) {
  IF_REQUIRE(IsValidDomainName(name), where, ": domain name '", name, "' is not allowed ", kDomainNameRule);
  auto it = std::find(plan->domains.begin(), plan->domains.end(), name);
  if (it != plan->domains.end()) return static_cast<int>(it - plan->domains.begin());
  plan->domains.push_back(name);
  return static_cast<int>(plan->domains.size()) - 1;
}

// Files that share a key get one automatic video id: a video file is its own
// group; frames "<prefix>_frame<k>.<ext>" in one folder share the prefix's group.
std::string VideoGroupKey(const std::string& source, bool is_video) {
  if (is_video) return "video:" + source;
  const fs::path path(source);
  const std::string stem = path.stem().string();
  const size_t frame = stem.find("_frame");
  const std::string name =
      frame == std::string::npos ? path.filename().string() : stem.substr(0, frame);
  return "frames:" + path.parent_path().string() + "/" + name;
}

Entry MakeEntry(const std::string& root, int domain, const SampleAttributes& attributes,
                bool explicit_video_id, const std::string& where, bool allow_outside_root) {
  ValidateAttributes(attributes, where);
  // open(2) would read the path up to the NUL: another file than the one named.
  IF_REQUIRE(attributes.source.find('\0') == std::string::npos, where, ": the path holds a NUL byte");
  // A label file names files under its root; '../' or an absolute path would
  // read anything on the machine into the store.
  const fs::path normal = fs::path(attributes.source).lexically_normal();
  const bool outside = normal.is_absolute() || normal.empty() || *normal.begin() == "..";
  IF_REQUIRE(!outside || allow_outside_root, where, ": path '", attributes.source, "' leaves the root '", root,
             "' (use --allow-outside-root if that is meant)");
  Entry entry;
  entry.where = where;
  entry.path = (fs::path(root) / attributes.source).lexically_normal().string();
  entry.is_video = HasVideoExtension(attributes.source);
#if !INSTRUCTFLIP_HAVE_OPENCV
  const std::string ext = Lower(fs::path(attributes.source).extension().string());
  IF_REQUIRE(ext == ".jpg" || ext == ".jpeg", where, ": '", attributes.source,
             "' is not a JPEG image; reading it needs OpenCV and this binary was built without "
             "OpenCV");
#endif
  entry.domain = domain;
  entry.attributes = attributes;
  if (!explicit_video_id) entry.video_key = VideoGroupKey(attributes.source, entry.is_video);
  return entry;
}

// One file listed twice is ingested once: the repeats are returned (to be
// recorded as skipped inputs) and dropped. Listed twice with other labels, it is
// an error naming both places.
std::vector<Entry> DropRepeatedEntries(Plan* plan) {
  std::map<std::pair<int, std::string>, size_t> first;  // (domain, path) -> kept index
  std::vector<Entry> kept, repeats;
  for (Entry& e : plan->entries) {
    const auto [it, inserted] = first.emplace(std::make_pair(e.domain, e.path), kept.size());
    if (inserted) {
      kept.push_back(std::move(e));
      continue;
    }
    const SampleAttributes& a = kept[it->second].attributes;
    IF_REQUIRE(a.label == e.attributes.label && a.spoof_type == e.attributes.spoof_type &&
                   a.split == e.attributes.split,
               e.where, ": '", e.attributes.source, "' is listed again with other labels (first at ",
               kept[it->second].where, ")");
    repeats.push_back(std::move(e));
  }
  plan->entries = std::move(kept);
  return repeats;
}

// Frames of one video share its label (the metrics average a video's frames):
// a video with live and spoof frames is an error naming two of them.
void RefuseMixedVideos(const Plan& plan) {
  std::map<std::pair<int, int64_t>, const Entry*> first;  // (domain, video id) -> first frame
  for (const Entry& e : plan.entries) {
    const auto [it, inserted] = first.emplace(std::make_pair(e.domain, e.attributes.video_id), &e);
    IF_REQUIRE(inserted || it->second->attributes.label == e.attributes.label, e.where, ": '", e.attributes.source,
               "' is ", e.attributes.label ? "spoof" : "live", " but belongs to the same video (domain '",
               plan.domains[e.domain], "', video ", e.attributes.video_id, ") as ", it->second->where, ": '",
               it->second->attributes.source, "', which is ", e.attributes.label ? "live" : "spoof");
  }
}

// Numbers the automatic video groups per domain, above the domain's largest
// explicit id so that the two kinds never collide.
void AssignVideoIds(Plan* plan) {
  std::vector<int64_t> next(plan->domains.size(), 0);
  for (const Entry& e : plan->entries)
    if (e.video_key.empty()) next[e.domain] = std::max(next[e.domain], e.attributes.video_id + 1);
  std::vector<std::unordered_map<std::string, int64_t>> ids(plan->domains.size());
  for (Entry& e : plan->entries) {
    if (e.video_key.empty()) continue;
    const auto [it, inserted] = ids[e.domain].emplace(e.video_key, next[e.domain]);
    if (inserted) ++next[e.domain];
    e.attributes.video_id = it->second;
  }
}

std::string DefaultRoot(const IngestOptions& options) {
  if (!options.root.empty()) return options.root;
  const fs::path parent = fs::path(options.input).parent_path();
  return parent.empty() ? "." : parent.string();
}

// ---- CSV syntax (the csv format, --camera-quality) ---------------------------

struct CsvRow {
  int line = 0;  // line the row starts on (1-based)
  std::vector<std::string> fields;
};

// RFC 4180: comma-separated; a field in double quotes may hold commas, line
// breaks and doubled quotes (""). LF or CRLF line ends; blank lines skipped.
std::vector<CsvRow> ParseCsv(const std::string& text, const std::string& file) {
  std::vector<CsvRow> rows;
  CsvRow row{1, {}};
  std::string field;
  int line = 1;
  bool in_quotes = false;
  bool was_quoted = false;  // the current field had quotes, so it ended at the closing one
  auto end_field = [&] {
    row.fields.push_back(std::move(field));
    field.clear();
  };
  auto end_row = [&] {
    const bool blank = row.fields.size() == 1 && row.fields[0].empty() && !was_quoted;
    if (!blank) rows.push_back(std::move(row));
    row = CsvRow{line + 1, {}};
    was_quoted = false;
  };
  // A UTF-8 byte-order mark (spreadsheet exports) is not part of the first column's name.
  size_t i = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == ',') {
      end_field();
      was_quoted = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_field();
      end_row();
      ++line;
    } else {
      IF_REQUIRE(!was_quoted, file, ":", line, ": text after a closing quote in field ",
                 row.fields.size() + 1);
      IF_REQUIRE(c != '"' || field.empty(), file, ":", line, ": a quote inside unquoted field ",
                 row.fields.size() + 1, " (quote the whole field and double inner quotes)");
      if (c == '"') {
        in_quotes = was_quoted = true;
      } else {
        field += c;
      }
    }
  }
  IF_REQUIRE(!in_quotes, file, ":", row.line, ": quoted field ", row.fields.size() + 1,
             " is never closed");
  if (!row.fields.empty() || !field.empty() || was_quoted) {
    end_field();
    end_row();
  }
  return rows;
}

// ---- CelebA-Spoof ----------------------------------------------------------

constexpr size_t kCelebALabelLength = 44;

// The label files to read and the dataset root their keys are relative to.
struct CelebALabelFiles {
  std::string root;
  std::vector<std::string> files;
};

CelebALabelFiles FindCelebALabelFiles(const IngestOptions& options) {
  const fs::path input(options.input);
  if (fs::is_regular_file(input)) {
    if (!options.root.empty()) return {options.root, {input.string()}};
    // .../<root>/metas/<protocol>/train_label.json
    for (fs::path dir = input.parent_path(); !dir.empty() && dir != dir.parent_path();
         dir = dir.parent_path()) {
      if (dir.filename() == "metas") {
        const fs::path root = dir.parent_path();
        return {root.empty() ? "." : root.string(), {input.string()}};
      }
    }
    IF_FAIL(options.input,
            ": cannot tell the CelebA-Spoof root (no enclosing metas/ folder); "
            "give the root explicitly");
  }
  IF_REQUIRE(fs::is_directory(input), "CelebA-Spoof input '", options.input,
             "' is neither a dataset root nor a label file");
  const fs::path metas = input / "metas";
  std::vector<fs::path> dirs;
  if (fs::is_directory(metas)) {
    for (const auto& item : fs::recursive_directory_iterator(metas))
      if (item.is_directory()) dirs.push_back(item.path());
  }
  // The standard intra-dataset protocol first, then any other, deterministically.
  std::sort(dirs.begin(), dirs.end(), [&](const fs::path& a, const fs::path& b) {
    const bool a_intra = a == metas / "intra_test", b_intra = b == metas / "intra_test";
    return a_intra != b_intra ? a_intra : a < b;
  });
  for (const fs::path& dir : dirs) {
    CelebALabelFiles found{options.root.empty() ? input.string() : options.root, {}};
    for (const char* name : {"train_label.json", "test_label.json"})
      if (fs::is_regular_file(dir / name)) found.files.push_back((dir / name).string());
    if (!found.files.empty()) return found;
  }
  IF_FAIL(options.input,
          ": no metas/**/train_label.json or test_label.json (is this the "
          "CelebA-Spoof root?)");
}

// "Data/<split>/<subject>/<live|spoof>/<file>" -> subject, or -1.
int64_t CelebASubject(const std::string& key) {
  std::vector<std::string> parts;
  std::stringstream stream(key);
  for (std::string part; std::getline(stream, part, '/');) parts.push_back(part);
  int64_t subject = -1;
  if (parts.size() >= 4 && parts[0] == "Data" && ParseInt(parts[2], &subject)) return subject;
  return -1;
}

// A CelebA-Spoof label file: an object mapping image paths to labels.
nlohmann::json ReadCelebALabelJson(const std::string& file) {
  nlohmann::json labels;
  try {
    labels = nlohmann::json::parse(ReadFile(file));
  } catch (const nlohmann::json::exception& e) {
    IF_FAIL(file, ": not valid JSON (", e.what(), ")");
  }
  IF_REQUIRE(labels.is_object(), file, ": expected an object mapping image paths to labels");
  return labels;
}

void PlanCelebALabelFile(const std::string& file, const std::string& root, int domain, Plan* plan,
                         bool allow_outside_root) {
  const std::string name = fs::path(file).filename().string();
  IF_REQUIRE(name == "train_label.json" || name == "test_label.json", file,
             ": a CelebA-Spoof label file must be named train_label.json or test_label.json "
             "(the name gives the split)");
  const Split split = name == "train_label.json" ? Split::kTrain : Split::kTest;
  const nlohmann::json labels = ReadCelebALabelJson(file);
  for (const auto& item : labels.items()) {
    const std::string where = file + ": key '" + item.key() + "'";
    const nlohmann::json& value = item.value();
    IF_REQUIRE(value.is_array() && value.size() == kCelebALabelLength, where,
               ": expected an array of ", kCelebALabelLength, " numbers, got ",
               value.is_array() ? std::to_string(value.size()) + " values" : value.dump());
    auto field = [&](size_t index, const char* field_name, int hi) {
      const nlohmann::json& v = value[index];
      const double number = v.is_number() ? v.get<double>() : -1.0;
      IF_REQUIRE(v.is_number() && number == std::floor(number) && number >= 0 && number <= hi,
                 where, ": field '", field_name, "' (index ", index, ") must be an integer in 0..",
                 hi, ", got ", v.dump());
      return static_cast<int>(number);
    };
    SampleAttributes a;
    a.spoof_type = static_cast<int8_t>(field(40, "spoof_type", 10));
    // CelebA-Spoof codes 0 as "none" (live); the store uses -1 for that.
    a.illumination = static_cast<int8_t>(field(41, "illumination", 4) - 1);
    a.environment = static_cast<int8_t>(field(42, "environment", 2) - 1);
    a.label = static_cast<int8_t>(field(43, "label", 1));
    a.split = split;
    a.subject_id = CelebASubject(item.key());
    a.source = item.key();
    Entry entry = MakeEntry(root, domain, a, /*explicit_video_id=*/true, where, allow_outside_root);
    entry.video_key = "image:" + a.source;  // still images: each is its own "video"
    const fs::path image(entry.path);
    entry.box_path = (image.parent_path() / (image.stem().string() + "_BB.txt")).string();
    plan->entries.push_back(std::move(entry));
  }
}

// The image paths (label keys) one label file lists: the keys of a .json, or
// the first word of each line of a .txt ("path label").
std::vector<std::string> CelebAListedImages(const std::string& file) {
  std::vector<std::string> images;
  if (fs::path(file).extension() == ".json") {
    const nlohmann::json labels = ReadCelebALabelJson(file);
    for (const auto& item : labels.items()) images.push_back(item.key());
    return images;
  }
  std::istringstream lines(ReadFile(file));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string path;
    if (words >> path) images.push_back(path);
  }
  return images;
}

// The label list `stem` (.json, else .txt) of one protocol folder, or "".
std::string CelebAListFile(const fs::path& dir, const std::string& stem) {
  for (const char* extension : {".json", ".txt"})
    if (fs::is_regular_file(dir / (stem + extension))) return (dir / (stem + extension)).string();
  return "";
}

// Camera quality per image key, from CelebA-Spoof's cross-device protocol:
// metas/protocol2/test_on_<q>_quality_device/ tests on the images taken with
// the <q> devices, so its test list names images of quality q, and its train
// list images of the other two qualities. An image in a test list has that
// quality; one in no test list but in the train lists of two of the three
// folders has the third. Absent protocol: an empty map.
std::map<std::string, int8_t> CelebADeviceQuality(const std::string& root) {
  std::map<std::string, int8_t> quality;
  std::map<std::string, std::string> listed_in;  // image -> the test list that named it
  std::map<std::string, int> trained_in;         // image -> bit q set: in test_on_q's train list
  const fs::path protocol = fs::path(root) / "metas" / "protocol2";
  for (int q = 0; q < static_cast<int>(kCameraQualityNames.size()); ++q) {
    const std::string name = std::string(q == 1 ? "middle" : kCameraQualityNames[q]);
    const fs::path dir = protocol / ("test_on_" + name + "_quality_device");
    if (const std::string file = CelebAListFile(dir, "test_label"); !file.empty())
      for (const std::string& image : CelebAListedImages(file)) {
        const auto [it, inserted] = quality.emplace(image, static_cast<int8_t>(q));
        IF_REQUIRE(inserted || it->second == q, file, ": '", image, "' is also in ", listed_in[image],
                   ": one image cannot have two camera qualities");
        listed_in.emplace(image, file);
      }
    if (const std::string file = CelebAListFile(dir, "train_label"); !file.empty())
      for (const std::string& image : CelebAListedImages(file)) trained_in[image] |= 1 << q;
  }
  for (const auto& [image, folders] : trained_in) {
    if (quality.count(image)) continue;
    for (int q = 0; q < 3; ++q)
      if (folders == (0b111 & ~(1 << q))) quality.emplace(image, static_cast<int8_t>(q));
  }
  return quality;
}

// --camera-quality FILE: a CSV with columns path (a label key) and
// camera_quality (0 low, 1 medium, 2 high; -1 or empty = unknown) whose values
// replace the derived ones.
std::map<std::string, int8_t> ReadCameraQualityCsv(const std::string& file) {
  const std::vector<CsvRow> rows = ParseCsv(ReadFile(file), file);
  IF_REQUIRE(!rows.empty(), file, ": empty file (a header 'path,camera_quality' is required)");
  const std::vector<std::string>& header = rows[0].fields;
  const auto path_column = std::find(header.begin(), header.end(), "path");
  const auto quality_column = std::find(header.begin(), header.end(), "camera_quality");
  IF_REQUIRE(path_column != header.end() && quality_column != header.end(), file, ":", rows[0].line,
             ": the header must name the columns 'path' and 'camera_quality'");
  const size_t p = path_column - header.begin(), q = quality_column - header.begin();
  std::map<std::string, int8_t> quality;
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::string where = file + ":" + std::to_string(rows[r].line);
    const std::vector<std::string>& fields = rows[r].fields;
    IF_REQUIRE(fields.size() == header.size(), where, ": ", fields.size(), " fields, the header has ",
               header.size());
    IF_REQUIRE(!fields[p].empty(), where, ": field 'path' is empty");
    const int8_t value = static_cast<int8_t>(
        fields[q].empty() ? -1
                          : ParseIntField(fields[q], where, "camera_quality", -1,
                                          static_cast<int64_t>(kCameraQualityNames.size()) - 1));
    const auto [it, inserted] = quality.emplace(fields[p], value);
    IF_REQUIRE(inserted || it->second == value, where, ": '", fields[p], "' is given another camera_quality earlier");
  }
  return quality;
}

// Sets each planned image's camera quality from the device lists, then the CSV.
void AssignCelebACameraQuality(const IngestOptions& options, const std::string& root, Plan* plan) {
  std::map<std::string, int8_t> quality = CelebADeviceQuality(root);
  if (quality.empty())
    LOG(WARNING) << "ingest: no " << (fs::path(root) / "metas/protocol2").string()
                 << "/test_on_*_quality_device/ lists: camera quality stays unknown"
                 << (options.camera_quality_csv.empty() ? "" : " except where --camera-quality gives it");
  std::map<std::string, int8_t> overrides;
  if (!options.camera_quality_csv.empty()) overrides = ReadCameraQualityCsv(options.camera_quality_csv);
  int64_t used_overrides = 0;
  for (Entry& e : plan->entries) {
    int8_t& value = e.attributes.camera_quality;
    if (const auto it = quality.find(e.attributes.source); it != quality.end()) value = it->second;
    if (const auto it = overrides.find(e.attributes.source); it != overrides.end()) {
      value = it->second;
      ++used_overrides;
    }
  }
  if (used_overrides < static_cast<int64_t>(overrides.size()))
    LOG(WARNING) << "ingest: " << overrides.size() - used_overrides << " of " << overrides.size() << " rows of "
                 << options.camera_quality_csv << " name no image of this ingest";
}

Plan PlanCelebASpoof(const IngestOptions& options) {
  const CelebALabelFiles labels = FindCelebALabelFiles(options);
  Plan plan;
  const int domain = DomainIndex(&plan, options.domain, "--domain");
  for (const std::string& file : labels.files) {
    LOG(INFO) << "ingest: reading CelebA-Spoof labels " << file;
    PlanCelebALabelFile(file, labels.root, domain, &plan, options.allow_outside_root);
  }
  AssignCelebACameraQuality(options, labels.root, &plan);
  return plan;
}

// ---- list file -------------------------------------------------------------

Plan PlanList(const IngestOptions& options) {
  Plan plan;
  const int domain = DomainIndex(&plan, options.domain, "--domain");
  IF_REQUIRE(options.split.has_value(), "ingest: a list file needs --split train|test");
  const Split split = *options.split;
  const std::string root = DefaultRoot(options);
  std::istringstream lines(ReadFile(options.input));
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string word; words >> word;) fields.push_back(word);
    if (fields.empty() || fields[0][0] == '#') continue;
    const std::string where = options.input + ":" + std::to_string(number);
    IF_REQUIRE(fields.size() == 2 || fields.size() == 3, where,
               ": expected 'path label [spoof_type]', got ", fields.size(), " fields in '", line,
               "'");
    SampleAttributes a;
    a.source = fields[0];
    a.label = static_cast<int8_t>(ParseIntField(fields[1], where, "label", 0, 1));
    a.spoof_type = static_cast<int8_t>(fields.size() == 3
                                           ? ParseIntField(fields[2], where, "spoof_type", kUnknownSpoofType, 10)
                                           : (a.label == 1 ? kDefaultSpoofType : 0));
    a.split = split;
    plan.entries.push_back(MakeEntry(root, domain, a, /*explicit_video_id=*/false, where, options.allow_outside_root));
  }
  return plan;
}

// ---- CSV ---------------------------------------------------------------------

Plan PlanCsv(const IngestOptions& options) {
  const std::vector<CsvRow> rows = ParseCsv(ReadFile(options.input), options.input);
  IF_REQUIRE(!rows.empty(), options.input, ": empty file (a header row is required)");
  const std::string header_where = options.input + ":" + std::to_string(rows[0].line);
  std::map<std::string, size_t> column;
  for (size_t c = 0; c < rows[0].fields.size(); ++c) {
    const std::string& name = rows[0].fields[c];
    if (std::find(kCsvColumns.begin(), kCsvColumns.end(), name) == kCsvColumns.end()) {
      std::string known;
      for (const char* k : kCsvColumns) known += std::string(known.empty() ? "" : ", ") + k;
      IF_FAIL(header_where, ": unknown column '", name, "' (known: ", known, ")");
    }
    IF_REQUIRE(column.emplace(name, c).second, header_where, ": column '", name, "' appears twice");
  }
  IF_REQUIRE(column.count("path") && column.count("label"), header_where,
             ": the header must name the columns 'path' and 'label'");
  const std::optional<Split> default_split = options.split;
  const std::string root = DefaultRoot(options);
  const std::string empty;

  Plan plan;
  for (size_t r = 1; r < rows.size(); ++r) {
    const CsvRow& row = rows[r];
    const std::string where = options.input + ":" + std::to_string(row.line);
    IF_REQUIRE(row.fields.size() == rows[0].fields.size(), where, ": ", row.fields.size(),
               " fields, the header has ", rows[0].fields.size());
    // A cell's text; "" when the column is absent (absent and empty mean the same).
    auto cell = [&](const char* name) -> const std::string& {
      const auto it = column.find(name);
      return it == column.end() ? empty : row.fields[it->second];
    };
    // An optional style code: empty = -1 (unknown).
    auto code = [&](const char* name, size_t count) -> int8_t {
      const std::string& text = cell(name);
      return static_cast<int8_t>(
          text.empty() ? -1
                       : ParseIntField(text, where, name, -1, static_cast<int64_t>(count) - 1));
    };
    SampleAttributes a;
    a.source = cell("path");
    IF_REQUIRE(!a.source.empty(), where, ": field 'path' is empty");
    a.label = static_cast<int8_t>(ParseIntField(cell("label"), where, "label", 0, 1));
    a.spoof_type = static_cast<int8_t>(
        !cell("spoof_type").empty() ? ParseIntField(cell("spoof_type"), where, "spoof_type", kUnknownSpoofType, 10)
                                    : (a.label == 1 ? kDefaultSpoofType : 0));
    a.illumination = code("illumination", kIlluminationNames.size());
    a.environment = code("environment", kEnvironmentNames.size());
    a.camera_quality = code("camera_quality", kCameraQualityNames.size());
    constexpr int64_t kMaxId = std::numeric_limits<int64_t>::max();
    if (!cell("subject_id").empty())
      a.subject_id = ParseIntField(cell("subject_id"), where, "subject_id", -1, kMaxId);
    const bool explicit_video_id = !cell("video_id").empty();
    if (explicit_video_id)
      a.video_id = ParseIntField(cell("video_id"), where, "video_id", 0, kMaxId - 1);
    if (!cell("split").empty()) {
      a.split = kSplits.Parse(cell("split"), where + ": field 'split'");
    } else {
      IF_REQUIRE(default_split.has_value(), where, ": no split (empty 'split' and no --split)");
      a.split = *default_split;
    }
    const std::string& domain_name = cell("domain").empty() ? options.domain : cell("domain");
    IF_REQUIRE(!domain_name.empty(), where, ": no domain (empty 'domain' and no --domain)");
    const int domain = DomainIndex(&plan, domain_name, where);
    plan.entries.push_back(MakeEntry(root, domain, a, explicit_video_id, where, options.allow_outside_root));
  }
  return plan;
}

// ---------------------------------------------------------------------------
// Phase 2: decode, crop, resize, encode
// ---------------------------------------------------------------------------

struct Box {  // pixel rectangle inside an image
  int x = 0, y = 0, width = 0, height = 0;
};

struct Sample {
  std::string jpeg;
  SampleAttributes attributes;
};

// What one Entry became: samples, or the reason it was skipped.
struct Outcome {
  std::vector<Sample> samples;
  std::string skip_reason;   // non-empty = skipped
  bool missing_box = false;  // CelebA-Spoof image without _BB.txt (whole image used)
};

// Reads "x y w h [score]" (224x224 reference frame) and scales it to a
// width x height image the way CelebA-Spoof's own loader does (truncate, then
// clamp). Returns "" or why the box is unusable.
std::string ReadFaceBox(const std::string& path, int width, int height, Box* box) {
  std::string text;
  try {
    text = ReadFile(path);
  } catch (const Error& e) {
    return e.what();
  }
  std::istringstream stream(text);
  double x = 0, y = 0, w = 0, h = 0;
  if (!(stream >> x >> y >> w >> h)) return path + ": expected 'x y w h score'";
  // Keeps the int conversions below defined; a real box lies within a few frames of 224.
  constexpr double kLimit = 1e5;
  if (!(std::abs(x) < kLimit && std::abs(y) < kLimit && std::abs(w) < kLimit &&
        std::abs(h) < kLimit))
    return path + ": face box values out of range";
  const double sx = width / 224.0, sy = height / 224.0;
  const int x0 = static_cast<int>(x * sx), y0 = static_cast<int>(y * sy);
  const int x1 = std::min(width, x0 + static_cast<int>(w * sx));
  const int y1 = std::min(height, y0 + static_cast<int>(h * sy));
  box->x = std::max(0, x0);
  box->y = std::max(0, y0);
  box->width = x1 - box->x;
  box->height = y1 - box->y;
  if (box->width <= 0 || box->height <= 0)
    return path + ": face box is empty inside the " + std::to_string(width) + "x" +
           std::to_string(height) + " image";
  return "";
}

#if INSTRUCTFLIP_HAVE_OPENCV

// Any 8-bit OpenCV image (gray, BGR, BGRA) -> interleaved RGB.
void MatToRgb(const cv::Mat& mat, RgbImage* out) {
  out->width = mat.cols;
  out->height = mat.rows;
  out->pixels.resize(static_cast<size_t>(mat.cols) * mat.rows * 3);
  cv::Mat rgb(mat.rows, mat.cols, CV_8UC3, out->pixels.data());
  const int conversion = mat.channels() == 1   ? cv::COLOR_GRAY2RGB
                         : mat.channels() == 4 ? cv::COLOR_BGRA2RGB
                                               : cv::COLOR_BGR2RGB;
  cv::cvtColor(mat, rgb, conversion);
}

RgbImage CropAndResize(const RgbImage& image, const Box& box, int size) {
  const cv::Mat whole(image.height, image.width, CV_8UC3,
                      const_cast<uint8_t*>(image.pixels.data()));
  const cv::Mat face = whole(cv::Rect(box.x, box.y, box.width, box.height));
  RgbImage out{size, size, std::vector<uint8_t>(static_cast<size_t>(size) * size * 3)};
  cv::Mat resized(size, size, CV_8UC3, out.pixels.data());
  const bool shrinking = box.width >= size && box.height >= size;
  cv::resize(face, resized, resized.size(), 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

#else  // !INSTRUCTFLIP_HAVE_OPENCV

// Source pixels (and weights) averaged into each output pixel along one axis:
// output i covers source span [i*in/out, (i+1)*in/out). Equals INTER_AREA when
// shrinking; when enlarging it is nearest-neighbour with blended seams.
struct Tap {
  int index;
  float weight;
};
std::vector<std::vector<Tap>> AreaTaps(int in, int out) {
  std::vector<std::vector<Tap>> taps(out);
  const double scale = static_cast<double>(in) / out;
  for (int i = 0; i < out; ++i) {
    const double lo = i * scale, hi = (i + 1) * scale;
    for (int j = static_cast<int>(lo); j < in && j < hi; ++j) {
      const double covered = std::min(hi, j + 1.0) - std::max(lo, static_cast<double>(j));
      if (covered > 0) taps[i].push_back({j, static_cast<float>(covered / scale)});
    }
  }
  return taps;
}

RgbImage CropAndResize(const RgbImage& image, const Box& box, int size) {
  const auto x_taps = AreaTaps(box.width, size), y_taps = AreaTaps(box.height, size);
  // Horizontal pass: (box.height, size, 3).
  std::vector<float> rows(static_cast<size_t>(box.height) * size * 3, 0.f);
  for (int y = 0; y < box.height; ++y) {
    const uint8_t* src = &image.pixels[(static_cast<size_t>(box.y + y) * image.width + box.x) * 3];
    float* dst = &rows[static_cast<size_t>(y) * size * 3];
    for (int x = 0; x < size; ++x)
      for (const Tap& t : x_taps[x])
        for (int c = 0; c < 3; ++c) dst[x * 3 + c] += t.weight * src[t.index * 3 + c];
  }
  RgbImage out{size, size, std::vector<uint8_t>(static_cast<size_t>(size) * size * 3)};
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size * 3; ++x) {
      float v = 0.f;
      for (const Tap& t : y_taps[y])
        v += t.weight * rows[static_cast<size_t>(t.index) * size * 3 + x];
      out.pixels[static_cast<size_t>(y) * size * 3 + x] =
          static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
    }
  return out;
}

#endif  // INSTRUCTFLIP_HAVE_OPENCV

// Decodes a whole image file into RGB. Returns "" or why it is not usable.
std::string DecodeImage(const std::string& bytes, const std::string& what, RgbImage* out) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    try {
      DecodeJpeg(data, bytes.size(), what, out);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
#if INSTRUCTFLIP_HAVE_OPENCV
  if (bytes.empty()) return "empty file";
  QuietOpenCv();
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(
        cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data())),
        cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return "cannot decode image: " + OneLine(e.err);
  }
  if (decoded.empty()) return "not a decodable image";
  MatToRgb(decoded, out);
  return "";
#else
  return "not a JPEG stream";
#endif
}

// The store encoding of re-encoded pixels: keep re-encodes losslessly.
ImageEncoding StoredEncoding(IngestEncoding encoding) {
  return encoding == IngestEncoding::kJpeg ? ImageEncoding::kJpeg : ImageEncoding::kPng;
}

// The stored bytes of one decoded image file (`source` its bytes): the source
// itself under `keep` when it is a JPEG or PNG of the store's size with nothing
// to crop and the store's decoder reads exactly the pixels ingest decoded (a
// PNG with alpha, 16 bits or gamma may decode otherwise), else the face
// cropped, resized and encoded.
std::string EncodeSample(const std::string& source, const RgbImage& image, const Box& box,
                         const IngestOptions& options) {
  if (options.encoding == IngestEncoding::kKeep && box.x == 0 && box.y == 0 && box.width == image.width &&
      box.height == image.height && image.width == options.size && image.height == options.size) {
    try {
      RgbImage check;
      const auto* data = reinterpret_cast<const uint8_t*>(source.data());
      DecodeStoredImage(data, source.size(), "source", &check);
      if (check.pixels == image.pixels) return source;
    } catch (const Error&) {
      // Another format (BMP, TIFF, ...) or a stream our decoder refuses: re-encoded losslessly below.
    }
  }
  return EncodeStoredImage(CropAndResize(image, box, options.size), StoredEncoding(options.encoding),
                           options.jpeg_quality);
}

Outcome ProcessImage(const Entry& entry, const IngestOptions& options) {
  Outcome out;
  std::string bytes;
  try {
    bytes = ReadFile(entry.path);
  } catch (const Error& e) {
    out.skip_reason = e.what();
    return out;
  }
  RgbImage image;
  out.skip_reason = DecodeImage(bytes, entry.path, &image);
  if (!out.skip_reason.empty()) return out;
  Box box{0, 0, image.width, image.height};
  if (!entry.box_path.empty()) {
    out.missing_box = !PathExists(entry.box_path);
    if (!out.missing_box) {
      out.skip_reason = ReadFaceBox(entry.box_path, image.width, image.height, &box);
      if (!out.skip_reason.empty()) return out;
    }
  }
  out.samples.push_back({EncodeSample(bytes, image, box, options), entry.attributes});
  return out;
}

#if INSTRUCTFLIP_HAVE_OPENCV
// Reads the frames VideoFrameIndices samples from the video at `path`, each
// handed to `take(index, rgb)`. Returns "" or why the video is not usable.
std::string ReadVideoFrames(const std::string& path, int frames, int first_frame,
                            const std::function<void(int64_t, RgbImage)>& take) {
  QuietOpenCv();
  try {
    cv::VideoCapture video(path);
    if (!video.isOpened()) return "cannot open video";
    const int64_t count = std::llround(video.get(cv::CAP_PROP_FRAME_COUNT));
    const std::vector<int64_t> wanted = VideoFrameIndices(count, frames, first_frame);
    if (wanted.empty()) return "video reports no frames";
    // Frames are reached by grabbing sequentially, not by seeking:
    // CAP_PROP_POS_FRAMES is approximate for inter-coded streams (H.264 in
    // .mp4/.mov), and a wrong frame would pass silently.
    int64_t position = 0;
    cv::Mat frame;
    for (const int64_t index : wanted) {
      for (; position <= index; ++position)
        if (!video.grab())
          return "video ended at frame " + std::to_string(position) + " of " + std::to_string(count) + " reported";
      if (!video.retrieve(frame) || frame.empty()) return "cannot decode frame " + std::to_string(index);
      RgbImage image;
      MatToRgb(frame, &image);
      take(index, std::move(image));
    }
  } catch (const cv::Exception& e) {
    return "cannot read video: " + OneLine(e.err);
  }
  return "";
}

Outcome ProcessVideo(const Entry& entry, const IngestOptions& options) {
  Outcome out;
  out.skip_reason = ReadVideoFrames(entry.path, options.video_frames, options.video_first_frame,
                                    [&](int64_t index, const RgbImage& image) {
                                      SampleAttributes attributes = entry.attributes;
                                      attributes.source += "#frame=" + std::to_string(index);
                                      out.samples.push_back(
                                          {EncodeStoredImage(CropAndResize(image, {0, 0, image.width, image.height},
                                                                           options.size),
                                                             StoredEncoding(options.encoding), options.jpeg_quality),
                                           attributes});
                                    });
  if (!out.skip_reason.empty()) out.samples.clear();
  return out;
}
#endif

Outcome Process(const Entry& entry, const IngestOptions& options) {
#if INSTRUCTFLIP_HAVE_OPENCV
  if (entry.is_video) return ProcessVideo(entry, options);
#endif
  return ProcessImage(entry, options);
}

// Phase 1 whole: the inputs to read, checked, repeats dropped (returned in
// *repeats), video ids assigned.
Plan PlanInputs(const IngestOptions& options, std::vector<Entry>* repeats) {
  IF_REQUIRE(!options.input.empty(), "ingest: no input given");
  IF_REQUIRE(options.threads >= 1 && options.threads <= 256, "ingest: --threads must be in 1..256, got ",
             options.threads);
  IF_REQUIRE(options.video_frames >= 1, "ingest: video frames must be >= 1, got ", options.video_frames);
  IF_REQUIRE(options.video_first_frame >= 0, "ingest: video first frame must be >= 0, got ",
             options.video_first_frame);
  IF_REQUIRE(options.camera_quality_csv.empty() || options.format == IngestFormat::kCelebASpoof,
             "ingest: --camera-quality is for --format celeba (a CSV input has a camera_quality column)");
  Plan plan;
  switch (options.format) {
    case IngestFormat::kCelebASpoof:
      plan = PlanCelebASpoof(options);
      break;
    case IngestFormat::kList:
      plan = PlanList(options);
      break;
    case IngestFormat::kCsv:
      plan = PlanCsv(options);
      break;
  }
  IF_REQUIRE(!plan.entries.empty(), options.input, ": no samples listed");
  *repeats = DropRepeatedEntries(&plan);
  AssignVideoIds(&plan);
  RefuseMixedVideos(plan);
  return plan;
}

// For domains the store already holds:
//  * refuses exact duplicates (an input stored in the same split), naming the
//    first and how many;
//  * automatic video ids: a group the store already has (the same video's
//    frames named by the train list and the test list) keeps its stored id,
//    any other is numbered above the stored ones;
//  * explicit ids (a CSV's video_id column) are the user's, but one that names
//    a stored video of the other label is refused (a video has one label).
void ExtendExistingDomains(const StoreWriter& writer, const std::vector<int>& domain_codes,
                           const IngestOptions& options, Plan* plan) {
  int64_t duplicates = 0;
  const Entry* first = nullptr;
  std::map<int, std::map<std::string, int64_t>> stored_groups;  // domain code -> group key -> video id
  for (Entry& e : plan->entries) {
    const int code = domain_codes[e.domain];
    const StoreWriter::HeldDomain* held = writer.Held(code);
    if (held == nullptr) continue;
    if (writer.HeldBefore(code, e.attributes.split, e.attributes.source)) {
      if (duplicates++ == 0) first = &e;
      continue;
    }
    if (!e.video_key.empty()) {
      auto [groups, fresh] = stored_groups.try_emplace(code);
      if (fresh)
        for (const auto& [input, video] : held->video_of_input)
          groups->second.emplace(VideoGroupKey(input, HasVideoExtension(input)), video);
      const auto stored = groups->second.find(e.video_key);
      e.attributes.video_id = stored != groups->second.end() ? stored->second
                                                             : e.attributes.video_id + held->next_video_id;
    }
    const auto label = held->label_of_video.find(e.attributes.video_id);
    IF_REQUIRE(label == held->label_of_video.end() || label->second == e.attributes.label, e.where, ": '",
               e.attributes.source, "' is ", e.attributes.label ? "spoof" : "live", " but video ",
               e.attributes.video_id, " of domain '", plan->domains[e.domain], "' in store '", options.out,
               "' is ", label->second ? "spoof" : "live", "; the store is unchanged");
  }
  IF_REQUIRE(duplicates == 0, first->where, ": '", first->attributes.source, "' is already in domain '",
             plan->domains[first->domain], "' (split ", kSplits.Name(first->attributes.split), ") of store '",
             options.out, "'", duplicates > 1 ? " (and " + std::to_string(duplicates - 1) + " more inputs)" : "",
             "; the store is unchanged");
}

}  // namespace

std::vector<int64_t> VideoFrameIndices(int64_t frame_count, int frames, int first_frame) {
  std::vector<int64_t> indices;
  if (frame_count <= 0) return indices;
  const int64_t step = frame_count / std::max(frames, 1);
  for (int k = 0; k < frames; ++k) {
    const int64_t index = std::min(first_frame + k * step, frame_count - 1);
    if (indices.empty() || indices.back() != index) indices.push_back(index);
  }
  return indices;
}

IngestPreview PreviewIngest(const IngestOptions& options) {
  std::vector<Entry> repeats;
  const Plan plan = PlanInputs(options, &repeats);
  IngestPreview preview;
  preview.domains.resize(plan.domains.size());
  for (size_t d = 0; d < plan.domains.size(); ++d) preview.domains[d].name = plan.domains[d];
  for (const Entry& e : plan.entries) {
    ++preview.domains[e.domain].counts.counts[static_cast<int>(e.attributes.split)][e.attributes.label];
    preview.videos += e.is_video;
  }
  preview.inputs = static_cast<int64_t>(plan.entries.size());
  preview.repeats = static_cast<int64_t>(repeats.size());
  return preview;
}

IngestReport Ingest(const IngestOptions& options) {
  // 1. Plan: every label is parsed and checked before the store is opened.
  std::vector<Entry> repeats;
  Plan plan = PlanInputs(options, &repeats);
  LOG(INFO) << "ingest: " << plan.entries.size() << " inputs into " << plan.domains.size()
            << " domain(s) of store " << options.out;

  // 2. Open the store. A domain it already holds takes the new samples (the
  //    test list after the train list); an input it already holds in the same
  //    split fails here, before any pixel work.
  StoreWriter writer(
      StoreWriterOptions{options.out, options.size, options.jpeg_quality, options.append});
  std::vector<int> domain_codes;
  for (const std::string& name : plan.domains) domain_codes.push_back(writer.AddDomain(name, /*extend=*/true));
  ExtendExistingDomains(writer, domain_codes, options, &plan);

  // 3. Decode/crop/resize/encode in parallel; add in input order.
  IngestReport report;
  for (const Entry& repeat : repeats) {
    writer.RecordSkip(repeat.attributes.source, "listed again at " + repeat.where);
    ++report.skipped;
  }
  int64_t missing_boxes = 0;
  std::string first_skip, first_missing_box;
  Progress progress("ingest", "inputs", static_cast<int64_t>(plan.entries.size()), options.progress);
  RunInOrder<Outcome>(
      static_cast<int64_t>(plan.entries.size()), options.threads, 8 * static_cast<int64_t>(options.threads),
      [&](int64_t i) { return Process(plan.entries[i], options); },
      [&](int64_t i, const Outcome& outcome) {
        const Entry& entry = plan.entries[i];
        if (!outcome.skip_reason.empty()) {
          writer.RecordSkip(entry.attributes.source, outcome.skip_reason);
          if (report.skipped++ == 0)
            first_skip = entry.attributes.source + ": " + outcome.skip_reason;
        }
        for (const Sample& sample : outcome.samples) {
          writer.Add(domain_codes[entry.domain], sample.jpeg, sample.attributes);
          ++report.added;
        }
        if (outcome.missing_box && missing_boxes++ == 0) first_missing_box = entry.box_path;
        progress.Advance();
      });
  progress.Finish();
  if (missing_boxes > 0)
    LOG(WARNING) << "ingest: " << missing_boxes
                 << " image(s) had no face box file (first: " << first_missing_box
                 << "); the whole image was used";
  // A domain with no sample would be committed empty and block a retry under its name.
  IF_REQUIRE(report.added > 0, "ingest: no input of ", options.input, " could be read (",
             report.skipped, " skipped; first: ", first_skip, "); the store is unchanged");

  // 4. Commit: the single point at which the store changes.
  report.manifest = writer.Commit();
  LOG(INFO) << "ingest: added " << report.added << " samples, skipped " << report.skipped
            << (report.skipped > 0 ? " (first: " + first_skip + ")" : "");
  return report;
}

bool IsVideoPath(const std::string& path) { return HasVideoExtension(path); }

InputFrames ReadInputFrames(const std::string& path, int size, int video_frames, int video_first_frame) {
  InputFrames out;
  auto resized = [size](const RgbImage& image) { return CropAndResize(image, {0, 0, image.width, image.height}, size); };
  if (HasVideoExtension(path)) {
#if INSTRUCTFLIP_HAVE_OPENCV
    out.skip_reason = ReadVideoFrames(path, video_frames, video_first_frame, [&](int64_t index, const RgbImage& image) {
      out.frame_indices.push_back(index);
      out.frames.push_back(resized(image));
    });
    if (!out.skip_reason.empty()) out.frames.clear(), out.frame_indices.clear();
#else
    out.skip_reason = "videos need a build with OpenCV";
#endif
    return out;
  }
  std::string bytes;
  try {
    bytes = ReadFile(path);
  } catch (const Error& e) {
    out.skip_reason = e.what();
    return out;
  }
  RgbImage image;
  out.skip_reason = DecodeImage(bytes, path, &image);
  if (out.skip_reason.empty()) out.frames.push_back(resized(image));
  return out;
}

}  // namespace instructflip
