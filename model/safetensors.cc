// safetensors reader and writer.
//
// Why here: the pretrained CLIP and FLAN-T5 weights come as Hugging Face
// .safetensors files, no Debian package reads them from C++, and the format
// is small enough (length prefix + JSON header + raw bytes) to own.
//
// Reading: Open() mmaps the file read-only, so a multi-GB checkpoint costs no
// read up front and Get() copies only the tensors asked for; the copy gives
// the caller a tensor that outlives the mapping. FromBuffer() runs the same
// validation on caller memory (the fuzz target's entry point). A mapped file
// that another process truncates would fault on access; checkpoints here are
// replaced by rename, never truncated in place, so a reader keeps its inode.
//
// Validation runs completely before Open()/FromBuffer() return, cheapest
// first, and every check bounds what the next step may touch or allocate:
//   1. at least 8 bytes; header length <= 100 MB (Hugging Face's own limit)
//      and <= bytes after the prefix;
//   2. the header parses as JSON, with nesting depth capped (the format needs
//      3 levels; the cap stops hostile nesting at its first bytes instead of
//      building it) and duplicate keys rejected (nlohmann silently keeps the
//      last one, which would hide a conflicting entry);
//   3. the root is an object; "__metadata__" maps strings to strings;
//   4. per tensor: entry is an object, dtype known, shape non-negative ints
//      whose element count (and every stride) fits in int64, data_offsets two
//      unsigned ints with begin <= end <= data buffer size, and end - begin
//      equal to numel * itemsize;
//   5. no two tensors' byte ranges overlap (sorted by begin).
// Gaps between ranges and trailing bytes are accepted: they cannot make a read
// go out of bounds, and no writer we read from produces them.
//
// Writing streams header then tensors into a temp file (one CPU copy of one
// tensor at a time, never the whole checkpoint in memory), fsyncs, and renames
// over the target, the same pattern as WriteFileAtomic.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"

namespace instructflip {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors stores little-endian bytes; this code copies them verbatim");

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Root object -> tensor entry -> shape/data_offsets array. One spare level so
// that a too-deep header is reported by the field checks when it is only
// slightly off, and by this cap when it is hostile.
constexpr int kMaxJsonDepth = 4;
constexpr char kMetadataKey[] = "__metadata__";

struct Dtype {
  const char* name;
  torch::ScalarType type;
  uint64_t itemsize;
};

// The safetensors dtypes that LibTorch 1.13 can hold. U16/U32/U64 and the F8
// types have no torch type there, so they are rejected as unsupported.
constexpr Dtype kDtypes[] = {
    {"BOOL", torch::kBool, 1},  {"U8", torch::kByte, 1},       {"I8", torch::kChar, 1},
    {"I16", torch::kShort, 2},  {"I32", torch::kInt, 4},       {"I64", torch::kLong, 8},
    {"F16", torch::kHalf, 2},   {"BF16", torch::kBFloat16, 2}, {"F32", torch::kFloat, 4},
    {"F64", torch::kDouble, 8},
};

const Dtype* DtypeByName(const std::string& name) {
  for (const Dtype& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const Dtype* DtypeByType(torch::ScalarType type) {
  for (const Dtype& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

uint64_t ReadLe64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Text from the file for an error message. nlohmann's parse errors quote the
// current token, which can be raw invalid UTF-8 or an unterminated string as
// long as the header, and names may hold control characters: escape non-ASCII
// and control bytes and cap the length so the message stays one short line.
std::string Printable(const std::string& text) {
  constexpr size_t kMaxChars = 300;
  std::string out;
  size_t i = 0;
  for (; i < text.size() && out.size() < kMaxChars; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    }
  }
  if (i < text.size()) out += "...";
  return out;
}

// Parses the header, rejecting nesting deeper than kMaxJsonDepth and duplicate
// keys in any object. nlohmann's callback sees every structural event, so both
// checks cost one pass with no second tree walk.
json ParseHeader(const char* begin, const char* end, const std::string& what) {
  int depth = 0;
  std::vector<std::set<std::string>> keys_per_object;
  const json::parser_callback_t callback = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        IF_REQUIRE(++depth <= kMaxJsonDepth, what, ": header JSON nests deeper than ",
                   kMaxJsonDepth, " levels");
        if (event == json::parse_event_t::object_start) keys_per_object.emplace_back();
        break;
      case json::parse_event_t::object_end:
        keys_per_object.pop_back();
        --depth;
        break;
      case json::parse_event_t::array_end:
        --depth;
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        IF_REQUIRE(keys_per_object.back().insert(key).second, what,
                   ": header has a duplicate key '", Printable(key), "'");
        break;
      }
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(begin, end, callback);
  } catch (const json::exception& e) {
    IF_FAIL(what, ": header is not valid JSON: ", Printable(e.what()));
  }
}

// "[2, 3]"; a hostile shape can have millions of dims, so at most 8 are shown.
std::string ShapeString(const std::vector<int64_t>& shape) {
  constexpr size_t kMaxDims = 8;
  std::string out = "[";
  for (size_t i = 0; i < std::min(shape.size(), kMaxDims); ++i)
    out += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() > kMaxDims) out += ", ... (" + std::to_string(shape.size()) + " dims)";
  return out + "]";
}

// True, with *out set, if `value` is an integer in [0, INT64_MAX].
bool AsNonNegativeInt64(const json& value, int64_t* out) {
  if (!value.is_number_unsigned()) return false;  // nlohmann stores x >= 0 as unsigned
  const uint64_t v = value.get<uint64_t>();
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  *out = static_cast<int64_t>(v);
  return true;
}

SafetensorsTensorInfo ParseEntry(const std::string& name, const json& entry, uint64_t buffer_size,
                                 const std::string& what) {
  const std::string where = what + ": tensor '" + Printable(name) + "'";
  IF_REQUIRE(entry.is_object(), where, ": entry must be an object");
  SafetensorsTensorInfo info;
  info.name = name;

  // Unknown fields are ignored, as Hugging Face's reader does, so files from a
  // newer writer still load.
  const auto dtype_it = entry.find("dtype");
  IF_REQUIRE(dtype_it != entry.end() && dtype_it->is_string(), where,
             ": missing or non-string dtype");
  info.dtype = dtype_it->get<std::string>();
  const Dtype* dtype = DtypeByName(info.dtype);
  IF_REQUIRE(dtype != nullptr, where, ": unknown or unsupported dtype '", Printable(info.dtype),
             "'");

  const auto shape_it = entry.find("shape");
  IF_REQUIRE(shape_it != entry.end() && shape_it->is_array(), where,
             ": shape must be an array of non-negative integers");
  // numel is the product of the dims; `strided` is the product of the
  // non-zero dims, which bounds every contiguous stride. Requiring `strided`
  // to fit in int64 keeps a zero-size tensor like [0, 2^40, 2^40] from
  // reaching LibTorch with unrepresentable strides.
  uint64_t numel = 1, strided = 1;
  for (const json& dim_json : *shape_it) {
    int64_t dim = 0;
    IF_REQUIRE(AsNonNegativeInt64(dim_json, &dim), where,
               ": shape must be an array of non-negative integers");
    info.shape.push_back(dim);
    const uint64_t d = static_cast<uint64_t>(dim);
    IF_REQUIRE(!__builtin_mul_overflow(strided, std::max<uint64_t>(d, 1), &strided) &&
                   strided <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
               where, ": element count of shape overflows int64");
    numel *= d;  // cannot overflow: numel <= strided
  }
  uint64_t nbytes = 0;
  IF_REQUIRE(!__builtin_mul_overflow(numel, dtype->itemsize, &nbytes), where,
             ": byte size of shape ", ShapeString(info.shape), " overflows");

  const auto offsets_it = entry.find("data_offsets");
  IF_REQUIRE(offsets_it != entry.end() && offsets_it->is_array() && offsets_it->size() == 2 &&
                 (*offsets_it)[0].is_number_unsigned() && (*offsets_it)[1].is_number_unsigned(),
             where, ": data_offsets must be two non-negative integers");
  info.begin = (*offsets_it)[0].get<uint64_t>();
  info.end = (*offsets_it)[1].get<uint64_t>();
  IF_REQUIRE(info.begin <= info.end, where, ": data_offsets begin ", info.begin, " > end ",
             info.end);
  IF_REQUIRE(info.end <= buffer_size, where, ": data_offsets end ", info.end,
             " is past the end of the data buffer (", buffer_size, " bytes)");
  IF_REQUIRE(info.end - info.begin == nbytes, where, ": data_offsets span ", info.end - info.begin,
             " bytes but ", info.dtype, " shape ", ShapeString(info.shape), " needs ", nbytes,
             " bytes");
  return info;
}

// Owns a file descriptor until scope exit, so an exception never leaks it.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void WriteAll(int fd, const void* data, size_t size, const std::string& file) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    IF_SYSCALL(n, "write ", file);
    p += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

SafetensorsFile::SafetensorsFile(const uint8_t* data, size_t size, bool mapped, std::string what)
    : data_(data), size_(size), mapped_(mapped), what_(std::move(what)) {}

SafetensorsFile::~SafetensorsFile() {
  if (mapped_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  IF_SYSCALL(fd, "open ", path);
  Fd closer{fd};
  struct stat st;
  IF_SYSCALL(::fstat(fd, &st), "stat ", path);
  const size_t size = static_cast<size_t>(st.st_size);
  // mmap rejects length 0, so the short-file error must come before it.
  IF_REQUIRE(size >= 8, path, ": file is shorter than 8 bytes (", size,
             " bytes): not a safetensors file");
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  IF_REQUIRE(map != MAP_FAILED, "mmap ", path, ": ", std::strerror(errno));
  // Owned (and unmapped on a validation error) from here on.
  std::unique_ptr<SafetensorsFile> file(
      new SafetensorsFile(static_cast<const uint8_t*>(map), size, /*mapped=*/true, path));
  file->Parse();
  return file;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::FromBuffer(const uint8_t* data, size_t size,
                                                             const std::string& what) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(data, size, /*mapped=*/false, what));
  file->Parse();
  return file;
}

void SafetensorsFile::Parse() {
  IF_REQUIRE(size_ >= 8, what_, ": file is shorter than 8 bytes (", size_,
             " bytes): not a safetensors file");
  const uint64_t header_size = ReadLe64(data_);
  // Any other file fails here first: its first 8 bytes read as a huge length.
  IF_REQUIRE(header_size <= kMaxHeaderBytes, what_, ": not a safetensors file (its length prefix gives a header of ",
             header_size, " bytes, over the ", kMaxHeaderBytes, "-byte limit)");
  IF_REQUIRE(header_size <= size_ - 8, what_, ": not a safetensors file, or a truncated one (its header of ",
             header_size, " bytes is larger than the ", size_ - 8, " bytes after the length prefix)");
  data_start_ = 8 + header_size;
  const uint64_t buffer_size = size_ - data_start_;

  const char* header = reinterpret_cast<const char*>(data_ + 8);
  const json root = ParseHeader(header, header + header_size, what_);
  IF_REQUIRE(root.is_object(), what_, ": header must be a JSON object, got ", root.type_name());

  for (const auto& [key, value] : root.items()) {
    if (key == kMetadataKey) {
      IF_REQUIRE(value.is_object(), what_, ": ", kMetadataKey,
                 " must be an object mapping strings to strings");
      for (const auto& [meta_key, meta_value] : value.items()) {
        IF_REQUIRE(meta_value.is_string(), what_, ": ", kMetadataKey, " value for '",
                   Printable(meta_key), "' must be a string, got ", meta_value.type_name());
        metadata_[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    tensors_.push_back(ParseEntry(key, value, buffer_size, what_));
  }

  // Ranges sorted by begin overlap iff one starts before its predecessor ends.
  // Empty ranges hold no bytes and cannot overlap anything.
  std::vector<const SafetensorsTensorInfo*> by_begin;
  for (const SafetensorsTensorInfo& info : tensors_)
    if (info.begin < info.end) by_begin.push_back(&info);
  std::sort(by_begin.begin(), by_begin.end(),
            [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_begin.size(); ++i)
    IF_REQUIRE(by_begin[i - 1]->end <= by_begin[i]->begin, what_, ": tensors '",
               Printable(by_begin[i - 1]->name), "' and '", Printable(by_begin[i]->name),
               "' overlap in the data buffer");

  // nlohmann's object is a std::map, so root.items() came in name order,
  // which tensors() promises and Find()'s binary search needs.
  IF_CHECK(std::is_sorted(tensors_.begin(), tensors_.end(),
                          [](const auto& a, const auto& b) { return a.name < b.name; }));
}

const SafetensorsTensorInfo* SafetensorsFile::Find(const std::string& name) const {
  const auto it =
      std::lower_bound(tensors_.begin(), tensors_.end(), name,
                       [](const auto& info, const std::string& n) { return info.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

torch::Tensor SafetensorsFile::Get(const std::string& name) const {
  const SafetensorsTensorInfo* info = Find(name);
  IF_REQUIRE(info != nullptr, what_, ": no tensor named '", name, "'");
  const Dtype* dtype = DtypeByName(info->dtype);
  IF_CHECK(dtype != nullptr);  // Parse() accepted only known dtypes
  const uint8_t* src = data_ + data_start_ + info->begin;
  const size_t nbytes = info->end - info->begin;
  // A torch bool must be 0 or 1; any other byte would be undefined behaviour
  // in later arithmetic, so it is bad input here.
  if (dtype->type == torch::kBool)
    for (size_t i = 0; i < nbytes; ++i)
      IF_REQUIRE(src[i] <= 1, what_, ": BOOL tensor '", name, "' holds byte value ",
                 static_cast<int>(src[i]), " at element ", i);
  torch::Tensor out = torch::empty(info->shape, torch::TensorOptions().dtype(dtype->type));
  if (nbytes > 0) std::memcpy(out.data_ptr(), src, nbytes);  // data_ptr() may be null if empty
  return out;
}

void SaveSafetensors(const std::string& path,
                     const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                     const std::map<std::string, std::string>& metadata) {
  // 1. Validate names and dtypes and sort by name, before touching the disk.
  std::vector<const std::pair<std::string, torch::Tensor>*> sorted;
  for (const auto& entry : tensors) {
    IF_REQUIRE(entry.first != kMetadataKey, path, ": '", kMetadataKey,
               "' is reserved and cannot name a tensor");
    IF_REQUIRE(entry.second.defined(), path, ": tensor '", entry.first, "' is undefined");
    IF_REQUIRE(DtypeByType(entry.second.scalar_type()) != nullptr, path, ": tensor '", entry.first,
               "' has dtype ", entry.second.scalar_type(), ", which safetensors cannot store here");
    sorted.push_back(&entry);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  for (size_t i = 1; i < sorted.size(); ++i)
    IF_REQUIRE(sorted[i - 1]->first != sorted[i]->first, path, ": duplicate tensor name '",
               sorted[i]->first, "'");

  // 2. Header: ordered_json keeps Hugging Face's field order (metadata first,
  //    then dtype, shape, data_offsets), which readers ignore but humans see.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  uint64_t offset = 0;
  for (const auto* entry : sorted) {
    const torch::Tensor& t = entry->second;
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[entry->first] = {{"dtype", DtypeByType(t.scalar_type())->name},
                            {"shape", t.sizes().vec()},
                            {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // invalid UTF-8 in a name or metadata
    IF_FAIL(path, ": cannot encode the header: ", e.what());
  }
  // Pad so that the data buffer starts 8-byte aligned, as Hugging Face does.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const uint64_t header_size = header_text.size();

  // 3. Stream into a temp file, fsync, rename over `path`.
  const std::string temp = path + ".tmp-" + std::to_string(::getpid());
  try {
    {
      const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      IF_SYSCALL(fd, "create ", temp);
      Fd closer{fd};
      WriteAll(fd, &header_size, sizeof(header_size), temp);
      WriteAll(fd, header_text.data(), header_text.size(), temp);
      for (const auto* entry : sorted) {
        const torch::Tensor cpu = entry->second.detach().to(torch::kCPU).contiguous();
        WriteAll(fd, cpu.data_ptr(), static_cast<size_t>(cpu.numel()) * cpu.element_size(), temp);
      }
      IF_SYSCALL(::fsync(fd), "fsync ", temp);
    }
    RenameDurable(temp, path);
  } catch (...) {
    ::unlink(temp.c_str());  // best effort: the error being thrown is the one that matters
    throw;
  }
}

}  // namespace instructflip
