#include "dataio/store.h"

#include <fcntl.h>
#include <unistd.h>

#include <sstream>

#include "dataio/base/check.h"
#include "dataio/base/crc32c.h"
#include "dataio/base/file_util.h"
#include "dataio/image_codec.h"

namespace instructflip {

std::shared_ptr<const Store> Store::Open(const std::string& dir) {
  std::shared_ptr<Store> store(new Store());
  store->dir_ = dir;
  store->manifest_ = ReadManifest(dir);
  const Manifest& m = store->manifest_;
  IF_REQUIRE(m.num_samples() > 0 && !m.shards.empty(), "store '", dir,
             "' is empty (its manifest lists no samples)");

  std::vector<DomainCounts> counted(m.domains.size());
  for (size_t s = 0; s < m.shards.size(); ++s) {
    const ShardEntry& entry = m.shards[s];
    const std::string path = JoinPath(dir, entry.path);
    IF_REQUIRE(PathExists(path), dir, "/manifest.json: shards[", s, "].path = '", entry.path,
               "' does not exist");
    const int64_t bytes = FileSize(path);
    IF_REQUIRE(bytes == entry.bytes, path, ": size ", bytes, " bytes, the manifest says ",
               entry.bytes, " (truncated or replaced shard; run 'instructflip store verify')");
    ShardHeader header;
    ShardColumns columns = ReadShardFile(path, /*with_jpeg=*/false, &header);
    IF_REQUIRE(columns.size() == entry.num_samples, path, ": holds ", columns.size(),
               " samples, the manifest says ", entry.num_samples);
    IF_REQUIRE(header.image_size == m.image_size, path, ": image size ", header.image_size,
               ", the manifest says ", m.image_size);
    const int64_t first = store->table_.size();
    for (int64_t i = 0; i < columns.size(); ++i) {
      const int d = columns.table.domain[i];
      IF_REQUIRE(d >= 0 && d < static_cast<int>(m.domains.size()), path, ": sample ", i,
                 ": field 'domain' = ", d, " but the manifest has ", m.domains.size(), " domains");
      counted[d].counts[columns.table.split[i]][columns.table.label[i]] += 1;
      store->sample_shard_.push_back(static_cast<int32_t>(s));
      store->sample_offset_.push_back(columns.offsets[i]);
      store->sample_length_.push_back(static_cast<int32_t>(columns.offsets[i + 1] - columns.offsets[i]));
    }
    store->table_.Append(columns.table);
    ShardHandle handle;
    handle.path = path;
    handle.jpeg_file_offset = header.jpeg_file_offset;
    handle.first_sample = first;
    handle.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    IF_SYSCALL(handle.fd, "open ", path);
    store->shards_.push_back(handle);
  }
  for (size_t d = 0; d < m.domains.size(); ++d)
    IF_REQUIRE(counted[d].counts == m.domains[d].counts.counts, dir,
               "/manifest.json: counts of domain '", m.domains[d].name,
               "' do not match the samples in the shards");
  return store;
}

Store::~Store() {
  for (const ShardHandle& shard : shards_)
    if (shard.fd >= 0) ::close(shard.fd);
}

std::string Store::Describe(int64_t i) const {
  const ShardHandle& shard = shards_[sample_shard_[i]];
  std::ostringstream out;
  out << shard.path << " sample " << (i - shard.first_sample) << " (source '" << table_.source[i]
      << "')";
  return out.str();
}

void Store::ReadImageBytes(int64_t i, std::vector<uint8_t>* out) const {
  IF_CHECK(i >= 0 && i < size()) << "sample index " << i << " outside 0.." << size();
  const ShardHandle& shard = shards_[sample_shard_[i]];
  const size_t length = static_cast<size_t>(sample_length_[i]);
  out->resize(length);
  size_t done = 0;
  const off_t base = shard.jpeg_file_offset + sample_offset_[i];
  while (done < length) {
    const ssize_t n = ::pread(shard.fd, out->data() + done, length - done, base + done);
    IF_SYSCALL(n, "read ", Describe(i));
    IF_REQUIRE(n > 0, Describe(i), ": unexpected end of file");
    done += static_cast<size_t>(n);
  }
  const uint32_t crc = Crc32c(out->data(), length);
  IF_REQUIRE(crc == table_.crc32c[i], Describe(i), ": checksum mismatch (stored ", table_.crc32c[i],
             ", read ", crc, "): the shard is damaged");
}

std::vector<int> Store::ResolveDomains(const std::vector<std::string>& names) const {
  std::vector<int> out;
  for (const std::string& name : names) {
    const int d = manifest_.FindDomain(name);
    if (d < 0) {
      std::string known;
      for (const DomainEntry& e : manifest_.domains) known += (known.empty() ? "" : ", ") + e.name;
      IF_FAIL("unknown domain '", name, "' (store '", dir_, "' has: ", known, ")");
    }
    out.push_back(d);
  }
  return out;
}

void Store::ReadCheckedImage(int64_t i, std::vector<uint8_t>* bytes) const {
  ReadImageBytes(i, bytes);
  int width = 0, height = 0;
  PeekStoredImageSize(bytes->data(), bytes->size(), Describe(i), &width, &height);
  IF_REQUIRE(width == image_size() && height == image_size(), Describe(i), ": the image header claims ", width, "x",
             height, " pixels; every image of store '", dir_, "' is ", image_size(), "x", image_size());
}

void Store::DecodeSample(int64_t i, std::vector<uint8_t>* bytes, RgbImage* out) const {
  ReadCheckedImage(i, bytes);
  DecodeStoredImage(bytes->data(), bytes->size(), Describe(i), out);
}

VerifyReport Store::Verify(bool deep, const ProgressSink& progress_sink) const {
  VerifyReport report;
  {
    Progress shards("store verify", "shard files", static_cast<int64_t>(shards_.size()), progress_sink);
    for (size_t s = 0; s < shards_.size(); ++s) {
      const uint32_t crc = FileCrc32c(shards_[s].path);
      ++report.shards_checked;
      shards.Advance();
      if (crc != manifest_.shards[s].crc32c) {
        report.ok = false;
        std::ostringstream out;
        out << shards_[s].path << ": file checksum " << crc << " differs from the manifest's "
            << manifest_.shards[s].crc32c;
        report.first_error = out.str();
        // Keep going to name the first bad sample inside it.
      }
    }
  }
  Progress progress("store verify", deep ? "samples decoded" : "samples", size(), progress_sink);
  std::vector<uint8_t> bytes;
  RgbImage decoded;
  for (int64_t i = 0; i < size(); ++i) {
    try {
      if (deep) {
        DecodeSample(i, &bytes, &decoded);
      } else {
        ReadCheckedImage(i, &bytes);
      }
      ++report.samples_checked;
      progress.Advance();
    } catch (const Error& e) {
      report.ok = false;
      report.first_error += (report.first_error.empty() ? "" : "; first bad sample: ") + std::string(e.what());
      return report;
    }
  }
  return report;
}

}  // namespace instructflip
