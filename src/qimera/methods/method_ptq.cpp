// Post-training quantization as a method: convert P, calibrate the activation ranges on a few
// batches of real images (when the user has them) or N(0, 1) noise, done. The floor every data-free
// method must beat.
#include "qimera/core/error.h"
#include "qimera/data/dataset.h"
#include "qimera/data/dataset_spec.h"
#include "qimera/data/loader.h"
#include "qimera/methods/presets.h"
#include "qimera/methods/ptq.h"
#include "qimera/methods/registry.h"

namespace qimera::methods {
namespace {

struct PtqOptions {
  quant::QuantConfig quant;
  std::string calib_data = "noise";
  int64_t calib_batches = 8;
  int64_t calib_batch_size = 64;

  PtqOptions() { quant.observer.kind = quant::ObserverKind::MinMax; }
  void describe(OptionVisitor& v) {
    describe_quantization(v, quant);
    v.option({"calib_data", "Calibration data: a data set spec (e.g. fashion-mnist:train) or 'noise' "
                            "for N(0,1) images"},
             calib_data);
    v.option({"calib_batches", "Calibration batches"}, calib_batches);
    v.option({"calib_batch_size", "Calibration batch size"}, calib_batch_size);
  }
  void validate() const {
    quant.validate();
    require(!calib_data.empty(), "--calib-data must name a data set or 'noise'");
    require(calib_batches >= 1 && calib_batches <= 100000, "--calib-batches must be in [1, 100000], got {}",
            calib_batches);
    require(calib_batch_size >= 1 && calib_batch_size <= 65536,
            "--calib-batch-size must be in [1, 65536], got {}", calib_batch_size);
  }
};

BatchSource calibration_source(const PtqOptions& o, const MethodContext& c) {
  if (o.calib_data == "noise") {
    return gaussian_batches(c.teacher->spec(), o.calib_batch_size, c.device, c.seed + 1);
  }
  auto dataset = data::open_dataset(data::parse_dataset_spec(o.calib_data), c.data_root);
  data::LoaderOptions loading;
  loading.batch_size = o.calib_batch_size;
  loading.shuffle = true;
  loading.seed = c.seed;
  loading.device = c.device;
  loading.workers = c.workers;
  auto loader = std::make_shared<data::BatchLoader>(dataset, c.preprocess, loading);
  require(loader->batches_per_epoch() >= o.calib_batches, "--calib-data {} has {} batches, {} requested",
          o.calib_data, loader->batches_per_epoch(), o.calib_batches);
  return [loader] { return loader->next()->images; };
}

class Ptq : public Method {
 public:
  void describe(OptionVisitor& v) override { o_.describe(v); }
  void validate() const override { o_.validate(); }
  const quant::QuantConfig& quantization() const override { return o_.quant; }
  bool trains() const override { return false; }
  MethodOutcome run(const MethodContext& c) override {
    CalibrationOptions calibration;
    calibration.batches = o_.calib_batches;
    calibration.observer = o_.quant.observer;
    MethodOutcome out;
    out.quantization = o_.quant;
    out.quantized = post_training_quantize(*c.teacher, o_.quant, calibration, calibration_source(o_, c));
    const auto label = "ptq " + o_.quant.short_name();
    const auto note = fmt::format("{} observer, calibrated on {} x {} {}",
                                  quant::to_string(o_.quant.observer.kind), o_.calib_batches,
                                  o_.calib_batch_size,
                                  o_.calib_data == "noise" ? "N(0,1) noise" : o_.calib_data);
    std::optional<eval::Accuracy> test;
    if (c.test) test = eval::evaluate_model(*out.quantized, *c.test, label);
    out.rows.push_back({label, test, note});
    out.summary["calibration"] = note;
    if (test) out.summary["test"] = test->to_json();
    return out;
  }

 private:
  PtqOptions o_;
};

}  // namespace

MethodInfo ptq_method() {
  std::vector<PresetInfo> presets;
  for (const auto& s : paper_settings()) {
    presets.push_back({s.name, "Bits of " + s.description, {{"wbits", s.bits}, {"abits", s.bits}}});
  }
  return {"ptq",
          "Post-training quantization: activation ranges calibrated on real images or N(0,1) "
          "noise, no training",
          [] { return std::make_unique<Ptq>(); }, presets};
}

}  // namespace qimera::methods
