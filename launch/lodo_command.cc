// instructflip lodo / demo: leave-one-domain-out protocols (configs/protocols/).
//
// A protocol is a list of jobs, each "train on these domains, test on those".
// `lodo --protocol P --run-dir DIR` plans them into DIR (protocol.yaml holds
// the resolved protocol and overrides; re-planning DIR with anything else is
// refused), then runs each unfinished job one after another under mpirun (or
// submits them as a Slurm job array with --slurm), and aggregates one table.
// One job (`lodo --run-dir DIR --job K`, an MPI rank) lives in DIR/jobs/NAME/:
//   1. train         a training run directory (checkpoints, metrics.jsonl),
//                    resumed from its newest checkpoint; SIGUSR1 -> exit 3
//   2. validate      score the source domains' held-out validation videos;
//                    their pooled EER threshold is the job's threshold (no
//                    target data is used to pick it or the checkpoint: the
//                    final step's weights are evaluated)
//   3. test          score the targets at that threshold (eval/), also with each
//                    target's own EER threshold (oracle: the reference's mode)
// Scoring never sees a label: each sample's style question follows
// eval.style_question (model/scoring.h).
//   4. result.json   written last: a job with it is finished and skipped
// cost.json accumulates each run segment's wall time x ranks.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <absl/strings/str_join.h>
#include <gflags/gflags.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/store.h"
#include "dataio/synth.h"
#include "launch/commands.h"
#include "launch/config_paths.h"
#include "launch/flags.h"
#include "launch/job_runtime.h"
#include "launch/train_config_yaml.h"
#include "launch/yaml_reader.h"
#include "model/weights.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluator.h"
#include "trainer/report.h"
#include "trainer/trainer.h"

namespace instructflip::launch {
namespace {

struct ProtocolJob {
  std::string name;
  std::vector<std::string> train, test;
};

struct Protocol {
  std::string name;
  std::string train_config;            // absolute path
  int ranks = 1;                       // MPI ranks per job (the global batch is planned for these)
  int explain_per_domain = 0;
  std::vector<std::string> overrides;  // --set given when planning, applied to every job
  std::vector<ProtocolJob> jobs;
};

constexpr char kCheckpointRule[] = "final step (chosen without target data)";

Protocol ParseProtocol(const YAML::Node& root, const std::string& file) {
  Protocol p;
  YamlSection top(root, file, "");
  top.Read("name", &p.name);
  top.Read("train_config", &p.train_config);
  top.Read("ranks", &p.ranks);
  top.Read("explain_per_domain", &p.explain_per_domain);
  top.Read("overrides", &p.overrides);
  const YAML::Node jobs = top.Raw("jobs");
  top.RejectUnknownKeys();
  IF_REQUIRE(!p.name.empty(), file, ": missing key 'name'");
  IF_REQUIRE(!p.train_config.empty(), file, ": missing key 'train_config'");
  IF_REQUIRE(p.ranks >= 1, file, ": 'ranks' must be >= 1, got ", p.ranks);
  IF_REQUIRE(jobs.IsSequence() && jobs.size() > 0, file, ": 'jobs' must be a non-empty list");
  std::set<std::string> names;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const std::string where = "jobs[" + std::to_string(i) + "]";
    IF_REQUIRE(jobs[i].IsMap(), file, ": ", where, " must be a mapping with name, train and test");
    YamlSection section(jobs[i], file, where);
    ProtocolJob job;
    section.Read("name", &job.name);
    section.Read("train", &job.train);
    section.Read("test", &job.test);
    section.RejectUnknownKeys();
    IF_REQUIRE(!job.name.empty() && job.name.find('/') == std::string::npos && job.name[0] != '.', file, ": ",
               where, ".name '", job.name, "' must be a non-empty file name");
    IF_REQUIRE(names.insert(job.name).second, file, ": job name '", job.name, "' appears twice");
    IF_REQUIRE(!job.train.empty() && !job.test.empty(), file, ": ", where, " needs non-empty 'train' and 'test'");
    for (const std::string& t : job.test)
      IF_REQUIRE(std::find(job.train.begin(), job.train.end(), t) == job.train.end(), file, ": ", where,
                 ": target '", t, "' is also a training domain: it would not be held out");
    p.jobs.push_back(std::move(job));
  }
  return p;
}

std::string ProtocolToYaml(const Protocol& p) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << p.name << YAML::Key << "train_config"
      << YAML::Value << p.train_config << YAML::Key << "ranks" << YAML::Value << p.ranks << YAML::Key
      << "explain_per_domain" << YAML::Value << p.explain_per_domain << YAML::Key << "overrides" << YAML::Value
      << YAML::BeginSeq;
  for (const std::string& o : p.overrides) out << o;
  out << YAML::EndSeq << YAML::Key << "jobs" << YAML::Value << YAML::BeginSeq;
  for (const ProtocolJob& j : p.jobs)
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << j.name << YAML::Key << "train"
        << YAML::Value << j.train << YAML::Key << "test" << YAML::Value << j.test << YAML::EndMap;
  out << YAML::EndSeq << YAML::EndMap;
  return std::string("# Resolved by `instructflip lodo`; every job of this run directory reads it.\n") + out.c_str() +
         "\n";
}

std::string JobDirectory(const std::string& run_dir, const ProtocolJob& job) {
  return JoinPath(JoinPath(run_dir, "jobs"), job.name);
}
bool JobFinished(const std::string& run_dir, const ProtocolJob& job) {
  return PathExists(JoinPath(JobDirectory(run_dir, job), "result.json"));
}

Protocol LoadSavedProtocol(const std::string& run_dir) {
  const std::string path = JoinPath(run_dir, "protocol.yaml");
  IF_REQUIRE(PathExists(path), run_dir, " is not a planned LODO run directory (no protocol.yaml); plan it with "
             "`instructflip lodo --protocol P --run-dir ", run_dir, "`");
  return ParseProtocol(LoadYamlFile(path), path);
}

TrainConfig JobTrainConfig(const Protocol& p, const ProtocolJob& job) {
  std::vector<std::string> overrides = p.overrides;
  overrides.push_back("data.train_domains=[" + absl::StrJoin(job.train, ", ") + "]");
  return LoadTrainConfig(p.train_config, overrides);
}

// The protocol for this invocation: from --protocol (+ --ranks, --set), saved
// into the run directory the first time and checked against it afterwards.
Protocol PlanProtocol(const std::string& run_dir, const std::string& protocol,
                      const std::vector<std::string>& overrides) {
  if (protocol.empty()) {
    IF_REQUIRE(overrides.empty(), "lodo: --set is only accepted together with --protocol");
    return LoadSavedProtocol(run_dir);
  }
  const std::string path = ResolveConfigPath(protocol, "protocols");
  Protocol p = ParseProtocol(LoadYamlFile(path), path);
  // train_config is relative to the working directory or the source tree.
  const std::string config_path = ResolveConfigPath(p.train_config, "train");
  p.train_config = std::filesystem::absolute(config_path).lexically_normal().string();
  if (!gflags::GetCommandLineFlagInfoOrDie("ranks").is_default) p.ranks = FLAGS_ranks;
  IF_REQUIRE(p.ranks >= 1, "lodo: --ranks must be >= 1, got ", p.ranks);
  p.overrides.insert(p.overrides.end(), overrides.begin(), overrides.end());
  // Every job's configuration must load (unknown keys, types, store) before anything runs.
  for (const ProtocolJob& job : p.jobs) {
    const TrainConfig config = JobTrainConfig(p, job);
    const auto store = Store::Open(config.trainer.store);
    store->ResolveDomains(job.train);
    const std::vector<int> targets = store->ResolveDomains(job.test);
    for (size_t t = 0; t < targets.size(); ++t) {
      const auto& test = store->manifest().domains[targets[t]].counts.counts[int(Split::kTest)];
      IF_REQUIRE(test[0] + test[1] > 0, "lodo: job ", job.name, ": target domain '", job.test[t],
                 "' has no test-split samples in ", config.trainer.store);
    }
  }
  const std::string text = ProtocolToYaml(p);
  const std::string saved = JoinPath(run_dir, "protocol.yaml");
  if (PathExists(saved)) {
    IF_REQUIRE(ReadFile(saved) == text, "lodo: ", run_dir, " was planned with another protocol, ranks or --set (see ",
               saved, "); use a new --run-dir, or omit --protocol/--set to continue that plan");
  } else {
    std::filesystem::create_directories(run_dir);
    WriteFileAtomic(saved, text);
  }
  return p;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Adds one run segment (a training launch, or the evaluation) to cost.json.
void RecordCost(const std::string& job_dir, const std::string& phase, double wall_s, int ranks) {
  const std::string path = JoinPath(job_dir, "cost.json");
  nlohmann::json cost = {{"segments", nlohmann::json::array()}};
  if (PathExists(path)) cost = nlohmann::json::parse(ReadFile(path));
  cost["segments"].push_back({{"phase", phase},
                              {"wall_s", wall_s},
                              {"ranks", ranks},
                              {"device", torch::cuda::is_available() ? "cuda" : "cpu"}});
  WriteFileAtomic(path, cost.dump(2) + "\n");
}

// One job of the protocol, as one rank of an MPI job (see the top of the file).
int RunJob(const std::string& run_dir, int index) {
  const Protocol p = LoadSavedProtocol(run_dir);
  IF_REQUIRE(index >= 0 && index < static_cast<int>(p.jobs.size()), "lodo: --job ", index, " is outside 0..",
             p.jobs.size() - 1, " (", run_dir, "/protocol.yaml has ", p.jobs.size(), " jobs)");
  const ProtocolJob& job = p.jobs[index];
  const std::string job_dir = JobDirectory(run_dir, job);
  const WorldInfo world = MpiRuntime::Init(nullptr, nullptr).world();
  if (JobFinished(run_dir, job)) {
    if (world.rank == 0) std::cout << "lodo: job " << job.name << " is already finished\n";
    return 0;
  }
  TrainConfig config = JobTrainConfig(p, job);
  TrainerOptions& t = config.trainer;
  // The global batch was planned for p.ranks ranks; another world size keeps it.
  const int64_t step_batch = int64_t(t.batch_per_rank) * p.ranks;
  IF_REQUIRE(step_batch % world.size == 0, "lodo: job ", job.name, " plans ", step_batch, " samples per micro-step (",
             t.batch_per_rank, " x ", p.ranks, " ranks), which ", world.size, " ranks cannot share evenly");
  t.batch_per_rank = static_cast<int>(step_batch / world.size);
  // Every job of the run starts from the same seed: one T5 warm-up serves all.
  t.warmup_cache_dir = JoinPath(run_dir, "cache");
  std::unique_ptr<Communicator> communicator = StartRank(world, &config);
  t.stop_requested = InstallStopSignals();
  return AbortJobOnError("lodo", world, [&] {
    const bool writer = world.rank == 0;
    auto start = std::chrono::steady_clock::now();
    if (writer) {
      std::filesystem::create_directories(job_dir);
      WriteFileAtomic(JoinPath(job_dir, "config.yaml"), config.resolved_yaml);
    }
    communicator->Barrier();
    // 1. Train (or resume) unless the final checkpoint is already there.
    const CheckpointStore checkpoints(job_dir, t.keep_last);
    std::optional<std::string> final_checkpoint = checkpoints.FindLatestComplete();
    if (!final_checkpoint || CheckpointStore::StepOf(*final_checkpoint) < t.total_steps) {
      Trainer trainer(t, communicator.get(), job_dir);
      const TrainResult trained = trainer.Run("auto");
      if (writer) RecordCost(job_dir, "train", SecondsSince(start), world.size);
      if (trained.interrupted) return kExitRequeue;
      final_checkpoint = checkpoints.FindLatestComplete();
    }
    IF_REQUIRE(final_checkpoint && CheckpointStore::StepOf(*final_checkpoint) == t.total_steps, "lodo: job ",
               job.name, " has no final checkpoint in ", job_dir);
    start = std::chrono::steady_clock::now();
    BuiltModel built = BuildModel(t.model);
    LoadModelWeights(*built.model, JoinPath(*final_checkpoint, "model.safetensors"));
    built.model->to(t.device);
    EvalOptions eval;
    eval.store = t.store;
    eval.batch_per_rank = t.batch_per_rank;
    eval.loader_threads = t.loader_threads;
    eval.seed = t.seed;
    eval.style_question = config.eval_style_question;
    eval.checkpoint = std::filesystem::path(*final_checkpoint).filename().string() + ", the " + kCheckpointRule;
    // 2. Validate: the threshold comes from source-domain videos never trained on.
    nlohmann::json result{{"job", job.name}, {"train_domains", job.train}, {"targets", job.test},
                          {"checkpoint", std::filesystem::path(*final_checkpoint).filename().string()},
                          {"checkpoint_rule", kCheckpointRule},
                          {"training_style_question", StyleQuestionRuleName(t.style_question)},
                          {"style_question", ScoringStyleQuestionName(eval.style_question)}};
    double threshold = 0.5;
    if (t.validation_fraction > 0) {
      EvalOptions validation = eval;
      validation.domains = job.train;
      validation.split = Split::kTrain;
      validation.holdout = {Holdout::Part::kValidation, t.validation_fraction, t.validation_seed};
      const EvalResult validated = Evaluate(built, validation, communicator.get(), JoinPath(job_dir, "validation"));
      threshold = validated.pooled.eer_threshold;
      result["validation"] = MetricsToJson(validated.pooled);
      result["threshold_mode"] = "EER threshold of the source domains' held-out validation videos (" +
                                 std::to_string(validated.pooled.videos) + " videos)";
    } else {
      result["threshold_mode"] = "fixed 0.5 (data.validation_fraction is 0: no validation hold-out)";
    }
    result["threshold"] = threshold;
    // 3. Test the held-out targets at that threshold.
    EvalOptions test = eval;
    test.domains = job.test;
    test.threshold = threshold;
    test.explain_per_domain = p.explain_per_domain;
    const EvalResult tested = Evaluate(built, test, communicator.get(), JoinPath(job_dir, "eval"));
    if (writer) {
      for (size_t d = 0; d < tested.domains.size(); ++d) {
        result["domains"][tested.domains[d].first] = MetricsToJson(tested.domains[d].second);
        result["reference_mode"][tested.domains[d].first] = MetricsToJson(tested.own_threshold[d]);
      }
      RecordCost(job_dir, "eval", SecondsSince(start), world.size);
      // 4. The marker of a finished job, written last.
      WriteFileAtomic(JoinPath(job_dir, "result.json"), result.dump(2) + "\n");
      std::cout << "lodo: job " << job.name << " finished: " << ReadFile(JoinPath(JoinPath(job_dir, "eval"), "metrics.md"));
    }
    return 0;
  });
}

// One table over every held-out target of the protocol: lodo.json, lodo.md
// and report.html in the run directory. Every job must be finished.
std::string Aggregate(const std::string& run_dir, const Protocol& p) {
  std::vector<std::string> unfinished;
  for (const ProtocolJob& job : p.jobs)
    if (!JobFinished(run_dir, job)) unfinished.push_back(job.name);
  IF_REQUIRE(unfinished.empty(), "lodo: cannot aggregate ", run_dir, ": unfinished jobs ",
             absl::StrJoin(unfinished, ", "));
  nlohmann::json out{{"protocol", p.name},
                     {"threshold_mode", "validation: EER threshold on held-out videos of each job's source domains"},
                     {"checkpoint_rule", kCheckpointRule}};
  out["reference_mode"]["threshold_mode"] = kOracleThresholdMode;
  std::vector<DomainMetrics> honest, reference;
  nlohmann::json cost_jobs = nlohmann::json::array();
  double total_wall = 0, total_rank_seconds = 0, train_rank_seconds = 0;
  std::ostringstream rows, reference_rows, cost_rows;
  rows << std::fixed << std::setprecision(2);
  reference_rows << std::fixed << std::setprecision(2);
  cost_rows << std::fixed << std::setprecision(4);
  auto row = [](std::ostringstream& md, const std::string& job, const std::string& target, const std::string& train,
                const DomainMetrics& m) {
    md << "| " << job << " | " << target << " | " << train << " | " << m.videos << " | " << m.hter << " | " << m.auc
       << " | " << m.tpr_at_fpr_1pct << " | " << m.eer << " | " << m.acc << " | ";
    if (std::isnan(m.threshold)) {
      md << "– |\n";  // the mean row: thresholds are per job
    } else {
      md << std::setprecision(4) << m.threshold << std::setprecision(2) << " |\n";
    }
  };
  std::map<std::string, std::set<std::string>> style_rules;  // key -> the jobs' rules
  for (const ProtocolJob& job : p.jobs) {
    const std::string job_dir = JobDirectory(run_dir, job);
    const std::string result_path = JoinPath(job_dir, "result.json");
    nlohmann::json result;
    try {
      result = nlohmann::json::parse(ReadFile(result_path));
      // Results of runs before the style-question rules carry none: say so.
      style_rules["style_question"].insert(
          result.value("style_question", std::string("unknown (an older run: it may have followed the label)")));
      style_rules["training_style_question"].insert(
          result.value("training_style_question", std::string("unknown (an older run: reference)")));
      // The same target in both threshold modes: into its table, JSON rows and mean.
      auto add = [&](const char* mode, const std::string& target, nlohmann::json& json_rows,
                     std::vector<DomainMetrics>& metrics, std::ostringstream& md) {
        nlohmann::json r = result.at(mode).at(target);
        metrics.push_back(MetricsFromJson(r));
        r["job"] = job.name;
        r["target"] = target;
        r["train_domains"] = job.train;
        json_rows.push_back(r);
        row(md, job.name, target, absl::StrJoin(job.train, "+"), metrics.back());
      };
      for (const std::string& target : job.test) {
        add("domains", target, out["rows"], honest, rows);
        add("reference_mode", target, out["reference_mode"]["rows"], reference, reference_rows);
      }
    } catch (const nlohmann::json::exception& e) {
      IF_FAIL(result_path, ": ", e.what());
    }
    double wall = 0, rank_seconds = 0, train_seconds = 0;
    std::string device = "cpu";
    int ranks = p.ranks;
    const std::string cost_path = JoinPath(job_dir, "cost.json");
    if (PathExists(cost_path)) {
      const nlohmann::json cost = nlohmann::json::parse(ReadFile(cost_path));
      for (const nlohmann::json& segment : cost.at("segments")) {
        const double w = segment.at("wall_s").get<double>();
        ranks = segment.at("ranks").get<int>();
        device = segment.at("device").get<std::string>();
        wall += w;
        rank_seconds += w * ranks;
        if (segment.at("phase") == "train") train_seconds += w * ranks;
      }
    }
    total_wall += wall;
    total_rank_seconds += rank_seconds;
    train_rank_seconds += train_seconds;
    cost_jobs.push_back({{"job", job.name}, {"wall_s", wall}, {"ranks", ranks}, {"rank_hours", rank_seconds / 3600},
                         {"train_rank_hours", train_seconds / 3600}, {"device", device}});
    cost_rows << "| " << job.name << " | " << std::setprecision(1) << wall << " | " << ranks << " | "
              << std::setprecision(4) << rank_seconds / 3600 << " | " << device << " |\n";
  }
  for (const auto& [key, rules] : style_rules) out[key] = absl::StrJoin(rules, " / ");
  const DomainMetrics mean = MeanMetrics(honest), reference_mean = MeanMetrics(reference);
  out["mean"] = MetricsToJson(mean);
  out["reference_mode"]["mean"] = MetricsToJson(reference_mean);
  const int trainings = static_cast<int>(p.jobs.size());
  const int targets = static_cast<int>(honest.size());
  // One training per held-out target (leave-one-out) would cost `targets`
  // trainings of the mean cost seen here, plus the same evaluation.
  const double one_per_target = targets * train_rank_seconds / trainings + (total_rank_seconds - train_rank_seconds);
  out["cost"] = {{"jobs", cost_jobs},
                 {"total_wall_s", total_wall},
                 {"total_rank_hours", total_rank_seconds / 3600},
                 {"trainings", trainings},
                 {"targets", targets},
                 {"rank_hours_per_target", total_rank_seconds / 3600 / targets},
                 {"one_training_per_target_rank_hours", one_per_target / 3600},
                 {"saving_vs_one_training_per_target", total_rank_seconds > 0 ? one_per_target / total_rank_seconds : 1.0}};
  WriteFileAtomic(JoinPath(run_dir, "lodo.json"), out.dump(2) + "\n");

  std::ostringstream md;
  md << std::fixed << std::setprecision(2) << "## " << p.name << ": held-out targets\n\n"
     << "Threshold: " << out["threshold_mode"].get<std::string>() << ". Checkpoint: " << kCheckpointRule
     << ". Style question at test: " << DescribeScoringStyleQuestion(out["style_question"].get<std::string>())
     << "; in training: " << out["training_style_question"].get<std::string>() << ".\n\n"
     << "| job | target | trained on | videos | HTER | AUC | TPR@FPR=1% | EER | ACC | threshold |\n"
     << "|---|---|---|---|---|---|---|---|---|---|\n"
     << rows.str();
  row(md, "**mean**", "", "", mean);
  md << "\nThe same checkpoints and scores at oracle thresholds, for comparison with the paper (threshold: "
     << out["reference_mode"]["threshold_mode"].get<std::string>() << "):\n\n"
     << "| job | target | trained on | videos | HTER | AUC | TPR@FPR=1% | EER | ACC | threshold |\n"
     << "|---|---|---|---|---|---|---|---|---|---|\n"
     << reference_rows.str();
  row(md, "**mean**", "", "", reference_mean);
  md << "\nCost: " << trainings << " training run(s) for " << targets << " target(s), " << std::setprecision(4)
     << total_rank_seconds / 3600 << " rank-hours in all (" << total_rank_seconds / 3600 / targets
     << " per target); one training per target would cost " << one_per_target / 3600 << " rank-hours ("
     << std::setprecision(2) << out["cost"]["saving_vs_one_training_per_target"].get<double>() << "x).\n\n"
     << "| job | wall s | ranks | rank-hours | device |\n|---|---|---|---|---|\n"
     << cost_rows.str();
  WriteFileAtomic(JoinPath(run_dir, "lodo.md"), md.str());
  WriteReport(run_dir);
  return md.str();
}

// The child launched for a job; SIGUSR1/SIGTERM to the driver are passed on
// (mpirun forwards SIGUSR1 to its ranks), so the job checkpoints and exits 3.
pid_t g_child = 0;
void ForwardStop(int) {
  if (g_child > 0) kill(g_child, SIGUSR1);
}

// Runs argv with stdout and stderr appended to `log`; returns the exit code.
int RunLogged(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = fork();
  IF_SYSCALL(pid, "fork");
  if (pid == 0) {
    FILE* out = std::fopen(log.c_str(), "a");
    if (out == nullptr) _exit(127);
    dup2(fileno(out), STDOUT_FILENO);
    dup2(fileno(out), STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::perror(args[0]);
    _exit(127);
  }
  g_child = pid;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

std::string FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && access(JoinPath(dir, program).c_str(), X_OK) == 0) return JoinPath(dir, program);
  return "";
}

std::string SelfPath() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

std::string LastLines(const std::string& path, int n) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (size_t i = lines.size() > size_t(n) ? lines.size() - n : 0; i < lines.size(); ++i) out += "  " + lines[i] + "\n";
  return out;
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

void PrintPlan(const std::string& run_dir, const Protocol& p) {
  std::cout << "lodo: protocol " << p.name << ", " << p.jobs.size() << " job(s), " << p.ranks
            << " rank(s) each, run directory " << run_dir << "\n";
  for (size_t k = 0; k < p.jobs.size(); ++k) {
    const ProtocolJob& job = p.jobs[k];
    const std::string job_dir = JobDirectory(run_dir, job);
    const char* state = JobFinished(run_dir, job)                                   ? "finished"
                        : CheckpointStore(job_dir).FindLatestComplete().has_value() ? "partial: resumes"
                                                                                     : "to run";
    std::cout << "  [" << k << "] " << job.name << ": train " << absl::StrJoin(job.train, "+") << " -> test "
              << absl::StrJoin(job.test, "+") << " (" << state << ")\n";
  }
}

// Runs every unfinished job locally, one after another, then aggregates.
int RunLocally(const std::string& run_dir, const Protocol& p) {
  std::string mpirun;
  int ranks = p.ranks;
  if (ranks > 1) {
    mpirun = FindOnPath("mpirun");
    if (mpirun.empty()) {
      std::cout << "lodo: mpirun not found: running each job with 1 rank (same global batch and data order)\n";
      ranks = 1;
    }
  }
  std::signal(SIGUSR1, ForwardStop);
  std::signal(SIGTERM, ForwardStop);
  for (size_t k = 0; k < p.jobs.size(); ++k) {
    const ProtocolJob& job = p.jobs[k];
    if (JobFinished(run_dir, job)) {
      std::cout << "lodo: [" << k << "] " << job.name << ": finished before, skipped\n";
      continue;
    }
    const std::string job_dir = JobDirectory(run_dir, job);
    std::filesystem::create_directories(job_dir);
    const std::string log = JoinPath(job_dir, "log.txt");
    std::cout << "lodo: [" << k << "] " << job.name << ": train " << absl::StrJoin(job.train, "+") << " -> test "
              << absl::StrJoin(job.test, "+") << " on " << ranks << " rank(s), log " << log << std::endl;
    const auto start = std::chrono::steady_clock::now();
    const int code = RunLogged(JobCommand(run_dir, static_cast<int>(k), ranks, mpirun), log);
    if (code == kExitRequeue) {
      std::cout << "lodo: job " << job.name << " stopped after a checkpoint; run the same command again to resume\n";
      return kExitRequeue;
    }
    IF_REQUIRE(code == 0 && JobFinished(run_dir, job), "lodo: job ", job.name, " failed (exit ", code, "); the end of ",
               log, ":\n", LastLines(log, 8));
    const nlohmann::json result = nlohmann::json::parse(ReadFile(JoinPath(job_dir, "result.json")));
    std::cout << "lodo: [" << k << "] " << job.name << ": done in " << std::fixed << std::setprecision(0)
              << SecondsSince(start) << " s" << std::setprecision(2);
    for (const std::string& target : job.test) {
      const nlohmann::json& m = result["domains"][target];
      std::cout << "; " << target << " HTER " << m["hter"].get<double>() << "%";
      if (!m["auc"].is_null()) std::cout << ", AUC " << m["auc"].get<double>() << "%";
    }
    std::cout << std::endl;
  }
  std::cout << "\n" << Aggregate(run_dir, p) << "\nlodo: table " << JoinPath(run_dir, "lodo.md") << ", report "
            << JoinPath(run_dir, "report.html") << "\n";
  return 0;
}

std::string Capture(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  IF_REQUIRE(pipe != nullptr, "could not run: ", command);
  std::string out;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  const int status = pclose(pipe);
  IF_REQUIRE(status == 0, "command failed (status ", status, "): ", command, "\n", out);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Submits the unfinished jobs as one Slurm job array (slurm/lodo_array.sbatch)
// and an aggregation job that runs after it.
int SubmitToSlurm(const std::string& run_dir, const Protocol& p) {
  std::vector<std::string> unfinished;
  for (size_t k = 0; k < p.jobs.size(); ++k)
    if (!JobFinished(run_dir, p.jobs[k])) unfinished.push_back(std::to_string(k));
  if (unfinished.empty()) {
    std::cout << "lodo: every job is finished\n\n" << Aggregate(run_dir, p);
    return 0;
  }
  IF_REQUIRE(!FindOnPath("sbatch").empty(), "lodo --slurm: sbatch not found on PATH");
  const std::string slurm_dir = JoinPath(SourceDirectory(), "slurm");
  const std::string run = std::filesystem::absolute(run_dir).string();
  std::filesystem::create_directories(JoinPath(run, "jobs"));  // Slurm opens the tasks' logs there
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
            << ") and aggregation job " << aggregate << "; the table will be " << JoinPath(run, "lodo.md") << "\n";
  return 0;
}

int RunLodo(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "lodo takes no positional arguments");
  IF_REQUIRE(!FLAGS_run_dir.empty(), "lodo: --run-dir DIR is required");
  if (FLAGS_job >= 0) {
    IF_REQUIRE(FLAGS_protocol.empty() && SetOverrides().empty(),
               "lodo --job runs a planned job: give only --run-dir and --job");
    return RunJob(FLAGS_run_dir, FLAGS_job);
  }
  if (FLAGS_aggregate) {
    std::cout << Aggregate(FLAGS_run_dir, LoadSavedProtocol(FLAGS_run_dir));
    return 0;
  }
  const Protocol p = PlanProtocol(FLAGS_run_dir, FLAGS_protocol, SetOverrides());
  PrintPlan(FLAGS_run_dir, p);
  if (FLAGS_dry_run) return 0;
  return FLAGS_slurm ? SubmitToSlurm(FLAGS_run_dir, p) : RunLocally(FLAGS_run_dir, p);
}

// instructflip demo: the main job on the embedded default data.
int RunDemo(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "demo takes no positional arguments");
  const std::string out = FLAGS_out.empty() ? "demo-run" : FLAGS_out;
  const std::string store = JoinPath(out, "store");
  const auto start = std::chrono::steady_clock::now();
  if (!PathExists(JoinPath(store, "manifest.json"))) {
    std::cout << "demo: synthesising a 4-domain store in " << store << std::endl;
    SynthOptions synth;
    synth.out = store;
    synth.domains = 4;
    // 400 frames (~133 videos) per domain: ~27 test videos per held-out target.
    synth.per_domain = gflags::GetCommandLineFlagInfoOrDie("per_domain").is_default ? 400 : FLAGS_per_domain;
    synth.size = 64;  // the tiny model's input
    synth.seed = FLAGS_seed;
    synth.threads = FLAGS_threads;
    Synthesize(synth);
  }
  const std::string run_dir = JoinPath(out, "lodo");
  std::vector<std::string> overrides = {"data.store=" + std::filesystem::absolute(store).string()};
  overrides.insert(overrides.end(), SetOverrides().begin(), SetOverrides().end());
  const Protocol p = PlanProtocol(run_dir, "synthetic_lodo", overrides);
  PrintPlan(run_dir, p);
  const int code = RunLocally(run_dir, p);
  if (code == 0)
    std::cout << "demo: finished in " << std::fixed << std::setprecision(0) << SecondsSince(start) << " s; open "
              << JoinPath(run_dir, "report.html") << "\n";
  return code;
}

int RunReport(const std::vector<std::string>& args) {
  IF_REQUIRE(args.size() == 1, "usage: instructflip report RUN_DIR [--out FILE.html]");
  std::cout << "report: " << WriteReport(args[0], FLAGS_out) << "\n";
  return 0;
}

}  // namespace

std::vector<Command> LodoCommands() {
  return {{"lodo",
           "lodo --protocol NAME|FILE --run-dir DIR [--ranks N] [--set key=value ...] [--slurm] [--dry-run]\n"
           "      instructflip lodo --run-dir DIR --job K     (one job, as an MPI rank)\n"
           "      instructflip lodo --run-dir DIR --aggregate (the table of a finished run)",
           "leave-one-domain-out: train and test each job of a protocol (locally or as a Slurm array), one table",
           {"protocol", "run_dir", "ranks", "slurm", "dry_run", "job", "aggregate"},
           RunLodo},
          {"demo",
           "demo [--out demo-run] [--ranks N] [--per-domain 400] [--seed S] [--threads T] [--set key=value ...]",
           "the main job on the embedded synthetic data: a 4-domain store, synthetic_lodo, table and report",
           {"out", "ranks", "per_domain", "seed", "threads"},
           RunDemo},
          {"report", "report RUN_DIR [--out FILE.html]",
           "one self-contained HTML page of a run (lodo or train): tables, curves, ROC, explanations",
           {"out"},
           RunReport}};
}

}  // namespace instructflip::launch
