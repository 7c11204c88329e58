#include "qimera/core/error.h"
#include "qimera/core/input_file.h"
#include "qimera/core/json_file.h"
#include "qimera/experiments/results_table.h"
#include "qimera/experiments/run_outcome.h"
#include "qimera/experiments/sweep_config.h"
#include "qimera/experiments/sweep_runner.h"
#include "support/test_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sys/stat.h>

namespace qimera::experiments {
namespace {
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;

nlohmann::json two_by_two(const fs::path& out) {
  return {{"out", out.string()},
          {"seeds", {1, 2}},
          {"common", {"--model", "m.json"}},
          {"settings", {{{"name", "4w4a"}, {"args", {"--wbits", "4"}}}}},
          {"methods",
           {{{"name", "gdfq"}, {"args", {"--method", "gdfq"}}},
            {{"name", "qimera"}, {"args", {"--method", "qimera"}}}}}};
}

TEST(SweepConfig, ExpandsSeedMajorWithTheFlagsInOrder) {
  const auto runs = expand_sweep(parse_sweep_config(two_by_two("out"), "s.json"));
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].dir, fs::path("out/gdfq-4w4a-1"));
  EXPECT_EQ(runs[1].dir, fs::path("out/qimera-4w4a-1"));
  EXPECT_EQ(runs[2].dir, fs::path("out/gdfq-4w4a-2"));
  EXPECT_EQ(runs[3].seed, 2u);
  EXPECT_THAT(runs[3].args, ElementsAre("--model", "m.json", "--wbits", "4", "--method", "qimera"));
}

TEST(SweepConfig, WithoutSettingsFoldersAreMethodSeed) {
  auto j = two_by_two("out");
  j.erase("settings");
  const auto runs = expand_sweep(parse_sweep_config(j, "s.json"));
  EXPECT_EQ(runs[0].dir, fs::path("out/gdfq-1"));
}

TEST(SweepConfig, RefusesWhatWouldBreakTheGrid) {
  auto j = two_by_two("out");
  j["methods"][0]["args"].push_back("--seed");
  EXPECT_THAT(testing::error_of([&] { parse_sweep_config(j, "s.json"); }),
              HasSubstr("--seed is set by the sweep"));
  j = two_by_two("out");
  j["common"].push_back("--out=x");
  EXPECT_THAT(testing::error_of([&] { parse_sweep_config(j, "s.json"); }),
              HasSubstr("--out is set by the sweep"));
  j = two_by_two("out");
  j["methods"][1]["name"] = "gdfq";
  EXPECT_THAT(testing::error_of([&] { parse_sweep_config(j, "s.json"); }),
              HasSubstr("'gdfq' is used twice"));
  j = two_by_two("out");
  j["methods"][1]["name"] = "../up";
  EXPECT_THAT(testing::error_of([&] { parse_sweep_config(j, "s.json"); }),
              HasSubstr("becomes a folder name"));
  j = two_by_two("out");
  j["seeds"] = {1, 1};
  EXPECT_THAT(testing::error_of([&] { parse_sweep_config(j, "s.json"); }),
              HasSubstr("seed 1 is listed twice"));
  j = two_by_two("out");
  j["seed"] = 3;
  EXPECT_THAT(testing::error_of([&] { parse_sweep_config(j, "s.json"); }),
              HasSubstr("unknown key 'seed'"));
  j = two_by_two("out");
  j.erase("methods");
  EXPECT_THAT(testing::error_of([&] { parse_sweep_config(j, "s.json"); }),
              HasSubstr("at least one method"));
}

TEST(SweepConfig, OnlyKeepsTheNamedMethodsInTheFilesOrder) {
  const auto config = parse_sweep_config(two_by_two("out"), "s.json");
  const auto only = only_methods(config, {"qimera"});
  ASSERT_EQ(only.methods.size(), 1u);
  EXPECT_EQ(expand_sweep(only).size(), 2u);  // 1 method x 1 setting x 2 seeds
  EXPECT_THAT(testing::error_of([&] { only_methods(config, {"zaq"}); }),
              HasSubstr("--only zaq: the sweep has no method of that name (it has gdfq, qimera)"));
}

TEST(SweepConfig, OnlySettingsKeepsTheNamedSettingsInTheFilesOrder) {
  auto j = two_by_two("out");
  j["settings"].push_back({{"name", "5w5a"}, {"args", {"--wbits", "5"}}});
  const auto config = parse_sweep_config(j, "s.json");
  ASSERT_EQ(expand_sweep(config).size(), 8u);  // 2 methods x 2 settings x 2 seeds
  const auto only = only_settings(config, {"5w5a"});
  const auto runs = expand_sweep(only);
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].dir, fs::path("out/gdfq-5w5a-1"));
  EXPECT_EQ(runs[3].dir, fs::path("out/qimera-5w5a-2"));
  EXPECT_EQ(expand_sweep(only_settings(only_methods(config, {"qimera"}), {"4w4a"})).size(), 2u);
  EXPECT_THAT(testing::error_of([&] { only_settings(config, {"3w3a"}); }),
              HasSubstr("--only-settings 3w3a: the sweep has no setting of that name (it has 4w4a, 5w5a)"));
  j.erase("settings");
  EXPECT_THAT(testing::error_of([&] { only_settings(parse_sweep_config(j, "s.json"), {"4w4a"}); }),
              HasSubstr("(it has none)"));
}

TEST(SweepConfig, OnlySeedsKeepsTheNamedSeedsInTheFilesOrder) {
  auto j = two_by_two("out");
  j["seeds"] = {3, 1, 2};
  const auto config = parse_sweep_config(j, "s.json");
  const auto runs = expand_sweep(only_seeds(config, {2, 3}));
  ASSERT_EQ(runs.size(), 4u);  // 2 methods x 1 setting x seeds 3 and 2
  EXPECT_EQ(runs[0].dir, fs::path("out/gdfq-4w4a-3"));
  EXPECT_EQ(runs[3].dir, fs::path("out/qimera-4w4a-2"));
  EXPECT_THAT(testing::error_of([&] { only_seeds(config, {4}); }),
              HasSubstr("--only-seeds 4: the sweep has no such seed (it has 3, 1, 2)"));
}

// The sweep files in sweeps/ are the recipes of docs/results.md: a typo in one would surface only
// when its run starts, possibly hours into a sweep.
TEST(SweepConfig, EveryShippedSweepFileParsesNamesAModelThatExistsAndWritesUnderRuns) {
  const fs::path root = QIMERA_SOURCE_DIR;
  int files = 0;
  for (const auto& entry : fs::directory_iterator(root / "sweeps")) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    SCOPED_TRACE(entry.path().string());
    const auto config = read_sweep_config(entry.path());
    const auto runs = expand_sweep(config);
    EXPECT_EQ(runs.size(), config.seeds.size() * config.methods.size() *
                               std::max<size_t>(1, config.settings.size()));
    const auto model = std::find(config.common.begin(), config.common.end(), "--model");
    ASSERT_NE(model, config.common.end());
    ASSERT_NE(model + 1, config.common.end());
    EXPECT_TRUE(fs::exists(root / *(model + 1))) << *(model + 1);
    EXPECT_EQ(config.out.parent_path(), fs::path("runs/sweeps"));
  }
  EXPECT_GE(files, 5);
}

TEST(SweepConfig, AFileErrorNamesTheFile) {
  TempDir dir;
  testing::write_bytes(dir / "bad.json", "{\"out\": ");
  EXPECT_THAT(testing::error_of([&] { read_sweep_config(dir / "bad.json"); }), HasSubstr("bad.json"));
}

// A run folder as `qimera quantize` leaves it.
void write_summary(const fs::path& dir, uint64_t seed, double naive, double final_top1,
                   std::optional<double> best, double wall) {
  auto rows = nlohmann::json::array();
  rows.push_back({{"label", "full precision"}, {"note", ""}, {"top1", 95.0}});
  rows.push_back({{"label", "naive 4w4a"}, {"note", "no training"}, {"top1", naive}});
  if (best) {
    rows.push_back({{"label", "m 4w4a"}, {"note", "final epoch (8)"}, {"top1", final_top1}});
    rows.push_back(
        {{"label", "m 4w4a"}, {"note", "best epoch (2), selected on the test set"}, {"top1", *best}});
  } else {
    rows.push_back({{"label", "m 4w4a"}, {"note", "min/max ranges"}, {"top1", final_top1}});
  }
  write_json(dir / "summary.json",
             {{"seed", seed}, {"rows", rows}, {"wall_seconds", wall},
              {"result", {{"best_epoch_selected_on_test_set", {{"epoch", 2}}}}}});
}

TEST(RunOutcome, ReadsTheRowsOfATrainingAndACalibrationRun) {
  TempDir dir;
  write_summary(dir.path(), 7, 89.5, 93.25, 94.0, 600);
  const auto o = read_run_outcome(dir.path());
  ASSERT_TRUE(o);
  EXPECT_EQ(o->seed, 7u);
  EXPECT_DOUBLE_EQ(*o->full_precision, 95.0);
  EXPECT_DOUBLE_EQ(*o->naive, 89.5);
  EXPECT_DOUBLE_EQ(*o->final_top1, 93.25);
  EXPECT_DOUBLE_EQ(*o->best_top1, 94.0);
  EXPECT_EQ(o->best_epoch, 2);
  EXPECT_DOUBLE_EQ(*o->wall_seconds, 600);
  write_summary(dir.path(), 7, 89.5, 93.15, std::nullopt, 60);
  const auto calibration = read_run_outcome(dir.path());
  EXPECT_DOUBLE_EQ(*calibration->final_top1, 93.15);
  EXPECT_FALSE(calibration->best_top1);
  EXPECT_FALSE(read_run_outcome(dir / "missing"));
}

TEST(RunOutcome, APreSplitSummaryIsRefusedByName) {
  TempDir dir;
  write_json(dir / "summary.json", {{"final", 93.0}});
  EXPECT_THAT(testing::error_of([&] { read_run_outcome(dir.path()); }),
              HasSubstr("summary.json has no result rows"));
}

TEST(ResultsTable, SpreadIsTheSampleStandardDeviation) {
  const auto s = spread({93.0, 94.0, 95.5});
  EXPECT_NEAR(*s.mean, 94.1666667, 1e-6);
  // Deviations -1.1667, -0.1667, 1.3333: squares sum to 3.1667; / 2, sqrt = 1.2583.
  EXPECT_NEAR(*s.std, 1.2583057, 1e-6);
  EXPECT_FALSE(spread({93.0}).std);
  EXPECT_FALSE(spread({}).mean);
}

TEST(ResultsTable, GroupsSeedsCountsNaiveOncePerSeedAndMarksMissingRuns) {
  TempDir dir;
  const auto config = parse_sweep_config(two_by_two(dir.path()), "s.json");
  write_summary(dir / "gdfq-4w4a-1", 1, 89.0, 92.0, 94.0, 500);
  write_summary(dir / "gdfq-4w4a-2", 2, 90.0, 93.0, 94.5, 700);
  write_summary(dir / "qimera-4w4a-1", 1, 89.0, 93.5, 94.25, 600);
  // qimera-4w4a-2 never finished: a folder without summary.json.
  fs::create_directories(dir / "qimera-4w4a-2");
  const auto table = collect_results(config);
  EXPECT_EQ(table.finished, 3u);
  EXPECT_EQ(table.planned, 4u);
  ASSERT_EQ(table.rows.size(), 3u);
  EXPECT_EQ(table.rows[0].method, "naive");
  EXPECT_EQ(table.rows[0].final_by_seed.size(), 2u);  // once per seed, not once per run
  const auto gdfq = table.rows[1].final_spread();
  EXPECT_DOUBLE_EQ(*gdfq.mean, 92.5);
  EXPECT_NEAR(*gdfq.std, 0.70710678, 1e-7);
  const auto md = table.markdown();
  EXPECT_THAT(md, HasSubstr("| 4w4a | gdfq | 92.50 +- 0.71 | 92.00, 93.00 | 94.25 | 600 |"));
  EXPECT_THAT(md, HasSubstr("| 4w4a | qimera | 93.50 (1 of 2 seeds) | 93.50 | 94.25 | 600 |"));
  EXPECT_THAT(md, HasSubstr("3 of 4 runs finished"));
  EXPECT_THAT(md, HasSubstr("Full precision: 95.00"));
  // qimera (one seed, 93.50) is the best: gdfq's gap has no t and no spread verdict.
  EXPECT_THAT(table.csv(),
              HasSubstr("4w4a,gdfq,2,2,92.5000,0.7071,92.00;93.00,1 2,94.2500,600.0,-1.0000,,\n"));
  const auto j = table.json();
  EXPECT_DOUBLE_EQ(j["rows"][1]["final_epoch_top1"]["per_seed"]["2"].get<double>(), 93.0);
  EXPECT_TRUE(j["rows"][2]["final_epoch_top1"]["std"].is_null());
  write_results(table, dir.path());
  EXPECT_EQ(read_file(dir / "table.md"), md);
  EXPECT_EQ(read_json(dir / "table.json"), j);
}

// A run whose model fell to chance (summary.json "result"."collapses") is marked wherever its value
// shows, so a failed run does not pass for a method's spread.
TEST(ResultsTable, MarksARunWhoseModelCollapsed) {
  TempDir dir;
  const auto config = parse_sweep_config(two_by_two(dir.path()), "s.json");
  write_summary(dir / "gdfq-4w4a-1", 1, 89.0, 92.0, 94.0, 500);
  write_summary(dir / "gdfq-4w4a-2", 2, 90.0, 11.0, 94.5, 700);
  auto summary = read_json(dir / "gdfq-4w4a-2" / "summary.json");
  summary["result"]["collapses"] = {"epoch 6: test_top1 fell to 10.34% (chance 10.00%; 95.02% at best, in epoch 1)"};
  write_json(dir / "gdfq-4w4a-2" / "summary.json", summary);
  EXPECT_EQ(read_run_outcome(dir / "gdfq-4w4a-2")->collapses.size(), 1u);
  const auto table = collect_results(config);
  const auto& gdfq = table.rows[1];
  EXPECT_THAT(gdfq.collapsed_seeds, ElementsAre(2u));
  const auto md = table.markdown();
  EXPECT_THAT(md, HasSubstr("| 92.00, 11.00 (collapsed) |"));
  EXPECT_THAT(md, HasSubstr("(collapsed): in that run the model fell to chance"));
  // Lower rates first: a rollback restarts from an epoch that may already be damaged. Then the
  // activation ranges, which alone can bring a 3-bit model to chance, and how to find the culprit.
  EXPECT_THAT(md, HasSubstr("What to try: rerun with lower learning rates (--lr-q, --lr-g); "));
  EXPECT_THAT(md, HasSubstr("if the activation ranges are to blame (qimera eval --act-ranges-from:"));
  EXPECT_THAT(md, HasSubstr("keep ranges known to work (quantize --act-ranges-from PTQ.json"));
  EXPECT_THAT(md, HasSubstr("--on-collapse rollback helps only while the epoch before the fall"));
  EXPECT_THAT(table.csv(), HasSubstr(",2\n"));
  EXPECT_EQ(table.json()["rows"][1]["final_epoch_top1"]["collapsed_seeds"].dump(), "[2]");
  // A summary with a malformed list is an error naming it.
  summary["result"]["collapses"] = "epoch 6";
  write_json(dir / "gdfq-4w4a-2" / "summary.json", summary);
  EXPECT_THAT(testing::error_of([&] { read_run_outcome(dir / "gdfq-4w4a-2"); }),
              HasSubstr("summary.json: result.collapses is not a list"));
}

TEST(ResultsTable, WelchTIsTheGapOverItsStandardError) {
  // Means 2 and 5, both std 1, n 3: se sqrt(1/3 + 1/3) = 0.8165, t = -3 / 0.8165.
  EXPECT_NEAR(*welch_t(spread({1, 2, 3}), spread({4, 5, 6})), -3.6742346, 1e-6);
  EXPECT_FALSE(welch_t(spread({1}), spread({4, 5})));        // one seed: no spread
  EXPECT_FALSE(welch_t(spread({1, 1}), spread({2, 2})));     // no spread at all: t undefined
}

TEST(ResultsTable, RanksEachSettingAndSaysWhetherTheGapToTheBestIsBeyondTheSpread) {
  TempDir dir;
  const auto config = parse_sweep_config(two_by_two(dir.path()), "s.json");
  write_summary(dir / "gdfq-4w4a-1", 1, 89.0, 92.0, 94.0, 500);
  write_summary(dir / "gdfq-4w4a-2", 2, 90.0, 93.0, 94.5, 700);
  write_summary(dir / "qimera-4w4a-1", 1, 89.0, 92.6, 94.0, 600);
  write_summary(dir / "qimera-4w4a-2", 2, 90.0, 93.0, 94.0, 600);
  const auto table = collect_results(config);
  ASSERT_EQ(table.rows.size(), 3u);  // naive, gdfq, qimera
  // qimera 92.80 +- 0.283 is the best; gdfq 92.50 +- 0.707: gap -0.30, se sqrt(0.5/2 + 0.08/2)
  // = 0.5385, t -0.557, inside gdfq's spread; naive 89.50 +- 0.707: gap -3.30, t -6.128, beyond.
  EXPECT_TRUE(table.versus_best(2).is_best);
  const auto gdfq = table.versus_best(1);
  EXPECT_FALSE(gdfq.is_best);
  EXPECT_NEAR(*gdfq.gap, -0.30, 1e-9);
  EXPECT_NEAR(*gdfq.welch_t, -0.5570860, 1e-6);
  EXPECT_EQ(gdfq.beyond_spread, false);
  const auto naive = table.versus_best(0);
  EXPECT_NEAR(*naive.welch_t, -6.1279, 1e-4);
  EXPECT_EQ(naive.beyond_spread, true);
  const auto md = table.markdown();
  const auto best = md.find("| 4w4a | qimera | 92.80 +- 0.28 | best | - | - |");
  const auto second = md.find("| 4w4a | gdfq | 92.50 +- 0.71 | -0.30 | -0.6 | no |");
  const auto last = md.find("| 4w4a | naive (no training, noise ranges) | 89.50 +- 0.71 | -3.30 | -6.1 | yes |");
  ASSERT_NE(best, std::string::npos) << md;
  ASSERT_NE(second, std::string::npos) << md;
  ASSERT_NE(last, std::string::npos) << md;
  EXPECT_LT(best, second);
  EXPECT_LT(second, last);
  const auto j = table.json();
  EXPECT_NEAR(j["rows"][1]["versus_best"]["welch_t"].get<double>(), -0.5570860, 1e-6);
  EXPECT_FALSE(j["rows"][1]["versus_best"]["gap_larger_than_both_spreads"].get<bool>());
  EXPECT_TRUE(j["rows"][2]["versus_best"]["is_best"].get<bool>());
  EXPECT_TRUE(j["rows"][2]["versus_best"]["welch_t"].is_null());
}

// A stand-in for the qimera binary: records its arguments, writes a summary whose final top-1 is
// 90 + seed, fails for --method broken, and marks a resumed run.
fs::path fake_qimera(const fs::path& dir) {
  const auto path = dir / "fake-qimera";
  std::ofstream(path) << R"SH(#!/bin/sh
out=""; seed=""; method=""; resume=0; threads=""
for a in "$@"; do
  case "$prev" in --out) out="$a";; --seed) seed="$a";; --method) method="$a";; --threads) threads="$a";; esac
  [ "$a" = "--resume" ] && resume=1
  prev="$a"
done
echo "$*" >> ")SH" << (dir / "calls.txt").string() << R"SH("
echo "threads $threads omp $OMP_NUM_THREADS"
[ "$method" = broken ] && { echo "broken on purpose" >&2; exit 3; }
[ "$method" = garbled ] && { mkdir -p "$out"; echo '{"rows": [' > "$out/summary.json"; exit 0; }
mkdir -p "$out"
cat > "$out/summary.json" <<JSON
{"seed": $seed, "wall_seconds": 1.5, "rows": [{"label": "naive 4w4a", "note": "", "top1": 80},
 {"label": "m", "note": "final epoch (1)", "top1": $((90 + seed)).$resume}]}
JSON
)SH";
  ::chmod(path.c_str(), 0755);
  return path;
}

std::vector<std::string> lines(const fs::path& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(SweepRunner, RunsWhatIsMissingResumesWhatHasACheckpointAndReportsFailures) {
  TempDir dir;
  const auto out = dir / "sweep";
  auto j = two_by_two(out);
  j["methods"].push_back({{"name", "broken"}, {"args", {"--method", "broken"}}});
  const auto config = parse_sweep_config(j, "s.json");
  // Before the sweep: one run finished, one with a checkpoint, one killed before its checkpoint.
  write_summary(out / "gdfq-4w4a-1", 1, 80, 99.0, std::nullopt, 1);
  fs::create_directories(out / "qimera-4w4a-1");
  testing::write_bytes(out / "qimera-4w4a-1" / "checkpoint.pt", "x");
  fs::create_directories(out / "gdfq-4w4a-2");
  testing::write_bytes(out / "gdfq-4w4a-2" / "config.json", "{}");
  EXPECT_EQ(run_state(out / "gdfq-4w4a-1"), RunState::Finished);
  EXPECT_EQ(run_state(out / "qimera-4w4a-1"), RunState::Resumable);
  EXPECT_EQ(run_state(out / "gdfq-4w4a-2"), RunState::Fresh);

  RunnerOptions options;
  options.executable = fake_qimera(dir.path());
  options.jobs = 2;
  options.threads_per_job = 3;
  std::vector<std::string> log;
  const auto report = run_sweep(config, options, [&](const std::string& l) { log.push_back(l); });
  EXPECT_EQ(report.skipped, 1);
  EXPECT_EQ(report.finished, 3);  // qimera-1 (resumed), gdfq-2, qimera-2
  ASSERT_EQ(report.failures.size(), 2u);  // broken-1, broken-2
  EXPECT_THAT(report.failures[0], HasSubstr("exit status 3"));
  EXPECT_THAT(read_file(out / "broken-4w4a-1.log"), HasSubstr("broken on purpose"));
  EXPECT_THAT(read_file(out / "gdfq-4w4a-2.log"), HasSubstr("threads 3 omp 3"));
  const auto calls = lines(dir / "calls.txt");
  ASSERT_EQ(calls.size(), 5u);  // the finished run was not started again
  for (const auto& call : calls) {
    EXPECT_THAT(call, HasSubstr("quantize --model m.json --wbits 4 --method"));
  }
  EXPECT_EQ(std::count_if(calls.begin(), calls.end(),
                          [](const std::string& c) { return c.find("--resume") != std::string::npos; }),
            1);
  EXPECT_FALSE(fs::exists(out / "gdfq-4w4a-2" / "config.json"));  // started over, not resumed
  const auto table = collect_results(config);
  EXPECT_EQ(table.finished, 4u);
  EXPECT_EQ(table.rows[2].final_by_seed[0].second, 91.1);  // qimera seed 1 was resumed

  // Again: everything that can finish has; only the broken runs are tried once more.
  const auto again = run_sweep(config, options, [](const std::string&) {});
  EXPECT_EQ(again.skipped, 4);
  EXPECT_EQ(again.failures.size(), 2u);
  EXPECT_EQ(lines(dir / "calls.txt").size(), 7u);
}

TEST(SweepRunner, AnUnreadableSummaryIsAFailedRunNotTheEndOfTheSweep) {
  TempDir dir;
  auto j = two_by_two(dir / "sweep");
  j["methods"][0] = {{"name", "garbled"}, {"args", {"--method", "garbled"}}};
  RunnerOptions options;
  options.executable = fake_qimera(dir.path());
  options.threads_per_job = 1;
  const auto report = run_sweep(parse_sweep_config(j, "s.json"), options, [](const std::string&) {});
  EXPECT_EQ(report.finished, 2);  // qimera, both seeds
  ASSERT_EQ(report.failures.size(), 2u);
  EXPECT_THAT(report.failures[0], HasSubstr("garbled-4w4a-1/summary.json"));
}

TEST(SweepRunner, ADryRunPrintsTheCommandsAndRunsNothing) {
  TempDir dir;
  const auto config = parse_sweep_config(two_by_two(dir / "sweep"), "s.json");
  RunnerOptions options;
  options.executable = fake_qimera(dir.path());
  options.threads_per_job = 1;
  options.dry_run = true;
  std::vector<std::string> log;
  run_sweep(config, options, [&](const std::string& l) { log.push_back(l); });
  ASSERT_EQ(log.size(), 5u);
  EXPECT_THAT(log[1], HasSubstr("quantize --model m.json --wbits 4 --method gdfq --seed 1 --threads 1 --out"));
  EXPECT_FALSE(fs::exists(dir / "calls.txt"));
  EXPECT_FALSE(fs::exists(dir / "sweep"));
}

TEST(SweepRunner, AMissingProgramIsAnErrorBeforeAnythingRuns) {
  TempDir dir;
  const auto config = parse_sweep_config(two_by_two(dir / "sweep"), "s.json");
  RunnerOptions options;
  options.executable = dir / "no-such-qimera";
  EXPECT_THROW(run_sweep(config, options, [](const std::string&) {}), Error);
}

}  // namespace
}  // namespace qimera::experiments
