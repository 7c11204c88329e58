#include "qimera/analysis/analyze.h"
#include "qimera/analysis/confusing_samples.h"
#include "qimera/analysis/report.h"
#include "qimera/data/dataset_spec.h"
#include "qimera/data/idx.h"
#include "qimera/data/loader.h"
#include "qimera/core/input_file.h"
#include "qimera/core/json_file.h"
#include "qimera/core/options.h"
#include "qimera/data/image_codec.h"
#include "qimera/deploy/model_card.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/state_dict.h"
#include "qimera/methods/method.h"
#include "qimera/models/zoo.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <sys/wait.h>

namespace qimera::analysis {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::TempDir;

TEST(BoundaryMetrics, DistanceRatioAndIntrusionByHand) {
  // A straight path: ratio 1. A detour (0,0) -> (1,1) -> (2,0): 2 sqrt(2) / 2.
  const auto straight = at::tensor({0.f, 0.f, 1.f, 0.f, 2.f, 0.f}).reshape({3, 2});
  const auto detour = at::tensor({0.f, 0.f, 1.f, 1.f, 2.f, 0.f}).reshape({3, 2});
  // Probabilities over 3 classes; the pair is (0, 2): other-class mass 0, 0.5, 0.25.
  const auto p = at::tensor({0.5f, 0.f, 0.5f, 0.25f, 0.5f, 0.25f, 0.f, 0.25f, 0.75f}).reshape({3, 3});
  EXPECT_NEAR(path_metrics(straight, p, 0, 2).distance_ratio, 1.0, 1e-12);
  EXPECT_NEAR(path_metrics(detour, p, 0, 2).distance_ratio, std::sqrt(2.0), 1e-7);
  EXPECT_NEAR(path_metrics(detour, p, 0, 2).intrusion, 0.25, 1e-7);
  // A path that ends where it starts has no straight distance: no ratio, not infinity.
  const auto loop = at::tensor({0.f, 0.f, 1.f, 1.f, 0.f, 0.f}).reshape({3, 2});
  EXPECT_TRUE(std::isnan(path_metrics(loop, p, 0, 2).distance_ratio));
}

TEST(BoundaryMetrics, AllPairsForFewClassesAFixedSampleForMany) {
  const auto ten = class_pairs(10, 45, 0);
  ASSERT_EQ(ten.size(), 45u);
  EXPECT_EQ(ten.front(), (std::pair<int64_t, int64_t>{0, 1}));
  EXPECT_EQ(ten.back(), (std::pair<int64_t, int64_t>{8, 9}));
  const auto many = class_pairs(100, 50, 7);
  ASSERT_EQ(many.size(), 50u);
  EXPECT_EQ(many, class_pairs(100, 50, 7));  // reproducible
  EXPECT_NE(many, class_pairs(100, 50, 8));
  for (const auto& [a, b] : many) EXPECT_LT(a, b);
}

TEST(FeaturePca, FindsTheDirectionOfLargestSpread) {
  // Points along (3, 4, 0) / 5 with a small spread along (0, 0, 1): PC1 holds nearly everything
  // and the first coordinate is t (up to sign).
  const auto t = at::linspace(-2, 2, 21);
  const auto x = at::stack({0.6 * t, 0.8 * t, 0.01 * at::cos(7 * t)}, 1);
  const auto pca = pca_2d(x);
  EXPECT_GT(pca.explained[0], 0.999);
  const auto pc1 = pca.coordinates.select(1, 0);
  const double sign = pc1[20].item<double>() > 0 ? 1 : -1;
  EXPECT_TRUE(at::allclose(sign * pc1, t, 1e-4, 1e-4));
}

TEST(SampleGrid, TilesAndPixelsAsTheTeacherSawThem) {
  data::Preprocess pre;
  pre.mean = {0.5f};
  pre.std = {0.25f};
  // x = 0 -> 0.5 -> 128; x = 2 -> 1.0 -> 255; x = -4 -> clamped to 0.
  const auto pixels = to_pixels(at::tensor({0.f, 2.f, -4.f}).reshape({3, 1, 1, 1}), pre);
  EXPECT_EQ(pixels.flatten()[0].item<int>(), 128);
  EXPECT_EQ(pixels.flatten()[1].item<int>(), 255);
  EXPECT_EQ(pixels.flatten()[2].item<int>(), 0);
  const auto images = at::full({5, 1, 4, 3}, 7, at::kByte);
  const auto grid = tile_images(images, 2);  // 3 rows of 2: 3 * 6 + 2 by 2 * 5 + 2
  EXPECT_EQ(grid.sizes(), (at::IntArrayRef{1, 20, 12}));
  EXPECT_EQ(grid[0][2][2].item<int>(), 7);    // first tile
  EXPECT_EQ(grid[0][1][1].item<int>(), 128);  // border
  EXPECT_EQ(grid[0][14][9].item<int>(), 128);  // the missing sixth tile stays grey
}

// A tiny teacher's card and a data-free run of `method` on it, two short epochs.
class AnalysisFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    at::manual_seed(0);
    auto model = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 3, 1, 8});
    io::write_safetensors(dir / "model.safetensors", io::state_dict_of(*model));
    deploy::ModelCard card;
    card.spec = model->spec();
    card.weights = dir / "model.safetensors";
    card.preprocess = data::preprocess_preset("mnist");
    deploy::write_model_card(dir / "model.json", card);
  }

  fs::path train(const std::string& method, nlohmann::json options = {}) {
    const auto& info = methods::find_method(method);
    auto m = info.make();
    if (m->trains()) {
      options.update({{"epochs", 1}, {"iterations", 3}, {"batch_size", 12}, {"warmup_epochs", 0},
                      {"observe_epochs", 1}, {"log_every", 100}});
    }
    apply_json([&](OptionVisitor& v) { m->describe(v); }, options, "test options");
    m->validate();
    methods::MethodContext context;
    const auto card = deploy::resolve_model((dir / "model.json").string());
    context.teacher = deploy::load_classifier(card, c10::kCPU);
    context.folder = methods::RunFolder{dir / method};
    context.preprocess = card.preprocess;
    context.workers = 0;
    methods::run_method(info, *m, context,
                        {{"provenance", {{"model", (dir / "model.json").string()}}}});
    return dir / method;
  }

  AnalyzeOptions small() const {
    AnalyzeOptions o;
    o.grid.per_row = 4;
    o.boundary.steps = 10;
    o.boundary.noise_draws = 2;
    o.pca.per_kind = 16;
    o.pca.path_steps = 5;
    return o;
  }

  TempDir dir;
};

TEST_F(AnalysisFixture, QimeraRunGivesGridPcaAndBoundaryMetrics) {
  const auto run = train("qimera", {{"se_p", 0.5}});
  const auto report = analyze_run(run, small(), c10::kCPU);
  // 3 class rows and 2 pair rows of 4 images of 8 x 8: 5 * 10 + 2 by 4 * 10 + 2, grey.
  const auto grid = data::decode_image(read_file(run / "analysis/grid.png"), "grid.png");
  EXPECT_EQ(grid.size(1), 52);
  EXPECT_EQ(grid.size(2), 42);
  ASSERT_EQ(report.boundary.size(), 4u);  // {superposed, pixel} x {z = 0, draws}
  EXPECT_EQ(report.boundary[0].path, "superposed embedding");
  EXPECT_EQ(report.boundary[0].paths, 3);  // 3 pairs at z = 0
  EXPECT_EQ(report.boundary[2].paths, 6);  // 3 pairs x 2 draws
  for (const auto& row : report.boundary) {
    EXPECT_GE(row.ratio_mean, 1.0 - 1e-9) << row.path;  // a path is never shorter than the chord
    EXPECT_GE(row.intrusion_mean, 0.0);
    EXPECT_LE(row.intrusion_mean, 1.0);
  }
  size_t generated = 0, superposed = 0, path = 0;
  for (const auto& p : report.pca.points) {
    generated += p.kind == "generated";
    superposed += p.kind == "superposed";
    path += p.kind == "path";
  }
  EXPECT_EQ(generated, 16u);
  EXPECT_EQ(superposed, 16u);
  EXPECT_EQ(path, 6u);
  EXPECT_LE(report.pca.explained[0] + report.pca.explained[1], 1.0 + 1e-9);
  EXPECT_GE(report.pca.explained[0], report.pca.explained[1]);
  const auto png = data::decode_image(read_file(run / "analysis/pca.png"), "pca.png");
  EXPECT_EQ(png.size(2), 1000);
  EXPECT_THAT(read_file(run / "analysis/pca.svg"), HasSubstr("<svg"));
  const auto summary = read_json(run / "analysis/analysis.json");
  EXPECT_EQ(summary["method"], "qimera");
  EXPECT_THAT(summary["boundary"]["choices"].get<std::string>(), HasSubstr("softmax"));
  // The same seed gives the same grid: the analysis is reproducible.
  const auto first = read_file(run / "analysis/grid.png");
  auto again = small();
  again.out = dir / "again";
  again.plot = false;
  analyze_run(run, again, c10::kCPU);
  EXPECT_EQ(read_file(dir / "again/grid.png"), first);
}

TEST_F(AnalysisFixture, PublishedGdfqHasOnlyPixelPathsAndNoneAtZeroNoise) {
  const auto run = train("gdfq");
  auto options = small();
  options.plot = false;
  const auto report = analyze_run(run, options, c10::kCPU);
  ASSERT_EQ(report.boundary.size(), 2u);
  EXPECT_EQ(report.boundary[0].path, "pixel mixup");
  EXPECT_THAT(report.boundary[0].note, HasSubstr("not defined"));
  EXPECT_EQ(report.boundary[1].paths, 6);
  // No pair rows for a generator that cannot superpose: 3 rows.
  const auto grid = data::decode_image(read_file(run / "analysis/grid.png"), "grid.png");
  EXPECT_EQ(grid.size(1), 32);
}

TEST_F(AnalysisFixture, WhatCannotBeAnalysedIsAClearError) {
  EXPECT_THAT(testing::error_of([&] { analyze_run(dir / "nothing-here", small(), c10::kCPU); }),
              HasSubstr("is not a run folder"));
  // Another teacher than the run's (4 classes, not 3) is refused, naming both.
  const auto qimera = train("qimera");
  auto other = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 4, 1, 8});
  io::write_safetensors(dir / "other.safetensors", io::state_dict_of(*other));
  deploy::ModelCard card;
  card.spec = other->spec();
  card.weights = dir / "other.safetensors";
  card.preprocess = data::preprocess_preset("mnist");
  deploy::write_model_card(dir / "other.json", card);
  auto with_other = small();
  with_other.model = (dir / "other.json").string();
  EXPECT_THAT(testing::error_of([&] { analyze_run(qimera, with_other, c10::kCPU); }),
              HasSubstr("is not the teacher of"));
  const auto run = train("ptq", {{"calib_batches", 1}, {"calib_batch_size", 8}});
  EXPECT_THAT(testing::error_of([&] { analyze_run(run, small(), c10::kCPU); }),
              HasSubstr("has no generator to analyse"));
}

TEST_F(AnalysisFixture, ConfusingSamplesAreBelowTheThresholdAndMatchedByClass) {
  // 60 grey 8 x 8 images of 3 classes; a random teacher, threshold at its median confidence, so
  // about half of them are confusing.
  const auto labels = at::arange(60, at::kLong).remainder(3);
  const auto images = at::randint(0, 255, {60, 1, 8, 8}).to(at::kByte);
  data::write_idx_images(dir / "images", images);
  data::write_idx_labels(dir / "labels", labels);
  const auto card = deploy::resolve_model((dir / "model.json").string());
  auto teacher = deploy::load_classifier(card, c10::kCPU);
  auto dataset = data::open_dataset(
      data::parse_dataset_spec("idx:" + (dir / "images").string() + "," + (dir / "labels").string()), dir.path());
  data::LoaderOptions loading;
  loading.batch_size = 16;
  loading.workers = 0;
  data::BatchLoader loader(dataset, card.preprocess, loading);
  loader.start_epoch(0);
  std::vector<at::Tensor> all_images, all_labels;
  while (auto b = loader.next()) all_images.push_back(b->images), all_labels.push_back(b->labels);
  const auto x = at::cat(all_images);
  const auto y = at::cat(all_labels);
  const auto top = at::softmax(teacher->forward(x), 1).amax(1).detach();
  SelectionOptions options;
  options.max_confidence = top.median().item<double>();
  options.per_class = 4;
  const auto s = select_confusing(*teacher, loader, options);
  EXPECT_EQ(s.scanned, 60);
  ASSERT_EQ(s.below_threshold.size(), kSurveyThresholds.size());
  for (size_t t = 0; t < kSurveyThresholds.size(); ++t) {
    EXPECT_EQ(s.below_threshold[t], top.lt(kSurveyThresholds[t]).sum().item<int64_t>()) << kSurveyThresholds[t];
  }
  // Per class, as counted here directly.
  for (int64_t c = 0; c < 3; ++c) {
    const auto expected = (top.lt(options.max_confidence) & y.eq(c)).sum().item<int64_t>();
    EXPECT_EQ(s.available[c], expected) << "class " << c;
    const auto taken = s.confusing_labels.eq(c).sum().item<int64_t>();
    EXPECT_EQ(taken, std::min<int64_t>(expected, 4));
    EXPECT_EQ(s.unconfusing_labels.eq(c).sum().item<int64_t>(), taken);  // same class balance
  }
  ASSERT_GT(s.confusing_images.size(0), 0);
  EXPECT_TRUE(at::softmax(teacher->forward(s.confusing_images), 1).amax(1).lt(options.max_confidence).all().item<bool>());
  EXPECT_TRUE(at::softmax(teacher->forward(s.unconfusing_images), 1).amax(1).ge(options.max_confidence).all().item<bool>());
  // Written as a --real-samples file a data-free run reads back (and trains with: gradients on).
  write_real_samples(dir / "confusing.safetensors", s.confusing_images, s.confusing_labels);
  const auto run = train("gdfq", {{"real_samples", (dir / "confusing.safetensors").string()}});
  EXPECT_TRUE(fs::exists(run / "checkpoint.pt"));
}

TEST(Report, EscapesAndEncodes) {
  EXPECT_EQ(html_escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
  EXPECT_EQ(base64("Man"), "TWFu");
  EXPECT_EQ(base64("Ma"), "TWE=");
  EXPECT_EQ(base64("M"), "TQ==");
  EXPECT_EQ(base64(""), "");
}

TEST_F(AnalysisFixture, ReportIsOneSelfContainedPageThatABrowserRenders) {
  const auto qimera = train("qimera", {{"se_p", 0.5}});
  const auto gdfq = train("gdfq");
  auto options = small();
  analyze_run(qimera, options, c10::kCPU);
  const auto page_path = dir / "report/report.html";
  write_report({qimera, gdfq}, page_path);
  const auto page = read_file(page_path);
  EXPECT_THAT(page, HasSubstr("<h2 id='qimera'>qimera</h2>"));
  EXPECT_THAT(page, HasSubstr("<h2 id='gdfq'>gdfq</h2>"));
  EXPECT_THAT(page, HasSubstr("data:image/png;base64,"));      // the grid
  EXPECT_THAT(page, HasSubstr("data:image/svg+xml;base64,"));  // gnuplot figures
  EXPECT_THAT(page, HasSubstr("Boundary metrics (Table 5"));
  EXPECT_THAT(page, HasSubstr("No analysis yet: <code>qimera analyze"));  // gdfq was not analysed
  // Self-contained: nothing is fetched from anywhere.
  EXPECT_THAT(page, ::testing::Not(HasSubstr("http://")));
  EXPECT_THAT(page, ::testing::Not(HasSubstr("src='/")));
  // No scratch files are left beside it.
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir / "report")) ++files;
  EXPECT_EQ(files, 1);
  // The browser check: no console error, every image decoded, a screenshot.
  const auto shot = dir / "report/shot.png";
  const auto command = std::string(QIMERA_SOURCE_DIR) + "/scripts/check-report.sh '" + page_path.string() +
                       "' '" + shot.string() + "'";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << command;
  if (WEXITSTATUS(status) == 2) GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh installs it)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << command;
  EXPECT_GT(data::decode_image(read_file(shot), "shot.png").size(2), 1000);
}

}  // namespace
}  // namespace qimera::analysis
