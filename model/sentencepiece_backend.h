// sentencepiece behind a plugin boundary.
//
// Debian's libsentencepiece bundles its own protobuf (3.14, lite) and exports
// those symbols; LibTorch pulls in the system libprotobuf (3.21) through ONNX.
// Linked into one program, each library's protobuf calls bind to the other's
// copy and the process dies during static initialisation. So sentencepiece
// lives in a small plugin (libinstructflip_sentencepiece.so) that is dlopen'ed
// with RTLD_LOCAL | RTLD_DEEPBIND: its symbols stay out of the global scope and
// it resolves protobuf to its own copy. Only this interface crosses the
// boundary (plain std types; both sides share one libstdc++).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace instructflip {

class SentencePieceBackend {
 public:
  virtual ~SentencePieceBackend() = default;
  // Each returns "" on success, else sentencepiece's error message.
  virtual std::string Load(const std::string& model_proto) = 0;
  virtual std::string Encode(const std::string& text, std::vector<int>* ids) const = 0;
  virtual std::string Decode(const std::vector<int>& ids, std::string* text) const = 0;
  virtual int pad_id() const = 0;
  virtual int eos_id() const = 0;
  virtual int unk_id() const = 0;
  virtual int piece_size() const = 0;
  // SentencePieceTrainer::Train(args, sentences) into *model_proto; the trainer
  // is process-global state, callers serialise.
  virtual std::string Train(const std::string& args, const std::vector<std::string>& sentences,
                            unsigned int seed, std::string* model_proto) = 0;
};

// A new backend from the plugin (loaded once per process). Throws
// instructflip::Error naming the paths tried if the plugin cannot be loaded.
std::unique_ptr<SentencePieceBackend> CreateSentencePieceBackend();

}  // namespace instructflip

// The plugin's one exported symbol.
extern "C" instructflip::SentencePieceBackend* instructflip_create_sentencepiece_backend();
