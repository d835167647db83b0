#include "trainer/evaluator.h"

#include <stdlib.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <set>

#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>
#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/png_codec.h"
#include "trainer/event_writer.h"
#include "model/instruction_batch.h"
#include "model/instructions.h"
#include "model/scoring.h"
#include "trainer/run_files.h"

namespace instructflip {
namespace {

// (3, H, W) float in [0, 1] -> PNG.
void WriteRgbPng(const std::string& path, const torch::Tensor& chw) {
  const torch::Tensor hwc =
      (chw.detach().to(torch::kFloat32).clamp(0, 1) * 255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  WritePng(path, hwc.data_ptr<uint8_t>(), static_cast<int>(hwc.size(1)), static_cast<int>(hwc.size(0)), 3);
}

// An evaluation's files are written into a private directory inside `out_dir`
// and moved in only once the whole evaluation succeeded, replacing an earlier
// evaluation's: a failed one leaves `out_dir` as it was (and no directory it
// made). Rank 0 only.
class StagedOutput {
 public:
  explicit StagedOutput(const std::string& out_dir) : out_dir_(out_dir), made_(CreateDirectories(out_dir)) {
    std::string pattern = JoinPath(out_dir, ".eval-XXXXXX");
    IF_REQUIRE(::mkdtemp(pattern.data()) != nullptr, "cannot create a directory in ", out_dir, ": ",
               std::strerror(errno));
    dir_ = pattern;
  }
  ~StagedOutput() {
    if (dir_.empty()) return;  // committed
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    RemoveEmptyDirectories(made_);
  }
  StagedOutput(const StagedOutput&) = delete;
  StagedOutput& operator=(const StagedOutput&) = delete;
  const std::string& dir() const { return dir_; }

  void Commit() {
    namespace fs = std::filesystem;
    // An earlier evaluation's files go first: a ROC or an explanation of a
    // domain not scored this time must not pass for this evaluation's.
    for (const auto& entry : fs::directory_iterator(out_dir_)) {
      if (EvalFiles::IsOutput(entry.path().filename().string())) fs::remove_all(entry.path());
    }
    for (const auto& entry : fs::directory_iterator(dir_))
      RenameDurable(entry.path().string(), JoinPath(out_dir_, entry.path().filename().string()));
    fs::remove(dir_);
    dir_.clear();
  }

 private:
  std::string out_dir_, dir_;
  std::vector<std::string> made_;
};

// Explains up to `budget` samples of one batch on rank 0: the first frame of
// each new video, live and spoof alternating while both are available.
class Explainer {
 public:
  Explainer(BuiltModel& built, const T5Tokenizer& t5, ScoringStyleQuestion rule, const std::string& out_dir,
            int per_domain)
      : built_(built), t5_(t5), rule_(rule), out_dir_(out_dir), per_domain_(per_domain) {
    if (per_domain_ > 0) jsonl_.open(EvalFiles{out_dir_}.Explanations());
  }

  void StartDomain(const std::string& domain) {
    domain_ = domain;
    done_ = 0;
    per_label_ = {0, 0};
    seen_videos_.clear();
  }

  // Answers and cue maps come from the first scoring pass (of an ensemble: the
  // illumination question), the score is the batch's score. The batch's labels
  // and attributes are only reported here, as the expected answers; they never
  // reach the model.
  void Explain(const Batch& batch, const ScoredBatch& scored) {
    const ScoringPass& pass = scored.first_pass;
    const InstructFlipOutputs& out = scored.first_outputs;
    if (done_ >= per_domain_) return;
    std::vector<int64_t> rows;
    for (int64_t j = 0; j < batch.label.size(0) && done_ + int64_t(rows.size()) < per_domain_; ++j) {
      if (!batch.valid[j].item<bool>() || !seen_videos_.insert(batch.video_id[j].item<int64_t>()).second) continue;
      const int label = static_cast<int>(batch.label[j].item<int64_t>());
      if (per_label_[label] >= (per_domain_ + 1) / 2) continue;  // keep room for the other class
      ++per_label_[label];
      rows.push_back(j);
    }
    if (rows.empty()) return;
    const Answers answers = AnswerQuestions(*built_.model, scored, rows, t5_);
    const std::vector<std::string>& content = answers.content;
    const std::vector<std::string>& style = answers.style;
    const std::string directory = JoinUnder(out_dir_, "explanations/" + domain_);
    std::filesystem::create_directories(directory);
    const NormalizeOptions normalize;
    const torch::Tensor mean = torch::tensor(std::vector<float>(normalize.mean.begin(), normalize.mean.end())).view({3, 1, 1});
    const torch::Tensor std = torch::tensor(std::vector<float>(normalize.std.begin(), normalize.std.end())).view({3, 1, 1});
    for (size_t r = 0; r < rows.size(); ++r, ++done_) {
      const int64_t j = rows[r];
      char stem[32];
      std::snprintf(stem, sizeof stem, "%03d", done_);
      const std::string image = EvalFiles::ExplanationImage(domain_, stem, "image");
      WriteRgbPng(JoinUnder(out_dir_, image), batch.images[j] * std + mean);
      nlohmann::json record{{"domain", domain_},
                            {"index", done_},
                            {"sample_index", batch.sample_index[j].item<int64_t>()},
                            {"video_id", batch.video_id[j].item<int64_t>()},
                            {"label", batch.label[j].item<int64_t>()},
                            {"score", scored.spoof_score[j].item<double>()},
                            {"scoring", kScoringStyleQuestions.Name(rule_)},
                            {"image", image}};
      const int spoof_type = static_cast<int>(batch.spoof_type[j].item<int64_t>());
      if (built_.config.has_content_branch()) {
        record["content_question"] = "spoof type";
        record["content_answer"] = content[r];
        record["content_expected"] = ContentInstruction(spoof_type).answer;
      }
      if (built_.config.has_style_branch()) {
        const StyleQuestion q = pass.style[j];
        record["style_question"] = kStyleQuestionNames.Name(q);
        record["style_answer"] = style[r];
        record["style_expected"] =
            StyleInstruction(q, static_cast<int>(batch.illumination[j].item<int64_t>()),
                             static_cast<int>(batch.environment[j].item<int64_t>()),
                             static_cast<int>(batch.camera_quality[j].item<int64_t>()))
                .answer;
      }
      if (out.cue_map.defined()) {
        // The cue map is trained towards zero on live faces: its magnitude is the cue.
        const std::string cue = EvalFiles::ExplanationImage(domain_, stem, "cue");
        WriteRgbPng(JoinUnder(out_dir_, cue), out.cue_map[j].abs().cpu());
        record["cue"] = cue;
      }
      jsonl_ << record.dump() << "\n";
    }
    jsonl_.flush();
  }

 private:
  BuiltModel& built_;
  const T5Tokenizer& t5_;
  ScoringStyleQuestion rule_;
  std::string out_dir_;
  int per_domain_;
  std::ofstream jsonl_;
  std::string domain_;
  int done_ = 0;
  std::array<int, 2> per_label_{0, 0};
  std::set<int64_t> seen_videos_;
};

}  // namespace

EvalResult Evaluate(BuiltModel& built, const EvalOptions& o, Communicator* communicator, const std::string& out_dir) {
  auto store = Store::Open(o.store);
  IF_REQUIRE(!o.domains.empty(), "evaluation needs at least one target domain");
  store->ResolveDomains(o.domains);  // unknown names fail here, before any compute
  // A domain listed twice would be scored twice and weigh twice in the pooled row.
  const std::set<std::string> distinct(o.domains.begin(), o.domains.end());
  IF_REQUIRE(distinct.size() == o.domains.size(), "the domains to score [", absl::StrJoin(o.domains, ","),
             "] name one more than once");
  InstructionBatcher batcher(built.tokenizers.bert, built.tokenizers.t5, built.config, o.seed);
  built.model->eval();
  torch::NoGradGuard no_grad;
  const torch::Device device = built.model->parameters().front().device();
  EvalResult result;
  std::ofstream scores_csv;
  const bool writer = communicator->rank() == 0 && !out_dir.empty();
  std::optional<StagedOutput> staged;
  if (writer) {
    staged.emplace(out_dir);
    scores_csv.open(EvalFiles{staged->dir()}.Scores());
    scores_csv << "score,label,video_id,domain,sample_index,spoof_type\n" << std::setprecision(9);
  }
  std::vector<DomainMetrics> all;
  std::vector<ScoredSample> pooled;  // video ids made unique across domains
  const bool validation_run = o.holdout.part == Holdout::Part::kValidation;
  std::optional<Explainer> explainer;
  if (writer && o.explain_per_domain > 0)
    explainer.emplace(built, batcher.t5(), o.style_question, staged->dir(), o.explain_per_domain);
  for (size_t d = 0; d < o.domains.size(); ++d) {
    const std::string& domain = o.domains[d];
    if (explainer) explainer->StartDomain(domain);
    LoaderOptions lo;
    lo.domains = {domain};
    lo.split = o.split;
    if (const auto subset = o.subsets.find(domain); subset != o.subsets.end()) {
      lo.split = subset->second.split;
      lo.first = subset->second.first;
    }
    lo.holdout = o.holdout;
    lo.spoof_types = o.spoof_types;
    lo.sampler.shuffle = false;
    lo.batch_size = o.batch_per_rank;
    lo.rank = communicator->rank();
    lo.world_size = communicator->size();
    lo.drop_last = false;  // padded: every sample exactly once
    lo.threads = o.loader_threads;
    lo.image_size = built.config.vision.image_size;
    Loader loader(store, lo);
    Progress progress((validation_run ? "validation " : "eval ") + domain, "batches", loader.batches_in_epoch(),
                      communicator->rank() == 0 ? o.progress : ProgressSink());
    std::vector<double> rows;  // (sample_index, score, label, video_id, spoof_type) per valid sample
    while (auto batch = loader.Next()) {
      progress.Advance();
      // The model sees the pixels and the sample key only (model/scoring.h).
      const ScoredBatch scored = ScoreBatch(*built.model, UnlabeledBatch{batch->images, batch->sample_index.clamp_min(0)},
                                            o.style_question, batcher, device);
      if (explainer) explainer->Explain(*batch, scored);
      const torch::Tensor score = scored.spoof_score.cpu();
      for (int64_t j = 0; j < score.size(0); ++j) {
        if (!batch->valid[j].item<bool>()) continue;
        rows.insert(rows.end(), {double(batch->sample_index[j].item<int64_t>()), score[j].item<double>(),
                                 double(batch->label[j].item<int64_t>()), double(batch->video_id[j].item<int64_t>()),
                                 double(batch->spoof_type[j].item<int64_t>())});
      }
    }
    torch::Tensor mine = torch::tensor(rows, torch::kFloat64).view({-1, 5});
    const torch::Tensor gathered = communicator->AllGather(mine);
    const torch::Tensor order = gathered.select(1, 0).argsort();
    const torch::Tensor sorted = gathered.index_select(0, order);
    std::vector<ScoredSample> samples;
    for (int64_t i = 0; i < sorted.size(0); ++i) {
      ScoredSample s{sorted[i][1].item<double>(), static_cast<int>(sorted[i][2].item<double>()),
                     static_cast<int64_t>(sorted[i][3].item<double>())};
      samples.push_back(s);
      if (writer)
        scores_csv << s.score << "," << s.label << "," << s.video_id << "," << domain << ","
                   << static_cast<int64_t>(sorted[i][0].item<double>()) << ","
                   << static_cast<int64_t>(sorted[i][4].item<double>()) << "\n";
    }
    result.scores.insert(result.scores.end(), samples.begin(), samples.end());
    const bool seen = std::find(o.seen_domains.begin(), o.seen_domains.end(), domain) != o.seen_domains.end();
    if (!seen)
      for (ScoredSample s : samples) {
        s.video_id = static_cast<int64_t>(d) << 40 | s.video_id;
        pooled.push_back(s);
      }
    DomainMetrics m = ComputeMetrics(samples, o.threshold);
    result.own_threshold.push_back(o.threshold ? ComputeMetrics(samples) : m);
    if (writer) {
      std::ofstream roc(EvalFiles{staged->dir()}.Roc(domain));
      roc << "fpr,tpr,threshold\n";
      for (const RocPoint& p : m.roc) roc << p.fpr << "," << p.tpr << "," << p.threshold << "\n";
    }
    if (!seen) all.push_back(m);
    result.domains.push_back({domain, std::move(m)});
  }
  result.mean = MeanMetrics(all);
  result.pooled = ComputeMetrics(pooled, o.threshold);
  if (writer) {
    // A domain's own EER threshold is an oracle on targets, not on the source
    // domains' validation hold-out (which exists to pick thresholds).
    const std::string mode = o.threshold ? "given threshold " + std::to_string(*o.threshold)
                             : validation_run ? "each domain's own EER threshold on its validation hold-out (no target data)"
                                          : std::string(kOracleThresholdMode);
    nlohmann::json json;
    for (const auto& [domain, m] : result.domains) json["domains"][domain] = MetricsToJson(m);
    json["mean"] = MetricsToJson(result.mean);
    if (!o.seen_domains.empty()) json["seen_domains"] = o.seen_domains;
    json["threshold_mode"] = mode;
    json["style_question"] = kScoringStyleQuestions.Name(o.style_question);
    json["checkpoint"] = o.checkpoint;
    WriteFileAtomic(EvalFiles{staged->dir()}.Metrics(), json.dump(2) + "\n");
    std::ostringstream md;
    md << "Threshold: " << mode << ". Checkpoint: " << o.checkpoint
       << ". Style question: " << kScoringStyleQuestions.Name(o.style_question)
       << " (never from the label).\n\n";
    std::vector<MetricsTableRow> rows;
    for (const auto& [domain, m] : result.domains) {
      const bool seen = std::find(o.seen_domains.begin(), o.seen_domains.end(), domain) != o.seen_domains.end();
      rows.push_back({{seen ? domain + " (seen domain, not in the mean)" : domain}, m});
    }
    rows.push_back({{"**mean**"}, result.mean});
    md << MarkdownMetricsTable({"domain"}, rows);
    WriteFileAtomic(EvalFiles{staged->dir()}.Table(), md.str());
    scores_csv.close();
    IF_REQUIRE(scores_csv, "cannot write ", EvalFiles{out_dir}.Scores());
    explainer.reset();  // its explanations.jsonl complete before it moves
    staged->Commit();
  }
  return result;
}

void LogEvaluationToTensorBoard(const std::string& events_dir, const nlohmann::json& summary,
                                const std::string& eval_dir) {
  TensorBoardWriter events(events_dir);
  const int64_t step = summary.at("step").get<int64_t>();
  auto scalars = [&](const std::string& prefix, const nlohmann::json& metrics) {
    for (const char* key : {"hter", "auc", "eer", "tpr_at_fpr_1pct", "apcer", "bpcer", "acer"})
      if (metrics.contains(key) && metrics.at(key).is_number())
        events.Scalar(prefix + "/" + key, step, metrics.at(key).get<float>());
  };
  if (summary.contains("validation")) scalars("validation", summary.at("validation"));
  if (summary.contains("threshold")) events.Scalar("validation/threshold", step, summary.at("threshold").get<float>());
  const nlohmann::json domains = summary.value("domains", nlohmann::json::object());
  for (const auto& [domain, metrics] : domains.items()) scalars("test/" + domain, metrics);
  const std::string explanations = EvalFiles{eval_dir}.Explanations();
  if (PathExists(explanations))
    for (const absl::string_view line : absl::StrSplit(ReadFile(explanations), '\n', absl::SkipEmpty())) {
      const nlohmann::json record = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
      if (!record.is_object()) continue;
      for (const char* kind : {"image", "cue"}) {
        if (!record.contains(kind)) continue;
        const std::string png = ReadFile(JoinUnder(eval_dir, record.at(kind).get<std::string>()));
        int width = 0, height = 0;
        PeekPngSize(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "explanation", &width, &height);
        events.Image("explain/" + record.value("domain", "") + "/" + std::to_string(record.value("index", 0)) + "_" +
                         kind,
                     step, png, height, width);
      }
    }
  events.Flush();
}

}  // namespace instructflip
