// The command-line front end, run as a separate process on small files the tests make.
#include "qimera/core/atomic_file.h"
#include "qimera/core/json_file.h"
#include "qimera/data/idx.h"
#include "qimera/deploy/model_card.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/state_dict.h"
#include "qimera/models/zoo.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <filesystem>
#include <limits>
#include <regex>
#include <sys/wait.h>

namespace qimera {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;

struct Result {
  int code;
  std::string output;  // stdout and stderr
};

Result qimera_cli(const std::string& args) {
  const std::string command = std::string(QIMERA_CLI) + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer{};
  while (size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// A 3-class data set of 8x8 grey images (IDX) and a ResNet-20 model card for it.
class CliFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    at::manual_seed(0);
    const auto labels = at::arange(24, at::kLong).remainder(3);
    const auto images = (labels.reshape({24, 1, 1, 1}) * 80 + at::randint(0, 40, {24, 1, 8, 8}))
                            .to(at::kByte);
    data::write_idx_images(dir / "images", images);
    data::write_idx_labels(dir / "labels", labels);
    data = "idx:" + (dir / "images").string() + "," + (dir / "labels").string();
    auto model = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 3, 1, 8});
    io::write_safetensors(dir / "model.safetensors", io::state_dict_of(*model));
    deploy::ModelCard card;
    card.spec = model->spec();
    card.weights = dir / "model.safetensors";
    card.preprocess = data::preprocess_preset("mnist");
    deploy::write_model_card(dir / "model.json", card);
    card_path = (dir / "model.json").string();
  }
  TempDir dir;
  std::string data, card_path;
  const std::string common = " --device cpu --threads 2 --quiet";
};

TEST(Cli, HelpExplainsEveryCommandAndFlag) {
  const auto top = qimera_cli("--help");
  EXPECT_EQ(top.code, 0);
  for (const char* command : {"data", "train", "eval", "quantize", "sweep", "analyze", "confusing-samples", "report", "check", "info"}) {
    EXPECT_THAT(top.output, HasSubstr(command));
  }
  const auto quantize = qimera_cli("quantize --help");
  EXPECT_EQ(quantize.code, 0);
  for (const char* flag : {"--se-k", "--se-p", "--dm", "--embedding-init", "--observer", "--wbits",
                           "--layer", "--resume", "--on-nan", "--on-collapse", "--calib-data", "fmnist-short",
                           "reference-cifar100-4w4a", "--zeroq-finetune", "--mix-alpha",
                           "--mix-generator-loss", "--generator", "--zaq-q-steps", "--rho", "--probe-check"}) {
    EXPECT_THAT(quantize.output, HasSubstr(flag));
  }
  // Every method is listed with its description.
  for (const char* method : {"ptq:", "zeroq:", "gdfq:", "gdfq-mixup:", "gdfq-cutmix:", "zaq:", "qimera:",
                             "qimera-zaq:"}) {
    EXPECT_THAT(quantize.output, HasSubstr(method));
  }
  EXPECT_NE(qimera_cli("frobnicate").code, 0);
  // The example sweep file named in the help ships with the project (it once named a file that
  // had been renamed).
  const auto sweep = qimera_cli("sweep --help");
  std::smatch example;
  ASSERT_TRUE(std::regex_search(sweep.output, example, std::regex("Example: (sweeps/[^ \\n]+)")))
      << sweep.output;
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(QIMERA_SOURCE_DIR) / example[1].str()))
      << example[1];
}

TEST_F(CliFixture, BadInputIsAClearErrorNamingTheFile) {
  const auto missing = qimera_cli("eval --model /nonexistent/card.json --data " + data + common);
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.output, HasSubstr("/nonexistent/card.json"));
  qimera::testing::write_bytes(dir / "broken", "not an idx file at all");
  const auto broken = qimera_cli("eval --model " + card_path + " --data idx:" + (dir / "broken").string() +
                                 "," + (dir / "labels").string() + common);
  EXPECT_EQ(broken.code, 1);
  EXPECT_THAT(broken.output, HasSubstr((dir / "broken").string()));
  const auto bad_bits = qimera_cli("quantize --method ptq --wbits 12 --model " + card_path + common +
                                   " --out " + (dir / "q").string());
  EXPECT_EQ(bad_bits.code, 1);
  EXPECT_THAT(bad_bits.output, HasSubstr("12 bits"));
  // CLI11 reads "-1" into a uint64_t as 2^64 - 1: a seed no run record or sweep file can hold.
  const auto negative_seed = qimera_cli("eval --seed -1 --model " + card_path + " --data " + data + common);
  EXPECT_NE(negative_seed.code, 0);
  EXPECT_THAT(negative_seed.output, HasSubstr("--seed"));
  const auto negative_sweep_seed = qimera_cli("sweep " + std::string(QIMERA_SOURCE_DIR) + "/sweeps/fmnist-4w4a.json --dry-run --only-seeds -1");
  EXPECT_NE(negative_sweep_seed.code, 0);
  EXPECT_THAT(negative_sweep_seed.output, HasSubstr("--only-seeds"));
  EXPECT_THAT(negative_sweep_seed.output, ::testing::Not(HasSubstr("18446744073709551615")));
}

TEST_F(CliFixture, EvalPrintsATableAndWritesJson) {
  const auto r = qimera_cli("eval --model " + card_path + " --data " + data + " --json " +
                            (dir / "eval.json").string() + common);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("full precision"));
  const auto json = read_json(dir / "eval.json");
  EXPECT_EQ(json["results"][0]["samples"], 24);
  const double top1 = json["results"][0]["top1"];
  EXPECT_GE(top1, 0.0);
  EXPECT_LE(top1, 100.0);
}

TEST_F(CliFixture, PtqExportsAModelThatEvalReadsBackWithTheSameAccuracy) {
  const auto out = (dir / "ptq").string();
  const auto q = qimera_cli("quantize --method ptq --wbits 5 --abits 5 --calib-data " + data +
                            " --calib-batches 2 --calib-batch-size 8 --test-data " + data +
                            " --model " + card_path + " --out " + out + common);
  ASSERT_EQ(q.code, 0) << q.output;
  const auto summary = read_json(dir / "ptq/summary.json");
  const double ptq_top1 = summary["rows"].back()["top1"];
  EXPECT_EQ(summary["rows"].back()["label"], "ptq 5w5a");
  EXPECT_EQ(summary["quantization"]["observer"]["kind"], "minmax");  // the one that calibrated
  const auto e = qimera_cli("eval --model " + out + "/quantized.json --data " + data + " --json " +
                            (dir / "e.json").string() + common);
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_THAT(e.output, HasSubstr("quantized 5w5a"));
  const auto results = read_json(dir / "e.json")["results"];
  ASSERT_EQ(results.size(), 2u);  // the full-precision source side by side
  EXPECT_DOUBLE_EQ(results[1]["top1"].get<double>(), ptq_top1);
  EXPECT_DOUBLE_EQ(results[0]["top1"].get<double>(), summary["full_precision"]["top1"].get<double>());
}

// Two PTQ runs of one teacher share their integer weights and differ only in the ranges: evaluating
// one with the other's ranges must give the other's accuracy, to the last digit.
TEST_F(CliFixture, EvalWithAnotherRunsActivationRangesGivesThatRunsAccuracy) {
  auto ptq = [&](const std::string& name, const std::string& calib) {
    const auto r = qimera_cli("quantize --method ptq --wbits 3 --abits 3 --calib-data " + calib +
                              " --calib-batches 1 --calib-batch-size 8 --model " + card_path +
                              " --out " + (dir / name).string() + common);
    EXPECT_EQ(r.code, 0) << r.output;
    return (dir / name / "quantized.json").string();
  };
  const auto real = ptq("real", data), noise = ptq("noise", "noise");
  auto top1 = [&](const std::string& args, const std::string& json) {
    const auto r = qimera_cli("eval --data " + data + " " + args + " --json " + (dir / json).string() + common);
    EXPECT_EQ(r.code, 0) << r.output;
    return read_json(dir / json)["results"];
  };
  const auto own = top1("--model " + noise, "own.json");
  const auto other = top1("--model " + real, "other.json");
  const auto swapped = top1("--model " + real + " --act-ranges-from " + noise, "swapped.json");
  ASSERT_EQ(swapped.size(), 2u);
  EXPECT_DOUBLE_EQ(swapped[1]["top1"].get<double>(), own[1]["top1"].get<double>());
  EXPECT_EQ(swapped[1]["act_ranges_from"][0]["layers"].size(), 19u);  // ResNet-20's activations
  EXPECT_THAT(swapped[1]["model"].get<std::string>(), HasSubstr("19 activation ranges from"));
  // A pattern takes only the layers it names; a later source wins: all of noise's ranges, then
  // real's own for every layer again, is the real run.
  const auto back = top1("--model " + real + " --act-ranges-from " + noise + " --act-ranges-from '" +
                             real + "=features.init_block.*,features.stage*'", "back.json");
  EXPECT_DOUBLE_EQ(back[1]["top1"].get<double>(), other[1]["top1"].get<double>());
  EXPECT_EQ(back[1]["act_ranges_from"][1]["layers"].size(), 19u);
  const auto one = top1("--model " + real + " --act-ranges-from '" + noise +
                            "=features.init_block.activ'", "one.json");
  EXPECT_EQ(one[1]["act_ranges_from"][0]["layers"].size(), 1u);
  const auto stray = qimera_cli("eval --data " + data + " --model " + real + " --act-ranges-from '" +
                                noise + "=features.nothing*'" + common);
  EXPECT_EQ(stray.code, 1);
  EXPECT_THAT(stray.output, HasSubstr("features.nothing*"));
  const auto fp = qimera_cli("eval --data " + data + " --model " + card_path + " --act-ranges-from " +
                             noise + common);
  const auto missing = qimera_cli("eval --data " + data + " --model " + real + " --act-ranges-from " +
                                  (dir / "none.json").string() + common);
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.output, HasSubstr("none.json"));
  EXPECT_EQ(fp.code, 1);
  EXPECT_THAT(fp.output, HasSubstr("needs a quantized model"));
}

TEST_F(CliFixture, SweepRunsAGridOnceAndRebuildsItsTableFromTheFolders) {
  const auto out = dir / "sweep";
  nlohmann::json sweep{
      {"out", out.string()},
      {"seeds", {1, 2}},
      {"common", {"--model", card_path, "--test-data", data, "--device", "cpu", "--quiet"}},
      {"methods",
       {{{"name", "ptq5"}, {"args", {"--method", "ptq", "--wbits", "5", "--abits", "5", "--calib-data", data,
                                     "--calib-batches", "1", "--calib-batch-size", "8"}}},
        {{"name", "ptq4"}, {"args", {"--method", "ptq", "--wbits", "4", "--abits", "4", "--calib-data", "noise",
                                     "--calib-batches", "1", "--calib-batch-size", "8"}}}}}};
  write_json(dir / "sweep.json", sweep);
  const auto first = qimera_cli("sweep " + (dir / "sweep.json").string() + " --jobs 2");
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("4 runs, 0 finished before, 4 to run; 2 at a time, 1 thread each"));
  const auto summary = read_json(out / "ptq5-2" / "summary.json");
  EXPECT_EQ(summary["seed"], 2);
  EXPECT_GT(summary["wall_seconds"].get<double>(), 0.0);
  const auto table = read_json(out / "table.json");
  EXPECT_EQ(table["runs_finished"], 4);
  EXPECT_EQ(table["rows"][0]["method"], "ptq5");
  // Calibration on real data does not depend on the seed here: both seeds agree, std 0.
  EXPECT_DOUBLE_EQ(table["rows"][0]["final_epoch_top1"]["std"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(table["rows"][0]["final_epoch_top1"]["per_seed"]["1"].get<double>(),
                   summary["rows"].back()["top1"].get<double>());
  const auto again = qimera_cli("sweep " + (dir / "sweep.json").string());
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_THAT(again.output, HasSubstr("4 finished before, 0 to run"));
  std::filesystem::remove_all(out / "ptq4-1");
  const auto partial = qimera_cli("sweep " + (dir / "sweep.json").string() + " --table-only");
  ASSERT_EQ(partial.code, 0) << partial.output;
  EXPECT_THAT(partial.output, HasSubstr("(1 of 2 seeds)"));
  EXPECT_THAT(partial.output, HasSubstr("3 of 4 runs finished"));
  sweep["methods"][0]["args"].push_back("--threads");
  write_json(dir / "bad.json", sweep);
  const auto bad = qimera_cli("sweep " + (dir / "bad.json").string());
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.output, AllOf(HasSubstr("bad.json"), HasSubstr("--threads is set by the sweep")));
}

TEST_F(CliFixture, DataFreeRunResumes) {
  const auto out = (dir / "qimera").string();
  const std::string args = "quantize --method qimera --iterations 2 --batch-size 4 --warmup-epochs 0 "
                           "--observe-epochs 1 --model " + card_path + " --test-data " + data +
                           " --out " + out + common;
  const auto first = qimera_cli(args + " --epochs 1");
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("final epoch"));
  EXPECT_THAT(first.output, HasSubstr("selected on the test set"));
  EXPECT_THAT(first.output, HasSubstr("checkpoint.pt"));
  EXPECT_THAT(first.output, HasSubstr("integer export: " + out + "/quantized.json"));
  const auto first_summary = read_json(dir / "qimera/summary.json");
  EXPECT_EQ(first_summary["resumed"], false);
  EXPECT_EQ(first_summary["wall_seconds"], first_summary["wall_seconds_this_session"]);
  EXPECT_NE(qimera_cli(args + " --epochs 2").code, 0);  // would overwrite the run
  const auto resumed = qimera_cli(args + " --epochs 2 --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  // The summary's wall time is the whole run's: this session plus the first one's epoch.
  const auto summary = read_json(dir / "qimera/summary.json");
  EXPECT_EQ(summary["resumed"], true);
  const double carried = summary["result"]["seconds_all_sessions"].get<double>() -
                         summary["result"]["seconds_this_session"].get<double>();
  EXPECT_GT(carried, 0.0);
  EXPECT_LE(carried, first_summary["wall_seconds"].get<double>());
  EXPECT_DOUBLE_EQ(summary["wall_seconds"].get<double>(),
                   summary["wall_seconds_this_session"].get<double>() + carried);
  std::ifstream metrics(dir / "qimera/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line);) ++lines;
  EXPECT_EQ(lines, 2);
  EXPECT_EQ(read_json(dir / "qimera/config.json")["options"]["epochs"], 2);
  // Resuming with other quantization flags is refused, naming them; so is resuming nothing.
  const auto changed = qimera_cli(args + " --epochs 2 --resume --wbits 2 --abits 8");
  EXPECT_EQ(changed.code, 1);
  EXPECT_THAT(changed.output, HasSubstr("--wbits 4 (saved) vs 2 (now)"));
  EXPECT_THAT(changed.output, HasSubstr("--abits 4 (saved) vs 8 (now)"));
  const auto nothing = qimera_cli("quantize --resume --model " + card_path + " --out " +
                                  (dir / "nothing").string() + common);
  EXPECT_EQ(nothing.code, 1);
  EXPECT_THAT(nothing.output, HasSubstr("nothing to resume"));
  // A flag the method does not have is an error, not silently ignored.
  const auto foreign = qimera_cli("quantize --method gdfq --se-k 3 --model " + card_path + " --out " +
                                  (dir / "foreign").string() + common);
  EXPECT_EQ(foreign.code, 1);
  EXPECT_THAT(foreign.output, HasSubstr("--se-k does not apply to --method gdfq"));

  // The same two epochs without the interruption export the same integer weights.
  const std::string straight_args = args.substr(0, args.find(" --out ")) + " --out " +
                                    (dir / "straight").string() + common + " --epochs 2";
  ASSERT_EQ(qimera_cli(straight_args).code, 0);
  testing::expect_same_state(io::read_safetensors(dir / "qimera/quantized.safetensors"),
                             io::read_safetensors(dir / "straight/quantized.safetensors"));
}

TEST_F(CliFixture, TrainWritesACardThatEvalUses) {
  const auto out = (dir / "teacher").string();
  const auto t = qimera_cli("train --data " + data + " --test-data " + data +
                            " --preprocess mnist --epochs 2 --batch-size 8 --lr 0.05 --out " + out + common);
  ASSERT_EQ(t.code, 0) << t.output;
  EXPECT_THAT(t.output, HasSubstr("test top-1"));
  const auto card = deploy::read_model_card(dir / "teacher/model.json");
  EXPECT_EQ(card.spec, (models::ModelSpec{models::Arch::ResNet20Cifar, 3, 1, 8}));
  EXPECT_EQ(qimera_cli("eval --model " + out + "/model.json --data " + data + common).code, 0);
  // A finished run is not silently overwritten; --resume of a finished run changes nothing.
  EXPECT_NE(qimera_cli("train --data " + data + " --epochs 2 --out " + out + common).code, 0);
}

// --limit used to take the first N images: on a class-ordered set (an image folder) that is one
// class, and a model that always answers class 0 scored 100%.
TEST_F(CliFixture, EvalLimitSamplesEveryClassOfAClassOrderedSet) {
  const auto labels = at::arange(24, at::kLong).div(8, "floor");  // 8 of class 0, then 1, then 2
  data::write_idx_images(dir / "sorted-images", at::randint(0, 255, {24, 1, 8, 8}).to(at::kByte));
  data::write_idx_labels(dir / "sorted-labels", labels);
  auto model = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 3, 1, 8});
  {
    at::NoGradGuard no_grad;
    auto params = model->named_parameters();
    params["output.weight"].zero_();
    params["output.bias"].copy_(at::tensor({10.0f, 0.0f, 0.0f}));
  }
  io::write_safetensors(dir / "model.safetensors", io::state_dict_of(*model));  // the card's weights
  const auto r = qimera_cli("eval --model " + card_path + " --data idx:" +
                            (dir / "sorted-images").string() + "," + (dir / "sorted-labels").string() +
                            " --limit 6 --json " + (dir / "limit.json").string() + common);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto json = read_json(dir / "limit.json");
  EXPECT_EQ(json["results"][0]["samples"], 6);
  EXPECT_NEAR(json["results"][0]["top1"].get<double>(), 100.0 / 3, 1e-6);  // 2 of each class
}

// The issue's hostile and broken inputs, as a user meets them on the command line.
TEST_F(CliFixture, NegativeCountsAndFolderOutputsAreRefusedUpFront) {
  const auto limit = qimera_cli("eval --model " + card_path + " --data " + data + " --limit -5" + common);
  EXPECT_NE(limit.code, 0);
  EXPECT_THAT(limit.output, AllOf(HasSubstr("--limit"), HasSubstr("-5")));
  const auto threads = qimera_cli("eval --model " + card_path + " --data " + data +
                                  " --device cpu --threads -1 --quiet");
  EXPECT_NE(threads.code, 0);
  EXPECT_THAT(threads.output, AllOf(HasSubstr("--threads"), HasSubstr("-1")));
  // --json naming a folder used to fail after the evaluation with "...: Success".
  const auto folder = qimera_cli("eval --model " + card_path + " --data " + data + " --json " +
                                 dir.path().string() + common);
  EXPECT_EQ(folder.code, 1);
  EXPECT_THAT(folder.output, AllOf(HasSubstr("--json"), HasSubstr("a folder"), Not(HasSubstr("Success"))));
}

TEST_F(CliFixture, ABrokenCardIsAClearErrorNotACrash) {
  auto card = read_json(card_path);
  card["format"] = 5;
  write_json(dir / "format.json", card);
  const auto format = qimera_cli("eval --model " + (dir / "format.json").string() + " --data " + data + common);
  EXPECT_EQ(format.code, 1);
  EXPECT_THAT(format.output, AllOf(HasSubstr("format.json"), HasSubstr("\"format\" must be"),
                                   Not(HasSubstr("type_error"))));
  // 200 KB of nested brackets in the preprocessing: a SIGSEGV before.
  std::string text = read_file(card_path);
  text.insert(text.find("\"preprocess\": {") + 15,
              "\"mean\": " + std::string(100000, '[') + std::string(100000, ']') + ", ");
  qimera::testing::write_bytes(dir / "deep.json", text);
  const auto deep = qimera_cli("eval --model " + (dir / "deep.json").string() + " --data " + data + common);
  EXPECT_EQ(deep.code, 1);
  EXPECT_THAT(deep.output, AllOf(HasSubstr("deep.json"), HasSubstr("nested")));
}

TEST_F(CliFixture, NonFiniteWeightsAreRefusedUnlessAllowed) {
  auto weights = io::read_safetensors(dir / "model.safetensors");
  weights[0].second.view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
  io::write_safetensors(dir / "model.safetensors", weights);
  const auto refused = qimera_cli("eval --model " + card_path + " --data " + data + common);
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.output, AllOf(HasSubstr("model.safetensors"), HasSubstr(weights[0].first),
                                    HasSubstr("NaN"), HasSubstr("--allow-nonfinite")));
  const auto allowed = qimera_cli("eval --model " + card_path + " --data " + data +
                                  " --allow-nonfinite --device cpu --threads 2");
  EXPECT_EQ(allowed.code, 0) << allowed.output;
  EXPECT_THAT(allowed.output, HasSubstr("loading it anyway"));
}

TEST_F(CliFixture, ImagesOfAnotherSizeThanTheModelAreRefused) {
  data::write_idx_images(dir / "big", at::zeros({1, 1, 4000, 4000}, at::kByte));
  data::write_idx_labels(dir / "big-labels", at::zeros({1}, at::kLong));
  const auto r = qimera_cli("eval --model " + card_path + " --data idx:" + (dir / "big").string() +
                            "," + (dir / "big-labels").string() + common);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.output, AllOf(HasSubstr("1x4000x4000"), HasSubstr("takes 1x8x8")));
}

// --- qimera export and qimera eval --engine int8 ------------------------------------------------

// qimera check: a quantized model against its source on a distilled, class-balanced probe set.
TEST_F(CliFixture, CheckComparesQuantizedModelsWithTheirSourceOnDistilledImages) {
  auto ptq = [&](const std::string& name, int bits) {
    const auto r = qimera_cli("quantize --method ptq --wbits " + std::to_string(bits) + " --abits " +
                              std::to_string(bits) + " --calib-data " + data +
                              " --calib-batches 1 --calib-batch-size 8 --model " + card_path +
                              " --out " + (dir / name).string() + common);
    EXPECT_EQ(r.code, 0) << r.output;
    // Without --test-data, quantize points to the check of its export.
    EXPECT_THAT(r.output, HasSubstr("qimera check --model " + (dir / name / "quantized.json").string()));
    return (dir / name / "quantized.json").string();
  };
  const auto eight = ptq("q8", 8), two = ptq("q2", 2);
  const std::string probe = " --zeroq-batches 2 --zeroq-batch-size 6 --zeroq-iterations 20";
  const auto r = qimera_cli("check --model " + eight + " " + two + probe + " --json " +
                            (dir / "check.json").string() + common);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("agreement %"));
  const auto j = read_json(dir / "check.json");
  EXPECT_EQ(j["probe"]["kind"], "class-balanced");
  const double intended = j["probe"]["source_picks_target_percent"];
  EXPECT_GE(intended, 0.0);
  EXPECT_LE(intended, 100.0);
  ASSERT_EQ(j["results"].size(), 2u);
  for (const auto& result : j["results"]) {
    EXPECT_EQ(result["images"], 12);
    EXPECT_EQ(result["per_class"].size(), 3u);
    int64_t images = 0;
    for (const auto& c : result["per_class"]) images += c["images"].get<int64_t>();
    EXPECT_EQ(images, 12);
  }
  EXPECT_EQ(j["results"][0]["config"], "8w8a");
  // 2-bit weights and activations move the outputs far more than 8-bit ones.
  EXPECT_LT(j["results"][0]["kl"].get<double>(), j["results"][1]["kl"].get<double>());
  // The same seed gives the same probe, so the same figures.
  const auto again = qimera_cli("check --model " + eight + probe + " --json " + (dir / "again.json").string() + common);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(read_json(dir / "again.json")["results"][0]["kl"], j["results"][0]["kl"]);
  // A full-precision card, a missing file and an unknown probe are clear errors.
  const auto fp = qimera_cli("check --model " + card_path + probe + common);
  EXPECT_EQ(fp.code, 1);
  EXPECT_THAT(fp.output, AllOf(HasSubstr(card_path), HasSubstr("not a quantized model")));
  const auto missing = qimera_cli("check --model " + (dir / "none.json").string() + probe + common);
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.output, HasSubstr("none.json"));
  EXPECT_NE(qimera_cli("check --model " + eight + " --probe nothing" + common).code, 0);
}

// Without --test-data a training run watches Q's agreement with the teacher on a distilled probe
// after every epoch; the probe does not change what the run trains.
TEST_F(CliFixture, QuantizeWithoutTestDataWatchesAProbeThatDoesNotChangeTheRun) {
  const std::string args = "quantize --method qimera --iterations 2 --batch-size 4 --warmup-epochs 0 "
                           "--observe-epochs 1 --epochs 2 --model " + card_path + common;
  const auto watched = qimera_cli(args + " --out " + (dir / "watched").string());
  ASSERT_EQ(watched.code, 0) << watched.output;
  EXPECT_THAT(watched.output, HasSubstr("agreement with the teacher on 128 images distilled from it"));
  std::ifstream metrics(dir / "watched/metrics.jsonl");
  double last = -1;
  int lines = 0;
  for (std::string line; std::getline(metrics, line); ++lines) {
    last = nlohmann::json::parse(line).at("probe_agreement").get<double>();
    EXPECT_GE(last, 0.0);
    EXPECT_LE(last, 100.0);
  }
  EXPECT_EQ(lines, 2);
  const auto summary = read_json(dir / "watched/summary.json");
  EXPECT_EQ(summary["probe"]["images"], 128);
  EXPECT_DOUBLE_EQ(summary["probe"]["final_agreement"].get<double>(), last);

  const auto blind = qimera_cli(args + " --probe-check off --out " + (dir / "blind").string());
  ASSERT_EQ(blind.code, 0) << blind.output;
  EXPECT_THAT(read_file(dir / "blind/metrics.jsonl"), Not(HasSubstr("probe_agreement")));
  EXPECT_FALSE(read_json(dir / "blind/summary.json").contains("probe"));
  testing::expect_same_state(io::read_safetensors(dir / "watched/quantized.safetensors"),
                             io::read_safetensors(dir / "blind/quantized.safetensors"));
  const auto bad = qimera_cli(args + " --probe-check sometimes --out " + (dir / "bad").string());
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.output, HasSubstr("--probe-check"));
  // Calibration has no epochs: asked for a probe it says so instead of ignoring the flag.
  const auto ptq = qimera_cli("quantize --method ptq --calib-data " + data + " --calib-batches 1 "
                              "--calib-batch-size 8 --probe-check on --no-export --model " + card_path +
                              " --out " + (dir / "ptq").string() + " --device cpu --threads 2");
  EXPECT_EQ(ptq.code, 0) << ptq.output;
  EXPECT_THAT(ptq.output, HasSubstr("ptq has no training epochs to watch"));
}

TEST(Cli, ExportHelpExplainsTheFormatAndContainers) {
  const auto help = qimera_cli("export --help");
  EXPECT_EQ(help.code, 0);
  for (const char* text : {"--format", "--out", "--int8-containers", "QuantizeLinear", "INT4", "batch"}) {
    EXPECT_THAT(help.output, HasSubstr(text));
  }
  EXPECT_THAT(qimera_cli("eval --help").output, HasSubstr("--engine"));
}

TEST_F(CliFixture, ExportWritesOnnxFromARunFolderAndErrorsAreClear) {
  const auto out = (dir / "ptq").string();
  ASSERT_EQ(qimera_cli("quantize --method ptq --wbits 4 --abits 4 --calib-data noise --calib-batches 1 "
                       "--calib-batch-size 8 --model " + card_path + " --out " + out + common).code, 0);
  const auto e = qimera_cli("export " + out + common);
  if (e.output.find("without ONNX support") != std::string::npos) GTEST_SKIP() << e.output;
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_THAT(e.output, HasSubstr(out + "/quantized.onnx"));
  EXPECT_THAT(e.output, HasSubstr("22 int4"));  // weights: 21 convolutions + the classifier
  const auto wide = qimera_cli("export " + out + "/quantized.json --int8-containers" + common);
  ASSERT_EQ(wide.code, 0) << wide.output;
  EXPECT_THAT(wide.output, HasSubstr("19 int8 (19 clamped to their n-bit range"));
  EXPECT_GT(std::filesystem::file_size(dir / "ptq/quantized.int8.onnx"),
            std::filesystem::file_size(dir / "ptq/quantized.onnx"));
  // A full-precision card exports in float.
  const auto fp = qimera_cli("export " + card_path + " --out " + (dir / "fp.onnx").string() + common);
  ASSERT_EQ(fp.code, 0) << fp.output;
  EXPECT_THAT(fp.output, HasSubstr("weights (per output channel): none quantized"));

  const auto missing = qimera_cli("export " + (dir / "nope").string() + common);
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.output, HasSubstr((dir / "nope").string()));
  qimera::testing::write_bytes(dir / "other.json", R"({"format": "qimera-metrics/1"})");
  const auto foreign = qimera_cli("export " + (dir / "other.json").string() + common);
  EXPECT_EQ(foreign.code, 1);
  EXPECT_THAT(foreign.output, HasSubstr("other.json"));
  const auto unwritable = qimera_cli("export " + out + " --out " + (dir / "other.json/x.onnx").string() + common);
  EXPECT_EQ(unwritable.code, 1);
  EXPECT_THAT(unwritable.output, HasSubstr("other.json"));
  EXPECT_NE(qimera_cli("export " + out + " --format tflite" + common).code, 0);
}

TEST_F(CliFixture, EvalInt8EngineRunsBesideTheFakeQuantizedModel) {
  const auto out = (dir / "ptq8").string();
  ASSERT_EQ(qimera_cli("quantize --method ptq --wbits 8 --abits 8 --calib-data " + data +
                       " --calib-batches 2 --calib-batch-size 8 --model " + card_path + " --out " + out + common)
                .code,
            0);
  const auto e = qimera_cli("eval --engine int8 --model " + out + "/quantized.json --data " + data +
                            " --calib-data " + data + " --calib-batches 2 --calib-batch-size 8 --json " +
                            (dir / "e.json").string() + common);
  ASSERT_EQ(e.code, 0) << e.output;
  const auto results = read_json(dir / "e.json")["results"];
  ASSERT_EQ(results.size(), 3u);  // full precision, fake-quantized, int8 engine
  EXPECT_EQ(results[2]["model"], "int8 engine 8w8a");
  EXPECT_EQ(results[2]["engine"]["engine"], "onednn");
  EXPECT_GT(results[2]["engine"]["int8_convs"].get<int>(), 15);
  EXPECT_EQ(results[2]["samples"], 24);
  // Only quantized models have an int8 form.
  const auto fp = qimera_cli("eval --engine int8 --model " + card_path + " --data " + data + common);
  EXPECT_EQ(fp.code, 1);
  EXPECT_THAT(fp.output, HasSubstr("quantized model"));
}

}  // namespace
}  // namespace qimera
