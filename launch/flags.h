// Every command-line flag of `instructflip`, declared once (flags.cc defines
// them). A subcommand reads only the flags its table lists (commands.h).
#pragma once

#include <optional>

#include <gflags/gflags.h>

#include "dataio/base/progress.h"

DECLARE_string(out);
DECLARE_int32(domains);
DECLARE_int32(per_domain);
DECLARE_int32(size);
DECLARE_uint64(seed);
DECLARE_int32(frames_per_video);
DECLARE_int32(quality);
DECLARE_int32(threads);
DECLARE_bool(append);
DECLARE_string(format);
DECLARE_string(input);
DECLARE_string(root);
DECLARE_string(domain);
DECLARE_string(split);
DECLARE_int32(video_frames);
DECLARE_int32(video_first_frame);
DECLARE_string(store);
DECLARE_int32(batch);
DECLARE_int32(images);
DECLARE_int32(epochs);
DECLARE_bool(json);
DECLARE_bool(deep);
DECLARE_bool(allow_config_change);
DECLARE_bool(allow_outside_root);
DECLARE_string(camera_quality);
DECLARE_string(encoding);
DECLARE_string(model);
DECLARE_int32(steps);
DECLARE_string(precision);
DECLARE_string(config);
DECLARE_string(run_dir);
DECLARE_string(resume);
DECLARE_int32(ranks);
DECLARE_double(link_gbps);
DECLARE_string(scores);
DECLARE_string(threshold);
DECLARE_string(checkpoint);
DECLARE_string(targets);
DECLARE_string(protocol);
DECLARE_int32(job);
DECLARE_string(seeds);
DECLARE_bool(aggregate);
DECLARE_bool(slurm);
DECLARE_bool(dry_run);
DECLARE_int32(explain);
DECLARE_string(device);
DECLARE_bool(quiet);
DECLARE_string(hf);
DECLARE_bool(verbose);

namespace instructflip::launch {

// --threshold: nullopt when not given; given, it must be a number in [0, 1].
// `without_it` says what a command does then (its error message tells it).
inline constexpr char kWithoutThresholdEer[] = "each domain's own EER threshold, an oracle";  // eval, metrics
inline constexpr char kWithoutThresholdStored[] = "the model's stored threshold, where it has one";
std::optional<double> ThresholdFlag(const char* without_it);

// How this command shows progress of long work (dataio/base/progress.h): a
// line on stderr every 10 s ("synth: 1200/4800 images, 350/s, ETA 10 s"), one
// JSON object per line with --json, nothing with --quiet. The environment's
// INSTRUCTFLIP_PROGRESS_EVERY_S sets another interval (tests: 0, every update).
ProgressSink ProgressFlags();
double ProgressIntervalSeconds();
ProgressSink ProgressFlags();
// One relayed line of a child's progress (a LODO job's) shown the same way.
void ShowProgressLine(const std::string& what, const std::string& line);

}  // namespace instructflip::launch
