// instructflip lodo / demo / report: the command-line side of the
// leave-one-domain-out experiment (trainer/lodo.h; protocols and the plan in
// lodo_protocol.h; one job in lodo_job.cc).
//
// `lodo --protocol P --run-dir DIR` plans the protocol's jobs into DIR
// (protocol.yaml holds the resolved protocol and overrides; re-planning DIR
// with anything else is refused), then runs each unfinished job one after
// another under mpirun (or submits them as a Slurm job array with --slurm),
// and aggregates one table.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <sstream>

#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>
#include <gflags/gflags.h>
#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/producers/synth.h"
#include "launch/commands.h"
#include "launch/config_paths.h"
#include "launch/flags.h"
#include "launch/job_runtime.h"
#include "launch/lodo_protocol.h"
#include "launch/subprocess.h"
#include "trainer/checkpoint.h"
#include "trainer/report.h"
#include "trainer/run_files.h"

namespace instructflip::launch {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// --ranks when given on the command line (it overrides the protocol's).
std::optional<int> RanksFlag() {
  if (gflags::GetCommandLineFlagInfoOrDie("ranks").is_default) return std::nullopt;
  return FLAGS_ranks;
}

// --seeds 2,3,4 (empty: the protocol's own seeds, if any).
std::vector<uint64_t> SeedsFlag() {
  if (FLAGS_seeds.empty()) return {};
  const std::vector<std::string> items = absl::StrSplit(FLAGS_seeds, ',');
  return ParseSeeds(items, "--seeds");
}

// The command that runs job `index` with `ranks` ranks.
std::vector<std::string> JobCommand(const std::string& run_dir, int index, int ranks, const std::string& mpirun) {
  std::vector<std::string> argv;
  if (ranks > 1) {
    argv = {mpirun, "-np", std::to_string(ranks), "--oversubscribe"};
    if (geteuid() == 0) argv.push_back("--allow-run-as-root");
  }
  for (const std::string& a : {SelfPath(), std::string("lodo"), std::string("--run-dir"), run_dir,
                               std::string("--job"), std::to_string(index)})
    argv.push_back(a);
  return argv;
}

void PrintPlan(const std::string& run_dir, const LodoProtocol& p) {
  std::cout << "lodo: protocol " << p.name << ", " << p.jobs.size() << " job(s), " << p.ranks
            << " rank(s) each, run directory " << run_dir << "\n";
  for (size_t k = 0; k < p.jobs.size(); ++k) {
    const LodoJob& job = p.jobs[k];
    const std::string job_dir = LodoRunFiles{run_dir}.Job(job.name);
    const char* state = LodoRunFiles{run_dir}.Finished(job.name)                                   ? "finished"
                        : CheckpointStore(job_dir).FindLatestComplete().has_value() ? "partial: resumes"
                                                                                     : "to run";
    std::cout << "  [" << k << "] " << job.name << ": train " << absl::StrJoin(job.train, "+") << " -> test "
              << absl::StrJoin(job.test, "+") << " (" << state << ")\n";
  }
}

// Relays a running job's progress from its log: every 10 s (ProgressFlags),
// its newest progress line (a training step, the T5 warm-up, an evaluation;
// else its newest line), so the driver is never silent for long while a job works.
class JobRelay {
 public:
  // Reads what the log gains from now on (a resumed job appends to the killed attempt's).
  JobRelay(std::string what, std::string log) : what_(std::move(what)), log_(std::move(log)) {
    std::error_code missing;
    const auto size = std::filesystem::file_size(log_, missing);
    offset_ = missing ? 0 : static_cast<std::streamoff>(size);
  }
  void operator()() {
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_).count() < std::max(1.0, ProgressIntervalSeconds())) return;
    last_ = now;
    std::ifstream in(log_, std::ios::binary);
    in.seekg(offset_);
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    chunk.resize(chunk.rfind('\n') == std::string::npos ? 0 : chunk.rfind('\n') + 1);  // whole lines only
    offset_ += static_cast<std::streamoff>(chunk.size());
    std::istringstream lines(chunk);
    std::string newest, newest_progress;
    for (std::string line; std::getline(lines, line);) {
      // glog's "I20261205 11:00:00.123456  1234 file.cc:123] " prefix says nothing here.
      if (const size_t end = line.find("] "); end != std::string::npos && !line.empty() && line[0] == 'I')
        line = line.substr(end + 2);
      if (line.empty()) continue;
      newest = line;
      if (line.rfind("step ", 0) == 0 || line.find("warm-up") != std::string::npos ||
          line.rfind("eval ", 0) == 0 || line.rfind("validation ", 0) == 0)
        newest_progress = line;
    }
    if (!newest_progress.empty() || !newest.empty()) shown_ = newest_progress.empty() ? newest : newest_progress;
    const std::string seconds = std::to_string(int(std::chrono::duration<double>(now - start_).count())) + " s";
    ShowProgressLine(what_, shown_.empty() ? "running, " + seconds : shown_ + " (" + seconds + ")");
  }

 private:
  std::string what_, log_;
  std::streamoff offset_ = 0;  // of the first line not read yet
  std::string shown_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_ = start_;
};

// Runs every unfinished job locally, one after another, then aggregates.
int RunLocally(const std::string& run_dir, const LodoProtocol& p) {
  std::string mpirun;
  int ranks = p.ranks;
  if (ranks > 1) {
    mpirun = FindOnPath("mpirun");
    if (mpirun.empty()) {
      std::cout << "lodo: mpirun not found: running each job with 1 rank (same global batch and data order)\n";
      ranks = 1;
    }
  }
  ForwardStopSignalsToChildren();
  for (size_t k = 0; k < p.jobs.size(); ++k) {
    const LodoJob& job = p.jobs[k];
    if (LodoRunFiles{run_dir}.Finished(job.name)) {
      std::cout << "lodo: [" << k << "] " << job.name << ": finished before, skipped\n";
      continue;
    }
    const LodoRunFiles files{run_dir};
    std::filesystem::create_directories(files.Job(job.name));
    const std::string log = files.Log(job.name);
    std::cout << "lodo: [" << k << "] " << job.name << ": train " << absl::StrJoin(job.train, "+") << " -> test "
              << absl::StrJoin(job.test, "+") << " on " << ranks << " rank(s), log " << log << std::endl;
    const auto start = std::chrono::steady_clock::now();
    JobRelay relay("lodo: [" + std::to_string(k) + "] " + job.name, log);
    const int64_t log_start = PathExists(log) ? FileSize(log) : 0;
    const int code = RunLogged(JobCommand(run_dir, static_cast<int>(k), ranks, mpirun), log, std::ref(relay));
    if (code == kExitRequeue) {
      std::cout << "lodo: job " << job.name << " stopped after a checkpoint; run the same command again to resume\n";
      return kExitRequeue;
    }
    IF_REQUIRE(code == 0 && LodoRunFiles{run_dir}.Finished(job.name), "lodo: job ", job.name, " failed (exit ", code,
               "); from ", log, ":\n", FailureLines(log, log_start, 8));
    const nlohmann::json result = nlohmann::json::parse(ReadFile(files.Result(job.name)));
    std::cout << "lodo: [" << k << "] " << job.name << ": done in " << std::fixed << std::setprecision(0)
              << SecondsSince(start) << " s" << std::setprecision(2);
    for (const std::string& target : job.test) {
      const nlohmann::json& m = result["domains"][target];
      if (m["hter"].is_null()) continue;  // a target with one class only has no HTER (nor AUC)
      std::cout << "; " << target << " HTER " << m["hter"].get<double>() << "%";
      if (!m["auc"].is_null()) std::cout << ", AUC " << m["auc"].get<double>() << "%";
    }
    std::cout << std::endl;
  }
  std::cout << "\n" << AggregateLodo(run_dir, p) << "\nlodo: table " << LodoRunFiles{run_dir}.Table() << ", report "
            << LodoRunFiles{run_dir}.Report() << "\n";
  return 0;
}

// Submits the unfinished jobs as one Slurm job array (slurm/lodo_array.sbatch)
// and an aggregation job that runs after it.
int SubmitToSlurm(const std::string& run_dir, const LodoProtocol& p) {
  std::vector<std::string> unfinished;
  for (size_t k = 0; k < p.jobs.size(); ++k)
    if (!LodoRunFiles{run_dir}.Finished(p.jobs[k].name)) unfinished.push_back(std::to_string(k));
  if (unfinished.empty()) {
    std::cout << "lodo: every job is finished\n\n" << AggregateLodo(run_dir, p);
    return 0;
  }
  IF_REQUIRE(!FindOnPath("sbatch").empty(), "lodo --slurm: sbatch not found on PATH");
  const std::string slurm_dir = JoinPath(SourceDirectory(), "slurm");
  const std::string run = std::filesystem::absolute(run_dir).string();
  std::filesystem::create_directories(LodoRunFiles{run}.Jobs());  // Slurm opens the tasks' logs there
  const std::string exports = "--export=ALL,INSTRUCTFLIP_SLURM_DIR=" + slurm_dir + ",INSTRUCTFLIP=" + SelfPath();
  const std::string array = Capture(
      "sbatch --parsable --array=" + absl::StrJoin(unfinished, ",") + " --ntasks=" + std::to_string(p.ranks) +
      " --job-name=" + Quote("lodo-" + p.name) + " --output=" + Quote(run + "/jobs/slurm-%A_%a.log") + " " +
      Quote(exports) + " " + Quote(JoinPath(slurm_dir, "lodo_array.sbatch")) + " " + Quote(run));
  const std::string aggregate = Capture(
      "sbatch --parsable --dependency=afterany:" + array + " --ntasks=1 --job-name=" +
      Quote("lodo-" + p.name + "-aggregate") + " --output=" + Quote(run + "/slurm-aggregate-%j.log") + " " +
      Quote(exports) + " --wrap=" + Quote(Quote(SelfPath()) + " lodo --run-dir " + Quote(run) + " --aggregate"));
  std::cout << "lodo: submitted job array " << array << " (jobs " << absl::StrJoin(unfinished, ",")
            << ") and aggregation job " << aggregate << "; the table will be " << LodoRunFiles{run}.Table() << "\n";
  return 0;
}

int RunLodo(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "lodo takes no positional arguments");
  IF_REQUIRE(FLAGS_job >= 0 || gflags::GetCommandLineFlagInfoOrDie("job").is_default, "--job must be >= 0, got ",
             FLAGS_job);
  if (FLAGS_job >= 0) {
    IF_REQUIRE(FLAGS_protocol.empty() && SetOverrides().empty() && FLAGS_seeds.empty(),
               "lodo --job runs a planned job: give only --run-dir and --job");
    return RunLodoJob(FLAGS_run_dir, FLAGS_job);
  }
  if (FLAGS_aggregate) {
    IF_REQUIRE(FLAGS_protocol.empty() && SetOverrides().empty() && FLAGS_seeds.empty() && !FLAGS_dry_run &&
                   gflags::GetCommandLineFlagInfoOrDie("ranks").is_default,
               "lodo --aggregate writes the tables of a planned run: give only --run-dir");
    std::cout << AggregateLodo(FLAGS_run_dir, LoadSavedProtocol(FLAGS_run_dir));
    return 0;
  }
  const LodoProtocol p =
      PlanProtocol(FLAGS_run_dir, FLAGS_protocol, RanksFlag(), SetOverrides(), SeedsFlag(), /*persist=*/!FLAGS_dry_run);
  PrintPlan(FLAGS_run_dir, p);
  if (FLAGS_dry_run) return 0;
  return FLAGS_slurm ? SubmitToSlurm(FLAGS_run_dir, p) : RunLocally(FLAGS_run_dir, p);
}

// instructflip demo: the main job on the embedded default data.
int RunDemo(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "demo takes no positional arguments");
  const std::string& out = FLAGS_out;
  const std::string store = JoinPath(out, "store");
  const auto start = std::chrono::steady_clock::now();
  if (!PathExists(JoinPath(store, "manifest.json"))) {
    std::cout << "demo: synthesising a 4-domain store in " << store << std::endl;
    SynthOptions synth;
    synth.out = store;
    synth.domains = 4;
    // 400 frames (~133 videos) per domain: ~27 test videos per held-out target.
    synth.per_domain = FLAGS_per_domain;
    synth.size = 64;  // the tiny model's input
    synth.seed = FLAGS_seed;
    synth.threads = FLAGS_threads;
    synth.progress = ProgressFlags();
    Synthesize(synth);
  }
  const std::string run_dir = JoinPath(out, "lodo");
  std::vector<std::string> overrides = {"data.store=" + std::filesystem::absolute(store).string()};
  overrides.insert(overrides.end(), SetOverrides().begin(), SetOverrides().end());
  const LodoProtocol p = PlanProtocol(run_dir, "synthetic_lodo", RanksFlag(), overrides);
  PrintPlan(run_dir, p);
  const int code = RunLocally(run_dir, p);
  if (code == 0)
    std::cout << "demo: finished in " << std::fixed << std::setprecision(0) << SecondsSince(start) << " s; open "
              << LodoRunFiles{run_dir}.Report() << "\n";
  return code;
}

int RunReport(const std::vector<std::string>& args) {
  IF_REQUIRE(args.size() == 1, "usage: instructflip report RUN_DIR [--out FILE.html]");
  if (!FLAGS_out.empty()) RequireWritableFilePath(FLAGS_out, "--out");
  std::cout << "report: " << WriteReport(args[0], FLAGS_out) << "\n";
  return 0;
}

}  // namespace

std::vector<Command> LodoCommands() {
  return {{"lodo", "", "leave-one-domain-out: train and test each job of a protocol (locally or as a Slurm array), one table",
           {Required("run_dir", "DIR", "the run directory (plan, jobs, table)"),
            Optional("protocol", "NAME|FILE", "protocol name (configs/protocols/NAME.yaml) or YAML file")
                .Absent("continue the run directory's plan"),
            Optional("ranks", "N", "MPI ranks per job").Absent("the protocol's"),
            Optional("seeds", "S1,S2,...", "run every job once per seed; the table adds mean ± std over seeds")
                .Absent("the protocol's seeds, or the training config's one seed"),
            Switch("slurm", "submit the unfinished jobs as a Slurm job array instead of running them here"),
            Switch("dry_run", "check and print the plan; write nothing"),
            Optional("job", "K", "run only job K (0-based) of the planned run directory, as an MPI rank")
                .Absent("every unfinished job"),
            Switch("aggregate", "only aggregate the finished jobs' results into one table"),
            Switch("quiet", "no progress lines (a running job's newest log line every 10 s)"),
            Switch("json", "progress as one JSON object per line")},
           true,
           "      instructflip lodo --run-dir DIR --protocol NAME|FILE [--ranks N] [--slurm] [--dry-run] [--set ...]\n"
           "      instructflip lodo --run-dir DIR --job K     (one job, as an MPI rank)\n"
           "      instructflip lodo --run-dir DIR --aggregate (the table of a finished run)",
           RunLodo},
          {"demo", "", "the main job on the embedded synthetic data: a 4-domain store, synthetic_lodo, table and report",
           {Optional("out", "DIR", "demo directory (store, LODO run, report)", "demo-run"),
            Optional("ranks", "N", "MPI ranks per job").Absent("synthetic_lodo's"),
            Optional("per_domain", "N", "synthetic samples per domain", "400"),
            Optional("seed", "S", "random seed of the synthetic store"),
            Optional("threads", "T", "rendering threads"),
            Switch("quiet", "no progress lines"),
            Switch("json", "progress as one JSON object per line")},
           true, "", RunDemo},
          {"report", "RUN_DIR", "one self-contained HTML page of a run (lodo or train): tables, curves, ROC, explanations",
           {Optional("out", "FILE.html", "where to write it").Absent("RUN_DIR/report.html")}, false, "", RunReport}};
}

}  // namespace instructflip::launch
