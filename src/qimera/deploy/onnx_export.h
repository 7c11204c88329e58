// ONNX export of an inference graph as a QDQ model (QuantizeLinear / DequantizeLinear pairs), the
// form ONNX Runtime, TensorRT and OpenVINO read, written with Debian's libonnx-dev protobuf classes.
//
// The reference's grid maps exactly onto ONNX's y = saturate(round(x / scale) + zero_point):
//   y = q (the reference's signed integer), scale = 1 / s, zero_point = -zp,
// since round(s * x - zp) = round(s * x) - zp for an integer zp, and (q + zp) / s = (y - (-zp)) * (1 / s).
// Containers: INT4 (opset 21) for 4 bits and below, INT8 for 5 to 8 bits, INT8 for everything with
// `int8_containers` (runtimes without INT4); a tensor whose zero points do not fit its container is
// widened (INT8, then INT16) rather than altered. QuantizeLinear saturates to the container, so an
// activation with fewer bits than its container is clamped to its own grid before QuantizeLinear.
// Clamps that feed a QuantizeLinear (that one, and ReLU6 before a quantizer) are written as
// Max -> Min, elsewhere ReLU6 is Clip(0, 6): ONNX Runtime up to at least 1.30 cannot load a Clip
// feeding an INT4 QuantizeLinear (its ClipQuantFusion pass reads only 8- and 16-bit zero points).
//   * Weights: initializers of the integer type + DequantizeLinear, per output channel (axis 0).
//   * Activations: per tensor, [Clip ->] QuantizeLinear -> DequantizeLinear after each ReLU / ReLU6.
//   * Batch norms: kept (BatchNormalization in float after each Conv, as in the fake-quantized model).
//   * Input: uint8 pixels [N, C, H, W]; the graph casts, divides by 255 and normalizes with the
//     model's mean / std (the same operations as the project's Normalizer). Resizing / cropping /
//     padding / grey-to-RGB are per-image geometry and recorded in the metadata ("qimera.preprocess").
//   * Layers left in float by an override have float initializers and no QDQ.
#pragma once

#include "qimera/deploy/graph.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace qimera::deploy {

struct OnnxOptions {
  bool int8_containers = false;  // 2-4-bit values in INT8 instead of INT4
};

/// Where one quantized tensor ended up.
struct OnnxTensorInfo {
  std::string name;       // the layer, e.g. "features.stage1.unit1.body.conv1.conv"
  std::string kind;       // "weight" or "activation"
  int bits = 0;
  std::string container;  // "int4", "int8", "int16"
  bool clipped = false;   // a clamp (Max -> Min) enforces the n-bit range before QuantizeLinear
};

struct OnnxExportSummary {
  std::filesystem::path file;
  int64_t file_bytes = 0;
  std::vector<OnnxTensorInfo> tensors;
  int64_t nodes = 0;
};

/// Whether this build can write ONNX (libonnx-dev was found at configure time).
bool onnx_export_available();

/// Serializes the graph (opset 21, IR version 10). `metadata` entries become metadata_props
/// ("qimera.<key>", JSON strings).
std::string onnx_model_bytes(const InferenceGraph& graph, const OnnxOptions& options,
                             const nlohmann::json& metadata, OnnxExportSummary* summary = nullptr);

/// Writes the file atomically.
OnnxExportSummary export_onnx(const InferenceGraph& graph, const std::filesystem::path& file,
                              const OnnxOptions& options = {},
                              const nlohmann::json& metadata = nlohmann::json::object());

}  // namespace qimera::deploy
