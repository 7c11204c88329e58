#include "qimera/data/fashion_mnist.h"
#include "qimera/data/prepared.h"
#include "qimera/data/loader.h"
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <chrono>
#include <iostream>
namespace qimera::data {
TEST(RealPackage, Convert) {
  if (!std::getenv("REAL_PKG")) GTEST_SKIP();
  auto t0 = std::chrono::steady_clock::now();
  auto m = prepare_mnist("/tmp/npmx/package", "/tmp/qreal");
  std::cout << "mnist " << m.train_images << " " << m.test_images << "\n";
  auto r = prepare_fashion_mnist("/tmp/npmx/package", "/tmp/qreal");
  std::cout << report_to_json(r).dump(1) << "\n";
  std::cout << "seconds " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << "\n";
  for (auto split : {"train", "test"}) {
    auto ds = open_prepared("fashion-mnist", "/tmp/qreal", split);
    std::cout << ds->description() << " mean " << ds->images().to(at::kFloat).mean().item<double>() / 255 << "\n";
    std::cout << "label counts " << at::bincount(ds->labels()) << "\n";
    auto first = ds->labels().narrow(0, 0, 100);
    std::cout << "first-100 label counts " << at::bincount(first) << "\n";
    LoaderOptions o; o.batch_size = 256; o.shuffle = true; o.workers = 2;
    BatchLoader loader(ds, preprocess_preset("fashion-mnist"), o);
    auto t1 = std::chrono::steady_clock::now();
    int64_t n = 0; while (auto b = loader.next()) n += b->images.size(0);
    std::cout << "loader " << n << " in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() << " s\n";
  }
}
}
