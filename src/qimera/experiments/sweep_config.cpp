#include "qimera/experiments/sweep_config.h"

#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/json_value.h"

#include <algorithm>
#include <fmt/ranges.h>
#include <set>

namespace qimera::experiments {
namespace fs = std::filesystem;

const std::vector<std::string>& sweep_owned_flags() {
  static const std::vector<std::string> flags{"--out", "--seed", "--threads", "--resume"};
  return flags;
}

namespace {

// Names become folder names: letters, digits and . _ + - only, no leading dot or dash.
bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '+' ||
           c == '-';
  });
}

std::vector<std::string> read_args(const nlohmann::json& j, const std::string& what) {
  require(j.is_array(), "{} must be a list of command-line words, got {}", what, json_excerpt(j));
  std::vector<std::string> args;
  for (const auto& word : j) {
    require(word.is_string(), "{}: every entry must be a string, got {}", what, json_excerpt(word));
    const auto text = word.get<std::string>();
    for (const auto& owned : sweep_owned_flags()) {
      require(text != owned && text.rfind(owned + "=", 0) != 0,
              "{}: {} is set by the sweep for each run; remove it", what, owned);
    }
    args.push_back(text);
  }
  return args;
}

std::vector<SweepEntry> read_entries(const nlohmann::json& j, const std::string& key,
                                     const std::string& source) {
  std::vector<SweepEntry> entries;
  if (!j.contains(key)) return entries;
  const auto& list = j.at(key);
  require(list.is_array(), "{}: '{}' must be a list of {{\"name\": ..., \"args\": [...]}}", source,
          key);
  std::set<std::string> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto what = fmt::format("{}: {}[{}]", source, key, i);
    const auto& e = list[i];
    require(e.is_object() && e.contains("name") && e.at("name").is_string(),
            "{} needs a string 'name'", what);
    SweepEntry entry;
    entry.name = e.at("name").get<std::string>();
    require(valid_name(entry.name),
            "{}: name '{}' becomes a folder name: use letters, digits and . _ + - (not first)", what,
            entry.name);
    require(seen.insert(entry.name).second, "{}: name '{}' is used twice", what, entry.name);
    if (e.contains("args")) entry.args = read_args(e.at("args"), what + ".args");
    for (const auto& [k, v] : e.items()) {
      require(k == "name" || k == "args", "{}: unknown key '{}' (known: name, args)", what, k);
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace

SweepConfig parse_sweep_config(const nlohmann::json& j, const std::string& source) {
  require(j.is_object(), "{}: a sweep file is a JSON object", source);
  static const std::set<std::string> known{"title", "out", "seeds", "common", "settings", "methods"};
  for (const auto& [k, v] : j.items()) {
    require(known.count(k) > 0,
            "{}: unknown key '{}' (known: title, out, seeds, common, settings, methods)", source, k);
  }
  SweepConfig c;
  require(j.contains("out") && j.at("out").is_string() && !j.at("out").get<std::string>().empty(),
          "{}: 'out' (the sweep's output folder) must be a non-empty string", source);
  c.out = j.at("out").get<std::string>();
  c.title = j.contains("title") ? j.at("title").get<std::string>() : c.out.filename().string();
  require(j.contains("seeds") && j.at("seeds").is_array() && !j.at("seeds").empty(),
          "{}: 'seeds' must be a non-empty list of seeds, e.g. [1, 2, 3]", source);
  std::set<uint64_t> seen;
  for (const auto& s : j.at("seeds")) {
    const auto seed = static_cast<uint64_t>(json_integer(s, source + ": seeds", 0, INT64_MAX));
    require(seen.insert(seed).second, "{}: seed {} is listed twice", source, seed);
    c.seeds.push_back(seed);
  }
  if (j.contains("common")) c.common = read_args(j.at("common"), source + ": common");
  c.settings = read_entries(j, "settings", source);
  c.methods = read_entries(j, "methods", source);
  require(!c.methods.empty(), "{}: 'methods' must list at least one method", source);
  return c;
}

SweepConfig read_sweep_config(const fs::path& path) {
  return parse_sweep_config(read_json(path), path.string());
}

namespace {

// `entries` restricted to `names`, in the file's order; `flag` and `what` name them in errors.
std::vector<SweepEntry> select_entries(const std::vector<SweepEntry>& entries,
                                       const std::vector<std::string>& names, const char* flag,
                                       const char* what) {
  std::vector<std::string> known;
  for (const auto& e : entries) known.push_back(e.name);
  for (const auto& name : names) {
    require(std::find(known.begin(), known.end(), name) != known.end(),
            "{} {}: the sweep has no {} of that name (it has {})", flag, name, what,
            known.empty() ? std::string("none") : fmt::format("{}", fmt::join(known, ", ")));
  }
  std::vector<SweepEntry> kept;
  for (const auto& e : entries) {
    if (std::find(names.begin(), names.end(), e.name) != names.end()) kept.push_back(e);
  }
  return kept;
}

}  // namespace

SweepConfig only_methods(const SweepConfig& config, const std::vector<std::string>& names) {
  SweepConfig out = config;
  out.methods = select_entries(config.methods, names, "--only", "method");
  return out;
}

SweepConfig only_settings(const SweepConfig& config, const std::vector<std::string>& names) {
  SweepConfig out = config;
  out.settings = select_entries(config.settings, names, "--only-settings", "setting");
  return out;
}

SweepConfig only_seeds(const SweepConfig& config, const std::vector<uint64_t>& seeds) {
  for (const auto seed : seeds) {
    require(std::find(config.seeds.begin(), config.seeds.end(), seed) != config.seeds.end(),
            "--only-seeds {}: the sweep has no such seed (it has {})", seed,
            fmt::join(config.seeds, ", "));
  }
  SweepConfig out = config;
  out.seeds.clear();
  for (const auto seed : config.seeds) {
    if (std::find(seeds.begin(), seeds.end(), seed) != seeds.end()) out.seeds.push_back(seed);
  }
  return out;
}

std::vector<SweepRun> expand_sweep(const SweepConfig& config) {
  std::vector<SweepEntry> settings = config.settings;
  if (settings.empty()) settings.push_back({});
  std::vector<SweepRun> runs;
  for (const auto seed : config.seeds) {
    for (const auto& setting : settings) {
      for (const auto& method : config.methods) {
        SweepRun r;
        r.method = method.name;
        r.setting = setting.name;
        r.seed = seed;
        const auto stem = setting.name.empty() ? method.name : method.name + "-" + setting.name;
        r.dir = config.out / fmt::format("{}-{}", stem, seed);
        r.args = config.common;
        r.args.insert(r.args.end(), setting.args.begin(), setting.args.end());
        r.args.insert(r.args.end(), method.args.begin(), method.args.end());
        runs.push_back(std::move(r));
      }
    }
  }
  return runs;
}

}  // namespace qimera::experiments
