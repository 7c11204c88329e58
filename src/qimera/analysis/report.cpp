#include "qimera/analysis/report.h"

#include "qimera/analysis/gnuplot.h"
#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/core/input_file.h"
#include "qimera/core/json_file.h"
#include "qimera/core/json_value.h"
#include "qimera/experiments/run_outcome.h"

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <unistd.h>

namespace qimera::analysis {
namespace fs = std::filesystem;

std::string html_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 2]);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? table[n & 63] : '=';
  }
  return out;
}

namespace {

struct RunPage {
  fs::path dir;
  std::string name;
  nlohmann::json config, summary = nlohmann::json::object();
  std::vector<nlohmann::json> epochs;
};

RunPage read_run(const fs::path& dir) {
  RunPage r;
  r.dir = dir;
  r.name = fs::absolute(dir).lexically_normal().filename().string();
  if (r.name.empty()) r.name = dir.string();
  require(fs::exists(dir / "config.json"), "{} is not a run folder: it has no config.json", dir.string());
  r.config = read_json(dir / "config.json");
  if (fs::exists(dir / "summary.json")) r.summary = read_json(dir / "summary.json");
  if (fs::exists(dir / "metrics.jsonl")) {
    std::ifstream in(dir / "metrics.jsonl");
    int line_number = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_number;
      if (line.empty()) continue;
      r.epochs.push_back(parse_json(line, fmt::format("{}:{}", (dir / "metrics.jsonl").string(), line_number)));
    }
  }
  return r;
}

std::string data_uri(const std::string& type, const std::string& bytes) {
  return fmt::format("data:{};base64,{}", type, base64(bytes));
}

// A gnuplot figure as an SVG data URI, rendered through a temporary file next to the report.
std::string figure(const std::string& script, const fs::path& scratch, int width, int height) {
  render_with_gnuplot(script, fmt::format("svg size {},{} font 'sans,11' background '#ffffff'", width, height),
                      scratch);
  const auto svg = read_file(scratch);
  fs::remove(scratch);
  return data_uri("image/svg+xml", svg);
}

std::string series_block(const std::string& name, const std::vector<std::pair<double, double>>& points) {
  std::string block = fmt::format("${} << EOD\n", name);
  for (const auto& [x, y] : points) block += fmt::format("{} {:.6g}\n", x, y);
  return block + "EOD\n";
}

std::vector<std::pair<double, double>> series(const RunPage& r, const std::string& key) {
  std::vector<std::pair<double, double>> points;
  for (const auto& e : r.epochs) {
    if (e.contains(key) && e.at(key).is_number() && e.contains("epoch")) {
      points.emplace_back(e.at("epoch").get<double>(), e.at(key).get<double>());
    }
  }
  return points;
}

std::string accuracy_chart(const std::vector<RunPage>& runs, const fs::path& scratch) {
  std::string script = "set title 'Test top-1 per epoch (each run)'\nset xlabel 'epoch'\nset ylabel 'top-1 %'\n"
                       "set key outside right top\nset grid\n";
  std::vector<std::string> plots;
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto points = series(runs[i], "test_top1");
    if (points.empty()) continue;
    script += series_block(fmt::format("run{}", i), points);
    plots.push_back(fmt::format("$run{} with linespoints lw 2 title {}", i, gnuplot_string(runs[i].name)));
  }
  if (plots.empty()) return {};
  script += fmt::format("plot {}\n", fmt::join(plots, ", "));
  return figure(script, scratch, 900, 420);
}

std::string loss_chart(const RunPage& r, const fs::path& scratch) {
  std::vector<std::string> keys;
  for (const auto& e : r.epochs) {
    for (const auto& [key, value] : e.items()) {
      const bool loss = key.rfind("loss_", 0) == 0 || key.rfind("g_", 0) == 0 || key.rfind("q_", 0) == 0;
      if (loss && value.is_number() && std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    }
  }
  if (keys.empty()) return {};
  std::string script = fmt::format("set title {}\nset xlabel 'epoch'\nset ylabel 'loss (epoch mean)'\n"
                                   "set key outside right top\nset grid\nset logscale y\n",
                                   gnuplot_string(r.name + ": losses per epoch"));
  std::vector<std::string> plots;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto points = series(r, keys[i]);
    points.erase(std::remove_if(points.begin(), points.end(), [](const auto& p) { return !(p.second > 0); }),
                 points.end());
    if (points.empty()) continue;
    script += series_block(fmt::format("s{}", i), points);
    plots.push_back(fmt::format("$s{} with linespoints title {}", i, gnuplot_string(keys[i])));
  }
  if (plots.empty()) return {};
  script += fmt::format("plot {}\n", fmt::join(plots, ", "));
  return figure(script, scratch, 900, 380);
}

std::string number_cell(const nlohmann::json& j, const char* format = "{:.2f}") {
  return j.is_number() ? fmt::format(fmt::runtime(format), j.get<double>()) : "-";
}

std::string boundary_table(const nlohmann::json& boundary) {
  std::string html = "<table><tr><th>path</th><th>noise</th><th>paths</th><th>distance ratio (ideal 1)</th>"
                     "<th>intrusion</th></tr>";
  for (const auto& row : boundary.value("rows", nlohmann::json::array())) {
    if (!row.value("note", std::string()).empty()) {
      html += fmt::format("<tr><td>{}</td><td>{}</td><td colspan=3>{}</td></tr>",
                          html_escape(row.value("path", "")), html_escape(row.value("noise", "")),
                          html_escape(row.value("note", "")));
      continue;
    }
    html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{} &plusmn; {}</td><td>{} &plusmn; {}</td></tr>",
                        html_escape(row.value("path", "")), html_escape(row.value("noise", "")),
                        row.value("paths", 0), number_cell(row["distance_ratio"]["mean"], "{:.3f}"),
                        number_cell(row["distance_ratio"]["std"], "{:.3f}"),
                        number_cell(row["intrusion"]["mean"], "{:.5f}"), number_cell(row["intrusion"]["std"], "{:.5f}"));
  }
  html += "</table>";
  html += fmt::format("<p class=note>Choices where the paper is silent: {}</p>",
                      html_escape(boundary.value("choices", std::string())));
  return html;
}

std::string run_section(const RunPage& r, const fs::path& scratch) {
  std::string html = fmt::format("<section><h2 id='{0}'>{0}</h2>", html_escape(r.name));
  const auto command = r.summary.value("command", r.config.value("provenance", nlohmann::json::object()).value("command", std::string()));
  html += fmt::format("<p><b>method</b> {} &middot; <b>folder</b> <code>{}</code></p><pre>{}</pre>",
                      html_escape(r.config.value("method", std::string("?"))), html_escape(r.dir.string()),
                      html_escape(command));
  if (r.summary.contains("rows")) {
    html += "<h3>Test accuracy</h3><table><tr><th>model</th><th>top-1 %</th><th>top-5 %</th><th>note</th></tr>";
    for (const auto& row : r.summary.at("rows")) {
      html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                          html_escape(row.value("label", "")), number_cell(row.value("top1", nlohmann::json())),
                          number_cell(row.value("top5", nlohmann::json())), html_escape(row.value("note", "")));
    }
    html += "</table>";
  } else {
    html += "<p class=note>No summary.json: the run has not finished.</p>";
  }
  if (r.summary.contains("export")) {
    const auto& e = r.summary.at("export");
    html += fmt::format("<p><b>integer export</b>: {} bytes ({:.1f}% of float32's {} bytes)</p>",
                        e.value("file_bytes", 0), 100.0 * e.value("file_bytes", 0) / std::max(1, e.value("float32_bytes", 1)),
                        e.value("float32_bytes", 0));
  }
  if (const auto chart = loss_chart(r, scratch); !chart.empty()) {
    html += fmt::format("<h3>Losses per epoch</h3><img alt='losses of {}' src='{}'>", html_escape(r.name), chart);
  }
  const auto analysis = r.dir / "analysis";
  if (fs::exists(analysis / "grid.png")) {
    html += fmt::format("<h3>Generated samples (Figure 4)</h3><p class=note>One row per class; then rows "
                        "sweeping the superposition between classes 0-1, 1-2, ... (Qimera's generator).</p>"
                        "<img class=grid alt='sample grid of {}' src='{}'>",
                        html_escape(r.name), data_uri("image/png", read_file(analysis / "grid.png")));
  }
  if (fs::exists(analysis / "pca.svg")) {
    html += fmt::format("<h3>Feature space (Figure 3)</h3><img alt='PCA of {}' src='{}'>", html_escape(r.name),
                        data_uri("image/svg+xml", read_file(analysis / "pca.svg")));
  }
  if (fs::exists(analysis / "boundary.json")) {
    html += "<h3>Boundary metrics (Table 5, K = 2)</h3>" + boundary_table(read_json(analysis / "boundary.json"));
  }
  if (!fs::exists(analysis / "analysis.json")) {
    html += fmt::format("<p class=note>No analysis yet: <code>qimera analyze {}</code> adds the sample "
                        "grid, the PCA and the boundary metrics.</p>", html_escape(r.dir.string()));
  }
  if (r.config.contains("options")) {
    html += "<details><summary>All options</summary><table>";
    for (const auto& [key, value] : r.config.at("options").items()) {
      html += fmt::format("<tr><td>{}</td><td>{}</td></tr>", html_escape(key), html_escape(value.dump()));
    }
    html += "</table></details>";
  }
  return html + "</section>";
}

const char* kStyle = R"CSS(
body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap;word-break:break-all}
img{max-width:100%;display:block;margin:.5em 0}img.grid{image-rendering:pixelated;width:min(100%,600px)}
.note{color:#555;font-size:.9em}section{border-top:2px solid #ddd;margin-top:2em}
)CSS";

// Lets a headless browser check the page: every image decoded (data-images-ok on <body>).
const char* kCheckScript = R"JS(
window.addEventListener('load', function () {
  var bad = Array.prototype.filter.call(document.images, function (i) { return !i.complete || i.naturalWidth === 0; });
  document.body.setAttribute('data-images-ok', bad.length === 0 ? 'true' : 'false: ' + bad.length + ' broken');
});
)JS";

}  // namespace

void write_report(const std::vector<fs::path>& run_dirs, const fs::path& out) {
  require(!run_dirs.empty(), "a report needs at least one run folder");
  std::vector<RunPage> runs;
  for (const auto& dir : run_dirs) runs.push_back(read_run(dir));
  const fs::path scratch = out.parent_path() / fmt::format(".{}.{}.figure.svg", out.filename().string(), ::getpid());
  if (!out.parent_path().empty()) fs::create_directories(out.parent_path());
  std::string body = "<h1>qimera report</h1>";
  body += "<table><tr><th>run</th><th>method</th><th>bits</th><th>full precision</th><th>naive</th><th>final top-1 %</th>"
          "<th>best epoch (selected on the test set)</th><th>wall s</th></tr>";
  for (const auto& r : runs) {
    // The numbers as the sweep's tables read them (experiments/run_outcome.h).
    const auto outcome = r.summary.empty() ? experiments::RunOutcome{}
                                           : experiments::run_outcome_of(r.summary, (r.dir / "summary.json").string());
    auto top1 = [](const std::optional<double>& v) { return v ? fmt::format("{:.2f}", *v) : std::string("-"); };
    const std::string best =
        outcome.best_top1 ? fmt::format("{:.2f} (best epoch ({}), selected on the test set)", *outcome.best_top1,
                                        outcome.best_epoch.value_or(0))
                          : "-";
    const std::string wall =
        outcome.wall_seconds
            ? fmt::format("{:.0f}{}", *outcome.wall_seconds, outcome.wall_is_loop_only ? " (training loop only)" : "")
            : "-";
    const auto& q = r.summary.value("quantization", nlohmann::json::object());
    body += fmt::format("<tr><td><a href='#{0}'>{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td>"
                        "<td><b>{5}</b></td><td>{6}</td><td>{7}</td></tr>",
                        html_escape(r.name), html_escape(r.config.value("method", std::string("?"))),
                        q.contains("weight_bits") ? fmt::format("{}w{}a", q.value("weight_bits", 0), q.value("act_bits", 0)) : "-",
                        top1(outcome.full_precision), top1(outcome.naive), top1(outcome.final_top1),
                        html_escape(best), wall);
  }
  body += "</table><p class=note>Final epoch is the result; the best epoch is picked on the test set and is "
          "shown only for comparison with papers that report it.</p>";
  if (const auto chart = accuracy_chart(runs, scratch); !chart.empty()) {
    body += fmt::format("<img alt='test top-1 per epoch' src='{}'>", chart);
  }
  for (const auto& r : runs) body += run_section(r, scratch);
  const auto page = fmt::format(
      "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>qimera report</title>"
      "<style>{}</style></head><body>{}<script>{}</script></body></html>\n",
      kStyle, body, kCheckScript);
  write_file_atomically(out, page);
}

}  // namespace qimera::analysis
