// synth, ingest, store: the subcommands that make and inspect stores.
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/producers/ingest.h"
#include "dataio/schema.h"
#include "dataio/store.h"
#include "dataio/producers/synth.h"
#include "launch/commands.h"
#include "launch/flags.h"

namespace instructflip::launch {
namespace {

nlohmann::json DomainCountsJson(const std::vector<DomainEntry>& domains) {
  nlohmann::json out = nlohmann::json::object();
  for (const DomainEntry& d : domains)
    for (int split = 0; split < 2; ++split)
      out[d.name][kSplits.Name(static_cast<Split>(split))] = {{"live", d.counts.counts[split][0]}, {"spoof", d.counts.counts[split][1]}};
  return out;
}

void PrintDomainTable(const std::vector<DomainEntry>& domains) {
  std::cout << std::left << std::setw(16) << "domain" << std::right << std::setw(12) << "train live"
            << std::setw(12) << "train spoof" << std::setw(12) << "test live" << std::setw(12)
            << "test spoof" << std::setw(10) << "total" << "\n";
  for (const DomainEntry& d : domains)
    std::cout << std::left << std::setw(16) << d.name << std::right << std::setw(12)
              << d.counts.counts[0][0] << std::setw(12) << d.counts.counts[0][1] << std::setw(12)
              << d.counts.counts[1][0] << std::setw(12) << d.counts.counts[1][1] << std::setw(10)
              << d.counts.total() << "\n";
}

nlohmann::json ManifestSummaryJson(const std::string& dir, const Manifest& m) {
  nlohmann::json out;
  out["store"] = dir;
  out["num_samples"] = m.num_samples();
  out["image_size"] = m.image_size;
  out["shards"] = m.shards.size();
  out["skipped"] = m.skipped.size();
  out["domains"] = DomainCountsJson(m.domains);
  return out;
}

void PrintManifestSummary(const std::string& dir, const Manifest& m, bool json) {
  if (json) {
    std::cout << ManifestSummaryJson(dir, m).dump(2) << "\n";
    return;
  }
  std::cout << "store " << dir << ": " << m.num_samples() << " samples, " << m.domains.size()
            << " domains, " << m.shards.size() << " shards, " << m.image_size << "x" << m.image_size
            << " JPEG q" << m.jpeg_quality << ", " << m.skipped.size() << " inputs skipped\n";
  PrintDomainTable(m.domains);
  for (size_t i = 0; i < m.skipped.size() && i < 10; ++i)
    std::cout << "skipped: " << m.skipped[i].source << ": " << m.skipped[i].reason << "\n";
}

// Per domain, how many samples hold each value of each style/content
// attribute: what the questions about them can be trained on (-1 = unknown,
// its answer masked).
nlohmann::json AttributeValueCounts(const Store& store) {
  struct Column {
    const char* name;
    const std::vector<int8_t>* values;
    std::vector<const char*> names;
  };
  const SampleTable& t = store.table();
  const std::vector<Column> columns = {
      {"spoof_type", &t.spoof_type, {kSpoofTypeNames.begin(), kSpoofTypeNames.end()}},
      {"illumination", &t.illumination, {kIlluminationNames.begin(), kIlluminationNames.end()}},
      {"environment", &t.environment, {kEnvironmentNames.begin(), kEnvironmentNames.end()}},
      {"camera_quality", &t.camera_quality, {kCameraQualityNames.begin(), kCameraQualityNames.end()}}};
  nlohmann::json out = nlohmann::json::object();
  for (size_t d = 0; d < store.manifest().domains.size(); ++d) {
    nlohmann::json& domain = out[store.manifest().domains[d].name];
    for (const Column& c : columns) {
      std::vector<int64_t> count(c.names.size() + 1, 0);  // last: unknown
      for (int64_t i = 0; i < t.size(); ++i)
        if (t.domain[i] == static_cast<int32_t>(d)) {
          const int8_t v = (*c.values)[i];
          ++count[v >= 0 && v < static_cast<int8_t>(c.names.size()) ? v : c.names.size()];
        }
      nlohmann::json& values = domain[c.name] = nlohmann::json::object();
      for (size_t v = 0; v < c.names.size(); ++v)
        if (count[v] > 0) values[c.names[v]] = count[v];
      if (count.back() > 0) values["unknown"] = count.back();
    }
  }
  return out;
}

void PrintAttributeValueCounts(const nlohmann::json& counts) {
  std::cout << "samples per attribute value (unknown: not annotated, its question is not trained on):\n";
  for (const auto& [domain, columns] : counts.items())
    for (const auto& [column, values] : columns.items()) {
      std::cout << std::left << std::setw(16) << domain << std::setw(16) << column;
      for (const auto& [value, count] : values.items()) std::cout << " " << value << " " << count.get<int64_t>();
      std::cout << "\n";
    }
}

// ingest --dry-run: the inputs every label file lists, checked, nothing read or written.
void PrintIngestPreview(const IngestOptions& o, const IngestPreview& p, bool json) {
  if (json) {
    std::cout << nlohmann::json{{"dry_run", true},
                                {"input", o.input},
                                {"inputs", p.inputs},
                                {"videos", p.videos},
                                {"repeats", p.repeats},
                                {"domains", DomainCountsJson(p.domains)}}
                     .dump(2)
              << "\n";
    return;
  }
  std::cout << "ingest --dry-run " << o.input << ": " << p.inputs << " inputs to read (" << p.videos
            << " videos, " << o.video_frames << " frames each), " << p.repeats
            << " repeated rows to skip; store " << o.out << " not touched\n";
  PrintDomainTable(p.domains);
}

int RunSynth(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "synth takes no positional arguments");
  SynthOptions o;
  o.out = FLAGS_out;
  o.domains = FLAGS_domains;
  o.per_domain = FLAGS_per_domain;
  o.size = FLAGS_size;
  o.seed = FLAGS_seed;
  o.frames_per_video = FLAGS_frames_per_video;
  o.jpeg_quality = FLAGS_quality;
  o.threads = FLAGS_threads;
  o.append = FLAGS_append;
  o.progress = ProgressFlags();
  const Manifest m = Synthesize(o);
  PrintManifestSummary(o.out, m, FLAGS_json);
  return 0;
}

int RunIngest(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "ingest takes no positional arguments");
  IngestOptions o;
  o.out = FLAGS_out;
  o.append = FLAGS_append;
  o.format = kIngestFormats.Parse(FLAGS_format, "--format");
  o.input = FLAGS_input;
  o.root = FLAGS_root;
  o.domain = FLAGS_domain;
  if (!FLAGS_split.empty()) o.split = kSplits.Parse(FLAGS_split, "--split");
  o.size = FLAGS_size;
  o.jpeg_quality = FLAGS_quality;
  o.threads = FLAGS_threads;
  o.video_frames = FLAGS_video_frames;
  o.video_first_frame = FLAGS_video_first_frame;
  o.allow_outside_root = FLAGS_allow_outside_root;
  o.camera_quality_csv = FLAGS_camera_quality;
  o.encoding = kIngestEncodings.Parse(FLAGS_encoding, "--encoding");
  o.progress = ProgressFlags();
  if (FLAGS_dry_run) {
    PrintIngestPreview(o, PreviewIngest(o), FLAGS_json);
    return 0;
  }
  const IngestReport report = Ingest(o);
  std::cerr << "ingest: added " << report.added << " samples, skipped " << report.skipped << "\n";
  PrintManifestSummary(o.out, report.manifest, FLAGS_json);
  return 0;
}

int RunStore(const std::vector<std::string>& args) {
  IF_REQUIRE(args.size() == 2 && (args[0] == "info" || args[0] == "verify"),
             "usage: instructflip store info|verify DIR");
  const std::string& dir = args[1];
  auto store = Store::Open(dir);
  if (args[0] == "info") {
    const nlohmann::json values = AttributeValueCounts(*store);
    if (FLAGS_json) {
      nlohmann::json out = ManifestSummaryJson(dir, store->manifest());
      out["values"] = values;
      std::cout << out.dump(2) << "\n";
    } else {
      PrintManifestSummary(dir, store->manifest(), false);
      PrintAttributeValueCounts(values);
    }
    return 0;
  }
  const VerifyReport report = store->Verify(FLAGS_deep, ProgressFlags());
  if (FLAGS_json) {
    std::cout << nlohmann::json{{"ok", report.ok},
                                {"shards_checked", report.shards_checked},
                                {"samples_checked", report.samples_checked},
                                {"first_error", report.first_error}}
                     .dump(2)
              << "\n";
  } else if (report.ok) {
    std::cout << "store " << dir << ": OK (" << report.shards_checked << " shards, "
              << report.samples_checked << " samples verified)\n";
  } else {
    std::cout << "store " << dir << ": DAMAGED: " << report.first_error << "\n";
  }
  return report.ok ? 0 : 1;
}

}  // namespace

std::vector<Command> DataCommands() {
  return {
      {"synth", "", "synthesise the embedded default data: a store of procedural live/spoof faces",
       {Required("out", "DIR", "store directory to create"),
        Optional("domains", "N", "number of synthetic domains"),
        Optional("per_domain", "N", "samples per domain"),
        Optional("size", "PX", "image side in pixels"),
        Optional("seed", "S", "random seed (64-bit)"),
        Optional("frames_per_video", "N", "frames per synthetic video"),
        Optional("quality", "Q", "JPEG quality, 1..100 (each domain's style may lower it, never below 60)"),
        Optional("threads", "T", "rendering threads"),
        Switch("append", "add the domains to an existing store"),
        Switch("json", "print the store summary as JSON (progress lines as JSON too)"),
        Switch("quiet", "no progress lines")},
       false, "", RunSynth},
      {"ingest", "", "put a real FAS dataset (CelebA-Spoof, list files, CSV, videos) into a store",
       {Required("format", kIngestFormats.Alternatives(), "how the input lists images and labels"),
        Required("input", "PATH", "dataset root (celeba), list file (list) or CSV file (csv)"),
        Required("out", "DIR", "store directory to create"),
        Optional("domain", "NAME", "domain name (csv: for rows that name none)"),
        Optional("split", kSplits.Alternatives(), "split of every listed sample (list, csv without a split column)"),
        Optional("root", "DIR", "directory relative paths are resolved against"),
        Optional("size", "PX", "image side in pixels"),
        Optional("quality", "Q", "JPEG quality, 1..100"),
        Optional("encoding", kIngestEncodings.Alternatives(),
                 "stored pixels: JPEG at --quality, lossless PNG, or the source bytes where nothing changes them"),
        Optional("threads", "T", "decode/encode threads, 1..256"),
        Optional("video_frames", "N", "frames sampled per video"),
        Optional("video_first_frame", "K", "first sampled frame of a video"),
        Switch("append", "add to an existing store: a new domain, or another split of one it holds"),
        Switch("allow_outside_root", "accept listed paths that leave the root ('../', absolute)"),
        Optional("camera_quality", "CSV", "celeba: per-image camera quality (path,camera_quality) over the device lists"),
        Switch("dry_run", "check the label files and print what would be ingested; read no image, write nothing"),
        Switch("json", "print the store summary as JSON (progress lines as JSON too)"),
        Switch("quiet", "no progress lines")},
       false, "", RunIngest},
      {"store", "info|verify DIR", "counts per domain/split/label and per attribute value; verify re-checks every checksum",
       {Switch("json", "print JSON (progress lines as JSON too)"),
        Switch("quiet", "no progress lines"),
        Switch("deep", "verify: also decode every image (slower; finds a JPEG damaged before its checksum was taken)")},
       false, "", RunStore},
  };
}

}  // namespace instructflip::launch
