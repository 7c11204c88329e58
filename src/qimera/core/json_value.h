// JSON values from files the user gave: parsing with bounded nesting, typed reading with messages
// that name the file and the field, and short excerpts of values for error messages.
//
// nlohmann's dump(), copies and comparisons recurse once per nesting level, so a 200 KB file of
// nested brackets overflows the stack in any of them. parse_json refuses such nesting up front and
// json_excerpt never recurses: together they make error messages about hostile files safe.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qimera {

/// Deeper nesting than any file of this project needs (model cards reach 3, manifests 4).
inline constexpr size_t kMaxJsonDepth = 64;

/// Throws qimera::Error naming `source` when brackets in `text` nest deeper than `max_depth`.
/// Linear and allocation-free, so it can run before any parser.
void check_json_depth(std::string_view text, const std::string& source,
                      size_t max_depth = kMaxJsonDepth);

/// Parses `text`; syntax errors and excessive nesting name `source` and the byte offset.
nlohmann::json parse_json(std::string_view text, const std::string& source);

/// At most about `max_chars` characters of `value` as JSON, cut with "..." (iterative: any depth
/// and size cost only what is printed). Example: json_excerpt(j) == "[[[[[[[[[[[[[[..."
std::string json_excerpt(const nlohmann::json& value, size_t max_chars = 60);
std::string json_excerpt(const nlohmann::ordered_json& value, size_t max_chars = 60);

/// Typed reading of one value. `what` names it for the message, e.g. "model.json: model.num_classes".
/// Integers must be whole numbers in [min, max] (so 2^63 is "too large", not negative).
int64_t json_integer(const nlohmann::json& value, const std::string& what, int64_t min,
                     int64_t max);
/// Finite numbers only.
double json_number(const nlohmann::json& value, const std::string& what);
bool json_bool(const nlohmann::json& value, const std::string& what);
std::string json_string(const nlohmann::json& value, const std::string& what);

/// `object[key]`, which must exist; `what` names the object.
const nlohmann::json& json_field(const nlohmann::json& object, const char* key,
                                 const std::string& what);

}  // namespace qimera
