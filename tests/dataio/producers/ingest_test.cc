// Ingest of CelebA-Spoof, list and CSV inputs into a store, read back through
// Store. Every dataset is a handful of tiny images written into a temp dir.
#include "dataio/producers/ingest.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#if INSTRUCTFLIP_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#endif

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/image_codec.h"
#include "dataio/jpeg_codec.h"
#include "dataio/png_codec.h"
#include "dataio/loader.h"
#include "dataio/store.h"
#include "tests/dataio/test_util.h"

namespace instructflip {
namespace {

namespace fs = std::filesystem;
using testing::ErrorOf;

using Rgb = std::array<uint8_t, 3>;

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ingest_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& relative) const { return (dir_ / relative).string(); }

  void WriteText(const std::string& relative, const std::string& text) const {
    fs::create_directories(fs::path(Path(relative)).parent_path());
    std::ofstream(Path(relative), std::ios::binary) << text;
  }

  // A width x height JPEG whose pixel (x, y) is colour(x, y).
  void WriteJpeg(const std::string& relative, int width, int height,
                 const std::function<Rgb(int, int)>& colour) const {
    RgbImage image{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        const Rgb c = colour(x, y);
        std::copy(c.begin(), c.end(), &image.pixels[(static_cast<size_t>(y) * width + x) * 3]);
      }
    WriteText(relative, EncodeJpeg(image, 95));
  }
  void WriteUniformJpeg(const std::string& relative, Rgb colour) const {
    WriteJpeg(relative, 40, 40, [&](int, int) { return colour; });
  }

  // The CelebA-Spoof root laid out under celeb/, into domain "celeba" of store/.
  IngestOptions CelebAOptions() const {
    IngestOptions options;
    options.out = Path("store");
    options.format = IngestFormat::kCelebASpoof;
    options.input = Path("celeb");
    options.domain = "celeba";
    options.size = 32;
    return options;
  }

  IngestOptions ListOptions(const std::string& list, const std::string& domain) const {
    IngestOptions options;
    options.out = Path("store");
    options.format = IngestFormat::kList;
    options.input = Path(list);
    options.domain = domain;
    options.split = Split::kTrain;
    options.size = 32;
    return options;
  }

  fs::path dir_;
};

// Mean RGB of stored sample i.
std::array<double, 3> MeanColour(const Store& store, int64_t i) {
  std::vector<uint8_t> jpeg;
  store.ReadImageBytes(i, &jpeg);
  RgbImage image;
  DecodeStoredImage(jpeg.data(), jpeg.size(), "sample", &image);
  std::array<double, 3> mean{};
  for (size_t p = 0; p < image.pixels.size(); ++p) mean[p % 3] += image.pixels[p];
  for (double& m : mean) m /= static_cast<double>(image.width) * image.height;
  return mean;
}


// A CelebA-Spoof label: 44 numbers, the last four meaningful.
std::string CelebALabel(int spoof_type, int illumination, int environment, int label) {
  std::ostringstream out;
  out << "[";
  for (int i = 0; i < 40; ++i) out << "0, ";
  out << spoof_type << ", " << illumination << ", " << environment << ", " << label << "]";
  return out.str();
}

TEST(VideoFrameIndicesTest, FollowsTheReferenceAndClamps) {
  EXPECT_EQ(VideoFrameIndices(20, 2, 6), (std::vector<int64_t>{6, 16}));
  EXPECT_EQ(VideoFrameIndices(301, 2, 6), (std::vector<int64_t>{6, 156}));
  EXPECT_EQ(VideoFrameIndices(30, 3, 0), (std::vector<int64_t>{0, 10, 20}));
  EXPECT_EQ(VideoFrameIndices(10, 2, 6), (std::vector<int64_t>{6, 9}));  // 6+5 clamped
  EXPECT_EQ(VideoFrameIndices(4, 2, 6), (std::vector<int64_t>{3}));      // both clamp to 3
  EXPECT_TRUE(VideoFrameIndices(0, 2, 6).empty());
}

TEST(IngestFormats, NamesAndAnUnknownOne) {
  EXPECT_EQ(kIngestFormats.Find("celeba"), IngestFormat::kCelebASpoof);
  EXPECT_EQ(kIngestFormats.Find("list"), IngestFormat::kList);
  EXPECT_EQ(kIngestFormats.Find("csv"), IngestFormat::kCsv);
  EXPECT_FALSE(kIngestFormats.Find("tsv").has_value());
}

TEST_F(IngestTest, CelebASpoofMapsLabelsSplitsAndCropsToTheFaceBox) {
  const Rgb red{220, 20, 20}, green{20, 220, 20}, blue{20, 20, 220};
  // 112x224 image, box (64, 32, 96, 128) in the 224 frame -> pixels x 32..80, y 32..160.
  WriteJpeg("celeb/Data/train/4980/live/494405.jpg", 112, 224,
            [&](int x, int y) { return x >= 32 && x < 80 && y >= 32 && y < 160 ? green : red; });
  WriteText("celeb/Data/train/4980/live/494405_BB.txt", "64 32 96 128 0.99\n");
  WriteUniformJpeg("celeb/Data/train/4980/spoof/500001.jpg", blue);  // no box: whole image
  // A box reaching past the image is clamped: only the red right half remains.
  WriteJpeg("celeb/Data/test/7001/spoof/600001.jpg", 64, 64,
            [&](int x, int) { return x < 32 ? blue : red; });
  WriteText("celeb/Data/test/7001/spoof/600001_BB.txt", "112 -50 400 500 0.9\n");
  WriteText("celeb/metas/intra_test/train_label.json",
            "{\"Data/train/4980/spoof/500001.jpg\": " + CelebALabel(3, 2, 1, 1) +
                ", \"Data/train/4980/live/494405.jpg\": " + CelebALabel(0, 0, 0, 0) + "}");
  WriteText("celeb/metas/intra_test/test_label.json",
            "{\"Data/test/7001/spoof/600001.jpg\": " + CelebALabel(7, 4, 2, 1) + "}");

  IngestOptions options = CelebAOptions();
  const IngestReport report = Ingest(options);
  EXPECT_EQ(report.added, 3);
  EXPECT_EQ(report.skipped, 0);
  ASSERT_EQ(report.manifest.domains.size(), 1u);
  EXPECT_EQ(report.manifest.domains[0].name, "celeba");
  const auto& counts = report.manifest.domains[0].counts.counts;
  EXPECT_EQ(counts[0][0], 1);  // train live
  EXPECT_EQ(counts[0][1], 1);  // train spoof
  EXPECT_EQ(counts[1][1], 1);  // test spoof

  const auto store = Store::Open(options.out);
  ASSERT_EQ(store->size(), 3);
  // train_label.json first, keys in sorted order; then test_label.json.
  const SampleAttributes live = store->table().Attributes(0);
  EXPECT_EQ(live.source, "Data/train/4980/live/494405.jpg");
  EXPECT_EQ(live.label, 0);
  EXPECT_EQ(live.spoof_type, 0);
  EXPECT_EQ(live.illumination, -1);
  EXPECT_EQ(live.environment, -1);
  EXPECT_EQ(live.camera_quality, -1);
  EXPECT_EQ(live.split, Split::kTrain);
  EXPECT_EQ(live.subject_id, 4980);
  const SampleAttributes spoof = store->table().Attributes(1);
  EXPECT_EQ(spoof.label, 1);
  EXPECT_EQ(spoof.spoof_type, 3);
  EXPECT_EQ(spoof.illumination, 1);
  EXPECT_EQ(spoof.environment, 0);
  EXPECT_EQ(spoof.split, Split::kTrain);
  const SampleAttributes test = store->table().Attributes(2);
  EXPECT_EQ(test.spoof_type, 7);
  EXPECT_EQ(test.illumination, 3);
  EXPECT_EQ(test.environment, 1);
  EXPECT_EQ(test.split, Split::kTest);
  EXPECT_EQ(test.subject_id, 7001);
  // Still images: one video each.
  EXPECT_NE(live.video_id, spoof.video_id);
  EXPECT_NE(spoof.video_id, test.video_id);

  const auto face = MeanColour(*store, 0);  // only the green box survives the crop
  EXPECT_GT(face[1], 190);
  EXPECT_LT(face[0], 45);
  const auto whole = MeanColour(*store, 1);
  EXPECT_GT(whole[2], 190);
  const auto clamped = MeanColour(*store, 2);
  EXPECT_GT(clamped[0], 190);
  EXPECT_LT(clamped[2], 45);
}

// Camera quality from the cross-device protocol's lists (metas/protocol2), a
// CSV overriding them, and the error for an image two lists claim.
TEST_F(IngestTest, CelebASpoofCameraQualityComesFromTheDeviceProtocol) {
  const std::vector<std::string> images = {"Data/train/1/live/1.jpg", "Data/train/1/spoof/2.jpg",
                                           "Data/train/2/live/3.jpg", "Data/train/2/spoof/4.jpg",
                                           "Data/train/3/live/5.jpg"};
  std::string labels = "{";
  for (size_t i = 0; i < images.size(); ++i) {
    WriteUniformJpeg("celeb/" + images[i], {100, 100, 100});
    const bool spoof = images[i].find("spoof") != std::string::npos;
    labels += std::string(i ? ", " : "") + "\"" + images[i] + "\": " + CelebALabel(spoof ? 2 : 0, 1, 1, spoof);
  }
  WriteText("celeb/metas/intra_test/train_label.json", labels + "}");
  const std::string devices = "celeb/metas/protocol2/test_on_";
  // Test lists: low 1.jpg (json); middle 2.jpg, 3.jpg (txt, as "path label"); high 4.jpg.
  WriteText(devices + "low_quality_device/test_label.json", "{\"" + images[0] + "\": " + CelebALabel(0, 0, 0, 0) + "}");
  // Train lists: 4.jpg is also in high's test list (that wins); 5.jpg is in the
  // train lists of low and high, so it is of the third quality, middle.
  WriteText(devices + "low_quality_device/train_label.json", "{\"" + images[3] + "\": " + CelebALabel(2, 1, 1, 1) +
                                                                 ", \"" + images[4] + "\": " + CelebALabel(0, 0, 0, 0) + "}");
  WriteText(devices + "high_quality_device/train_label.txt", images[4] + " 0\n");
  WriteText(devices + "middle_quality_device/test_label.txt", images[1] + " 1\n" + images[2] + " 0\n");
  WriteText(devices + "high_quality_device/test_label.json", "{\"" + images[3] + "\": " + CelebALabel(2, 1, 1, 1) + "}");

  IngestOptions options = CelebAOptions();
  Ingest(options);
  {
    const auto store = Store::Open(options.out);
    std::map<std::string, int> quality;
    for (int64_t i = 0; i < store->size(); ++i) quality[store->table().source[i]] = store->table().camera_quality[i];
    EXPECT_EQ(quality, (std::map<std::string, int>{
                           {images[0], 0}, {images[1], 1}, {images[2], 1}, {images[3], 2}, {images[4], 1}}));
  }

  // The CSV wins over the lists, and an empty cell means unknown.
  WriteText("quality.csv", "camera_quality,path\n2," + images[4] + "\n," + images[0] + "\n");
  options.out = Path("store2");
  options.camera_quality_csv = Path("quality.csv");
  Ingest(options);
  {
    const auto store = Store::Open(options.out);
    std::map<std::string, int> quality;
    for (int64_t i = 0; i < store->size(); ++i) quality[store->table().source[i]] = store->table().camera_quality[i];
    EXPECT_EQ(quality[images[4]], 2);
    EXPECT_EQ(quality[images[0]], -1);
    EXPECT_EQ(quality[images[1]], 1);
  }

  // Bad CSV values and an image in two device lists are errors naming file, line or image.
  WriteText("quality.csv", "path,camera_quality\n" + images[0] + ",3\n");
  options.out = Path("store3");
  std::string message = ErrorOf([&] { Ingest(options); });
  EXPECT_NE(message.find("quality.csv:2: field 'camera_quality' must be an integer in -1..2, got '3'"),
            std::string::npos) << message;
  options.camera_quality_csv.clear();
  WriteText(devices + "high_quality_device/test_label.json", "{\"" + images[1] + "\": " + CelebALabel(2, 1, 1, 1) + "}");
  message = ErrorOf([&] { Ingest(options); });
  EXPECT_NE(message.find("'" + images[1] + "' is also in"), std::string::npos) << message;
  EXPECT_NE(message.find("middle_quality_device/test_label.txt"), std::string::npos) << message;
  EXPECT_FALSE(PathExists(Path("store3/manifest.json")));
  // Only the CelebA-Spoof format takes the option.
  IngestOptions list = ListOptions("celeb/metas/protocol2/test_on_middle_quality_device/test_label.txt", "d");
  list.camera_quality_csv = Path("quality.csv");
  EXPECT_NE(ErrorOf([&] { Ingest(list); }).find("--camera-quality is for --format celeba"), std::string::npos);
}

TEST_F(IngestTest, CelebASpoofBadLabelIsAnErrorAndLeavesTheStoreUnchanged) {
  WriteUniformJpeg("data/a.jpg", {100, 100, 100});
  WriteText("data/list.txt", "a.jpg 0\n");
  Ingest(ListOptions("data/list.txt", "first"));
  const std::string manifest = ReadFile(Path("store/manifest.json"));
  const auto files_before = std::distance(fs::directory_iterator(Path("store")), {});

  WriteUniformJpeg("celeb/Data/train/1/spoof/1.jpg", {100, 100, 100});
  IngestOptions options;
  options.out = Path("store");
  options.append = true;
  options.format = IngestFormat::kCelebASpoof;
  options.input = Path("celeb");
  options.domain = "celeba";
  options.size = 32;
  // Illumination 5 is outside CelebA-Spoof's 0..4.
  WriteText("celeb/metas/intra_test/train_label.json",
            "{\"Data/train/1/spoof/1.jpg\": " + CelebALabel(1, 5, 1, 1) + "}");
  std::string message = ErrorOf([&] { Ingest(options); });
  EXPECT_NE(message.find("train_label.json"), std::string::npos) << message;
  EXPECT_NE(message.find("Data/train/1/spoof/1.jpg"), std::string::npos) << message;
  EXPECT_NE(message.find("illumination"), std::string::npos) << message;
  // Wrong length.
  WriteText("celeb/metas/intra_test/train_label.json", "{\"Data/train/1/spoof/1.jpg\": [1, 1]}");
  message = ErrorOf([&] { Ingest(options); });
  EXPECT_NE(message.find("Data/train/1/spoof/1.jpg"), std::string::npos) << message;
  EXPECT_NE(message.find("44"), std::string::npos) << message;
  // Live label with an attack type.
  WriteText("celeb/metas/intra_test/train_label.json",
            "{\"Data/train/1/spoof/1.jpg\": " + CelebALabel(3, 1, 1, 0) + "}");
  message = ErrorOf([&] { Ingest(options); });
  EXPECT_NE(message.find("spoof_type"), std::string::npos) << message;

  EXPECT_EQ(ReadFile(Path("store/manifest.json")), manifest);
  EXPECT_EQ(std::distance(fs::directory_iterator(Path("store")), {}), files_before);
}

TEST_F(IngestTest, ListGroupsFramesIntoVideosAndDefaultsTheSpoofType) {
  WriteUniformJpeg("data/live/a_frame0.jpg", {10, 10, 10});
  WriteUniformJpeg("data/live/a_frame1.jpg", {20, 20, 20});
  WriteUniformJpeg("data/live/b_frame0.jpg", {30, 30, 30});
  WriteUniformJpeg("data/spoof/a_frame0.jpg", {40, 40, 40});
  WriteUniformJpeg("data/spoof/c.jpg", {50, 50, 50});
  WriteText("data/list.txt",
            "# path label [spoof_type]\n\n"
            "live/a_frame0.jpg 0\nlive/a_frame1.jpg 0\r\nlive/b_frame0.jpg 0\n"
            "spoof/a_frame0.jpg 1\n  spoof/c.jpg\t1 9\n");
  IngestOptions options = ListOptions("data/list.txt", "msu");
  options.split = Split::kTest;
  const IngestReport report = Ingest(options);
  EXPECT_EQ(report.added, 5);

  const auto store = Store::Open(options.out);
  ASSERT_EQ(store->size(), 5);
  const SampleTable& table = store->table();
  EXPECT_EQ(table.source[0], "live/a_frame0.jpg");
  EXPECT_EQ(table.source[4], "spoof/c.jpg");
  // live/a shares a video; the same prefix in another folder does not.
  EXPECT_EQ(table.video_id, (std::vector<int64_t>{0, 0, 1, 2, 3}));
  // A spoof without a type column is of unknown type (-1: no content ground truth).
  EXPECT_EQ(table.spoof_type, (std::vector<int8_t>{0, 0, 0, -1, 9}));
  EXPECT_EQ(table.label, (std::vector<int8_t>{0, 0, 0, 1, 1}));
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(table.split[i], static_cast<int8_t>(Split::kTest));
    EXPECT_EQ(table.illumination[i], -1);
    EXPECT_EQ(table.subject_id[i], -1);
    EXPECT_NEAR(MeanColour(*store, i)[0], 10.0 * (i + 1), 3.0);
  }
}

TEST_F(IngestTest, CsvReadsEveryColumnAndQuotedFields) {
  WriteUniformJpeg("data/img/with,comma.jpg", {100, 0, 0});
  WriteUniformJpeg("data/img/plain.jpg", {0, 100, 0});
  WriteUniformJpeg("data/img/say \"hi\".jpg", {0, 0, 100});
  WriteUniformJpeg("data/img/x_frame0.jpg", {50, 50, 50});
  WriteText("data/data.csv",
            "path,label,spoof_type,illumination,environment,camera_quality,video_id,subject_id,"
            "domain,split\r\n"
            "\"img/with,comma.jpg\",1,8,2,1,0,42,7,dom_a,train\r\n"
            "img/plain.jpg,0,,,,,,,,\r\n"
            "\"img/say \"\"hi\"\".jpg\",0,0,-1,-1,2,41,,dom_a,test\r\n"
            "img/x_frame0.jpg,1,,,,,,,dom_a,\r\n");
  IngestOptions options;
  options.out = Path("store");
  options.format = IngestFormat::kCsv;
  options.input = Path("data/data.csv");
  options.domain = "dom_b";
  options.split = Split::kTest;
  options.size = 32;
  const IngestReport report = Ingest(options);
  EXPECT_EQ(report.added, 4);
  ASSERT_EQ(report.manifest.domains.size(), 2u);
  EXPECT_EQ(report.manifest.domains[0].name, "dom_a");  // order of first appearance
  EXPECT_EQ(report.manifest.domains[1].name, "dom_b");

  const auto store = Store::Open(options.out);
  const SampleTable& table = store->table();
  ASSERT_EQ(table.size(), 4);
  const SampleAttributes quoted = table.Attributes(0);
  EXPECT_EQ(quoted.source, "img/with,comma.jpg");
  EXPECT_EQ(quoted.label, 1);
  EXPECT_EQ(quoted.spoof_type, 8);
  EXPECT_EQ(quoted.illumination, 2);
  EXPECT_EQ(quoted.environment, 1);
  EXPECT_EQ(quoted.camera_quality, 0);
  EXPECT_EQ(quoted.video_id, 42);
  EXPECT_EQ(quoted.subject_id, 7);
  EXPECT_EQ(quoted.split, Split::kTrain);
  EXPECT_EQ(table.domain[0], 0);
  // Empty cells: defaults from the options, unknown style, automatic video id.
  const SampleAttributes plain = table.Attributes(1);
  EXPECT_EQ(table.domain[1], 1);
  EXPECT_EQ(plain.split, Split::kTest);
  EXPECT_EQ(plain.illumination, -1);
  EXPECT_EQ(plain.camera_quality, -1);
  EXPECT_EQ(plain.subject_id, -1);
  EXPECT_EQ(plain.video_id, 0);
  const SampleAttributes escaped = table.Attributes(2);
  EXPECT_EQ(escaped.source, "img/say \"hi\".jpg");
  EXPECT_EQ(escaped.camera_quality, 2);
  EXPECT_EQ(escaped.video_id, 41);  // a live video: 42 is a spoof one
  EXPECT_EQ(escaped.split, Split::kTest);
  // Automatic ids start above the domain's largest explicit one.
  const SampleAttributes automatic = table.Attributes(3);
  EXPECT_EQ(automatic.video_id, 43);
  EXPECT_EQ(automatic.spoof_type, kUnknownSpoofType);
  EXPECT_GT(MeanColour(*store, 2)[2], 90);
}

TEST_F(IngestTest, MalformedListAndCsvAreErrorsNamingFileAndLine) {
  WriteUniformJpeg("data/a.jpg", {1, 2, 3});
  auto list_error = [&](const std::string& text) {
    WriteText("data/list.txt", text);
    return ErrorOf([&] { Ingest(ListOptions("data/list.txt", "d")); });
  };
  std::string message = list_error("a.jpg 0\na.jpg\n");
  EXPECT_NE(message.find("list.txt:2"), std::string::npos) << message;
  message = list_error("a.jpg 0\n\na.jpg 2\n");
  EXPECT_NE(message.find("list.txt:3"), std::string::npos) << message;
  EXPECT_NE(message.find("'2'"), std::string::npos) << message;
  message = list_error("a.jpg 1 3 extra\n");
  EXPECT_NE(message.find("list.txt:1"), std::string::npos) << message;
  message = list_error("a.jpg 0 4\n");  // live with an attack type
  EXPECT_NE(message.find("list.txt:1"), std::string::npos) << message;

  IngestOptions options;
  options.out = Path("store");
  options.format = IngestFormat::kCsv;
  options.input = Path("data/data.csv");
  options.domain = "d";
  options.split = Split::kTrain;
  auto csv_error = [&](const std::string& text) {
    WriteText("data/data.csv", text);
    return ErrorOf([&] { Ingest(options); });
  };
  message = csv_error("path,label,colour\na.jpg,0,red\n");
  EXPECT_NE(message.find("data.csv:1"), std::string::npos) << message;
  EXPECT_NE(message.find("'colour'"), std::string::npos) << message;
  message = csv_error("path,label\na.jpg,0\n\"a.jpg\",x\n");
  EXPECT_NE(message.find("data.csv:3"), std::string::npos) << message;
  EXPECT_NE(message.find("label"), std::string::npos) << message;
  message = csv_error("path,label,illumination\na.jpg,1,4\n");
  EXPECT_NE(message.find("data.csv:2"), std::string::npos) << message;
  EXPECT_NE(message.find("illumination"), std::string::npos) << message;
  message = csv_error("path,label\na.jpg,0,1\n");
  EXPECT_NE(message.find("data.csv:2"), std::string::npos) << message;
  message = csv_error("path,label\n\"a.jpg,0\n");
  EXPECT_NE(message.find("never closed"), std::string::npos) << message;
  message = csv_error("path\na.jpg\n");
  EXPECT_NE(message.find("'label'"), std::string::npos) << message;
  // Nothing was written by any of them.
  EXPECT_FALSE(PathExists(Path("store/manifest.json")));
}

TEST_F(IngestTest, UnreadableInputsAreSkippedAndListed) {
  WriteUniformJpeg("data/good.jpg", {90, 90, 90});
  WriteUniformJpeg("data/bad.jpg", {90, 90, 90});
  const std::string whole = ReadFile(Path("data/bad.jpg"));
  WriteText("data/bad.jpg", whole.substr(0, whole.size() / 2));  // truncated
  WriteText("data/list.txt", "good.jpg 0\nbad.jpg 0\nmissing.jpg 1\n");
  const IngestReport report = Ingest(ListOptions("data/list.txt", "d"));
  EXPECT_EQ(report.added, 1);
  EXPECT_EQ(report.skipped, 2);
  ASSERT_EQ(report.manifest.skipped.size(), 2u);
  EXPECT_EQ(report.manifest.skipped[0].source, "bad.jpg");
  EXPECT_FALSE(report.manifest.skipped[0].reason.empty());
  EXPECT_EQ(report.manifest.skipped[1].source, "missing.jpg");
  EXPECT_EQ(ReadManifest(Path("store")).skipped.size(), 2u);
}

// A list names files under its root: '../' and absolute paths are refused
// unless asked for; a file listed twice is ingested once (the repeat skipped and
// recorded), or refused if the labels disagree; a video with live and spoof
// frames is refused, naming both.
TEST_F(IngestTest, ListedPathsStayUnderTheRootAndAreIngestedOnce) {
  WriteUniformJpeg("outside.jpg", {70, 70, 70});
  WriteUniformJpeg("data/in.jpg", {90, 90, 90});
  WriteText("data/list.txt", "in.jpg 0\n../outside.jpg 0\n");
  std::string e = ErrorOf([&] { Ingest(ListOptions("data/list.txt", "d")); });
  EXPECT_NE(e.find("list.txt:2: path '../outside.jpg' leaves the root"), std::string::npos) << e;
  WriteText("data/list.txt", "in.jpg 0\n" + Path("outside.jpg") + " 0\n");
  e = ErrorOf([&] { Ingest(ListOptions("data/list.txt", "d")); });
  EXPECT_NE(e.find("leaves the root"), std::string::npos) << e;
  EXPECT_FALSE(PathExists(Path("store/manifest.json")));
  WriteText("data/nul.txt", std::string("in.jpg\0x 0\n", 11));  // open(2) would read in.jpg
  e = ErrorOf([&] { Ingest(ListOptions("data/nul.txt", "d")); });
  EXPECT_NE(e.find("nul.txt:1: the path holds a NUL byte"), std::string::npos) << e;
  EXPECT_FALSE(PathExists(Path("store")));
  IngestOptions allowed = ListOptions("data/list.txt", "d");
  allowed.allow_outside_root = true;
  EXPECT_EQ(Ingest(allowed).added, 2);

  WriteText("data/twice.txt", "in.jpg 0\n./in.jpg 0\nin.jpg 0\n");
  IngestOptions twice = ListOptions("data/twice.txt", "t");
  twice.out = Path("store2");
  const IngestReport report = Ingest(twice);
  EXPECT_EQ(report.added, 1);
  EXPECT_EQ(report.skipped, 2);
  ASSERT_EQ(report.manifest.skipped.size(), 2u);
  EXPECT_NE(report.manifest.skipped[0].reason.find("listed again at"), std::string::npos);
  WriteText("data/twice.txt", "in.jpg 0\nin.jpg 1\n");
  e = ErrorOf([&] { Ingest(twice); });
  EXPECT_NE(e.find("twice.txt:2: 'in.jpg' is listed again with other labels (first at"), std::string::npos) << e;

  WriteUniformJpeg("data/v_frame0.jpg", {10, 10, 10});
  WriteUniformJpeg("data/v_frame1.jpg", {20, 20, 20});
  WriteText("data/mixed.txt", "v_frame0.jpg 0\nv_frame1.jpg 1\n");
  IngestOptions mixed = ListOptions("data/mixed.txt", "m");
  mixed.out = Path("store3");
  e = ErrorOf([&] { Ingest(mixed); });
  EXPECT_NE(e.find("mixed.txt:2: 'v_frame1.jpg' is spoof but belongs to the same video"), std::string::npos) << e;
  EXPECT_NE(e.find("'v_frame0.jpg', which is live"), std::string::npos) << e;
}

// ingest --dry-run: the label file read and checked as Ingest reads it, counts
// of the inputs per new domain, and nothing opened or written (the images here
// do not even exist).
TEST_F(IngestTest, PreviewCountsTheInputsAndTouchesNothing) {
  if (!INSTRUCTFLIP_HAVE_OPENCV) GTEST_SKIP() << "the CSV lists a video, which needs OpenCV";
  WriteText("data/labels.csv",
            "path,label,domain,split\n"
            "a.jpg,0,x,train\n"
            "b.jpg,1,x,test\n"
            "./a.jpg,0,x,train\n"  // the same file again: a repeat
            "c.mp4,1,y,train\n"
            "d.jpg,0,y,\n");      // --split's value
  IngestOptions options;
  options.out = Path("store");
  options.format = IngestFormat::kCsv;
  options.input = Path("data/labels.csv");
  options.split = Split::kTest;
  const IngestPreview preview = PreviewIngest(options);
  ASSERT_EQ(preview.domains.size(), 2u);
  EXPECT_EQ(preview.domains[0].name, "x");
  EXPECT_EQ(preview.domains[0].counts.counts, (std::array<std::array<int64_t, 2>, 2>{{{1, 0}, {0, 1}}}));
  EXPECT_EQ(preview.domains[1].name, "y");
  EXPECT_EQ(preview.domains[1].counts.counts, (std::array<std::array<int64_t, 2>, 2>{{{0, 1}, {1, 0}}}));
  EXPECT_EQ(preview.inputs, 4);
  EXPECT_EQ(preview.videos, 1);
  EXPECT_EQ(preview.repeats, 1);
  EXPECT_FALSE(PathExists(Path("store")));
  // Every label error Ingest raises, the preview raises.
  WriteText("data/labels.csv", "path,label\na.jpg,2\n");
  const std::string e = ErrorOf([&] { PreviewIngest(options); });
  EXPECT_NE(e.find("labels.csv:2: field 'label' must be an integer in 0..1, got '2'"), std::string::npos) << e;
}

TEST_F(IngestTest, NothingReadableIsAnErrorAndWritesNoStore) {
  WriteText("data/list.txt", "missing.jpg 0\n");
  const std::string message = ErrorOf([&] { Ingest(ListOptions("data/list.txt", "d")); });
  EXPECT_NE(message.find("missing.jpg"), std::string::npos) << message;
  EXPECT_FALSE(PathExists(Path("store/manifest.json")));
}

TEST_F(IngestTest, AppendAddsADomainAndRefusesAnExactDuplicate) {
  WriteUniformJpeg("data/a.jpg", {1, 2, 3});
  WriteText("data/list.txt", "a.jpg 0\n");
  Ingest(ListOptions("data/list.txt", "first"));
  IngestOptions options = ListOptions("data/list.txt", "second");
  options.append = true;
  EXPECT_EQ(Ingest(options).manifest.domains.size(), 2u);
  const std::string manifest = ReadFile(Path("store/manifest.json"));
  const std::string message = ErrorOf([&] { Ingest(options); });
  EXPECT_NE(message.find("'a.jpg' is already in domain 'second' (split train)"), std::string::npos) << message;
  EXPECT_EQ(ReadFile(Path("store/manifest.json")), manifest);
}

// The MCIO preparation: four datasets, each a train list and a test list
// ingested into one domain. A test list may name frames of the train list
// (msu's does here), as the reference's lists do.
TEST_F(IngestTest, McioPreparationPutsBothListsOfADatasetIntoOneDomain) {
  const std::vector<std::string> names = {"msu", "casia", "idiap", "oulu"};
  for (const std::string& n : names) {
    WriteUniformJpeg(n + "/train/live/v0_frame0.jpg", {10, 10, 10});
    WriteUniformJpeg(n + "/train/live/v0_frame1.jpg", {20, 20, 20});
    WriteUniformJpeg(n + "/train/spoof/v1_frame0.jpg", {30, 30, 30});
    WriteUniformJpeg(n + "/test/live/v0_frame0.jpg", {40, 40, 40});  // a train video's name, another folder
    WriteUniformJpeg(n + "/test/spoof/v2_frame0.jpg", {50, 50, 50});
    WriteText(n + "/train.txt", "train/live/v0_frame0.jpg 0\ntrain/live/v0_frame1.jpg 0\ntrain/spoof/v1_frame0.jpg 1\n");
    WriteText(n + "/test.txt", "test/live/v0_frame0.jpg 0\ntest/spoof/v2_frame0.jpg 1\n" +
                                   std::string(n == "msu" ? "train/live/v0_frame1.jpg 0\n" : ""));
  }
  for (const std::string& n : names)
    for (const Split split : {Split::kTrain, Split::kTest}) {
      IngestOptions options = ListOptions(n + (split == Split::kTrain ? "/train.txt" : "/test.txt"), n);
      options.split = split;
      options.append = PathExists(Path("store/manifest.json"));
      Ingest(options);
    }
  const auto store = Store::Open(Path("store"));
  ASSERT_EQ(store->manifest().domains.size(), 4u);
  for (const DomainEntry& d : store->manifest().domains) {
    const auto& c = d.counts.counts;
    EXPECT_EQ(c[0][0], 2) << d.name;
    EXPECT_EQ(c[0][1], 1) << d.name;
    EXPECT_EQ(c[1][0], d.name == "msu" ? 2 : 1) << d.name;
    EXPECT_EQ(c[1][1], 1) << d.name;
  }
  // A test list's new videos are numbered after the train list's (v0 of test/
  // is not v0 of train/); a frame of a stored video keeps that video's id.
  const SampleTable& t = store->table();
  std::vector<int64_t> msu_ids;
  for (int64_t i = 0; i < t.size(); ++i)
    if (t.domain[i] == 0) msu_ids.push_back(t.video_id[i]);
  EXPECT_EQ(msu_ids, (std::vector<int64_t>{0, 0, 1, 2, 3, 0}));

  // Ingesting msu's test list again is an exact duplicate: refused, nothing written.
  const std::string manifest = ReadFile(Path("store/manifest.json"));
  IngestOptions again = ListOptions("msu/test.txt", "msu");
  again.split = Split::kTest;
  again.append = true;
  const std::string message = ErrorOf([&] { Ingest(again); });
  EXPECT_NE(message.find("is already in domain 'msu' (split test)"), std::string::npos) << message;
  EXPECT_NE(message.find("and 2 more inputs"), std::string::npos) << message;
  EXPECT_EQ(ReadFile(Path("store/manifest.json")), manifest);

  // All of msu (targets_split: all): the frame both lists name counts once.
  LoaderOptions all;
  all.domains = {"msu"};
  all.batch_size = 1;
  all.drop_last = false;
  all.sampler.shuffle = false;
  const Loader loader(store, all);
  EXPECT_EQ(loader.eligible().size(), 5u);
  all.split = Split::kTest;
  EXPECT_EQ(Loader(store, all).eligible().size(), 3u);

  // An explicit video id (CSV) naming a stored video of the other label is refused.
  WriteText("msu/extra.csv", "path,label,video_id,split\ntest/spoof/v2_frame0.jpg,1,0,train\n");
  IngestOptions csv = ListOptions("msu/extra.csv", "msu");
  csv.format = IngestFormat::kCsv;
  csv.append = true;
  const std::string mixed = ErrorOf([&] { Ingest(csv); });
  EXPECT_NE(mixed.find("is spoof but video 0 of domain 'msu'"), std::string::npos) << mixed;
  EXPECT_EQ(ReadFile(Path("store/manifest.json")), manifest);
}

// --encoding: JPEG re-encodes (lossy), png stores the exact pixels, keep
// stores a source already at the store size byte for byte (JPEG or PNG) and
// anything it would have to change as lossless PNG. The store reads all three.
TEST_F(IngestTest, EncodingKeepsTexturesExactWhereAsked) {
  if (!INSTRUCTFLIP_HAVE_OPENCV) GTEST_SKIP() << "the list has a PNG source, which needs OpenCV";
  RgbImage texture{32, 32, std::vector<uint8_t>(32 * 32 * 3)};
  for (size_t i = 0; i < texture.pixels.size(); ++i) texture.pixels[i] = static_cast<uint8_t>((i * 53) ^ (i >> 4));
  WriteText("data/exact.png", EncodePng(texture.pixels.data(), 32, 32, 3));
  WriteText("data/exact.jpg", EncodeJpeg(texture, 95));
  WriteJpeg("data/large.jpg", 40, 40, [](int x, int y) { return Rgb{uint8_t(x * 6), uint8_t(y * 6), 99}; });
  WriteText("data/list.txt", "exact.png 0\nexact.jpg 0\nlarge.jpg 1\n");
  auto ingest = [&](IngestEncoding encoding, const std::string& out) {
    IngestOptions options = ListOptions("data/list.txt", "d");
    options.encoding = encoding;
    options.out = Path(out);
    Ingest(options);
    return Store::Open(Path(out));
  };
  auto stored = [](const Store& store, int64_t i) {
    std::vector<uint8_t> bytes;
    store.ReadImageBytes(i, &bytes);
    return std::string(bytes.begin(), bytes.end());
  };
  auto pixels = [](const std::string& bytes) {
    RgbImage image;
    DecodeStoredImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "stored", &image);
    return image.pixels;
  };
  const auto jpeg = ingest(IngestEncoding::kJpeg, "jpeg");
  const auto png = ingest(IngestEncoding::kPng, "png");
  const auto keep = ingest(IngestEncoding::kKeep, "keep");
  EXPECT_NE(pixels(stored(*jpeg, 0)), texture.pixels);  // JPEG q90 loses the texture
  EXPECT_EQ(pixels(stored(*png, 0)), texture.pixels);   // PNG keeps it exactly
  EXPECT_TRUE(IsPng(reinterpret_cast<const uint8_t*>(stored(*png, 1).data()), stored(*png, 1).size()));
  EXPECT_EQ(stored(*keep, 0), ReadFile(Path("data/exact.png")));  // the source bytes themselves
  EXPECT_EQ(stored(*keep, 1), ReadFile(Path("data/exact.jpg")));
  const std::string resized = stored(*keep, 2);  // 40x40: resized, so stored losslessly
  EXPECT_TRUE(IsPng(reinterpret_cast<const uint8_t*>(resized.data()), resized.size()));
  EXPECT_EQ(pixels(resized), pixels(stored(*png, 2)));
  for (const auto* store : {jpeg.get(), png.get(), keep.get()}) EXPECT_TRUE(store->Verify(/*deep=*/true).ok);

  // A source the store would decode otherwise (alpha: OpenCV drops it, the
  // store's PNG reader composites it) is re-encoded, not kept.
  cv::Mat rgba(32, 32, CV_8UC4, cv::Scalar(200, 100, 50, 255));
  rgba(cv::Rect(0, 0, 16, 32)).setTo(cv::Scalar(200, 100, 50, 40));
  ASSERT_TRUE(cv::imwrite(Path("data/alpha.png"), rgba));
  WriteText("data/alpha.txt", "alpha.png 0\n");
  IngestOptions alpha = ListOptions("data/alpha.txt", "a");
  alpha.encoding = IngestEncoding::kKeep;
  alpha.out = Path("alpha");
  Ingest(alpha);
  const auto alpha_store = Store::Open(Path("alpha"));
  EXPECT_NE(stored(*alpha_store, 0), ReadFile(Path("data/alpha.png")));
  EXPECT_NEAR(MeanColour(*alpha_store, 0)[0], 50, 2);  // OpenCV's decode (BGR 200,100,50 -> R 50), alpha ignored
  EXPECT_FALSE(kIngestEncodings.Find("webp").has_value());
  EXPECT_EQ(kIngestEncodings.Find("keep"), IngestEncoding::kKeep);
}

TEST_F(IngestTest, ParallelIngestKeepsInputOrder) {
  std::string list;
  for (int i = 0; i < 40; ++i) {
    const std::string name = "img" + std::to_string(i) + ".jpg";
    const uint8_t v = static_cast<uint8_t>(5 * i + 20);
    WriteUniformJpeg("data/" + name, {v, v, v});
    list += name + " " + (i % 3 == 0 ? "1" : "0") + "\n";
  }
  WriteText("data/list.txt", list);
  IngestOptions serial = ListOptions("data/list.txt", "d");
  serial.threads = 1;
  Ingest(serial);
  IngestOptions parallel = serial;
  parallel.out = Path("store4");
  parallel.threads = 4;
  Ingest(parallel);

  const auto a = Store::Open(serial.out), b = Store::Open(parallel.out);
  ASSERT_EQ(a->size(), 40);
  ASSERT_EQ(b->size(), 40);
  std::vector<uint8_t> jpeg_a, jpeg_b;
  for (int64_t i = 0; i < 40; ++i) {
    EXPECT_EQ(b->table().source[i], "img" + std::to_string(i) + ".jpg");
    a->ReadImageBytes(i, &jpeg_a);
    b->ReadImageBytes(i, &jpeg_b);
    EXPECT_EQ(jpeg_a, jpeg_b) << "sample " << i;
  }
}

#if INSTRUCTFLIP_HAVE_OPENCV

TEST_F(IngestTest, PngIsDecodedAsRgb) {
  cv::Mat bgr(24, 24, CV_8UC3, cv::Scalar(0, 0, 230));  // pure red in BGR order
  fs::create_directories(Path("data"));
  ASSERT_TRUE(cv::imwrite(Path("data/red.png"), bgr));
  WriteText("data/list.txt", "red.png 0\n");
  Ingest(ListOptions("data/list.txt", "d"));
  const auto mean = MeanColour(*Store::Open(Path("store")), 0);
  EXPECT_GT(mean[0], 200);
  EXPECT_LT(mean[2], 30);
}

TEST_F(IngestTest, VideoSamplesTheReferenceFrames) {
  fs::create_directories(Path("data"));
  cv::VideoWriter writer(Path("data/clip.avi"), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 25,
                         cv::Size(32, 32));
  ASSERT_TRUE(writer.isOpened());
  for (int k = 0; k < 20; ++k) writer.write(cv::Mat(32, 32, CV_8UC3, cv::Scalar::all(10 * k + 5)));
  writer.release();
  WriteText("data/broken.mp4", "not a video");
  WriteText("data/list.txt", "clip.avi 1 8\nbroken.mp4 0\n");
  const IngestReport report = Ingest(ListOptions("data/list.txt", "d"));
  EXPECT_EQ(report.added, 2);
  EXPECT_EQ(report.skipped, 1);
  ASSERT_EQ(report.manifest.skipped.size(), 1u);
  EXPECT_EQ(report.manifest.skipped[0].source, "broken.mp4");

  const auto store = Store::Open(Path("store"));
  ASSERT_EQ(store->size(), 2);
  EXPECT_EQ(store->table().source[0], "clip.avi#frame=6");
  EXPECT_EQ(store->table().source[1], "clip.avi#frame=16");
  EXPECT_EQ(store->table().video_id[0], store->table().video_id[1]);
  EXPECT_EQ(store->table().spoof_type[0], 8);
  EXPECT_NEAR(MeanColour(*store, 0)[1], 65, 4);   // frame 6
  EXPECT_NEAR(MeanColour(*store, 1)[1], 165, 4);  // frame 16
}

#else  // !INSTRUCTFLIP_HAVE_OPENCV

TEST_F(IngestTest, NonJpegNeedsOpenCV) {
  WriteText("data/list.txt", "clip.avi 1\n");
  const std::string message = ErrorOf([&] { Ingest(ListOptions("data/list.txt", "d")); });
  EXPECT_NE(message.find("built without OpenCV"), std::string::npos) << message;
  EXPECT_NE(message.find("list.txt:1"), std::string::npos) << message;
}

#endif  // INSTRUCTFLIP_HAVE_OPENCV

}  // namespace
}  // namespace instructflip
