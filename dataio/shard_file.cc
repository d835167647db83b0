#include "dataio/shard_file.h"

#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <type_traits>

#include "dataio/base/check.h"
#include "dataio/schema.h"

namespace instructflip {
namespace {

// HDF5 calls return a negative value on failure.
#define IF_H5(expr, ...)                                          \
  ([&]() {                                                        \
    auto h5_result = (expr);                                      \
    IF_REQUIRE(h5_result >= 0, "HDF5: ", __VA_ARGS__);            \
    return h5_result;                                             \
  }())

// Debian's HDF5 is built without thread safety; serialise every HDF5 call.
std::mutex& Hdf5Mutex() {
  static std::mutex mutex;
  return mutex;
}

void SilenceHdf5ErrorStack() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

// Closes an HDF5 identifier on scope exit.
struct H5Id {
  hid_t id;
  herr_t (*close)(hid_t);
  ~H5Id() {
    if (id >= 0) close(id);
  }
};

template <typename T>
hid_t FileType();
template <> hid_t FileType<uint8_t>() { return H5T_STD_U8LE; }
template <> hid_t FileType<int8_t>() { return H5T_STD_I8LE; }
template <> hid_t FileType<int32_t>() { return H5T_STD_I32LE; }
template <> hid_t FileType<int64_t>() { return H5T_STD_I64LE; }
template <> hid_t FileType<uint32_t>() { return H5T_STD_U32LE; }
template <typename T>
hid_t MemType();
template <> hid_t MemType<uint8_t>() { return H5T_NATIVE_UINT8; }
template <> hid_t MemType<int8_t>() { return H5T_NATIVE_INT8; }
template <> hid_t MemType<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t MemType<int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t MemType<uint32_t>() { return H5T_NATIVE_UINT32; }

template <typename T>
void WriteColumn(hid_t file, const char* name, const std::vector<T>& values, const std::string& path) {
  const hsize_t dims[1] = {values.size()};
  H5Id space{IF_H5(H5Screate_simple(1, dims, nullptr), path, ": dataspace for ", name), H5Sclose};
  // Contiguous layout with early allocation: the bytes sit at one file offset,
  // which is what lets readers pread() JPEG bytes without HDF5.
  H5Id plist{IF_H5(H5Pcreate(H5P_DATASET_CREATE), path, ": plist"), H5Pclose};
  IF_H5(H5Pset_layout(plist.id, H5D_CONTIGUOUS), path, ": layout");
  IF_H5(H5Pset_alloc_time(plist.id, H5D_ALLOC_TIME_EARLY), path, ": alloc time");
  IF_H5(H5Pset_obj_track_times(plist.id, false), path, ": track times");
  H5Id dataset{IF_H5(H5Dcreate2(file, name, FileType<T>(), space.id, H5P_DEFAULT, plist.id,
                                H5P_DEFAULT),
                     path, ": create dataset ", name),
               H5Dclose};
  if (!values.empty())
    IF_H5(H5Dwrite(dataset.id, MemType<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), path,
          ": write dataset ", name);
}

void WriteStrings(hid_t file, const char* name, const std::vector<std::string>& values,
                  const std::string& path) {
  size_t width = 1;
  for (const std::string& s : values) width = std::max(width, s.size());
  std::vector<char> flat(values.size() * width, '\0');
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(&flat[i * width], values[i].data(), values[i].size());
  H5Id type{IF_H5(H5Tcopy(H5T_C_S1), path, ": string type"), H5Tclose};
  IF_H5(H5Tset_size(type.id, width), path, ": string size");
  IF_H5(H5Tset_strpad(type.id, H5T_STR_NULLPAD), path, ": string pad");
  const hsize_t dims[1] = {values.size()};
  H5Id space{IF_H5(H5Screate_simple(1, dims, nullptr), path, ": dataspace for ", name), H5Sclose};
  H5Id plist{IF_H5(H5Pcreate(H5P_DATASET_CREATE), path, ": plist"), H5Pclose};
  IF_H5(H5Pset_obj_track_times(plist.id, false), path, ": track times");
  H5Id dataset{IF_H5(H5Dcreate2(file, name, type.id, space.id, H5P_DEFAULT, plist.id, H5P_DEFAULT),
                     path, ": create dataset ", name),
               H5Dclose};
  if (!values.empty())
    IF_H5(H5Dwrite(dataset.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, flat.data()), path,
          ": write dataset ", name);
}

void WriteIntAttribute(hid_t object, const char* name, int64_t value, const std::string& path) {
  H5Id space{IF_H5(H5Screate(H5S_SCALAR), path, ": scalar space"), H5Sclose};
  H5Id attribute{IF_H5(H5Acreate2(object, name, H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT),
                       path, ": create attribute ", name),
                 H5Aclose};
  IF_H5(H5Awrite(attribute.id, H5T_NATIVE_INT64, &value), path, ": write attribute ", name);
}

int64_t ReadIntAttribute(hid_t object, const char* name, const std::string& path) {
  IF_REQUIRE(H5Aexists(object, name) > 0, path, ": missing attribute '", name, "'");
  H5Id attribute{IF_H5(H5Aopen(object, name, H5P_DEFAULT), path, ": open attribute ", name), H5Aclose};
  int64_t value = 0;
  IF_H5(H5Aread(attribute.id, H5T_NATIVE_INT64, &value), path, ": read attribute ", name);
  return value;
}

// Opens dataset `name`, checks it is 1-D with `expected` elements (or any when < 0).
hid_t OpenColumn(hid_t file, const char* name, int64_t expected, const std::string& path,
                 int64_t* length) {
  IF_REQUIRE(H5Lexists(file, name, H5P_DEFAULT) > 0, path, ": missing dataset '", name, "'");
  hid_t dataset = IF_H5(H5Dopen2(file, name, H5P_DEFAULT), path, ": open dataset ", name);
  H5Id space{H5Dget_space(dataset), H5Sclose};
  hsize_t dims[1] = {0};
  if (space.id < 0 || H5Sget_simple_extent_ndims(space.id) != 1) {
    H5Dclose(dataset);
    IF_FAIL(path, ": dataset '", name, "' must be one-dimensional");
  }
  H5Sget_simple_extent_dims(space.id, dims, nullptr);
  if (expected >= 0 && static_cast<int64_t>(dims[0]) != expected) {
    H5Dclose(dataset);
    IF_FAIL(path, ": dataset '", name, "' has ", dims[0], " elements, expected ", expected);
  }
  *length = static_cast<int64_t>(dims[0]);
  return dataset;
}

// The dataset's element type must be T's: HDF5 would otherwise convert on read
// (a float label truncated, a 2-byte `jpeg` narrowed), and `jpeg` is read with
// pread(2) as raw bytes, so its elements must be single bytes.
template <typename T>
void RequireElementType(hid_t dataset, const char* name, const std::string& path) {
  H5Id type{H5Dget_type(dataset), H5Tclose};
  const bool is_signed = type.id >= 0 && H5Tget_sign(type.id) == H5T_SGN_2;
  IF_REQUIRE(type.id >= 0 && H5Tget_class(type.id) == H5T_INTEGER && H5Tget_size(type.id) == sizeof(T) &&
                 is_signed == std::is_signed<T>::value,
             path, ": dataset '", name, "' must hold ", std::is_signed<T>::value ? "signed" : "unsigned", " ",
             8 * sizeof(T), "-bit integers");
}

template <typename T>
void ReadColumn(hid_t file, const char* name, int64_t expected, const std::string& path,
                std::vector<T>* out) {
  int64_t length = 0;
  H5Id dataset{OpenColumn(file, name, expected, path, &length), H5Dclose};
  RequireElementType<T>(dataset.id, name, path);
  out->resize(static_cast<size_t>(length));
  if (length > 0)
    IF_H5(H5Dread(dataset.id, MemType<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data()), path,
          ": read dataset '", name, "'");
}

void ReadStrings(hid_t file, const char* name, int64_t expected, const std::string& path,
                 std::vector<std::string>* out) {
  int64_t length = 0;
  H5Id dataset{OpenColumn(file, name, expected, path, &length), H5Dclose};
  H5Id type{H5Dget_type(dataset.id), H5Tclose};
  IF_REQUIRE(type.id >= 0 && H5Tget_class(type.id) == H5T_STRING && !H5Tis_variable_str(type.id),
             path, ": dataset '", name, "' must hold fixed-length strings");
  const size_t width = H5Tget_size(type.id);
  std::vector<char> flat(static_cast<size_t>(length) * width);
  if (length > 0)
    IF_H5(H5Dread(dataset.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, flat.data()), path,
          ": read dataset '", name, "'");
  out->resize(static_cast<size_t>(length));
  for (int64_t i = 0; i < length; ++i) {
    const char* begin = &flat[static_cast<size_t>(i) * width];
    (*out)[i].assign(begin, strnlen(begin, width));
  }
}

template <typename T>
void CheckRange(const std::vector<T>& values, int lo, int hi, const char* name,
                const std::string& path) {
  for (size_t i = 0; i < values.size(); ++i)
    IF_REQUIRE(values[i] >= lo && values[i] <= hi, path, ": sample ", i, ": field '", name,
               "' = ", int64_t(values[i]), " outside ", lo, "..", hi);
}

}  // namespace

void SampleTable::Append(const SampleTable& o) {
  auto cat = [](auto& a, const auto& b) { a.insert(a.end(), b.begin(), b.end()); };
  cat(label, o.label);
  cat(spoof_type, o.spoof_type);
  cat(illumination, o.illumination);
  cat(environment, o.environment);
  cat(camera_quality, o.camera_quality);
  cat(split, o.split);
  cat(domain, o.domain);
  cat(video_id, o.video_id);
  cat(subject_id, o.subject_id);
  cat(crc32c, o.crc32c);
  cat(source, o.source);
}

void SampleTable::Push(int d, const SampleAttributes& a, uint32_t crc) {
  label.push_back(a.label);
  spoof_type.push_back(a.spoof_type);
  illumination.push_back(a.illumination);
  environment.push_back(a.environment);
  camera_quality.push_back(a.camera_quality);
  split.push_back(static_cast<int8_t>(a.split));
  domain.push_back(d);
  video_id.push_back(a.video_id);
  subject_id.push_back(a.subject_id);
  crc32c.push_back(crc);
  source.push_back(a.source);
}

SampleAttributes SampleTable::Attributes(int64_t i) const {
  SampleAttributes a;
  a.label = label[i];
  a.spoof_type = spoof_type[i];
  a.illumination = illumination[i];
  a.environment = environment[i];
  a.camera_quality = camera_quality[i];
  a.split = static_cast<Split>(split[i]);
  a.video_id = video_id[i];
  a.subject_id = subject_id[i];
  a.source = source[i];
  return a;
}

void WriteShardFile(const std::string& path, const ShardColumns& c, int image_size,
                    const std::vector<std::string>& domain_names) {
  std::lock_guard<std::mutex> lock(Hdf5Mutex());
  SilenceHdf5ErrorStack();
  const int64_t n = c.size();
  IF_CHECK(static_cast<int64_t>(c.offsets.size()) == n + 1);
  IF_CHECK(c.offsets.back() == static_cast<int64_t>(c.jpeg.size()));
  // No object timestamps: the same samples must give a byte-identical shard.
  H5Id create{IF_H5(H5Pcreate(H5P_FILE_CREATE), path, ": plist"), H5Pclose};
  IF_H5(H5Pset_obj_track_times(create.id, false), path, ": track times");
  H5Id file{IF_H5(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, create.id, H5P_DEFAULT), "create ", path),
            H5Fclose};
  WriteColumn(file.id, "jpeg", c.jpeg, path);
  WriteColumn(file.id, "offsets", c.offsets, path);
  WriteColumn(file.id, "label", c.table.label, path);
  WriteColumn(file.id, "spoof_type", c.table.spoof_type, path);
  WriteColumn(file.id, "illumination", c.table.illumination, path);
  WriteColumn(file.id, "environment", c.table.environment, path);
  WriteColumn(file.id, "camera_quality", c.table.camera_quality, path);
  WriteColumn(file.id, "split", c.table.split, path);
  WriteColumn(file.id, "domain", c.table.domain, path);
  WriteColumn(file.id, "video_id", c.table.video_id, path);
  WriteColumn(file.id, "subject_id", c.table.subject_id, path);
  WriteColumn(file.id, "crc32c", c.table.crc32c, path);
  WriteStrings(file.id, "source", c.table.source, path);
  WriteStrings(file.id, "domain_names", domain_names, path);
  WriteIntAttribute(file.id, "schema_version", kSchemaVersion, path);
  WriteIntAttribute(file.id, "image_size", image_size, path);
  WriteIntAttribute(file.id, "num_samples", n, path);
  IF_H5(H5Fflush(file.id, H5F_SCOPE_GLOBAL), "flush ", path);
}

ShardColumns ReadShardFile(const std::string& path, bool with_jpeg, ShardHeader* header) {
  std::lock_guard<std::mutex> lock(Hdf5Mutex());
  SilenceHdf5ErrorStack();
  IF_REQUIRE(H5Fis_hdf5(path.c_str()) > 0, path, ": not an HDF5 file (or unreadable)");
  H5Id file{IF_H5(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "open ", path), H5Fclose};
  header->schema_version = static_cast<int>(ReadIntAttribute(file.id, "schema_version", path));
  IF_REQUIRE(header->schema_version == kSchemaVersion, path, ": schema_version ",
             header->schema_version, ", this build reads ", kSchemaVersion);
  header->image_size = static_cast<int>(ReadIntAttribute(file.id, "image_size", path));

  ShardColumns c;
  ReadColumn(file.id, "label", -1, path, &c.table.label);
  const int64_t n = c.size();
  ReadColumn(file.id, "offsets", n + 1, path, &c.offsets);
  ReadColumn(file.id, "spoof_type", n, path, &c.table.spoof_type);
  ReadColumn(file.id, "illumination", n, path, &c.table.illumination);
  ReadColumn(file.id, "environment", n, path, &c.table.environment);
  ReadColumn(file.id, "camera_quality", n, path, &c.table.camera_quality);
  ReadColumn(file.id, "split", n, path, &c.table.split);
  ReadColumn(file.id, "domain", n, path, &c.table.domain);
  ReadColumn(file.id, "video_id", n, path, &c.table.video_id);
  ReadColumn(file.id, "subject_id", n, path, &c.table.subject_id);
  ReadColumn(file.id, "crc32c", n, path, &c.table.crc32c);
  ReadStrings(file.id, "source", n, path, &c.table.source);

  int64_t jpeg_bytes = 0;
  {
    H5Id jpeg{OpenColumn(file.id, "jpeg", -1, path, &jpeg_bytes), H5Dclose};
    RequireElementType<uint8_t>(jpeg.id, "jpeg", path);
    header->jpeg_bytes = jpeg_bytes;
    const haddr_t offset = H5Dget_offset(jpeg.id);
    IF_REQUIRE(jpeg_bytes == 0 || offset != HADDR_UNDEF, path,
               ": dataset 'jpeg' is not contiguous (chunked/compressed shards are not supported)");
    header->jpeg_file_offset = jpeg_bytes == 0 ? 0 : static_cast<int64_t>(offset);
    if (with_jpeg) {
      c.jpeg.resize(static_cast<size_t>(jpeg_bytes));
      if (jpeg_bytes > 0)
        IF_H5(H5Dread(jpeg.id, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.jpeg.data()), path,
              ": read dataset 'jpeg'");
    }
  }

  IF_REQUIRE(c.offsets.front() == 0 && c.offsets.back() == jpeg_bytes, path,
             ": dataset 'offsets' does not span dataset 'jpeg' (", c.offsets.front(), "..",
             c.offsets.back(), " vs ", jpeg_bytes, " bytes)");
  for (int64_t i = 0; i < n; ++i)
    IF_REQUIRE(c.offsets[i + 1] > c.offsets[i], path, ": sample ", i,
               ": dataset 'offsets' is not strictly increasing");
  CheckRange(c.table.label, 0, 1, "label", path);
  CheckRange(c.table.spoof_type, kUnknownSpoofType, 10, "spoof_type", path);
  CheckRange(c.table.illumination, -1, 3, "illumination", path);
  CheckRange(c.table.environment, -1, 1, "environment", path);
  CheckRange(c.table.camera_quality, -1, 2, "camera_quality", path);
  CheckRange(c.table.split, 0, 1, "split", path);
  for (int64_t i = 0; i < n; ++i)
    IF_REQUIRE((c.table.label[i] == 0) == (c.table.spoof_type[i] == 0), path, ": sample ", i,
               ": label ", int(c.table.label[i]), " contradicts spoof_type ", int(c.table.spoof_type[i]));
  return c;
}

}  // namespace instructflip
