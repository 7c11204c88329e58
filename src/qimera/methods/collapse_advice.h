// What to try after a run collapsed, written once so the CLI's warning and the sweep table's
// footnote cannot drift apart. Kept free of LibTorch so the results table can include it.
#pragma once

namespace qimera::methods {

/// Learning rates come first: by the epoch that reaches chance the checkpoint before it may already
/// be damaged, so a rollback often cannot save the run (Fashion-MNIST 5w5a GDFQ + Mixup, seed 2).
/// Activation ranges come second: a range observed on the generator's images can break Q at low bit
/// widths on its own (Fashion-MNIST 3w3a ZAQ with mse ranges: its first block's range alone took
/// the teacher's 3-bit weights from 78% to 22%): `qimera eval --act-ranges-from` tells which, and
/// `quantize --act-ranges-from` trains on other ranges.
inline constexpr const char* kCollapseAdvice =
    "rerun with lower learning rates (--lr-q, --lr-g); if the activation ranges are to blame (qimera "
    "eval --act-ranges-from: a PTQ export evaluated with this run's ranges is near chance too), try "
    "another --observer or keep ranges known to work (quantize --act-ranges-from PTQ.json "
    "--observe-epochs 0); --on-collapse rollback helps only while the epoch before the fall is still "
    "healthy";

}  // namespace qimera::methods
