#include "dataio/store_writer.h"

#include <cstdio>
#include <filesystem>
#include <algorithm>
#include <cctype>

#include <glog/logging.h>

#include "dataio/base/check.h"
#include "dataio/base/crc32c.h"
#include "dataio/base/file_util.h"
#include "dataio/image_codec.h"
#include "dataio/shard_file.h"

namespace instructflip {

namespace fs = std::filesystem;

struct StoreWriter::PendingShard {
  ShardColumns columns;
};

namespace {

// The input a sample came from: a video frame's source is "<input>#frame=<k>".
std::string InputOf(const std::string& source) {
  const size_t frame = source.rfind("#frame=");
  return frame == std::string::npos ? source : source.substr(0, frame);
}

std::string ShardName(int index) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%05d.h5", index);
  return name;
}

}  // namespace

StoreWriter::StoreWriter(StoreWriterOptions options)
    : options_(std::move(options)), pending_(std::make_unique<PendingShard>()) {
  IF_REQUIRE(!options_.dir.empty(), "store directory must be given (--out)");
  IF_REQUIRE(options_.image_size >= 8 && options_.image_size <= 4096, "image size must be in 8..4096, got ",
             options_.image_size);
  IF_REQUIRE(options_.jpeg_quality >= 1 && options_.jpeg_quality <= 100,
             "JPEG quality must be in 1..100, got ", options_.jpeg_quality);
  // Checked again under the lock; here so that a refused append makes nothing.
  IF_REQUIRE(!options_.append || PathExists(JoinPath(options_.dir, "manifest.json")), "--append: '", options_.dir,
             "' is not a store (no manifest.json)");
  created_dirs_ = CreateDirectories(options_.dir);
  // One writer per store at a time: the leftover clean-up below would otherwise
  // delete another writer's shards in flight.
  lock_path_ = JoinPath(options_.dir, ".writer.lock");
  lock_was_there_ = PathExists(lock_path_);
  try {
    lock_ = std::make_unique<FileLock>(lock_path_, "store '" + options_.dir + "'");
    const bool exists = PathExists(JoinPath(options_.dir, "manifest.json"));
    if (options_.append) {
      IF_REQUIRE(exists, "--append: '", options_.dir, "' is not a store (no manifest.json)");
      manifest_ = ReadManifest(options_.dir);
      IF_REQUIRE(manifest_.image_size == options_.image_size, "--append: store '", options_.dir,
                 "' has image size ", manifest_.image_size, ", new samples have ", options_.image_size);
    } else {
      IF_REQUIRE(!exists, "'", options_.dir,
                 "' already holds a store; use --append to add domains or choose a new directory");
      manifest_.schema_version = kSchemaVersion;
      manifest_.image_size = options_.image_size;
      manifest_.jpeg_quality = options_.jpeg_quality;
    }
    // Shard files not in the manifest are left by an interrupted writer; they were
    // never visible, so they are removed (and never reused by name).
    for (const auto& entry : fs::directory_iterator(options_.dir)) {
      const std::string name = entry.path().filename().string();
      int index = -1;
      if (std::sscanf(name.c_str(), "shard-%d.h5", &index) == 1)
        next_shard_index_ = std::max(next_shard_index_, index + 1);
      const bool referenced = std::any_of(manifest_.shards.begin(), manifest_.shards.end(),
                                          [&](const ShardEntry& s) { return s.path == name; });
      const bool leftover = (name.rfind("shard-", 0) == 0 && !referenced) || name.rfind(".shard-", 0) == 0;
      if (leftover) {
        LOG(WARNING) << "removing " << entry.path() << " left by an interrupted write";
        fs::remove(entry.path());
      }
    }
  } catch (...) {  // refused: the directories and lock file this writer made go
    TakeBack();
    throw;
  }
}

StoreWriter::~StoreWriter() {
  if (!committed_) TakeBack();
}

void StoreWriter::TakeBack() {
  // The store as it was: the shards, the lock file and the directories this writer made go.
  std::error_code ignored;
  for (const std::string& path : written_shards_) fs::remove(path, ignored);
  if (!lock_was_there_ && lock_) fs::remove(lock_path_, ignored);  // while held: no one else can hold it
  RemoveEmptyDirectories(created_dirs_);
}

int StoreWriter::AddDomain(const std::string& name, bool extend) {
  IF_REQUIRE(IsValidDomainName(name), "domain name '", name, "' is not allowed ", kDomainNameRule);
  IF_REQUIRE(std::find(added_domains_.begin(), added_domains_.end(), name) == added_domains_.end(),
             "domain '", name, "' is added twice to store '", options_.dir, "'");
  added_domains_.push_back(name);
  const int existing = manifest_.FindDomain(name);
  if (existing < 0) {
    manifest_.domains.push_back({name, {}});
    return static_cast<int>(manifest_.domains.size()) - 1;
  }
  IF_REQUIRE(extend, "domain '", name, "' is already in store '", options_.dir,
             "' (ingest --append adds another split or more samples to it)");
  // Extending a domain: its stored inputs are what a duplicate is checked against.
  HeldDomain& held = held_[existing];
  for (const ShardEntry& shard : manifest_.shards) {
    ShardHeader header;
    const ShardColumns columns = ReadShardFile(JoinPath(options_.dir, shard.path), false, &header);
    const SampleTable& t = columns.table;
    for (int64_t i = 0; i < t.size(); ++i) {
      if (t.domain[i] != existing) continue;
      held.inputs.emplace(t.split[i], InputOf(t.source[i]));
      held.video_of_input.emplace(InputOf(t.source[i]), t.video_id[i]);
      held.label_of_video.emplace(t.video_id[i], t.label[i]);
      held.next_video_id = std::max(held.next_video_id, t.video_id[i] + 1);
    }
  }
  LOG(INFO) << "store '" << options_.dir << "': adding to domain '" << name << "', which holds "
            << manifest_.domains[existing].counts.total() << " samples";
  return existing;
}

const StoreWriter::HeldDomain* StoreWriter::Held(int domain) const {
  const auto it = held_.find(domain);
  return it == held_.end() ? nullptr : &it->second;
}

bool StoreWriter::HeldBefore(int domain, Split split, const std::string& source) const {
  const HeldDomain* held = Held(domain);
  return held != nullptr && held->inputs.count({static_cast<int8_t>(split), InputOf(source)}) > 0;
}

void StoreWriter::Add(int domain, const std::string& jpeg, const SampleAttributes& a) {
  IF_CHECK(!committed_) << "Add after Commit";
  IF_REQUIRE(domain >= 0 && domain < static_cast<int>(manifest_.domains.size()),
             "unknown domain index ", domain);
  ValidateAttributes(a, a.source);
  IF_REQUIRE(!HeldBefore(domain, a.split, a.source), a.source, ": already in domain '", manifest_.domains[domain].name,
             "' (split ", kSplits.Name(a.split), ") of store '", options_.dir, "'");
  int width = 0, height = 0;
  PeekStoredImageSize(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size(), a.source, &width, &height);
  IF_REQUIRE(width == options_.image_size && height == options_.image_size, a.source, ": image is ",
             width, "x", height, ", the store holds ", options_.image_size, "x", options_.image_size);

  ShardColumns& c = pending_->columns;
  c.jpeg.insert(c.jpeg.end(), jpeg.begin(), jpeg.end());
  c.offsets.push_back(static_cast<int64_t>(c.jpeg.size()));
  c.table.Push(domain, a, Crc32c(jpeg.data(), jpeg.size()));
  manifest_.domains[domain].counts.counts[static_cast<int>(a.split)][a.label] += 1;
  ++num_added_;
  if (static_cast<int64_t>(c.jpeg.size()) >= options_.shard_max_bytes) FlushShard();
}

void StoreWriter::RecordSkip(const std::string& source, const std::string& reason) {
  manifest_.skipped.push_back({source, reason});
}

void StoreWriter::FlushShard() {
  if (pending_->columns.size() == 0) return;
  const std::string name = ShardName(next_shard_index_++);
  const std::string final_path = JoinPath(options_.dir, name);
  const std::string temp_path = JoinPath(options_.dir, "." + name + ".tmp");
  std::vector<std::string> names;
  for (const DomainEntry& d : manifest_.domains) names.push_back(d.name);
  WriteShardFile(temp_path, pending_->columns, options_.image_size, names);
  FsyncFile(temp_path);
  RenameDurable(temp_path, final_path);
  written_shards_.push_back(final_path);
  manifest_.shards.push_back(
      {name, pending_->columns.size(), FileSize(final_path), FileCrc32c(final_path)});
  pending_ = std::make_unique<PendingShard>();
}

const Manifest& StoreWriter::Commit() {
  IF_CHECK(!committed_) << "Commit twice";
  FlushShard();
  IF_REQUIRE(manifest_.num_samples() > 0, "refusing to write an empty store '", options_.dir,
             "' (no sample was added", manifest_.skipped.empty() ? "" : "; every input was skipped",
             ")");
  WriteFileAtomic(JoinPath(options_.dir, "manifest.json"), ManifestToJson(manifest_));
  committed_ = true;
  return manifest_;
}

}  // namespace instructflip
