// qimera quantize: every quantization method of the registry (methods/method.h). Thin: the flags
// come from the methods' own option descriptions, the work from the library.
#include "commands.h"
#include "common.h"
#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/table.h"
#include "qimera/data/loader.h"
#include "qimera/data/spread_subset.h"
#include "qimera/deploy/model_card.h"
#include "qimera/deploy/quantized_model.h"
#include "qimera/eval/evaluate.h"
#include "qimera/methods/collapse.h"
#include "qimera/methods/collapse_advice.h"
#include "qimera/methods/method.h"
#include "qimera/methods/ptq.h"
#include "qimera/methods/zeroq.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>

namespace qimera::cli {
namespace {
namespace fs = std::filesystem;

struct QuantizeOptions {
  CommonOptions common;
  std::string method = "qimera";
  std::string model;
  std::string weights;
  std::string preset;
  std::string test_data;
  int64_t test_limit = 0;
  std::string out = "runs/quantize";
  bool resume = false;
  bool no_export = false;
  std::string probe_check = "auto";
  CLI::Option* method_flag = nullptr;
};

// One method option on the command line: its storage, and whether it was given.
struct MethodFlag {
  std::string name;
  CLI::Option* option = nullptr;
  bool is_bool = false;
  bool flag_value = false;
  std::vector<std::string> texts;
};

struct Registered {
  QuantizeOptions options;
  std::vector<std::unique_ptr<MethodFlag>> flags;
};

Registered& registered() {
  static Registered r;
  return r;
}

methods::GivenOptions given_options(const Registered& r) {
  methods::GivenOptions given;
  for (const auto& f : r.flags) {
    if (f->option->count() == 0) continue;
    given.emplace_back(f->name, f->is_bool ? std::vector<std::string>{f->flag_value ? "true" : "false"}
                                           : f->texts);
  }
  return given;
}

std::optional<data::BatchLoader> test_loader(const QuantizeOptions& o, const data::Preprocess& preprocess,
                                             c10::Device device) {
  if (o.test_data.empty() || o.test_data == "none") return std::nullopt;
  auto dataset = open_data(o.test_data, o.common);
  if (o.test_limit > 0) dataset = data::spread_subset(dataset, o.test_limit);
  data::LoaderOptions loading;
  loading.batch_size = 500;
  loading.workers = o.common.workers;
  loading.device = device;
  return std::make_optional<data::BatchLoader>(dataset, preprocess, loading);
}

std::string percent(const std::optional<eval::Accuracy>& acc) {
  return acc ? fmt::format("{:.2f}", acc->top1) : std::string("-");
}

nlohmann::json row_json(const std::string& label, const std::optional<eval::Accuracy>& acc,
                        const std::string& note) {
  nlohmann::json j{{"label", label}, {"note", note}};
  if (acc) j["top1"] = acc->top1, j["top5"] = acc->top5;
  return j;
}

void run_quantize(Registered& r) {
  const auto started = std::chrono::steady_clock::now();
  auto& o = r.options;
  require(o.test_limit >= 0, "--test-limit must not be negative, got {}", o.test_limit);
  const auto device = apply_common_options(o.common);
  const methods::RunFolder folder{o.out};
  std::optional<nlohmann::json> saved;
  std::string method_name = o.method;
  if (o.resume) {
    saved = methods::saved_run_config(folder);
    const std::string saved_method = saved->at("method");
    require(o.method_flag->count() == 0 || o.method == saved_method,
            "--resume: {} holds a --method {} run, not {}", o.out, saved_method, o.method);
    method_name = saved_method;
  }
  const auto& info = methods::find_method(method_name);
  const auto method = methods::configure_method(info, o.preset, given_options(r),
                                                saved ? &saved->at("options") : nullptr);
  const auto quantization = method->quantization();

  const auto card = deploy::resolve_model(o.model, o.weights);
  auto teacher = deploy::load_classifier(card, device);
  spdlog::info("teacher: {}", card.spec.describe());
  auto test = test_loader(o, card.preprocess, device);
  Table table({"model", "top-1 %", "note"});
  nlohmann::json summary{{"command", command_line()}, {"teacher", card.spec.to_json()},
                         {"method", info.name}, {"preset", o.preset}};
  auto rows = nlohmann::json::array();
  auto add_row = [&](const std::string& label, const std::optional<eval::Accuracy>& acc,
                     const std::string& note) {
    table.add_row({label, percent(acc), note});
    rows.push_back(row_json(label, acc, note));
  };
  std::optional<eval::Accuracy> fp;
  if (test) fp = eval::evaluate_model(*teacher, *test, "full precision");
  add_row("full precision", fp, "");
  if (fp) summary["full_precision"] = fp->to_json();
  if (info.name != "ptq") {
    // The naive starting point: the same quantization, ranges from noise, no training.
    const auto naive = methods::naive_quantize(*teacher, quantization, device, o.common.seed);
    std::optional<eval::Accuracy> naive_acc;
    if (test) naive_acc = eval::evaluate_model(*naive, *test, "naive " + quantization.short_name());
    add_row("naive " + quantization.short_name(), naive_acc, methods::kNaiveNote);
    if (naive_acc) summary["naive"] = naive_acc->to_json();
  }

  // Without a test set nothing else watches Q on images it does not train on (q_agreement is
  // fooled when G learns images Q gets right: 3-bit ZAQ).
  std::optional<eval::ProbeSet> probe;
  if (o.probe_check == "on" && !method->trains()) {
    spdlog::warn("--probe-check on: {} has no training epochs to watch; check its export with qimera check",
                 info.name);
  }
  if (method->trains() && (o.probe_check == "on" || (o.probe_check == "auto" && !test))) {
    const auto size = methods::probe_options();
    spdlog::info("distilling the probe: {} images from the teacher (--probe-check {})",
                 size.batches * size.batch_size, o.probe_check);
    probe = methods::run_probe(*teacher, size, o.common.seed, device);
  }

  methods::MethodContext context;
  context.teacher = teacher;
  context.device = device;
  context.test = test ? &*test : nullptr;
  context.probe = probe ? &*probe : nullptr;
  context.folder = folder;
  context.resume = o.resume;
  context.seed = o.common.seed;
  context.data_root = data_root(o.common);
  context.preprocess = card.preprocess;
  context.workers = o.common.workers;
  spdlog::info("{} {}: {}", info.name, quantization.short_name(),
               options_to_json([&](OptionVisitor& v) { method->describe(v); }).dump());
  const auto outcome = methods::run_method(
      info, *method, context,
      {{"provenance", {{"command", command_line()}, {"preset", o.preset}, {"model", o.model}}}});
  for (const auto& row : outcome.rows) add_row(row.label, row.test, row.note);
  summary["quantization"] = outcome.quantization.to_json();
  summary["options"] = options_to_json([&](OptionVisitor& v) { method->describe(v); });
  summary["seed"] = o.common.seed;
  summary["result"] = outcome.summary;
  std::string probe_line;
  // Epochs of an earlier session without the probe have no figure.
  if (probe && outcome.run && outcome.run->final_epoch->has("probe_agreement")) {
    std::vector<std::string> by_epoch;
    for (const auto& r : outcome.run->history) {
      by_epoch.push_back(r.has("probe_agreement") ? fmt::format("{:.1f}", r.value("probe_agreement")) : "-");
    }
    const double final_agreement = outcome.run->final_epoch->value("probe_agreement");
    summary["probe"] = {{"images", probe->images.size(0)}, {"seed", o.common.seed},
                        {"final_agreement", final_agreement}};
    probe_line = fmt::format(
        "agreement with the teacher on {} images distilled from it, by epoch: {} % (metrics.jsonl: "
        "probe_agreement; it ranks models as test top-1 does but is lower: a screen, not an accuracy)\n",
        probe->images.size(0), fmt::join(by_epoch, ", "));
    const auto classes = teacher->spec().num_classes;
    if (methods::near_chance(final_agreement, classes)) {
      probe_line += fmt::format(
          "warning: the final epoch agrees on {:.1f}%, near chance ({:.1f}%): on the bundled teachers "
          "every model under 50% test top-1 agreed on 24% or less (docs/results.md); evaluate this "
          "one on labelled data before using it\n",
          final_agreement, 100.0 / static_cast<double>(classes));
    }
  }
  summary["rows"] = rows;

  std::string export_line;
  if (!o.no_export) {
    const auto exported = deploy::export_quantized(
        *outcome.quantized, outcome.quantization, card.preprocess, fs::path(o.out) / "quantized.json",
        fs::path(o.model).extension() == ".json" ? fs::path(o.model) : fs::path(),
        {{"command", command_line()}});
    summary["export"] = {{"manifest", exported.manifest.string()},
                         {"weights", exported.weights.string()},
                         {"file_bytes", exported.file_bytes},
                         {"float32_bytes", exported.float32_bytes}};
    export_line = fmt::format("integer export: {} + {} ({} bytes, {:.1f}% of float32's {} bytes)\n",
                              exported.manifest.string(), exported.weights.filename().string(),
                              exported.file_bytes, 100 * exported.ratio(), exported.float32_bytes);
  }
  // The whole command, evaluation and export included; a resumed run adds what its earlier sessions
  // spent up to the checkpoint it resumed from, so sweep tables show the run's time, not the last part's.
  const double this_session = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double earlier = outcome.run ? outcome.run->seconds_all_sessions - outcome.run->seconds : 0.0;
  summary["wall_seconds"] = this_session + earlier;
  summary["wall_seconds_this_session"] = this_session;
  summary["resumed"] = o.resume;
  write_json(fs::path(o.out) / "summary.json", summary);
  fmt::print("{}{}", test ? "test accuracy:\n" : "", table.render());
  fmt::print("run folder: {} ({})\n", o.out,
             method->trains() ? "config.json, metrics.jsonl, checkpoint.pt, summary.json"
                              : "config.json, summary.json");
  fmt::print("{}{}", probe_line, export_line);
  if (!test && !o.no_export) {
    // Without labelled data the training signals can look healthy while Q is broken on real
    // images (3-bit ZAQ: q_agreement 75%, test top-1 19%); agreement on distilled images is not fooled.
    fmt::print("no test set: check the export against its source with qimera check --model {}\n",
               (fs::path(o.out) / "quantized.json").string());
  }
  for (const auto& collapse : outcome.run ? outcome.run->collapses : std::vector<std::string>{}) {
    fmt::print("warning: {}; {}\n", collapse, methods::kCollapseAdvice);
  }
}

// "[default 0.4]", or "[default 200; zaq 60, qimera-zaq 60]" when methods differ, and which
// methods take the option when not all do.
std::string defaults_text(const std::vector<std::pair<std::string, std::string>>& by_method,
                          size_t method_count) {
  std::map<std::string, int> votes;
  for (const auto& [m, v] : by_method) ++votes[v];
  std::string common;
  int most = 0;
  for (const auto& [m, v] : by_method) {
    if (votes[v] > most) most = votes[v], common = v;
  }
  std::vector<std::string> exceptions, methods;
  for (const auto& [m, v] : by_method) {
    methods.push_back(m);
    if (v != common) exceptions.push_back(fmt::format("{} {}", m, v.empty() ? "none" : v));
  }
  std::string text = common.empty() && exceptions.empty() ? std::string() : fmt::format(" [default {}", common.empty() ? "none" : common);
  if (!exceptions.empty()) text += fmt::format("; {}", fmt::join(exceptions, ", "));
  if (!text.empty()) text += "]";
  if (by_method.size() < method_count) text += fmt::format(" ({} only)", fmt::join(methods, ", "));
  return text;
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto& r = registered();
  auto& o = r.options;
  std::string method_list, preset_list;
  std::map<std::string, std::vector<std::string>> preset_methods;
  std::vector<std::pair<std::string, std::string>> preset_order;
  // Every option of every method, in the order the methods describe them.
  std::vector<std::string> names;
  std::map<std::string, OptionListing> listing;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> defaults;
  for (const auto& info : methods::all_methods()) {
    method_list += fmt::format("\n  {}: {}", info.name, info.description);
    for (const auto& p : info.presets) {
      if (!preset_methods.count(p.name)) preset_order.emplace_back(p.name, p.description);
      // Qimera's description says most about a shared setting.
      if (info.name == "qimera") {
        for (auto& [name, description] : preset_order) {
          if (name == p.name) description = p.description;
        }
      }
      preset_methods[p.name].push_back(info.name);
    }
    auto method = info.make();
    for (const auto& l : list_options([&](OptionVisitor& v) { method->describe(v); })) {
      if (!listing.count(l.name)) {
        names.push_back(l.name);
        listing[l.name] = l;
      }
      defaults[l.name].emplace_back(info.name, l.value);
    }
  }
  for (const auto& [name, description] : preset_order) {
    preset_list += fmt::format("\n  {}: {} ({})", name, description, fmt::join(preset_methods[name], ", "));
  }
  auto* cmd = app.add_subcommand(
      "quantize",
      "Quantize a full-precision model with one of the methods below: post-training calibration "
      "(ptq, zeroq) or data-free fine-tuning on synthetic images (gdfq, gdfq-mixup, gdfq-cutmix, "
      "zaq, qimera, qimera-zaq). Writes the run folder (config.json, metrics.jsonl, checkpoint, "
      "summary.json) and an integer export (quantized.json + quantized.safetensors).");
  cmd->footer("Methods (--method):" + method_list +
              "\n\nPresets (--preset) set a method's options for a named setting; flags given "
              "explicitly override them:" +
              preset_list);
  add_common_options(*cmd, o.common);
  o.method_flag = cmd->add_option("--method", o.method, "Quantization method (see below)")->capture_default_str();
  cmd->add_option("--model", o.model, "Model card (.json) or pytorchcv preset name with --weights")->required();
  cmd->add_option("--weights", o.weights, "State dict (.pth/.pt/.safetensors), overrides a card's");
  cmd->add_option("--preset", o.preset, "Named settings of the method (see below)");
  cmd->add_option("--test-data", o.test_data, "Test data to report accuracy on (e.g. fashion-mnist:test)");
  cmd->add_option("--test-limit", o.test_limit, "Evaluate N test images spread evenly over the test set (every (size/N)-th, so every class of a class-ordered folder counts; 0: all)")
      ->capture_default_str();
  cmd->add_option("--out", o.out, "Run folder")->capture_default_str();
  cmd->add_flag("--resume",
                o.resume,
                "Continue the run in --out from its checkpoint, with its saved options (options "
                "given again must match, except epochs and logging)");
  cmd->add_flag("--no-export", o.no_export, "Skip the integer export");
  cmd->add_option("--probe-check", o.probe_check,
                  "Measure Q's agreement with the teacher on 128 class-balanced images distilled "
                  "from it (as qimera check) after every epoch, as probe_agreement in metrics.jsonl, "
                  "and warn when the final epoch's is near chance: on, off, or auto (on for training "
                  "methods without --test-data). Distilling the images takes about 4 minutes of one "
                  "CPU core for a ResNet-20 and does not change the run's result")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  const size_t method_count = methods::all_methods().size();
  for (const auto& name : names) {
    const auto& l = listing[name];
    auto flag = std::make_unique<MethodFlag>();
    flag->name = name;
    const std::string help = l.help + defaults_text(defaults[name], method_count);
    const std::string long_flag = flag_of(name);
    if (l.is_bool) {
      flag->is_bool = true;
      flag->option = cmd->add_flag(long_flag + ",!--no-" + long_flag.substr(2), flag->flag_value, help);
    } else if (l.is_list) {
      flag->option = cmd->add_option(long_flag, flag->texts, help)->type_name("TEXT ...");
    } else {
      flag->option = cmd->add_option(long_flag, flag->texts, help)->expected(1)->type_name(l.type);
    }
    r.flags.push_back(std::move(flag));
  }
  cmd->callback([] { run_quantize(registered()); });
}

}  // namespace qimera::cli
