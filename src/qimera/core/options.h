// Options described once. A component's options struct lists each option a single time (name, help,
// whether it may change when a run resumes) through describe(OptionVisitor&); the visitors here turn
// that one list into JSON configurations, preset patches, command-line values and the comparison a
// resumed run makes with the run it continues. The command line's flag is "--" + name with '_'
// turned into '-' ("lr_q" -> --lr-q).
//
// Example:
//   struct Student { double lr_q = 1e-4;
//     void describe(OptionVisitor& v) { v.option({"lr_q", "Q's learning rate"}, lr_q); } };
//   Student s; apply_json(s, {{"lr_q", 1e-3}}, "preset fast"); options_to_json(s) == {"lr_q": 0.001}
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace qimera {

struct OptionInfo {
  std::string_view name;  // JSON key; the flag is --name with '_' -> '-'
  std::string_view help;
  bool resumable = false;  // may differ from the saved run when resuming (epochs, logging, ...)
};

/// A value the owner formats and parses itself (enums, schedules, layer overrides).
struct TextValue {
  std::function<std::string()> get;
  std::function<void(const std::string&)> set;  // throws qimera::Error on a bad value
};

/// A list the owner formats and parses itself (repeatable flags such as --layer).
struct TextListValue {
  std::function<std::vector<std::string>()> get;
  std::function<void(const std::vector<std::string>&)> set;
};

class OptionVisitor {
 public:
  virtual ~OptionVisitor() = default;
  virtual void option(const OptionInfo& info, bool& value) = 0;
  virtual void option(const OptionInfo& info, int& value) = 0;
  virtual void option(const OptionInfo& info, int64_t& value) = 0;
  virtual void option(const OptionInfo& info, double& value) = 0;
  virtual void option(const OptionInfo& info, std::string& value) = 0;
  virtual void option(const OptionInfo& info, std::vector<std::string>& value) = 0;
  virtual void option(const OptionInfo& info, const TextValue& value) = 0;
  virtual void option(const OptionInfo& info, const TextListValue& value) = 0;
};

/// Anything whose options can be visited: a struct with describe(OptionVisitor&), or a lambda.
using Describe = std::function<void(OptionVisitor&)>;

template <typename T>
Describe describer(T& options) {
  return [&options](OptionVisitor& v) { options.describe(v); };
}

/// "lr_q" -> "--lr-q".
std::string flag_of(std::string_view name);

/// Every option as a flat JSON object {name: value}; TextValues as their text.
nlohmann::json options_to_json(const Describe& describe);
template <typename T>
nlohmann::json options_to_json(T& options) {
  return options_to_json(describer(options));
}

/// Sets the options named in `patch` (a flat object; others keep their values). An unknown name,
/// a value of the wrong type or out of its type's range is an Error naming `where` and the option.
void apply_json(const Describe& describe, const nlohmann::json& patch, std::string_view where);
template <typename T>
void apply_json(T& options, const nlohmann::json& patch, std::string_view where) {
  apply_json(describer(options), patch, where);
}

/// Sets one option from command-line texts: one for a scalar ("4", "1e-3", "true"), any number
/// for a list (each an item).
void set_from_text(const Describe& describe, std::string_view name,
                   const std::vector<std::string>& texts);

/// The names of every option, in description order.
std::vector<std::string> option_names(const Describe& describe);

/// One option's description and current value as text (for help and listings).
struct OptionListing {
  std::string name, help, value;
  std::string type;  // BOOL, INT, NUMBER, TEXT or LIST, for help texts
  bool is_bool = false, is_list = false, resumable = false;
};
std::vector<OptionListing> list_options(const Describe& describe);

/// An option whose value differs between a saved configuration and the current one.
struct OptionDifference {
  std::string name;
  nlohmann::json saved, now;
  bool resumable = false;
};

/// Compares two flat option objects made by options_to_json of the same description; names
/// missing on one side count as differences.
std::vector<OptionDifference> diff_options(const Describe& describe, const nlohmann::json& saved,
                                           const nlohmann::json& now);

/// "wbits: 4 (saved) -> 2 (now); ..." for an error message.
std::string describe_differences(const std::vector<OptionDifference>& differences);

}  // namespace qimera
