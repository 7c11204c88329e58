#include "qimera/core/options.h"

#include "qimera/core/error.h"

#include <fmt/ranges.h>

#include <cmath>
#include <limits>
#include <map>

namespace qimera {
namespace {

// A JSON value in an error message without dumping a possibly huge or deeply nested value.
std::string brief(const nlohmann::json& value) {
  if (value.is_array()) return fmt::format("an array of {} items", value.size());
  if (value.is_object()) return fmt::format("an object of {} keys", value.size());
  std::string text = value.dump();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

bool parse_bool(std::string_view name, const std::string& text) {
  if (text == "true" || text == "on" || text == "yes" || text == "1") return true;
  if (text == "false" || text == "off" || text == "no" || text == "0") return false;
  fail("{} {}: expected true or false", flag_of(name), text);
}

int64_t parse_integer(std::string_view name, const std::string& text, int64_t lo, int64_t hi) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    fail("{} {}: not an integer", flag_of(name), text);
  }
  require(used == text.size(), "{} {}: not an integer", flag_of(name), text);
  require(value >= lo && value <= hi, "{} {}: out of range [{}, {}]", flag_of(name), text, lo, hi);
  return value;
}

double parse_real(std::string_view name, const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::out_of_range&) {
    fail("{} {}: out of range", flag_of(name), text);
  } catch (const std::exception&) {
    fail("{} {}: not a number", flag_of(name), text);
  }
  require(used == text.size() && std::isfinite(value), "{} {}: not a finite number", flag_of(name),
          text);
  return value;
}

// Visits one option by name and hands it to `fn` (a generic lambda over the value's type).
template <typename Fn>
class FindOne : public OptionVisitor {
 public:
  FindOne(std::string_view name, Fn fn) : name_(name), fn_(std::move(fn)) {}
  void option(const OptionInfo& i, bool& v) override { take(i, v); }
  void option(const OptionInfo& i, int& v) override { take(i, v); }
  void option(const OptionInfo& i, int64_t& v) override { take(i, v); }
  void option(const OptionInfo& i, double& v) override { take(i, v); }
  void option(const OptionInfo& i, std::string& v) override { take(i, v); }
  void option(const OptionInfo& i, std::vector<std::string>& v) override { take(i, v); }
  void option(const OptionInfo& i, const TextValue& v) override { take(i, v); }
  void option(const OptionInfo& i, const TextListValue& v) override { take(i, v); }
  bool found() const { return found_; }

 private:
  template <typename T>
  void take(const OptionInfo& info, T& value) {
    if (info.name != name_) return;
    require(!found_, "option '{}' is described twice", name_);
    found_ = true;
    fn_(info, value);
  }
  std::string_view name_;
  Fn fn_;
  bool found_ = false;
};

template <typename Fn>
void with_option(const Describe& describe, std::string_view name, std::string_view where, Fn fn) {
  FindOne<Fn> finder(name, std::move(fn));
  describe(finder);
  require(finder.found(), "{}: unknown option '{}'", where, name);
}

class ToJson : public OptionVisitor {
 public:
  nlohmann::json out = nlohmann::json::object();
  void option(const OptionInfo& i, bool& v) override { out[std::string(i.name)] = v; }
  void option(const OptionInfo& i, int& v) override { out[std::string(i.name)] = v; }
  void option(const OptionInfo& i, int64_t& v) override { out[std::string(i.name)] = v; }
  void option(const OptionInfo& i, double& v) override { out[std::string(i.name)] = v; }
  void option(const OptionInfo& i, std::string& v) override { out[std::string(i.name)] = v; }
  void option(const OptionInfo& i, std::vector<std::string>& v) override { out[std::string(i.name)] = v; }
  void option(const OptionInfo& i, const TextValue& v) override { out[std::string(i.name)] = v.get(); }
  void option(const OptionInfo& i, const TextListValue& v) override { out[std::string(i.name)] = v.get(); }
};

// Sets a value from JSON, checking its type and range.
struct FromJson {
  const nlohmann::json& value;
  std::string_view where;

  [[noreturn]] void wrong(const OptionInfo& info, const char* expected) const {
    fail("{}: option '{}' must be {}, got {}", where, info.name, expected, brief(value));
  }
  void operator()(const OptionInfo& info, bool& v) const {
    if (!value.is_boolean()) wrong(info, "true or false");
    v = value.get<bool>();
  }
  void operator()(const OptionInfo& info, int& v) const {
    if (!value.is_number_integer()) wrong(info, "an integer");
    const auto x = value.get<int64_t>();
    require(x >= std::numeric_limits<int>::min() && x <= std::numeric_limits<int>::max(),
            "{}: option '{}' = {} is out of range", where, info.name, x);
    v = static_cast<int>(x);
  }
  void operator()(const OptionInfo& info, int64_t& v) const {
    if (!value.is_number_integer() || (value.is_number_unsigned() &&
                                       value.get<uint64_t>() > uint64_t(INT64_MAX))) {
      wrong(info, "an integer");
    }
    v = value.get<int64_t>();
  }
  void operator()(const OptionInfo& info, double& v) const {
    if (!value.is_number()) wrong(info, "a number");
    v = value.get<double>();
  }
  void operator()(const OptionInfo& info, std::string& v) const {
    if (!value.is_string()) wrong(info, "a string");
    v = value.get<std::string>();
  }
  void operator()(const OptionInfo& info, std::vector<std::string>& v) const {
    if (!value.is_array()) wrong(info, "an array of strings");
    std::vector<std::string> items;
    for (const auto& item : value) {
      if (!item.is_string()) wrong(info, "an array of strings");
      items.push_back(item.get<std::string>());
    }
    v = std::move(items);
  }
  void operator()(const OptionInfo& info, const TextValue& v) const {
    if (!value.is_string()) wrong(info, "a string");
    v.set(value.get<std::string>());
  }
  void operator()(const OptionInfo& info, const TextListValue& v) const {
    std::vector<std::string> items;
    (*this)(info, items);
    v.set(items);
  }
};

// Sets a value from command-line texts (one, except for lists).
struct FromText {
  const std::vector<std::string>& texts;

  const std::string& one(const OptionInfo& info) const {
    require(texts.size() == 1, "{} takes one value, got {}", flag_of(info.name), texts.size());
    return texts.front();
  }
  void operator()(const OptionInfo& i, bool& v) const { v = parse_bool(i.name, one(i)); }
  void operator()(const OptionInfo& i, int& v) const {
    v = static_cast<int>(parse_integer(i.name, one(i), std::numeric_limits<int>::min(),
                                       std::numeric_limits<int>::max()));
  }
  void operator()(const OptionInfo& i, int64_t& v) const {
    v = parse_integer(i.name, one(i), std::numeric_limits<int64_t>::min(),
                      std::numeric_limits<int64_t>::max());
  }
  void operator()(const OptionInfo& i, double& v) const { v = parse_real(i.name, one(i)); }
  void operator()(const OptionInfo& i, std::string& v) const { v = one(i); }
  void operator()(const OptionInfo&, std::vector<std::string>& v) const { v = texts; }
  void operator()(const OptionInfo& i, const TextValue& v) const { v.set(one(i)); }
  void operator()(const OptionInfo&, const TextListValue& v) const { v.set(texts); }
};

class Lister : public OptionVisitor {
 public:
  std::vector<OptionListing> out;
  void option(const OptionInfo& i, bool& v) override { add(i, v ? "true" : "false", "BOOL").is_bool = true; }
  void option(const OptionInfo& i, int& v) override { add(i, std::to_string(v), "INT"); }
  void option(const OptionInfo& i, int64_t& v) override { add(i, std::to_string(v), "INT"); }
  void option(const OptionInfo& i, double& v) override { add(i, fmt::format("{}", v), "NUMBER"); }
  void option(const OptionInfo& i, std::string& v) override { add(i, v, "TEXT"); }
  void option(const OptionInfo& i, std::vector<std::string>& v) override {
    add(i, fmt::format("{}", fmt::join(v, " ")), "LIST").is_list = true;
  }
  void option(const OptionInfo& i, const TextValue& v) override { add(i, v.get(), "TEXT"); }
  void option(const OptionInfo& i, const TextListValue& v) override {
    add(i, fmt::format("{}", fmt::join(v.get(), " ")), "LIST").is_list = true;
  }

 private:
  OptionListing& add(const OptionInfo& i, std::string value, const char* type) {
    out.push_back({std::string(i.name), std::string(i.help), std::move(value), type, false, false,
                   i.resumable});
    return out.back();
  }
};

}  // namespace

std::string flag_of(std::string_view name) {
  std::string flag = "--";
  for (char c : name) flag += c == '_' ? '-' : c;
  return flag;
}

nlohmann::json options_to_json(const Describe& describe) {
  ToJson visitor;
  describe(visitor);
  return visitor.out;
}

void apply_json(const Describe& describe, const nlohmann::json& patch, std::string_view where) {
  require(patch.is_object(), "{}: options must be a JSON object, got {}", where, brief(patch));
  for (const auto& [name, value] : patch.items()) {
    with_option(describe, name, where, [&](const OptionInfo& info, auto& field) {
      FromJson{value, where}(info, field);
    });
  }
}

void set_from_text(const Describe& describe, std::string_view name,
                   const std::vector<std::string>& texts) {
  with_option(describe, name, "command line",
              [&](const OptionInfo& info, auto& field) { FromText{texts}(info, field); });
}

std::vector<std::string> option_names(const Describe& describe) {
  std::vector<std::string> names;
  for (const auto& l : list_options(describe)) names.push_back(l.name);
  return names;
}

std::vector<OptionListing> list_options(const Describe& describe) {
  Lister lister;
  describe(lister);
  return lister.out;
}

std::vector<OptionDifference> diff_options(const Describe& describe, const nlohmann::json& saved,
                                           const nlohmann::json& now) {
  std::map<std::string, bool> resumable;
  for (const auto& l : list_options(describe)) resumable[l.name] = l.resumable;
  std::vector<OptionDifference> out;
  auto value_of = [](const nlohmann::json& j, const std::string& name) {
    return j.is_object() && j.contains(name) ? j.at(name) : nlohmann::json();
  };
  for (const auto& name : option_names(describe)) {
    const auto a = value_of(saved, name), b = value_of(now, name);
    if (a != b) out.push_back({name, a, b, resumable[name]});
  }
  if (saved.is_object()) {
    for (const auto& [name, value] : saved.items()) {
      if (!resumable.count(name)) out.push_back({name, value, nlohmann::json(), false});
    }
  }
  return out;
}

std::string describe_differences(const std::vector<OptionDifference>& differences) {
  std::vector<std::string> parts;
  for (const auto& d : differences) {
    parts.push_back(fmt::format("{} {} (saved) vs {} (now)", flag_of(d.name),
                                d.saved.is_null() ? "unset" : brief(d.saved),
                                d.now.is_null() ? "unset" : brief(d.now)));
  }
  return fmt::format("{}", fmt::join(parts, "; "));
}

}  // namespace qimera
