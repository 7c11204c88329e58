#include "qimera/analysis/feature_pca.h"

#include "qimera/analysis/boundary_metrics.h"
#include "qimera/analysis/gnuplot.h"
#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>


namespace qimera::analysis {
namespace fs = std::filesystem;

Pca2d pca_2d(const at::Tensor& x, const at::Tensor& fit) {
  require(x.dim() == 2 && x.size(0) >= 2 && x.size(1) >= 2, "PCA needs [N >= 2, d >= 2] points, got {}",
          x.sizes());
  const auto points = x.to(at::kCPU, at::kDouble);
  const auto fitted = fit.defined() ? points.index({fit.to(at::kCPU)}) : points;
  const auto mean = fitted.mean(0, true);
  const auto [u, s, vh] = at::linalg_svd(fitted - mean, false);
  const auto components = vh.slice(0, 0, 2);  // [2, d]
  Pca2d out;
  out.coordinates = at::matmul(points - mean, components.t()).to(at::kFloat);
  const auto variance = s * s;
  const double total = variance.sum().item<double>();
  for (int i = 0; i < 2 && i < variance.size(0); ++i) {
    out.explained[i] = total > 0 ? variance[i].item<double>() / total : 0.0;
  }
  return out;
}

PcaResult feature_pca(RunModels& run, const at::Tensor& real_images, const at::Tensor& real_labels,
                      const PcaOptions& options) {
  require(options.per_kind >= 2 && options.path_steps >= 1, "PCA needs at least 2 points per kind");
  const c10::NoGradGuard no_grad;
  auto cpu = at::detail::createCPUGenerator(options.seed);
  const int64_t dim = run.generator->options().latent_dim;
  const int64_t classes = run.num_classes();
  std::vector<at::Tensor> features;
  std::vector<std::pair<std::string, at::Tensor>> labels;  // kind, labels per block
  auto add = [&](const std::string& kind, const at::Tensor& images, const at::Tensor& l) {
    features.push_back(run.teacher->features(images).cpu());
    labels.emplace_back(kind, l.cpu());
  };
  if (real_images.defined()) {
    const int64_t n = std::min(options.per_kind, real_images.size(0));
    add("real", real_images.slice(0, 0, n).to(run.device), real_labels.slice(0, 0, n));
  }
  const auto noise = at::randn({options.per_kind, dim}, cpu).to(run.device);
  const auto batch = ordinary_batch(
      run.labelled() ? at::randint(classes, {options.per_kind}, cpu, at::kLong).to(run.device) : at::Tensor(),
      noise, classes);
  const auto generated = run.generator->forward(batch);
  // A label-free generator's samples are coloured by what the teacher sees in them.
  add("generated", generated,
      run.labelled() ? batch.labels : run.teacher->forward(generated).argmax(1));
  if (run.superposable() && classes >= 2) {
    generator::LatentBatch sup;
    sup.labels = at::randint(classes, {options.per_kind, 2}, cpu, at::kLong).to(run.device);
    sup.noise = at::randn({options.per_kind, 2, dim}, cpu).to(run.device);
    sup.mix = at::softmax(at::randn({options.per_kind, 2}, cpu), 1).to(run.device);
    sup.targets = generator::soft_targets(sup.labels, sup.mix, classes);
    add("superposed", run.generator->forward(sup), at::full({options.per_kind}, -1, at::kLong));
  }
  const int64_t fitted_rows = [&] {
    int64_t n = 0;
    for (const auto& f : features) n += f.size(0);
    return n;
  }();
  if (run.superposable() && classes >= 2) {
    const auto z = at::zeros({dim}, at::TensorOptions().device(run.device));
    add("path", run.generator->forward(superposed_path(0, 1, z, options.path_steps, classes)),
        at::arange(options.path_steps + 1));
  }
  const auto all = at::cat(features);
  const auto pca = pca_2d(all, at::arange(fitted_rows));
  PcaResult result;
  result.explained[0] = pca.explained[0];
  result.explained[1] = pca.explained[1];
  int64_t row = 0;
  for (const auto& [kind, l] : labels) {
    for (int64_t i = 0; i < l.size(0); ++i, ++row) {
      result.points.push_back({kind, l[i].item<int64_t>(), pca.coordinates[row][0].item<double>(),
                               pca.coordinates[row][1].item<double>()});
    }
  }
  return result;
}

std::string pca_csv(const PcaResult& result) {
  std::string out = "kind,label,pc1,pc2\n";
  for (const auto& p : result.points) out += fmt::format("{},{},{:.6g},{:.6g}\n", p.kind, p.label, p.x, p.y);
  return out;
}

namespace {

std::string pca_script(const PcaResult& result, const std::string& title) {
  std::string script;
  // Matplotlib's tab10, so classes look as in the paper's figure; classes beyond 10 cycle.
  const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  for (int i = 0; i < 10; ++i) script += fmt::format("set linetype {} lc rgb '{}'\n", i + 1, colours[i]);
  script += "set linetype cycle 10\n";
  script += fmt::format("set title {}\n", gnuplot_string(title));
  script += fmt::format("set xlabel 'PC1 ({:.1f}% of the variance)'\nset ylabel 'PC2 ({:.1f}%)'\n",
                        100 * result.explained[0], 100 * result.explained[1]);
  script += "set key outside right top\nset grid\n";
  struct Kind {
    const char* name;
    const char* style;
  };
  const Kind kinds[] = {
      {"real", "using 1:2:($3+1) with points pt 7 ps 0.35 lc variable title 'real (class colour)'"},
      {"generated", "using 1:2:($3+1) with points pt 6 ps 0.6 lc variable title 'generated (intended class)'"},
      {"superposed", "using 1:2 with points pt 7 ps 0.35 lc rgb 'black' title 'superposed'"},
      {"path", "using 1:2 with linespoints lw 2 pt 5 ps 0.5 lc rgb '#e00000' title 'path class 0 -> 1'"}};
  std::vector<std::string> plots;
  for (const auto& kind : kinds) {
    std::string block;
    for (const auto& p : result.points) {
      if (p.kind == kind.name) block += fmt::format("{:.6g} {:.6g} {}\n", p.x, p.y, p.label);
    }
    if (block.empty()) continue;
    script += fmt::format("${} << EOD\n{}EOD\n", kind.name, block);
    plots.push_back(fmt::format("${} {}", kind.name, kind.style));
  }
  script += fmt::format("plot {}\n", fmt::join(plots, ", \\\n     "));
  return script;
}

}  // namespace

void plot_pca(const PcaResult& result, const std::string& title, const fs::path& png,
              const fs::path& svg) {
  const auto script = pca_script(result, title);
  render_with_gnuplot(script, "pngcairo size 1000,750 font 'sans,10'", png);
  render_with_gnuplot(script, "svg size 1000,750 font 'sans,10'", svg);
}

}  // namespace qimera::analysis
