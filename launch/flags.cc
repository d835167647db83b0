// Every command-line flag's type and global default, defined once (gflags keeps
// one namespace per binary). What a flag means for a subcommand, that
// subcommand's own default and whether it is required live in the subcommand's
// table (commands.h), which drives parsing and `--help` (command_line.h).
#include "launch/flags.h"

#include <cmath>
#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"

DEFINE_string(out, "", "");
DEFINE_int32(domains, 4, "");
DEFINE_int32(per_domain, 200, "");
DEFINE_int32(size, 224, "");
DEFINE_uint64(seed, 0, "");
DEFINE_int32(frames_per_video, 3, "");
DEFINE_int32(quality, 90, "");
DEFINE_int32(threads, 2, "");
DEFINE_bool(append, false, "");
DEFINE_string(format, "", "");
DEFINE_string(input, "", "");
DEFINE_string(root, "", "");
DEFINE_string(domain, "", "");
DEFINE_string(split, "", "");
DEFINE_int32(video_frames, 2, "");
DEFINE_int32(video_first_frame, 6, "");
DEFINE_string(store, "", "");
DEFINE_int32(batch, 32, "");
DEFINE_int32(images, 1024, "");
DEFINE_int32(epochs, 5, "");
DEFINE_bool(json, false, "");
DEFINE_bool(deep, false, "");
DEFINE_bool(allow_config_change, false, "");
DEFINE_bool(allow_outside_root, false, "");
DEFINE_string(camera_quality, "", "");
DEFINE_string(encoding, "jpeg", "");
DEFINE_string(model, "tiny", "");
DEFINE_int32(steps, 5, "");
DEFINE_string(precision, "fp32", "");
DEFINE_string(config, "", "");
DEFINE_string(run_dir, "", "");
DEFINE_string(resume, "auto", "");
DEFINE_int32(ranks, 1, "");
DEFINE_double(link_gbps, 0, "");
DEFINE_string(scores, "", "");
DEFINE_string(threshold, "", "");
DEFINE_string(checkpoint, "", "");
DEFINE_string(targets, "", "");
DEFINE_string(protocol, "", "");
DEFINE_int32(job, -1, "");
DEFINE_string(seeds, "", "");
DEFINE_bool(aggregate, false, "");
DEFINE_bool(slurm, false, "");
DEFINE_bool(dry_run, false, "");
DEFINE_int32(explain, 0, "");
DEFINE_string(device, "auto", "");
DEFINE_bool(quiet, false, "");
DEFINE_string(hf, "", "");
DEFINE_bool(verbose, false, "");  // every subcommand: errors name their source line too

std::optional<double> instructflip::launch::ThresholdFlag(const char* without_it) {
  if (FLAGS_threshold.empty()) return std::nullopt;
  // A string flag, so that "not given" needs no magic number and "nan" is ours to refuse.
  size_t used = 0;
  double value = std::nan("");
  try {
    value = std::stod(FLAGS_threshold, &used);
  } catch (const std::exception&) {
  }
  IF_REQUIRE(used == FLAGS_threshold.size() && std::isfinite(value) && value >= 0 && value <= 1,
             "--threshold must be a number in [0, 1], got '", FLAGS_threshold,
             "' (leave it out for ", without_it, ")");
  return value;
}

double instructflip::launch::ProgressIntervalSeconds() {
  const char* text = std::getenv("INSTRUCTFLIP_PROGRESS_EVERY_S");
  if (text == nullptr || *text == '\0') return 10;
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  IF_REQUIRE(*end == '\0' && std::isfinite(seconds) && seconds >= 0, "INSTRUCTFLIP_PROGRESS_EVERY_S must be a number of seconds >= 0, got '", text, "'");
  return seconds;
}

instructflip::ProgressSink instructflip::launch::ProgressFlags() {
  if (FLAGS_quiet) return {};
  if (FLAGS_json)
    return {[](const ProgressUpdate& u) {
      const nlohmann::json line{{"progress", u.what}, {"unit", u.unit},         {"done", u.done},
                                {"total", u.total},   {"rate", u.rate},         {"eta_s", u.eta_s},
                                {"elapsed_s", u.elapsed_s}, {"final", u.final}};
      std::cerr << line.dump() << std::endl;
    }, ProgressIntervalSeconds()};
  return {[](const ProgressUpdate& u) { std::cerr << ProgressText(u) << std::endl; }, ProgressIntervalSeconds()};
}

void instructflip::launch::ShowProgressLine(const std::string& what, const std::string& line) {
  if (FLAGS_quiet) return;
  if (FLAGS_json)
    std::cerr << nlohmann::json{{"progress", what}, {"line", line}}.dump() << std::endl;
  else
    std::cerr << what << ": " << line << std::endl;
}
