// Named settings for data-free runs: the reference implementation's run scripts (results.md, last
// table) and this project's short schedules. A preset sets defaults; explicit flags override them.
#pragma once

#include "qimera/methods/data_free.h"

#include <functional>
#include <string>
#include <vector>

namespace qimera::methods {

struct Preset {
  std::string name;
  std::string description;
  std::function<void(DataFreeOptions&)> apply;
};

/// Every preset, in a fixed order.
const std::vector<Preset>& data_free_presets();

/// The preset called `name`; an unknown name is an error that lists the known ones.
const Preset& find_preset(const std::string& name);

}  // namespace qimera::methods
