// A store read back (dataio/shard_file.h, dataio/store.h) from a shard whose
// every HDF5 dataset and attribute the input decides: present or not, its
// type, shape, length and values, the samples' bytes (a real JPEG or noise),
// their offsets and checksums. The manifest beside it matches the shard, so
// the input reaches every check of ReadShardFile and Store::Open, then each
// sample's read and decode.
//
// The HDF5 library's own parsing of damaged files is not fuzzed here (HDF5 is
// fuzzed upstream): this target fuzzes what our reader does with any
// well-formed HDF5 file. Any such shard is read, or refused with
// instructflip::Error; the bytes a reader gets with pread(2) at the `jpeg`
// dataset's offset are the dataset's.
#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "dataio/base/check.h"
#include "dataio/base/crc32c.h"
#include "dataio/base/file_util.h"
#include "dataio/jpeg_codec.h"
#include "dataio/manifest.h"
#include "dataio/schema.h"
#include "dataio/shard_file.h"
#include "dataio/store.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace instructflip;

// A valid 8x8 JPEG: the input chooses it or noise for each sample.
const std::string& SmallJpeg() {
  static const std::string jpeg = [] {
    RgbImage image{8, 8, std::vector<uint8_t>(8 * 8 * 3, 128)};
    return EncodeJpeg(image, 90);
  }();
  return jpeg;
}

// How one dataset is written: as the reader expects, or wrong in one way.
enum Shape { kAbsent, kRight, kWrongType, kTwoDimensional, kChunked, kShapeCount };

Shape PickShape(FuzzedDataProvider* in) {
  // Mostly right, so that the input reaches the checks behind the first one.
  const int pick = in->ConsumeIntegralInRange<int>(0, 31);
  return pick < kShapeCount ? static_cast<Shape>(pick) : kRight;
}

template <typename T>
hid_t FileType() {
  if (sizeof(T) == 1) return std::is_signed<T>::value ? H5T_STD_I8LE : H5T_STD_U8LE;
  if (sizeof(T) == 4) return std::is_signed<T>::value ? H5T_STD_I32LE : H5T_STD_U32LE;
  return H5T_STD_I64LE;
}
template <typename T>
hid_t MemType() {
  if (sizeof(T) == 1) return std::is_signed<T>::value ? H5T_NATIVE_INT8 : H5T_NATIVE_UINT8;
  if (sizeof(T) == 4) return std::is_signed<T>::value ? H5T_NATIVE_INT32 : H5T_NATIVE_UINT32;
  return H5T_NATIVE_INT64;
}

template <typename T>
void WriteDataset(hid_t file, const char* name, std::vector<T> values, FuzzedDataProvider* in) {
  const Shape shape = PickShape(in);
  if (shape == kAbsent) return;
  if (in->ConsumeIntegralInRange<int>(0, 15) == 0) values.resize(values.size() + 1);  // one too many
  const hsize_t n = values.size();
  const hsize_t dims2[2] = {1, n};
  const hid_t space = shape == kTwoDimensional ? H5Screate_simple(2, dims2, nullptr) : H5Screate_simple(1, &n, nullptr);
  const hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
  if (shape == kChunked && n > 0) {
    const hsize_t chunk = 1;
    H5Pset_chunk(plist, 1, &chunk);
  } else {
    H5Pset_layout(plist, H5D_CONTIGUOUS);
    H5Pset_alloc_time(plist, H5D_ALLOC_TIME_EARLY);
  }
  const hid_t type = shape == kWrongType ? H5T_IEEE_F64LE : FileType<T>();
  const hid_t dataset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, plist, H5P_DEFAULT);
  if (dataset >= 0 && n > 0) H5Dwrite(dataset, MemType<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  if (dataset >= 0) H5Dclose(dataset);
  H5Pclose(plist);
  H5Sclose(space);
}

void WriteStrings(hid_t file, const char* name, const std::vector<std::string>& values, FuzzedDataProvider* in) {
  if (PickShape(in) == kAbsent) return;
  const size_t width = in->ConsumeIntegralInRange<size_t>(1, 12);
  std::vector<char> flat(values.size() * width, '\0');
  for (size_t i = 0; i < values.size(); ++i) values[i].copy(&flat[i * width], width);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, width);
  const hsize_t n = values.size();
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t dataset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (dataset >= 0 && n > 0) H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, flat.data());
  if (dataset >= 0) H5Dclose(dataset);
  H5Sclose(space);
  H5Tclose(type);
}

void WriteAttribute(hid_t file, const char* name, int64_t right, FuzzedDataProvider* in) {
  const int pick = in->ConsumeIntegralInRange<int>(0, 15);
  if (pick == 0) return;
  const int64_t value = pick == 1 ? in->ConsumeIntegral<int64_t>() : right;
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t attribute = H5Acreate2(file, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  if (attribute >= 0) {
    H5Awrite(attribute, H5T_NATIVE_INT64, &value);
    H5Aclose(attribute);
  }
  H5Sclose(space);
}

template <typename T>
std::vector<T> Column(int64_t n, int lo, int hi, FuzzedDataProvider* in) {
  std::vector<T> values(static_cast<size_t>(n));
  for (T& v : values) v = static_cast<T>(in->ConsumeIntegralInRange<int>(lo, hi));
  return values;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  FuzzedDataProvider in(data, size);
  const std::string dir = fuzz::ScratchDir() + "/store";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string shard = dir + "/shard-00000.h5";

  // The samples: bytes, then the columns (values one past each valid range too).
  const int64_t n = in.ConsumeIntegralInRange<int64_t>(0, 6);
  const int image_size = in.ConsumeBool() ? 8 : 16;
  const int domains = in.ConsumeIntegralInRange<int>(1, 3);
  std::string jpeg;
  std::vector<int64_t> offsets{0};
  std::vector<uint32_t> crcs;
  for (int64_t i = 0; i < n; ++i) {
    const std::string bytes = in.ConsumeBool() ? SmallJpeg() : in.ConsumeRandomLengthString(64);
    crcs.push_back(in.ConsumeIntegralInRange<int>(0, 7) == 0 ? in.ConsumeIntegral<uint32_t>()
                                                             : Crc32c(bytes.data(), bytes.size()));
    jpeg += bytes;
    offsets.push_back(static_cast<int64_t>(jpeg.size()));
  }
  if (n > 0 && in.ConsumeIntegralInRange<int>(0, 7) == 0)  // one offset moved anywhere
    offsets[in.ConsumeIntegralInRange<size_t>(0, offsets.size() - 1)] = in.ConsumeIntegral<int64_t>();
  SampleTable table;
  table.label = Column<int8_t>(n, -1, 2, &in);
  table.spoof_type = Column<int8_t>(n, -2, 11, &in);
  table.illumination = Column<int8_t>(n, -2, 4, &in);
  table.environment = Column<int8_t>(n, -2, 2, &in);
  table.camera_quality = Column<int8_t>(n, -2, 3, &in);
  table.split = Column<int8_t>(n, -1, 2, &in);
  table.domain = Column<int32_t>(n, -1, domains, &in);
  table.video_id = Column<int64_t>(n, -1, 3, &in);
  table.subject_id = Column<int64_t>(n, -1, 3, &in);
  for (int64_t i = 0; i < n; ++i) table.source.push_back(in.ConsumeRandomLengthString(16));

  // The shard, each dataset and attribute as the input says.
  const hid_t file = H5Fcreate(shard.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) return 0;
  WriteDataset(file, "jpeg", std::vector<uint8_t>(jpeg.begin(), jpeg.end()), &in);
  WriteDataset(file, "offsets", offsets, &in);
  WriteDataset(file, "label", table.label, &in);
  WriteDataset(file, "spoof_type", table.spoof_type, &in);
  WriteDataset(file, "illumination", table.illumination, &in);
  WriteDataset(file, "environment", table.environment, &in);
  WriteDataset(file, "camera_quality", table.camera_quality, &in);
  WriteDataset(file, "split", table.split, &in);
  WriteDataset(file, "domain", table.domain, &in);
  WriteDataset(file, "video_id", table.video_id, &in);
  WriteDataset(file, "subject_id", table.subject_id, &in);
  WriteDataset(file, "crc32c", crcs, &in);
  WriteStrings(file, "source", table.source, &in);
  WriteAttribute(file, "schema_version", kSchemaVersion, &in);
  WriteAttribute(file, "image_size", image_size, &in);
  WriteAttribute(file, "num_samples", n, &in);
  H5Fclose(file);

  // The shard alone: an accepted one hands out its own bytes at its offset.
  ShardHeader header;
  ShardColumns columns;
  try {
    columns = ReadShardFile(shard, /*with_jpeg=*/true, &header);
  } catch (const Error&) {
    return 0;
  }
  if (columns.jpeg.size() != static_cast<size_t>(header.jpeg_bytes)) fuzz::Broken("jpeg size");
  if (header.jpeg_bytes > 0) {
    std::vector<uint8_t> direct(columns.jpeg.size());
    const int fd = ::open(shard.c_str(), O_RDONLY);
    const ssize_t got = ::pread(fd, direct.data(), direct.size(), header.jpeg_file_offset);
    ::close(fd);
    if (got != static_cast<ssize_t>(direct.size()) || direct != columns.jpeg)
      fuzz::Broken("the bytes at the jpeg dataset's offset are not the dataset's");
  }

  // The store around it: a manifest that matches the shard as read.
  Manifest manifest;
  manifest.schema_version = kSchemaVersion;
  manifest.image_size = image_size;
  manifest.jpeg_quality = 90;
  for (int d = 0; d < domains; ++d) manifest.domains.push_back({"d" + std::to_string(d), {}});
  for (int64_t i = 0; i < columns.size(); ++i) {
    const int d = columns.table.domain[i];
    if (d >= 0 && d < domains) ++manifest.domains[d].counts.counts[columns.table.split[i]][columns.table.label[i]];
  }
  manifest.shards.push_back({"shard-00000.h5", columns.size(), FileSize(shard), FileCrc32c(shard)});
  WriteFileAtomic(dir + "/manifest.json", ManifestToJson(manifest));
  try {
    const auto store = Store::Open(dir);
    std::vector<uint8_t> bytes;
    RgbImage image;
    for (int64_t i = 0; i < store->size(); ++i) {
      try {
        store->DecodeSample(i, &bytes, &image);
      } catch (const Error&) {
        continue;
      }
      if (image.width != image_size || image.height != image_size) fuzz::Broken("decoded at another size");
    }
    store->Verify(/*deep=*/true);
  } catch (const Error&) {
  }
  return 0;
}
