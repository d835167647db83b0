// synth, ingest, store: the subcommands that make and inspect stores.
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/ingest.h"
#include "dataio/schema.h"
#include "dataio/store.h"
#include "dataio/synth.h"
#include "launch/commands.h"
#include "launch/flags.h"

namespace instructflip::launch {
namespace {

void PrintManifestSummary(const std::string& dir, const Manifest& m, bool json) {
  if (json) {
    nlohmann::json out;
    out["store"] = dir;
    out["num_samples"] = m.num_samples();
    out["image_size"] = m.image_size;
    out["shards"] = m.shards.size();
    out["skipped"] = m.skipped.size();
    for (const DomainEntry& d : m.domains)
      for (int split = 0; split < 2; ++split)
        out["domains"][d.name][kSplitNames[split]] = {{"live", d.counts.counts[split][0]},
                                                      {"spoof", d.counts.counts[split][1]}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << "store " << dir << ": " << m.num_samples() << " samples, " << m.domains.size()
            << " domains, " << m.shards.size() << " shards, " << m.image_size << "x" << m.image_size
            << " JPEG q" << m.jpeg_quality << ", " << m.skipped.size() << " inputs skipped\n";
  std::cout << std::left << std::setw(16) << "domain" << std::right << std::setw(12) << "train live"
            << std::setw(12) << "train spoof" << std::setw(12) << "test live" << std::setw(12)
            << "test spoof" << std::setw(10) << "total" << "\n";
  for (const DomainEntry& d : m.domains)
    std::cout << std::left << std::setw(16) << d.name << std::right << std::setw(12)
              << d.counts.counts[0][0] << std::setw(12) << d.counts.counts[0][1] << std::setw(12)
              << d.counts.counts[1][0] << std::setw(12) << d.counts.counts[1][1] << std::setw(10)
              << d.counts.total() << "\n";
  for (size_t i = 0; i < m.skipped.size() && i < 10; ++i)
    std::cout << "skipped: " << m.skipped[i].source << ": " << m.skipped[i].reason << "\n";
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
  IF_REQUIRE(!o.out.empty(), "synth: --out DIR is required");
  const Manifest m = Synthesize(o);
  PrintManifestSummary(o.out, m, FLAGS_json);
  return 0;
}

int RunIngest(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "ingest takes no positional arguments");
  IngestOptions o;
  o.out = FLAGS_out;
  o.append = FLAGS_append;
  o.format = ParseIngestFormat(FLAGS_format);
  o.input = FLAGS_input;
  o.root = FLAGS_root;
  o.domain = FLAGS_domain;
  o.split = FLAGS_split;
  o.size = FLAGS_size;
  o.jpeg_quality = FLAGS_quality;
  o.threads = FLAGS_threads;
  o.video_frames = FLAGS_video_frames;
  o.video_first_frame = FLAGS_video_first_frame;
  IF_REQUIRE(!o.out.empty(), "ingest: --out DIR is required");
  IF_REQUIRE(!o.input.empty(), "ingest: --input PATH is required");
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
    PrintManifestSummary(dir, store->manifest(), FLAGS_json);
    return 0;
  }
  const VerifyReport report = store->Verify();
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
      {"synth",
       "synth --out DIR [--domains 4] [--per-domain N] [--size 224] [--seed S] [--quality 90] [--threads T] [--append]",
       "synthesise the embedded default data: a store of procedural live/spoof faces",
       {"out", "domains", "per_domain", "size", "seed", "frames_per_video", "quality", "threads", "append", "json"},
       RunSynth},
      {"ingest",
       "ingest --format celeba|list|csv --input PATH --out DIR [--domain NAME] [--split train|test] [--root DIR] [--size 224] [--quality 90] [--threads T] [--append]",
       "put a real FAS dataset (CelebA-Spoof, list files, CSV, videos) into a store",
       {"out", "append", "format", "input", "root", "domain", "split", "size", "quality", "threads",
        "video_frames", "video_first_frame", "json"},
       RunIngest},
      {"store", "store info|verify DIR [--json]",
       "counts per domain/split/label; verify re-checks every checksum",
       {"json"},
       RunStore},
  };
}

}  // namespace instructflip::launch
