// The report page is built as one string, top to bottom, in the order a reader
// wants it: what was measured and how (tables), what it cost, then per
// training run the curves, the ROC and the explanations. Charts are a small
// SVG line plot (1-2-5 ticks, grid, legend) drawn here; there is no script.
// Inputs are read tolerantly: only the run directory itself and lodo.json may
// fail the command; everything else degrades to "not available" in place.
#include "trainer/report.h"

#include <absl/strings/escaping.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/schema.h"
#include "model/instructions.h"
#include "trainer/run_files.h"
#include "trainer/lodo.h"

namespace instructflip {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kDash = "\xE2\x80\x93";  // "–": a null or absent value
constexpr size_t kMaxExplanations = 200;       // rows shown per training run
constexpr size_t kMaxImageBytes = 4 << 20;     // larger PNGs are not embedded

// ---------------------------------------------------------------------------
// Text and numbers

std::string Escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string NotAvailable(const std::string& what, const std::string& why = "not available") {
  return "<p class=\"na\">" + Escape(what) + ": " + Escape(why) + "</p>\n";
}

// `object[key]`, or null when `object` is no object or lacks the key.
const Json& Field(const Json& object, const std::string& key) {
  static const Json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

// A string escaped, an array as its elements joined by ", ", null as "–".
std::string Text(const Json& value) {
  if (value.is_string()) return Escape(value.get<std::string>());
  if (value.is_null()) return kDash;
  if (value.is_array()) {
    std::string out;
    for (const Json& element : value) out += (out.empty() ? "" : ", ") + Text(element);
    return out;
  }
  return Escape(value.dump());
}

std::string Fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  return buffer;
}

// A number with `decimals` digits after the point; "–" for null; any other
// value as escaped text (a writer bug should show, not vanish).
std::string Number(const Json& value, int decimals) {
  if (value.is_number()) {
    const double v = value.get<double>();
    return std::isfinite(v) ? Fixed(v, decimals) : kDash;
  }
  return Text(value);
}

// "1 line", "3 lines".
std::string Count(size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string Cell(const std::string& html) { return "<td>" + html + "</td>"; }
std::string NumCell(const std::string& html) { return "<td class=\"num\">" + html + "</td>"; }

// ---------------------------------------------------------------------------
// Optional input files

std::optional<std::string> ReadOptional(const std::string& path) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) return std::nullopt;
  try {
    return ReadFile(path);
  } catch (const Error&) {
    return std::nullopt;
  }
}

// An optional JSON file: its value, or `why` there is none.
struct OptionalJson {
  std::optional<Json> value;
  std::string why;
};

OptionalJson ReadOptionalJson(const std::string& path) {
  const std::optional<std::string> text = ReadOptional(path);
  if (!text) return {std::nullopt, "not available"};
  try {
    return {Json::parse(*text), ""};
  } catch (const Json::exception& e) {
    return {std::nullopt, std::string("not available (invalid JSON: ") + e.what() + ")"};
  }
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// metrics.jsonl: the records of the sessions that made the run, sorted by
// step. A session's {"session_start": S} drops what earlier sessions logged
// from step S on (a killed run's stale tail); a step logged twice keeps its
// last record.
struct TrainingLog {
  std::map<int64_t, Json> steps;
  int skipped_lines = 0;     // not valid JSON, or no numeric "step"
  int replaced_records = 0;  // earlier records of a step logged again, or dropped as stale
};

TrainingLog ParseTrainingLog(const std::string& text) {
  TrainingLog log;
  for (const std::string& line : Lines(text)) {
    Json record;
    try {
      record = Json::parse(line);
    } catch (const Json::exception&) {
      ++log.skipped_lines;
      continue;
    }
    if (const Json& start = Field(record, "session_start"); start.is_number_integer()) {
      const auto stale = log.steps.lower_bound(start.get<int64_t>());
      log.replaced_records += static_cast<int>(std::distance(stale, log.steps.end()));
      log.steps.erase(stale, log.steps.end());
      continue;
    }
    const Json& step = Field(record, "step");
    if (!step.is_number() || !std::isfinite(step.get<double>())) {
      ++log.skipped_lines;
      continue;
    }
    const int64_t key = step.is_number_integer() ? step.get<int64_t>() : std::llround(step.get<double>());
    if (!log.steps.insert_or_assign(key, std::move(record)).second) ++log.replaced_records;
  }
  return log;
}

using Points = std::vector<std::pair<double, double>>;

// (fpr, tpr) of a roc_<domain>.csv ("fpr,tpr,threshold" rows; threshold may be inf).
Points ParseRoc(const std::string& text) {
  Points points;
  for (const std::string& line : Lines(text)) {
    const char* begin = line.c_str();
    char* end = nullptr;
    const double fpr = std::strtod(begin, &end);
    if (end == begin || *end != ',') continue;  // the header or a broken row
    const char* tpr_begin = end + 1;
    const double tpr = std::strtod(tpr_begin, &end);
    if (end == tpr_begin || (*end != ',' && *end != '\0')) continue;
    if (!std::isfinite(fpr) || !std::isfinite(tpr)) continue;
    points.push_back({std::clamp(fpr, 0.0, 1.0), std::clamp(tpr, 0.0, 1.0)});
  }
  return points;
}

// ---------------------------------------------------------------------------
// SVG line charts

struct Series {
  std::string name;  // raw; escaped when drawn
  Points points;     // (x, y), finite
  std::string color;  // empty: the palette's next
  bool dashed = false;
};

struct ChartSpec {
  std::string title, x_label, y_label;
  std::optional<std::pair<double, double>> x_range, y_range;  // empty: from the data
  bool integer_x = false;                                      // steps: no fractional ticks
};

// Long series keep, per bucket of consecutive points, the lowest and the
// highest point (in x order): ~1000 points still show every spike at the
// chart's ~500 px width, and a 100k-step log stays a modest page.
Points Decimate(const Points& points, size_t buckets = 500) {
  if (points.size() <= 4 * buckets) return points;
  const size_t size = (points.size() + buckets - 1) / buckets;
  Points out;
  for (size_t begin = 0; begin < points.size(); begin += size) {
    const auto first = points.begin() + begin, last = points.begin() + std::min(points.size(), begin + size);
    const auto [low, high] = std::minmax_element(first, last, [](const auto& a, const auto& b) { return a.second < b.second; });
    out.push_back(low < high ? *low : *high);
    if (low != high) out.push_back(low < high ? *high : *low);
  }
  return out;
}

constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

struct Ticks {
  double lo, hi, step;
};

// 1-2-5 ticks over [lo, hi] with about five intervals; the axis widens to whole ticks.
Ticks NiceTicks(double lo, double hi) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  const double step = magnitude * (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10);
  return {std::floor(lo / step + 1e-9) * step, std::ceil(hi / step - 1e-9) * step, step};
}

// Fixed decimals as the step needs; scientific (with as many digits as the
// step needs at the axis's magnitude) for tiny steps or huge values.
std::string TickLabel(double value, const Ticks& axis) {
  const double step = axis.step;
  if (std::abs(value) < step * 1e-6) value = 0;
  const double magnitude = std::max(std::abs(axis.lo), std::abs(axis.hi));
  char buffer[32];
  if (step < 1e-3 || magnitude >= 1e6) {
    if (value == 0) return "0";
    const int digits = std::max(0, static_cast<int>(std::floor(std::log10(magnitude)) - std::floor(std::log10(step))));
    std::snprintf(buffer, sizeof(buffer), "%.*e", digits, value);
  } else {
    const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
    std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  }
  return buffer;
}

// Legend names longer than this many bytes are cut (at a UTF-8 boundary).
std::string Shorten(const std::string& name, size_t limit = 30) {
  if (name.size() <= limit) return name;
  size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
  return name.substr(0, cut) + "\xE2\x80\xA6";
}

// One line chart, or "" when no series has a point.
std::string LineChart(const ChartSpec& spec, const std::vector<Series>& all_series) {
  std::vector<const Series*> series;
  for (const Series& s : all_series)
    if (!s.points.empty()) series.push_back(&s);
  if (series.empty()) return "";

  // Layout: plot area [left, right] x [top, bottom]; legend right of it.
  constexpr double kWidth = 780, kHeight = 300, kLeft = 72, kRight = 560, kTop = 30, kBottom = 250;
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const Series* s : series) {
    for (const auto& [x, y] : s->points) {
      x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    }
  }
  if (spec.x_range) std::tie(x_lo, x_hi) = *spec.x_range;
  if (spec.y_range) std::tie(y_lo, y_hi) = *spec.y_range;
  if (spec.integer_x && x_hi - x_lo < 5) x_lo -= 2.5 - (x_hi - x_lo) / 2, x_hi = x_lo + 5;
  const Ticks xt = NiceTicks(x_lo, x_hi), yt = NiceTicks(y_lo, y_hi);
  auto px = [&](double x) { return kLeft + (std::clamp(x, xt.lo, xt.hi) - xt.lo) / (xt.hi - xt.lo) * (kRight - kLeft); };
  auto py = [&](double y) { return kBottom - (std::clamp(y, yt.lo, yt.hi) - yt.lo) / (yt.hi - yt.lo) * (kBottom - kTop); };
  auto f1 = [](double v) { return Fixed(v, 1); };

  std::ostringstream svg;
  svg << "<svg class=\"chart\" viewBox=\"0 0 " << kWidth << " " << kHeight << "\" width=\"" << kWidth
      << "\" height=\"" << kHeight << "\" role=\"img\" aria-label=\"" << Escape(spec.title) << "\">\n";
  svg << "<text class=\"title\" x=\"" << f1((kLeft + kRight) / 2) << "\" y=\"18\" text-anchor=\"middle\">"
      << Escape(spec.title) << "</text>\n";

  // Grid, ticks and tick labels.
  svg << "<g class=\"grid\">";
  std::ostringstream labels;
  for (int i = 0; i <= 50; ++i) {
    const double x = xt.lo + i * xt.step;
    if (x > xt.hi + xt.step * 1e-6) break;
    const std::string p = f1(px(x));
    svg << "<line x1=\"" << p << "\" y1=\"" << kTop << "\" x2=\"" << p << "\" y2=\"" << kBottom << "\"/>";
    labels << "<line class=\"axis\" x1=\"" << p << "\" y1=\"" << kBottom << "\" x2=\"" << p << "\" y2=\""
           << kBottom + 4 << "\"/><text x=\"" << p << "\" y=\"" << kBottom + 16 << "\" text-anchor=\"middle\">"
           << TickLabel(x, xt) << "</text>";
  }
  for (int i = 0; i <= 50; ++i) {
    const double y = yt.lo + i * yt.step;
    if (y > yt.hi + yt.step * 1e-6) break;
    const std::string p = f1(py(y));
    svg << "<line x1=\"" << kLeft << "\" y1=\"" << p << "\" x2=\"" << kRight << "\" y2=\"" << p << "\"/>";
    labels << "<line class=\"axis\" x1=\"" << kLeft - 4 << "\" y1=\"" << p << "\" x2=\"" << kLeft << "\" y2=\""
           << p << "\"/><text x=\"" << kLeft - 7 << "\" y=\"" << p << "\" dy=\"0.32em\" text-anchor=\"end\">"
           << TickLabel(y, yt) << "</text>";
  }
  svg << "</g>\n<g class=\"ticks\">" << labels.str() << "</g>\n";
  svg << "<rect class=\"frame\" x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << kRight - kLeft
      << "\" height=\"" << kBottom - kTop << "\"/>\n";
  svg << "<text x=\"" << f1((kLeft + kRight) / 2) << "\" y=\"" << kBottom + 36 << "\" text-anchor=\"middle\">"
      << Escape(spec.x_label) << "</text>\n";
  svg << "<text x=\"16\" y=\"" << f1((kTop + kBottom) / 2) << "\" text-anchor=\"middle\" transform=\"rotate(-90 16 "
      << f1((kTop + kBottom) / 2) << ")\">" << Escape(spec.y_label) << "</text>\n";

  // Lines, then the legend.
  std::ostringstream legend;
  legend << "<g class=\"legend\">";
  size_t palette = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = *series[i];
    const std::string color = s.color.empty() ? kPalette[palette++ % std::size(kPalette)] : s.color;
    const std::string dash = s.dashed ? " stroke-dasharray=\"5,4\"" : "";
    svg << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\"" << dash << " points=\"";
    for (const auto& [x, y] : Decimate(s.points)) svg << f1(px(x)) << "," << f1(py(y)) << " ";
    svg << "\"/>\n";
    if (s.points.size() == 1)
      svg << "<circle cx=\"" << f1(px(s.points[0].first)) << "\" cy=\"" << f1(py(s.points[0].second))
          << "\" r=\"3\" fill=\"" << color << "\"/>\n";
    const double y = kTop + 8 + 18.0 * i;
    legend << "<line x1=\"" << kRight + 16 << "\" y1=\"" << f1(y) << "\" x2=\"" << kRight + 40 << "\" y2=\"" << f1(y)
           << "\" stroke=\"" << color << "\" stroke-width=\"2\"" << dash << "/><text x=\"" << kRight + 46
           << "\" y=\"" << f1(y) << "\" dy=\"0.32em\">" << Escape(Shorten(s.name)) << "</text>";
  }
  legend << "</g>\n";
  svg << legend.str() << "</svg>\n";
  return svg.str();
}

// ---------------------------------------------------------------------------
// Tables

struct MetricColumn {
  const char* key;
  const char* header;
  int decimals;
};
constexpr MetricColumn kMetricColumns[] = {{"hter", "HTER", 2},  {"auc", "AUC", 2},   {"tpr_at_fpr_1pct", "TPR@FPR=1%", 2},
                                           {"eer", "EER", 2},    {"acc", "ACC", 2},   {"apcer", "APCER", 2},
                                           {"bpcer", "BPCER", 2}, {"acer", "ACER", 2}, {"threshold", "threshold", 3}};

// Rows of already-escaped leading cells (job, target, ... or domain) followed by
// videos and the metric columns of `metrics`; the mean row last.
struct MetricsRow {
  std::vector<std::string> leading;
  const Json* metrics;
};

std::string MetricsTable(const std::vector<std::string>& leading_headers, const std::vector<MetricsRow>& rows,
                         const Json& mean) {
  std::string out = "<table class=\"metrics\">\n<thead><tr>";
  for (const std::string& header : leading_headers) out += "<th>" + header + "</th>";
  out += "<th class=\"num\">videos</th>";
  for (const MetricColumn& c : kMetricColumns) out += std::string("<th class=\"num\">") + c.header + "</th>";
  out += "</tr></thead>\n<tbody>\n";
  auto metric_cells = [](const Json& metrics) {
    std::string cells;
    for (const MetricColumn& c : kMetricColumns) cells += NumCell(Number(Field(metrics, c.key), c.decimals));
    return cells;
  };
  for (const MetricsRow& row : rows) {
    out += "<tr>";
    for (const std::string& cell : row.leading) out += Cell(cell);
    out += NumCell(Number(Field(*row.metrics, "videos"), 0)) + metric_cells(*row.metrics) + "</tr>\n";
  }
  if (!mean.is_null()) {  // null: a table of one set, without a mean row
    out += "<tr class=\"mean\"><td>mean</td>";
    for (size_t i = 1; i < leading_headers.size(); ++i) out += "<td></td>";
    const Json& videos = Field(mean, "videos");
    out += NumCell(videos.is_null() ? "" : Number(videos, 0)) + metric_cells(mean) + "</tr>\n";
  }
  out += "</tbody></table>\n";
  return out;
}

std::string LodoMetricsTable(const Json& rows, const Json& mean) {
  std::vector<MetricsRow> table;
  if (rows.is_array()) {
    for (const Json& row : rows)
      table.push_back({{Text(Field(row, "job")),
                        Text(Field(row, "target")) +
                            (Field(row, "seen_domain") == Json(true) ? " (seen domain, not in the mean)" : ""),
                        Text(Field(row, "train_domains"))},
                       &row});
  }
  return MetricsTable({"job", "target", "train domains"}, table, mean);
}

std::string ModeNote(const Json& object) {
  std::string out;
  if (!Field(object, "threshold_mode").is_null())
    out += "<p class=\"mode\"><b>Threshold:</b> " + Text(Field(object, "threshold_mode")) + "</p>\n";
  if (!Field(object, "checkpoint_rule").is_null())
    out += "<p class=\"mode\"><b>Checkpoint:</b> " + Text(Field(object, "checkpoint_rule")) + "</p>\n";
  if (!Field(object, "style_question").is_null())
    out += "<p class=\"mode\"><b>Style question at test:</b> " +
           Escape(DescribeScoringStyleQuestion(Field(object, "style_question").is_string()
                                                   ? Field(object, "style_question").get<std::string>()
                                                   : Field(object, "style_question").dump())) +
           "</p>\n";
  if (!Field(object, "training_style_question").is_null())
    out += "<p class=\"mode\"><b>Style question in training:</b> " + Text(Field(object, "training_style_question")) +
           "</p>\n";
  return out;
}

const char* kUnitsNote =
    "<p class=\"note\">Metrics in percent except the threshold (a spoof probability); "
    "\xE2\x80\x93 marks an undefined value (e.g. AUC with one class).</p>\n";

std::string CostSection(const Json& cost) {
  std::string out = "<h2>Cost</h2>\n";
  if (!cost.is_object()) return out + NotAvailable("Cost");
  out += "<table class=\"cost\">\n<thead><tr><th>job</th><th class=\"num\">wall time (s)</th>"
         "<th class=\"num\">ranks</th><th class=\"num\">rank-hours</th><th>device</th></tr></thead>\n<tbody>\n";
  const Json& jobs = Field(cost, "jobs");
  if (jobs.is_array()) {
    for (const Json& job : jobs) {
      out += "<tr>" + Cell(Text(Field(job, "job"))) + NumCell(Number(Field(job, "wall_s"), 1)) +
             NumCell(Number(Field(job, "ranks"), 0)) + NumCell(Number(Field(job, "rank_hours"), 4)) +
             Cell(Text(Field(job, "device"))) + "</tr>\n";
    }
  }
  out += "<tr class=\"mean\"><td>total</td>" + NumCell(Number(Field(cost, "total_wall_s"), 1)) + "<td></td>" +
         NumCell(Number(Field(cost, "total_rank_hours"), 4)) + "<td></td></tr>\n</tbody></table>\n";
  out += "<table class=\"summary\"><tbody>\n<tr><th>trainings</th>" + NumCell(Number(Field(cost, "trainings"), 0)) +
         "</tr>\n<tr><th>targets</th>" + NumCell(Number(Field(cost, "targets"), 0)) +
         "</tr>\n<tr><th>rank-hours per target</th>" + NumCell(Number(Field(cost, "rank_hours_per_target"), 4)) +
         "</tr>\n";
  // Written by `instructflip lodo` beside the required fields.
  if (!Field(cost, "one_training_per_target_rank_hours").is_null())
    out += "<tr><th>one training per target would cost (rank-hours)</th>" +
           NumCell(Number(Field(cost, "one_training_per_target_rank_hours"), 4)) + "</tr>\n";
  if (!Field(cost, "saving_vs_one_training_per_target").is_null())
    out += "<tr><th>saving vs one training per target</th>" +
           NumCell(Number(Field(cost, "saving_vs_one_training_per_target"), 2) + "&times;") + "</tr>\n";
  out += "</tbody></table>\n";
  return out;
}

// ---------------------------------------------------------------------------
// One training run: curves, ROC, explanations

std::string TrainingCurves(const std::string& run_dir) {
  std::string out = "<h3>Training curves</h3>\n";
  const std::optional<std::string> text = ReadOptional(TrainRunFiles{run_dir}.Metrics());
  if (!text) return out + NotAvailable("Training log (metrics.jsonl)");
  const TrainingLog log = ParseTrainingLog(*text);
  if (log.steps.empty())
    return out + NotAvailable("Training log (metrics.jsonl)", "not available (no usable record)");

  std::string note = Count(log.steps.size(), "logged step") + ", " +
                     std::to_string(log.steps.begin()->first) + " to " + std::to_string(log.steps.rbegin()->first);
  if (log.replaced_records > 0)
    note += "; " + Count(log.replaced_records, "repeated step record") + " (a resumed run) replaced by the later one";
  if (log.skipped_lines > 0)
    note += "; " + Count(log.skipped_lines, "line") + " skipped (not valid JSON or without a step)";
  out += "<p class=\"note\">" + Escape(note) + ".</p>\n";

  // The total loss, then every loss term in name order (loss_scale is AMP's, not a term).
  std::set<std::string> terms;
  for (const auto& [step, record] : log.steps)
    for (const auto& [key, value] : record.items())
      if (key.rfind("loss_", 0) == 0 && key.rfind("loss_scale", 0) != 0) terms.insert(key);
  auto series_of = [&](const std::string& key, const std::string& name) {
    Series s{name, {}, "", false};
    for (const auto& [step, record] : log.steps) {
      const Json& value = Field(record, key);
      if (value.is_number() && std::isfinite(value.get<double>()))
        s.points.push_back({static_cast<double>(step), value.get<double>()});
    }
    return s;
  };
  std::vector<Series> losses{series_of("loss", "loss (total)")};
  for (const std::string& term : terms) losses.push_back(series_of(term, term));
  const std::string loss_chart = LineChart({"Loss", "step", "loss", {}, {}, true}, losses);
  out += loss_chart.empty() ? NotAvailable("Loss curve") : loss_chart;
  const std::string lr_chart = LineChart({"Learning rate", "step", "learning rate", {}, {}, true}, {series_of("lr", "lr")});
  out += lr_chart.empty() ? NotAvailable("Learning-rate curve") : lr_chart;
  return out;
}

// One chart with a line per domain that has eval/roc_<domain>.csv; `expected`
// domains without one are noted.
std::string RocSection(const std::string& eval_dir, const std::vector<std::string>& expected, const Json& metrics) {
  std::string out = "<h3>ROC curves</h3>\n";
  std::set<std::string> domains(expected.begin(), expected.end());
  std::error_code error;
  if (fs::is_directory(eval_dir, error)) {
    for (const auto& entry : fs::directory_iterator(eval_dir, error)) {
      const std::string name = entry.path().filename().string();
      if (name.size() > 8 && name.rfind("roc_", 0) == 0 && name.compare(name.size() - 4, 4, ".csv") == 0)
        domains.insert(name.substr(4, name.size() - 8));
    }
  }
  std::vector<Series> series;
  std::string missing;
  for (const std::string& domain : domains) {
    const std::optional<std::string> text = ReadOptional(EvalFiles{eval_dir}.Roc(domain));
    Points points = text ? ParseRoc(*text) : Points{};
    if (points.empty()) {
      missing += NotAvailable("ROC of " + domain);
      continue;
    }
    std::string name = domain;
    const Json& auc = Field(Field(Field(metrics, "domains"), domain), "auc");
    if (auc.is_number()) name += " (AUC " + Fixed(auc.get<double>(), 2) + "%)";
    series.push_back({name, std::move(points), "", false});
  }
  if (series.empty()) return out + (missing.empty() ? NotAvailable("ROC curves") : missing);
  series.push_back({"chance", {{0, 0}, {1, 1}}, "#999999", true});
  return out + LineChart({"ROC", "false positive rate (FPR)", "true positive rate (TPR)", std::make_pair(0.0, 1.0), std::make_pair(0.0, 1.0)}, series) +
         missing;
}

// An <img> with the PNG at `relative` (to the eval directory) as a data URI, or why not.
std::string ImageCell(const std::string& eval_dir, const Json& relative, const std::string& alt) {
  const std::string missing = "<span class=\"na\">missing</span>";
  if (!relative.is_string() || relative.get<std::string>().empty()) return missing;
  const fs::path path(relative.get<std::string>());
  if (path.is_absolute()) return missing;
  for (const fs::path& part : path)
    if (part == "..") return missing;  // stays inside the eval directory
  const std::optional<std::string> bytes = ReadOptional(JoinPath(eval_dir, path.string()));
  if (!bytes) return missing;
  static const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);
  if (bytes->compare(0, kPngSignature.size(), kPngSignature) != 0) return "<span class=\"na\">not a PNG</span>";
  if (bytes->size() > kMaxImageBytes) return "<span class=\"na\">too large</span>";
  return "<img class=\"px\" alt=\"" + Escape(alt) + "\" src=\"data:image/png;base64," + absl::Base64Escape(*bytes) +
         "\">";
}

// The model's answer beside the expected one: marked right when they agree
// (case and surrounding blanks aside), else wrong with the expected answer.
std::string AnswerCell(const Json& answer, const Json& expected) {
  if (!expected.is_string()) return Text(answer);
  auto normal = [](std::string text) {
    text.erase(0, text.find_first_not_of(" \t"));
    text.erase(text.find_last_not_of(" \t") + 1);
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
  };
  const std::string wanted = expected.get<std::string>();
  if (wanted == "No GT") return Text(answer) + " <span class=\"na\">(no ground truth)</span>";
  if (answer.is_string() && normal(answer.get<std::string>()) == normal(wanted))
    return Text(answer) + " <span class=\"right\" title=\"the expected answer\">\xE2\x9C\x93</span>";
  return Text(answer) + " <span class=\"wrong\" title=\"not the expected answer\">\xE2\x9C\x97</span>" +
         "<div class=\"expected\">expected: " + Escape(wanted) + "</div>";
}

std::string ExplanationsSection(const std::string& eval_dir) {
  std::string out = "<h3>Explanations</h3>\n";
  const std::optional<std::string> text = ReadOptional(EvalFiles{eval_dir}.Explanations());
  if (!text) return out + NotAvailable("Explanations (eval/explanations.jsonl)");
  std::vector<Json> samples;
  int skipped = 0;
  for (const std::string& line : Lines(*text)) {
    try {
      Json sample = Json::parse(line);
      if (sample.is_object()) {
        samples.push_back(std::move(sample));
        continue;
      }
    } catch (const Json::exception&) {
    }
    ++skipped;
  }
  std::string note = Count(samples.size(), "explained sample");
  if (samples.size() > kMaxExplanations) note += ", the first " + std::to_string(kMaxExplanations) + " shown";
  if (skipped > 0) note += "; " + Count(skipped, "line") + " skipped (not valid JSON)";
  out += "<p class=\"note\">" + Escape(note) + ".</p>\n";
  if (samples.empty()) return out;

  out += "<table class=\"explanations\">\n<thead><tr><th>domain</th><th class=\"num\">#</th>"
         "<th class=\"num\">video</th><th>image</th><th>cue map</th><th>label</th><th class=\"num\">score</th>"
         "<th>content answer</th><th>style question and answer</th></tr></thead>\n<tbody>\n";
  for (size_t i = 0; i < samples.size() && i < kMaxExplanations; ++i) {
    const Json& s = samples[i];
    const Json& label = Field(s, "label");
    const std::string label_text = label == 0 ? "live" : label == 1 ? "spoof" : Text(label);
    const Json& content_question = Field(s, "content_question");
    out += "<tr>" + Cell(Text(Field(s, "domain"))) + NumCell(Number(Field(s, "index"), 0)) +
           NumCell(Number(Field(s, "video_id"), 0)) + Cell(ImageCell(eval_dir, Field(s, "image"), "image")) +
           Cell(ImageCell(eval_dir, Field(s, "cue"), "cue map")) + Cell(label_text) +
           NumCell(Number(Field(s, "score"), 3)) + "<td" +
           (content_question.is_string() ? " title=\"" + Text(content_question) + "\"" : "") + ">" +
           AnswerCell(Field(s, "content_answer"), Field(s, "content_expected")) + "</td>" +
           Cell("<div class=\"question\">" + Text(Field(s, "style_question")) + "</div>" +
                AnswerCell(Field(s, "style_answer"), Field(s, "style_expected"))) +
           "</tr>\n";
  }
  out += "</tbody></table>\n";
  return out;
}

// eval/scores.csv as the metrics see it: per domain, each video's mean score,
// its label and its attack type (spoof_type; -1 when the file has none).
struct ScoredVideo {
  double score = 0;
  int label = 0;
  int spoof_type = -1;
};
std::map<std::string, std::vector<ScoredVideo>> ReadScoredVideos(const std::string& text, int* skipped) {
  std::map<std::string, std::vector<ScoredVideo>> out;
  const std::vector<std::string> lines = Lines(text);
  if (lines.empty()) return out;
  std::map<std::string, size_t> column;
  {
    std::istringstream header(lines[0]);
    size_t i = 0;
    for (std::string name; std::getline(header, name, ','); ++i) column[name] = i;
  }
  for (const char* required : {"score", "label", "video_id"})
    if (!column.count(required)) return out;
  struct Sum {
    double score = 0;
    int frames = 0, label = 0, spoof_type = -1;
  };
  std::map<std::pair<std::string, std::string>, Sum> videos;
  std::vector<std::pair<std::string, std::string>> order;
  for (size_t n = 1; n < lines.size(); ++n) {
    std::vector<std::string> fields;
    std::istringstream row(lines[n]);
    for (std::string field; std::getline(row, field, ',');) fields.push_back(field);
    auto at = [&](const char* name) { return column.count(name) && column[name] < fields.size() ? fields[column[name]] : ""; };
    char* end = nullptr;
    const std::string score_text = at("score");
    const double score = std::strtod(score_text.c_str(), &end);
    const std::string label = at("label");
    if (score_text.empty() || *end != '\0' || !(score >= 0 && score <= 1) || (label != "0" && label != "1")) {
      ++*skipped;
      continue;
    }
    const auto key = std::make_pair(column.count("domain") ? at("domain") : std::string("all"), at("video_id"));
    auto [it, fresh] = videos.try_emplace(key);
    if (fresh) {
      order.push_back(key);
      it->second.label = label == "1";
      const std::string type = at("spoof_type");
      it->second.spoof_type = type.empty() ? -1 : std::atoi(type.c_str());
    }
    it->second.score += score;
    ++it->second.frames;
  }
  for (const auto& key : order) {
    const Sum& v = videos[key];
    out[key.first].push_back({v.score / v.frames, v.label, v.spoof_type});
  }
  return out;
}

// Per target: the distribution of its videos' scores, live and spoof apart,
// with the decision threshold; and each presentation type's error at it.
std::string ScoresSection(const std::string& eval_dir, const Json& metrics) {
  std::string out = "<h3>Scores by target</h3>\n";
  const Json& mode = Field(metrics, "threshold_mode");
  if (mode.is_string())
    out += "<p class=\"note\">Errors at each target's decision threshold: " + Escape(mode.get<std::string>()) +
           ".</p>\n";
  const std::optional<std::string> text = ReadOptional(EvalFiles{eval_dir}.Scores());
  if (!text) return out + NotAvailable("Scores (eval/scores.csv)");
  int skipped = 0;
  const std::map<std::string, std::vector<ScoredVideo>> domains = ReadScoredVideos(*text, &skipped);
  if (domains.empty()) return out + NotAvailable("Scores (eval/scores.csv)", "not available (no usable row)");
  if (skipped > 0) out += "<p class=\"note\">" + Escape(Count(skipped, "row")) + " skipped (malformed).</p>\n";
  constexpr int kBins = 20;
  for (const auto& [domain, videos] : domains) {
    const Json& threshold = Field(Field(Field(metrics, "domains"), domain), "threshold");
    // 1. Histogram: the share of each class's videos per score bin.
    std::vector<double> counts[2] = {std::vector<double>(kBins), std::vector<double>(kBins)};
    int per_class[2] = {0, 0};
    for (const ScoredVideo& v : videos) {
      counts[v.label][std::min(kBins - 1, static_cast<int>(v.score * kBins))] += 1;
      ++per_class[v.label];
    }
    std::vector<Series> series;
    double peak = 0;
    for (int label : {0, 1}) {
      Series line{std::string(label ? "spoof" : "live") + " (" + std::to_string(per_class[label]) + " videos)", {},
                  label ? "#c62828" : "#1565c0", false};
      for (int b = 0; b < kBins && per_class[label] > 0; ++b) {
        const double share = counts[label][b] / per_class[label];
        line.points.push_back({(b + 0.5) / kBins, share});
        peak = std::max(peak, share);
      }
      series.push_back(std::move(line));
    }
    if (threshold.is_number())
      series.push_back({"threshold " + Fixed(threshold.get<double>(), 3),
                        {{threshold.get<double>(), 0}, {threshold.get<double>(), std::max(peak, 0.05)}}, "#555555", true});
    out += LineChart({"Scores of " + domain + " (video means)", "P(spoof)", "share of the class's videos",
                      std::make_pair(0.0, 1.0), std::nullopt},
                     series);
    // 2. Per presentation type: videos, mean score and the error at the threshold.
    if (!threshold.is_number()) continue;
    const double t = threshold.get<double>();
    std::map<int, std::pair<int, int>> wrong_of;  // type -> (videos, misclassified)
    std::map<int, double> score_sum;
    for (const ScoredVideo& v : videos) {
      const int type = v.label == 0 ? 0 : v.spoof_type;
      auto& [count, wrong] = wrong_of[type];
      ++count;
      wrong += v.label == 1 ? v.score < t : v.score >= t;
      score_sum[type] += v.score;
    }
    out += "<table class=\"attacks\"><thead><tr><th>" + Escape(domain) +
           "</th><th class=\"num\">videos</th><th class=\"num\">mean P(spoof)</th><th class=\"num\">error at the "
           "threshold</th></tr></thead>\n<tbody>\n";
    for (const auto& [type, numbers] : wrong_of) {
      const std::string name = type == 0    ? "live (BPCER: called spoof)"
                               : type > 0 && type < static_cast<int>(kSpoofTypeNames.size())
                                   ? std::string(kSpoofTypeNames[type]) + " (APCER: called live)"
                                   : "spoof of unknown type (APCER)";
      out += "<tr>" + Cell(Escape(name)) + NumCell(std::to_string(numbers.first)) +
             NumCell(Fixed(score_sum[type] / numbers.first, 3)) +
             NumCell(Fixed(100.0 * numbers.second / numbers.first, 2) + "%") + "</tr>\n";
    }
    out += "</tbody></table>\n";
  }
  return out;
}

// A LODO job's validation: the source domains' held-out videos that chose its threshold.
std::string ValidationSection(const std::string& run_dir) {
  const OptionalJson result = ReadOptionalJson(JoinPath(run_dir, "result.json"));
  if (!result.value || !result.value->is_object()) return "";
  std::string out = "<h3>Validation (the threshold's source)</h3>\n";
  const Json& validation = Field(*result.value, "validation");
  out += "<p class=\"note\">" + Text(Field(*result.value, "threshold_mode")) + "; threshold " +
         Number(Field(*result.value, "threshold"), 3) + ".</p>\n";
  if (!validation.is_object()) return out;
  std::vector<MetricsRow> rows = {{{"source domains' held-out videos"}, &validation}};
  return out + MetricsTable({"set"}, rows, Json());
}

std::string TrainingRunSections(const std::string& run_dir, const std::vector<std::string>& expected_domains) {
  const std::string eval_dir = TrainRunFiles{run_dir}.Evaluation();
  const OptionalJson metrics = ReadOptionalJson(EvalFiles{eval_dir}.Metrics());
  const Json eval_metrics = metrics.value.value_or(Json());
  return TrainingCurves(run_dir) + ValidationSection(run_dir) + RocSection(eval_dir, expected_domains, eval_metrics) +
         ScoresSection(eval_dir, eval_metrics) + ExplanationsSection(eval_dir);
}

// ---------------------------------------------------------------------------
// The page

const char* kStyle = R"(body{font-family:sans-serif;color:#222;max-width:1150px;margin:24px auto;padding:0 16px;line-height:1.4}
h1{font-size:1.6em;margin-bottom:2px}
h2{font-size:1.3em;border-bottom:1px solid #ccc;padding-bottom:2px;margin-top:36px}
h3{font-size:1.05em;margin:20px 0 6px}
.note{color:#666;font-size:.9em;margin:4px 0}
.mode{margin:4px 0}
.na{color:#999;font-style:italic}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}
th,td{border:1px solid #ddd;padding:3px 8px;vertical-align:top;text-align:left}
thead th{background:#f2f2f2}
.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr.mean td{font-weight:bold;background:#fafafa}
table.summary th{font-weight:normal;background:#f8f8f8}
.question{color:#666;font-size:.9em;margin-bottom:2px}
.right{color:#1a7f37;font-weight:bold}
.wrong{color:#c62828;font-weight:bold}
.expected{color:#666;font-size:.85em}
img.px{image-rendering:pixelated;width:96px;height:auto;display:block}
svg.chart{display:block;max-width:100%;height:auto;margin:6px 0 12px}
svg.chart text{font-size:11px;fill:#333;font-family:sans-serif}
svg.chart text.title{font-size:13px;font-weight:bold}
svg.chart .grid line{stroke:#e8e8e8;stroke-width:1}
svg.chart .axis{stroke:#555}
svg.chart .frame{fill:none;stroke:#555}
)";

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buffer;
}

std::string DirectoryName(const std::string& dir) {
  fs::path path = fs::absolute(dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();
  return path.filename().string();
}

std::string PageStart(const std::string& title, const std::string& run_dir, const std::string& kind) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
         "style-src 'unsafe-inline'\">\n<title>" +
         Escape(title) + " \xE2\x80\x94 instructflip report</title>\n<style>\n" + kStyle + "</style>\n</head>\n<body>\n" +
         "<h1>" + Escape(title) + "</h1>\n<p class=\"note\">" + Escape(kind) + " <code>" + Escape(run_dir) +
         "</code>; generated by <code>instructflip report</code> on " + UtcNow() + ".</p>\n";
}

// A job name must name one directory under jobs/.
bool IsDirectoryName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// lodo.json's over_seeds: each row's mean ± sample std over the seeds.
std::string SeedsSection(const Json& seeds) {
  if (!seeds.is_object()) return "";
  std::string out = "<h2>Over seeds " + Text(Field(seeds, "seeds")) +
                    "</h2>\n<p class=\"note\">Mean \xC2\xB1 sample standard deviation (n \xE2\x88\x92 1) over the "
                    "training seeds; the mean row is each seed's mean over the held-out targets, then mean \xC2\xB1 "
                    "std over seeds.</p>\n<table class=\"metrics\"><thead><tr><th>job</th><th>target</th>"
                    "<th class=\"num\">HTER</th><th class=\"num\">AUC</th><th class=\"num\">TPR@FPR=1%</th></tr>"
                    "</thead>\n<tbody>\n";
  auto spread = [](const Json& m) {
    return NumCell(Number(Field(m, "mean"), 2) + " \xC2\xB1 " + Number(Field(m, "std"), 2));
  };
  auto cells = [&](const Json& row) {
    return spread(Field(row, "hter")) + spread(Field(row, "auc")) + spread(Field(row, "tpr_at_fpr_1pct"));
  };
  const Json& rows = Field(seeds, "rows");
  if (rows.is_array())
    for (const Json& row : rows)
      out += "<tr>" + Cell(Text(Field(row, "job"))) +
             Cell(Text(Field(row, "target")) +
                  (Field(row, "seen_domain") == Json(true) ? " (seen domain, not in the mean)" : "")) +
             cells(row) + "</tr>\n";
  out += "<tr class=\"mean\"><td>mean</td><td></td>" + cells(Field(seeds, "mean")) + "</tr>\n</tbody></table>\n";
  return out;
}

std::string LodoPage(const std::string& run_dir, const std::string& lodo_path) {
  Json lodo;
  try {
    lodo = Json::parse(ReadFile(lodo_path));
  } catch (const Json::exception& e) {
    IF_FAIL(lodo_path, ": malformed JSON: ", e.what());
  }
  IF_REQUIRE(lodo.is_object(), lodo_path, ": malformed: the top level is not a JSON object");
  const Json& rows = Field(lodo, "rows");
  IF_REQUIRE(rows.is_array(), lodo_path, ": malformed: field 'rows' is missing or not an array");
  for (size_t i = 0; i < rows.size(); ++i) {
    IF_REQUIRE(rows[i].is_object(), lodo_path, ": malformed: rows[", i, "] is not an object");
    IF_REQUIRE(Field(rows[i], "job").is_string(), lodo_path, ": malformed: rows[", i, "].job is not a string");
  }

  const Json& protocol = Field(lodo, "protocol");
  const std::string title =
      protocol.is_string() && !protocol.get<std::string>().empty() ? protocol.get<std::string>() : DirectoryName(run_dir);
  std::string html = PageStart(title, run_dir, "Leave-one-domain-out run");

  html += "<h2>Target-domain metrics</h2>\n" + ModeNote(lodo) + kUnitsNote + LodoMetricsTable(rows, Field(lodo, "mean"));
  const Json& reference = Field(lodo, "reference_mode");
  if (reference.is_object()) {
    html += "<h2>Oracle thresholds (from the targets' labels; the reference's mode)</h2>\n" + ModeNote(reference) +
            "<p class=\"note\">Same checkpoints and scores as above; only the thresholds differ: each is chosen "
            "with the target's own labels, as the reference implementation does. An oracle: shown for comparison "
            "with the paper only.</p>\n" +
            LodoMetricsTable(Field(reference, "rows"), Field(reference, "mean"));
  }
  html += SeedsSection(Field(lodo, "over_seeds"));
  html += CostSection(Field(lodo, "cost"));

  // One section per job (a job may hold out several targets: one row each).
  std::vector<std::string> jobs;
  std::map<std::string, std::vector<std::string>> targets;  // job -> its target domains
  std::map<std::string, const Json*> first_row;
  for (const Json& row : rows) {
    const std::string job = row["job"].get<std::string>();
    if (first_row.emplace(job, &row).second) jobs.push_back(job);
    if (Field(row, "target").is_string()) targets[job].push_back(row["target"].get<std::string>());
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    const std::string& job = jobs[i];
    std::string heading = "Job " + Escape(job);
    for (size_t t = 0; t < targets[job].size(); ++t) heading += (t == 0 ? " \xE2\x86\x92 " : ", ") + Escape(targets[job][t]);
    html += "<h2 id=\"job-" + std::to_string(i) + "\">" + heading + "</h2>\n";
    const Json& train_domains = Field(*first_row[job], "train_domains");
    if (!train_domains.is_null()) html += "<p class=\"note\">Trained on " + Text(train_domains) + ".</p>\n";
    std::error_code error;
    const std::string job_dir = LodoRunFiles{run_dir}.Job(job);
    if (!IsDirectoryName(job) || !fs::is_directory(job_dir, error)) {
      html += NotAvailable("Job directory jobs/" + job);
      continue;
    }
    html += TrainingRunSections(job_dir, targets[job]);
  }
  return html;
}

std::string SingleRunPage(const std::string& run_dir) {
  std::string html = PageStart(DirectoryName(run_dir), run_dir, "Training run");
  const std::string eval_dir = TrainRunFiles{run_dir}.Evaluation();
  const OptionalJson metrics = ReadOptionalJson(EvalFiles{eval_dir}.Metrics());
  html += "<h2>Evaluation metrics</h2>\n";
  std::vector<std::string> expected;
  if (metrics.value && metrics.value->is_object()) {
    const Json& domains = Field(*metrics.value, "domains");
    std::vector<MetricsRow> rows;
    if (domains.is_object()) {
      for (const auto& [domain, values] : domains.items()) {
        rows.push_back({{Escape(domain)}, &values});
        expected.push_back(domain);
      }
    }
    html += ModeNote(*metrics.value) + kUnitsNote + MetricsTable({"domain"}, rows, Field(*metrics.value, "mean"));
  } else {
    html += NotAvailable("Evaluation metrics (eval/metrics.json)", metrics.value ? "not available (not an object)" : metrics.why);
  }
  html += "<h2>Training run</h2>\n" + TrainingRunSections(run_dir, expected);
  return html;
}

}  // namespace

std::string WriteReport(const std::string& run_dir, const std::string& out_path) {
  std::error_code error;
  IF_REQUIRE(fs::is_directory(run_dir, error), "report: run directory ", run_dir, " does not exist");
  const std::string lodo_path = LodoRunFiles{run_dir}.Json();
  std::string html;
  if (PathExists(lodo_path)) {
    html = LodoPage(run_dir, lodo_path);
  } else if (PathExists(TrainRunFiles{run_dir}.Metrics())) {
    html = SingleRunPage(run_dir);
  } else {
    IF_FAIL("report: ", run_dir, " is not a run directory (it has neither lodo.json nor metrics.jsonl)");
  }
  html += "</body>\n</html>\n";
  const std::string out = out_path.empty() ? TrainRunFiles{run_dir}.Report() : out_path;
  WriteFileAtomic(out, html);
  return out;
}

}  // namespace instructflip
