// ONNX export: what the file holds, checked by reading it back with the protobuf classes.
#include "deploy/support.h"
#include "qimera/core/error.h"
#include "qimera/deploy/lower.h"
#include "qimera/deploy/onnx_export.h"
#include "qimera/deploy/quantized_model.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#if QIMERA_HAVE_ONNX
#include <onnx/onnx_pb.h>

namespace qimera::deploy {
namespace {

using qimera::testing::TempDir;
using namespace deploy::support;

onnx::ModelProto parse(const std::string& bytes) {
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(bytes));
  return model;
}

const onnx::TensorProto& initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) return t;
  }
  throw Error("no initializer " + name);
}

bool has_initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) return true;
  }
  return false;
}

int count(const onnx::ModelProto& m, const std::string& op_type) {
  int n = 0;
  for (const auto& node : m.graph().node()) n += node.op_type() == op_type;
  return n;
}

float scalar(const onnx::TensorProto& t) {
  EXPECT_EQ(t.raw_data().size(), 4u);
  float v;
  std::memcpy(&v, t.raw_data().data(), 4);
  return v;
}

std::vector<float> floats(const onnx::TensorProto& t) {
  std::vector<float> v(t.raw_data().size() / 4);
  std::memcpy(v.data(), t.raw_data().data(), t.raw_data().size());
  return v;
}

std::string bytes_of(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

// input [N,1,2,2] -> conv 1x1 (2 channels, `bits`-bit integers) -> BN -> ReLU -> fake quant ->
// pool -> flatten -> float linear (2 -> 3)
InferenceGraph tiny_graph(int weight_bits, const std::vector<float>& q, const std::vector<float>& zp,
                          int act_bits) {
  InferenceGraph g;
  g.spec = models::ModelSpec{models::Arch::ResNet20Cifar, 3, 1, 8};
  g.preprocess = data::preprocess_preset("mnist");
  IntegerWeight w{weight_bits, at::tensor(q).reshape({2, 1, 1, 1}), at::tensor({2.0f, 4.0f}), at::tensor(zp)};
  ConvOp conv{quant::Conv2dSpec{1, 2, 1}, quant::dequantize(w.q, {w.scale, w.zero_point}), {}, w};
  int v = 0;
  const auto add = [&](const std::string& name, Op op) {
    g.nodes.push_back({name, std::move(op), {v}, g.num_values});
    v = g.num_values++;
  };
  add("conv", conv);
  add("bn", BatchNormOp{at::ones({2}), at::zeros({2}), at::zeros({2}), at::ones({2}), 1e-5, 0.1});
  add("act", ActivationOp{quant::ActivationKind::ReLU});
  add("act", FakeQuantOp{act_bits, at::zeros({1}), at::full({1}, 2.0f)});
  add("pool", GlobalAvgPoolOp{});
  add("flatten", FlattenOp{});
  add("output", LinearOp{at::ones({3, 2}), at::zeros({3}), {}});
  g.output = v;
  return g;
}

TEST(OnnxExport, FourBitWeightsAreInt4WithTheReferenceScaleAndNegatedZeroPoint) {
  OnnxExportSummary summary;
  const auto m = parse(onnx_model_bytes(tiny_graph(4, {-8, 7}, {3, -2}, 3), {}, {}, &summary));
  EXPECT_EQ(m.ir_version(), 10);
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).version(), 21);
  const auto& q = initializer(m, "conv.weight_q");
  EXPECT_EQ(q.data_type(), 22);  // INT4
  EXPECT_EQ(q.dims_size(), 4);
  EXPECT_EQ(q.raw_data(), bytes_of({0x78}));  // -8 -> 0x8 (low nibble), 7 -> 0x7 (high)
  const auto& zero_point = initializer(m, "conv.weight_zero_point");
  EXPECT_EQ(zero_point.data_type(), 22);
  EXPECT_EQ(zero_point.raw_data(), bytes_of({0x2D}));  // -3 -> 0xD, 2 -> 0x2
  EXPECT_EQ(floats(initializer(m, "conv.weight_scale")), (std::vector<float>{0.5f, 0.25f}));
  // Activation: 3 bits over [0, 2] -> s = 3.5, zp = 4; in an INT4 container it needs a Clip to
  // the 3-bit grid [0, 2] before QuantizeLinear.
  EXPECT_EQ(initializer(m, "act.q_zero_point").data_type(), 22);
  EXPECT_EQ(initializer(m, "act.q_zero_point").raw_data(), bytes_of({0x0C}));  // -4
  EXPECT_FLOAT_EQ(scalar(initializer(m, "act.q_scale")), 1.0f / 3.5f);
  EXPECT_FLOAT_EQ(scalar(initializer(m, "act.q_clip_lo")), 0.0f);
  EXPECT_FLOAT_EQ(scalar(initializer(m, "act.q_clip_hi")), 2.0f);
  EXPECT_EQ(count(m, "Max"), 1);  // the clamp, as Max -> Min (see onnx_export.h)
  EXPECT_EQ(count(m, "Min"), 1);
  EXPECT_EQ(count(m, "Clip"), 0);
  EXPECT_EQ(count(m, "QuantizeLinear"), 1);
  EXPECT_EQ(count(m, "DequantizeLinear"), 2);
  EXPECT_EQ(count(m, "BatchNormalization"), 1);
  // The float classifier stays float.
  EXPECT_EQ(initializer(m, "output.weight").data_type(), onnx::TensorProto::FLOAT);
  EXPECT_FALSE(has_initializer(m, "output.weight_q"));
  ASSERT_EQ(summary.tensors.size(), 2u);
  EXPECT_EQ(summary.tensors[1].container, "int4");
  EXPECT_TRUE(summary.tensors[1].clipped);
  // Input: uint8 pixels.
  EXPECT_EQ(m.graph().input(0).type().tensor_type().elem_type(), onnx::TensorProto::UINT8);
}

TEST(OnnxExport, Int8ContainersKeepTheSameValuesAndClipEveryNarrowActivation) {
  const auto m = parse(onnx_model_bytes(tiny_graph(4, {-8, 7}, {3, -2}, 4), {true}, {}));
  const auto& q = initializer(m, "conv.weight_q");
  EXPECT_EQ(q.data_type(), 3);  // INT8
  EXPECT_EQ(q.raw_data(), bytes_of({-8, 7}));
  EXPECT_EQ(initializer(m, "conv.weight_zero_point").raw_data(), bytes_of({-3, 2}));
  EXPECT_EQ(initializer(m, "act.q_zero_point").data_type(), 3);
  EXPECT_EQ(count(m, "Min"), 1);  // 4 bits in 8: saturation alone would not keep it on the grid
  // 4 bits in INT4 need no clamp; 8 bits in INT8 neither.
  EXPECT_EQ(count(parse(onnx_model_bytes(tiny_graph(4, {-8, 7}, {3, -2}, 4), {}, {})), "Min"), 0);
  EXPECT_EQ(count(parse(onnx_model_bytes(tiny_graph(8, {-128, 127}, {3, -2}, 8), {}, {})), "Min"), 0);
}

TEST(OnnxExport, AZeroPointOutsideTheContainerWidensItInsteadOfChangingTheModel) {
  // A channel whose weights are all positive: zp = 20 does not fit INT4's [-8, 7].
  OnnxExportSummary summary;
  const auto m = parse(onnx_model_bytes(tiny_graph(4, {-8, 7}, {20, 0}, 4), {}, {}, &summary));
  EXPECT_EQ(initializer(m, "conv.weight_q").data_type(), 3);
  EXPECT_EQ(initializer(m, "conv.weight_zero_point").raw_data(), bytes_of({-20, 0}));
  EXPECT_EQ(summary.tensors[0].container, "int8");
  const auto wide = parse(onnx_model_bytes(tiny_graph(8, {-128, 127}, {300, 0}, 8), {}, {}));
  EXPECT_EQ(initializer(wide, "conv.weight_q").data_type(), 5);  // INT16
  EXPECT_EQ(initializer(wide, "conv.weight_zero_point").raw_data(), bytes_of({0xD4, 0xFE, 0, 0}));  // -300 LE
}

TEST(OnnxExport, TeacherGraphHasOneQdqPairPerQuantizedTensorAndKeepsBatchNorms) {
  const auto m = test_model("fmnist-resnet20");
  TempDir dir;
  const auto graph = lower_quantized(read_quantized_manifest(quantized_export(m, config_of(4, 4))));
  OnnxExportSummary summary;
  const auto model = parse(onnx_model_bytes(graph, {}, {{"note", "test"}}, &summary));
  EXPECT_EQ(count(model, "QuantizeLinear"), 19);       // the activations after every ReLU
  EXPECT_EQ(count(model, "DequantizeLinear"), 19 + 22);  // + 21 convolutions and the classifier
  EXPECT_EQ(count(model, "BatchNormalization"), 21);
  EXPECT_EQ(count(model, "Min"), 0);
  std::map<std::string, std::string> meta;
  for (const auto& p : model.metadata_props()) meta[p.key()] = p.value();
  EXPECT_EQ(meta["qimera.format"], "qimera-onnx/1");
  EXPECT_EQ(meta["qimera.note"], "test");
  EXPECT_NE(meta["qimera.preprocess"].find("0.353"), std::string::npos);
  EXPECT_NE(meta["qimera.batch_norm"].find("kept"), std::string::npos);
  // 4-bit integers take half a byte: the file is far below the float graph's.
  const auto float_bytes = onnx_model_bytes(strip_quantization(graph), {}, {}).size();
  const auto bytes = onnx_model_bytes(graph, {}, {}).size();
  EXPECT_LT(bytes, float_bytes / 4);
  EXPECT_LT(onnx_model_bytes(graph, {true}, {}).size(), float_bytes / 2);
}

TEST(OnnxExport, WritesAtomicallyAndNamesAnUnwritableFolder) {
  const auto m = test_model("resnet20_cifar10");
  const auto graph = lower(*m.model, m.preprocess);
  TempDir dir;
  const auto summary = export_onnx(graph, dir / "sub/m.onnx");
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(dir / "sub/m.onnx")), summary.file_bytes);
  qimera::testing::write_bytes(dir / "a-file", "x");
  const auto message = qimera::testing::error_of([&] { export_onnx(graph, dir / "a-file/m.onnx"); });
  EXPECT_NE(message.find("a-file"), std::string::npos) << message;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos);  // nothing left behind
  }
}

}  // namespace
}  // namespace qimera::deploy

#endif  // QIMERA_HAVE_ONNX
