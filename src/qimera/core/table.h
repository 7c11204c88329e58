// Plain-text tables for reports printed to the terminal.
#pragma once

#include <string>
#include <vector>

namespace qimera {

/// Column-aligned text table. Example:
///   Table t({"model", "top-1"}); t.add_row({"fp32", "93.10"}); std::puts(t.render().c_str());
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void add_row(std::vector<std::string> row);
  std::string render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace qimera
