#include "dataio/store.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/manifest.h"
#include "dataio/jpeg_codec.h"
#include "dataio/base/crc32c.h"
#include "tests/dataio/test_util.h"

namespace instructflip {
namespace {

using testing::DomainSpec;
using testing::ErrorOf;
using testing::MakeStore;
using testing::TaggedImage;
using testing::TempDir;


const std::vector<DomainSpec> kTwoDomains = {{"alpha", 3, 4, 2, 1}, {"beta", 2, 2, 1, 3}};

TEST(Store, RoundTripKeepsLabelsExactAndPixelsWithinJpegTolerance) {
  TempDir tmp;
  MakeStore(tmp / "s", kTwoDomains, 32);
  auto store = Store::Open(tmp / "s");
  ASSERT_EQ(store->size(), 18);
  EXPECT_EQ(store->manifest().domains[0].counts.counts[0][1], 4);
  EXPECT_EQ(store->manifest().domains[1].counts.counts[1][1], 3);
  std::vector<uint8_t> bytes;
  RgbImage decoded;
  for (int64_t i = 0; i < store->size(); ++i) {
    const SampleAttributes a = store->table().Attributes(i);
    EXPECT_EQ(a.spoof_type, a.label ? 1 + i % 10 : 0);
    EXPECT_EQ(a.illumination, i % 5 - 1);
    EXPECT_EQ(a.camera_quality, i % 4 - 1);
    EXPECT_EQ(a.subject_id, i / 4);
    EXPECT_EQ(store->table().domain[i], i < 10 ? 0 : 1);
    EXPECT_EQ(a.source, (i < 10 ? "alpha/" : "beta/") + std::to_string(i) + ".jpg");
    store->ReadImageBytes(i, &bytes);
    DecodeJpeg(bytes.data(), bytes.size(), "sample", &decoded);
    const RgbImage original = TaggedImage(i, 32);
    double diff = 0;
    for (size_t p = 0; p < original.pixels.size(); ++p)
      diff += std::abs(int(original.pixels[p]) - int(decoded.pixels[p]));
    EXPECT_LT(diff / original.pixels.size(), 3.0) << "sample " << i;
  }
  // Labels of the first domain's train split: 3 live then 4 spoof.
  EXPECT_EQ(store->table().label[2], 0);
  EXPECT_EQ(store->table().label[3], 1);
}

TEST(Store, ShardsAreStandardHdf5) {
  TempDir tmp;
  MakeStore(tmp / "s", kTwoDomains, 32);
  const std::string shard = tmp / "s/shard-00000.h5";
  hid_t file = H5Fopen(shard.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  auto expect_type = [&](const char* name, H5T_class_t cls, size_t size, H5T_sign_t sign) {
    hid_t dataset = H5Dopen2(file, name, H5P_DEFAULT);
    ASSERT_GE(dataset, 0) << name;
    hid_t type = H5Dget_type(dataset);
    EXPECT_EQ(H5Tget_class(type), cls) << name;
    EXPECT_EQ(H5Tget_size(type), size) << name;
    if (cls == H5T_INTEGER) EXPECT_EQ(H5Tget_sign(type), sign) << name;
    if (cls == H5T_STRING) EXPECT_FALSE(H5Tis_variable_str(type)) << name;
    hid_t plist = H5Dget_create_plist(dataset);
    EXPECT_EQ(H5Pget_layout(plist), H5D_CONTIGUOUS) << name;
    H5Pclose(plist);
    H5Tclose(type);
    H5Dclose(dataset);
  };
  expect_type("jpeg", H5T_INTEGER, 1, H5T_SGN_NONE);
  expect_type("offsets", H5T_INTEGER, 8, H5T_SGN_2);
  expect_type("label", H5T_INTEGER, 1, H5T_SGN_2);
  expect_type("video_id", H5T_INTEGER, 8, H5T_SGN_2);
  expect_type("crc32c", H5T_INTEGER, 4, H5T_SGN_NONE);
  expect_type("domain", H5T_INTEGER, 4, H5T_SGN_2);
  // The flat byte array and offsets reproduce what the store API returns.
  hid_t offsets_ds = H5Dopen2(file, "offsets", H5P_DEFAULT);
  std::vector<int64_t> offsets(19);
  ASSERT_GE(H5Dread(offsets_ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, offsets.data()), 0);
  H5Dclose(offsets_ds);
  hid_t jpeg_ds = H5Dopen2(file, "jpeg", H5P_DEFAULT);
  std::vector<uint8_t> jpeg(offsets.back());
  ASSERT_GE(H5Dread(jpeg_ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, jpeg.data()), 0);
  H5Dclose(jpeg_ds);
  H5Fclose(file);
  auto store = Store::Open(tmp / "s");
  std::vector<uint8_t> bytes;
  store->ReadImageBytes(5, &bytes);
  EXPECT_EQ(std::vector<uint8_t>(jpeg.begin() + offsets[5], jpeg.begin() + offsets[6]), bytes);
  // h5dump (hdf5-tools) reads it too.
  const std::string command = "h5dump -H " + shard + " > /dev/null 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

TEST(Store, SplitsIntoShardsAndAppendAddsDomains) {
  TempDir tmp;
  MakeStore(tmp / "s", {kTwoDomains[0]}, 32, false, /*shard_max_bytes=*/3000);
  const Manifest first = ReadManifest(tmp / "s");
  EXPECT_GT(first.shards.size(), 1u);
  MakeStore(tmp / "s", {kTwoDomains[1]}, 32, /*append=*/true);
  auto store = Store::Open(tmp / "s");
  EXPECT_EQ(store->size(), 18);
  EXPECT_EQ(store->manifest().shards.size(), first.shards.size() + 1);
  EXPECT_EQ(store->ResolveDomains({"beta", "alpha"}), (std::vector<int>{1, 0}));
  // The appended domain's samples come after the first ones with domain index 1.
  EXPECT_EQ(store->table().domain[17], 1);
  EXPECT_EQ(store->table().source[17], "beta/7.jpg");
}

TEST(Store, FailedOrInterruptedWritesLeaveTheStoreAsItWas) {
  TempDir tmp;
  MakeStore(tmp / "s", {kTwoDomains[0]}, 32);
  const std::string before = ReadFile(tmp / "s/manifest.json");
  auto count_files = [&] {
    return std::distance(std::filesystem::directory_iterator(tmp / "s"), std::filesystem::directory_iterator());
  };
  const auto files_before = count_files();
  // Appending to a domain the store holds is refused unless the writer extends domains (ingest).
  EXPECT_NE(ErrorOf([&] { MakeStore(tmp / "s", {kTwoDomains[0]}, 32, true); }).find("already in store"),
            std::string::npos);
  // A writer that flushed shards but never committed (an interrupted ingest).
  {
    StoreWriterOptions options;
    options.dir = tmp / "s";
    options.image_size = 32;
    options.append = true;
    options.shard_max_bytes = 1;  // every sample becomes a shard on disk
    StoreWriter writer(options);
    const int d = writer.AddDomain("gamma");
    SampleAttributes a;
    a.source = "gamma/0.jpg";
    writer.Add(d, EncodeJpeg(TaggedImage(0, 32), 90), a);
    writer.Add(d, EncodeJpeg(TaggedImage(1, 32), 90), a);
  }
  EXPECT_EQ(ReadFile(tmp / "s/manifest.json"), before);
  EXPECT_EQ(count_files(), files_before);
  // A new store over an existing one is refused rather than overwriting it.
  EXPECT_NE(ErrorOf([&] { MakeStore(tmp / "s", {kTwoDomains[1]}, 32); }).find("already holds a store"),
            std::string::npos);
  EXPECT_EQ(ReadFile(tmp / "s/manifest.json"), before);
  EXPECT_EQ(Store::Open(tmp / "s")->size(), 10);
  // A new store that never commits (an ingest that read nothing) leaves no
  // directory, its parents included; an append to what is not a store makes none.
  {
    StoreWriterOptions options;
    options.dir = tmp / "new/store";
    options.image_size = 32;
    options.shard_max_bytes = 1;
    StoreWriter writer(options);
    SampleAttributes a;
    a.source = "x.jpg";
    writer.Add(writer.AddDomain("delta"), EncodeJpeg(TaggedImage(0, 32), 90), a);
  }
  EXPECT_FALSE(std::filesystem::exists(tmp / "new"));
  StoreWriterOptions append;
  append.dir = tmp / "other";
  append.image_size = 32;
  append.append = true;
  EXPECT_NE(ErrorOf([&] { StoreWriter writer(append); }).find("is not a store"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(tmp / "other"));
}

TEST(Store, LeftoverShardsOfAKilledWriterAreIgnoredThenCleaned) {
  TempDir tmp;
  MakeStore(tmp / "s", {kTwoDomains[0]}, 32);
  // Simulate kill -9 after a shard rename but before the manifest: an
  // unreferenced shard file and a temp file.
  std::filesystem::copy_file(tmp / "s/shard-00000.h5", tmp / "s/shard-00007.h5");
  std::ofstream(tmp / "s/.shard-00008.h5.tmp") << "partial";
  EXPECT_EQ(Store::Open(tmp / "s")->size(), 10);  // readers only follow the manifest
  MakeStore(tmp / "s", {kTwoDomains[1]}, 32, /*append=*/true);
  EXPECT_FALSE(PathExists(tmp / "s/shard-00007.h5"));
  EXPECT_FALSE(PathExists(tmp / "s/.shard-00008.h5.tmp"));
  auto store = Store::Open(tmp / "s");
  EXPECT_EQ(store->size(), 18);
  EXPECT_EQ(store->manifest().shards.back().path, "shard-00008.h5");  // never reuses a name
  EXPECT_TRUE(store->Verify().ok);
}

TEST(Store, DamagedShardIsReportedWithShardAndSample) {
  TempDir tmp;
  MakeStore(tmp / "s", kTwoDomains, 32);
  auto store = Store::Open(tmp / "s");
  EXPECT_TRUE(store->Verify().ok);
  std::vector<uint8_t> sample7;
  store->ReadImageBytes(7, &sample7);
  // Flip one byte inside sample 7's JPEG bytes, in place (same file size).
  const std::string shard = tmp / "s/shard-00000.h5";
  std::string bytes = ReadFile(shard);
  // A window of sample 7's entropy-coded data (headers are alike across samples).
  const size_t at = bytes.find(std::string(sample7.end() - 60, sample7.end() - 20));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] ^= 0x5A;
  std::ofstream(shard, std::ios::binary | std::ios::trunc) << bytes;
  auto damaged = Store::Open(tmp / "s");  // sizes still match: opening works
  const VerifyReport report = damaged->Verify();
  EXPECT_FALSE(report.ok);
  EXPECT_NE(report.first_error.find("shard-00000.h5"), std::string::npos) << report.first_error;
  EXPECT_NE(report.first_error.find("sample 7"), std::string::npos) << report.first_error;
  std::vector<uint8_t> out;
  const std::string error = ErrorOf([&] { damaged->ReadImageBytes(7, &out); });
  EXPECT_NE(error.find("checksum mismatch"), std::string::npos) << error;
  EXPECT_NE(error.find("sample 7"), std::string::npos) << error;
  EXPECT_NO_THROW(damaged->ReadImageBytes(6, &out));
}

TEST(Store, BadStoresGiveOneClearError) {
  TempDir tmp;
  EXPECT_NE(ErrorOf([&] { Store::Open(tmp / "missing"); }).find("does not exist"), std::string::npos);
  std::filesystem::create_directories(tmp / "nostore");
  EXPECT_NE(ErrorOf([&] { Store::Open(tmp / "nostore"); }).find("no manifest.json"), std::string::npos);

  // Empty store (a manifest with no shards).
  std::filesystem::create_directories(tmp / "empty");
  WriteFileAtomic(tmp / "empty/manifest.json",
                  R"({"schema_version": 1, "image_size": 32, "jpeg_quality": 90, "domains": [], "shards": []})");
  EXPECT_NE(ErrorOf([&] { Store::Open(tmp / "empty"); }).find("is empty"), std::string::npos);

  // A manifest pointing outside the store.
  MakeStore(tmp / "s", {kTwoDomains[0]}, 32);
  std::string manifest = ReadFile(tmp / "s/manifest.json");
  const std::string escaped = manifest;
  manifest.replace(manifest.find("\"shard-00000.h5\""), 16, "\"../outside.h5\"");
  WriteFileAtomic(tmp / "s/manifest.json", manifest);
  const std::string error = ErrorOf([&] { Store::Open(tmp / "s"); });
  EXPECT_NE(error.find("outside the store"), std::string::npos) << error;
  EXPECT_NE(error.find("../outside.h5"), std::string::npos) << error;
  WriteFileAtomic(tmp / "s/manifest.json", escaped);

  // A truncated shard.
  std::filesystem::resize_file(tmp / "s/shard-00000.h5", FileSize(tmp / "s/shard-00000.h5") - 10);
  EXPECT_NE(ErrorOf([&] { Store::Open(tmp / "s"); }).find("truncated"), std::string::npos);

  // Unknown domain names list the known ones.
  TempDir other;
  MakeStore(other / "s", kTwoDomains, 32);
  const std::string unknown = ErrorOf([&] { Store::Open(other / "s")->ResolveDomains({"oulu"}); });
  EXPECT_NE(unknown.find("unknown domain 'oulu'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("alpha, beta"), std::string::npos) << unknown;
}

TEST(Store, WriterRejectsBadSamples) {
  TempDir tmp;
  StoreWriterOptions options;
  options.dir = tmp / "s";
  options.image_size = 32;
  StoreWriter writer(options);
  const int d = writer.AddDomain("alpha");
  SampleAttributes a;
  a.source = "x.jpg";
  a.label = 1;  // spoof without a spoof type
  EXPECT_NE(ErrorOf([&] { writer.Add(d, EncodeJpeg(TaggedImage(0, 32), 90), a); }).find("spoof_type"),
            std::string::npos);
  a.label = 0;
  EXPECT_NE(ErrorOf([&] { writer.Add(d, EncodeJpeg(TaggedImage(0, 16), 90), a); }).find("16x16"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { writer.Add(d, "not a jpeg", a); }).find("x.jpg"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { writer.AddDomain("bad name!"); }).find("not allowed"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { writer.Commit(); }).find("empty store"), std::string::npos);
}

// Replaces sample `index`'s JPEG bytes in shard 0 (same length) and re-seals
// the sample's and the shard's checksums, as a crafted or once-damaged store
// would have them: only the content can then give it away.
void RewriteSealedSample(const std::string& dir, int64_t index, const std::vector<uint8_t>& bytes) {
  const std::string shard = JoinPath(dir, "shard-00000.h5");
  hid_t file = H5Fopen(shard.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  std::vector<int64_t> offsets(2);
  hid_t offsets_set = H5Dopen2(file, "offsets", H5P_DEFAULT);
  hsize_t start = static_cast<hsize_t>(index), count = 2;
  hid_t space = H5Dget_space(offsets_set);
  H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nullptr, &count, nullptr);
  hid_t memory = H5Screate_simple(1, &count, nullptr);
  ASSERT_GE(H5Dread(offsets_set, H5T_NATIVE_INT64, memory, space, H5P_DEFAULT, offsets.data()), 0);
  H5Sclose(memory), H5Sclose(space), H5Dclose(offsets_set);
  ASSERT_EQ(offsets[1] - offsets[0], static_cast<int64_t>(bytes.size()));
  auto write = [&](const char* name, hid_t type, hsize_t at, hsize_t n, const void* data) {
    hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t file_space = H5Dget_space(set);
    H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &at, nullptr, &n, nullptr);
    hid_t memory_space = H5Screate_simple(1, &n, nullptr);
    ASSERT_GE(H5Dwrite(set, type, memory_space, file_space, H5P_DEFAULT, data), 0);
    H5Sclose(memory_space), H5Sclose(file_space), H5Dclose(set);
  };
  write("jpeg", H5T_NATIVE_UINT8, static_cast<hsize_t>(offsets[0]), bytes.size(), bytes.data());
  const uint32_t crc = Crc32c(bytes.data(), bytes.size());
  write("crc32c", H5T_NATIVE_UINT32, static_cast<hsize_t>(index), 1, &crc);
  H5Fclose(file);
  Manifest manifest = ReadManifest(dir);
  manifest.shards[0].crc32c = FileCrc32c(shard);
  WriteFileAtomic(JoinPath(dir, "manifest.json"), ManifestToJson(manifest));
}

// Rewrites dataset `name` of a shard with the same values in file type `type`.
void RetypeDataset(const std::string& shard, const char* name, hid_t type) {
  hid_t file = H5Fopen(shard.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
  hid_t space = H5Dget_space(set);
  std::vector<double> values(static_cast<size_t>(H5Sget_simple_extent_npoints(space)));
  ASSERT_GE(H5Dread(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  H5Dclose(set);
  ASSERT_GE(H5Ldelete(file, name, H5P_DEFAULT), 0);
  set = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(H5Dwrite(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  H5Dclose(set), H5Sclose(space), H5Fclose(file);
}

// Found by the store fuzzer: HDF5 converts a dataset of another element type
// on read, so a float `label` was truncated silently and a 16-bit `jpeg` was
// narrowed by H5Dread while the loader's pread(2) saw its raw bytes. The reader
// now requires each column's own integer type, naming the dataset.
TEST(Store, ColumnsOfAnotherElementTypeAreRefused) {
  TempDir tmp;
  MakeStore(tmp / "s", kTwoDomains, 32);
  const std::string shard = JoinPath(tmp / "s", "shard-00000.h5");
  ShardHeader header;
  ASSERT_NO_THROW(ReadShardFile(shard, false, &header));
  RetypeDataset(shard, "label", H5T_IEEE_F64LE);
  std::string e = ErrorOf([&] { ReadShardFile(shard, false, &header); });
  EXPECT_NE(e.find("shard-00000.h5: dataset 'label' must hold signed 8-bit integers"), std::string::npos) << e;
  RetypeDataset(shard, "label", H5T_STD_I8LE);
  ASSERT_NO_THROW(ReadShardFile(shard, false, &header));
  RetypeDataset(shard, "jpeg", H5T_STD_U16LE);
  e = ErrorOf([&] { ReadShardFile(shard, true, &header); });
  EXPECT_NE(e.find("dataset 'jpeg' must hold unsigned 8-bit integers"), std::string::npos) << e;
}

// A header claiming 65000 x 65000 (a decompression bomb) is refused by verify
// and the loader before any pixel memory is taken, naming the sample; a JPEG
// whose second half was zeroed before it was sealed passes the checksums but
// not `verify --deep`.
TEST(Store, BombsAndDamagedContentAreFoundNamingTheSample) {
  TempDir tmp;
  MakeStore(tmp / "s", kTwoDomains, 32);
  std::vector<uint8_t> bytes;
  Store::Open(tmp / "s")->ReadImageBytes(3, &bytes);
  std::vector<uint8_t> bomb = bytes;
  size_t sof = 0;
  while (sof + 9 < bomb.size() && !(bomb[sof] == 0xFF && (bomb[sof + 1] == 0xC0 || bomb[sof + 1] == 0xC2))) ++sof;
  ASSERT_LT(sof + 9, bomb.size());
  bomb[sof + 5] = bomb[sof + 7] = 0xFD;  // height and width 65000 (0xFDE8)
  bomb[sof + 6] = bomb[sof + 8] = 0xE8;
  RewriteSealedSample(tmp / "s", 3, bomb);
  auto store = Store::Open(tmp / "s");
  const VerifyReport shallow = store->Verify();
  EXPECT_FALSE(shallow.ok);
  EXPECT_NE(shallow.first_error.find("sample 3"), std::string::npos) << shallow.first_error;
  EXPECT_NE(shallow.first_error.find("claims 65000x65000"), std::string::npos) << shallow.first_error;
  RgbImage decoded;
  std::vector<uint8_t> scratch;
  const std::string error = ErrorOf([&] { store->DecodeSample(3, &scratch, &decoded); });
  EXPECT_NE(error.find("claims 65000x65000"), std::string::npos) << error;
  EXPECT_TRUE(decoded.pixels.empty());  // nothing was allocated for it
  // Outside a store, DecodeJpeg itself refuses a header over its pixel limit.
  EXPECT_NE(ErrorOf([&] { DecodeJpeg(bomb.data(), bomb.size(), "bomb.jpg", &decoded); }).find("more than the"),
            std::string::npos);

  // Zero the second half of the compressed data (after the SOS header), keeping EOI.
  std::vector<uint8_t> zeroed = bytes;
  size_t sos = 0;
  while (sos + 1 < zeroed.size() && !(zeroed[sos] == 0xFF && zeroed[sos + 1] == 0xDA)) ++sos;
  const size_t data_start = sos + 2 + (zeroed[sos + 2] << 8 | zeroed[sos + 3]);
  std::fill(zeroed.begin() + static_cast<std::ptrdiff_t>((data_start + zeroed.size()) / 2), zeroed.end() - 2, 0);
  RewriteSealedSample(tmp / "s", 3, zeroed);
  store = Store::Open(tmp / "s");
  EXPECT_TRUE(store->Verify().ok);  // the checksums match what was sealed
  const VerifyReport deep = store->Verify(/*deep=*/true);
  EXPECT_FALSE(deep.ok);
  EXPECT_NE(deep.first_error.find("sample 3"), std::string::npos) << deep.first_error;
}

}  // namespace
}  // namespace instructflip
