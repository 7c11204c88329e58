// State dicts: the named tensors of a model, as PyTorch's model.state_dict() holds them, read from
// a checkpoint file and moved in and out of a torch::nn::Module.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}

namespace qimera::io {

/// Insertion-ordered (key, tensor) pairs, like PyTorch's OrderedDict: the order is part of the
/// format (the fixtures' keys files and the formula-filled weights are defined by it), so no
/// std::map.
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

/// Reads a torch.save zip file or a safetensors file. The format is recognised from the content,
/// not from the extension (".pth", ".pt", ".bin" and ".ckpt" are all used for both in the wild).
/// Example: auto weights = read_state_dict("resnet20_cifar10.pth");
StateDict read_state_dict(const std::filesystem::path& path);

/// What loading does with NaN or infinite values in floating-point tensors: a model holding them
/// computes garbage (top-1 near chance) without any other sign, so by default it is an error.
enum class NonFinite { Refuse, Warn };

/// Throws qimera::Error (Refuse) or logs a warning (Warn) when a floating-point tensor of `state`
/// holds NaN or infinite values; the message names `source` (the file), the first such tensor,
/// its counts and the first position.
void check_finite(const StateDict& state, const std::string& source, NonFinite policy);

/// The module's parameters and buffers with PyTorch's state_dict() names and order: a pre-order
/// walk of the module tree that lists, for each module, its own parameters and then its own
/// buffers. LibTorch's named_parameters()/named_buffers() would give all parameters before all
/// buffers. The tensors are detached but share storage with the module.
StateDict state_dict_of(const torch::nn::Module& module);

struct LoadOptions {
  /// Missing and unexpected keys are an error; otherwise they are reported and the rest is loaded.
  bool strict = true;
  /// Strips a leading "module." from every key when every key has one (nn.DataParallel checkpoints)
  /// and the module itself has no such keys.
  bool strip_data_parallel_prefix = true;
};

struct LoadReport {
  std::vector<std::string> missing;     ///< in the module, not in the state dict
  std::vector<std::string> unexpected;  ///< in the state dict, not in the module
  std::vector<std::string> loaded;      ///< copied, in the module's order
};

/// Copies the values of `state` into the module's parameters and buffers, converting dtype and
/// device as Tensor::copy_ does (the module keeps its device and dtypes). A wrong shape or a
/// duplicate key is always an error, and an error leaves the module unchanged.
/// Example: load_state_dict(model, read_state_dict(path));
LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state,
                           const LoadOptions& options = {});

}  // namespace qimera::io
