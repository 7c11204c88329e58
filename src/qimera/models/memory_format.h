// Channels-last (NHWC) storage for a module's 4-D parameters and buffers. Convolutions given a
// channels-last weight return channels-last activations, and batch norm, ReLU, pooling, upsampling
// and fake quantization keep that layout, so converting the modules is enough: oneDNN's
// convolutions run faster on it on CPU (see README "Performance").
#pragma once

namespace torch::nn {
class Module;
}

namespace qimera::models {

/// Stores every 4-D parameter and buffer of `module` (recursively) channels-last, in place: the
/// tensors keep their identity, so optimizers and saved references stay valid.
void use_channels_last(torch::nn::Module& module);

}  // namespace qimera::models
