// The HTML run report on fabricated run directories: content, self-containment
// (no URL, every src a data URI that decodes to the PNG on disk), escaping of
// file strings, the resume rule of metrics.jsonl, "not available" for missing
// optional inputs, and the errors. Torch-free.
#include "trainer/report.h"

#include <absl/strings/escaping.h>
#include <gtest/gtest.h>
#include <png.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "tests/dataio/test_util.h"

namespace instructflip {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

std::string Quote(const std::string& text) { return nlohmann::json(text).dump(); }

std::string ErrorOf(const std::function<void()>& run) {
  try {
    run();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A real `size` x `size` RGB PNG (a gradient seeded by `shade`), encoded by libpng.
std::string TinyPng(int size, int shade) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  std::string bytes;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    ADD_FAILURE() << "libpng failed";
    return "";
  }
  png_set_write_fn(
      png, &bytes,
      [](png_structp p, png_bytep data, png_size_t length) {
        static_cast<std::string*>(png_get_io_ptr(p))->append(reinterpret_cast<const char*>(data), length);
      },
      nullptr);
  png_set_IHDR(png, info, size, size, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  std::vector<png_byte> row(3 * size);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      row[3 * x] = static_cast<png_byte>(shade + 40 * x);
      row[3 * x + 1] = static_cast<png_byte>(40 * y);
      row[3 * x + 2] = static_cast<png_byte>(255 - shade);
    }
    png_write_row(png, row.data());
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return bytes;
}

std::string MetricsJsonl(double loss_offset) {
  std::string out;
  for (int step = 10; step <= 50; step += 10) {
    out += "{\"step\":" + std::to_string(step) + ",\"loss\":" + std::to_string(4.0 - step / 20.0 + loss_offset) +
           ",\"lr\":" + std::to_string(1e-4 * step / 50) +
           ",\"beta1\":0.9,\"grad_norm\":1.2,\"loss_scale\":65536,\"images_per_s\":100.5,\"skipped\":false"
           ",\"loss_content_lm\":1.1,\"loss_style_lm\":1.2,\"loss_classification\":0.6,\"loss_cue\":0.05}\n";
  }
  return out;
}

std::string MetricsObject(double hter, const std::string& auc) {
  return "{\"videos\":12,\"auc\":" + auc + ",\"eer\":8.3,\"hter\":" + std::to_string(hter) +
         ",\"acc\":95.0,\"tpr_at_fpr_1pct\":60.0,\"threshold\":0.41,\"apcer\":1.0,\"bpcer\":2.0,\"acer\":1.5}";
}

// A training run under `dir` evaluated on `domain`, with two explained samples.
void WriteTrainingRun(const TempDir& tmp, const std::string& dir, const std::string& domain,
                      const std::string& content_answer) {
  tmp.Write(dir + "/metrics.jsonl", MetricsJsonl(0));
  tmp.Write(dir + "/eval/metrics.json", "{\"domains\":{\"" + domain + "\":" + MetricsObject(5.0, "90.0") +
                                            "},\"mean\":" + MetricsObject(5.0, "90.0") +
                                            ",\"threshold_mode\":\"validation\"}");
  tmp.Write(dir + "/eval/roc_" + domain + ".csv", "fpr,tpr,threshold\n0,0,inf\n0,0.5,0.9\n0.25,0.75,0.6\n1,1,0.1\n");
  tmp.Write(dir + "/eval/explanations/" + domain + "/000_image.png", TinyPng(8, 10));
  tmp.Write(dir + "/eval/explanations/" + domain + "/000_cue.png", TinyPng(4, 200));
  tmp.Write(dir + "/eval/explanations.jsonl",
            "{\"domain\":\"" + domain + "\",\"index\":0,\"video_id\":17,\"label\":1,\"score\":0.93,"
            "\"content_question\":\"What attack?\",\"content_answer\":" + Quote(content_answer) + "," +
                "\"style_question\":\"How strong is the light?\",\"style_answer\":\"(2) Strong\","
                "\"image\":\"explanations/" + domain + "/000_image.png\",\"cue\":\"explanations/" + domain +
                "/000_cue.png\"}\n"
                "{\"domain\":\"" + domain + "\",\"index\":1,\"video_id\":18,\"label\":0,\"score\":0.12,"
                "\"content_answer\":\"(0) Live\",\"style_question\":\"q\",\"style_answer\":\"a\","
                "\"image\":\"explanations/" + domain + "/001_image.png\",\"cue\":\"explanations/" + domain +
                "/001_cue.png\"}\n");
}

std::string LodoRow(const std::string& job, const std::string& target, double hter, const std::string& auc) {
  std::string metrics = MetricsObject(hter, auc);
  metrics.erase(0, 1);  // merged into the row object
  return "{\"job\":" + Quote(job) + ",\"target\":\"" + target + "\",\"train_domains\":[\"synB\",\"synC\"]," +
         metrics;
}

// A LODO run with jobs `job_a` (-> synA, all files) and BCD_to_B (-> synB,
// directory absent); mean HTER 6.25, one AUC null.
std::string WriteLodoRun(const TempDir& tmp, const std::string& job_a, const std::string& answer_a) {
  WriteTrainingRun(tmp, "run/jobs/" + job_a, "synA", answer_a);
  tmp.Write("run/lodo.json",
            "{\"protocol\":\"synthetic_lodo\",\"threshold_mode\":\"validation: EER threshold on held-out videos\","
            "\"checkpoint_rule\":\"final step (chosen without target data)\",\"rows\":[" +
                LodoRow(job_a, "synA", 5.0, "90.0") + "," + LodoRow("BCD_to_B", "synB", 7.5, "null") +
                "],\"mean\":" + MetricsObject(6.25, "90.0") +
                ",\"reference_mode\":{\"threshold_mode\":\"each target's own EER threshold\",\"rows\":[" +
                LodoRow(job_a, "synA", 4.0, "90.0") + "],\"mean\":" + MetricsObject(4.0, "90.0") +
                "},\"cost\":{\"jobs\":[{\"job\":\"BCD_to_A\",\"wall_s\":41.2,\"ranks\":2,\"rank_hours\":0.0229,"
                "\"device\":\"cpu\"}],\"total_wall_s\":160.3,\"total_rank_hours\":0.089,\"trainings\":4,"
                "\"targets\":4,\"rank_hours_per_target\":0.022}}");
  return tmp.path + "/run";
}

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

size_t Occurrences(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

TEST(Report, LodoRunShowsJobsTargetsMeanAndCharts) {
  TempDir tmp;
  const std::string run = WriteLodoRun(tmp, "BCD_to_A", "(3) Poster");
  const std::string path = WriteReport(run);
  EXPECT_EQ(path, run + "/report.html");
  ASSERT_TRUE(PathExists(path));
  const std::string html = ReadFile(path);
  for (const char* part : {"synthetic_lodo", "BCD_to_A", "BCD_to_B", "synA", "synB", "synB, synC",
                           "final step (chosen without target data)", "Oracle thresholds", "Cost", "0.0229",
                           "rank-hours per target", "(3) Poster", "(2) Strong", "How strong is the light?", "spoof",
                           "live", "0.930", "\xE2\x80\x93"})  // "–" for the null AUC
    EXPECT_TRUE(Contains(html, part)) << part;
  // The mean row of the first table carries the formatted mean HTER.
  const size_t mean = html.find("<tr class=\"mean\"><td>mean</td>");
  ASSERT_NE(mean, std::string::npos);
  EXPECT_EQ(html.compare(html.find("<td class=\"num\">", mean + 30), 31, "<td class=\"num\">12</td><td clas"), 0);
  EXPECT_TRUE(Contains(html.substr(mean, 200), ">6.25<"));
  EXPECT_TRUE(Contains(html, ">5.00<"));
  EXPECT_TRUE(Contains(html, ">0.410<"));
  // Loss, learning rate and ROC charts for the job present; each with a legend.
  EXPECT_EQ(Occurrences(html, "<svg"), 3u);
  EXPECT_EQ(Occurrences(html, "<g class=\"legend\">"), 3u);
  for (const char* legend : {"loss (total)", "loss_content_lm", "loss_style_lm", "loss_classification", "loss_cue",
                             "synA (AUC 90.00%)", "chance"})
    EXPECT_TRUE(Contains(html, legend)) << legend;
  EXPECT_FALSE(Contains(html, ">loss_scale<"));
  // The second job's directory is absent.
  EXPECT_TRUE(Contains(html, "Job directory jobs/BCD_to_B: not available"));
}

TEST(Report, JobWithSeveralTargetsGetsOneSection) {
  TempDir tmp;
  WriteTrainingRun(tmp, "run/jobs/AB_to_CD", "synC", "(1) Print");
  tmp.Write("run/jobs/AB_to_CD/eval/roc_synD.csv", "fpr,tpr,threshold\n0,0,inf\n0.5,1,0.2\n1,1,0.1\n");
  tmp.Write("run/lodo.json", "{\"protocol\":\"two_targets\",\"rows\":[" + LodoRow("AB_to_CD", "synC", 2, "80") + "," +
                                 LodoRow("AB_to_CD", "synD", 4, "70") + "],\"mean\":" + MetricsObject(3, "75") + "}");
  const std::string html = ReadFile(WriteReport(tmp.path + "/run"));
  EXPECT_EQ(Occurrences(html, "<h2 id=\"job-"), 1u);
  EXPECT_TRUE(Contains(html, "Job AB_to_CD \xE2\x86\x92 synC, synD</h2>"));
  EXPECT_TRUE(Contains(html, ">synC (AUC 90.00%)<"));  // from the job's eval/metrics.json
  EXPECT_TRUE(Contains(html, ">synD<"));               // no metrics for it there
  EXPECT_EQ(Occurrences(html, "<svg"), 3u);
  EXPECT_EQ(Occurrences(html, "<polyline"), 5u + 1u + 3u);  // 5 losses, lr, 2 ROC + chance
}

TEST(Report, IsSelfContained) {
  TempDir tmp;
  const std::string run = WriteLodoRun(tmp, "BCD_to_A", "(3) Poster");
  const std::string html = ReadFile(WriteReport(run));
  EXPECT_FALSE(Contains(html, "http://"));
  EXPECT_FALSE(Contains(html, "https://"));
  EXPECT_FALSE(Contains(html, "<script"));
  EXPECT_FALSE(Contains(html, "<link"));
  EXPECT_FALSE(Contains(html, "url("));
  EXPECT_FALSE(Contains(html, "href="));
  // Every src is a PNG data URI; the two existing PNGs decode back to the files.
  std::vector<std::string> images;
  for (size_t at = html.find("src=\""); at != std::string::npos; at = html.find("src=\"", at + 1)) {
    const std::string prefix = "src=\"data:image/png;base64,";
    ASSERT_EQ(html.compare(at, prefix.size(), prefix), 0) << html.substr(at, 60);
    const size_t begin = at + prefix.size();
    std::string bytes;
    ASSERT_TRUE(absl::Base64Unescape(html.substr(begin, html.find('"', begin) - begin), &bytes));
    images.push_back(bytes);
  }
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0], ReadFile(run + "/jobs/BCD_to_A/eval/explanations/synA/000_image.png"));
  EXPECT_EQ(images[1], ReadFile(run + "/jobs/BCD_to_A/eval/explanations/synA/000_cue.png"));
  // The second sample's PNGs do not exist.
  EXPECT_EQ(Occurrences(html, ">missing<"), 2u);
  EXPECT_TRUE(Contains(html, "image-rendering:pixelated"));
}

TEST(Report, EscapesStringsFromFiles) {
  TempDir tmp;
  const std::string job = "<script>alert('job')";  // a directory name: no '/'
  const std::string run = WriteLodoRun(tmp, job, "<img src=x onerror=\"alert(2)\"> & more</script>");
  const std::string html = ReadFile(WriteReport(run));
  EXPECT_FALSE(Contains(html, "<script>"));
  EXPECT_FALSE(Contains(html, "<img src=x"));
  EXPECT_FALSE(Contains(html, "</script>"));
  EXPECT_TRUE(Contains(html, "Job &lt;script&gt;alert(&#39;job&#39;)"));
  EXPECT_TRUE(Contains(html, "&lt;img src=x onerror=&quot;alert(2)&quot;&gt; &amp; more&lt;/script&gt;"));
  // The job directory with that name was still found (its curves are drawn).
  EXPECT_EQ(Occurrences(html, "<svg"), 3u);
}

TEST(Report, ResumedStepsKeepTheLastRecord) {
  TempDir tmp;
  // The first attempt logs steps 10..40 (30 and 40 diverging, with a cue term),
  // dies, and the restart from the step-20 checkpoint logs 30..50 again; then a
  // torn line and a line without a step.
  tmp.Write("run/metrics.jsonl",
            "{\"step\":10,\"loss\":4.0,\"lr\":0.0001}\n"
            "{\"step\":20,\"loss\":3.5,\"lr\":0.0001}\n"
            "{\"step\":30,\"loss\":90.0,\"lr\":0.0001,\"loss_cue\":7}\n"
            "{\"step\":40,\"loss\":95.0,\"lr\":0.0001,\"loss_cue\":8}\n"
            "{\"step\":30,\"loss\":3.0,\"lr\":0.0001}\n"
            "{\"step\":40,\"loss\":2.5,\"lr\":0.0001}\n"
            "{\"step\":50,\"loss\":2.0,\"lr\":0.0001}\n"
            "{\"step\":60,\"loss\"\n"
            "{\"loss\":1.0}\n");
  const std::string html = ReadFile(WriteReport(tmp.path + "/run"));
  EXPECT_TRUE(Contains(html, "5 logged steps, 10 to 50; 2 repeated step records (a resumed run) replaced by the "
                             "later one; 2 lines skipped"))
      << html;
  // The total loss line has five points, sorted by step, all from the last
  // records: the y axis spans 2.0..4.0 and no tick reaches the first attempt's 90s.
  const size_t line = html.find("<polyline");
  ASSERT_NE(line, std::string::npos);
  const size_t begin = html.find("points=\"", line) + 8;
  const std::string points = html.substr(begin, html.find('"', begin) - begin);
  EXPECT_EQ(Occurrences(points, ","), 5u) << points;
  std::vector<double> xs;
  for (size_t at = 0; at < points.size();) {
    xs.push_back(std::stod(points.substr(at)));
    at = points.find(' ', at);
    if (at == std::string::npos) break;
    ++at;
    if (at >= points.size()) break;
  }
  EXPECT_TRUE(std::is_sorted(xs.begin(), xs.end()));
  EXPECT_TRUE(Contains(html, ">4.0<"));
  EXPECT_TRUE(Contains(html, ">2.0<"));
  EXPECT_FALSE(Contains(html, ">80<"));
  EXPECT_FALSE(Contains(html, ">100<"));
  // The constant learning rate: a padded axis with distinct scientific labels.
  EXPECT_TRUE(Contains(html, ">9.50e-05<"));
  EXPECT_TRUE(Contains(html, ">1.05e-04<"));
  // A step's record is replaced whole: the cue term of the first attempt is gone.
  EXPECT_FALSE(Contains(html, "loss_cue"));
}

// A run killed at step 50 after its step-20 checkpoint, resumed (the session
// marker at 30) and not yet past 40: the stale 50 is dropped, not plotted.
TEST(Report, ASessionStartDropsTheKilledRunsStaleTail) {
  TempDir tmp;
  tmp.Write("run/metrics.jsonl",
            "{\"session_start\":1,\"time\":1.0}\n"
            "{\"step\":10,\"loss\":4.0,\"lr\":0.0001}\n"
            "{\"step\":20,\"loss\":3.5,\"lr\":0.0001}\n"
            "{\"step\":30,\"loss\":90.0,\"lr\":0.0001}\n"
            "{\"step\":50,\"loss\":95.0,\"lr\":0.0001}\n"
            "{\"session_start\":21,\"time\":2.0}\n"
            "{\"step\":30,\"loss\":3.0,\"lr\":0.0001}\n"
            "{\"step\":40,\"loss\":2.5,\"lr\":0.0001}\n");
  const std::string html = ReadFile(WriteReport(tmp.path + "/run"));
  EXPECT_TRUE(Contains(html, "4 logged steps, 10 to 40; 2 repeated step records (a resumed run) replaced by the "
                             "later one"))
      << html;
  EXPECT_FALSE(Contains(html, "skipped (not valid JSON")) << html;
  EXPECT_FALSE(Contains(html, ">80<"));
}

// Per target, the videos' scores (frames averaged, as the metrics) against the
// threshold: each presentation type's error, APCER per attack, BPCER for lives.
TEST(Report, EachAttackTypesErrorAtTheThresholdIsListed) {
  TempDir tmp;
  tmp.Write("run/metrics.jsonl", MetricsJsonl(0));
  tmp.Write("run/eval/metrics.json",
            "{\"domains\":{\"synA\":" + MetricsObject(5.0, "90.0") + "},\"mean\":" + MetricsObject(5.0, "90.0") + "}");
  // threshold 0.41 (MetricsObject): live videos 0 (0.2) and 1 (0.5: called spoof);
  // photo videos 2 (0.3 and 0.6 -> 0.45) and 3 (0.4: called live); a4 video 4 (0.9).
  tmp.Write("run/eval/scores.csv",
            "score,label,video_id,domain,sample_index,spoof_type\n0.2,0,0,synA,0,0\n0.5,0,1,synA,1,0\n"
            "0.3,1,2,synA,2,1\n0.6,1,2,synA,3,1\n0.4,1,3,synA,4,1\n0.9,1,4,synA,5,3\n-3.5,1,5,synA,6,3\n");
  const std::string html = ReadFile(WriteReport(tmp.path + "/run"));
  EXPECT_TRUE(Contains(html, "<td>live (BPCER: called spoof)</td><td class=\"num\">2</td><td class=\"num\">0.350</td>"
                             "<td class=\"num\">50.00%</td>"))
      << html;
  EXPECT_TRUE(Contains(html, "<td>photo (APCER: called live)</td><td class=\"num\">2</td><td class=\"num\">0.425</td>"
                             "<td class=\"num\">50.00%</td>"));
  EXPECT_TRUE(Contains(html, "<td>a4 (APCER: called live)</td><td class=\"num\">1</td><td class=\"num\">0.900</td>"
                             "<td class=\"num\">0.00%</td>"));
  EXPECT_TRUE(Contains(html, "Scores of synA (video means)"));
  EXPECT_TRUE(Contains(html, "1 row skipped (malformed)")) << html;  // a score outside [0, 1]
}

TEST(Report, MissingOptionalFilesAreNotAvailable) {
  TempDir tmp;
  // A single run with only its log: no eval directory at all.
  tmp.Write("single/metrics.jsonl", MetricsJsonl(0));
  std::string html = ReadFile(WriteReport(tmp.path + "/single"));
  EXPECT_TRUE(Contains(html, "<h1>single</h1>"));
  EXPECT_TRUE(Contains(html, "Evaluation metrics (eval/metrics.json): not available"));
  EXPECT_TRUE(Contains(html, "ROC curves: not available"));
  EXPECT_TRUE(Contains(html, "Explanations (eval/explanations.jsonl): not available"));
  EXPECT_EQ(Occurrences(html, "<svg"), 2u);

  // A single run with an evaluation: its metrics are the table; a broken
  // metrics.json elsewhere only degrades.
  WriteTrainingRun(tmp, "evaluated", "synC", "(1) Print");
  html = ReadFile(WriteReport(tmp.path + "/evaluated"));
  EXPECT_TRUE(Contains(html, "<td>synC</td><td class=\"num\">12</td><td class=\"num\">5.00</td>"));
  EXPECT_TRUE(Contains(html, "<tr class=\"mean\"><td>mean</td>"));
  EXPECT_EQ(Occurrences(html, "<svg"), 3u);

  // A LODO job whose directory exists but holds only a broken log and an eval
  // metrics.json without the ROC files.
  TempDir lodo;
  lodo.Write("run/lodo.json", "{\"rows\":[" + LodoRow("J", "synA", 1, "null") + "]}");
  lodo.Write("run/jobs/J/metrics.jsonl", "not json\n");
  lodo.Write("run/jobs/J/eval/metrics.json", "{broken");
  lodo.Write("run/jobs/J/eval/explanations.jsonl", "{\"domain\":\"synA\",\"image\":\"/etc/passwd\",\"cue\":\"../x.png\"}\n");
  html = ReadFile(WriteReport(lodo.path + "/run", lodo.path + "/elsewhere.html"));
  EXPECT_TRUE(Contains(html, "<h1>run</h1>"));  // no protocol: the directory name
  EXPECT_TRUE(Contains(html, "Training log (metrics.jsonl): not available (no usable record)"));
  EXPECT_TRUE(Contains(html, "ROC of synA: not available"));
  EXPECT_TRUE(Contains(html, "Cost: not available"));
  EXPECT_EQ(Occurrences(html, ">missing<"), 2u);  // paths outside eval/ are not read
  EXPECT_EQ(Occurrences(html, "<svg"), 0u);
  EXPECT_FALSE(PathExists(lodo.path + "/run/report.html"));
}

TEST(Report, ErrorsNameThePath) {
  TempDir tmp;
  const std::string absent = tmp.path + "/no-such-run";
  std::string error = ErrorOf([&] { WriteReport(absent); });
  EXPECT_TRUE(Contains(error, absent)) << error;

  tmp.Write("empty/notes.txt", "");
  error = ErrorOf([&] { WriteReport(tmp.path + "/empty"); });
  EXPECT_TRUE(Contains(error, tmp.path + "/empty")) << error;
  EXPECT_TRUE(Contains(error, "neither lodo.json nor metrics.jsonl")) << error;

  const std::string lodo = tmp.Write("bad/lodo.json", "{\"rows\": [");
  error = ErrorOf([&] { WriteReport(tmp.path + "/bad"); });
  EXPECT_TRUE(Contains(error, lodo)) << error;
  EXPECT_TRUE(Contains(error, "parse error")) << error;
  EXPECT_FALSE(PathExists(tmp.path + "/bad/report.html"));

  tmp.Write("bad/lodo.json", "{\"rows\": {}}");
  error = ErrorOf([&] { WriteReport(tmp.path + "/bad"); });
  EXPECT_TRUE(Contains(error, lodo)) << error;
  EXPECT_TRUE(Contains(error, "'rows'")) << error;
}

}  // namespace
}  // namespace instructflip
