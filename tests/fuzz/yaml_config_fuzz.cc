// The YAML a user writes: a training config, a model config or a LODO protocol
// (launch/), chosen by the first byte; the rest is the file. Any text is
// refused with instructflip::Error or gives a configuration.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dataio/base/check.h"
#include "launch/lodo_protocol.h"
#include "launch/model_config_yaml.h"
#include "launch/train_config_yaml.h"
#include "launch/yaml_reader.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instructflip;
  if (size < 1) return 0;
  const std::string path =
      fuzz::WriteScratch("config.yaml", std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  try {
    switch (data[0] % 3) {
      case 0:
        launch::LoadTrainConfig(path, {});
        break;
      case 1:
        launch::LoadModelConfig(path);
        break;
      default:
        launch::ParseProtocol(launch::LoadYamlFile(path), path);
        break;
    }
  } catch (const Error&) {
  }
  return 0;
}
