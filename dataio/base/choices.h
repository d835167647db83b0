// A closed set of named values: the spellings of one enum as a YAML value, a
// flag or a JSON field take them. One table per enum is the one home of its
// names: read (Find, Parse), written (Name) and listed in error messages
// ("auto, cpu or cuda") and in --help ("auto|cpu|cuda"), so a new value is
// added in one place and every reader and message follows.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataio/base/check.h"

namespace instructflip {

template <typename E>
class Choices {
 public:
  struct Choice {
    const char* name;
    E value;
  };

  Choices(std::initializer_list<Choice> choices) : choices_(choices) {}

  std::optional<E> Find(std::string_view name) const {
    for (const Choice& c : choices_)
      if (name == c.name) return c.value;
    return std::nullopt;
  }

  // `what` names the setting as the user wrote it ("'device'", "--device"):
  // "<what> must be auto, cpu or cuda, got 'gpu'".
  E Parse(std::string_view name, std::string_view what) const {
    const std::optional<E> found = Find(name);
    IF_REQUIRE(found.has_value(), what, " must be ", Listed(), ", got '", name, "'");
    return *found;
  }

  const char* Name(E value) const {
    for (const Choice& c : choices_)
      if (c.value == value) return c.name;
    IF_FAIL("a value outside ", Listed(), " has no name");
  }

  // "a, b or c", in the table's order.
  std::string Listed() const { return Join(", ", " or "); }
  // "a|b|c", as --help shows a flag's values.
  std::string Alternatives() const { return Join("|", "|"); }

 private:
  std::string Join(std::string_view separator, std::string_view last) const {
    std::string out;
    for (size_t i = 0; i < choices_.size(); ++i) {
      if (i > 0) out += i + 1 == choices_.size() ? last : separator;
      out += choices_[i].name;
    }
    return out;
  }

  std::vector<Choice> choices_;
};

}  // namespace instructflip
