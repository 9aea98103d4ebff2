#pragma once
// A plain-text table with aligned columns, for terminal reports:
//
//   stage       patients  median   max
//   ----------  --------  -------  -------
//   referral         200  0m       0m
#include <ostream>
#include <string>
#include <vector>

namespace clinicflow::cli {

class TextTable {
 public:
  enum class Align { left, right };
  struct Column {
    std::string header;
    Align align = Align::left;
  };

  explicit TextTable(std::vector<Column> columns) : columns_(std::move(columns)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void add_rule() { rows_.push_back({}); }  // a dashed line, such as above a total
  bool empty() const { return rows_.empty(); }
  // Each line starts with `indent`; columns are two spaces apart; no trailing spaces.
  void render(std::ostream& out, const std::string& indent = "  ") const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// Width on a terminal: UTF-8 continuation bytes take no room.
std::size_t display_width(const std::string& text);

}  // namespace clinicflow::cli
