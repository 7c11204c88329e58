#include "qimera/deploy/quantized_ops.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/QEngine.h>

#include <algorithm>

namespace qimera::deploy {
namespace {

c10::OperatorHandle find(const char* name, const char* overload) {
  const auto op = c10::Dispatcher::singleton().findSchema({name, overload});
  require(op.has_value(), "this LibTorch has no operator {}{}{} (needed by the int8 engine)", name,
          *overload ? "." : "", overload);
  return *op;
}

// Boxed call: the stack holds the arguments, then the results.
c10::IValue call(const c10::OperatorHandle& op, std::vector<c10::IValue> stack) {
  op.callBoxed(&stack);
  require(!stack.empty(), "operator {} returned nothing", op.schema().name());
  return stack.front();
}

}  // namespace

std::string select_quantized_engine() {
  const auto& supported = at::globalContext().supportedQEngines();
  for (const auto engine : {at::QEngine::ONEDNN, at::QEngine::X86, at::QEngine::FBGEMM, at::QEngine::QNNPACK}) {
    if (std::find(supported.begin(), supported.end(), engine) == supported.end()) continue;
    at::globalContext().setQEngine(engine);
    std::string name = c10::toString(engine);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    return name;
  }
  fail("this LibTorch has no quantized engine (onednn, x86, fbgemm or qnnpack): the int8 engine cannot run");
}

at::Tensor make_qint8_weight(const at::Tensor& int8_values, const at::Tensor& scales) {
  return at::_make_per_channel_quantized_tensor(
      int8_values.to(at::kChar).contiguous(), scales.to(at::kDouble).contiguous(),
      at::zeros({scales.numel()}, at::kLong), /*axis=*/0);
}

c10::IValue prepack_conv2d(const at::Tensor& qweight, const at::Tensor& bias, int64_t stride,
                           int64_t padding, int64_t dilation, int64_t groups) {
  const auto pair = [](int64_t v) { return std::vector<int64_t>{v, v}; };
  c10::optional<at::Tensor> b;
  if (bias.defined()) b = bias.to(at::kFloat).contiguous();
  static const auto op = find("quantized::conv2d_prepack", "");
  return call(op, {qweight, b, pair(stride), pair(padding), pair(dilation), groups});
}

at::Tensor quantized_conv2d(const at::Tensor& qx, const c10::IValue& packed, bool relu,
                            double output_scale, int64_t output_zero_point) {
  static const auto plain = find("quantized::conv2d", "new");
  static const auto with_relu = find("quantized::conv2d_relu", "new");
  return call(relu ? with_relu : plain, {qx, packed, output_scale, output_zero_point}).toTensor();
}

at::Tensor quantized_add(const at::Tensor& qa, const at::Tensor& qb, bool relu, double output_scale,
                         int64_t output_zero_point) {
  static const auto plain = find("quantized::add", "");
  static const auto with_relu = find("quantized::add_relu", "");
  return call(relu ? with_relu : plain, {qa, qb, output_scale, output_zero_point}).toTensor();
}

}  // namespace qimera::deploy
