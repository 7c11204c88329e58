#include "qimera/core/json_value.h"

#include "qimera/core/error.h"

#include <cmath>
#include <vector>

namespace qimera {

void check_json_depth(std::string_view text, const std::string& source, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        fail("{}: JSON nested more than {} levels deep (at byte {}); not a file this program wrote",
             source, max_depth, i);
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

nlohmann::json parse_json(std::string_view text, const std::string& source) {
  check_json_depth(text, source);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e999
    fail("{}: not valid JSON ({})", source, e.what());
  }
}

namespace {

template <typename Json>
std::string scalar_text(const Json& value, size_t budget) {
  if (value.is_string()) {
    const auto& text = value.template get_ref<const std::string&>();
    // dump() adds quotes and escapes; a cut inside a UTF-8 sequence becomes U+FFFD.
    return Json(text.substr(0, budget + 1)).dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  return value.dump();
}

template <typename Json>
std::string excerpt(const Json& value, size_t max_chars) {
  struct Frame {
    const Json* container;
    typename Json::const_iterator next;
  };
  std::string out;
  std::vector<Frame> stack;
  const Json* current = &value;
  while (out.size() <= max_chars) {
    if (current != nullptr) {
      if (current->is_structured()) {
        out += current->is_object() ? '{' : '[';
        stack.push_back({current, current->cbegin()});
      } else {
        out += scalar_text(*current, max_chars - out.size());
      }
      current = nullptr;
      continue;
    }
    if (stack.empty()) return out;
    Frame& frame = stack.back();
    if (frame.next == frame.container->cend()) {
      out += frame.container->is_object() ? '}' : ']';
      stack.pop_back();
      continue;
    }
    if (frame.next != frame.container->cbegin()) out += ", ";
    if (frame.container->is_object()) out += Json(frame.next.key()).dump(-1, ' ', false, Json::error_handler_t::replace) + ": ";
    current = &*frame.next;
    ++frame.next;
  }
  out.resize(max_chars);
  return out + "...";
}

const char* article_type(const nlohmann::json& value) {
  if (value.is_null()) return "null";
  if (value.is_boolean()) return "a boolean";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_array()) return "a list";
  if (value.is_object()) return "an object";
  return "a binary value";
}

[[noreturn]] void wrong(const nlohmann::json& value, const std::string& what, const char* expected) {
  fail("{} is {} ({}), expected {}", what, json_excerpt(value), article_type(value), expected);
}

}  // namespace

std::string json_excerpt(const nlohmann::json& value, size_t max_chars) {
  return excerpt(value, max_chars);
}

std::string json_excerpt(const nlohmann::ordered_json& value, size_t max_chars) {
  return excerpt(value, max_chars);
}

int64_t json_integer(const nlohmann::json& value, const std::string& what, int64_t min,
                     int64_t max) {
  const std::string range = fmt::format("an integer in {}..{}", min, max);
  if (value.is_number_unsigned()) {
    const auto v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(max)) wrong(value, what, range.c_str());
    return static_cast<int64_t>(v);
  }
  if (value.is_number_integer()) {
    const auto v = value.get<int64_t>();
    if (v < min || v > max) wrong(value, what, range.c_str());
    return v;
  }
  if (value.is_number_float()) {  // 32.0 is a whole number; 1e300 and 0.5 are not
    const double v = value.get<double>();
    // Converting a double outside int64's range is undefined: check against 2^63 first.
    if (std::isfinite(v) && v == std::floor(v) && v >= -0x1p63 && v < 0x1p63) {
      const auto whole = static_cast<int64_t>(v);
      if (whole >= min && whole <= max) return whole;
    }
  }
  wrong(value, what, range.c_str());
}

double json_number(const nlohmann::json& value, const std::string& what) {
  if (!value.is_number()) wrong(value, what, "a number");
  const double v = value.get<double>();
  if (!std::isfinite(v)) wrong(value, what, "a finite number");
  return v;
}

bool json_bool(const nlohmann::json& value, const std::string& what) {
  if (!value.is_boolean()) wrong(value, what, "true or false");
  return value.get<bool>();
}

std::string json_string(const nlohmann::json& value, const std::string& what) {
  if (!value.is_string()) wrong(value, what, "a string");
  return value.get<std::string>();
}

const nlohmann::json& json_field(const nlohmann::json& object, const char* key,
                                 const std::string& what) {
  if (!object.is_object()) wrong(object, what, "an object");
  const auto it = object.find(key);
  if (it == object.end()) fail("{} has no \"{}\"", what, key);
  return *it;
}

}  // namespace qimera
